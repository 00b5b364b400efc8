"""The training set: labelled 2D micrographs per plane, and the random crops a training step
draws from them (in proportion to the windows each image holds; flipped, and transposed for
a declared isotropic material)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .diffusion.fraction_condition import crop_mean_spread
from .encoding import encode, num_channels
from .planes import NULL_LABEL, PLANE_LABELS, PLANES
from .symmetry import CLI_WORDS, Symmetry


class PlaneDataset:
    """Labelled 2D images per plane: ``images[plane]`` is a list of ``[H, W]`` int arrays
    with phases ``0 .. num_phases-1``. Sizes may differ between images.

    ``symmetry``: the material's resolved declaration (:mod:`.symmetry`; default none),
    kept in the checkpoint; an isotropic one also transposes crops. This constructor
    takes any planes; :meth:`declared` (what the CLI, the app and the benchmarks call)
    refuses a plane with neither micrographs nor a declared stand-in.
    """

    def __init__(self, images: Mapping[str, Sequence[np.ndarray]], num_phases: int,
                 symmetry: Symmetry = Symmetry()):
        self.num_phases = int(num_phases)
        self.planes = [p for p in PLANES if len(images.get(p, ()))]
        if not self.planes:
            raise ValueError("no training images in any plane")
        self.symmetry = symmetry
        self.images = {p: [np.asarray(im) for im in images[p]] for p in self.planes}
        # Pre-encoded once: crops are then plain tensor slices.
        self._encoded = {p: [encode(im, self.num_phases) for im in self.images[p]]
                         for p in self.planes}
        self._windows: dict[tuple[str, int], torch.Tensor | None] = {}  # see _draw_image

    @classmethod
    def declared(cls, images: Mapping[str, Sequence[np.ndarray]], num_phases: int,
                 symmetry: Symmetry = Symmetry(), words: Mapping[str, str] = CLI_WORDS
                 ) -> "PlaneDataset":
        """The training set of ``images`` under the declared ``symmetry``, resolved for
        the planes that have images (:meth:`.Symmetry.resolve`: a DatasetError naming an
        absent plane and the ways on, in ``words``)."""
        given = [p for p in PLANES if len(images.get(p, ()))]
        return cls(images, num_phases, symmetry.resolve(given, words))

    @property
    def channels(self) -> int:
        return num_channels(self.num_phases)

    def summary(self, crop: int | None = None) -> dict:
        """Counts, sizes and per-phase volume fractions per plane (plain data); with
        ``crop``, also the spread of ``crop``-px tiles' means per channel (model space),
        which the fraction condition of sampling reads (see ``crop_mean_spread``)."""
        out = {}
        for p in self.planes:
            ims = self.images[p]
            counts = sum(np.bincount(im.ravel().astype(np.int64), minlength=self.num_phases)
                         for im in ims)
            out[p] = {
                "images": len(ims),
                "shapes": [list(s) for s in sorted({im.shape for im in ims})],
                "volume_fractions": [float(c) for c in counts / counts.sum()],
            }
            if crop is not None:
                out[p]["crop_mean_spread"] = crop_mean_spread(self._encoded[p], crop)
        return out

    def _draw_image(self, plane: str, crop: int, gen: torch.Generator) -> int:
        """Index of one of ``plane``'s images, drawn in proportion to the ``crop`` px windows
        it holds, so that every window of the plane is equally likely: one large micrograph
        gives as many crops as small ones of its area. Images all of one size: a uniform
        draw, the random stream of the runs made before sizes were weighed."""
        ims = self._encoded[plane]
        if (plane, crop) not in self._windows:
            counts = torch.tensor([float((im.shape[-2] - crop + 1) * (im.shape[-1] - crop + 1))
                                   for im in ims], dtype=torch.float64)
            self._windows[plane, crop] = None if bool((counts == counts[0]).all()) else counts
        windows = self._windows[plane, crop]
        if windows is None:
            return int(torch.randint(len(ims), (1,), generator=gen))
        return int(torch.multinomial(windows, 1, generator=gen))

    def batch(self, size: int, crop: int, cond_drop: float, gen: torch.Generator):
        """A batch ``x0 [B, C, crop, crop]`` and labels ``[B]``, all draws from ``gen``."""
        def randint(high: int) -> int:
            return int(torch.randint(high, (1,), generator=gen))

        xs, labels = [], []
        for _ in range(size):
            plane = self.planes[randint(len(self.planes))]
            im = self._encoded[plane][self._draw_image(plane, crop, gen)]
            h, w = im.shape[-2:]
            r, c = randint(h - crop + 1), randint(w - crop + 1)
            x = im[:, r:r + crop, c:c + crop]
            flips = torch.rand(2, generator=gen)
            dims = [d for d, f in zip((-1, -2), flips) if f < 0.5]
            x = torch.flip(x, dims) if dims else x
            # isotropic: rows and columns alike (no draw otherwise: the stream stays as it was)
            if self.symmetry.isotropic and float(torch.rand(1, generator=gen)) < 0.5:
                x = x.transpose(-1, -2)
            xs.append(x)
            labels.append(PLANE_LABELS[plane])
        labels = torch.tensor(labels)
        drop = torch.rand(size, generator=gen) < cond_drop
        return torch.stack(xs), torch.where(drop, torch.full_like(labels, NULL_LABEL), labels)

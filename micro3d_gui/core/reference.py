"""The micrographs a model keeps for the self-check of its volumes
(:mod:`micro3d_gui.metrics.selfcheck`): a bounded, deterministic subset of each plane's
label images, stored in the checkpoint as uint8 (:mod:`.training`, :mod:`.checkpoint`).

Images are label arrays ``[H, W]`` (phases 0..255) in METHOD.md's orientation. No torch.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .planes import check_plane

#: Most pixels per plane a checkpoint keeps (2^19: the 32 images of 128 x 128 px of a
#: bundled demo plane, 0.5 MB as uint8).
MAX_REFERENCE_PIXELS = 2 ** 19


def reference_images(images: Mapping[str, Sequence[np.ndarray]],
                     max_pixels: int = MAX_REFERENCE_PIXELS) -> dict[str, list[np.ndarray]]:
    """A bounded, deterministic subset of each plane's label images ``[H, W]``, as uint8.

    Whole images in their order, every n-th (n chosen so that about ``max_pixels`` pixels
    remain, spread over the set), skipping any that would pass ``max_pixels``; when not
    even one fits, the first image cropped about its centre to fit. Planes without
    images are left out. ValueError for an unknown plane or labels outside 0..255.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    out = {}
    for plane, ims in images.items():
        ims = [np.asarray(im) for im in ims]
        if not ims:
            continue
        check_plane(plane)
        total = sum(im.size for im in ims)
        step = max(1, math.ceil(total / max_pixels))
        chosen, used = [], 0
        for im in ims[::step]:
            if used + im.size <= max_pixels:
                chosen.append(im)
                used += im.size
        if not chosen:
            chosen = [_centre_crop(ims[0], max_pixels)]
        out[plane] = [_uint8_labels(im, plane) for im in chosen]
    return out


def _centre_crop(im: np.ndarray, max_pixels: int) -> np.ndarray:
    """The centre of ``im`` with at most ``max_pixels`` pixels, about its aspect kept."""
    h, w = im.shape[:2]
    scale = math.sqrt(max_pixels / (h * w))
    rows = max(1, min(h, int(h * scale)))
    cols = max(1, min(w, max_pixels // rows))
    r, c = (h - rows) // 2, (w - cols) // 2
    return im[r:r + rows, c:c + cols]


def _uint8_labels(im: np.ndarray, plane: str) -> np.ndarray:
    if im.ndim != 2:
        raise ValueError(f"{plane}: expected 2D label images, got shape {im.shape}")
    if im.size and (im.dtype.kind not in "iub" or im.min() < 0 or im.max() > 255):
        raise ValueError(f"{plane}: label images must hold phases 0..255, got "
                         f"{im.dtype} values {im.min()}..{im.max()}")
    return np.ascontiguousarray(im, dtype=np.uint8)

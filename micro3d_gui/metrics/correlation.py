"""Two-point correlation S2 and lineal path L of a phase, on 2D images and volume slices.

Distances ``r`` are in pixels (voxels), integer, ``r = 0..max_r``. Along an image's axes:

- ``along_rows``: displacement down the image (image axis 0, from row i to row i + r);
- ``along_cols``: displacement across it (image axis 1).

For a volume's slices the image axes follow METHOD.md Sec. 1 (:mod:`micro3d_gui.core.planes`):
e.g. ``xz`` slices have z down and x across, so ``s2_volume(v)["xz"].along_rows`` is S2 along z.

S2(r) = P(two pixels r apart are both in the phase); S2(0) = the phase's area fraction.
Non-periodic (default): averaged over all pairs that fit in the image (zero-padded FFT,
divided by the count of overlapping positions). Periodic: the image wraps around (plain FFT),
right for images or volumes generated as periodic.

L(r) = P(a segment of r + 1 consecutive pixels along the axis lies wholly in the phase);
L(0) = the area fraction (non-periodic, counted from run lengths).

C2(r), the two-point cluster function = P(two pixels r apart are in the same connected
cluster of the phase: 4-connected within the image); C2(0) = the area fraction, L <= C2 <=
S2. It is the connectivity S2 and L miss: particles that touch make one cluster, so C2 stays
high over distances where L has dropped (Torquato, Random Heterogeneous Materials, 2002).
Non-periodic; a cluster cut by the image's edge counts as the part inside it, so compare
images of one size.

Sets of images (any sizes) are pooled: the curve is the total count of pairs (segments) in
the phase over the total count of pairs (segments) that fit, so every pixel pair counts once;
for images of one size this is the mean of the images' curves.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from ..core.planes import PLANES, label_volume_to_images

#: Images per FFT batch (bounds memory for large sets).
_CHUNK = 64


@dataclass
class Curves:
    """A statistic against distance ``r = 0..max_r`` (index = r, in pixels).

    ``along_rows``: along image axis 0 (down); ``along_cols``: along axis 1 (across);
    ``radial``: averaged over all directions (vectors with round(|d|) = r), when computed.
    """

    along_rows: np.ndarray
    along_cols: np.ndarray
    radial: np.ndarray | None = None

    def to_dict(self) -> dict[str, list[float]]:
        out = {"along_rows": self.along_rows.tolist(), "along_cols": self.along_cols.tolist()}
        if self.radial is not None:
            out["radial"] = self.radial.tolist()
        return out


def _image_list(images) -> list[np.ndarray]:
    if isinstance(images, np.ndarray):
        if images.ndim == 2:
            return [images]
        if images.ndim == 3:
            return list(images)
        raise ValueError(f"expected [H, W] or [N, H, W] label images, got shape {images.shape}")
    out = [np.asarray(im) for im in images]
    if not out:
        raise ValueError("no images given")
    for im in out:
        if im.ndim != 2:
            raise ValueError(f"expected 2D label images, got shape {im.shape}")
    return out


def default_max_r(shapes: Sequence[tuple[int, ...]], cap: int = 32) -> int:
    """A quarter of the smallest image side, at most ``cap``, at least 1."""
    side = min(min(s) for s in shapes)
    return max(1, min(side // 4, cap))


def _check_max_r(images: list[np.ndarray], max_r: int | None) -> int:
    if max_r is None:
        return default_max_r([im.shape for im in images])
    max_r = int(max_r)
    side = min(min(im.shape) for im in images)
    if max_r < 0 or max_r >= side:
        raise ValueError(f"max_r must be in 0..{side - 1} (below the smallest image side "
                         f"{side}), got {max_r}")
    return max_r


def _by_shape(images: list[np.ndarray]) -> dict[tuple[int, int], list[np.ndarray]]:
    groups: dict[tuple[int, int], list[np.ndarray]] = {}
    for im in images:
        groups.setdefault(im.shape, []).append(im)
    return groups


def _s2_window(images: list[np.ndarray], phase: int, max_r: int,
               periodic: bool) -> np.ndarray:
    """Pooled S2 for all displacements ``(dy, dx)`` in ``[-R, R]^2`` -> ``[2R+1, 2R+1]``."""
    r = np.arange(-max_r, max_r + 1)
    num = np.zeros((r.size, r.size))
    den = np.zeros((r.size, r.size))
    for (h, w), group in _by_shape(images).items():
        # FFT size: the image itself (wrap around) or padded so that nothing wraps.
        size = (h, w) if periodic else (sfft.next_fast_len(2 * h - 1, real=True),
                                        sfft.next_fast_len(2 * w - 1, real=True))
        for i in range(0, len(group), _CHUNK):
            ind = np.stack([g == phase for g in group[i:i + _CHUNK]]).astype(np.float64)
            spec = sfft.rfft2(ind, s=size)
            corr = sfft.irfft2(spec * spec.conj(), s=size).sum(axis=0)
            # corr[d mod size] = sum_x I(x) I(x + d): pick the window of displacements.
            num += corr[np.ix_(r % size[0], r % size[1])]
        if periodic:
            den += len(group) * h * w
        else:
            den += len(group) * np.outer(h - np.abs(r), w - np.abs(r))
    # FFT round-off can leave tiny negatives where the true count is 0.
    return np.clip(np.rint(num) / den, 0.0, 1.0)


def _radial(window: np.ndarray, max_r: int) -> np.ndarray:
    r = np.arange(-max_r, max_r + 1)
    dist = np.rint(np.hypot(*np.meshgrid(r, r, indexing="ij"))).astype(int)
    sums = np.bincount(dist.ravel(), weights=window.ravel())
    counts = np.bincount(dist.ravel())
    return (sums / counts)[:max_r + 1]


def s2_images(images: np.ndarray | Sequence[np.ndarray], phase: int, max_r: int | None,
              periodic: bool = False) -> Curves:
    """S2 of ``phase`` in label images (``[H, W]`` arrays of any sizes, or ``[N, H, W]``).

    ``max_r`` (pixels) must be below the smallest image side; None takes a quarter of it
    (at most 32). Returns :class:`Curves` with ``along_rows``, ``along_cols`` and ``radial``,
    each ``[max_r + 1]``.
    """
    ims = _image_list(images)
    max_r = _check_max_r(ims, max_r)
    window = _s2_window(ims, phase, max_r, periodic)
    return Curves(along_rows=window[max_r:, max_r].copy(),
                  along_cols=window[max_r, max_r:].copy(),
                  radial=_radial(window, max_r))


def _segment_counts(lines: np.ndarray, max_r: int) -> np.ndarray:
    """Segments of ``r + 1`` in-phase pixels along the last axis of bool ``lines``, r = 0..R.

    A run of length l holds max(0, l - r) such segments.
    """
    flat = lines.reshape(-1, lines.shape[-1]).astype(np.int8)
    edges = np.diff(np.pad(flat, ((0, 0), (1, 1))), axis=1)
    starts = np.nonzero(edges == 1)[1]
    ends = np.nonzero(edges == -1)[1]  # in row-major order, so they pair up with starts
    n = np.bincount(ends - starts, minlength=max_r + 2)
    lengths = np.arange(n.size)
    return np.array([(np.maximum(lengths - r, 0) * n).sum() for r in range(max_r + 1)])


def _axis_curves(images: np.ndarray | Sequence[np.ndarray], phase: int, max_r: int | None,
                 count) -> Curves:
    """A statistic along image rows' and columns' directions, pooled over the images:
    ``count(ind [N, H, W] bool, max_r)`` -> (pairs down the columns, pairs across the
    rows) ``[max_r + 1]`` for one shape's images, divided by the pairs that fit."""
    ims = _image_list(images)
    max_r = _check_max_r(ims, max_r)
    r = np.arange(max_r + 1)
    num_rows = np.zeros(max_r + 1)
    num_cols = np.zeros(max_r + 1)
    den_rows = np.zeros(max_r + 1)
    den_cols = np.zeros(max_r + 1)
    for (h, w), group in _by_shape(ims).items():
        rows, cols = count(np.stack([g == phase for g in group]), max_r)
        num_rows += rows
        num_cols += cols
        den_rows += len(group) * w * (h - r)
        den_cols += len(group) * h * (w - r)
    return Curves(along_rows=num_rows / den_rows, along_cols=num_cols / den_cols)


def lineal_path_images(images: np.ndarray | Sequence[np.ndarray], phase: int,
                       max_r: int | None) -> Curves:
    """Lineal path L(r) of ``phase`` along image rows' and columns' directions (no radial).

    ``along_rows[r]``: P(pixels (i, j) .. (i + r, j) all in the phase); ``along_cols[r]``:
    P((i, j) .. (i, j + r) all in the phase); non-periodic, pooled over the images.
    """
    def count(ind, max_r):  # runs down the columns, runs along the rows
        return _segment_counts(ind.transpose(0, 2, 1), max_r), _segment_counts(ind, max_r)

    return _axis_curves(images, phase, max_r, count)


def cluster_images(images: np.ndarray | Sequence[np.ndarray], phase: int,
                   max_r: int | None) -> Curves:
    """Two-point cluster function C2(r) of ``phase`` along image rows' and columns'
    directions (no radial), pooled over the images as :func:`lineal_path_images` is.

    ``along_rows[r]``: P(pixels (i, j) and (i + r, j) in one 4-connected cluster of the
    phase); ``along_cols[r]``: the same for (i, j) and (i, j + r).
    """
    def count(ind, max_r):
        # one labelling of the stack; the structure joins no pixels across images
        clusters, _ = ndimage.label(ind, _IN_IMAGE)
        h, w = ind.shape[1:]
        return (np.array([_same_cluster(clusters[:, :h - d], clusters[:, d:])
                          for d in range(max_r + 1)]),
                np.array([_same_cluster(clusters[:, :, :w - d], clusters[:, :, d:])
                          for d in range(max_r + 1)]))

    return _axis_curves(images, phase, max_r, count)


#: 4-connectivity within each image of a stack ``[N, H, W]``, none between images.
_IN_IMAGE = np.array([np.zeros((3, 3)), [[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.zeros((3, 3))],
                     dtype=bool)


def _same_cluster(a: np.ndarray, b: np.ndarray) -> int:
    """Count of pixel pairs of two aligned label windows in the same (nonzero) cluster."""
    return int(np.count_nonzero((a == b) & (a > 0)))


def s2_volume(volume: np.ndarray, phase: int, max_r: int | None,
              periodic: bool = False) -> dict[str, Curves]:
    """S2 of ``phase`` over a label volume ``[Z, Y, X]``'s slices in each plane.

    ``{plane: Curves}``; image axes per METHOD.md (``xy``: rows y, cols x; ``xz``: rows z,
    cols x; ``yz``: rows z, cols y). ``max_r`` below the volume's smallest side.
    """
    vol = _volume(volume)
    return {p: s2_images(label_volume_to_images(vol, p), phase, max_r, periodic)
            for p in PLANES}


def lineal_path_volume(volume: np.ndarray, phase: int,
                       max_r: int | None) -> dict[str, Curves]:
    """Lineal path of ``phase`` over a label volume ``[Z, Y, X]``'s slices in each plane."""
    vol = _volume(volume)
    return {p: lineal_path_images(label_volume_to_images(vol, p), phase, max_r)
            for p in PLANES}


def _volume(volume) -> np.ndarray:
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"expected a [z, y, x] label volume, got shape {vol.shape}")
    return vol


def relative_error(f: np.ndarray | Sequence[float], g: np.ndarray | Sequence[float]) -> float:
    """sum |f - g| / sum |g| over r = 0..R (METHOD.md Sec. 4); ``g`` is the reference.

    0 when both are all zero; inf when only the reference is.
    """
    f, g = np.asarray(f, dtype=np.float64), np.asarray(g, dtype=np.float64)
    if f.shape != g.shape:
        raise ValueError(f"curves differ in length: {f.shape} vs {g.shape}")
    diff, norm = np.abs(f - g).sum(), np.abs(g).sum()
    if norm == 0:
        return 0.0 if diff == 0 else float("inf")
    return float(diff / norm)

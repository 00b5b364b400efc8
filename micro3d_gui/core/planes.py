"""The three section planes and how 2D slices sit in a 3D volume.

Convention (METHOD.md Sec. 1): a volume is indexed ``[z, y, x]``; model tensors are
``[N, C, Z, Y, X]`` (N volumes, C channels). Image rows come first, columns second:

=====  ===========  ==========  =============  ==========================
plane  fixed axis   image rows  image columns  slice of ``vol[C, Z, Y, X]``
=====  ===========  ==========  =============  ==========================
xy     z            y           x              ``vol[:, k, :, :]``
xz     y            z           x              ``vol[:, :, k, :]``
yz     x            z           y              ``vol[:, :, :, k]``
=====  ===========  ==========  =============  ==========================

The functions work on NumPy arrays and torch tensors alike (only ``transpose``/``permute``
and ``reshape`` are used), so the sampler and the metrics share one definition.
"""
from __future__ import annotations

import numpy as np

PLANES: tuple[str, ...] = ("xy", "xz", "yz")
#: Condition label of each plane for the network; ``NULL_LABEL`` is the dropped condition.
PLANE_LABELS: dict[str, int] = {"xy": 0, "xz": 1, "yz": 2}
NULL_LABEL = 3
NUM_LABELS = 4

# Axis of [Z, Y, X] that each plane holds fixed, and the (rows, columns) axes of its images.
_FIXED = {"xy": 0, "xz": 1, "yz": 2}
_ROWS_COLS = {"xy": (1, 2), "xz": (0, 2), "yz": (0, 1)}


def check_plane(plane: str) -> str:
    if plane not in _FIXED:
        raise ValueError(f"unknown plane {plane!r}; expected one of {', '.join(PLANES)}")
    return plane


def fixed_axis(plane: str) -> int:
    """Index in ``(z, y, x)`` of the axis a plane holds fixed."""
    return _FIXED[check_plane(plane)]


def image_axes(plane: str) -> tuple[int, int]:
    """Indices in ``(z, y, x)`` of a plane's image rows and columns."""
    return _ROWS_COLS[check_plane(plane)]


def slice_shape(plane: str, shape: tuple[int, int, int]) -> tuple[int, int]:
    """(rows, columns) of the slices of a ``(Z, Y, X)`` box in ``plane``."""
    r, c = image_axes(plane)
    return shape[r], shape[c]


def num_slices(plane: str, shape: tuple[int, int, int]) -> int:
    return shape[fixed_axis(plane)]


def _transpose(a, perm):
    return a.permute(*perm) if hasattr(a, "permute") else a.transpose(perm)


def volume_to_slices(vol, plane: str):
    """Cut volumes ``[N, C, Z, Y, X]`` into the batch of a plane's slices.

    Returns ``[N * S, C, rows, cols]`` with S the number of slices; volume n's slice k is
    at batch index ``n * S + k``.
    """
    n, c, *box = vol.shape
    f = 2 + fixed_axis(plane)
    r, col = (2 + a for a in image_axes(plane))
    s = _transpose(vol, (0, f, 1, r, col))
    return s.reshape(n * box[f - 2], c, box[r - 2], box[col - 2])


def slices_to_volume(slices, plane: str, n: int, shape: tuple[int, int, int]):
    """Inverse of :func:`volume_to_slices`: ``[N * S, C, rows, cols]`` -> ``[N, C, Z, Y, X]``."""
    f = fixed_axis(plane)
    r, col = image_axes(plane)
    c = slices.shape[1]
    s = slices.reshape(n, shape[f], c, shape[r], shape[col])
    # s has axes (n, f, c, r, col); invert the permutation (0, 2+f, 1, 2+r, 2+col).
    perm = (0, 2 + f, 1, 2 + r, 2 + col)
    inverse = [0] * 5
    for i, p in enumerate(perm):
        inverse[p] = i
    out = _transpose(s, tuple(inverse))
    return out.contiguous() if hasattr(out, "contiguous") else out


def label_volume_to_images(labels, plane: str):
    """A label volume ``[Z, Y, X]`` -> its stack of plane images ``[S, rows, cols]``."""
    return volume_to_slices(labels[None, None], plane)[:, 0]


def volume_plane_images(volume: np.ndarray, step: int = 1) -> dict[str, list[np.ndarray]]:
    """Cut a volume ``[Z, Y, X]`` into its three plane sets, every ``step``-th slice.

    ``xy`` gets Z images ``[Y, X]``, ``xz`` Y images ``[Z, X]``, ``yz`` X images ``[Z, Y]``
    (fewer with ``step > 1``), each a contiguous copy with the volume's dtype.
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"expected a [z, y, x] volume, got shape {vol.shape}")
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    return {p: [np.ascontiguousarray(im) for im in label_volume_to_images(vol, p)[::step]]
            for p in PLANES}

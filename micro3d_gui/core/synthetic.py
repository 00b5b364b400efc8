"""Synthetic anisotropic materials with a known 3D truth (seeded, deterministic)."""
from __future__ import annotations

import numpy as np

from .planes import PLANES, label_volume_to_images


def lamellae(shape: tuple[int, int, int], axis: int = 2, mean_thickness: float = 4.0,
             fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """Layers normal to ``axis`` (0 = z, 1 = y, 2 = x) of random thickness.

    Returns uint8 labels ``[Z, Y, X]``: phase 1 layers take about ``fraction`` of the
    volume; thicknesses are geometric with the given mean (in voxels).
    """
    rng = np.random.default_rng(seed)
    n = shape[axis]
    profile = np.zeros(n, dtype=np.uint8)
    pos, phase = 0, int(rng.random() < fraction)
    while pos < n:
        mean = mean_thickness * (fraction if phase else 1 - fraction) * 2
        width = max(1, int(rng.geometric(1.0 / max(mean, 1.0))))
        profile[pos:pos + width] = phase
        pos += width
        phase = 1 - phase
    view = [1, 1, 1]
    view[axis] = n
    return np.broadcast_to(profile.reshape(view), shape).copy()


def plane_images(volume: np.ndarray, step: int = 1) -> dict[str, list[np.ndarray]]:
    """Every ``step``-th slice of a label volume ``[Z, Y, X]`` in each plane, as 2D images."""
    return {p: list(label_volume_to_images(volume, p)[::step]) for p in PLANES}

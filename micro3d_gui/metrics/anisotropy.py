"""Simple anisotropy measures of a label volume ``[z, y, x]``."""
from __future__ import annotations

import numpy as np

AXES = ("z", "y", "x")


def transition_rate(volume: np.ndarray) -> dict[str, float]:
    """Fraction of neighbouring voxel pairs along z, y and x whose phases differ.

    Lamellae normal to x give a high rate along x and zero along y and z.
    """
    vol = np.asarray(volume)
    return {name: float((np.diff(vol, axis=a) != 0).mean()) if vol.shape[a] > 1 else 0.0
            for a, name in enumerate(AXES)}


"""Volume (area) fractions of phases in label volumes and label images."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def volume_fractions(labels: np.ndarray | Sequence[np.ndarray], num_phases: int) -> np.ndarray:
    """Fraction of voxels (pixels) in each phase, ``[K]`` floats summing to 1.

    ``labels`` is a label volume ``[Z, Y, X]``, an image ``[H, W]``, a stack, or a list of
    label arrays of any shapes (pooled: every voxel counts once). Labels must be
    ``0..num_phases-1``.
    """
    arrays = [np.asarray(labels)] if isinstance(labels, np.ndarray) else \
        [np.asarray(a) for a in labels]
    counts = np.zeros(num_phases, dtype=np.int64)
    for a in arrays:
        if a.size == 0:
            continue
        if a.dtype.kind not in "iub" or a.min() < 0 or a.max() >= num_phases:
            raise ValueError(f"labels must be integers 0..{num_phases - 1}, got values "
                             f"{a.min()}..{a.max()} ({a.dtype})")
        counts += np.bincount(a.ravel().astype(np.int64), minlength=num_phases)
    total = counts.sum()
    if total == 0:
        raise ValueError("no voxels given")
    return counts / total


def sample_fractions(volumes: np.ndarray | Sequence[np.ndarray], num_phases: int) -> np.ndarray:
    """Volume fractions of each sample: ``[N, K]`` for N label volumes (``[N, Z, Y, X]``)."""
    return np.stack([volume_fractions(v, num_phases) for v in volumes])


def fraction_summary(volumes: np.ndarray | Sequence[np.ndarray],
                     num_phases: int) -> dict[str, dict[str, float]]:
    """Distribution over samples of each phase's volume fraction (METHOD.md Sec. 4).

    ``{phase (str): {"median", "q25", "q75", "min", "max", "mean", "std"}}`` over the N
    volumes (``std`` is the population standard deviation; 0 for one volume).
    """
    f = sample_fractions(volumes, num_phases)
    out = {}
    for k in range(num_phases):
        v = f[:, k]
        q25, med, q75 = np.percentile(v, [25, 50, 75])
        out[str(k)] = {"median": float(med), "q25": float(q25), "q75": float(q75),
                       "min": float(v.min()), "max": float(v.max()),
                       "mean": float(v.mean()), "std": float(v.std())}
    return out

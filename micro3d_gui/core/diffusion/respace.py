"""Respacing a schedule to S < T steps (improved-diffusion's ``space_timesteps``).

Keep a subsequence of steps and give it new betas so that abar at every kept step equals the
original abar there: beta'_j = 1 - abar[k_j] / abar[k_{j-1}]. The network is still called
with the original step index (``timestep_map``).
"""
from __future__ import annotations

import numpy as np

from .schedule import Schedule


def spaced_steps(num_steps: int, count: int) -> np.ndarray:
    """``count`` step indices evenly spread over ``0 .. num_steps-1``, always keeping both ends."""
    if not 1 <= count <= num_steps:
        raise ValueError(f"sampling steps must be between 1 and {num_steps}, got {count}")
    if count == 1:
        return np.array([num_steps - 1])
    return np.unique(np.round(np.linspace(0, num_steps - 1, count)).astype(np.int64))


def respace(schedule: Schedule, count: int) -> Schedule:
    """A schedule of ``count`` steps whose abar matches ``schedule``'s at the kept steps."""
    if count == schedule.num_steps:
        return schedule
    keep = spaced_steps(schedule.num_steps, count)
    abar = schedule.alphas_cumprod[keep]
    abar_prev = np.append(1.0, abar[:-1])
    return Schedule(1.0 - abar / abar_prev, timestep_map=schedule.timestep_map[keep],
                    prediction=schedule.prediction)

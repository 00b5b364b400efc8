"""The fraction condition of a slice being denoised: what its own phase fractions are.

A network with ``fraction_conditioning`` is trained told each crop's mean per channel (model
space, ``2 f - 1`` for a binary). When sampling, a slice's own mean is not known; telling
every slice the volume's target instead makes slices that are each one phase (lamellae seen
edge-on) impossible, and mixed regions grow across the layers. So each slice is told its
mean as the noisy latent already shows it, shrunk by how much noise there is:

    x_t = sqrt(abar) x0 + sqrt(1 - abar) eps   =>   m_hat = mean(x_t) / sqrt(abar)

is the slice's x0 mean plus Gaussian noise of variance ``(1 - abar) / (abar N)`` (N pixels).
With a prior of spread ``s`` (the std of the training crops' means in that plane), the
posterior mean is ``mu + w (m_hat - mu)``, ``w = s^2 / (s^2 + (1 - abar) / (abar N))``. The
volume's mean ``mu`` is the target: each volume's slices are centred on it, so at high noise
every slice is told the target and at low noise its own fraction, while the volume as a
whole is always told the target. Plain torch; no sampler state.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: The spread assumed for a plane without a measured one (no training images, or a checkpoint
#: saved before spreads were stored): the largest a mean of +-1 codes can have, so the slice
#: is told its own fraction as soon as the latent shows it.
UNKNOWN_SPREAD = 1.0


def slice_condition(x_t: torch.Tensor, abar: float, target: torch.Tensor,
                    spread: Sequence[float], groups: int = 1) -> torch.Tensor:
    """The fraction condition ``[B, C]`` of slices ``x_t [B, C, H, W]`` at noise ``abar``.

    ``target [C]``: the mean per channel the volume should have (model space); ``spread
    [C]``: the std of a slice's mean around it (model space); ``groups``: the batch holds
    that many volumes' slices, volume ``n``'s at rows ``n * S .. (n + 1) * S - 1``, each
    centred on the target separately.
    """
    b, c, h, w = x_t.shape
    if b % groups:
        raise ValueError(f"{b} slices do not split into {groups} volumes")
    seen = x_t.float().mean(dim=(2, 3)) / float(np.sqrt(abar))  # [B, C]
    noise_var = (1.0 - abar) / (abar * h * w)
    s2 = torch.as_tensor(spread, dtype=torch.float32, device=x_t.device) ** 2
    weight = s2 / (s2 + noise_var)
    per_volume = seen.reshape(groups, b // groups, c)
    centred = per_volume - per_volume.mean(dim=1, keepdim=True)
    return (target.to(x_t.device).float().reshape(1, 1, c) + weight * centred).reshape(b, c)


def crop_mean_spread(images: Sequence[torch.Tensor], crop: int) -> list[float]:
    """Std per channel ``[C]`` of the means of the non-overlapping ``crop`` x ``crop`` tiles
    of encoded images ``[C, H, W]`` (model space); images smaller than a tile count whole.
    The prior of :func:`slice_condition` for the plane these images show."""
    means = []
    for im in images:
        c, h, w = im.shape
        th, tw = min(crop, h), min(crop, w)
        rows, cols = h // th, w // tw
        tiles = im[:, :rows * th, :cols * tw].reshape(c, rows, th, cols, tw)
        means.append(tiles.float().mean(dim=(2, 4)).reshape(c, -1))
    pooled = torch.cat(means, dim=1)
    if pooled.shape[1] < 2:
        return [UNKNOWN_SPREAD] * pooled.shape[0]
    return pooled.std(dim=1).tolist()


def plane_spreads(summary: dict | None, planes: Sequence[str], channels: int
                  ) -> dict[str, list[float]]:
    """Each plane's spread from a checkpoint's data summary (``crop_mean_spread`` per
    plane), :data:`UNKNOWN_SPREAD` where it has none."""
    summary = summary or {}
    return {p: list(summary.get(p, {}).get("crop_mean_spread", [UNKNOWN_SPREAD] * channels))
            for p in planes}

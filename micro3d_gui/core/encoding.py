"""Phase labels <-> model space (METHOD.md Sec. 1).

Binary material (K = 2): one channel, phase 1 at +1 and phase 0 at -1; decoded by the sign.
K >= 3 phases: K channels, one-hot scaled to [-1, +1]; decoded by argmax over channels.
"""
from __future__ import annotations

import numpy as np
import torch


def num_channels(num_phases: int) -> int:
    if num_phases < 2:
        raise ValueError(f"a material needs at least 2 phases, got {num_phases}")
    return 1 if num_phases == 2 else num_phases


def encode(labels, num_phases: int) -> torch.Tensor:
    """Integer labels ``[..., H, W]`` (any leading shape) -> float32 ``[..., C, H, W]``.

    The channel axis is inserted just before the last two (image) axes, so a batch of
    label images ``[B, H, W]`` becomes ``[B, C, H, W]``.
    """
    lab = torch.as_tensor(np.asarray(labels) if not torch.is_tensor(labels) else labels)
    lab = lab.long()
    if num_phases == 2:
        return (lab.to(torch.float32) * 2 - 1).unsqueeze(-3)
    one_hot = torch.nn.functional.one_hot(lab, num_phases).to(torch.float32)
    return (one_hot * 2 - 1).movedim(-1, -3)


def encoded_mean(fractions) -> list[float]:
    """Mean per channel ``[C]`` of encoded data whose phases 0..K-1 take ``fractions``."""
    k = len(fractions)
    codes = encode(np.arange(k).reshape(k, 1, 1), k)[:, :, 0, 0]  # [K, C]: each phase's code
    weights = torch.as_tensor(fractions, dtype=torch.float32)[:, None]
    return (weights * codes).sum(dim=0).tolist()


def decode(x: torch.Tensor, num_phases: int) -> torch.Tensor:
    """Model-space ``[..., C, H, W]`` (or ``[..., C, Z, Y, X]`` with ``channel_axis``) -> uint8 labels.

    The channel axis is the one at ``-3`` for images; for volumes use :func:`decode_volume`.
    """
    return _decode_along(x, num_phases, dim=-3)


def decode_volume(x: torch.Tensor, num_phases: int) -> torch.Tensor:
    """Model-space volumes ``[N, C, Z, Y, X]`` -> uint8 labels ``[N, Z, Y, X]``."""
    return _decode_along(x, num_phases, dim=1)


def _decode_along(x: torch.Tensor, num_phases: int, dim: int) -> torch.Tensor:
    if num_phases == 2:
        return (x.select(dim, 0) > 0).to(torch.uint8)
    return x.argmax(dim=dim).to(torch.uint8)


#: The live preview decodes at most about this many voxels (a 128^3 box); a larger box is
#: shown at every n-th voxel along each axis, so the viewer's update stays fast.
PREVIEW_MAX_VOXELS = 128 ** 3


def preview_stride(shape, max_voxels: int = PREVIEW_MAX_VOXELS) -> int:
    """The smallest stride n with ``prod(ceil(side / n)) <= max_voxels`` for ``(Z, Y, X)``."""
    n = 1
    while np.prod([-(-int(s) // n) for s in shape]) > max_voxels:
        n += 1
    return n


def decode_preview(x: torch.Tensor, num_phases: int,
                   max_voxels: int = PREVIEW_MAX_VOXELS) -> torch.Tensor:
    """Volume 0 of model-space ``[N, C, Z, Y, X]`` as uint8 labels ``[Z', Y', X']`` for a live
    view: every n-th voxel (:func:`preview_stride`), all of them for boxes up to
    ``max_voxels``. Only the voxels shown are decoded."""
    n = preview_stride(x.shape[-3:], max_voxels)
    return decode_volume(x[:1, :, ::n, ::n, ::n], num_phases)[0]

"""Model checkpoints: plain data that ``torch.load(path, weights_only=True)`` opens.

A checkpoint holds everything needed to sample (model config and EMA weights, schedule,
number of phases) and to resume training (raw weights, optimizer, step, RNG state).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..io.atomic import atomic_path
from ..io.errors import CheckpointError
from .diffusion.schedule import Schedule, ScheduleConfig
from .diffusion.unet import UNet, UNetConfig

FORMAT = "micro3d-checkpoint"
VERSION = 1


def save_checkpoint(data: dict, path: str | os.PathLike) -> None:
    """Write ``data`` atomically (temp file + ``os.replace``)."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **data}, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint with ``weights_only=True``; :class:`CheckpointError` if unusable."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such model file; train one with 'micro3d train' first")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(
            f"{p}: not a readable Micro3D model ({type(exc).__name__}); "
            "it may be truncated or from another program"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a Micro3D model file")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"{p}: made by a newer Micro3D; update Micro3D to open it")
    return ckpt


def model_from_checkpoint(ckpt: dict, device: torch.device | str = "cpu",
                          ema: bool = True) -> UNet:
    """The U-Net of a checkpoint in eval mode, with EMA weights unless ``ema=False``."""
    model = UNet(UNetConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["ema"] if ema and "ema" in ckpt else ckpt["model"])
    return model.to(device).eval()


def schedule_from_checkpoint(ckpt: dict) -> Schedule:
    return Schedule.from_config(ScheduleConfig(**ckpt["schedule_config"]))

"""Bounds on the numbers a user gives that no memory model covers: the random seed (the
range the random generators take) and the processes of a run (the devices this machine
has). The bounds that memory sets (the box and count of ``sample``, the batch of
``train``) are in :mod:`.memory`, checked against the free memory before anything big is
allocated.

Each check raises :class:`~micro3d_gui.errors.InputError` naming the option and the range.
"""
from __future__ import annotations

import os

import torch

from ..errors import InputError

#: What ``torch.Generator.manual_seed`` takes (a signed or an unsigned 64-bit integer);
#: training and sampling seed their draws with it, and the seed is stored in the model.
SEED_RANGE = (-(1 << 63), (1 << 64) - 1)


def check_seed(seed: int, option: str = "--seed") -> int:
    """``seed`` if torch's generators take it, else InputError naming ``option``."""
    low, high = SEED_RANGE
    if not low <= int(seed) <= high:
        raise InputError(f"{option} {seed}: must be a whole number from {low} to {high} "
                         "(the random generator's range); e.g. --seed 0")
    return int(seed)


def max_processes(device: torch.device | str) -> int:
    """Processes one machine can run a training on: one per GPU on CUDA, else one per CPU
    core."""
    device = torch.device(device)
    if device.type == "cuda":
        return max(1, torch.cuda.device_count())
    return max(1, os.cpu_count() or 1)


def check_processes(nproc: int, device: torch.device | str, option: str = "--nproc") -> int:
    """``nproc`` if this machine has a device (GPU, or CPU core) for each, else InputError
    naming ``option`` and the most it can run (more would only start competing copies)."""
    most = max_processes(device)
    if nproc > most:
        what = "GPUs" if torch.device(device).type == "cuda" else "CPU cores"
        raise InputError(f"{option} {nproc}: this machine has {most} {what}; choose "
                         f"{option} {most} or less")
    return nproc

"""Writing and reading label volumes ``[z, y, x]`` as TIFF stacks (one xy image per z)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile

from .atomic import atomic_path
from .errors import ImageReadError


def write_tiff(volume: np.ndarray, path: str | os.PathLike) -> None:
    """Write a uint8 label volume ``[Z, Y, X]`` atomically as an ImageJ-readable stack."""
    vol = np.ascontiguousarray(volume, dtype=np.uint8)
    if vol.ndim != 3:
        raise ValueError(f"expected a [z, y, x] volume, got shape {vol.shape}")
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, vol, imagej=True, metadata={"axes": "ZYX"})


def read_volume(path: str | os.PathLike) -> np.ndarray:
    """A 3D TIFF stack -> ``[Z, Y, X]`` array."""
    p = Path(path)
    try:
        vol = tifffile.imread(p)
    except Exception as exc:
        raise ImageReadError(f"{p}: cannot be read as a TIFF stack ({exc}); check the file") from None
    if vol.ndim != 3:
        raise ImageReadError(f"{p}: has shape {vol.shape}, not a 3D [z, y, x] stack")
    return vol

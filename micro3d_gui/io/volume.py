"""Writing and reading label volumes ``[z, y, x]`` as TIFF stacks (one xy image per z)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile

from .atomic import atomic_path
from .errors import ImageReadError


def write_tiff(volume: np.ndarray, path: str | os.PathLike,
               voxel_size: tuple[float, float, float] | None = None, unit: str = "um") -> None:
    """Write a uint8 label volume ``[Z, Y, X]`` atomically as an ImageJ-readable stack.

    With ``voxel_size`` ``(z, y, x)`` in ``unit`` the stack is calibrated: x and y as the
    resolution tags (pixels per unit = 1 / size), z as ImageJ's ``spacing``, the unit in the
    ImageJ description. Without it no calibration (and no unit) is invented.
    """
    vol = np.asarray(volume)  # a memmap stays one: pages are read and converted one by one
    if vol.ndim != 3:
        raise ValueError(f"expected a [z, y, x] volume, got shape {vol.shape}")
    metadata: dict = {"axes": "ZYX"}
    calibration: dict = {}
    if voxel_size is not None:
        sz, sy, sx = voxel_size
        calibration["resolution"] = (1.0 / sx, 1.0 / sy)
        metadata.update(spacing=sz, unit=str(unit))
    # Streamed page by page: a large volume (or one of another dtype) is never copied whole.
    pages = (np.ascontiguousarray(page, dtype=np.uint8) for page in vol)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, pages, shape=vol.shape, dtype=np.uint8, imagej=True,
                         metadata=metadata, **calibration)


def read_volume(path: str | os.PathLike) -> np.ndarray:
    """A 3D TIFF stack -> ``[Z, Y, X]`` array (one xy image per z), values as stored.

    An RGB(A) stack becomes grey (luminance; grey stored as RGB keeps its levels).
    """
    p = Path(path)
    if p.suffix.lower() not in (".tif", ".tiff"):
        raise ImageReadError(f"{p}: a volume must be a TIFF stack (.tif, .tiff); "
                             "save the stack as TIFF")
    if not p.is_file():
        raise ImageReadError(f"{p}: no such file; check the path")
    try:
        vol = tifffile.imread(p)
    except Exception as exc:
        raise ImageReadError(f"{p}: cannot be read as a TIFF stack ({exc}); the file may be "
                             "corrupt or truncated: export it again") from None
    if vol.ndim == 4 and vol.shape[-1] in (3, 4):
        rgb = vol[..., :3]
        if (rgb == rgb[..., :1]).all():
            vol = rgb[..., 0]
        else:
            from skimage.color import rgb2gray

            vol = rgb2gray(rgb)
    if vol.ndim != 3:
        raise ImageReadError(f"{p}: has shape {vol.shape}, not a 3D [z, y, x] stack; "
                             "import a single image as a plane micrograph instead")
    if min(vol.shape) < 2:
        raise ImageReadError(f"{p}: stack is only {'x'.join(map(str, vol.shape))} voxels "
                             "[z, y, x]; a volume needs at least 2 voxels along each axis")
    return vol

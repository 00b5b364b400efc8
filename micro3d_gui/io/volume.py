"""Writing label volumes ``[z, y, x]`` as TIFF stacks (one xy image per z), and reading
volumes in every format ``micro3d sample`` writes (TIFF stack, VTK ``.vti``, ``.npy``).

Reads are bounded: a file that declares more than :func:`max_volume_voxels` voxels is
refused before its data are decoded (a few kB of zlib can declare gigabytes).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import tifffile

from .atomic import atomic_path
from ..errors import ImageReadError

VOLUME_SUFFIXES = (".tif", ".tiff", ".vti", ".npy")
#: Default cap on a volume's voxels (2^31, 2 GiB as uint8); MICRO3D_MAX_VOLUME_VOXELS
#: changes it.
MAX_VOLUME_VOXELS = 1 << 31


def max_volume_voxels() -> int:
    return _limit("MICRO3D_MAX_VOLUME_VOXELS", MAX_VOLUME_VOXELS)


def _limit(variable: str, default: int) -> int:
    text = os.environ.get(variable)
    if not text:
        return default
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise ImageReadError(f"{variable}={text}: must be a positive whole number of "
                             "pixels; fix or unset it")
    return value


def check_size(path: Path, shape, limit: int, variable: str, what: str = "voxels") -> None:
    """:class:`ImageReadError` naming the file, its declared size and the limit when
    ``prod(shape)`` exceeds ``limit`` (before anything is decoded)."""
    n = 1
    for s in shape:
        n *= int(s)
    if n > limit:
        raise ImageReadError(
            f"{path}: declares {'x'.join(map(str, shape))} = {n:,} {what}, more than the "
            f"limit of {limit:,} (a guard against decompression bombs); if the file is "
            f"genuine, raise the limit with {variable}={n}")


def unreadable(path: Path, exc: Exception, kind: str) -> ImageReadError:
    """An :class:`ImageReadError` that says what went wrong: permission, a folder, or a
    file that is not (or no longer) a valid ``kind``."""
    if isinstance(exc, PermissionError):
        return ImageReadError(f"{path}: permission denied; make the file readable "
                              "(e.g. chmod +r) or copy it somewhere you can read")
    if isinstance(exc, IsADirectoryError):
        return ImageReadError(f"{path}: is a folder, not a file; give the file itself")
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError) and exc.errno:
        return ImageReadError(f"{path}: cannot be read ({exc.strerror}); check the disk "
                              "or copy the file again")
    article = "an" if kind[0] in "aeiou" else "a"
    return ImageReadError(f"{path}: cannot be read as {article} {kind} "
                          f"({type(exc).__name__}: {exc}); the file may be corrupt or "
                          "truncated: export it again or remove it")


def write_tiff(volume: np.ndarray, path: str | os.PathLike,
               voxel_size: tuple[float, float, float] | None = None, unit: str = "um") -> None:
    """Write a uint8 label volume ``[Z, Y, X]`` atomically as an ImageJ-readable stack.

    With ``voxel_size`` ``(z, y, x)`` in ``unit`` the stack is calibrated: x and y as the
    resolution tags (pixels per unit = 1 / size), z as ImageJ's ``spacing``, the unit in the
    ImageJ description. Without it no calibration (and no unit) is invented.

    The description also sets ImageJ's display range to 0 .. the largest label, so labels
    0 / 1 / ... show as black to white in Fiji / ImageJ (the values stay the labels).
    """
    vol = np.asarray(volume)  # a memmap stays one: pages are read and converted one by one
    if vol.ndim != 3:
        raise ValueError(f"expected a [z, y, x] volume, got shape {vol.shape}")
    # ImageJ's display range needs the largest label: one more read of a memmap, no copy
    top = max(1, int(vol.max())) if vol.size else 1
    metadata: dict = {"axes": "ZYX", "min": 0.0, "max": float(top)}
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


def _read_tiff(p: Path, limit: int) -> np.ndarray:
    with tifffile.TiffFile(p) as tif:
        if not tif.series:
            raise ImageReadError(f"{p}: holds no image data; export it again")
        check_size(p, tif.series[0].shape, limit, "MICRO3D_MAX_VOLUME_VOXELS")
        return tif.asarray()


def _read_npy(p: Path, limit: int) -> np.ndarray:
    try:
        vol = np.load(p, mmap_mode="r", allow_pickle=False)
    except ValueError:  # numpy's own text proposes allow_pickle=True: running the file's code
        raise ImageReadError(
            f"{p}: cannot be read as a NumPy array: it is not a .npy file of numbers (a "
            "file of Python objects is never loaded, as loading one can run code); save "
            "the volume with numpy.save of a numeric array, or as a TIFF stack") from None
    check_size(p, vol.shape, limit, "MICRO3D_MAX_VOLUME_VOXELS")
    return np.array(vol)


def _read_vti(p: Path, limit: int) -> np.ndarray:
    """A VTK image as ``micro3d sample`` / :func:`~.export.write_vti` write it: one cell
    per voxel, x fastest, in cell data ``phase`` (or the only cell / point array)."""
    with open(p, "rb") as fh:
        head = fh.read(4096).decode("latin-1")
    m = re.search(r'WholeExtent="\s*([-\d\s]+)"', head)
    if "<VTKFile" not in head or not m or len(m.group(1).split()) != 6:
        raise ImageReadError(f"{p}: not a VTK XML image (.vti); export it again")
    x0, x1, y0, y1, z0, z1 = map(int, m.group(1).split())
    check_size(p, (z1 - z0, y1 - y0, x1 - x0), limit, "MICRO3D_MAX_VOLUME_VOXELS")
    import pyvista as pv  # noqa: PLC0415  (VTK is a slow import)

    grid = pv.read(p)
    nx, ny, nz = grid.dimensions
    cells = (nz - 1, ny - 1, nx - 1)
    for data, shape in ((grid.cell_data, cells), (grid.point_data, (nz, ny, nx))):
        names = ["phase"] if "phase" in data else list(data.keys())
        if len(names) == 1:
            return np.asarray(data[names[0]]).reshape(shape)
    raise ImageReadError(f"{p}: holds no single 'phase' array of voxel labels; export the "
                         "labels as cell data named 'phase'")


_READERS = {".tif": _read_tiff, ".tiff": _read_tiff, ".npy": _read_npy, ".vti": _read_vti}


def read_volume(path: str | os.PathLike, min_side: int = 2) -> np.ndarray:
    """A 3D volume -> ``[Z, Y, X]`` array, values as stored: a TIFF stack (one xy image
    per z), a VTK image ``.vti`` (cell data ``phase``, as :mod:`.export` writes it) or a
    NumPy ``.npy`` (no pickles).

    An RGB(A) stack becomes grey (luminance; grey stored as RGB keeps its levels). A side
    below ``min_side`` voxels is refused (a volume to analyse needs 2; the app keeps the
    boxes it generated, which may be one slice thin).
    """
    p = Path(path)
    reader = _READERS.get(p.suffix.lower())
    if reader is None:
        raise ImageReadError(f"{p}: a volume must be a TIFF stack (.tif, .tiff), a VTK "
                             "image (.vti) or a NumPy array (.npy); save it as one of them")
    if p.is_dir():
        raise ImageReadError(f"{p}: is a folder, not a volume file; give the file itself")
    if not p.is_file():
        raise ImageReadError(f"{p}: no such file; check the path")
    kind = {".npy": "NumPy array", ".vti": "VTK image"}.get(p.suffix.lower(), "TIFF stack")
    try:
        vol = reader(p, max_volume_voxels())
    except ImageReadError:
        raise
    except Exception as exc:  # each reader raises its own types for a broken file
        raise unreadable(p, exc, kind) from None
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
    if min(vol.shape) < min_side:
        raise ImageReadError(f"{p}: stack is only {'x'.join(map(str, vol.shape))} voxels "
                             "[z, y, x]; a volume needs at least 2 voxels along each axis")
    return vol

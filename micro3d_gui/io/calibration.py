"""Voxel sizes as the volume writers store them: read back from a written file, and checked
before long work by writing one voxel with the writer itself.

The limits are the formats' own, found by the dry run rather than restated: a TIFF keeps x and
y as ``1 / size`` in two 32-bit integers (a rational), so 1e-300 or 1e10 cannot be stored; a
``.vti`` keeps doubles; a ``.npy`` sidecar is JSON. Sizes are ``(z, y, x)`` in ``unit``.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ExportError, OutputError

#: Significant digits a voxel size must keep through a file to count as stored.
STORED_DIGITS = 6


def read_voxel_size(path: str | os.PathLike) -> tuple[tuple[float, float, float], str]:
    """``((z, y, x), unit)`` as a volume file written by :mod:`.export` holds them (a
    ``.npy`` from its ``.npy.json`` sidecar)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile  # noqa: PLC0415

        with tifffile.TiffFile(p) as tif:
            page, meta = tif.pages[0], tif.imagej_metadata or {}
            x, y = (_size_of(page.tags[t].value) for t in ("XResolution", "YResolution"))
            return (float(meta.get("spacing", 1.0)), y, x), str(meta.get("unit", ""))
    if suffix == ".vti":
        import pyvista as pv  # noqa: PLC0415  (VTK is a slow import)

        grid = pv.read(p)
        sx, sy, sz = grid.spacing
        unit = grid.field_data["unit"][0] if "unit" in grid.field_data else ""
        return (sz, sy, sx), str(unit)
    with open(f"{os.fspath(p)}.json", encoding="utf-8") as fh:
        data = json.load(fh)
    return tuple(float(v) for v in data["voxel_size"]), str(data["unit"])


def _size_of(resolution) -> float:
    """A TIFF resolution (pixels per unit, as a rational) -> the size of a pixel."""
    num, den = resolution
    return den / num if num else math.inf


def check_voxel_size(suffix: str, voxel_size: Sequence[float], unit: str) -> None:
    """:class:`~micro3d_gui.errors.ExportError` naming the option unless a ``suffix`` file
    written by the exporter holds ``unit`` and ``voxel_size`` (to :data:`STORED_DIGITS`
    digits): one voxel is written to the temp folder and read back, first with a unit size
    (to tell a bad unit from a bad size), then with the size given."""
    size = tuple(float(v) for v in voxel_size)
    plain = _stored(suffix, (1.0, 1.0, 1.0), unit)
    if plain is not None and plain[1] != unit:
        back = f"stores it as {plain[1]!r}" if plain[1] is not None else "cannot store it"
        raise ExportError(f"--unit {unit!r}: a {suffix} file {back}; give a plain unit such "
                          "as um or nm")
    stored = _stored(suffix, size, unit)
    if stored is not None and (stored[0] is None or not all(
            math.isclose(a, b, rel_tol=10.0 ** -STORED_DIGITS)
            for a, b in zip(stored[0], size))):
        back = "" if stored[0] is None else (" (it would read back as "
                                             f"{' '.join(f'{v:g}' for v in stored[0])})")
        raise ExportError(f"--voxel-size {' '.join(f'{v:g}' for v in size)}: a {suffix} file "
                          f"cannot store this voxel size{back}; give it in a --unit that "
                          "brings the numbers nearer 1 (e.g. nm instead of um), or write "
                          "another format")


def _stored(suffix: str, size: tuple[float, float, float], unit: str):
    """``(size, unit)`` as a one-voxel ``suffix`` file written with them reads back,
    ``(None, None)`` when the writer refuses them, None when the temp folder cannot be
    written (nothing is learnt: the real write will tell)."""
    from .export import export_volume, write_voxel_sidecar  # noqa: PLC0415

    try:
        with tempfile.TemporaryDirectory(prefix="micro3d-voxel-size-") as folder:
            probe = Path(folder) / f"probe{suffix}"
            try:
                export_volume(np.zeros((1, 1, 1), np.uint8), probe, voxel_size=size, unit=unit)
                if suffix == ".npy":
                    write_voxel_sidecar(probe, size, unit)
                return read_voxel_size(probe)
            except OutputError as exc:
                if isinstance(exc.__cause__, OSError):
                    return None  # the file system failed, not the writer
                return None, None
            except Exception:  # noqa: BLE001  (the writer refused the values)
                return None, None
    except OSError:
        return None

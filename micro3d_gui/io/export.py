"""Export label volumes ``[z, y, x]`` (VTK image, ImageJ TIFF stack, NumPy) and reports
(JSON, CSV). Every write is atomic (:func:`micro3d_gui.io.atomic.atomic_path`).

``voxel_size`` is always given in array order ``(z, y, x)``, in ``unit`` per voxel; the
unit :data:`VOXEL_UNIT` means "no physical size known" (spacing 1 voxel).

JSON reports follow one convention for numbers JSON cannot hold: a non-finite value is
written as ``null`` and its dotted key path goes into the report's top-level
``"non_finite"`` table with the reason (``"inf"``, ``"-inf"`` or ``"nan"``, and for a
tortuosity what it means), e.g. ``"non_finite": {"tortuosity.0.x": "inf: phase 0 does not
connect the two faces along x"}``. CSV reports hold only numbers (``inf``/``nan`` as
Python and pandas read them); texts such as input paths are in the JSON only.
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path
from ..errors import ExportError

#: The unit of a volume written without a voxel size: spacing 1, no physical size claimed.
VOXEL_UNIT = "voxel"


def _labels(volume: np.ndarray, convert: bool = True) -> np.ndarray:
    """The volume checked as phase labels; as contiguous uint8 (a copy only when it is not
    already) unless ``convert`` is False (for writers that convert page by page)."""
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ExportError(f"only a 3D [z, y, x] volume can be exported, got shape {vol.shape}")
    if vol.size and (not np.issubdtype(vol.dtype, np.integer) and vol.dtype != bool
                     or vol.min() < 0 or vol.max() > 255):
        raise ExportError("the volume must hold integer phase labels 0..255 to be exported")
    return np.ascontiguousarray(vol, dtype=np.uint8) if convert else vol


def _voxel_size(voxel_size: Sequence[float]) -> tuple[float, float, float]:
    try:
        vs = tuple(float(v) for v in voxel_size)
    except (TypeError, ValueError):
        vs = ()
    if len(vs) != 3 or not all(math.isfinite(v) and v > 0 for v in vs):
        raise ExportError(f"voxel size {voxel_size!r} must be three positive numbers (z, y, x)")
    return vs  # type: ignore[return-value]


def write_vti(volume: np.ndarray, path: str | os.PathLike,
              voxel_size: Sequence[float] = (1.0, 1.0, 1.0), unit: str = "um") -> None:
    """VTK XML image (``.vti``): one cell per voxel, cell data ``phase`` (uint8), spacing
    from ``voxel_size`` (z, y, x), origin 0, and the unit as field data ``unit``.

    VTK orders points x fastest, which is the C order of a ``[z, y, x]`` array, and its
    spacing is (x, y, z): voxel (z, y, x) is cell ``x + X * (y + Y * z)``.
    """
    import pyvista as pv  # noqa: PLC0415  (VTK is a slow import; only when exporting)

    vol = _labels(volume)
    sz, sy, sx = _voxel_size(voxel_size)
    nz, ny, nx = vol.shape
    grid = pv.ImageData(dimensions=(nx + 1, ny + 1, nz + 1), spacing=(sx, sy, sz))
    grid.cell_data["phase"] = vol.ravel(order="C")
    grid.field_data["unit"] = np.array([str(unit)])
    # pyvista picks the writer from the suffix, so the temporary file keeps ".vti". zlib:
    # VTK compresses block by block, and label volumes shrink many times over. VTK only
    # logs a failed write (a full disk leaves an empty file): the catcher makes it an error,
    # which the atomic writer reports, and keeps VTK's many-line log off the terminal.
    quiet = pv.vtk_verbosity("off") if hasattr(pv, "vtk_verbosity") else nullcontext()
    with atomic_path(path, suffix=".part.vti") as tmp, quiet, \
            pv.VtkErrorCatcher(raise_errors=True, send_to_logging=False):
        grid.save(tmp, binary=True, compression="zlib")


def write_tiff_stack(volume: np.ndarray, path: str | os.PathLike,
                     voxel_size: Sequence[float] = (1.0, 1.0, 1.0), unit: str = "um") -> None:
    """ImageJ/Fiji TIFF stack, one xy page per z, calibrated with the voxel size (see
    :func:`micro3d_gui.io.volume.write_tiff`)."""
    from .volume import write_tiff  # noqa: PLC0415

    write_tiff(_labels(volume, convert=False), path, _voxel_size(voxel_size), unit)


def write_npy(volume: np.ndarray, path: str | os.PathLike,
              voxel_size: Sequence[float] | None = None, unit: str | None = None) -> None:
    """NumPy ``.npy`` of the uint8 ``[z, y, x]`` array (``voxel_size``/``unit`` are accepted
    for a uniform call but a .npy file has no place for them: see
    :func:`write_voxel_sidecar`)."""
    vol = _labels(volume)
    # Through a file handle: np.save would append ".npy" to the temporary name.
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, vol)


def voxel_sidecar_path(path: str | os.PathLike) -> Path:
    """The sidecar of a volume file with no place for its voxel size: ``<path>.json``."""
    return Path(f"{os.fspath(path)}.json")


def write_voxel_sidecar(path: str | os.PathLike, voxel_size: Sequence[float],
                        unit: str = "um") -> Path:
    """The voxel size of a file with no place for it (``.npy``) in ``<path>.json``:
    ``{"voxel_size": [z, y, x], "unit": ..., "axes": "zyx"}``; returns the sidecar path."""
    sidecar = voxel_sidecar_path(path)
    data = {"voxel_size": list(_voxel_size(voxel_size)), "unit": str(unit), "axes": "zyx"}
    with atomic_path(sidecar) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    return sidecar


Writer = Callable[..., None]
EXPORT_FORMATS: dict[str, Writer] = {
    ".vti": write_vti,
    ".tif": write_tiff_stack,
    ".tiff": write_tiff_stack,
    ".npy": write_npy,
}


def export_volume(volume: np.ndarray, path: str | os.PathLike,
                  voxel_size: Sequence[float] = (1.0, 1.0, 1.0), unit: str = "um") -> Path:
    """Write ``volume`` in the format its suffix names (see :data:`EXPORT_FORMATS`);
    returns the path. An unknown suffix raises :class:`ExportError` listing the choices."""
    p = Path(path)
    writer = EXPORT_FORMATS.get(p.suffix.lower())
    if writer is None:
        choices = ", ".join(EXPORT_FORMATS)
        raise ExportError(f"{p}: cannot export to {p.suffix or 'a file without suffix'!r}; "
                          f"choose a file name ending in one of {choices}")
    writer(volume, p, voxel_size=voxel_size, unit=unit)
    return p


def _plain(value: Any) -> Any:
    """numpy scalars/arrays, paths and tuples -> JSON types (non-finite floats kept)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ExportError(f"a report value of type {type(value).__name__} cannot be written")


def _non_finite_reason(key: str, value: float) -> str:
    """``"inf"``, ``"-inf"`` or ``"nan"``, and for an infinite tortuosity what it means (the
    phase is the key's number next to ``tortuosity``, the axis its z/y/x after it)."""
    word = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    parts = key.split(".")
    if word != "inf" or "tortuosity" not in parts:
        return word
    i = parts.index("tortuosity")
    after, before = parts[i + 1:], parts[:i]
    phase = next((p for p in after if p.isdigit()), None) or \
        next((p for p in reversed(before) if p.isdigit()), None)
    axis = next((p for p in after if p in ("z", "y", "x")), None)
    if phase is None or axis is None:
        return f"{word}: a phase does not connect the two faces"
    return f"{word}: phase {phase} does not connect the two faces along {axis}"


def json_ready(report: Mapping) -> dict:
    """The report as strict-JSON data: non-finite numbers become ``null`` and are listed
    with their reason under ``"non_finite"`` (the module's convention)."""
    reasons: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(f"{prefix}.{k}" if prefix else k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(f"{prefix}.{i}" if prefix else str(i), v)
                    for i, v in enumerate(value)]
        if isinstance(value, float) and not math.isfinite(value):
            reasons[prefix] = _non_finite_reason(prefix, value)
            return None
        return value

    out = walk("", _plain(report))
    if reasons:
        out["non_finite"] = reasons
    return out


def report_json(report: Mapping) -> str:
    """The report as pretty, strict JSON text (see :func:`json_ready`), newline-ended."""
    return json.dumps(json_ready(report), indent=2, allow_nan=False) + "\n"


def flatten_report(report: Mapping) -> list[tuple[str, Any]]:
    """Nested dicts/lists -> ``[(key path, value)]`` with keys joined by "." and list
    items by their index, e.g. ``("diffusivity.0.tortuosity.z", 1.42)``."""
    rows: list[tuple[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(f"{prefix}.{i}" if prefix else str(i), v)
        else:
            rows.append((prefix, value))

    walk("", _plain(report))
    return rows


def numeric_rows(report: Mapping) -> list[tuple[str, float | int]]:
    """The rows of :func:`flatten_report` that hold numbers (booleans as 0/1); texts
    (paths, names) and empty values are left to the JSON."""
    rows = []
    for key, value in flatten_report(report):
        if isinstance(value, bool):
            rows.append((key, int(value)))
        elif isinstance(value, (int, float)):
            rows.append((key, value))
    return rows


def write_report(report: Mapping, json_path: str | os.PathLike | None = None,
                 csv_path: str | os.PathLike | None = None) -> None:
    """Write a (nested) report dict as pretty JSON (:func:`report_json`) and/or as a flat
    two-column CSV of its numbers (``key,value`` header, rows from :func:`numeric_rows`)."""
    if json_path is None and csv_path is None:
        raise ValueError("write_report needs json_path, csv_path or both")
    if json_path is not None:
        text = report_json(report)
        with atomic_path(json_path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
    if csv_path is not None:
        rows = numeric_rows(report)
        with atomic_path(csv_path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(("key", "value"))
            out.writerows(rows)

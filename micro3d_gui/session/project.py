"""Project folders: work that survives a restart (no Qt).

A project folder holds ``project.json``, ``volumes/volume_000.npy, ...`` (the generated
uint8 label volumes ``[z, y, x]``), the model (``models/``, see
:mod:`micro3d_gui.io.project_files`) and the last analysis
(``analysis/evaluation.json``, :mod:`micro3d_gui.metrics.saved`). ``project.json`` keeps
the Data panel's state (plane image paths, per-plane options, segmentation config), the
model file, the train and generate settings and the view. Paths inside the folder are
stored relative to it, so a project folder can be moved or copied. Every file is written
atomically, the volumes first and ``project.json`` last, so an interrupted save leaves the
previous project readable. A file that has gone missing does not stop a project opening:
:attr:`Project.notes` names it. The recent projects list is the Qt layer's
(:mod:`micro3d_gui.qt.project`).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path
from ..io.json_file import MAX_JSON_DEPTH, SchemaMismatch, check_value, json_depth, read_json
from ..io.project_files import absolute_path, map_paths, relative_path
from ..io.volume import read_volume
from ..metrics.report import Evaluation
from ..metrics.saved import evaluation_from_json, evaluation_to_json
from ..errors import InputError
from ..io.project_schema import ProjectFile

PROJECT_FILE = "project.json"
VOLUME_DIR = "volumes"
ANALYSIS_FILE = "analysis/evaluation.json"
FORMAT = "micro3d-project"
VERSION = 1


class ProjectError(InputError):
    """A folder that is not a readable Micro3D project (the message names the file)."""


@dataclass
class Project:
    """Everything a project folder stores. ``volumes`` are ``[z, y, x]`` uint8 labels."""

    data: dict = field(default_factory=dict)       # DataPanel.state()
    train: dict = field(default_factory=dict)      # TrainSettings as a dict
    generate: dict = field(default_factory=dict)   # GenerateSettings as a dict
    model_path: str = ""
    volumes: list[np.ndarray] = field(default_factory=list)
    num_phases: int | None = None
    view: dict = field(default_factory=dict)       # {"mode": ..., "volume": index}
    analysis: Evaluation | None = None             # AnalysisPanel.evaluation()
    #: When read: a sentence per file the project names that is missing (not saved).
    notes: list[str] = field(default_factory=list)


def volume_path(folder: str | os.PathLike, index: int) -> Path:
    return Path(folder) / VOLUME_DIR / f"volume_{index:03d}.npy"


def save_project(folder: str | os.PathLike, project: Project) -> Path:
    """Write ``project`` into ``folder`` (created if needed); returns ``project.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, vol in enumerate(project.volumes):
        vol = np.asarray(vol)
        if vol.ndim != 3 or vol.dtype != np.uint8:
            raise ValueError(f"volume {i} must be uint8 [z, y, x], got {vol.dtype} {vol.shape}")
        path = volume_path(folder, i)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, vol)  # a file object: np.save would add '.npy' to a path
        names.append(path.relative_to(folder).as_posix())
    if project.analysis is not None:
        with atomic_path(folder / ANALYSIS_FILE) as tmp:
            tmp.write_text(evaluation_to_json(project.analysis), encoding="utf-8")
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "data": project.data,
        "train": dict(project.train),
        "generate": dict(project.generate),
        "model_path": project.model_path or "",
        "volumes": names,
        "num_phases": project.num_phases,
        "view": project.view,
        "analysis": ANALYSIS_FILE if project.analysis is not None else None,
    }
    map_paths(meta, lambda p: relative_path(p, folder))
    target = folder / PROJECT_FILE
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, default=_json_default), encoding="utf-8")
    # Volumes of an earlier save beyond the current count are stale.
    for old in (folder / VOLUME_DIR).glob("volume_*.npy"):
        if old.relative_to(folder).as_posix() not in names:
            old.unlink()
    return target


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def project_schema(train: type = dict, generate: type = dict) -> type:
    """The types of ``project.json``'s fields (io.json_file's schema): :class:`ProjectFile`
    with its Train and Generate sections typed by the settings dataclasses ``train`` and
    ``generate`` (``dict``: not checked)."""
    return dataclasses.make_dataclass("ProjectSchema", [
        ("train", train), ("generate", generate)], bases=(ProjectFile,))


def load_project(folder: str | os.PathLike, schema: type = ProjectFile) -> Project:
    """Read a project folder; :class:`ProjectError` naming the file (and the field) when
    it is unusable: every field is checked against its type in ``schema`` (see
    :func:`project_schema`) before the app takes it, and the volumes are read with the
    voxel limit of every volume (MICRO3D_MAX_VOLUME_VOXELS)."""
    folder = Path(folder)
    path = folder / PROJECT_FILE
    if not path.is_file():
        raise ProjectError(f"{folder}: not a Micro3D project (no {PROJECT_FILE}); choose a "
                           "folder saved with File > Save project")
    meta = read_json(path, ProjectError, "the file may be damaged")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ProjectError(f"{path}: not a Micro3D project file")
    if isinstance(meta.get("version"), int) and meta["version"] > VERSION:
        raise ProjectError(f"{path}: made by a newer Micro3D; update Micro3D to open it")
    try:  # every field's type, before the app takes any of them
        check_value(meta, schema)
    except SchemaMismatch as exc:
        raise ProjectError(f"{path}: {exc.describe()}; correct it in a text editor (or "
                           "remove the field to take the default)") from None
    map_paths(meta, lambda p: absolute_path(p, folder))
    volumes, notes = [], []
    for name in meta.get("volumes", []):
        vpath = folder / name
        if not vpath.exists():
            notes.append(f"{vpath}: this generated volume is missing; it was left out")
            continue
        try:
            vol = read_volume(vpath, min_side=1)  # bounded as every volume read
        except InputError as exc:
            raise ProjectError(f"{exc}; or delete it from {path.name}'s 'volumes' list"
                               ) from None
        k = meta.get("num_phases")
        if vol.dtype.kind not in "iub" or vol.min() < 0 or (k and vol.max() >= k):
            raise ProjectError(
                f"{vpath}: holds values {vol.min():g}..{vol.max():g}, not phase labels "
                f"0..{(k or 256) - 1} (the project's num_phases is {k}); restore the volume "
                f"or delete it from {path.name}'s 'volumes' list")
        volumes.append(vol.astype(np.uint8, copy=False))
    model = meta.get("model_path") or ""
    if model and not Path(model).is_file():
        notes.append(f"{model}: the project's model file is missing; load it with File > "
                     "Load model... or train again")
    analysis = None
    if meta.get("analysis"):
        apath = folder / meta["analysis"]
        try:
            text = apath.read_text(encoding="utf-8")
            if json_depth(text) > MAX_JSON_DEPTH:  # Python's parser would recurse out
                raise ValueError(f"it nests more than {MAX_JSON_DEPTH} levels deep")
            analysis = evaluation_from_json(text)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            notes.append(f"{apath}: the saved analysis cannot be read ({exc}); "
                         "analyse again")
    return Project(
        data=meta.get("data") or {},
        train=meta.get("train") or {},
        generate=meta.get("generate") or {},
        model_path=meta.get("model_path") or "",
        volumes=volumes,
        num_phases=meta.get("num_phases"),
        view=meta.get("view") or {},
        analysis=analysis,
        notes=notes,
    )

"""The files a project folder refers to, kept portable (no Qt).

``project.json`` names files in four places: the model (``model_path``, and the Train and
Generate settings' ``model_path``), the micrographs (``data.planes.<plane>.paths``) and the
reference volume (``data.volume.path``). A file inside the project folder is stored
relative to it (POSIX separators), so the folder can be moved, copied or shared; a file
outside is stored as its absolute path. The model is the project's own work, so a save
copies a model that lives elsewhere into ``models/`` (:func:`copy_into`); micrographs may be
large and are referenced where they are.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from .atomic import atomic_path

#: Where a save copies a model that lives outside the project folder.
MODEL_DIR = "models"


def relative_path(path: str, folder: str | os.PathLike) -> str:
    """``path`` relative to ``folder`` when inside it (portable), else absolute."""
    if not path:
        return path
    p = Path(path).resolve()
    return p.relative_to(Path(folder).resolve()).as_posix() if is_inside(p, folder) else str(p)


def absolute_path(path: str, folder: str | os.PathLike) -> str:
    """A stored path as a usable one: relative ones are inside ``folder``."""
    if not path:
        return path
    p = Path(path)
    return str(p if p.is_absolute() else Path(folder) / p)


def map_paths(meta: dict, fn: Callable[[str], str]) -> None:
    """Apply ``fn`` to every file path of a ``project.json`` dict, in place (entries of an
    unexpected shape are left as they are: the loader's checks report them)."""
    if isinstance(meta.get("model_path"), str):
        meta["model_path"] = fn(meta["model_path"])
    for key in ("train", "generate"):
        section = meta.get(key)
        if isinstance(section, dict) and isinstance(section.get("model_path"), str):
            section["model_path"] = fn(section["model_path"])
    data = meta.get("data")
    if not isinstance(data, dict):
        return
    planes = data.get("planes")
    for plane in (planes.values() if isinstance(planes, dict) else ()):
        if isinstance(plane, dict) and isinstance(plane.get("paths"), list):
            plane["paths"] = [fn(p) if isinstance(p, str) else p for p in plane["paths"]]
    volume = data.get("volume")
    if isinstance(volume, dict) and isinstance(volume.get("path"), str):
        volume["path"] = fn(volume["path"])


def is_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` is ``folder`` or below it, links resolved."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def copy_into(path: str | os.PathLike, folder: str | os.PathLike,
              subdir: str = MODEL_DIR) -> Path:
    """``path`` when it is inside ``folder``; else a copy of it in ``folder/subdir`` (the
    same name, or ``name_2``, ... when another file has it), written atomically."""
    src = Path(path)
    if is_inside(src, folder):
        return src
    target_dir = Path(folder) / subdir
    target_dir.mkdir(parents=True, exist_ok=True)
    target, n = target_dir / src.name, 1
    while target.exists() and not _same_bytes(src, target):
        n += 1
        target = target_dir / f"{src.stem}_{n}{src.suffix}"
    if not target.exists():
        with atomic_path(target) as tmp:
            shutil.copyfile(src, tmp)
    return target


def _same_bytes(a: Path, b: Path) -> bool:
    """Same size and bytes (a model copied in by an earlier save)."""
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:
        return False

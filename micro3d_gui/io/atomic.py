"""Atomic file writes: write a temp file beside the target, fsync, then ``os.replace``.

A crash or a full disk mid-write leaves the previous file intact, never a truncated one.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path to write to; it replaces ``path`` when the block succeeds.

    ``suffix`` ends the temporary name, for writers that choose the format by it
    (e.g. ``".part.vti"`` for pyvista).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_file(target.parent, f".{target.name}.", suffix)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _new_file(folder: Path, prefix: str, suffix: str) -> Path:
    """Create an empty file with a fresh name; unlike ``mkstemp`` (always 0600) it gets the
    mode a plain ``open()`` would (0666 less the umask), so exports are not private."""
    while True:
        path = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return path
        except FileExistsError:
            continue

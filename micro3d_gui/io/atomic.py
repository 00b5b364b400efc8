"""Atomic file writes: write a temp file beside the target, fsync, ``os.replace``, then fsync
the folder (so the rename itself survives a power cut).

A crash or a full disk mid-write leaves the previous file intact, never a truncated one. Every
failure of the write, whatever the writer raises (an OSError, or torch's C++ writer's
RuntimeError on a full disk), becomes one :class:`OutputError` naming the target: the error
callers answer by saving the work elsewhere. A temp file left by a killed writer
(``kill -9``) is removed by the next write of the same target. Missing folders are created
(by every writer alike); :func:`check_output` tells beforehand whether a path can be
written at all, so that long work is never started for an output that cannot be saved.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError, OutputError


def check_output(path: str | os.PathLike, flag: str = "--out") -> Path:
    """:class:`OutputError` (one sentence naming ``flag``, the path and the fix) unless a
    file can be written at ``path``: not a folder, its nearest existing ancestor a folder
    we may create files in (missing folders below it are created at write time)."""
    p = Path(path)
    what = f"{flag} {p}" if flag else str(p)
    if p.is_dir():
        raise OutputError(f"{what}: is a folder; give a file name in it, e.g. "
                          f"{p / ('model.pt' if 'out' in flag else 'report.json')}")
    folder = p.parent
    while not folder.exists():
        if folder == folder.parent:
            break
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"{what}: {folder} is a file, not a folder; choose another path")
    try:  # os.access is not enough (root, read-only mounts, ACLs): really create a file
        probe = _new_file(folder, ".micro3d-write-test.", ".part")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"{what}: cannot write in the folder {folder} ({_reason(exc)}); "
                          "choose a folder you can write to") from None
    return p


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def write_failed(path: str | os.PathLike, exc: BaseException) -> OutputError:
    """The :class:`OutputError` for ``exc`` met while writing ``path``.

    A writer that is not an OSError (torch's C++ writer says "unexpected pos 576 vs 534"
    on a full disk) is told apart by the free space of the target's folder."""
    code = getattr(exc, "errno", None) if isinstance(exc, OSError) else None
    if code is None and _disk_full(Path(path).parent):
        code = errno.ENOSPC
    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    elif code == errno.ENOSPC:
        reason = os.strerror(errno.ENOSPC)
    else:
        detail = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {detail[0]}" if detail else type(exc).__name__
    fix = ("free some disk space" if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
           else "check the folder's permissions and free space")
    return OutputError(f"{path}: could not be written ({reason}); {fix} or choose "
                       "another path")


def _disk_full(folder: Path) -> bool:
    """Whether the file system of ``folder`` has no block left for an unprivileged write."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs on Windows
        return False
    return st.f_bavail == 0


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path to write to; it replaces ``path`` when the block succeeds.

    ``suffix`` ends the temporary name, for writers that choose the format by it
    (e.g. ``".part.vti"`` for pyvista). Any failure inside the block or of the file system
    (permission, full disk, a folder in the way, a writer's own error) becomes an
    :class:`OutputError` naming ``path``; input errors (:class:`InputError`) pass unchanged.
    """
    target = Path(path)
    tmp_path = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(target, suffix)
        tmp_path = _new_file(target.parent, f".{target.name}.{os.getpid()}-", suffix)
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
        _fsync_folder(target.parent)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001  (every writer failure is the same for the user)
        # diagnosed before the temp file goes: it may be what filled the disk
        raise write_failed(target, exc) from exc
    finally:
        if tmp_path is not None:
            with contextlib.suppress(OSError):
                tmp_path.unlink()


def remove_stale_parts(target: Path, suffix: str = ".part") -> list[Path]:
    """Delete temp files of ``target`` whose writer process is gone (killed mid-write).

    A temp name is ``.<name>.<pid>-<12 hex><suffix>``; one whose pid still runs (another
    thread or process writing the same file now) is left alone. Returns the removed paths.
    """
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)-[0-9a-f]{{12}}"
                         rf"{re.escape(suffix)}$")
    removed = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m and not _running(int(m.group(1))):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process (or unknowable): keep its file
    return True


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; folders cannot be opened on Windows, where it is moot."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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

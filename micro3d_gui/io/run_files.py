"""One check of all the files a run reads and writes, before the work starts, and one rescue
of work that could not be written where asked.

A run names its inputs and outputs as ``(name, path)`` pairs, the name saying what the file
is to the user (``"--out"``, ``"the --xy micrograph"``). :func:`check_run_files` refuses an
output that cannot be written (:func:`~.atomic.check_output`), that is one of the inputs, or
that is another output of the same run: one of them would be overwritten. Paths are compared
as the file system sees them: relative paths and symlinks resolved, and two names of one
existing file (a hard link, a case-insensitive file system) found by ``os.path.samefile``.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ..errors import OutputError
from .atomic import check_output

NamedPath = tuple[str, "str | os.PathLike"]


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name one file (existing or to be created)."""
    try:
        if os.path.samefile(a, b):
            return True
    except (OSError, ValueError):  # one does not exist yet (or cannot be looked at)
        pass
    return _canonical(a) == _canonical(b)


def _canonical(path: str | os.PathLike) -> str:
    return os.path.normcase(os.path.realpath(os.path.abspath(path)))


def check_run_files(outputs: Iterable[NamedPath], inputs: Iterable[NamedPath] = (),
                    replaced: Sequence[str | os.PathLike] = ()) -> None:
    """:class:`~micro3d_gui.errors.OutputError` (one line: the option, the path, the fix)
    unless every output can be written and none is an input or an earlier output.

    ``outputs`` are ``(option, path)``, e.g. ``("--json", "r.json")``; ``inputs`` are
    ``(what, path)``, e.g. ``("the --xy micrograph", "xy/0.png")``. An input in ``replaced``
    is one the run reads whole before it writes, and may replace by design (``train
    --resume m.pt --out m.pt``).
    """
    inputs = [(what, p) for what, p in inputs if not any(same_file(p, r) for r in replaced)]
    earlier: list[NamedPath] = []
    for flag, path in outputs:
        check_output(path, flag)
        for what, source in inputs:
            if same_file(path, source):
                raise OutputError(f"{flag} {path}: is {what} {source}, which the run reads; "
                                  f"writing it would destroy it: give {flag} another path")
        for other_flag, other in earlier:
            if same_file(path, other):
                raise OutputError(f"{flag} {path}: is also the path of {other_flag}; give "
                                  "each output its own file name")
        earlier.append((flag, path))


def rescue(save: Callable[[list[Path]], None], outputs: Sequence[str | os.PathLike],
           near: Sequence[str | os.PathLike], error: OSError) -> OutputError:
    """Work whose ``outputs`` could not be written goes to the first folder of ``near``
    (beside the inputs) where it can, else to the temp folder, as
    ``NAME-rescued-PID.SUFFIX``: ``save(paths)`` writes it there. Returns the error to
    report: ``error`` and where the work went."""
    for folder in (*map(Path, near), Path(tempfile.gettempdir())):
        paths = [folder / f"{Path(p).stem}-rescued-{os.getpid()}{Path(p).suffix}"
                 for p in outputs]
        try:
            save(paths)
        except OSError:
            continue
        return OutputError(f"{error}; nothing is lost: saved to "
                           f"{', '.join(map(str, paths))} instead")
    return OutputError(f"{error}; saving it beside the inputs and in the temp folder "
                       "failed too")

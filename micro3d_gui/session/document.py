"""The open project as a document (no Qt): its folder, and whether it has unsaved changes.

The app's faces hand :class:`Document` a plain, JSON-able picture of their state (the
project's settings and paths, plus a revision number for each thing too large to compare,
such as the generated volumes). The document keeps the picture of the last save or open;
the project is *modified* while the current picture differs from it. Comparing pictures
rather than counting edits means an edit undone by hand, or a field rewritten with the
value it had (a project being opened), does not count as a change.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

#: What the window title calls a project not saved yet.
UNTITLED = "untitled"


def fingerprint(state: dict) -> str:
    """A canonical text of ``state`` (sorted keys; paths, tuples and numbers as JSON)."""
    return json.dumps(state, sort_keys=True, default=_plain)


def _plain(value):
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (tuple, set)):
        return list(value)
    if hasattr(value, "item"):  # a numpy scalar
        return value.item()
    return repr(value)


class Document:
    """The open project's folder (None until saved) and its saved state."""

    def __init__(self, app_name: str) -> None:
        self.app_name = app_name
        self.folder: Path | None = None
        self._saved: str | None = None

    def mark_clean(self, state: dict, folder: str | os.PathLike | None = None) -> None:
        """``state`` is what is on disk now (just saved or opened; a new project: the
        empty state); ``folder`` the project's folder (None: keep the current one)."""
        if folder is not None:
            self.folder = Path(folder)
        self._saved = fingerprint(state)

    def reset(self, state: dict) -> None:
        """A new, unsaved project whose state is ``state``."""
        self.folder = None
        self._saved = fingerprint(state)

    def is_modified(self, state: dict) -> bool:
        return self._saved is None or fingerprint(state) != self._saved

    @property
    def name(self) -> str:
        return self.folder.name if self.folder is not None else UNTITLED

    def title(self, modified: bool) -> str:
        """``"Micro3D - proj*"``: the app, the project's folder name, ``*`` when modified;
        just the app's name for a new project with nothing in it yet."""
        if self.folder is None and not modified:
            return self.app_name
        return f"{self.app_name} - {self.name}{'*' if modified else ''}"

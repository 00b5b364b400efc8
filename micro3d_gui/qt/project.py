"""The app's QSettings: the recent projects and the window geometry.

QSettings (INI format, organisation "Micro3D", application "micro3d-gui"); tests redirect
them with ``QSettings.setPath``. The project folders themselves:
:mod:`micro3d_gui.session.project`.
"""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

from ..session.project import PROJECT_FILE

ORGANIZATION = "Micro3D"
APPLICATION = "micro3d-gui"
RECENT_KEY = "recent_projects"
MAX_RECENT = 8


def app_settings() -> QSettings:
    """The app's settings (INI file in the user's config folder; tests redirect it)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION,
                     APPLICATION)


def recent_projects(settings: QSettings) -> list[Path]:
    """Recent project folders, newest first, those that still exist."""
    value = settings.value(RECENT_KEY, [])
    if isinstance(value, str):  # QSettings returns a one-item list as a str
        value = [value]
    return [Path(v) for v in (value or []) if (Path(v) / PROJECT_FILE).is_file()]


def add_recent_project(settings: QSettings, folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder).resolve()
    items = [folder] + [p for p in recent_projects(settings) if p.resolve() != folder]
    items = items[:MAX_RECENT]
    settings.setValue(RECENT_KEY, [str(p) for p in items])
    settings.sync()
    return items

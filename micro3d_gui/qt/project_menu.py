"""File > New / Open / Save / Save as / Recent projects, and the unsaved-changes guard.

:class:`ProjectMenu` is a part of :class:`~.main_window.MainWindow` (a mixin: it uses the
window's panels). The state model is :class:`micro3d_gui.session.document.Document` (no
Qt): this module gives it the window's state as plain data, shows its title (``*`` when
modified) and asks "Save changes?" (Save / Discard / Cancel) before quit, New, Open and
opening a recent project. Files on disk: :mod:`micro3d_gui.session.project` and
:mod:`micro3d_gui.io.project_files`; the recent projects: :mod:`.project`.
"""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QLineEdit,
                               QSpinBox, QWidget)

from ..errors import InputError
from ..io.project_files import copy_into
from ..session.document import Document
from ..session.generation import GenerateSettings
from ..session.project import Project, load_project, project_schema, save_project
from ..session.training import TrainSettings
from . import dialogs
from .project import add_recent_project, recent_projects
from .viewport import VIEW_MODES


def watch_edits(root: QWidget, callback) -> None:
    """Call ``callback()`` on every edit of a field under ``root`` (spin boxes, combo boxes,
    line edits, check boxes)."""
    for w in root.findChildren(QWidget):
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.valueChanged.connect(lambda *_: callback())
        elif isinstance(w, QComboBox):
            w.currentTextChanged.connect(lambda *_: callback())
        elif isinstance(w, QLineEdit):
            w.textChanged.connect(lambda *_: callback())
        elif isinstance(w, QCheckBox):
            w.toggled.connect(lambda *_: callback())


def _asdict(settings) -> dict:
    d = asdict(settings)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


class ProjectMenu:
    """The project half of the main window (see the module docstring)."""

    def _init_document(self, app_name: str) -> None:
        self.document = Document(app_name)
        #: Bumped whenever the generated volumes are replaced (they are too large to
        #: compare: the document compares this number).
        self.volume_revision = 0
        self._title_timer = QTimer(self)
        self._title_timer.setSingleShot(True)
        self._title_timer.setInterval(0)  # many edits in one event: one refresh
        self._title_timer.timeout.connect(self.refresh_title)
        watch_edits(self, self._title_timer.start)
        for signal in (self.data_panel.changed, self.data_panel.reference_volume_changed,
                       self.viewport.phase_table.style_changed, self.analysis_panel.finished):
            signal.connect(lambda *_: self._title_timer.start())
        self.document.reset(self.document_state())
        self.refresh_title()

    @property
    def project_dir(self) -> Path | None:
        return self.document.folder

    # -- state ----------------------------------------------------------------------------
    def project_state(self) -> Project:
        return Project(
            data=self.data_panel.state(),
            train=_asdict(self.train_panel.settings()),
            generate=_asdict(self.generate_panel.settings()),
            model_path=self.model_path,
            volumes=list(self.volumes),
            num_phases=self.num_phases,
            view={"mode": self.viewport.mode, "volume": max(self.volume_combo.currentIndex(), 0),
                  "voxel_size": self.voxel_spin.value(), "unit": self.unit_combo.currentText(),
                  "phase_names": list(self.viewport.phase_table.names),
                  "phase_colours": list(self.viewport.phase_table.colours),
                  "phase_opacities": list(self.viewport.phase_table.opacities)},
            analysis=self.analysis_panel.evaluation(),
        )

    def document_state(self) -> dict:
        """The project as plain data, the volumes as their revision number."""
        try:
            project = self.project_state()
        except (InputError, ValueError):  # a field that does not parse: an unsaved edit
            return {"unparsed": True}
        state = {k: v for k, v in vars(project).items() if k not in ("volumes", "notes")}
        state["volumes"] = self.volume_revision
        state["analysis"] = self.analysis_panel.report()  # (its numbers stand for it)
        return state

    def is_modified(self) -> bool:
        return self.document.is_modified(self.document_state())

    def refresh_title(self) -> None:
        self.setWindowTitle(self.document.title(self.is_modified()))

    def mark_clean(self, folder: str | os.PathLike | None = None) -> None:
        self.document.mark_clean(self.document_state(), folder)
        self.refresh_title()

    def confirm_discard(self) -> bool:
        """True when the current project may go: nothing unsaved, or the user saved it or
        chose Discard; False for Cancel (or a save that failed or was not done)."""
        if not self.is_modified():
            return True
        answer = dialogs.ask_save_changes(
            self, "Save changes?", f"The project '{self.document.name}' has unsaved "
            "changes. Save them first?")
        if answer == "save":
            return self.save_project()
        return answer == "discard"

    # -- actions --------------------------------------------------------------------------
    def new_project(self) -> None:
        """A clean project: every panel back to its first-start state."""
        if self._refuse_while_running("New project") or not self.confirm_discard():
            return
        self.reset_panels()
        self.train_panel.default_dir = None
        self.document.reset(self.document_state())
        self.refresh_title()

    def reset_panels(self) -> None:
        self.data_panel.drop_loading()
        self.data_panel.set_state({})
        self.train_panel.reset()
        self.generate_panel.reset()
        self.analysis_panel.reset()
        self.docks["Analysis"].hide()
        self.model_path, self.model_info, self.model_job = "", None, None
        self.set_volumes([], 0)
        self.voxel_spin.setValue(0.0)
        self.unit_combo.setCurrentIndex(0)
        self.viewport.phase_table.reset()
        self._update_placeholder()

    def open_project(self, folder: str | os.PathLike) -> bool:
        """Load a project folder; a bad one is reported and the current work stays. Files
        it names that are missing are reported, the rest opens."""
        if self._refuse_while_running("Open project"):
            return False
        try:
            project = load_project(folder, project_schema(TrainSettings, GenerateSettings))
        except InputError as exc:
            dialogs.show_error(self, "Cannot open the project", str(exc))
            return False
        if not self.confirm_discard():
            return False
        folder = Path(folder)
        self.reset_panels()
        self.train_panel.default_dir = folder
        self.document.folder = folder
        self.apply_project(project)
        add_recent_project(self.settings, folder)
        self.mark_clean(folder)
        self.statusBar().showMessage(f"Opened {folder}", 5000)
        if project.notes:
            dialogs.show_error(self, "Some of the project's files are missing",
                               "\n\n".join(project.notes))
        return True

    def apply_project(self, project: Project) -> None:
        self.data_panel.set_state(project.data)
        self.train_panel.set_settings(project.train)
        self.generate_panel.set_settings(project.generate)
        self.model_path, self.model_info = project.model_path, None
        if project.model_path and Path(project.model_path).is_file():
            self.set_model(project.model_path)
        self.set_volumes(project.volumes, project.num_phases or 0)
        self.voxel_spin.setValue(float(project.view.get("voxel_size", 0.0)))
        self.unit_combo.setCurrentText(project.view.get("unit", self.unit_combo.itemText(0)))
        self.viewport.set_phase_style(project.view.get("phase_names"),
                                      project.view.get("phase_colours"),
                                      project.view.get("phase_opacities"))
        mode = project.view.get("mode", "slices")
        if mode in VIEW_MODES:
            self.viewport.set_mode(mode)
        index = int(project.view.get("volume", 0))
        if 0 <= index < len(self.volumes):
            self.volume_combo.setCurrentIndex(index)
        if project.analysis is not None and self.volumes:
            self.analysis_panel.show_saved(project.analysis)
            self.show_analysis_dock()

    def save_project(self, folder: str | os.PathLike | None = None) -> bool:
        """Save into ``folder`` (default: the open project's; asks when there is none),
        creating it if needed. A model that lives elsewhere is copied in (and used from
        there on), so the folder holds everything it needs."""
        if folder is None:
            if self.project_dir is None:
                return self.ask_save_project_as()
            folder = self.project_dir
        folder = Path(folder)
        try:
            project = self.project_state()
            note = self._bring_model_in(project, folder)
            if note:
                project = self.project_state()
            save_project(folder, project)
        except (InputError, OSError, ValueError) as exc:
            dialogs.show_error(self, "Cannot save the project",
                               f"{folder}: {dialogs.error_text(exc)}")
            return False
        self.train_panel.default_dir = folder
        add_recent_project(self.settings, folder)
        self.mark_clean(folder)
        self.statusBar().showMessage(f"Saved {folder}" + (f"; {note}" if note else ""), 8000)
        return True

    def _bring_model_in(self, project: Project, folder: Path) -> str:
        """Copy the model into ``folder`` when it lives elsewhere and point the window at
        the copy; what was done, or ''."""
        old = project.model_path
        if not old or not Path(old).is_file():
            return ""
        folder.mkdir(parents=True, exist_ok=True)
        new = copy_into(old, folder)
        if Path(new) == Path(old):
            return ""
        self.model_path = str(new)
        if self.model_info is not None:
            self.model_info = {**self.model_info, "path": str(new)}
        self.generate_panel.set_model(new, self.generate_panel.model_info.text(),
                                      display=self.display_path(new))
        if self.train_panel.settings().model_path in (old, str(old)):
            self.train_panel.set_model_path(new)
        return f"the model {Path(old).name} was copied into it ({new.relative_to(folder)})"

    def ask_open_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open project folder",
                                                  str(self.project_dir or Path.cwd()))
        if folder:
            self.open_project(folder)

    def ask_save_project_as(self) -> bool:
        """Ask for the project's folder; a name typed there that does not exist yet is
        created (a save dialog, since a folder dialog refuses new names)."""
        start = str((self.project_dir.parent if self.project_dir else Path.cwd()) / "project")
        name, _ = QFileDialog.getSaveFileName(
            self, "Save project as (a folder of this name)", start, "Project folder (*)")
        return self.save_project(name) if name else False

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = recent_projects(self.settings)
        for folder in items:
            a = self.recent_menu.addAction(str(folder))
            a.triggered.connect(lambda _=False, f=folder: self.open_project(f))
        if not items:
            self.recent_menu.addAction("(none)").setEnabled(False)


"""Loading a model into the main window: File > Load model..., a model just trained, the
``--model`` the app started with; the file read in a worker
(:func:`micro3d_gui.session.model.model_summary`) and handed to the Train and Generate panels.

:class:`ModelLoading` is a part of :class:`~.main_window.MainWindow` (a mixin, as
:class:`~.project_menu.ProjectMenu`: it uses the window's panels and ``model_*`` fields).
"""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from .. import paths
from ..session.model import model_summary
from . import dialogs
from .jobs import Job


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class ModelLoading:
    """The model half of the main window (see the module docstring)."""

    def set_model(self, path: str | os.PathLike) -> Job | None:
        """Read the model file in a worker; on success the Train and Generate panels use it.

        A file that is not a model leaves everything as it was and says why. The last
        model asked for wins: a slower read of an earlier one is dropped when it ends.
        """
        if self._closing:  # a training run cancelled by closing reports its model late
            return None
        job = Job(model_summary, str(path), self.generate_panel.settings().device,
                  name="Loading the model", error_parent=self, parent=self)
        job.succeeded.connect(
            lambda info, job=job: self._model_loaded(info) if job is self.model_job else None)
        job.ended.connect(self._update_placeholder)
        self.model_job = job.start()
        self._update_placeholder()
        return job

    def _is_bundled(self, path: str | os.PathLike) -> bool:
        try:
            return bool(path) and Path(path).resolve().parent == paths.models_dir().resolve()
        except OSError:
            return False

    def display_path(self, path: str | os.PathLike) -> str:
        """How a file is named on screen: relative to the project folder when inside it,
        the bundled model by its name; never a path of the machine that built the app."""
        p = Path(path)
        if self._is_bundled(p):
            return f"{p.name} (bundled demo)"
        if self.project_dir is not None:
            try:
                return str(p.resolve().relative_to(Path(self.project_dir).resolve()))
            except ValueError:
                pass
        return str(p)

    def _model_loaded(self, info: dict) -> None:
        # The project's own model read back (on open) is no edit, though its summary
        # rewrites some Train fields; another model is.
        clean = Path(info["path"]) == Path(self.model_path or ".") and not self.is_modified()
        self.model_path, self.model_info = info["path"], info
        text = (f"{info['preset']} network, {info['num_phases']} phases, trained "
                f"{plural(info['step'], 'step')} (crop {info['crop']} px)")
        # The bundled model is read-only data: training never writes into it.
        self.train_panel.show_model(info, bundled=self._is_bundled(info["path"]))
        self.generate_panel.set_model(info["path"], text,
                                      display=self.display_path(info["path"]))
        self.docks["Generate"].raise_()  # a model is there: the next step is Generate
        self._update_placeholder()
        self.statusBar().showMessage(f"Model {self.display_path(info['path'])}: {text}", 8000)
        if clean:
            self.mark_clean()
        else:
            self.refresh_title()

    def _trained(self, path: str) -> None:
        """A training run wrote ``path``: Generate takes it when it had no model or the
        same file; another model is replaced only when the user says so."""
        if self._closing:  # (never a question after the window has gone)
            return
        if self.model_path and Path(self.model_path) != Path(path):
            if not dialogs.ask(self, "Use the new model?",
                               f"Training wrote {path}.\nGenerate from it instead of "
                               f"{Path(self.model_path).name}?"):
                return
        self.set_model(path)

    def ask_load_model(self) -> None:
        start = str(self.project_dir or Path.cwd())
        name, _ = QFileDialog.getOpenFileName(self, "Load model", start,
                                              "Micro3D model (*.pt);;All files (*)")
        if name:
            self.set_model(name)

    def preload_model(self, path: str | os.PathLike) -> None:
        """The model the app was started with (``--model``). Without a project open it is
        the starting state, as the demo is (nothing to save yet); with one, another model
        than the project's is a change to it."""
        starting = self.project_dir is None and not self.is_modified()
        if starting:
            self.model_path = str(path)  # read back, it is no edit (see _model_loaded)
        self.set_model(path)
        if starting:
            self.mark_clean()

"""The main window: 3D viewport in the middle, Data / Train / Generate / Analysis docks.

Wiring (the panels do not know each other; this window connects them):

- Data panel -> Train panel: ``TrainPanel.data_source`` is ``DataPanel.segmentation`` (the
  labelled micrographs per plane), ``origins_source`` names the file of a too-small image.
- Train panel ``model_saved(path)`` and File > Load model... -> :meth:`set_model` (reads the
  model in a worker, then hands it to the Train and Generate panels).
- Generate panel ``preview(labels, k)`` (throttled) -> viewport; ``volumes_ready`` ->
  :meth:`set_volumes` (the volume combo, the Analysis panel's volumes); ``self_checked`` ->
  the coloured verdict above the viewport (:class:`.self_check_label.SelfCheckLabel`); its
  ``reference_source`` is the Data panel's segmentation, as the Train panel's data.
- ``analyse_requested(properties)`` of the Generate panel *and* of the Analysis panel ->
  :meth:`analyse`: one comparison, whichever button, against the segmented micrographs
  and the reference volume when there is one (the demo's ``truth.tif``).
- File menu: projects and the unsaved-changes guard (:class:`.project_menu.ProjectMenu`,
  the window's project half), recent projects, Export volumes, Quit. View menu:
  dock toggles, reset layout. Help menu: quick start, keyboard shortcuts, About
  (:mod:`.menus`).

The window's other halves: loading a model (:class:`.model_loading.ModelLoading`) and
the generated volumes: shown, analysed, exported (:class:`.volume_view.VolumeView`).

First run: the window opens on the Generate tab once a model is loaded, the empty 3D view
says what to do and about how long Generate takes here (one network call is timed when
the model is read, :mod:`micro3d_gui.estimate`), and the Analysis dock stays hidden until
there is something to show.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (QComboBox, QDockWidget, QDoubleSpinBox, QFormLayout,
                               QHBoxLayout, QLabel, QMainWindow, QScrollArea, QSizePolicy,
                               QVBoxLayout, QWidget)

from .. import paths
from ..core.planes import PLANES
from . import dialogs
from .analysis_panel import AnalysisPanel
from .data_panel import DataPanel
from .generate_panel import GeneratePanel
from .jobs import Job
from .menus import build_menus
from .model_loading import ModelLoading, plural
from .project import app_settings
from .project_menu import ProjectMenu
from .self_check_label import SelfCheckLabel
from .train_panel import TrainPanel
from .viewport import Viewport
from .volume_view import VolumeView

WINDOW_TITLE = "Micro3D"
#: The default window size: fits a 1280 x 800 screen (the smallest layout tested).
DEFAULT_SIZE = (1280, 800)
#: Units the voxel size can be given in (display names; files get ASCII, see ExportDialog).
UNITS = ("µm", "nm", "mm")
GEOMETRY_KEY = "window/geometry"
STATE_KEY = "window/state"


def demo_paths() -> tuple[Path | None, Path | None]:
    """(folder of the demo material's xy / xz / yz folders, its bundled model), each None
    when not bundled (see :mod:`micro3d_gui.paths`)."""
    demo, model = paths.demo_dir(), paths.demo_model()
    return (demo if demo.is_dir() else None), (model if model.is_file() else None)


def copy_tooltips_to_labels(root: QWidget) -> None:
    """Give every form label under ``root`` its field's tooltip (hovering either explains)."""
    for form in root.findChildren(QFormLayout):
        for row in range(form.rowCount()):
            label = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            field = form.itemAt(row, QFormLayout.ItemRole.FieldRole)
            if label is None or field is None or label.widget() is None:
                continue
            widget = field.widget()
            if widget is None and field.layout() is not None:
                items = (field.layout().itemAt(i) for i in range(field.layout().count()))
                tips = [it.widget().toolTip() for it in items
                        if it.widget() is not None and it.widget().toolTip()]
                tip = tips[0] if tips else ""
            else:
                tip = widget.toolTip() if widget is not None else ""
            if tip and not label.widget().toolTip():
                label.widget().setToolTip(tip)


class MainWindow(QMainWindow, ProjectMenu, ModelLoading, VolumeView):
    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings if settings is not None else app_settings()
        self.volumes: list[np.ndarray] = []
        self.num_phases: int | None = None
        self.model_path: str = ""
        self.model_info: dict | None = None
        self.model_job: Job | None = None
        self._closing = False
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)

        # -- central: volume picker, voxel size, viewport --------------------------------
        self.viewport = Viewport()
        self.volume_combo = QComboBox()
        self.volume_combo.setMinimumContentsLength(12)
        self.volume_combo.setToolTip("Which generated volume the viewport shows")
        self.volume_combo.currentIndexChanged.connect(self.show_volume)
        self.volume_combo.setPlaceholderText("none yet")
        self.voxel_spin = QDoubleSpinBox()
        self.voxel_spin.setDecimals(4)
        self.voxel_spin.setRange(0.0, 1e6)
        self.voxel_spin.setSpecialValueText("not set")
        self.voxel_spin.setToolTip("Edge length of one voxel: the 3D axes, the 2D panes and "
                                   "the analysis' r axes then read in physical units")
        self.unit_combo = QComboBox()
        self.unit_combo.addItems(UNITS)
        self.unit_combo.setToolTip("Unit of the voxel size")
        self.voxel_spin.valueChanged.connect(self._voxel_size_changed)
        self.unit_combo.currentTextChanged.connect(self._voxel_size_changed)
        self.volume_info = QLabel("")
        self.volume_info.setToolTip("The shown volume's phase fractions, or what is running")
        # Long texts must not widen the central area (that made the docks jump).
        self.volume_info.setSizePolicy(QSizePolicy.Policy.Ignored,
                                       QSizePolicy.Policy.Preferred)
        self.volume_info.setMinimumWidth(1)  # overrides the text's minimum size hint
        top = QHBoxLayout()
        top.setContentsMargins(6, 4, 6, 0)
        for text, widget in (("Volume", self.volume_combo), ("Voxel size", self.voxel_spin)):
            label = QLabel(text)
            label.setToolTip(widget.toolTip())
            top.addWidget(label)
            top.addWidget(widget)
        top.addWidget(self.unit_combo)
        top.addWidget(self.volume_info, 1)
        #: The generated volumes' self-check, coloured; hidden until there is one.
        self.check_label = SelfCheckLabel()
        self.check_label.setContentsMargins(6, 0, 6, 0)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.check_label)
        layout.addWidget(self.viewport, 1)
        self.setCentralWidget(central)

        # -- panels --------------------------------------------------------------------
        self.data_panel = DataPanel()
        self.train_panel = TrainPanel(data_source=self.training_data)
        self.generate_panel = GeneratePanel()
        self.analysis_panel = AnalysisPanel()
        self.train_panel.origins_source = self.data_panel.image_origins
        self.data_panel.segmentation_updated.connect(self.train_panel.show_crop)
        self.train_panel.symmetry_source = self.data_panel.symmetry
        self.docks: dict[str, QDockWidget] = {}
        self._add_dock("Data", self.data_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._add_dock("Generate", self.generate_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._add_dock("Train", self.train_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._add_dock("Phases", self.viewport.phase_table, Qt.DockWidgetArea.RightDockWidgetArea)
        self._add_dock("Analysis", self.analysis_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        # One tab group on the right: the Generate button stays above the fold at 800 px.
        self.tabifyDockWidget(self.docks["Generate"], self.docks["Train"])
        self.tabifyDockWidget(self.docks["Train"], self.docks["Phases"])
        self.docks["Generate"].raise_()
        self.docks["Analysis"].hide()  # until there are results

        self.train_panel.model_saved.connect(self._trained)
        self.train_panel.load_requested.connect(self.ask_load_model)
        self.train_panel.busy.connect(lambda b: self._job_message("Training", b))
        self.generate_panel.preview.connect(self.show_preview)
        self.generate_panel.volumes_ready.connect(self.set_volumes)
        self.generate_panel.self_checked.connect(self.check_label.show_report)
        self.generate_panel.reference_source = self.training_data
        self.generate_panel.analyse_requested.connect(self.analyse)
        self.generate_panel.busy.connect(self._generation_busy)
        self.viewport.section_dropped.connect(self._keep_section)
        self.analysis_panel.analyse_requested.connect(self.analyse)
        for spin in (*self.generate_panel.shape_spins, self.generate_panel.count_spin,
                     self.generate_panel.steps_spin, self.generate_panel.harmonize_spin):
            spin.valueChanged.connect(self._update_placeholder)

        build_menus(self)
        copy_tooltips_to_labels(self)
        self.statusBar().showMessage("Ready")
        self.resize(*DEFAULT_SIZE)
        self._default_state: QByteArray | None = None  # taken when first shown
        self._update_placeholder()
        self._init_document(WINDOW_TITLE)

    # -- layout ---------------------------------------------------------------------------
    def _add_dock(self, title: str, panel: QWidget, area: Qt.DockWidgetArea) -> None:
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(panel)
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")  # saveState needs names
        dock.setWidget(scroll)
        self.addDockWidget(area, dock)
        self.docks[title] = dock
        if area != Qt.DockWidgetArea.BottomDockWidgetArea:
            # Never narrower than the panel needs (plus a vertical scroll bar): no button
            # or field is cut, whatever the window's size was before.
            bar = scroll.verticalScrollBar().sizeHint().width()
            scroll.setMinimumWidth(panel.minimumSizeHint().width() + bar + 2 * scroll.frameWidth())

    def _keep_section(self, plane: str, index: int, path: str) -> None:
        if not self.generate_panel.add_kept_section(plane, index, path):
            return
        self.docks["Generate"].raise_()
        self.statusBar().showMessage(f"The next volumes keep {Path(path).name} as their "
                                     f"{plane} section {index} (Generate: Keep sections)")

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._default_state is None:
            # Dock sizes only take once the window has its size: the viewport gets most
            # of it. Then the user's last layout, if any.
            self.resizeDocks([self.docks["Data"], self.docks["Generate"]], [1, 1],
                             Qt.Orientation.Horizontal)  # (clamped to) their minimum widths
            self.resizeDocks([self.docks["Analysis"]], [max(300, self.height() // 3)],
                             Qt.Orientation.Vertical)
            self._default_state = self.saveState()
            self._restore_window()

    def reset_layout(self) -> None:
        """The default layout (docks where they were at the first start, Analysis shown
        when there are results)."""
        for dock in self.docks.values():
            dock.setFloating(False)
        if self._default_state is not None:
            self.restoreState(self._default_state)
        for name, dock in self.docks.items():
            dock.setVisible(name != "Analysis" or self.analysis_panel.report() is not None)
        self.docks["Generate"].raise_()

    def show_analysis_dock(self) -> None:
        """Unfold the Analysis dock, tall enough for its plots (40 % of the window)."""
        dock = self.docks["Analysis"]
        was_visible = dock.isVisible()
        dock.show()
        dock.raise_()
        if not was_visible and not dock.isFloating():
            # After the layout has taken the shown dock in (a resize before is dropped).
            QTimer.singleShot(0, lambda: self.resizeDocks(
                [dock], [int(self.height() * 0.4)], Qt.Orientation.Vertical))

    def placeholder_text(self) -> str:
        """What the empty 3D view says: what to do next, and how long it takes here."""
        if self.model_info is None:
            if self.model_job is not None and self.model_job.is_running():
                return "Loading the model..."
            return ("No model yet: add micrographs in Data, then train one in Train\n"
                    "(or File > Load model...)")
        s = self.generate_panel.settings()
        recipe = s.to_recipe()
        speed = self.model_info.get("network_speed")
        when = ""
        if speed:
            from ..estimate import about, sampling_seconds
            from ..metrics.checked_sample import second_pass_recipes

            def seconds(r):  # steps None: all T
                return sampling_seconds(speed, s.shape, s.count,
                                        r.network_calls(self.model_info, s.fractions))

            when = ", " + about(seconds(recipe)) + " here"
            again = second_pass_recipes(recipe).values()
            if again:
                # where the phases come out broken up or running long (the longer pass)
                when += (f"\n(up to {about(max(map(seconds, again)))} more if the self-check "
                         "asks for a second pass)")
        z, y, x = s.shape
        what = "Demo model" if self._is_bundled(self.model_path) else "Model"
        return (f"{what} loaded:\npress Generate{when}\n({plural(s.count, 'volume')} of "
                f"{z} x {y} x {x} voxels, {recipe.steps_for(self.model_info)} steps)")

    def _update_placeholder(self, *_) -> None:
        text = self.placeholder_text()
        self.viewport.set_placeholder(text)
        if not self.volumes and self.viewport.labels is None:
            self.volume_info.setText(text.split("\n")[0])

    def _restore_window(self) -> None:
        geometry = self.settings.value(GEOMETRY_KEY)
        state = self.settings.value(STATE_KEY)
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)

    def _save_window(self) -> None:
        self.settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        self.settings.setValue(STATE_KEY, self.saveState())
        self.settings.sync()

    def _job_message(self, name: str, running: bool) -> None:
        self.statusBar().showMessage(f"{name} running..." if running else f"{name} ended", 5000)

    # -- data ---------------------------------------------------------------------------
    def training_data(self):
        """The segmented micrographs (``labels`` per plane, ``num_phases``) or None."""
        return self.data_panel.segmentation()

    # -- jobs -----------------------------------------------------------------------------
    def _jobs_running(self) -> list[str]:
        running = []
        if self.train_panel.is_running():
            running.append("training")
        if self.generate_panel.is_running():
            running.append("generation")
        if self.analysis_panel.is_running():
            running.append("analysis")
        return running

    def _refuse_while_running(self, what: str) -> bool:
        running = self._jobs_running()
        if running:
            dialogs.show_error(self, what, f"Wait for the {' and '.join(running)} to end, or "
                               "cancel it, first")
        return bool(running)

    # -- demo -----------------------------------------------------------------------------
    def open_demo(self) -> bool:
        """Load the bundled demo (the fibre composite's micrographs, its 3D truth as the
        reference volume, and its model), so that one Generate and one Analyse show the idea
        working: generated against micrographs and truth. Does nothing (returns False)
        when not bundled."""
        demo, model = demo_paths()
        loaded = False
        if demo is not None:
            truth = demo / "truth.tif"
            if truth.is_file():  # the truth is compared with, never trained on
                self.data_panel.add_volume(truth, ask=False, cut=False)
            for plane in PLANES:
                if (demo / plane).is_dir():
                    self.data_panel.add_paths(plane, [demo / plane], ask=False)
                    loaded = True
        if model is not None:
            self.model_path = str(model)
            self.set_model(model)
            loaded = True
        self.mark_clean()  # the demo as it comes: nothing to save yet
        return loaded

    # -- closing --------------------------------------------------------------------------
    def cancel_jobs(self, timeout_s: float = 30.0, detach: bool = False) -> bool:
        """Cancel every running job and wait for its thread; True when all ended.
        ``detach``: the jobs' ends are dropped (no signal, no message box): the window is
        closing."""
        jobs = [p.job for p in (self.train_panel, self.generate_panel, self.analysis_panel)
                if p.job is not None and p.job.is_running()]
        jobs += [j for j in (self.model_job, *self.data_panel.load_jobs)
                 if j is not None and j.is_running()]
        for job in jobs:
            if detach:
                job.detach()
            else:
                job.cancel()
        if self.analysis_panel.is_running() and not detach:
            self.analysis_panel.cancel()
        ok = all(job.wait(timeout_s) for job in jobs)
        from PySide6.QtCore import QThreadPool

        # The analysis worker (and any other superqt worker) runs in the global pool.
        return QThreadPool.globalInstance().waitForDone(int(timeout_s * 1000)) and ok

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closing:  # closed already (a second close() asks nothing)
            event.accept()
            return
        running = self._jobs_running()
        if running:
            them = "them" if len(running) > 1 else "it"
            note = (" (Training saves its model first.)" if "training" in running else
                    " (The volumes being generated are not kept.)" if "generation" in running
                    else "")
            verb = "are" if len(running) > 1 else "is"
            if not dialogs.ask(self, "Quit Micro3D?",
                               f"The {' and '.join(running)} {verb} still running. Cancel "
                               f"{them} and quit?{note}"):
                event.ignore()
                return
        if not self.confirm_discard():
            event.ignore()
            return
        # Whatever a job would do when it ends (a message, "use the new model?") is
        # dropped: nothing may appear once the window has gone.
        self._closing = True
        self.cancel_jobs(detach=True)
        self._save_window()
        self.viewport.shutdown()
        event.accept()
        super().closeEvent(event)


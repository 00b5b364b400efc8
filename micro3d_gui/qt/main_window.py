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
  the window's other half), recent projects, Export volumes, Quit. View menu:
  dock toggles, reset layout. Help menu: quick start, keyboard shortcuts, About.

First run: the window opens on the Generate tab once a model is loaded, the empty 3D view
says what to do and about how long Generate takes here (one network call is timed when
the model is read, :mod:`micro3d_gui.estimate`), and the Analysis dock stays hidden until
there is something to show.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (QComboBox, QDockWidget, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QMainWindow, QScrollArea,
                               QSizePolicy, QVBoxLayout, QWidget)

from .. import paths
from ..core.planes import PLANES
from ..errors import InputError
from ..io.export import VOXEL_UNIT
from ..session.model import model_summary
from . import dialogs, help_texts
from .analysis_panel import AnalysisPanel
from .data_panel import DataPanel
from .export_dialog import ExportDialog
from .generate_panel import GeneratePanel
from .jobs import Job
from .project import app_settings
from .project_menu import ProjectMenu
from .self_check_label import SelfCheckLabel
from .train_panel import TrainPanel
from .viewport import Viewport

WINDOW_TITLE = "Micro3D"
#: The default window size: fits a 1280 x 800 screen (the smallest layout tested).
DEFAULT_SIZE = (1280, 800)
#: Units the voxel size can be given in (display names; files get ASCII, see ExportDialog).
UNITS = ("µm", "nm", "mm")
GEOMETRY_KEY = "window/geometry"
STATE_KEY = "window/state"
EXPORT_FOLDER_KEY = "export/folder"


def demo_paths() -> tuple[Path | None, Path | None]:
    """(folder of the demo material's xy / xz / yz folders, its bundled model), each None
    when not bundled (see :mod:`micro3d_gui.paths`)."""
    demo, model = paths.demo_dir(), paths.demo_model()
    return (demo if demo.is_dir() else None), (model if model.is_file() else None)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


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


class MainWindow(QMainWindow, ProjectMenu):
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

        self._build_menus()
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

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.actions: dict[str, QAction] = {}

        def action(key, text, slot, shortcut=None, menu=file_menu):
            a = QAction(text, self)
            if shortcut is not None:
                a.setShortcut(shortcut)
            # (the slot gets no arguments: ``triggered`` would pass its ``checked`` flag
            # as the first, e.g. as the folder of save_project)
            a.triggered.connect(lambda _checked=False, slot=slot: slot())
            menu.addAction(a)
            self.actions[key] = a
            return a

        action("new", "&New project", self.new_project, QKeySequence.StandardKey.New)
        action("open", "&Open project...", self.ask_open_project, QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Recent projects")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        action("save", "&Save project", self.save_project, QKeySequence.StandardKey.Save)
        action("save_as", "Save project &as...", self.ask_save_project_as,
               QKeySequence.StandardKey.SaveAs)
        file_menu.addSeparator()
        action("load_model", "Load &model...", self.ask_load_model)
        action("export", "&Export volumes...", self.export_volumes,
               QKeySequence("Ctrl+E"))
        file_menu.addSeparator()
        action("quit", "&Quit", self.close, QKeySequence.StandardKey.Quit)

        run_menu = self.menuBar().addMenu("&Run")
        action("generate", "&Generate", self.generate_panel.start, QKeySequence("Ctrl+G"),
               menu=run_menu)
        action("analyse", "&Analyse", lambda: self.analyse(
            self.analysis_panel.properties_check.isChecked()), QKeySequence("Ctrl+Shift+A"),
            menu=run_menu)
        action("train", "&Train", lambda: self.train_panel.start(resume=False),
               QKeySequence("Ctrl+T"), menu=run_menu)

        view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        action("reset_layout", "&Reset layout", self.reset_layout, menu=view_menu)
        action("reset_camera", "Reset &camera", self.viewport.reset_camera,
               QKeySequence("Ctrl+R"), menu=view_menu)

        help_menu = self.menuBar().addMenu("&Help")
        action("quick_start", "&Quick start", lambda: help_texts.show(
            self, "Quick start", help_texts.QUICK_START), QKeySequence.StandardKey.HelpContents,
            menu=help_menu)
        action("shortcuts", "Keyboard &shortcuts", lambda: help_texts.show(
            self, "Keyboard shortcuts", help_texts.shortcuts_html(self.actions)),
            menu=help_menu)
        action("about", "&About Micro3D", lambda: help_texts.show(
            self, "About Micro3D", help_texts.about_html()), menu=help_menu)

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

    def _voxel_size_changed(self, *_) -> None:
        size, unit = self.voxel_spin.value() or None, self.unit_combo.currentText()
        self.viewport.set_voxel_size(size, unit)
        self.analysis_panel.set_voxel_size(size, unit)

    def voxel_size(self) -> float | None:
        return self.voxel_spin.value() or None

    def placeholder_text(self) -> str:
        """What the empty 3D view says: what to do next, and how long it takes here."""
        if self.model_info is None:
            if self.model_job is not None and self.model_job.is_running():
                return "Loading the model..."
            return ("No model yet: add micrographs in Data, then train one in Train\n"
                    "(or File > Load model...)")
        s = self.generate_panel.settings()
        recipe = s.to_recipe()
        per_voxel = self.model_info.get("seconds_per_voxel")
        when = ""
        if per_voxel:
            from ..estimate import about, sampling_seconds

            calls = recipe.network_calls(self.model_info, s.fractions)  # steps 0: all T
            when = ", " + about(sampling_seconds(per_voxel, s.shape, s.count, calls)) + " here"
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

    # -- data and model -------------------------------------------------------------------
    def training_data(self):
        """The segmented micrographs (``labels`` per plane, ``num_phases``) or None."""
        return self.data_panel.segmentation()

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

    # -- volumes --------------------------------------------------------------------------
    def show_preview(self, labels: np.ndarray, num_phases: int) -> None:
        """A live estimate while sampling (volume 0)."""
        self.viewport.set_volume(labels, num_phases)
        if not self.volumes:
            self.volume_combo.setPlaceholderText("live estimate")
        z, y, x = labels.shape
        self.volume_info.setText(f"sampling: current estimate of volume 0 ({z} x {y} x {x}, "
                                 "z y x)")

    def _generation_busy(self, running: bool) -> None:
        self._job_message("Generation", running)
        job = self.generate_panel.job
        if not running and job is not None and job.status != "done":
            # Cancelled or failed: go back from the live estimate to the volumes there are.
            if self.volumes:
                self.show_volume(max(self.volume_combo.currentIndex(), 0))
            elif self.viewport.labels is not None and job.status is not None:
                self.volume_info.setText(f"generation {job.status}: its last estimate is "
                                         "shown, it was not kept")

    def set_volumes(self, volumes: list[np.ndarray], num_phases: int) -> None:
        """Replace the generated volumes (uint8 ``[z, y, x]``) and show the first; the
        self-check of the volumes replaced goes (a new one follows ``volumes_ready``)."""
        self.check_label.clear_report()
        self.volumes = [np.asarray(v, dtype=np.uint8) for v in volumes]
        self.volume_revision += 1
        self.num_phases = int(num_phases) if self.volumes else None
        self.volume_combo.blockSignals(True)
        self.volume_combo.clear()
        self.volume_combo.setPlaceholderText("none yet")
        for i, v in enumerate(self.volumes):
            self.volume_combo.addItem(f"volume {i}  ({' x '.join(map(str, v.shape))})")
        if self.volumes:
            # (with a placeholder text the combo does not select the first item itself)
            self.volume_combo.setCurrentIndex(0)
        self.volume_combo.blockSignals(False)
        self.generate_panel.set_has_volumes(bool(self.volumes))
        if self.volumes:
            self.analysis_panel.set_volumes(self.volumes, self.num_phases)
            self.show_volume(0)
        else:
            self.viewport.clear()
            self._update_placeholder()
        self._title_timer.start()

    def show_volume(self, index: int) -> None:
        if not 0 <= index < len(self.volumes):
            return
        vol = self.volumes[index]
        self.viewport.set_volume(vol, self.num_phases)
        fractions = np.bincount(vol.ravel(), minlength=self.num_phases) / vol.size
        names = self.viewport.phase_table.names
        self.volume_info.setText("phase fractions " + ", ".join(
            f"{names[k] if k < len(names) else k}: {f:.3f}" for k, f in enumerate(fractions)))

    def analyse(self, properties: bool = False) -> None:
        """Compare the generated volumes with the segmented micrographs and the reference
        volume, if any (the Analysis panel): what both Analyse buttons do."""
        if not self.volumes:
            dialogs.show_error(self, "Analysis", "There are no volumes to analyse; generate "
                               "some first")
            return
        try:
            seg = self.training_data()
        except InputError as exc:
            dialogs.show_error(self, "Analysis", f"The micrographs cannot be segmented, so "
                               f"there is no reference to compare with: {exc}")
            return
        if seg is not None and seg.num_phases != self.num_phases:
            dialogs.show_error(self, "Analysis", f"The micrographs have {seg.num_phases} "
                               f"phases but the volumes {self.num_phases}; the comparison "
                               "needs the same phases")
            seg = None
        self.analysis_panel.set_reference_planes(None if seg is None else seg.labels,
                                                 None if seg is None else seg.num_phases)
        # A 3D stack the user dropped, segmented like the micrographs, is compared too.
        self.analysis_panel.set_reference_volume(
            None if seg is None else self.data_panel.reference_labels())
        self.show_analysis_dock()
        self.analysis_panel.analyse(self.volumes, self.num_phases, properties=properties)

    def export_volumes(self) -> None:
        if not self.volumes:
            dialogs.show_error(self, "Export", "There are no volumes to export; generate "
                               "some first")
            return
        dialog = ExportDialog(self.volumes, self.analysis_panel.report(), self,
                              folder=self.export_folder())
        # The window's voxel size; not set: 1 voxel (no physical size is claimed).
        dialog.set_voxel_size([self.voxel_size() or 1.0] * 3)
        dialog.set_unit(self.unit_combo.currentText() if self.voxel_size() else VOXEL_UNIT)
        dialog.exec()
        if dialog.written:
            folder = dialog.written[0].parent
            self.settings.setValue(EXPORT_FOLDER_KEY, str(folder))
            self.statusBar().showMessage(f"Exported {len(dialog.written)} file(s) to "
                                         f"{folder}", 8000)

    def export_folder(self) -> Path:
        """Where exports go by default: the last export's folder, else the project folder,
        else the model's, else home (never the folder the app happened to be started
        from)."""
        last = self.settings.value(EXPORT_FOLDER_KEY)
        if isinstance(last, str) and last and Path(last).is_dir():
            return Path(last)
        if self.project_dir is not None:
            return Path(self.project_dir)
        if self.model_path and not self._is_bundled(self.model_path):
            return Path(self.model_path).parent
        return Path.home()

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


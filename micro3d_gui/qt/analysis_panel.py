"""The analysis panel: generated volumes against the micrographs (and a reference volume).

Plots S2 and lineal-path curves per plane with their relative errors, volume-fraction
histograms, and, on request, relative diffusivity per phase and direction and the elastic /
thermal-expansion constants as box plots over the volumes. The numbers and the report come
from :func:`micro3d_gui.metrics.report.run_evaluation` (the engine of ``micro3d
evaluate``), run as a :class:`~micro3d_gui.qt.jobs.Job`.

Its Analyse button asks (``analyse_requested``) rather than runs: the main window gathers
the references (segmented micrographs, reference volume) and calls :meth:`AnalysisPanel.analyse`,
so the panel's button and the Generate panel's give the same comparison.

The figures are drawn by :mod:`.analysis_plots` (matplotlib only); this panel holds them
in tabs with their Save PNG / Save CSV buttons.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QTabWidget, QVBoxLayout, QWidget)

from micro3d_gui.errors import InputError

from . import dialogs
from .analysis_plots import (draw_cte, draw_curves, draw_diffusivity, draw_elastic,
                             draw_fractions, draw_message)
from .jobs import Job, throttled
from .plot_widget import PlotWidget

#: Plot tabs: key -> title.
TABS = {"s2": "S2", "lineal_path": "Lineal path", "volume_fraction": "Volume fractions",
        "diffusivity": "Diffusivity", "elastic": "Elastic", "cte": "CTE"}


def analysis_job(volumes: Sequence[np.ndarray], num_phases: int,
                 reference_planes: Mapping[str, Sequence[np.ndarray]] | None,
                 reference_volume: np.ndarray | None, properties: bool,
                 materials: Mapping | None, device: str, *,
                 report: Callable[[object], None], should_stop: Callable[[], bool]):
    """Job body: :func:`micro3d_gui.metrics.report.run_evaluation` -> its
    :class:`~micro3d_gui.metrics.report.Evaluation`; ``report((fraction, text))`` per stage
    (a cancel raises ``EvaluationCancelled``, which the Job counts as the cancel)."""
    from micro3d_gui.metrics.report import run_evaluation

    def post(fraction: float, text: str) -> bool:
        report((float(fraction), text))
        return should_stop()

    return run_evaluation(volumes, num_phases, reference_planes,
                          reference_volume=reference_volume, diffusivity=properties,
                          elastic=properties, materials=materials, device=device,
                          progress=post, should_stop=should_stop)


class AnalysisPanel(QWidget):
    """Metrics and properties of generated volumes, as plots that save to PNG and CSV."""

    finished = Signal(dict)
    progress = Signal(float, str)
    #: The Analyse button: the main window gathers the references and calls analyse().
    analyse_requested = Signal(bool)

    def __init__(self, parent: QWidget | None = None, device: str = "cpu") -> None:
        super().__init__(parent)
        self.device = device
        self._reference_planes: dict[str, list[np.ndarray]] | None = None
        self._reference_volume: np.ndarray | None = None
        self._reference_phases: int | None = None
        self._materials = None  # None: the properties package's DEFAULT_MATERIALS
        self._materials_path: Path | None = None
        self._volumes: list[np.ndarray] = []
        self._num_phases: int | None = None
        self._report: dict | None = None
        self._raw: dict | None = None
        self._evaluation = None
        self.job: Job | None = None
        #: Voxel edge length and unit for the r axes (None: r in voxels).
        self.voxel_size: float | None = None
        self.unit = "µm"
        self._show_progress = throttled(self._draw_progress, 250, self)

        self.properties_check = QCheckBox("Properties (diffusivity, elastic, CTE)")
        self.properties_check.setToolTip("TauFactor and FFT homogenisation: slower")
        self.materials_button = QPushButton("Materials...")
        self.materials_button.setToolTip("Phase materials (JSON: {\"0\": {\"E\": GPa, "
                                         "\"nu\": ..., \"cte\": 1/K}, ...})")
        self.materials_button.clicked.connect(self._ask_materials)
        self.run_button = QPushButton("Analyse")
        self.run_button.setToolTip("Compare the volumes with the micrographs and the "
                                   "reference volume, if any (Ctrl+Shift+A)")
        self.run_button.clicked.connect(
            lambda: self.analyse_requested.emit(self.properties_check.isChecked()))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.status_label = QLabel("No volumes analysed yet")
        self.status_label.setWordWrap(True)

        self.plots: dict[str, PlotWidget] = {}
        self.tabs = QTabWidget()
        for key, title in TABS.items():
            plot = PlotWidget(name=key, figsize=(7.0, 3.0))
            plot.canvas.setMinimumHeight(140)  # fits the dock at 800 px; grows with it
            self.plots[key] = plot
            self.tabs.addTab(plot, title)

        # One row of controls and progress, so that the plots get the dock's height.
        self.progress_bar.setMaximumWidth(160)
        self.progress_bar.setTextVisible(False)
        controls = QHBoxLayout()
        controls.addWidget(self.properties_check)
        controls.addWidget(self.materials_button)
        controls.addWidget(self.status_label, 1)
        controls.addWidget(self.progress_bar)
        controls.addWidget(self.run_button)
        controls.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addLayout(controls)
        layout.addWidget(self.tabs, 1)
        self._sync_buttons()
        self._draw_empty()

    # -- inputs --------------------------------------------------------------------------
    def set_reference_planes(self, images_by_plane: Mapping[str, Sequence[np.ndarray]] | None,
                             num_phases: int | None = None) -> None:
        """Segmented micrographs (uint8 labels) per plane; None forgets them."""
        if images_by_plane is None:
            self._reference_planes = None
            return
        planes = {p: list(ims) for p, ims in images_by_plane.items() if len(ims)}
        self._reference_planes = planes or None
        self._reference_phases = num_phases

    def set_reference_volume(self, volume: np.ndarray | None) -> None:
        """A measured label volume ``[z, y, x]`` to compare against too (None forgets it)."""
        self._reference_volume = None if volume is None else np.asarray(volume)

    def set_materials(self, materials: Mapping | None) -> None:
        """Phase -> :class:`~micro3d_gui.properties.elastic.Material` (None: defaults)."""
        self._materials = None if materials is None else dict(materials)

    def set_volumes(self, volumes: Sequence[np.ndarray], num_phases: int) -> None:
        """Volumes the Analyse button analyses (without starting)."""
        self._volumes = [np.asarray(v) for v in volumes]
        self._num_phases = int(num_phases)
        self._sync_buttons()

    def set_voxel_size(self, size: float | None, unit: str = "µm") -> None:
        """Voxel edge length (None or 0: unknown, r in voxels); redraws the curves."""
        self.voxel_size = float(size) if size else None
        self.unit = unit
        if self._raw is not None:
            self._draw(self._raw, self._num_phases)

    def reset(self) -> None:
        """A new project: no volumes, references or results."""
        self._reference_planes = self._reference_volume = None
        self._volumes, self._num_phases = [], None
        self._report = self._raw = self._evaluation = None
        self.status_label.setText("No volumes analysed yet")
        self.progress_bar.setValue(0)
        self._draw_empty()
        self._sync_buttons()

    def show_saved(self, evaluation) -> None:
        """An analysis saved with the project (an :class:`~micro3d_gui.metrics.report.
        Evaluation`), drawn as when it was computed."""
        self._show_result(evaluation, evaluation.num_phases, emit=False)
        self.status_label.setText(f"{self.status_label.text()} (saved with the project)")

    # -- running -------------------------------------------------------------------------
    def analyse(self, volumes: Sequence[np.ndarray], num_phases: int,
                properties: bool = False) -> None:
        """Start the analysis of ``volumes`` (label volumes ``[z, y, x]``) in a worker.

        A running analysis is cancelled first. ``finished`` carries the report.
        """
        if self.is_running():
            self.cancel()
        self.set_volumes(volumes, num_phases)
        if not self._volumes:
            dialogs.show_error(self, "Analysis", "There are no volumes to analyse; generate "
                               "some first")
            return
        self.properties_check.setChecked(bool(properties))
        job = Job(analysis_job, self._volumes, int(num_phases), self._reference_planes,
                  self._reference_volume, bool(properties), self._materials, self.device,
                  name="Analysis", error_parent=self, parent=self)
        job.yielded.connect(lambda item, j=job: j is self.job and self._show_progress(*item))
        job.succeeded.connect(lambda ev, j=job: j is self.job and self._show_result(
            ev, int(num_phases)))
        job.ended.connect(lambda status, j=job: self._run_ended(j, status))
        self.job = job
        self.status_label.setText("Analysing...")
        self.progress_bar.setValue(0)
        job.start()
        self._sync_buttons()

    def cancel(self) -> None:
        """Ask the running analysis to stop (it ends at its next check)."""
        if self.is_running():
            self.job.cancel()
            self.status_label.setText("Cancelling...")

    def is_running(self) -> bool:
        return self.job is not None and self.job.status is None

    def report(self) -> dict | None:
        """The last finished analysis' report, or None."""
        return self._report

    def evaluation(self):
        """The last finished analysis' raw results (for a project), or None."""
        return self._evaluation

    def _draw_progress(self, fraction: float, text: str) -> None:
        if not self.is_running() or self.job.cancel_requested:
            return
        self.progress_bar.setValue(int(round(1000 * fraction)))
        self.status_label.setText(text)
        self.progress.emit(fraction, text)

    def _show_result(self, evaluation, num_phases: int, emit: bool = True) -> None:
        self._show_progress.cancel()
        raw = vars(evaluation)  # metrics, metrics_volume, diffusion, elastic per volume
        self._raw, self._evaluation = raw, evaluation
        self._report = evaluation.report()
        self._draw(raw, num_phases)
        # The plot of what was just computed, not the tab last looked at.
        self.tabs.setCurrentWidget(self.plots["s2" if evaluation.diffusion is None
                                              else "diffusivity"])
        self.status_label.setText(self._summary(self._report))
        self.progress_bar.setValue(1000)
        if emit:
            self.finished.emit(self._report)

    def _run_ended(self, job: Job, status: str) -> None:
        if job is not self.job:
            return
        self._show_progress.cancel()
        if status == "cancelled":
            self.status_label.setText("Analysis cancelled")
        elif status == "failed":
            self.status_label.setText("Analysis failed")
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        running = self.is_running()
        self.cancel_button.setEnabled(running)
        self.run_button.setEnabled(not running and bool(self._volumes))

    def _ask_materials(self) -> None:
        from micro3d_gui.properties.elastic import load_materials

        name, _ = QFileDialog.getOpenFileName(self, "Phase materials", "", "JSON (*.json)")
        if not name:
            return
        try:
            self.set_materials(load_materials(name))
        except InputError as exc:
            dialogs.show_error(self, "Materials", str(exc))
            return
        self._materials_path = Path(name)
        self.materials_button.setText(f"Materials: {self._materials_path.name}")

    @staticmethod
    def _summary(report: dict) -> str:
        n = report["num_volumes"]
        text = f"{n} volume{'' if n == 1 else 's'} analysed"
        if "s2_relative_error" in report:
            errs = ", ".join(f"{p} {v:.3f}" for p, v in report["s2_relative_error"].items())
            text += f"; S2 relative error vs {report['reference']}: {errs}"
        if "reference_volume" in report:
            errs = ", ".join(f"{p} {v:.3f}" for p, v in
                             report["reference_volume"]["s2_relative_error"].items())
            text += f"; vs reference volume: {errs}"
        return text

    # -- drawing -------------------------------------------------------------------------
    def _draw_empty(self) -> None:
        for plot in self.plots.values():
            self._show(plot, draw_message, "Nothing analysed yet")

    def _draw(self, raw: dict, num_phases: int) -> None:
        for key in ("s2", "lineal_path"):
            self._show(self.plots[key], draw_curves, key, raw, self._report, num_phases,
                       self.voxel_size, self.unit)
        self._show(self.plots["volume_fraction"], draw_fractions, raw, self._report,
                   num_phases)
        not_computed = (draw_message, "Not computed: tick Properties and press Analyse")
        if raw.get("diffusion"):
            self._show(self.plots["diffusivity"], draw_diffusivity, raw, num_phases)
        else:
            self._show(self.plots["diffusivity"], *not_computed)
        for key, draw in (("elastic", draw_elastic), ("cte", draw_cte)):
            if raw.get("elastic"):
                self._show(self.plots[key], draw, raw["elastic"])
            else:
                self._show(self.plots[key], *not_computed)

    @staticmethod
    def _show(plot: PlotWidget, draw, *args) -> None:
        """Redraw ``plot`` with ``draw(plot.figure, *args)`` (:mod:`.analysis_plots`); the
        table it returns is the plot's CSV."""
        plot.clear()
        table = draw(plot.figure, *args)
        if table is not None:
            plot.set_table(*table)
        plot.draw()

    # -- saving --------------------------------------------------------------------------
    def save_all(self, folder: str | os.PathLike) -> list[Path]:
        """Every plot as ``<key>.png`` and ``<key>.csv`` in ``folder``."""
        folder = Path(folder)
        written = []
        for key, plot in self.plots.items():
            written.append(plot.save_png(folder / f"{key}.png"))
            if plot.has_data():
                written.append(plot.save_csv(folder / f"{key}.csv"))
        return written

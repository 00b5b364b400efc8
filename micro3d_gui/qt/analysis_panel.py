"""The analysis panel: generated volumes against the micrographs (and a reference volume).

Plots S2 and lineal-path curves per plane with their relative errors, volume-fraction
histograms, and, on request, relative diffusivity per phase and direction and the elastic /
thermal-expansion constants as box plots over the volumes. The numbers and the report come
from :func:`micro3d_gui.metrics.report.run_evaluation` (the engine of ``micro3d
evaluate``), run in a superqt worker thread.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QTabWidget, QVBoxLayout, QWidget)
from superqt.utils import create_worker

from micro3d_gui.core.planes import PLANES, image_axes
from micro3d_gui.errors import InputError

from . import dialogs
from .plot_widget import PlotWidget
from .thumbnails import PHASE_COLOURS

AXES = ("z", "y", "x")
MODULI = ("E1", "E2", "E3", "G12", "G13", "G23")
POISSON = ("nu12", "nu13", "nu23")
CTE_KEYS = ("a11", "a22", "a33", "a12", "a13", "a23")
#: Plot tabs: key -> title.
TABS = {"s2": "S2", "lineal_path": "Lineal path", "volume_fraction": "Volume fractions",
        "diffusivity": "Diffusivity", "elastic": "Elastic", "cte": "CTE"}


class _Latest:
    """The newest progress of a run, written by the worker thread and read by a GUI timer
    (plain Python: no Qt object is touched from the worker, and updates are throttled)."""

    def __init__(self) -> None:
        self.value: tuple[float, str] | None = None

    def post(self, fraction: float, text: str) -> None:
        self.value = (float(fraction), text)


class _Run(QObject):
    """One analysis run. The worker's signals land in its slots; it is a child of the
    panel, so they are dropped if the panel goes away while the worker still runs."""

    def __init__(self, panel: "AnalysisPanel", worker, num_phases: int,
                 reference: str | None, stop: threading.Event, latest: _Latest) -> None:
        super().__init__(panel)
        self.panel, self.worker, self.num_phases, self.reference = (panel, worker,
                                                                    num_phases, reference)
        self.stop, self.latest = stop, latest
        # Deleted with the panel: the job then ends at its next check.
        self.destroyed.connect(stop.set)
        worker.yielded.connect(self.on_yielded)
        worker.returned.connect(self.on_returned)
        worker.errored.connect(self.on_errored)
        worker.finished.connect(self.on_finished)

    def current(self) -> bool:
        return self.panel._run is self

    def on_yielded(self, value) -> None:
        self.latest.post(*value)

    def on_returned(self, raw) -> None:
        if self.current() and raw is not None:  # None: stopped between steps
            self.panel._show_result(raw, self.num_phases, self.reference)

    def on_errored(self, exc) -> None:
        if self.current():
            self.panel._show_error(exc)

    def on_finished(self) -> None:
        if self.current():
            self.panel._run_ended(self)
        self.deleteLater()


def _phase_colour(k: int) -> tuple[float, float, float]:
    return tuple(PHASE_COLOURS[k % len(PHASE_COLOURS)] / 255.0)


def analysis_job(volumes: Sequence[np.ndarray], num_phases: int,
                 reference_planes: Mapping[str, Sequence[np.ndarray]] | None,
                 reference_volume: np.ndarray | None, properties: bool,
                 materials: Mapping | None, device: str, stop: threading.Event,
                 progress: Callable[[float, str], None] | None = None):
    """Generator run by the worker (a generator, so that superqt can stop it): runs
    :func:`micro3d_gui.metrics.report.run_evaluation` and returns its
    :class:`~micro3d_gui.metrics.report.Evaluation`, or None when stopped.

    ``progress(fraction, text)`` gets the evaluation's progress (from this thread).
    """
    from micro3d_gui.metrics.report import EvaluationCancelled, run_evaluation

    yield 0.0, "starting"

    def post(fraction: float, text: str) -> bool:
        if progress is not None:
            progress(fraction, text)
        return stop.is_set()

    try:
        return run_evaluation(volumes, num_phases, reference_planes,
                              reference_volume=reference_volume, diffusivity=properties,
                              elastic=properties, materials=materials, device=device,
                              progress=post, should_stop=stop.is_set)
    except EvaluationCancelled:
        return None


class AnalysisPanel(QWidget):
    """Metrics and properties of generated volumes, as plots that save to PNG and CSV."""

    finished = Signal(dict)
    progress = Signal(float, str)

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
        self._run: _Run | None = None
        self._latest = _Latest()
        self._timer = QTimer(self)  # draws progress at most 4 times a second
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._poll_progress)

        self.properties_check = QCheckBox("Properties (diffusivity, elastic, CTE)")
        self.properties_check.setToolTip("TauFactor and FFT homogenisation: slower")
        self.materials_button = QPushButton("Materials...")
        self.materials_button.setToolTip("Phase materials (JSON: {\"0\": {\"E\": GPa, "
                                         "\"nu\": ..., \"cte\": 1/K}, ...})")
        self.materials_button.clicked.connect(self._ask_materials)
        self.run_button = QPushButton("Analyse")
        self.run_button.clicked.connect(self._rerun)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.status_label = QLabel("No volumes analysed yet")
        self.status_label.setWordWrap(True)

        self.plots: dict[str, PlotWidget] = {}
        self.tabs = QTabWidget()
        for key, title in TABS.items():
            plot = PlotWidget(name=key)
            self.plots[key] = plot
            self.tabs.addTab(plot, title)

        controls = QHBoxLayout()
        controls.addWidget(self.properties_check)
        controls.addWidget(self.materials_button)
        controls.addStretch(1)
        controls.addWidget(self.run_button)
        controls.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
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
        reference = ("micrographs" if self._reference_planes is not None else
                     "volume" if self._reference_volume is not None else None)
        stop = threading.Event()
        self._latest = _Latest()  # a new holder: a cancelled run's late progress is unseen
        worker = create_worker(
            analysis_job, self._volumes, int(num_phases), self._reference_planes,
            self._reference_volume, bool(properties), self._materials, self.device, stop,
            self._latest.post, _start_thread=False, _ignore_errors=True)
        self._run = _Run(self, worker, int(num_phases), reference, stop, self._latest)
        self.status_label.setText("Analysing...")
        self.progress_bar.setValue(0)
        worker.start()
        self._timer.start()
        self._sync_buttons()

    def cancel(self) -> None:
        """Ask the running analysis to stop (it ends at its next check)."""
        if self._run is not None:
            self._run.stop.set()
            self._run.worker.quit()
            self.status_label.setText("Cancelling...")

    def is_running(self) -> bool:
        return self._run is not None

    def report(self) -> dict | None:
        """The last finished analysis' report, or None."""
        return self._report

    def _rerun(self) -> None:
        if self._volumes and self._num_phases:
            self.analyse(self._volumes, self._num_phases, self.properties_check.isChecked())

    def _poll_progress(self) -> None:
        value = self._latest.value
        if self._run is None or value is None or self._run.stop.is_set():
            return
        self._latest.value = None
        fraction, text = value
        self.progress_bar.setValue(int(round(1000 * fraction)))
        self.status_label.setText(text)
        self.progress.emit(fraction, text)

    def _show_result(self, evaluation, num_phases: int, reference: str | None) -> None:
        raw = vars(evaluation)  # metrics, metrics_volume, diffusion, elastic per volume
        self._raw = raw
        self._report = evaluation.report()
        self._draw(raw, num_phases)
        self.status_label.setText(self._summary(self._report))
        self.progress_bar.setValue(1000)
        self.finished.emit(self._report)

    def _show_error(self, exc: BaseException) -> None:
        self.status_label.setText("Analysis failed")
        dialogs.show_error(self, "Analysis failed", dialogs.error_text(exc))

    def _run_ended(self, run: _Run) -> None:
        if run.stop.is_set():
            self.status_label.setText("Analysis cancelled")
        self._run = None
        self._timer.stop()
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        running = self._run is not None
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
        text = f"{report['num_volumes']} volume(s) analysed"
        if "s2_relative_error" in report:
            errs = ", ".join(f"{p} {v:.3f}" for p, v in report["s2_relative_error"].items())
            text += f"; S2 relative error vs {report['reference']}: {errs}"
        return text

    # -- drawing -------------------------------------------------------------------------
    def _draw_empty(self) -> None:
        for key, plot in self.plots.items():
            plot.clear()
            ax = plot.figure.add_subplot()
            ax.set_axis_off()
            ax.text(0.5, 0.5, "Nothing analysed yet", ha="center", va="center")
            plot.draw()

    def _draw(self, raw: dict, num_phases: int) -> None:
        for key in ("s2", "lineal_path"):
            self._draw_curves(key, raw, num_phases)
        self._draw_fractions(raw, num_phases)
        self._draw_diffusivity(raw, num_phases)
        self._draw_elastic(raw)

    def _draw_curves(self, key: str, raw: dict, num_phases: int) -> None:
        plot = self.plots[key]
        plot.clear()
        metrics = raw["metrics"]
        has_ref = self._report["reference"] is not None
        by_volume = raw.get("metrics_volume")
        err_key = "s2_relative_error" if key == "s2" else "lineal_path_relative_error"
        # With two phases one phase's curve says it all; show every phase otherwise.
        phases = [1] if num_phases == 2 else list(range(num_phases))
        axes = plot.figure.subplots(1, len(PLANES), sharey=True)
        for ax, plane in zip(np.atleast_1d(axes), PLANES):
            if plane not in metrics[0]["curves"][key]:  # no micrographs of this plane
                ax.set_title(f"{plane}: no reference images", fontsize=9)
                ax.set_xlabel("r (voxels)")
                continue
            rows_axis, cols_axis = (AXES[a] for a in image_axes(plane))
            for k in phases:
                colour = _phase_colour(k)
                for direction, axis_name, marker in (("along_rows", rows_axis, "o"),
                                                     ("along_cols", cols_axis, "s")):
                    gen = [m["curves"][key][plane][str(k)]["generated"][direction]
                           for m in metrics]
                    n_r = min(len(g) for g in gen)
                    stack = np.array([g[:n_r] for g in gen], dtype=float)
                    r = np.arange(n_r)
                    ax.plot(r, stack.mean(0), color=colour, marker=marker, markersize=3,
                            label=f"generated φ{k} along {axis_name}")
                    if len(stack) > 1:
                        ax.fill_between(r, stack.min(0), stack.max(0), color=colour, alpha=0.15)
                    # References: hollow markers (same marker = same direction).
                    refs = []
                    if has_ref:
                        refs.append((metrics[0], "--", self._report["reference"]))
                    if by_volume:
                        refs.append((by_volume[0], ":", "reference volume"))
                    for source, style, name in refs:
                        ref = source["curves"][key][plane][str(k)]["reference"][direction]
                        ax.plot(np.arange(len(ref)), ref, color=colour, linestyle=style,
                                marker=marker, markersize=4, markerfacecolor="none",
                                label=f"{name} φ{k} along {axis_name}")
            title = plane
            if has_ref:
                err = self._report[err_key][plane]
                title += f": rel. error {err:.3f}"
                if by_volume:
                    title += f" (vs volume {self._report['reference_volume'][err_key][plane]:.3f})"
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("r (voxels)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)  # per plane: the directions differ (xz: z and x, ...)
        np.atleast_1d(axes)[0].set_ylabel("S2" if key == "s2" else "lineal path L")
        plot.draw()

    def _draw_fractions(self, raw: dict, num_phases: int) -> None:
        plot = self.plots["volume_fraction"]
        plot.clear()
        ax = plot.figure.add_subplot()
        fractions = np.array([[m["volume_fraction"][str(k)] for k in range(num_phases)]
                              for m in raw["metrics"]], dtype=float)
        rows = [[i, k, float(fractions[i, k]), "generated"]
                for i in range(len(fractions)) for k in range(num_phases)]
        bins = np.linspace(0.0, 1.0, 41)
        for k in range(num_phases):
            ax.hist(fractions[:, k], bins=bins, color=_phase_colour(k), alpha=0.7,
                    label=f"φ{k} generated")
        references = [(self._report["reference"], raw["metrics"][0], "--")]
        if raw.get("metrics_volume"):
            references.append(("reference volume", raw["metrics_volume"][0], ":"))
        for name, metrics, style in references:
            ref = metrics.get("reference_volume_fraction")
            if ref is None:
                continue
            for k in range(num_phases):
                ax.axvline(ref[str(k)], color=_phase_colour(k), linestyle=style,
                           label=f"φ{k} {name}")
                rows.append(["", k, float(ref[str(k)]), name])
        ax.set_xlabel("volume fraction")
        ax.set_ylabel("volumes")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"Volume fractions over {len(fractions)} volume(s)", fontsize=9)
        ax.legend(fontsize=7)
        plot.set_table(("volume", "phase", "fraction", "source"), rows)
        plot.draw()

    def _not_computed(self, plot: PlotWidget) -> None:
        plot.clear()
        ax = plot.figure.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "Not computed: tick Properties and press Analyse",
                ha="center", va="center")
        plot.draw()

    def _draw_diffusivity(self, raw: dict, num_phases: int) -> None:
        plot = self.plots["diffusivity"]
        if not raw.get("diffusion"):
            self._not_computed(plot)
            return
        plot.clear()
        ax = plot.figure.add_subplot()
        data, names, colours, rows = [], [], [], []
        for k in range(num_phases):
            for axis in AXES:
                values = []
                for i, d in enumerate(raw["diffusion"]):
                    entry = d[k] if k in d else d[str(k)]
                    value = float(entry["relative_diffusivity"][axis])
                    values.append(value)
                    rows.append([i, k, axis, value, float(entry["tortuosity"][axis])])
                data.append(values)
                names.append(f"φ{k} {axis}")
                colours.append(_phase_colour(k))
        boxes = ax.boxplot(data, patch_artist=True)
        for patch, colour in zip(boxes["boxes"], colours):
            patch.set_facecolor((*colour, 0.5))
        ax.set_xticks(range(1, len(names) + 1), names, fontsize=8)
        ax.set_ylabel("relative diffusivity D_eff / D_0")
        ax.set_title(f"Relative diffusivity per phase and direction "
                     f"({len(raw['diffusion'])} volume(s))", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        plot.set_table(("volume", "phase", "direction", "relative_diffusivity", "tortuosity"),
                       rows)
        plot.draw()

    def _draw_elastic(self, raw: dict) -> None:
        elastic, cte_plot = self.plots["elastic"], self.plots["cte"]
        if not raw.get("elastic"):
            self._not_computed(elastic)
            self._not_computed(cte_plot)
            return
        results = raw["elastic"]
        elastic.clear()
        ax_mod, ax_nu = elastic.figure.subplots(1, 2, width_ratios=(2, 1))
        ax_mod.boxplot([[r.constants[c] for r in results] for c in MODULI])
        ax_mod.set_xticks(range(1, len(MODULI) + 1), MODULI)
        ax_mod.set_ylabel("modulus (GPa)")
        ax_mod.set_title("Young's and shear moduli (1 = x, 2 = y, 3 = z)", fontsize=9)
        ax_nu.boxplot([[r.constants[c] for r in results] for c in POISSON])
        ax_nu.set_xticks(range(1, len(POISSON) + 1), POISSON)
        ax_nu.set_ylabel("Poisson's ratio")
        ax_nu.set_title("Poisson's ratios", fontsize=9)
        for ax in (ax_mod, ax_nu):
            ax.grid(alpha=0.3, axis="y")
        elastic.set_table(("volume", "constant", "value", "unit"),
                          [[i, c, float(r.constants[c]), "GPa" if c in MODULI else ""]
                           for i, r in enumerate(results) for c in MODULI + POISSON])
        elastic.draw()

        cte_plot.clear()
        ax = cte_plot.figure.add_subplot()
        ax.boxplot([[r.cte[c] * 1e6 for r in results] for c in CTE_KEYS])
        ax.set_xticks(range(1, len(CTE_KEYS) + 1), CTE_KEYS)
        ax.set_ylabel("thermal expansion (10^-6 / K)")
        ax.set_title(f"Effective CTE ({len(results)} volume(s); 1 = x, 2 = y, 3 = z)",
                     fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        cte_plot.set_table(("volume", "coefficient", "value_per_K"),
                           [[i, c, float(r.cte[c])] for i, r in enumerate(results)
                            for c in CTE_KEYS])
        cte_plot.draw()

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

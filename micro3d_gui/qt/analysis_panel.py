"""The analysis panel: generated volumes against the micrographs (and a reference volume).

Plots S2 and lineal-path curves per plane with their relative errors, volume-fraction
histograms, and, on request, relative diffusivity per phase and direction and the elastic /
thermal-expansion constants as box plots over the volumes. The numbers and the report come
from :func:`micro3d_gui.metrics.report.run_evaluation` (the engine of ``micro3d
evaluate``), run as a :class:`~micro3d_gui.qt.jobs.Job`.

Its Analyse button asks (``analyse_requested``) rather than runs: the main window gathers
the references (segmented micrographs, reference volume) and calls :meth:`AnalysisPanel.analyse`,
so the panel's button and the Generate panel's give the same comparison.

Colours (:mod:`.palette`): with two phases one colour per direction (x, y, z) and one line
style per source (generated solid, micrographs dashed, reference volume dotted); with K >= 3
phases one colour per phase and one marker per direction. Legends sit beside the axes.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QTabWidget, QVBoxLayout, QWidget)

from micro3d_gui.core.planes import PLANES, image_axes
from micro3d_gui.errors import InputError

from . import dialogs
from .jobs import Job, throttled
from .palette import direction_hex, phase_float
from .plot_widget import PlotWidget

AXES = ("z", "y", "x")
MODULI = ("E1", "E2", "E3", "G12", "G13", "G23")
POISSON = ("nu12", "nu13", "nu23")
CTE_KEYS = ("a11", "a22", "a33", "a12", "a13", "a23")
#: Plot tabs: key -> title.
TABS = {"s2": "S2", "lineal_path": "Lineal path", "volume_fraction": "Volume fractions",
        "diffusivity": "Diffusivity", "elastic": "Elastic", "cte": "CTE"}


#: Line style per source of a curve.
SOURCE_STYLES = {"generated": "-", "micrographs": "--", "volume": "--",
                 "reference volume": ":"}
#: Marker per image direction (rows, columns) when colours are taken by phases.
DIRECTION_MARKERS = {"along_rows": "o", "along_cols": "s"}
LEGEND_FONT = 8
TITLE_FONT = 9


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

    def _r_axis(self, n: int) -> tuple[np.ndarray, str]:
        """Lags 0..n-1 in physical units when a voxel size is set, and the axis label."""
        if self.voxel_size:
            return np.arange(n) * self.voxel_size, f"r ({self.unit})"
        return np.arange(n, dtype=float), "r (voxels)"

    def _draw_curves(self, key: str, raw: dict, num_phases: int) -> None:
        plot = self.plots[key]
        plot.clear()
        metrics = raw["metrics"]
        reference = self._report["reference"]
        by_volume = raw.get("metrics_volume")
        err_key = "s2_relative_error" if key == "s2" else "lineal_path_relative_error"
        # With two phases one phase's curve says it all (coloured by direction); with
        # K >= 3 every phase, coloured by phase, the direction told by the marker.
        by_phase = num_phases > 2
        phases = list(range(num_phases)) if by_phase else [1]
        sources = [("generated", metrics, "generated")]
        if reference is not None:
            sources.append((reference, metrics, "reference"))
        if by_volume:
            sources.append(("reference volume", by_volume, "reference"))
        axes = np.atleast_1d(plot.figure.subplots(1, len(PLANES), sharey=True))
        r_label = self._r_axis(1)[1]
        directions_seen: dict[str, None] = {}
        for ax, plane in zip(axes, PLANES):
            ax.set_xlabel(r_label)
            if plane not in metrics[0]["curves"][key]:  # no micrographs of this plane
                ax.set_title(f"{plane}: no reference images", fontsize=TITLE_FONT)
                continue
            rows_axis, cols_axis = (AXES[a] for a in image_axes(plane))
            for k in phases:
                for direction, axis_name in (("along_rows", rows_axis),
                                             ("along_cols", cols_axis)):
                    directions_seen[axis_name] = None
                    colour = phase_float(k) if by_phase else direction_hex(axis_name)
                    marker = DIRECTION_MARKERS[direction] if by_phase else None
                    for name, source, field in sources:
                        if field == "generated":
                            curves = [m["curves"][key][plane][str(k)][field][direction]
                                      for m in source]
                        else:
                            curves = [source[0]["curves"][key][plane][str(k)][field][direction]]
                        n_r = min(len(c) for c in curves)
                        stack = np.array([c[:n_r] for c in curves], dtype=float)
                        r, _ = self._r_axis(n_r)
                        ax.plot(r, stack.mean(0), color=colour, linestyle=SOURCE_STYLES[name],
                                marker=marker, markersize=3, markevery=max(1, n_r // 8),
                                lw=1.6 if field == "generated" else 1.2,
                                label=f"{name} φ{k} along {axis_name}")
                        if len(stack) > 1:
                            ax.fill_between(r, stack.min(0), stack.max(0), color=colour,
                                            alpha=0.15)
            ax.set_title(self._curve_title(plane, err_key), fontsize=TITLE_FONT)
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("S2" if key == "s2" else "lineal path L")
        self._figure_legend(plot, sources, phases if by_phase else None,
                            list(directions_seen))
        plot.draw()

    def _curve_title(self, plane: str, err_key: str) -> str:
        """``plane`` and its relative errors against each reference (Sec. 4's measure)."""
        report = self._report
        parts = []
        if report["reference"] is not None:
            parts.append(f"{report[err_key][plane]:.3f} vs {report['reference']}")
        if "reference_volume" in report and plane in report["reference_volume"][err_key]:
            parts.append(f"{report['reference_volume'][err_key][plane]:.3f} vs volume")
        return plane + (": rel. error " + ",\n".join(parts) if parts else "")

    @staticmethod
    def _figure_legend(plot: PlotWidget, sources, phases, directions) -> None:
        """One legend for the figure, beside the axes: colours, then line styles."""
        handles = []
        if phases is None:
            handles += [Line2D([], [], color=direction_hex(a), lw=2, label=f"along {a}")
                        for a in sorted(directions)]
        else:
            handles += [Line2D([], [], color=phase_float(k), lw=2, label=f"φ{k}")
                        for k in phases]
            handles += [Line2D([], [], color="grey", marker=m, linestyle="none",
                               label="along rows" if d == "along_rows" else "along columns")
                        for d, m in DIRECTION_MARKERS.items()]
        handles += [Line2D([], [], color="black", linestyle=SOURCE_STYLES[name], label=name)
                    for name, _, _ in sources]
        # Right of the plots: the dock is wider than tall.
        plot.figure.legend(handles=handles, loc="outside right upper", fontsize=LEGEND_FONT,
                           frameon=False)

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
            ax.hist(fractions[:, k], bins=bins, color=phase_float(k), alpha=0.7,
                    label=f"φ{k} generated")
        references = [(self._report["reference"], raw["metrics"][0], "--")]
        if raw.get("metrics_volume"):
            references.append(("reference volume", raw["metrics_volume"][0], ":"))
        for name, metrics, style in references:
            if name is None:
                continue
            ref = metrics.get("reference_volume_fraction")
            if ref is None:
                continue
            for k in range(num_phases):
                ax.axvline(ref[str(k)], color=phase_float(k), linestyle=style,
                           label=f"φ{k} {name}")
                rows.append(["", k, float(ref[str(k)]), name])
        ax.set_xlabel("volume fraction")
        ax.set_ylabel("volumes")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"Volume fractions over {len(fractions)} volume(s)", fontsize=TITLE_FONT)
        ax.legend(fontsize=LEGEND_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  frameon=False)
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
                colours.append(phase_float(k))
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

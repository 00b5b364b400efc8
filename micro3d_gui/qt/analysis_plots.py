"""The Analysis panel's figures, drawn on matplotlib Figures (no Qt).

Each ``draw_*`` function draws on an empty ``figure`` and returns the
table its CSV holds (``(columns, rows)``), or None when the figure's lines are the data
(see :meth:`~micro3d_gui.qt.plot_widget.PlotWidget.table`). ``raw`` is the fields of a
:class:`~micro3d_gui.metrics.report.Evaluation` (``vars(evaluation)``) and ``report`` its
:meth:`~micro3d_gui.metrics.report.Evaluation.report`.

Colours (:mod:`.palette`): with two phases one colour per direction (x, y, z) and one line
style per source (generated solid, micrographs dashed, reference volume dotted); with K >= 3
phases one colour per phase and one marker per direction. Legends sit beside the axes.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from micro3d_gui.core.planes import PLANES, image_axes

from .palette import direction_hex, phase_float

AXES = ("z", "y", "x")
MODULI = ("E1", "E2", "E3", "G12", "G13", "G23")
POISSON = ("nu12", "nu13", "nu23")
CTE_KEYS = ("a11", "a22", "a33", "a12", "a13", "a23")
#: Line style per source of a curve.
SOURCE_STYLES = {"generated": "-", "micrographs": "--", "volume": "--",
                 "reference volume": ":"}
#: Marker per image direction (rows, columns) when colours are taken by phases.
DIRECTION_MARKERS = {"along_rows": "o", "along_cols": "s"}
LEGEND_FONT = 8
TITLE_FONT = 9

Table = tuple[tuple[str, ...], list[list]]


def draw_message(figure: Figure, text: str) -> None:
    """``text`` in the middle of an axis-less figure (nothing analysed, not computed)."""
    ax = figure.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center")


def r_axis(n: int, voxel_size: float | None, unit: str) -> tuple[np.ndarray, str]:
    """Lags 0..n-1 in physical units when a voxel size is set, and the axis label."""
    if voxel_size:
        return np.arange(n) * voxel_size, f"r ({unit})"
    return np.arange(n, dtype=float), "r (voxels)"


def draw_curves(figure: Figure, key: str, raw: dict, report: dict, num_phases: int,
                voxel_size: float | None = None, unit: str = "µm") -> None:
    """S2 (``key`` "s2") or lineal-path curves, one axes per plane, the mean over the
    volumes with their min..max band; r in ``unit`` when ``voxel_size`` is set."""
    metrics = raw["metrics"]
    reference = report["reference"]
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
    axes = np.atleast_1d(figure.subplots(1, len(PLANES), sharey=True))
    r_label = r_axis(1, voxel_size, unit)[1]
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
                    r, _ = r_axis(n_r, voxel_size, unit)
                    ax.plot(r, stack.mean(0), color=colour, linestyle=SOURCE_STYLES[name],
                            marker=marker, markersize=3, markevery=max(1, n_r // 8),
                            lw=1.6 if field == "generated" else 1.2,
                            label=f"{name} φ{k} along {axis_name}")
                    if len(stack) > 1:
                        ax.fill_between(r, stack.min(0), stack.max(0), color=colour,
                                        alpha=0.15)
        ax.set_title(curve_title(report, plane, err_key), fontsize=TITLE_FONT)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("S2" if key == "s2" else "lineal path L")
    figure_legend(figure, sources, phases if by_phase else None, list(directions_seen))


def curve_title(report: dict, plane: str, err_key: str) -> str:
    """``plane`` and its relative errors against each reference (Sec. 4's measure)."""
    parts = []
    if report["reference"] is not None:
        parts.append(f"{report[err_key][plane]:.3f} vs {report['reference']}")
    if "reference_volume" in report and plane in report["reference_volume"][err_key]:
        parts.append(f"{report['reference_volume'][err_key][plane]:.3f} vs volume")
    return plane + (": rel. error " + ",\n".join(parts) if parts else "")


def figure_legend(figure: Figure, sources, phases, directions) -> None:
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
    figure.legend(handles=handles, loc="outside right upper", fontsize=LEGEND_FONT,
                  frameon=False)


def draw_fractions(figure: Figure, raw: dict, report: dict, num_phases: int) -> Table:
    """Histograms of each phase's volume fraction over the volumes; the references' as
    vertical lines."""
    ax = figure.add_subplot()
    fractions = np.array([[m["volume_fraction"][str(k)] for k in range(num_phases)]
                          for m in raw["metrics"]], dtype=float)
    rows = [[i, k, float(fractions[i, k]), "generated"]
            for i in range(len(fractions)) for k in range(num_phases)]
    bins = np.linspace(0.0, 1.0, 41)
    for k in range(num_phases):
        ax.hist(fractions[:, k], bins=bins, color=phase_float(k), alpha=0.7,
                label=f"φ{k} generated")
    references = [(report["reference"], raw["metrics"][0], "--")]
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
    return ("volume", "phase", "fraction", "source"), rows


def draw_diffusivity(figure: Figure, raw: dict, num_phases: int) -> Table:
    """Box plots of the relative diffusivity per phase and direction over the volumes
    (``raw["diffusion"]`` computed)."""
    ax = figure.add_subplot()
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
    return ("volume", "phase", "direction", "relative_diffusivity", "tortuosity"), rows


def draw_elastic(figure: Figure, results: Sequence) -> Table:
    """Box plots of the elastic constants over the volumes (``results``: an
    :class:`~micro3d_gui.properties.elastic.ElasticResult` per volume, moduli in GPa)."""
    ax_mod, ax_nu = figure.subplots(1, 2, width_ratios=(2, 1))
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
    return (("volume", "constant", "value", "unit"),
            [[i, c, float(r.constants[c]), "GPa" if c in MODULI else ""]
             for i, r in enumerate(results) for c in MODULI + POISSON])


def draw_cte(figure: Figure, results: Sequence) -> Table:
    """Box plots of the thermal-expansion coefficients over the volumes (``cte`` in 1/K,
    drawn in 10^-6 / K)."""
    ax = figure.add_subplot()
    ax.boxplot([[r.cte[c] * 1e6 for r in results] for c in CTE_KEYS])
    ax.set_xticks(range(1, len(CTE_KEYS) + 1), CTE_KEYS)
    ax.set_ylabel("thermal expansion (10^-6 / K)")
    ax.set_title(f"Effective CTE ({len(results)} volume(s); 1 = x, 2 = y, 3 = z)",
                 fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    return (("volume", "coefficient", "value_per_K"),
            [[i, c, float(r.cte[c])] for i, r in enumerate(results) for c in CTE_KEYS])


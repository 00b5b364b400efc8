"""The Train panel's live plot and words: the loss, and the fidelity reports of
:class:`~micro3d_gui.metrics.fidelity.FidelityMonitor` (S2 and lineal-path errors of the
model's 2D samples per plane, beside their floors)."""
from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullFormatter
from PySide6.QtWidgets import QWidget

from .jobs import throttled
from .palette import PLANE_HEX
from .plot_widget import PlotWidget


class LossPlot(PlotWidget):
    """Left: training loss per step (light) and its running mean. Right: the fidelity
    reports, the S2 error (top) and the lineal-path error (bottom) of 2D samples per plane
    (one colour each) with the plane's floor dashed; reports from before the lineal path
    leave the bottom empty. Redrawn at most twice a second."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, name="training_loss", figsize=(4.0, 3.0))
        self.canvas.setMinimumHeight(200)
        self.losses: list[float] = []
        self.fidelity: list[dict] = []
        self.draw_count = 0
        self._schedule = throttled(self.redraw, 500, self)  # <= 2 redraws a second
        self.redraw()

    def set_history(self, losses: list[float], fidelity: list[dict] = ()) -> None:
        self.losses = [float(v) for v in losses]
        self.fidelity = list(fidelity)
        self.redraw()

    def set_losses(self, losses: list[float]) -> None:
        self.set_history(losses, self.fidelity if losses else [])

    def append(self, loss: float, fidelity: dict | None = None) -> None:
        self.losses.append(float(loss))
        if fidelity is not None:
            self.fidelity.append(fidelity)
        self._schedule()

    def redraw(self) -> None:
        self.figure.clear()
        grid = self.figure.add_gridspec(2, 2)
        ax = self.figure.add_subplot(grid[:, 0])
        fx = self.figure.add_subplot(grid[0, 1])  # figure.axes[1]: S2
        lx = self.figure.add_subplot(grid[1, 1], sharex=fx)  # figure.axes[2]: lineal path
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        if self.losses:
            y = np.asarray(self.losses)
            x = np.arange(1, len(y) + 1)
            ax.plot(x, y, color="#9bb7d4", lw=0.8, label="loss")
            w = max(1, min(50, len(y) // 10))
            mean = np.convolve(y, np.ones(w) / w, mode="valid")
            ax.plot(x[w - 1:], mean, color="#1f4e8c", lw=1.5, label=f"mean of {w}")
            if y.min() > 0:
                ax.set_yscale("log")
                # Minor labels (9 x 10^-1, 8 x 10^-1 ...) crowd a narrow dock: majors only.
                ax.yaxis.set_minor_formatter(NullFormatter())
            ax.legend(loc="best", fontsize="x-small", framealpha=0.7)
        else:
            ax.text(0.5, 0.5, "no training yet", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
        fx.set_ylabel("S2 error", fontsize="x-small")
        lx.set_ylabel("lineal path error", fontsize="x-small")
        lx.set_xlabel("step")
        fx.tick_params(labelbottom=False)
        for axes, key, floor in ((fx, "errors", "floor"),
                                 (lx, "lineal_path", "lineal_path_floor")):
            axes.tick_params(labelsize="x-small")
            axes.xaxis.set_major_locator(MaxNLocator(3, integer=True))
            self._plot_fidelity(axes, key, floor)
        self.draw()
        self.draw_count += 1

    def _plot_fidelity(self, axes, key: str, floor: str) -> None:
        """Errors ``report[key][plane]`` per report against the step, the last report's
        ``report[floor][plane]`` dashed; only the reports that carry ``key``."""
        reports = [r for r in self.fidelity if key in r]
        if not reports:
            text = ("fidelity: after\nthe first minutes" if key == "errors" or not self.fidelity
                    else "not in these\nreports")
            axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes,
                      color="grey", fontsize="x-small")
            return
        steps = [r["step"] for r in reports]
        for plane, colour in PLANE_HEX.items():
            if plane not in reports[-1][key]:
                continue
            axes.plot(steps, [r[key][plane] for r in reports], "o-", color=colour, ms=3,
                      lw=1.2, label=plane)
            axes.axhline(reports[-1][floor][plane], color=colour, ls="--", lw=0.8)
        axes.set_ylim(bottom=0)
        if key == "errors":
            floor_key = Line2D([], [], color="grey", ls="--", lw=0.8, label="floor")
            axes.legend(handles=[*axes.get_lines()[::2], floor_key], loc="upper right",
                        fontsize="xx-small", framealpha=0.7, handlelength=1.5)


def fidelity_text(report: dict) -> str:
    """The fidelity report in words, for the panel (S2 and, in reports that have it, the
    lineal path: each as its ratio to the floor)."""
    measures = [("S2", "errors", "floor")]
    if "lineal_path" in report:
        measures.append(("lineal path", "lineal_path", "lineal_path_floor"))
    ratios = {(name, p): e / max(report[floor][p], 1e-12)
              for name, key, floor in measures for p, e in report[key].items()}
    detail = "; ".join(f"{name} " + ", ".join(f"{p} {r:.1f}x" for (n, p), r in ratios.items()
                                               if n == name) for name, _, _ in measures)
    if report.get("at_floor"):
        return (f"At step {report['step']} the model's samples are at the micrographs' own "
                f"floor on every plane ({detail} the floor): more training will not show.")
    name, worst = max(ratios, key=ratios.get)
    return (f"At step {report['step']}: error of 2D samples {detail} the floor; "
            f"{worst} is furthest from its micrographs ({name}).")

"""A matplotlib figure in a Qt widget, with "Save PNG" and "Save CSV" buttons.

The CSV holds the data behind the plot in long format (one value per row), so that it opens
in a spreadsheet and can be re-plotted elsewhere. By default it is the x/y data of every
line drawn; a panel that plots other artists (histograms, box plots) hands its table over
with :meth:`PlotWidget.set_table`.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QPushButton, QSizePolicy,
                               QVBoxLayout, QWidget)

from micro3d_gui.io.atomic import atomic_path

from . import dialogs

LINE_COLUMNS = ("axes", "line", "x", "y")


class PlotWidget(QWidget):
    """``figure`` (matplotlib :class:`~matplotlib.figure.Figure`) drawn on ``canvas``."""

    def __init__(self, parent: QWidget | None = None, name: str = "plot",
                 figsize: tuple[float, float] = (6.0, 3.5)) -> None:
        super().__init__(parent)
        self.name = name  # default file name stem in the save dialogs
        self.figure = Figure(figsize=figsize, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.canvas.setMinimumHeight(180)
        self._table: tuple[list[str], list[Sequence]] | None = None

        self.save_png_button = QPushButton("Save PNG")
        self.save_csv_button = QPushButton("Save CSV")
        self.save_png_button.setToolTip("Save the figure as a PNG image")
        self.save_csv_button.setToolTip("Save the plotted data as a CSV table")
        self.save_png_button.clicked.connect(self._ask_png)
        self.save_csv_button.clicked.connect(self._ask_csv)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.save_png_button)
        buttons.addWidget(self.save_csv_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(buttons)

    # -- drawing -------------------------------------------------------------------------
    def clear(self) -> None:
        """Empty figure, no table."""
        self.figure.clear()
        self._table = None

    def draw(self) -> None:
        self.canvas.draw_idle()

    def set_table(self, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
        """The CSV's content (replaces the default: the lines' x/y data)."""
        self._table = (list(columns), [list(r) for r in rows])

    def table(self) -> tuple[list[str], list[list]]:
        """Header and rows the CSV gets: the table set, else every line's (x, y) points."""
        if self._table is not None:
            return self._table[0], self._table[1]
        rows = []
        for i, ax in enumerate(self.figure.axes):
            title = ax.get_title() or f"axes {i}"
            for line in ax.get_lines():
                label = line.get_label()
                if label.startswith("_"):  # matplotlib's unlabelled helper lines
                    continue
                for x, y in zip(line.get_xdata(), line.get_ydata()):
                    rows.append([title, label, float(x), float(y)])
        return list(LINE_COLUMNS), rows

    def has_data(self) -> bool:
        return bool(self.table()[1])

    # -- saving --------------------------------------------------------------------------
    def save_png(self, path: str | os.PathLike, dpi: int = 150) -> Path:
        """Write the figure as a PNG (atomically)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            self.figure.savefig(tmp, format="png", dpi=dpi)
        return path

    def save_csv(self, path: str | os.PathLike) -> Path:
        """Write :meth:`table` as CSV (atomically)."""
        path = Path(path)
        header, rows = self.table()
        with atomic_path(path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(header)
                writer.writerows(rows)
        return path

    def _ask_png(self) -> None:
        self._ask_save("Save figure", "PNG image (*.png)", ".png", self.save_png)

    def _ask_csv(self) -> None:
        self._ask_save("Save plot data", "CSV table (*.csv)", ".csv", self.save_csv)

    def _ask_save(self, title: str, filt: str, suffix: str, write) -> None:
        name, _ = QFileDialog.getSaveFileName(self, title, self.name + suffix, filt)
        if not name:
            return
        path = Path(name)
        if path.suffix.lower() != suffix:
            path = path.with_name(path.name + suffix)
        try:
            write(path)
        except OSError as exc:
            dialogs.show_error(self, title, f"{path}: cannot be written ({exc}); "
                               "choose another folder")

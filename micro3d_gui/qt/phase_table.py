"""The phase table: a name, a colour and an opacity per phase, editable.

Defaults come from :mod:`.palette`; names default to "phase k". The table keeps the style
of every phase seen, so a user's names and colours survive a new volume. The viewport owns
it (its 3D view, 2D panes and legend follow it); the main window shows it in a dock.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QColorDialog, QDoubleSpinBox, QHeaderView, QPushButton,
                               QTableWidget, QTableWidgetItem, QWidget)

from .palette import phase_hex


class PhaseTable(QTableWidget):
    """Columns: name (editable text), colour (a swatch that opens a colour dialog),
    opacity (0..1). ``style_changed`` after any edit."""

    style_changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(["Phase", "Colour", "Opacity"])
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.verticalHeader().setVisible(False)
        self.setToolTip("Phase names, colours and opacities of the 3D view, the 2D panes "
                        "and the legends (double-click a name to edit it)")
        self.names: list[str] = []
        self.colours: list[str] = []
        self.opacities: list[float] = []
        self._filling = False
        self.itemChanged.connect(self._name_edited)

    def set_num_phases(self, k: int) -> None:
        """Show ``k`` rows (phases beyond the known ones get the defaults)."""
        for j in range(len(self.names), k):
            self.names.append(f"phase {j}")
            self.colours.append(phase_hex(j))
            self.opacities.append(1.0)
        if self.rowCount() != k:
            self._filling = True
            try:
                old = self.rowCount()
                self.setRowCount(k)
                for j in range(old, k):
                    self._add_row(j)
            finally:
                self._filling = False
            self._show()

    def reset(self) -> None:
        """Forget every phase's style (a new project): the defaults again."""
        self.names, self.colours, self.opacities = [], [], []
        self.setRowCount(0)
        self.style_changed.emit()

    def set_style(self, names=None, colours=None, opacities=None) -> None:
        k = max(len(x) for x in (names or [], colours or [], opacities or [], self.names))
        self.set_num_phases(max(k, self.rowCount()))
        for target, values in ((self.names, names), (self.colours, colours),
                               (self.opacities, opacities)):
            for j, v in enumerate(values or []):
                target[j] = v
        self._show()
        self.style_changed.emit()

    def rgb(self) -> np.ndarray:
        """``[K, 3]`` uint8 colours (for the 2D panes)."""
        return np.array([QColor(c).getRgb()[:3] for c in self.colours] or [[0, 0, 0]],
                        dtype=np.uint8)

    def _add_row(self, j: int) -> None:
        self.setItem(j, 0, QTableWidgetItem())
        button = QPushButton()
        button.setFixedWidth(36)
        button.clicked.connect(lambda _=False, j=j: self._ask_colour(j))
        self.setCellWidget(j, 1, button)
        spin = QDoubleSpinBox()
        spin.setRange(0.0, 1.0)
        spin.setSingleStep(0.1)
        spin.valueChanged.connect(lambda v, j=j: self._set_opacity(j, v))
        self.setCellWidget(j, 2, spin)

    def _show(self) -> None:
        """The rows from the lists (no signals)."""
        self._filling = True
        try:
            for j in range(self.rowCount()):
                self.item(j, 0).setText(self.names[j])
                button = self.cellWidget(j, 1)
                button.setStyleSheet(f"background: {self.colours[j]};")
                button.setToolTip(f"Colour of {self.names[j]}")
                spin = self.cellWidget(j, 2)
                spin.blockSignals(True)
                spin.setValue(self.opacities[j])
                spin.blockSignals(False)
                spin.setToolTip(f"Opacity of {self.names[j]} in the 3D view")
        finally:
            self._filling = False

    def _name_edited(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != 0:
            return
        self.names[item.row()] = item.text().strip() or f"phase {item.row()}"
        self.style_changed.emit()

    def _set_opacity(self, j: int, value: float) -> None:
        self.opacities[j] = float(value)
        self.style_changed.emit()

    def _ask_colour(self, j: int) -> None:
        colour = QColorDialog.getColor(QColor(self.colours[j]), self,
                                       f"Colour of {self.names[j]}")
        if colour.isValid():
            self.set_style(colours=[*self.colours[:j], colour.name(), *self.colours[j + 1:]])

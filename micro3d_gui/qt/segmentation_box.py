"""The Data panel's segmentation controls: method, K, thresholds, before / after preview,
per-plane phase fractions and warnings (widgets only; the panel wires them)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFormLayout, QGridLayout,
                               QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from micro3d_gui.core.planes import PLANES
from micro3d_gui.preprocess.segment import MAX_OTSU_PHASES, Segmentation
from micro3d_gui.session.data import METHODS

from .palette import phase_rgb

PREVIEW_SIZE = 128
#: The widgets the Data panel exposes under the same names.
WIDGETS = ("method_combo", "phases_spin", "thresholds_edit", "preview_plane", "preview_index",
           "preview_before", "preview_after", "thresholds_label", "fractions_table",
           "warning_label")


class SegmentationBox(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Segmentation", parent)
        self.method_combo = QComboBox()
        for method, text in METHODS:
            self.method_combo.addItem(text, method)
        self.method_combo.setToolTip("How grey micrographs become phase labels (one set of "
                                     "thresholds for all planes)")
        self.phases_spin = QSpinBox()
        self.phases_spin.setRange(2, MAX_OTSU_PHASES)
        self.phases_spin.setToolTip("Number of phases K for multi-Otsu")
        self.thresholds_edit = QLineEdit()
        self.thresholds_edit.setPlaceholderText("grey thresholds, e.g. 90, 170")
        self.thresholds_edit.setToolTip("Increasing grey values separating phase 0|1, 1|2, ...")

        self.preview_plane = QComboBox()
        self.preview_plane.addItems(list(PLANES))
        self.preview_index = QSpinBox()
        self.preview_index.setRange(0, 0)
        self.preview_before = QLabel()
        self.preview_after = QLabel()
        for label in (self.preview_before, self.preview_after):
            label.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setStyleSheet("background: #202020; color: #c0c0c0;")

        self.thresholds_label = QLabel()
        self.thresholds_label.setToolTip("The thresholds the segmentation used")
        self.fractions_table = QTableWidget(0, 0)
        self.fractions_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.fractions_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.Stretch)
        self.fractions_table.setMaximumHeight(120)
        self.warning_label = QLabel()
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("color: #b00020; font-weight: bold;")
        self.warning_label.setVisible(False)

        form = QFormLayout()
        form.addRow("Method", self.method_combo)
        form.addRow("Phases (K)", self.phases_spin)
        form.addRow("Thresholds", self.thresholds_edit)
        form.addRow("Used", self.thresholds_label)
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Preview"))
        pick.addWidget(self.preview_plane)
        pick.addWidget(QLabel("image"))
        pick.addWidget(self.preview_index)
        pick.addStretch(1)
        previews = QGridLayout()
        previews.addWidget(QLabel("Before (grey)"), 0, 0)
        previews.addWidget(QLabel("After (phases)"), 0, 1)
        previews.addWidget(self.preview_before, 1, 0)
        previews.addWidget(self.preview_after, 1, 1)
        previews.setColumnStretch(2, 1)
        column = QVBoxLayout(self)
        column.addLayout(form)
        column.addLayout(pick)
        column.addLayout(previews)
        column.addWidget(QLabel("Phase fractions per plane"))
        column.addWidget(self.fractions_table)
        column.addWidget(self.warning_label)
        self.sync_controls()

    def set_controls(self, method: str, phases: int, thresholds_text: str) -> None:
        """Set the controls without emitting their change signals."""
        index = self.method_combo.findData(method)
        if index < 0:
            raise ValueError(f"unknown segmentation method {method!r}; choose one of "
                             f"{', '.join(m for m, _ in METHODS)}")
        widgets = (self.method_combo, self.phases_spin, self.thresholds_edit)
        for w in widgets:
            w.blockSignals(True)
        self.method_combo.setCurrentIndex(index)
        self.phases_spin.setValue(max(2, int(phases)))
        self.thresholds_edit.setText(thresholds_text)
        for w in widgets:
            w.blockSignals(False)
        self.sync_controls()

    def sync_controls(self) -> None:
        method = self.method_combo.currentData()
        self.phases_spin.setEnabled(method == "multiotsu")
        self.thresholds_edit.setEnabled(method == "manual")

    def show_result(self, seg: Segmentation | None, messages: list[str]) -> None:
        """The fractions table (tinted in the phase colours), thresholds and messages."""
        table = self.fractions_table
        table.clear()
        if seg is None:
            table.setRowCount(0)
            table.setColumnCount(0)
            self.thresholds_label.setText("-")
        else:
            planes = [p for p in PLANES if p in seg.fractions]
            table.setRowCount(len(planes))
            table.setColumnCount(seg.num_phases)
            table.setHorizontalHeaderLabels([f"phase {k}" for k in range(seg.num_phases)])
            table.setVerticalHeaderLabels(planes)
            for r, p in enumerate(planes):
                for k, f in enumerate(seg.fractions[p]):
                    item = QTableWidgetItem(f"{f:.3f}")
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    colour = QColor(*phase_rgb(k))
                    colour.setAlpha(60)
                    item.setBackground(colour)
                    table.setItem(r, k, item)
            self.thresholds_label.setText(", ".join(f"{t:g}" for t in seg.thresholds) or "-")
        self.warning_label.setText("\n".join(messages))
        self.warning_label.setVisible(bool(messages))

"""Export generated volumes (VTK image data, ImageJ TIFF stack, NumPy) and the report.

Writing is :func:`micro3d_gui.io.export.export_volume` and
:func:`~micro3d_gui.io.export.write_report` (both atomic).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QDialog, QDialogButtonBox,
                               QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QListWidget, QListWidgetItem, QPushButton,
                               QVBoxLayout, QWidget)

from micro3d_gui.errors import InputError
from micro3d_gui.io.export import VOXEL_UNIT

from . import dialogs

#: Format suffix -> what the combo box says.
FORMATS = {".vti": "VTK image data (.vti, ParaView)",
           ".tif": "TIFF stack (.tif, ImageJ / Fiji)",
           ".npy": "NumPy array (.npy)"}
#: The first is the window's "not set": a spacing of 1 voxel, no physical size claimed.
UNITS = (VOXEL_UNIT, "µm", "nm", "mm", "px")
#: What a unit shown here is written as (file metadata stays ASCII, as ImageJ reads it).
FILE_UNITS = {"µm": "um"}


class ExportDialog(QDialog):
    """Choose volumes, format, voxel size ``(z, y, x)`` and unit, and a folder.

    :meth:`export` writes ``<name>_<index>.<suffix>`` per chosen volume (``<name>.<suffix>``
    when there is one volume) and, if asked, ``<name>_report.json`` / ``.csv``.
    """

    def __init__(self, volumes: Sequence[np.ndarray], report: dict | None = None,
                 parent: QWidget | None = None, folder: str | os.PathLike | None = None
                 ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export volumes")
        self.volumes = [np.asarray(v) for v in volumes]
        self.report = report
        self.written: list[Path] = []

        self.volume_list = QListWidget()
        for i, vol in enumerate(self.volumes):
            z, y, x = vol.shape
            item = QListWidgetItem(f"volume {i}  ({z} x {y} x {x} voxels, z y x)")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.volume_list.addItem(item)
        self.volume_list.setMaximumHeight(120)

        self.format_combo = QComboBox()
        for suffix, text in FORMATS.items():
            self.format_combo.addItem(text, suffix)
        self.voxel_spins = []
        voxel_row = QHBoxLayout()
        for axis in ("z", "y", "x"):
            spin = QDoubleSpinBox()
            spin.setDecimals(4)
            spin.setRange(1e-4, 1e6)
            spin.setValue(1.0)
            spin.setToolTip(f"voxel size along {axis}")
            self.voxel_spins.append(spin)
            voxel_row.addWidget(QLabel(axis))
            voxel_row.addWidget(spin)
        self.unit_combo = QComboBox()
        self.unit_combo.setEditable(True)
        self.unit_combo.addItems(list(UNITS))
        voxel_row.addWidget(self.unit_combo)

        self.folder_edit = QLineEdit(str(folder) if folder is not None else str(Path.cwd()))
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._ask_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        self.name_edit = QLineEdit("volume")
        self.report_check = QCheckBox("Also write the analysis report (JSON + CSV)")
        self.report_check.setChecked(report is not None)
        self.report_check.setEnabled(report is not None)
        if report is None:
            self.report_check.setToolTip("Analyse the volumes first to get a report")

        form = QFormLayout()
        form.addRow("Volumes", self.volume_list)
        form.addRow("Format", self.format_combo)
        form.addRow("Voxel size", voxel_row)
        form.addRow("Folder", folder_row)
        form.addRow("File name", self.name_edit)
        form.addRow("", self.report_check)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self._export_and_close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    # -- settings (also for scripts and tests) -------------------------------------------
    def selected(self) -> list[int]:
        return [i for i in range(self.volume_list.count())
                if self.volume_list.item(i).checkState() == Qt.CheckState.Checked]

    def set_selected(self, indices: Sequence[int]) -> None:
        chosen = set(indices)
        for i in range(self.volume_list.count()):
            self.volume_list.item(i).setCheckState(
                Qt.CheckState.Checked if i in chosen else Qt.CheckState.Unchecked)

    def suffix(self) -> str:
        return self.format_combo.currentData()

    def set_format(self, suffix: str) -> None:
        index = self.format_combo.findData(suffix.lower())
        if index < 0:
            raise ValueError(f"unknown format {suffix!r}; choose one of {', '.join(FORMATS)}")
        self.format_combo.setCurrentIndex(index)

    def voxel_size(self) -> tuple[float, float, float]:
        """Voxel edge lengths ``(z, y, x)`` in :meth:`unit`."""
        return tuple(spin.value() for spin in self.voxel_spins)

    def set_voxel_size(self, size: Sequence[float]) -> None:
        for spin, value in zip(self.voxel_spins, size):
            spin.setValue(float(value))

    def unit(self) -> str:
        unit = self.unit_combo.currentText().strip() or VOXEL_UNIT
        return FILE_UNITS.get(unit, unit)

    def set_unit(self, unit: str) -> None:
        shown = {v: k for k, v in FILE_UNITS.items()}
        self.unit_combo.setCurrentText(shown.get(unit, unit))

    def folder(self) -> Path:
        return Path(self.folder_edit.text().strip()).expanduser()

    def set_folder(self, folder: str | os.PathLike) -> None:
        self.folder_edit.setText(str(folder))

    def _ask_folder(self) -> None:
        name = QFileDialog.getExistingDirectory(self, "Export into folder", str(self.folder()))
        if name:
            self.set_folder(name)

    # -- exporting -----------------------------------------------------------------------
    def paths(self) -> list[Path]:
        """Where :meth:`export` writes the chosen volumes."""
        name = self.name_edit.text().strip() or "volume"
        chosen = self.selected()
        if len(self.volumes) == 1:
            return [self.folder() / f"{name}{self.suffix()}" for _ in chosen]
        return [self.folder() / f"{name}_{i:03d}{self.suffix()}" for i in chosen]

    def export(self) -> list[Path]:
        """Write the chosen volumes (and the report); returns the files written.

        Raises :class:`~micro3d_gui.errors.InputError` for no volume chosen, and the
        writers' errors (e.g. ``OSError`` for a read-only folder).
        """
        from micro3d_gui.io.export import export_volume, write_report

        chosen = self.selected()
        if not chosen:
            raise InputError("no volume chosen; tick at least one volume to export")
        written = []
        for i, path in zip(chosen, self.paths()):
            export_volume(self.volumes[i], path, voxel_size=self.voxel_size(), unit=self.unit())
            written.append(path)
        if self.report is not None and self.report_check.isChecked():
            stem = self.name_edit.text().strip() or "volume"
            json_path = self.folder() / f"{stem}_report.json"
            csv_path = self.folder() / f"{stem}_report.csv"
            write_report(self.report, json_path=json_path, csv_path=csv_path)
            written += [json_path, csv_path]
        self.written = written
        return written

    def _export_and_close(self) -> None:
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self.export()
        except (InputError, OSError, ValueError) as exc:
            QApplication.restoreOverrideCursor()
            dialogs.show_error(self, "Export failed", dialogs.error_text(exc))
            return
        QApplication.restoreOverrideCursor()
        self.accept()

"""The generated volumes in the main window: the live estimate while sampling, the volume
picker and its phase fractions, the voxel size, Analyse (against the segmented micrographs
and the reference volume) and File > Export volumes.

:class:`VolumeView` is a part of :class:`~.main_window.MainWindow` (a mixin, as
:class:`~.project_menu.ProjectMenu`: it uses the window's viewport, panels and fields).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.export import VOXEL_UNIT
from . import dialogs
from .export_dialog import ExportDialog

#: Where File > Export volumes last wrote (QSettings key).
EXPORT_FOLDER_KEY = "export/folder"


class VolumeView:
    """The volumes half of the main window (see the module docstring)."""

    def _voxel_size_changed(self, *_) -> None:
        size, unit = self.voxel_spin.value() or None, self.unit_combo.currentText()
        self.viewport.set_voxel_size(size, unit)
        self.analysis_panel.set_voxel_size(size, unit)

    def voxel_size(self) -> float | None:
        return self.voxel_spin.value() or None

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

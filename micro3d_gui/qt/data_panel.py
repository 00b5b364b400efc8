"""The data panel: micrographs per plane (drop targets), per-plane orientation fixes,
segmentation with a live before/after preview, per-plane phase fractions.

Widgets only: the state (sources, orientation options, segmentation settings and result,
reference volume, project data) is a :class:`micro3d_gui.session.data.DataModel`, which reads
and segments with the same functions as the ``micro3d`` command. Segmentation runs as a
:class:`~micro3d_gui.qt.jobs.Job`, debounced while the user types thresholds.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QApplication, QCheckBox, QHBoxLayout, QLabel, QPushButton,
                               QVBoxLayout, QWidget)
from superqt.utils import qdebounced

from micro3d_gui.core.planes import PLANES, check_plane
from micro3d_gui.core.symmetry import Symmetry
from micro3d_gui.preprocess.segment import Segmentation, SegmentationConfig
from micro3d_gui.session.data import DataModel, read_files, segment_job
from micro3d_gui.errors import InputError
from micro3d_gui.io.images import skipped_text
from micro3d_gui.preprocess.orientation import PlaneOptions

from . import dialogs
from .jobs import Job
from .plane_target import MAX_THUMBNAILS, PlaneTarget
from .segmentation_box import PREVIEW_SIZE, WIDGETS, SegmentationBox
from .thumbnails import grey_pixmap, labels_pixmap


class DataPanel(QWidget):
    """Micrographs of the three planes, their orientation and their segmentation.

    ``changed`` is emitted when images, per-plane options or the segmentation settings
    change; ``reference_volume_changed`` when a 3D stack is loaded or removed.
    """

    changed = Signal()
    reference_volume_changed = Signal()
    #: Emitted (from the GUI thread) when a background segmentation has been drawn.
    segmentation_updated = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = DataModel()
        self.load_jobs: list[Job] = []  # images being read in the background
        self._quiet = 0  # > 0 while set_state batches changes into one ``changed``
        self.targets: dict[str, PlaneTarget] = {}
        planes_box = QVBoxLayout()
        for plane in PLANES:
            target = PlaneTarget(plane)
            target.paths_dropped.connect(lambda paths, p=plane: self.load_paths(p, paths))
            target.clear_requested.connect(lambda p=plane: self.clear(p))
            target.options_changed.connect(
                lambda p=plane: self.set_plane_options(p, self.targets[p].options()))
            target.same_as_changed.connect(self._symmetry_changed)
            self.targets[plane] = target
            planes_box.addWidget(target)

        self.isotropic_check = QCheckBox("Isotropic material")
        self.isotropic_check.setToolTip("The material looks the same in every direction: "
                                        "one plane's micrographs serve all three planes "
                                        "(they also train transposed)")
        self.isotropic_check.toggled.connect(self._symmetry_changed)
        planes_box.addWidget(self.isotropic_check)

        self.volume_label = QLabel()
        self.volume_label.setWordWrap(True)
        self.remove_volume_button = QPushButton("Remove reference volume")
        self.remove_volume_button.clicked.connect(self.clear_volume)
        volume_row = QHBoxLayout()
        volume_row.addWidget(self.volume_label, 1)
        volume_row.addWidget(self.remove_volume_button)

        # No scroll area of its own: the main window's dock scrolls it.
        column = QVBoxLayout(self)
        column.addLayout(planes_box)
        column.addLayout(volume_row)
        self.segmentation_box = SegmentationBox()
        for name in WIDGETS:  # the panel's own names for them (tests, main window)
            setattr(self, name, getattr(self.segmentation_box, name))
        self.method_combo.currentIndexChanged.connect(self._controls_changed)
        self.phases_spin.valueChanged.connect(self._controls_changed)
        self.thresholds_edit.textChanged.connect(self._controls_changed)
        self.preview_plane.currentIndexChanged.connect(self._update_preview)
        self.preview_index.valueChanged.connect(self._update_preview)
        column.addWidget(self.segmentation_box)
        column.addStretch(1)
        # Debounced: typing thresholds restarts the wait; one segmentation when it stops.
        self._schedule_segmentation = qdebounced(self._start_segmentation, timeout=150,
                                                 parent=self)
        self._show_volume()
        self._show_segmentation()

    # -- images --------------------------------------------------------------------------
    def add_paths(self, plane: str, paths: Iterable[str | os.PathLike], ask: bool = True
                  ) -> int:
        """Add image files and folders (expanded, natural order) to ``plane``.

        A 3D TIFF stack goes to :meth:`add_volume` (asking whether to cut it when ``ask``).
        Files that cannot be read are reported together in one message box naming them;
        the others are kept. Files already in the plane are skipped. Returns the number of
        images added.
        """
        plane = check_plane(plane)
        files, errors = self.model.expand(paths, plane)
        added = 0
        with _busy():
            for f in files:
                if self.model.has_file(plane, f):
                    continue
                if self.model.is_new_stack(f):
                    self._quiet += 1
                    try:
                        before = self.model.count(plane)
                        self.add_volume(f, ask=ask, plane=plane, _report=errors)
                        added += self.model.count(plane) - before
                    finally:
                        self._quiet -= 1
                    continue
                try:
                    added += self.model.add_file(plane, f)
                except InputError as exc:
                    errors.append(str(exc))
        self._images_changed(list(PLANES) if self.model.volume_cut else [plane])
        if errors:
            dialogs.show_error(self, "Some files were not added", "\n\n".join(errors))
        return added

    def load_paths(self, plane: str, paths: Iterable[str | os.PathLike]) -> Job | None:
        """:meth:`add_paths` for a drop or the Add dialogs: the images are read in a
        :class:`~micro3d_gui.qt.jobs.Job` (a 3D stack, which asks a question, on the spot).
        Returns the job (None when there was nothing to read in the background)."""
        plane = check_plane(plane)
        files, errors = self.model.expand(paths, plane)
        new = [f for f in files if not self.model.has_file(plane, f)]
        stacks = [f for f in new if self.model.is_new_stack(f)]
        if stacks:
            self.add_paths(plane, stacks)
        plain = [f for f in new if f not in stacks]
        if not plain:
            if errors:
                dialogs.show_error(self, "Some files were not added", "\n\n".join(errors))
            return None
        self.targets[plane].count_label.setText(f"Reading {len(plain)} files...")
        job = Job(read_files, plain, name="Reading images", error_parent=self, parent=self)
        job.succeeded.connect(lambda results: self._files_read(plane, results, errors))
        job.ended.connect(lambda _: self._images_changed([plane]))
        self.load_jobs.append(job)
        job.ended.connect(lambda _, j=job: self.load_jobs.remove(j))
        return job.start()

    def is_loading(self) -> bool:
        return bool(self.load_jobs)

    def drop_loading(self) -> None:
        """Forget the images still being read (a new project): they will not be added."""
        for job in self.load_jobs:
            job.detach()
        self.load_jobs.clear()

    def _files_read(self, plane: str, results, errors: list[str]) -> None:
        for path, images, error in results:
            if error is not None:
                errors.append(error)
            elif not self.model.has_file(plane, path):  # (added meanwhile)
                self.model.add_images(plane, path, images)
        if errors:
            dialogs.show_error(self, "Some files were not added", "\n\n".join(errors))

    def add_volume(self, path: str | os.PathLike, ask: bool = True, plane: str | None = None,
                   cut: bool | None = None, step: int = 1, _report: list | None = None
                   ) -> bool:
        """Load a 3D TIFF ``[z, y, x]`` as the reference volume and, if wanted, cut it
        into the three planes' images (every ``step``-th slice).

        ``ask``: ask the user whether to cut it (``cut`` given: no question). Not cut and
        ``plane`` given: its pages become images of that plane. Returns True when cut.
        """
        path = Path(path)
        try:
            volume = self.model.read_volume(path)
        except InputError as exc:
            if _report is not None:
                _report.append(str(exc))
            else:
                dialogs.show_error(self, "Cannot read the 3D image", str(exc))
            return False
        if cut is None:
            cut = True
            if ask:
                z, y, x = volume.shape
                keep = (f" and adds its {z} pages as {plane} images" if plane is not None
                        else "")
                cut = dialogs.ask(
                    self, "3D image",
                    f"{path.name} is a 3D stack of {z} x {y} x {x} voxels (z, y, x).\n\n"
                    "Cut it into xy, xz and yz sections for training?\n"
                    f"(No keeps it as the reference volume{keep}.)")
        self.model.set_volume(path, volume, bool(cut), plane, step)
        self._show_volume()
        self.reference_volume_changed.emit()
        self._images_changed(list(PLANES))
        return bool(cut)

    def clear(self, plane: str) -> None:
        """Remove all images of ``plane`` (the reference volume stays)."""
        self.model.clear(plane)
        self._images_changed([plane])

    def clear_volume(self) -> None:
        """Forget the reference volume and the images cut from it."""
        self.model.clear_volume()
        self._show_volume()
        self.reference_volume_changed.emit()
        self._images_changed(list(PLANES))

    def reference_volume(self) -> np.ndarray | None:
        """The loaded 3D stack ``[z, y, x]`` as read (grey or labels), or None."""
        return self.model.volume

    def reference_labels(self) -> np.ndarray | None:
        return self.model.reference_labels()

    def reference_volume_path(self) -> Path | None:
        return self.model.volume_path

    def plane_paths(self) -> dict[str, list[Path]]:
        return self.model.plane_paths()

    def images(self, plane: str, limit: int | None = None) -> list[np.ndarray]:
        return self.model.images(plane, limit)

    def image_origins(self, plane: str) -> list[Path]:
        return self.model.image_origins(plane)

    def plane_options(self) -> dict[str, PlaneOptions]:
        return dict(self.model.options)

    def set_plane_options(self, plane: str, options: PlaneOptions) -> None:
        self.targets[check_plane(plane)].set_options(options)
        self.model.set_options(plane, options)
        self._images_changed([plane])

    def symmetry(self) -> Symmetry:
        """The material's symmetry as declared here (resolved when training starts)."""
        return self.model.symmetry

    def _symmetry_changed(self, *_) -> None:
        iso = self.isotropic_check.isChecked()
        like = {} if iso else {p: t.same_as_plane() for p, t in self.targets.items()
                               if t.same_as_plane()}
        for t in self.targets.values():  # isotropic decides every plane's stand-in
            t.same_as.setEnabled(not iso)
        self.model.set_symmetry(Symmetry(like, iso))
        if not self._quiet:
            self.changed.emit()

    def _show_symmetry(self) -> None:
        """The widgets set from the model's declaration (a project opened)."""
        sym = self.model.symmetry
        self.isotropic_check.blockSignals(True)
        self.isotropic_check.setChecked(sym.isotropic)
        self.isotropic_check.blockSignals(False)
        for p, t in self.targets.items():
            t.set_same_as(None if sym.isotropic else sym.like.get(p))
            t.same_as.setEnabled(not sym.isotropic)

    def _images_changed(self, planes: Sequence[str]) -> None:
        paths = self.model.plane_paths()
        for p in planes:
            self.targets[p].show_images(self.images(p, MAX_THUMBNAILS), self.model.count(p),
                                        len(paths[p]))
            if self.model.skipped[p]:
                label = self.targets[p].count_label
                label.setText(f"{label.text()}; skipped {skipped_text(self.model.skipped[p])}")
        self._invalidate()

    def _show_volume(self) -> None:
        m = self.model
        if m.volume is None:
            self.volume_label.setText("No reference volume (drop a 3D TIFF on a plane to "
                                      "load one)")
            self.remove_volume_button.setEnabled(False)
            return
        z, y, x = m.volume.shape
        how = "cut into the three planes" if m.volume_cut else "not cut"
        self.volume_label.setText(f"Reference volume: {m.volume_path.name} "
                                  f"({z} x {y} x {x} voxels, z y x; {how})")
        self.remove_volume_button.setEnabled(True)

    # -- segmentation --------------------------------------------------------------------
    def segmentation_config(self) -> SegmentationConfig:
        """The settings of the segmentation controls; SegmentationError (an InputError)
        when the manual thresholds are missing, not numbers or not increasing."""
        return self.model.segmentation_config()

    def set_segmentation_config(self, config: SegmentationConfig) -> None:
        self.segmentation_box.set_controls(config.method, config.phases,
                           ", ".join(f"{t:g}" for t in config.thresholds))
        self._controls_changed()

    def segmentation(self) -> Segmentation | None:
        """Labelled images per plane ready for training; None when there are no images.

        Computed now when the background result is not there yet. Raises the core's
        :class:`~micro3d_gui.errors.InputError` when the images cannot be segmented
        with the current settings (e.g. "already labelled" on raw grey micrographs).
        """
        was_valid = self.model.segmentation_valid
        try:
            return self.model.segmentation()
        finally:
            if not was_valid:
                self._show_segmentation()
                self.segmentation_updated.emit()

    def segmentation_error(self) -> str | None:
        """Why the current settings do not segment the images (None when they do)."""
        return self.model.segmentation_error()

    @property
    def _seg_valid(self) -> bool:
        return self.model.segmentation_valid

    def _controls_changed(self, *_) -> None:
        self.model.set_controls(self.method_combo.currentData(), self.phases_spin.value(),
                                self.thresholds_edit.text())
        self.segmentation_box.sync_controls()
        self._invalidate()

    def _invalidate(self) -> None:
        """Something changed: the model dropped its result; recompute it in the background."""
        n = self.model.count(self.preview_plane.currentText())
        self.preview_index.setMaximum(max(0, n - 1))
        self._update_preview()
        self._schedule_segmentation()
        if not self._quiet:
            self.changed.emit()

    def _start_segmentation(self) -> None:
        m = self.model
        if m.segmentation_valid:
            return
        generation = m.generation
        images, origins = m.inputs()
        try:
            config = m.segmentation_config()
        except InputError as exc:
            self._seg_done(generation, None, str(exc) if images else None)
            return
        if not images:
            self._seg_done(generation, None, None)
            return
        job = Job(segment_job, generation, images, config, origins, name="Segmentation",
                  show_errors=False, parent=self)
        job.succeeded.connect(lambda result: self._seg_done(*result))
        job.failed.connect(lambda exc: self._seg_done(generation, None,
                                                      dialogs.error_text(exc)))
        job.start()

    def _seg_done(self, generation: int, seg: Segmentation | None, error: str | None) -> None:
        if self.model.segmentation_done(generation, seg, error):
            self._show_segmentation()
            self.segmentation_updated.emit()

    def _show_segmentation(self) -> None:
        seg = self.model.current_segmentation()
        error = self.model.segmentation_error()
        self.segmentation_box.show_result(seg, ([error] if error else [])
                                          + (list(seg.warnings) if seg is not None else []))
        self._update_preview()

    def warnings(self) -> list[str]:
        """The messages shown in the warning label (planes disagree, bad settings)."""
        text = self.warning_label.text()
        return text.split("\n") if self.warning_label.isVisible() and text else []

    def _update_preview(self, *_) -> None:
        plane = self.preview_plane.currentText()
        index = self.preview_index.value()
        sources = self.model.raw_images(plane)
        if index >= len(sources):
            self.preview_before.clear()
            self.preview_before.setText("no image")
            self.preview_after.clear()
            self.preview_after.setText("")
            return
        self.preview_before.setPixmap(grey_pixmap(self.images(plane, index + 1)[index],
                                                  PREVIEW_SIZE))
        seg = self.model.current_segmentation()
        if seg is not None and plane in seg.labels and index < len(seg.labels[plane]):
            self.preview_after.setPixmap(labels_pixmap(seg.labels[plane][index], PREVIEW_SIZE))
        else:
            self.preview_after.clear()
            self.preview_after.setText("..." if not self.model.segmentation_valid else
                                       "cannot segment")

    # -- projects ------------------------------------------------------------------------
    def state(self) -> dict:
        """Plain JSON-able data: files per plane, options, reference volume, segmentation."""
        return self.model.state()

    def set_state(self, state: dict) -> None:
        """Restore :meth:`state` (files are read again; missing ones are reported)."""
        self._quiet += 1
        try:
            paths, volume = self.model.reset(state)
            for p in PLANES:
                self.targets[p].set_options(self.model.options[p])
            self._show_symmetry()
            self.segmentation_box.set_controls(self.model.method, self.model.phases,
                               self.model.thresholds_text)
            if volume:
                self.add_volume(volume["path"], ask=False, cut=bool(volume.get("cut", True)))
            else:
                self._show_volume()
                self.reference_volume_changed.emit()
            for p in PLANES:
                if paths[p]:
                    self.add_paths(p, paths[p], ask=False)
            self._images_changed(list(PLANES))
        finally:
            self._quiet -= 1
        self.changed.emit()


class _busy:
    """Wait cursor while files are read on the GUI thread."""

    def __enter__(self):
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)

    def __exit__(self, *exc):
        QApplication.restoreOverrideCursor()

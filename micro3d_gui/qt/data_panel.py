"""The data panel: micrographs per plane (drop targets), per-plane orientation fixes,
segmentation with a live before/after preview, per-plane phase fractions.

It holds no numerics: reading is :mod:`micro3d_gui.io.images` / :mod:`~micro3d_gui.io.volume`,
orientation :func:`micro3d_gui.preprocess.planeset.apply_plane_options`, cutting a 3D stack
:func:`~micro3d_gui.core.planes.volume_plane_images`, segmentation and fractions
:func:`micro3d_gui.preprocess.segment.segment_planes` (run in a worker thread).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QCheckBox, QComboBox,
                               QFileDialog, QFormLayout, QFrame, QGridLayout, QGroupBox,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListView,
                               QListWidget, QListWidgetItem, QPushButton, QScrollArea,
                               QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)
from superqt.utils import create_worker

from micro3d_gui.core.planes import PLANES, volume_plane_images
from micro3d_gui.preprocess.segment import (MAX_OTSU_PHASES, Segmentation, SegmentationConfig,
                                            segment_planes)
from micro3d_gui.errors import InputError, SegmentationError
from micro3d_gui.io.images import IMAGE_SUFFIXES, list_images, read_images
from micro3d_gui.preprocess.planeset import PlaneOptions, apply_plane_options
from micro3d_gui.io.volume import read_volume

from . import dialogs
from .thumbnails import PHASE_COLOURS, grey_pixmap, labels_pixmap

#: What a plane's images show (METHOD.md's convention), for the drop targets' titles.
PLANE_AXES = {"xy": "rows y, columns x", "xz": "rows z, columns x", "yz": "rows z, columns y"}
#: Thumbnails drawn per plane; the rest are counted only (keeps big sets responsive).
MAX_THUMBNAILS = 24
THUMBNAIL_SIZE = 56
PREVIEW_SIZE = 160
#: A multipage TIFF with at least this many equal-shaped pages is taken as a 3D stack.
VOLUME_MIN_PAGES = 8
#: Segmentation methods: (SegmentationConfig.method, label in the combo box).
METHODS = (("labelled", "Already labelled"), ("otsu", "Otsu (2 phases)"),
           ("multiotsu", "Multi-Otsu (K phases)"), ("manual", "Manual thresholds"))
_FILE_FILTER = "Images ({})".format(" ".join("*" + s for s in IMAGE_SUFFIXES))


@dataclass
class _Source:
    """Images (grey, as read) that came from one file; ``from_volume``: cut from a 3D stack."""

    path: Path
    images: list[np.ndarray]
    from_volume: bool = False


def local_paths(mime) -> list[Path]:
    """Local file/folder paths in a drag's mime data (web URLs are ignored)."""
    if not mime.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]


def is_volume_tiff(path: str | os.PathLike) -> bool:
    """True for a 3D stack: an ImageJ ZYX stack, or >= VOLUME_MIN_PAGES equal 2D pages."""
    p = Path(path)
    if p.suffix.lower() not in (".tif", ".tiff"):
        return False
    try:
        import tifffile

        with tifffile.TiffFile(p) as tif:
            series = tif.series[0]
            axes, shape = series.axes, series.shape
            if len(shape) != 3 or not axes.endswith("YX"):
                return False  # 2D, RGB pages or pages of different shapes
            return (tif.is_imagej and axes[0] == "Z") or shape[0] >= VOLUME_MIN_PAGES
    except Exception:  # unreadable: the image reader reports it with the file's name
        return False


class PlaneTarget(QGroupBox):
    """One plane's drop target: thumbnails, count, Add/Clear, orientation check boxes."""

    paths_dropped = Signal(list)  # list[Path], from a drop or the Add... dialogs
    clear_requested = Signal()
    options_changed = Signal()

    def __init__(self, plane: str, parent: QWidget | None = None) -> None:
        super().__init__(f"{plane}  ({PLANE_AXES[plane]})", parent)
        self.plane = plane
        self.setAcceptDrops(True)
        self.setToolTip(f"Drop a folder or image files of {plane} sections here")

        self.thumbnails = QListWidget()
        self.thumbnails.setViewMode(QListView.ViewMode.IconMode)
        self.thumbnails.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.thumbnails.setMovement(QListView.Movement.Static)
        # One strip that scrolls sideways: the panel lives in a narrow dock.
        self.thumbnails.setFlow(QListView.Flow.LeftToRight)
        self.thumbnails.setWrapping(False)
        self.thumbnails.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.thumbnails.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # IconMode turns internal drag and drop on; drops must reach this group box instead.
        self.thumbnails.setDragDropMode(QAbstractItemView.DragDropMode.NoDragDrop)
        self.thumbnails.setAcceptDrops(False)
        self.thumbnails.viewport().setAcceptDrops(False)
        self.thumbnails.setFixedHeight(THUMBNAIL_SIZE + 42)  # icon, its number, scroll bar

        self.count_label = QLabel()
        self.add_button = QPushButton("Add...")
        self.add_button.setToolTip("Add image files (a 3D TIFF is offered to be cut)")
        self.add_folder_button = QPushButton("Add folder...")
        self.clear_button = QPushButton("Clear")
        self.transpose = QCheckBox("Transpose")
        self.flip_rows = QCheckBox("Flip rows")
        self.flip_cols = QCheckBox("Flip columns")
        self.transpose.setToolTip("Swap rows and columns (applied before the flips)")
        for box in (self.transpose, self.flip_rows, self.flip_cols):
            box.toggled.connect(self.options_changed)
        self.add_button.clicked.connect(self._ask_files)
        self.add_folder_button.clicked.connect(self._ask_folder)
        self.clear_button.clicked.connect(self.clear_requested)

        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.add_folder_button)
        buttons.addWidget(self.clear_button)
        buttons.addStretch(1)
        options = QHBoxLayout()
        for box in (self.transpose, self.flip_rows, self.flip_cols):
            options.addWidget(box)
        options.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.thumbnails)
        layout.addWidget(self.count_label)
        layout.addLayout(buttons)
        layout.addLayout(options)
        self.show_images([], 0, 0)

    # -- drag and drop -------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        paths = local_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        # Handled once the drop has returned: reading may ask a question (a modal loop),
        # which must not run while the file manager still waits for the drop to finish.
        QTimer.singleShot(0, lambda: self.paths_dropped.emit(paths))

    def _ask_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, f"Add {self.plane} images", "",
                                                _FILE_FILTER)
        if names:
            self.paths_dropped.emit([Path(n) for n in names])

    def _ask_folder(self) -> None:
        name = QFileDialog.getExistingDirectory(self, f"Add a folder of {self.plane} images")
        if name:
            self.paths_dropped.emit([Path(name)])

    # -- state ---------------------------------------------------------------------------
    def options(self) -> PlaneOptions:
        return PlaneOptions(transpose=self.transpose.isChecked(),
                            flip_rows=self.flip_rows.isChecked(),
                            flip_cols=self.flip_cols.isChecked())

    def set_options(self, options: PlaneOptions) -> None:
        """Set the check boxes without emitting ``options_changed``."""
        for box, value in ((self.transpose, options.transpose),
                           (self.flip_rows, options.flip_rows),
                           (self.flip_cols, options.flip_cols)):
            box.blockSignals(True)
            box.setChecked(bool(value))
            box.blockSignals(False)

    def show_images(self, first: Sequence[np.ndarray], count: int, files: int) -> None:
        """Thumbnails of the ``first`` images (at most MAX_THUMBNAILS are drawn) and the
        counts: ``count`` images in all, from ``files`` files."""
        self.thumbnails.clear()
        for i, image in enumerate(first[:MAX_THUMBNAILS]):
            item = QListWidgetItem(grey_pixmap(image, THUMBNAIL_SIZE), str(i))
            item.setToolTip(f"image {i}: {image.shape[0]} x {image.shape[1]} px")
            self.thumbnails.addItem(item)
        if count > MAX_THUMBNAILS:
            self.thumbnails.addItem(QListWidgetItem(f"+{count - MAX_THUMBNAILS} more"))
        if count:
            noun = "file" if files == 1 else "files"
            self.count_label.setText(f"{count} images from {files} {noun}")
        else:
            self.count_label.setText("No images: drop a folder or files here")


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
        self._sources: dict[str, list[_Source]] = {p: [] for p in PLANES}
        self._volume: np.ndarray | None = None
        self._volume_path: Path | None = None
        self._volume_cut = False
        self._segmentation: Segmentation | None = None
        self._seg_error: str | None = None
        self._seg_valid = False
        self._generation = 0  # bumped on every change; stale worker results are dropped
        self._quiet = 0  # > 0 while set_state batches changes into one ``changed``

        self.targets: dict[str, PlaneTarget] = {}
        planes_box = QVBoxLayout()
        for plane in PLANES:
            target = PlaneTarget(plane)
            target.paths_dropped.connect(lambda paths, p=plane: self.add_paths(p, paths))
            target.clear_requested.connect(lambda p=plane: self.clear(p))
            target.options_changed.connect(lambda p=plane: self._images_changed([p]))
            self.targets[plane] = target
            planes_box.addWidget(target)

        self.volume_label = QLabel()
        self.volume_label.setWordWrap(True)
        self.remove_volume_button = QPushButton("Remove reference volume")
        self.remove_volume_button.clicked.connect(self.clear_volume)
        volume_row = QHBoxLayout()
        volume_row.addWidget(self.volume_label, 1)
        volume_row.addWidget(self.remove_volume_button)

        content = QWidget()
        column = QVBoxLayout(content)
        column.addLayout(planes_box)
        column.addLayout(volume_row)
        column.addWidget(self._build_segmentation_box())
        column.addStretch(1)
        scroll = QScrollArea()  # a dock may be shorter than the panel
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)  # debounce: typing thresholds restarts it
        self._timer.timeout.connect(self._start_segmentation)
        self._show_volume()
        self._show_segmentation()

    def _build_segmentation_box(self) -> QGroupBox:
        box = QGroupBox("Segmentation")
        self.method_combo = QComboBox()
        for method, text in METHODS:
            self.method_combo.addItem(text, method)
        self.phases_spin = QSpinBox()
        self.phases_spin.setRange(2, MAX_OTSU_PHASES)
        self.phases_spin.setToolTip("Number of phases K for multi-Otsu")
        self.thresholds_edit = QLineEdit()
        self.thresholds_edit.setPlaceholderText("grey thresholds, e.g. 90, 170")
        self.thresholds_edit.setToolTip("Increasing grey values separating phase 0|1, 1|2, ...")
        self.method_combo.currentIndexChanged.connect(self._controls_changed)
        self.phases_spin.valueChanged.connect(self._controls_changed)
        self.thresholds_edit.textChanged.connect(self._controls_changed)

        self.preview_plane = QComboBox()
        self.preview_plane.addItems(list(PLANES))
        self.preview_index = QSpinBox()
        self.preview_index.setRange(0, 0)
        self.preview_plane.currentIndexChanged.connect(self._update_preview)
        self.preview_index.valueChanged.connect(self._update_preview)
        self.preview_before = QLabel()
        self.preview_after = QLabel()
        for label in (self.preview_before, self.preview_after):
            label.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setStyleSheet("background: #202020; color: #c0c0c0;")

        self.thresholds_label = QLabel()
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
        column = QVBoxLayout(box)
        column.addLayout(form)
        column.addLayout(pick)
        column.addLayout(previews)
        column.addWidget(QLabel("Phase fractions per plane"))
        column.addWidget(self.fractions_table)
        column.addWidget(self.warning_label)
        self._sync_controls()
        return box

    # -- images --------------------------------------------------------------------------
    def add_paths(self, plane: str, paths: Iterable[str | os.PathLike], ask: bool = True
                  ) -> int:
        """Add image files and folders (expanded, natural order) to ``plane``.

        A 3D TIFF stack goes to :meth:`add_volume` (asking whether to cut it when ``ask``).
        Files that cannot be read are reported together in one message box naming them;
        the others are kept. Files already in the plane are skipped. Returns the number of
        images added.
        """
        plane = _check_plane(plane)
        errors: list[str] = []
        files: list[Path] = []
        for src in paths:
            try:
                files.extend(list_images(src))
            except InputError as exc:
                errors.append(str(exc))
        known = {s.path.resolve() for s in self._sources[plane]}
        added = 0
        with _busy():
            for f in files:
                if f.resolve() in known:
                    continue
                known.add(f.resolve())
                # A stack already loaded and not cut is read page by page (project reload).
                if is_volume_tiff(f) and not (self._volume_path is not None
                                              and f.resolve() == self._volume_path.resolve()):
                    self._quiet += 1
                    try:
                        before = self._count(plane)
                        self.add_volume(f, ask=ask, plane=plane, _report=errors)
                        added += self._count(plane) - before
                    finally:
                        self._quiet -= 1
                    continue
                try:
                    images = read_images(f)
                except InputError as exc:
                    errors.append(str(exc))
                    continue
                self._sources[plane].append(_Source(f, images))
                added += len(images)
        self._images_changed(list(PLANES) if self._volume_cut else [plane])
        if errors:
            dialogs.show_error(self, "Some files were not added", "\n\n".join(errors))
        return added

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
            volume = read_volume(path)
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
        self._volume, self._volume_path, self._volume_cut = volume, path, bool(cut)
        for p in PLANES:  # a new volume replaces the images cut from an earlier one
            self._sources[p] = [s for s in self._sources[p] if not s.from_volume]
        if cut:
            for p, images in volume_plane_images(volume, step=step).items():
                self._sources[p].append(_Source(path, list(images), from_volume=True))
        elif plane is not None:
            self._sources[_check_plane(plane)].append(_Source(path, list(volume)))
        self._show_volume()
        self.reference_volume_changed.emit()
        self._images_changed(list(PLANES))
        return bool(cut)

    def clear(self, plane: str) -> None:
        """Remove all images of ``plane`` (the reference volume stays)."""
        self._sources[_check_plane(plane)] = []
        self._images_changed([plane])

    def clear_volume(self) -> None:
        """Forget the reference volume and the images cut from it."""
        for p in PLANES:
            self._sources[p] = [s for s in self._sources[p] if not s.from_volume]
        self._volume = self._volume_path = None
        self._volume_cut = False
        self._show_volume()
        self.reference_volume_changed.emit()
        self._images_changed(list(PLANES))

    def reference_volume(self) -> np.ndarray | None:
        """The loaded 3D stack ``[z, y, x]`` as read (grey or labels), or None."""
        return self._volume

    def reference_labels(self) -> np.ndarray | None:
        """The reference volume as phase labels ``[z, y, x]`` (uint8), segmented slice by
        slice exactly as the micrographs are; None without a volume or a segmentation."""
        if self._volume is None:
            return None
        try:
            seg = self.segmentation()
        except InputError:
            return None
        if seg is None:
            return None
        return np.stack([seg.apply(im) for im in self._volume])

    def reference_volume_path(self) -> Path | None:
        return self._volume_path

    def plane_paths(self) -> dict[str, list[Path]]:
        """Files per plane (each once, in the order added; a cut volume's path included)."""
        out = {}
        for p in PLANES:
            seen: list[Path] = []
            for s in self._sources[p]:
                if s.path not in seen:
                    seen.append(s.path)
            out[p] = seen
        return out

    def images(self, plane: str, limit: int | None = None) -> list[np.ndarray]:
        """Grey images of ``plane`` with its orientation options applied (the first
        ``limit`` only, when given)."""
        options = self.targets[_check_plane(plane)].options()
        raw = (im for s in self._sources[plane] for im in s.images)
        return [apply_plane_options(im, options) for im in islice(raw, limit)]

    def image_origins(self, plane: str) -> list[Path]:
        """Per image of :meth:`images`, the file it came from."""
        return [s.path for s in self._sources[_check_plane(plane)] for _ in s.images]

    def plane_options(self) -> dict[str, PlaneOptions]:
        return {p: t.options() for p, t in self.targets.items()}

    def set_plane_options(self, plane: str, options: PlaneOptions) -> None:
        self.targets[_check_plane(plane)].set_options(options)
        self._images_changed([plane])

    def _count(self, plane: str) -> int:
        return sum(len(s.images) for s in self._sources[plane])

    def _images_changed(self, planes: Sequence[str]) -> None:
        for p in planes:
            self.targets[p].show_images(self.images(p, MAX_THUMBNAILS), self._count(p),
                                        len(self.plane_paths()[p]))
        self._invalidate()

    def _show_volume(self) -> None:
        if self._volume is None:
            self.volume_label.setText("No reference volume (drop a 3D TIFF on a plane to "
                                      "load one)")
            self.remove_volume_button.setEnabled(False)
            return
        z, y, x = self._volume.shape
        how = "cut into the three planes" if self._volume_cut else "not cut"
        self.volume_label.setText(f"Reference volume: {self._volume_path.name} "
                                  f"({z} x {y} x {x} voxels, z y x; {how})")
        self.remove_volume_button.setEnabled(True)

    # -- segmentation --------------------------------------------------------------------
    def segmentation_config(self) -> SegmentationConfig:
        """The settings of the segmentation controls.

        Raises :class:`~micro3d_gui.errors.SegmentationError` (an ``InputError``) when
        the manual thresholds are missing, not numbers or not increasing.
        """
        problem = self._controls_problem()
        if problem:
            raise SegmentationError(problem)
        method = self.method_combo.currentData()
        thresholds = self._threshold_values() if method == "manual" else ()
        phases = (len(thresholds) + 1 if method == "manual"
                  else 2 if method == "otsu" else self.phases_spin.value())
        return SegmentationConfig(method=method, phases=phases, thresholds=thresholds)

    def _threshold_values(self) -> tuple[float, ...]:
        return tuple(_parse_thresholds(self.thresholds_edit.text())[0])

    def set_segmentation_config(self, config: SegmentationConfig) -> None:
        self._set_controls(config.method, config.phases,
                           ", ".join(f"{t:g}" for t in config.thresholds))
        self._controls_changed()

    def _set_controls(self, method: str, phases: int, thresholds_text: str) -> None:
        """Set the segmentation widgets without emitting their change signals."""
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
        self._sync_controls()

    def segmentation(self) -> Segmentation | None:
        """Labelled images per plane ready for training; None when there are no images.

        Computed now when the background result is not there yet. Raises the core's
        :class:`~micro3d_gui.errors.InputError` when the images cannot be segmented
        with the current settings (e.g. "already labelled" on raw grey micrographs).
        """
        if self._seg_valid:
            if self._seg_error is not None:
                raise InputError(self._seg_error)
            return self._segmentation
        generation = self._generation
        try:
            result = self._segment_now()
        except InputError as exc:
            self._seg_done(generation, None, str(exc))
            raise
        self._seg_done(generation, result, None)
        return result

    def segmentation_error(self) -> str | None:
        """Why the current settings do not segment the images (None when they do)."""
        return self._seg_error if self._seg_valid else None

    def _inputs(self):
        images = {p: self.images(p) for p in PLANES if self._sources[p]}
        origins = {p: self.image_origins(p) for p in images}
        return images, origins

    def _segment_now(self) -> Segmentation | None:
        images, origins = self._inputs()
        if not images:
            return None
        return segment_planes(images, self.segmentation_config(), origins=origins)

    def _controls_problem(self) -> str | None:
        if self.method_combo.currentData() != "manual":
            return None
        values, bad = _parse_thresholds(self.thresholds_edit.text())
        if bad:
            return f"manual thresholds: '{bad}' is not a number; type e.g. 90, 170"
        if not values:
            return "manual thresholds: type at least one grey value, e.g. 128"
        return None

    def _controls_changed(self, *_) -> None:
        self._sync_controls()
        self._invalidate()

    def _sync_controls(self) -> None:
        method = self.method_combo.currentData()
        self.phases_spin.setEnabled(method == "multiotsu")
        self.thresholds_edit.setEnabled(method == "manual")

    def _invalidate(self) -> None:
        """Something changed: drop the cached result, recompute it in the background."""
        self._generation += 1
        self._seg_valid = False
        n = self._count(self.preview_plane.currentText())
        self.preview_index.setMaximum(max(0, n - 1))
        self._update_preview()
        self._timer.start()
        if not self._quiet:
            self.changed.emit()

    def _start_segmentation(self) -> None:
        if self._seg_valid:
            return
        generation = self._generation
        images, origins = self._inputs()
        try:
            config = self.segmentation_config()
        except InputError as exc:
            self._seg_done(generation, None, str(exc) if images else None)
            return
        if not images:
            self._seg_done(generation, None, None)
            return
        worker = create_worker(_segment_job, generation, images, config, origins,
                               _start_thread=False, _ignore_errors=True)
        # A bound method of this widget: Qt drops the connection if the panel is deleted
        # before the worker returns.
        worker.returned.connect(self._on_segment_job)
        worker.start()

    def _on_segment_job(self, result: tuple) -> None:
        self._seg_done(*result)

    def _seg_done(self, generation: int, seg: Segmentation | None, error: str | None) -> None:
        if generation != self._generation or self._seg_valid:
            return  # a newer change is pending, or the same result is already in
        self._segmentation, self._seg_error, self._seg_valid = seg, error, True
        self._show_segmentation()
        self.segmentation_updated.emit()

    def _show_segmentation(self) -> None:
        seg = self._segmentation if self._seg_valid else None
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
                    colour = QColor(*PHASE_COLOURS[k % len(PHASE_COLOURS)].tolist())
                    colour.setAlpha(60)
                    item.setBackground(colour)
                    table.setItem(r, k, item)
            self.thresholds_label.setText(", ".join(f"{t:g}" for t in seg.thresholds) or "-")
        messages = []
        if self._seg_valid and self._seg_error:
            messages.append(self._seg_error)
        if seg is not None:
            messages.extend(seg.warnings)
        self.warning_label.setText("\n".join(messages))
        self.warning_label.setVisible(bool(messages))
        self._update_preview()

    def warnings(self) -> list[str]:
        """The messages shown in the warning label (planes disagree, bad settings)."""
        text = self.warning_label.text()
        return text.split("\n") if self.warning_label.isVisible() and text else []

    def _update_preview(self, *_) -> None:
        plane = self.preview_plane.currentText()
        index = self.preview_index.value()
        sources = [im for s in self._sources[plane] for im in s.images]
        if index >= len(sources):
            self.preview_before.clear()
            self.preview_before.setText("no image")
            self.preview_after.clear()
            self.preview_after.setText("")
            return
        options = self.targets[plane].options()
        self.preview_before.setPixmap(grey_pixmap(apply_plane_options(sources[index], options),
                                                  PREVIEW_SIZE))
        seg = self._segmentation if self._seg_valid else None
        if seg is not None and plane in seg.labels and index < len(seg.labels[plane]):
            self.preview_after.setPixmap(labels_pixmap(seg.labels[plane][index], PREVIEW_SIZE))
        else:
            self.preview_after.clear()
            self.preview_after.setText("..." if not self._seg_valid else
                                       "cannot segment")

    # -- projects ------------------------------------------------------------------------
    def state(self) -> dict:
        """Plain JSON-able data: files per plane, options, reference volume, segmentation."""
        return {
            "planes": {p: {"paths": [str(path) for path in _unique(
                           s.path for s in self._sources[p] if not s.from_volume)],
                           "options": asdict(self.targets[p].options())} for p in PLANES},
            "volume": (None if self._volume_path is None else
                       {"path": str(self._volume_path), "cut": self._volume_cut}),
            "segmentation": {"method": self.method_combo.currentData(),
                             "phases": self.phases_spin.value(),
                             "thresholds_text": self.thresholds_edit.text(),
                             "thresholds": list(self._threshold_values())},
        }

    def set_state(self, state: dict) -> None:
        """Restore :meth:`state` (files are read again; missing ones are reported)."""
        self._quiet += 1
        try:
            for p in PLANES:
                self._sources[p] = []
            self._volume = self._volume_path = None
            self._volume_cut = False
            planes = state.get("planes", {})
            for p in PLANES:
                self.targets[p].set_options(PlaneOptions(**planes.get(p, {}).get("options", {})))
            seg = state.get("segmentation", {})
            text = seg.get("thresholds_text")
            if text is None:
                text = ", ".join(f"{t:g}" for t in seg.get("thresholds", []))
            self._set_controls(seg.get("method", "labelled"), seg.get("phases", 2), text)
            volume = state.get("volume")
            if volume:
                self.add_volume(volume["path"], ask=False, cut=bool(volume.get("cut", True)))
            else:
                self._show_volume()
                self.reference_volume_changed.emit()
            for p in PLANES:
                paths = planes.get(p, {}).get("paths", [])
                if paths:
                    self.add_paths(p, paths, ask=False)
            self._images_changed(list(PLANES))
        finally:
            self._quiet -= 1
        self.changed.emit()


def _segment_job(generation: int, images, config: SegmentationConfig, origins
                 ) -> tuple[int, Segmentation | None, str | None]:
    """Worker body: ``(generation, segmentation, None)`` or ``(generation, None, why)``."""
    try:
        return generation, segment_planes(images, config, origins=origins), None
    except Exception as exc:  # shown in the warning label, not as a traceback
        return generation, None, dialogs.error_text(exc)


def _check_plane(plane: str) -> str:
    if plane not in PLANES:
        raise ValueError(f"unknown plane {plane!r}; expected one of {', '.join(PLANES)}")
    return plane


def _unique(items: Iterable) -> list:
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _parse_thresholds(text: str) -> tuple[list[float], str | None]:
    """'90, 170' -> ([90.0, 170.0], None); the first bad token as the second item."""
    values = []
    for token in text.replace(";", ",").replace(" ", ",").split(","):
        token = token.strip()
        if not token:
            continue
        try:
            values.append(float(token))
        except ValueError:
            return values, token
    return values, None


class _busy:
    """Wait cursor while files are read on the GUI thread."""

    def __enter__(self):
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)

    def __exit__(self, *exc):
        QApplication.restoreOverrideCursor()

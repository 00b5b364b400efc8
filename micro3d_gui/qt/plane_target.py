"""One plane's drop target in the Data panel: thumbnails, counts, Add / Clear, orientation."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QGroupBox,
                               QHBoxLayout, QLabel, QListView, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

from micro3d_gui.core.planes import PLANES
from micro3d_gui.io.images import IMAGE_SUFFIXES
from micro3d_gui.preprocess.orientation import PlaneOptions

from .drops import local_paths
from .thumbnails import grey_pixmap

#: What a plane's images show (METHOD.md's convention), for the drop targets' titles.
PLANE_AXES = {"xy": "rows y, columns x", "xz": "rows z, columns x", "yz": "rows z, columns y"}
#: Thumbnails drawn per plane; the rest are counted only (keeps big sets responsive).
MAX_THUMBNAILS = 24
THUMBNAIL_SIZE = 56
_FILE_FILTER = "Images ({})".format(" ".join("*" + s for s in IMAGE_SUFFIXES))


class PlaneTarget(QGroupBox):
    """One plane's drop target: thumbnails, count, Add/Clear, orientation check boxes."""

    paths_dropped = Signal(list)  # list[Path], from a drop or the Add... dialogs
    clear_requested = Signal()
    options_changed = Signal()
    same_as_changed = Signal()

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
        # A plane without micrographs of its own may be declared like another (core.symmetry).
        self.same_as = QComboBox()
        self.same_as.addItem("own micrographs", None)
        for other in PLANES:
            if other != plane:
                self.same_as.addItem(f"same as {other}", other)
        self.same_as.setToolTip(f"'same as xz': {plane} sections look like those of that "
                                "plane (row for row), whose micrographs stand for them; "
                                f"then leave {plane} empty")
        self.same_as.currentIndexChanged.connect(self.same_as_changed)
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
        stand_in = QHBoxLayout()
        stand_in.addWidget(QLabel("Sections:"))
        stand_in.addWidget(self.same_as)
        stand_in.addStretch(1)
        layout.addLayout(stand_in)
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

    def same_as_plane(self) -> str | None:
        """The plane declared to stand for this one (None: its own micrographs)."""
        return self.same_as.currentData()

    def set_same_as(self, plane: str | None) -> None:
        """Set the declaration without emitting ``same_as_changed``."""
        self.same_as.blockSignals(True)
        self.same_as.setCurrentIndex(max(0, self.same_as.findData(plane)))
        self.same_as.blockSignals(False)

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

"""3D view of a label volume: a pyvistaqt ``QtInteractor`` with three view modes.

- ``slices``: three orthogonal one-voxel slabs (xy at z, xz at y, yz at x) coloured by phase,
  positioned with sliders;
- ``surfaces``: the surface of every voxel of phases 1..K-1 (phase 0, the matrix, is left
  out so the others can be seen; a one-phase volume shows phase 0);
- ``outline``: the box outline with labelled x, y, z bounds.

A volume ``[Z, Y, X]`` maps to VTK's x, y, z = columns, rows, slices (one voxel = one unit
cell), so the axes read as the volume's x, y, z. Updating a volume of the same shape and
phase count only replaces arrays in the meshes already on screen (no new actors), which
keeps ~4 updates per second fluid while the sampler runs.
"""
from __future__ import annotations

import numpy as np
import pyvista as pv
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget
from pyvistaqt import QtInteractor
from superqt import QLabeledSlider

VIEW_MODES = ("slices", "surfaces", "outline")

#: Phase colours (phase 0 = matrix, dark); cycled for more phases.
PHASE_COLORS = ("#3b4a6b", "#f2b134", "#d94f4f", "#4fb36b", "#8e6cc9", "#46b5c9",
                "#c97a46", "#c9c146")


def phase_colors(num_phases: int) -> list[str]:
    return [PHASE_COLORS[k % len(PHASE_COLORS)] for k in range(num_phases)]


def label_grid(labels: np.ndarray) -> pv.ImageData:
    """``[Z, Y, X]`` labels -> ImageData with cell array ``phase`` (x fastest, like C order)."""
    z, y, x = labels.shape
    grid = pv.ImageData(dimensions=(x + 1, y + 1, z + 1))
    grid.cell_data["phase"] = np.ascontiguousarray(labels, dtype=np.uint8).ravel()
    return grid


class Viewport(QWidget):
    """Central 3D view. :meth:`set_volume` is cheap to call repeatedly (same shape)."""

    mode_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        # No auto-update timer: it re-renders 5 times a second even when nothing changed,
        # which costs a CPU core with software OpenGL; every change renders explicitly.
        self.plotter = QtInteractor(self, auto_update=False)
        self.plotter.set_background("white")
        self.labels: np.ndarray | None = None
        self.num_phases = 0
        self.mode = "slices"
        #: Number of :meth:`set_volume` calls (a test and the status bar read it).
        self.update_count = 0
        self._scene_key = None  # (shape, num_phases, mode) of what is on screen
        self._grid: pv.ImageData | None = None
        self._slabs: dict[str, pv.ImageData] = {}
        self._surface: pv.PolyData | None = None

        self.mode_combo = QComboBox()
        self.mode_combo.addItems(VIEW_MODES)
        self.mode_combo.setToolTip("How the volume is drawn")
        self.mode_combo.currentTextChanged.connect(self.set_mode)
        self.sliders: dict[str, QLabeledSlider] = {}
        bar = QHBoxLayout()
        bar.addWidget(QLabel("View"))
        bar.addWidget(self.mode_combo)
        for axis in ("z", "y", "x"):
            s = QLabeledSlider(Qt.Orientation.Horizontal)
            s.setRange(0, 0)
            s.setToolTip(f"{axis} position of the slice normal to {axis}")
            s.valueChanged.connect(self._on_slider)
            bar.addWidget(QLabel(axis))
            bar.addWidget(s, 1)
            self.sliders[axis] = s
        self.toolbar = QWidget()
        self.toolbar.setLayout(bar)
        bar.setContentsMargins(4, 2, 4, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.plotter.interactor, 1)
        self.plotter.add_axes(xlabel="x", ylabel="y", zlabel="z")
        self._set_sliders_visible()

    # -- public ---------------------------------------------------------------------------
    def set_volume(self, labels: np.ndarray, num_phases: int) -> None:
        """Show uint8 labels ``[Z, Y, X]`` with phases ``0..num_phases-1``."""
        labels = np.asarray(labels)
        if labels.ndim != 3:
            raise ValueError(f"a volume must be [Z, Y, X], got shape {labels.shape}")
        old_shape = None if self.labels is None else self.labels.shape
        self.labels = np.ascontiguousarray(labels, dtype=np.uint8)
        self.num_phases = max(int(num_phases), 1)
        self.update_count += 1
        if old_shape != self.labels.shape:
            for axis, n in zip(("z", "y", "x"), self.labels.shape):
                s = self.sliders[axis]
                s.blockSignals(True)
                s.setRange(0, n - 1)
                s.setValue(n // 2)
                s.blockSignals(False)
        self._refresh()

    def set_mode(self, mode: str) -> None:
        if mode not in VIEW_MODES:
            raise ValueError(f"unknown view mode {mode!r}; choose one of {', '.join(VIEW_MODES)}")
        if mode == self.mode:
            return
        self.mode = mode
        if self.mode_combo.currentText() != mode:
            self.mode_combo.setCurrentText(mode)
        self._set_sliders_visible()
        self._refresh()
        self.mode_changed.emit(mode)

    def clear(self) -> None:
        self.labels = None
        self._scene_key = None
        self.plotter.clear_actors()
        self.plotter.remove_legend()
        self._redraw()

    def screenshot(self) -> np.ndarray:
        """The rendered scene as an ``[H, W, 3]`` uint8 RGB image."""
        # Render now: a change only requested a Qt repaint, which may not have run yet.
        self.plotter.render()
        return self.plotter.screenshot(return_img=True)

    def reset_camera(self) -> None:
        self.plotter.reset_camera()
        self._redraw()

    def _redraw(self) -> None:
        # A Qt repaint request, not a render now: Qt coalesces requests and paintGL renders
        # once (rendering here as well would draw every frame twice).
        self.plotter.update()

    def shutdown(self) -> None:
        """Release the render window (call before the widget is destroyed)."""
        self.plotter.close()

    # -- drawing --------------------------------------------------------------------------
    def _set_sliders_visible(self) -> None:
        for s in self.sliders.values():
            s.setEnabled(self.mode == "slices")

    def _refresh(self) -> None:
        if self.labels is None:
            return
        key = (self.labels.shape, self.num_phases, self.mode)
        if key != self._scene_key:
            self._build_scene()
            self._scene_key = key
        else:
            self._update_scene()
        self._redraw()

    def _mesh_kwargs(self) -> dict:
        k = self.num_phases
        return dict(scalars="phase", cmap=phase_colors(k), clim=(-0.5, k - 0.5), n_colors=k,
                    show_scalar_bar=False)

    def _build_scene(self) -> None:
        p = self.plotter
        p.clear_actors()
        p.remove_legend()
        p.remove_bounds_axes()
        self._grid = label_grid(self.labels)
        self._slabs, self._surface = {}, None
        if self.mode == "slices":
            for axis in ("z", "y", "x"):
                self._slabs[axis] = self._slab(axis)
                p.add_mesh(self._slabs[axis], **self._mesh_kwargs())
            p.add_mesh(self._grid.outline(), color="black")
        elif self.mode == "surfaces":
            self._surface = self._phase_surface()
            if self._surface.n_cells:  # an empty mesh has no 'phase' array to colour by
                p.add_mesh(self._surface, **self._mesh_kwargs())
            p.add_mesh(self._grid.outline(), color="black")
        else:
            p.add_mesh(self._grid.outline(), color="black", line_width=2)
            p.show_bounds(xtitle="x", ytitle="y", ztitle="z", color="black", grid=False,
                          location="outer", ticks="outside", fmt="%.0f")
        if self.mode != "outline":
            p.add_legend([[f"phase {k}", c] for k, c in enumerate(phase_colors(self.num_phases))],
                         bcolor="white", face="rectangle", loc="upper right",
                         size=(0.14, 0.045 * self.num_phases))
        p.reset_camera()

    def _update_scene(self) -> None:
        # Assigning a new array (not writing into the old one) bumps its modified time,
        # which is what the mapper's colour cache looks at.
        self._grid.cell_data["phase"] = self.labels.ravel()
        if self.mode == "slices":
            self._update_slabs()
        elif self.mode == "surfaces":
            new = self._phase_surface()
            if (new.n_cells == 0) != (self._surface.n_cells == 0):
                self._build_scene()  # the phase appeared or vanished: add / drop the actor
            else:
                # Same PolyData object, new content: the actor and mapper stay.
                self._surface.copy_from(new)

    def _slab(self, axis: str) -> pv.ImageData:
        """A one-voxel-thick slab at the slider's index, normal to ``axis``."""
        z, y, x = self.labels.shape
        i = self.sliders[axis].value()
        if axis == "z":
            slab = pv.ImageData(dimensions=(x + 1, y + 1, 2), origin=(0, 0, i))
            values = self.labels[i]
        elif axis == "y":
            slab = pv.ImageData(dimensions=(x + 1, 2, z + 1), origin=(0, i, 0))
            values = self.labels[:, i, :]
        else:
            slab = pv.ImageData(dimensions=(2, y + 1, z + 1), origin=(i, 0, 0))
            values = self.labels[:, :, i]
        # Cells are ordered x fastest, then y, then z: a [Z, Y, X] C-order ravel.
        slab.cell_data["phase"] = np.ascontiguousarray(values).ravel()
        return slab

    def _on_slider(self, *_) -> None:
        if self.labels is not None and self.mode == "slices" and self._slabs:
            self._update_slabs()
            self._redraw()

    def _update_slabs(self) -> None:
        for axis, slab in self._slabs.items():
            new = self._slab(axis)
            slab.origin = new.origin
            slab.cell_data["phase"] = new.cell_data["phase"]

    def _phase_surface(self) -> pv.PolyData:
        lo = 0.5 if self.num_phases > 1 else -0.5
        solid = self._grid.threshold((lo, self.num_phases - 0.5), scalars="phase")
        if solid.n_cells == 0:
            return pv.PolyData()
        return solid.extract_surface(algorithm="dataset_surface")

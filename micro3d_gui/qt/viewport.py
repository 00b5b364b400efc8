"""3D view of a label volume: a pyvistaqt ``QtInteractor`` with three view modes.

- ``slices``: three orthogonal one-voxel slabs (xy at z, xz at y, yz at x) coloured by phase,
  positioned with sliders;
- ``surfaces``: the surface of every voxel of phases 1..K-1 (phase 0, the matrix, is left
  out so the others can be seen; a one-phase volume shows phase 0);
- ``outline``: the box outline only.

Every mode draws cube axes with the box's bounds in physical units (:meth:`Viewport.set_voxel_size`;
voxels when none is set), and beside the 3D view three 2D panes show the xy / xz / yz
sections at the sliders' positions, oriented as METHOD.md's micrographs (xy: rows y, columns
x; xz: rows z, columns x; yz: rows z, columns y), so a generated section can be held against a
micrograph of the same plane. An image file dropped on a pane asks for that section to be
kept at the pane's index in the volumes to come (:attr:`Viewport.section_dropped`; the main
window hands it to the Generate panel's kept sections); dropped on the 3D view it is kept at
the section under the pointer: the slab it lands on in the slices view, else the box face
(:func:`micro3d_gui.picking.section_under_ray`). Phase names, colours and opacities
are editable (:meth:`Viewport.set_phase_style`, the Phases table); colours come from
:mod:`.palette`.

A volume ``[Z, Y, X]`` maps to VTK's x, y, z = columns, rows, slices (one voxel = one cell
of the voxel size), so the axes read as the volume's x, y, z. Updating a volume of the same shape and
phase count only replaces arrays in the meshes already on screen (no new actors), which
keeps ~4 updates per second fluid while the sampler runs.
"""
from __future__ import annotations

import numpy as np
import pyvista as pv
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFrame, QHBoxLayout, QLabel, QScrollArea,
                               QVBoxLayout, QWidget)
from pyvistaqt import QtInteractor
from superqt import QLabeledSlider

from ..picking import section_under_ray
from .drops import local_paths
from .palette import direction_hex
from .phase_table import PhaseTable
from .thumbnails import labels_pixmap

VIEW_MODES = ("slices", "surfaces", "outline")
#: The 2D panes: plane -> (slider axis, how the pane's image is cut from [Z, Y, X]).
PANES = {"xy": "z", "xz": "y", "yz": "x"}
PANE_SIZE = 128


def section(labels: np.ndarray, plane: str, index: int) -> np.ndarray:
    """The ``plane`` section at ``index`` of ``labels [Z, Y, X]`` in METHOD.md's
    orientation (xy: ``[Y, X]``, xz: ``[Z, X]``, yz: ``[Z, Y]``)."""
    return {"xy": lambda: labels[index], "xz": lambda: labels[:, index, :],
            "yz": lambda: labels[:, :, index]}[plane]()


class SectionPane(QLabel):
    """A 2D pane that takes image files dropped on it (``dropped``: their local paths)."""

    dropped = Signal(list)

    def __init__(self):
        super().__init__()
        self.setAcceptDrops(True)

    def dragEnterEvent(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.dropped.emit([str(p) for p in paths])


def label_grid(labels: np.ndarray, spacing: float = 1.0) -> pv.ImageData:
    """``[Z, Y, X]`` labels -> ImageData with cell array ``phase`` (x fastest, like C order)."""
    z, y, x = labels.shape
    grid = pv.ImageData(dimensions=(x + 1, y + 1, z + 1), spacing=(spacing,) * 3)
    grid.cell_data["phase"] = np.ascontiguousarray(labels, dtype=np.uint8).ravel()
    return grid


class Viewport(QWidget):
    """Central 3D view and its 2D panes. :meth:`set_volume` is cheap to call repeatedly
    (same shape)."""

    mode_changed = Signal(str)
    #: (plane, index, image path): a file dropped on a 2D pane or on the 3D view, to keep
    #: at that section.
    section_dropped = Signal(str, int, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        # No auto-update timer: it re-renders 5 times a second even when nothing changed,
        # which costs a CPU core with software OpenGL; every change renders explicitly.
        self.plotter = QtInteractor(self, auto_update=False)
        self.plotter.set_background("white")
        self.plotter.setAcceptDrops(True)
        self.plotter.installEventFilter(self)
        self.labels: np.ndarray | None = None
        self.num_phases = 0
        self.mode = "slices"
        #: Voxel edge length and unit (None: one voxel = one unit, axes in voxels).
        self.voxel_size: float | None = None
        self.unit = "µm"
        self.placeholder = ""
        #: Number of :meth:`set_volume` calls (a test and the status bar read it).
        self.update_count = 0
        self._scene_key = None  # (shape, num_phases, mode) of what is on screen
        self._grid: pv.ImageData | None = None
        self._slabs: dict[str, pv.ImageData] = {}
        self._surface: pv.PolyData | None = None
        self._placeholder_actor = None

        self.mode_combo = QComboBox()
        self.mode_combo.addItems(VIEW_MODES)
        self.mode_combo.setToolTip("How the volume is drawn")
        self.mode_combo.currentTextChanged.connect(self.set_mode)
        self.sliders: dict[str, QLabeledSlider] = {}
        bar = QHBoxLayout()
        view_label = QLabel("View")
        view_label.setToolTip(self.mode_combo.toolTip())
        bar.addWidget(view_label)
        bar.addWidget(self.mode_combo)
        for axis in ("z", "y", "x"):
            s = QLabeledSlider(Qt.Orientation.Horizontal)
            s.setRange(0, 0)
            s.setToolTip(f"{axis} position of the slice normal to {axis} (3D slab and "
                         "2D pane)")
            s.valueChanged.connect(self._on_slider)
            label = QLabel(axis)
            label.setToolTip(s.toolTip())
            label.setStyleSheet(f"color: {direction_hex(axis)}; font-weight: bold;")
            bar.addWidget(label)
            bar.addWidget(s, 1)
            self.sliders[axis] = s
        self.toolbar = QWidget()
        self.toolbar.setLayout(bar)
        bar.setContentsMargins(4, 2, 4, 2)

        # The 2D panes and the phase table, in a column beside the 3D view.
        self.panes: dict[str, QLabel] = {}
        self.pane_titles: dict[str, QLabel] = {}
        side = QVBoxLayout()
        side.setContentsMargins(4, 0, 4, 4)
        for plane in PANES:
            title = QLabel(plane)
            pane = SectionPane()
            pane.dropped.connect(lambda paths, plane=plane: self._section_dropped(plane, paths))
            pane.setFixedSize(PANE_SIZE, PANE_SIZE)
            pane.setAlignment(Qt.AlignmentFlag.AlignCenter)
            pane.setStyleSheet("background: #f0f0f0; color: #808080;")
            pane.setToolTip(f"The {plane} section at the {PANES[plane]} slider, oriented as "
                            f"a {plane} micrograph. Drop a {plane} micrograph here to keep "
                            "it at this section in the next volumes generated")
            self.panes[plane], self.pane_titles[plane] = pane, title
            side.addWidget(title)
            side.addWidget(pane)
        side.addStretch(1)
        #: The phase names / colours / opacities (the main window puts it in a dock).
        self.phase_table = PhaseTable()
        self.phase_table.style_changed.connect(self._style_changed)
        panes = QWidget()
        panes.setLayout(side)
        # Scrolls when the window is short (the Analysis dock open at 800 px).
        self.side = QScrollArea()
        self.side.setWidget(panes)
        self.side.setWidgetResizable(True)
        self.side.setFrameShape(QFrame.Shape.NoFrame)
        self.side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.side.setFixedWidth(PANE_SIZE + 24 + self.side.verticalScrollBar().sizeHint().width())

        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.plotter.interactor, 1)
        body.addWidget(self.side)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addLayout(body, 1)
        self.plotter.add_axes(xlabel="x", ylabel="y", zlabel="z", x_color=direction_hex("x"),
                              y_color=direction_hex("y"), z_color=direction_hex("z"))
        self._update_panes()

    # -- public ---------------------------------------------------------------------------
    def set_volume(self, labels: np.ndarray, num_phases: int) -> None:
        """Show uint8 labels ``[Z, Y, X]`` with phases ``0..num_phases-1``."""
        labels = np.asarray(labels)
        if labels.ndim != 3:
            raise ValueError(f"a volume must be [Z, Y, X], got shape {labels.shape}")
        old_shape = None if self.labels is None else self.labels.shape
        self.labels = np.ascontiguousarray(labels, dtype=np.uint8)
        self.num_phases = max(int(num_phases), 1)
        self.phase_table.set_num_phases(self.num_phases)
        self.update_count += 1
        if old_shape != self.labels.shape:
            for axis, n in zip(("z", "y", "x"), self.labels.shape):
                s = self.sliders[axis]
                s.blockSignals(True)
                s.setRange(0, n - 1)
                s.setValue(n // 2)
                s.blockSignals(False)
        self._show_placeholder(False)
        self._refresh()
        self._update_panes()

    def set_mode(self, mode: str) -> None:
        if mode not in VIEW_MODES:
            raise ValueError(f"unknown view mode {mode!r}; choose one of {', '.join(VIEW_MODES)}")
        if mode == self.mode:
            return
        self.mode = mode
        if self.mode_combo.currentText() != mode:
            self.mode_combo.setCurrentText(mode)
        self._refresh()
        self.mode_changed.emit(mode)

    def set_voxel_size(self, size: float | None, unit: str = "µm") -> None:
        """Voxel edge length in ``unit`` (None or 0: unknown; the axes count voxels)."""
        self.voxel_size = float(size) if size else None
        self.unit = unit
        self._scene_key = None
        self._refresh()
        self._update_panes()

    def set_phase_style(self, names=None, colours=None, opacities=None) -> None:
        """Phase names, colours (``#rrggbb``) and opacities (0..1), each a list per phase
        (None keeps the current ones)."""
        self.phase_table.set_style(names, colours, opacities)

    def set_placeholder(self, text: str) -> None:
        """What the empty view says (what to do next); shown while there is no volume."""
        self.placeholder = text
        self._show_placeholder(self.labels is None)

    def clear(self) -> None:
        self.labels = None
        self._scene_key = None
        self.plotter.clear_actors()
        self.plotter.remove_legend()
        self.plotter.remove_bounds_axes()
        self._placeholder_actor = None
        self._show_placeholder(True)
        self._update_panes()
        self._redraw()

    def screenshot(self) -> np.ndarray:
        """The rendered scene as an ``[H, W, 3]`` uint8 RGB image."""
        # Render now: a change only requested a Qt repaint, which may not have run yet.
        self.plotter.render()
        return self.plotter.screenshot(return_img=True)

    def reset_camera(self) -> None:
        self.plotter.reset_camera()
        self.plotter.camera.zoom(0.8)
        self._redraw()

    def _redraw(self) -> None:
        # A Qt repaint request, not a render now: Qt coalesces requests and paintGL renders
        # once (rendering here as well would draw every frame twice).
        self.plotter.update()

    def shutdown(self) -> None:
        """Release the render window (call before the widget is destroyed)."""
        self.plotter.close()

    # -- drawing --------------------------------------------------------------------------
    @property
    def spacing(self) -> float:
        return self.voxel_size or 1.0

    def _show_placeholder(self, show: bool) -> None:
        if self._placeholder_actor is not None:
            self.plotter.remove_actor(self._placeholder_actor)
            self._placeholder_actor = None
        if show and self.placeholder:
            self._placeholder_actor = self.plotter.add_text(
                self.placeholder, position="upper_left", font_size=11, color="#303030",
                name="placeholder")
        self._redraw()

    def _style_changed(self) -> None:
        self._scene_key = None  # colours and opacities are baked into the actors
        self._refresh()
        self._update_panes()

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
        style = self.phase_table
        kwargs = dict(scalars="phase", cmap=style.colours[:k], clim=(-0.5, k - 0.5),
                      n_colors=k, show_scalar_bar=False)
        opacity = style.opacities[:k]
        if any(o < 1.0 for o in opacity):
            kwargs["opacity"] = list(opacity)
        return kwargs

    def _build_scene(self) -> None:
        p = self.plotter
        p.clear_actors()
        p.remove_legend()
        p.remove_bounds_axes()
        self._placeholder_actor = None
        self._grid = label_grid(self.labels, self.spacing)
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
        # The cube axes' titles cannot draw "µ": the unit goes in the text below.
        p.show_bounds(xtitle="x", ytitle="y", ztitle="z", color="black", grid=False,
                      location="outer", ticks="outside",
                      fmt="%.3g" if self.voxel_size else "%.0f", font_size=10)
        p.add_text(self.bounds_text(), position="lower_right", font_size=9, color="#303030",
                   name="bounds")
        if self.mode != "outline":
            # The surfaces view leaves phase 0 (the matrix) out: so does its legend.
            shown = range(1 if self.mode == "surfaces" and self.num_phases > 1 else 0,
                          self.num_phases)
            style = self.phase_table
            p.add_legend([[style.names[k], style.colours[k]] for k in shown],
                         bcolor="white", face="rectangle", loc="upper left",
                         size=(0.18, 0.045 * len(shown)))
        p.reset_camera()
        p.camera.zoom(0.8)  # room for the cube axes' labels

    def bounds_text(self) -> str:
        """The box in physical units (or voxels) as the corner text says it."""
        z, y, x = self.labels.shape
        if not self.voxel_size:
            return f"axes in voxels; box {x} x {y} x {z} (x y z)"
        d = self.voxel_size
        return (f"axes in {self.unit}; box {x * d:.3g} x {y * d:.3g} x {z * d:.3g} "
                f"{self.unit} (x y z), voxel {d:.3g} {self.unit}")

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
        d = self.spacing
        if axis == "z":
            slab = pv.ImageData(dimensions=(x + 1, y + 1, 2), origin=(0, 0, i * d))
        elif axis == "y":
            slab = pv.ImageData(dimensions=(x + 1, 2, z + 1), origin=(0, i * d, 0))
        else:
            slab = pv.ImageData(dimensions=(2, y + 1, z + 1), origin=(i * d, 0, 0))
        slab.spacing = (d, d, d)
        plane = {"z": "xy", "y": "xz", "x": "yz"}[axis]
        # Cells are ordered x fastest, then y, then z: a [Z, Y, X] C-order ravel.
        slab.cell_data["phase"] = np.ascontiguousarray(section(self.labels, plane, i)).ravel()
        return slab

    def _on_slider(self, *_) -> None:
        self._update_panes()
        if self.labels is not None and self.mode == "slices" and self._slabs:
            self._update_slabs()
            self._redraw()

    def _update_slabs(self) -> None:
        for axis, slab in self._slabs.items():
            new = self._slab(axis)
            slab.origin = new.origin
            slab.cell_data["phase"] = new.cell_data["phase"]

    def pane_section(self, plane: str) -> np.ndarray | None:
        """The labels the ``plane`` pane shows (None without a volume)."""
        if self.labels is None:
            return None
        return section(self.labels, plane, self.sliders[PANES[plane]].value())

    def section_at(self, x: float, y: float) -> tuple[str, int] | None:
        """The section under the 3D view's point ``(x, y)`` (Qt widget pixels, from the top
        left): the slab there in the slices view, else the box face; None off the box."""
        if self.labels is None:
            return None
        ren = self.plotter.renderer
        scale = self.plotter.devicePixelRatioF()
        height = ren.GetRenderWindow().GetSize()[1]
        ends = []
        for depth in (0.0, 1.0):  # the near and far clipping planes under the point
            ren.SetDisplayPoint(x * scale, height - y * scale, depth)
            ren.DisplayToWorld()
            wx, wy, wz, w = ren.GetWorldPoint()
            ends.append(np.array([wx, wy, wz]) / w)
        slabs = ({plane: self.sliders[axis].value() for plane, axis in PANES.items()}
                 if self.mode == "slices" else None)
        return section_under_ray(ends[0], ends[1] - ends[0], self.labels.shape,
                                 self.spacing, slabs)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # Drops on the 3D view (the QtInteractor is VTK's widget: filtered, not subclassed).
        # The enter takes any local file over a volume (an ignored enter gets no moves);
        # each move then says whether the pointer is over the box.
        kind = event.type()
        if watched is self.plotter and kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            pos = event.position()
            over = (self.labels is not None if kind == QEvent.Type.DragEnter
                    else self.section_at(pos.x(), pos.y()) is not None)
            if local_paths(event.mimeData()) and over:
                event.acceptProposedAction()
            else:
                event.ignore()
            return True
        if watched is self.plotter and kind == QEvent.Type.Drop:
            pos = event.position()
            paths = local_paths(event.mimeData())
            where = self.section_at(pos.x(), pos.y())
            if paths and where:
                event.acceptProposedAction()
                for path in paths:
                    self.section_dropped.emit(*where, str(path))
            return True
        return super().eventFilter(watched, event)

    def _section_dropped(self, plane: str, paths: list) -> None:
        index = self.sliders[PANES[plane]].value()
        for path in paths:
            self.section_dropped.emit(plane, index, path)

    def _update_panes(self) -> None:
        colours = self.phase_table.rgb()
        for plane, pane in self.panes.items():
            axis = PANES[plane]
            image = self.pane_section(plane)
            if image is None:
                pane.clear()
                pane.setText("no volume")
                self.pane_titles[plane].setText(plane)
                continue
            i = self.sliders[axis].value()
            where = (f"{axis} = {i * self.voxel_size:.3g} {self.unit}" if self.voxel_size
                     else f"{axis} = {i}")
            self.pane_titles[plane].setText(f"{plane}  ({where})")
            pane.setPixmap(labels_pixmap(image, PANE_SIZE, colours))

    def _phase_surface(self) -> pv.PolyData:
        lo = 0.5 if self.num_phases > 1 else -0.5
        solid = self._grid.threshold((lo, self.num_phases - 0.5), scalars="phase")
        if solid.n_cells == 0:
            return pv.PolyData()
        return solid.extract_surface(algorithm="dataset_surface")

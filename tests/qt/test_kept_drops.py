"""Kept sections by drag and drop: an image dropped on a section pane or on the 3D view is
kept there by Generate, and a bad one is refused before any work."""
from dataclasses import replace

import numpy as np




def drop_files(widget, paths):
    """Drag ``paths`` onto ``widget`` and drop them, as Qt delivers a real drag: a drag
    enter (which the widget must accept) and then the drop, at its centre."""
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    centre = widget.rect().center()
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(centre, *args)  # a QPoint: PySide6 took a QPointF only from 6.12
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(widget, QDropEvent(QPointF(centre), *args))


def test_an_image_dropped_on_a_section_pane_is_kept_there_by_generate(qtbot, window, tmp_path):
    """A real drag and drop onto the xz pane, its slider at y = 5, lists the file as the xz
    section 5 in Generate's kept sections; a second drop there replaces it."""
    from PIL import Image

    vol = np.zeros((16, 16, 16), np.uint8)
    vol[:, :, 8:] = 1
    window.set_volumes([vol], 2)
    window.viewport.sliders["y"].setValue(5)
    faces = []
    for name in ("face.png", "other.png"):
        Image.fromarray(vol[:, 5, :] * 255).save(tmp_path / name)
        faces.append(str(tmp_path / name))
        drop_files(window.viewport.panes["xz"], [faces[-1]])
        assert window.generate_panel.settings().keep == (("xz", 5, faces[-1]),)
    window.viewport.sliders["z"].setValue(3)
    drop_files(window.viewport.panes["xy"], [faces[1]])
    assert window.generate_panel.settings().keep == (("xz", 5, faces[1]), ("xy", 3, faces[1]))
    assert "xy section 3" in window.statusBar().currentMessage()


def test_a_bad_kept_section_is_refused_before_any_work(qtbot, window, boxes, tmp_path):
    """A file that is not an image, dropped on a pane, is refused at once and named; a
    kept image that does not fit the box is refused when Generate starts, before a job
    runs, naming the section."""
    from PIL import Image

    from micro3d_gui import paths

    vol = np.zeros((16, 16, 16), np.uint8)
    window.set_volumes([vol], 2)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    drop_files(window.viewport.panes["xz"], [notes])
    assert window.generate_panel.settings().keep == ()
    assert boxes.errors and str(notes) in boxes.errors[-1][1]

    gen = window.generate_panel
    gen.set_model(paths.demo_model("fibres"))
    face = tmp_path / "face.png"
    Image.fromarray(np.zeros((12, 16), np.uint8)).save(face)  # the xz face is 16 x 16
    gen.set_settings(replace(gen.settings(), shape=(16, 16, 16), keep=(("xz", 5, str(face)),)))
    assert not gen.start()
    assert not gen.is_running()
    assert "kept section xz 5" in boxes.errors[-1][1]


def test_an_image_dropped_on_the_3d_view_is_kept_at_the_section_under_it(qtbot, window,
                                                                        tmp_path):
    """A real drop on the rendered 3D view: looking down z at the 12 x 16 x 20 box, the
    outline view keeps the file at its top face (xy 11), the slices view at the z slab
    (xy 5); looking down x, at the face x = 19; off the box the drag is refused."""
    from PIL import Image
    from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
    from PySide6.QtGui import QDragMoveEvent
    from PySide6.QtWidgets import QApplication

    vp = window.viewport
    window.set_volumes([np.zeros((12, 16, 20), np.uint8)], 2)
    face = tmp_path / "face.png"
    Image.fromarray(np.zeros((16, 20), np.uint8)).save(face)
    kept = lambda: window.generate_panel.settings().keep[-1]  # noqa: E731
    vp.set_mode("outline")
    vp.plotter.view_xy()
    drop_files(vp.plotter, [face])
    assert kept() == ("xy", 11, str(face))
    vp.plotter.view_xy(negative=True)
    drop_files(vp.plotter, [face])
    assert kept() == ("xy", 0, str(face))
    vp.set_mode("slices")
    vp.plotter.view_xy()
    for axis, index in (("z", 5), ("y", 3), ("x", 4)):
        vp.sliders[axis].setValue(index)
    drop_files(vp.plotter, [face])
    assert kept() == ("xy", 5, str(face))
    assert "xy section 5" in window.statusBar().currentMessage()
    vp.set_mode("surfaces")
    vp.plotter.view_yz()
    drop_files(vp.plotter, [face])
    assert kept() == ("yz", 19, str(face))

    assert vp.section_at(1, 1) is None  # the view's corner is off the box
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(face))])
    move = QDragMoveEvent(QPoint(1, 1), Qt.DropAction.CopyAction, mime,
                          Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(vp.plotter, move)
    assert not move.isAccepted()

"""The data panel with real widgets, real files and real drop events."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication
from scipy.ndimage import gaussian_filter

from micro3d_gui.core.planes import PLANES
from micro3d_gui.preprocess.orientation import PlaneOptions
from micro3d_gui.qt import data_panel as dp
from micro3d_gui.qt import dialogs
from micro3d_gui.qt.data_panel import MAX_THUMBNAILS, DataPanel

SHAPE = (12, 16, 20)  # z, y, x: every plane's images have their own shape


def blob_volume(shape=SHAPE, level=0.0, seed=0) -> np.ndarray:
    """Two-phase random blobs (phase 1 where smoothed noise > level), uint8 [z, y, x]."""
    noise = gaussian_filter(np.random.default_rng(seed).normal(size=shape), 2.0, mode="wrap")
    return (noise > level * noise.std()).astype(np.uint8)


def slices(volume: np.ndarray) -> dict[str, list[np.ndarray]]:
    """The plane images by plain indexing (METHOD.md: xy rows y; xz, yz rows z)."""
    z, y, x = volume.shape
    return {"xy": [volume[k] for k in range(z)], "xz": [volume[:, j] for j in range(y)],
            "yz": [volume[:, :, i] for i in range(x)]}


def write_grey(folder, images, seed=0):
    """Grey micrographs: labels * 200 + 20 + Gaussian noise (sd 10), as 8-bit PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, im in enumerate(images):
        grey = np.clip(im * 200.0 + 20 + rng.normal(0, 10, im.shape), 0, 255).astype(np.uint8)
        Image.fromarray(grey).save(folder / f"img_{i}.png")
    return folder


def write_grey_planes(root, volume, seed=0):
    return {p: write_grey(root / p, ims, seed=seed + i)
            for i, (p, ims) in enumerate(slices(volume).items())}


def drop(qtbot, widget, paths):
    """A real drag-enter + drop of local file URLs on ``widget`` (a plane target); waits
    until the target has handed the paths on. Returns both events."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    centre = widget.rect().center()
    enter = QDragEnterEvent(centre, Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    event = QDropEvent(QPointF(centre), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(widget.paths_dropped, timeout=5000):
        QApplication.sendEvent(widget, event)
    panel = widget.parentWidget()
    while not isinstance(panel, DataPanel):
        panel = panel.parentWidget()
    qtbot.waitUntil(lambda: not panel.is_loading(), timeout=20000)  # read in a worker
    return enter, event


@pytest.fixture
def panel(qtbot, errors):
    w = DataPanel()
    qtbot.addWidget(w)
    w.show()
    return w


def wait_segmented(qtbot, panel):
    qtbot.waitUntil(lambda: panel._seg_valid, timeout=20000)


def test_drop_folders_on_each_plane(qtbot, panel, tmp_path, errors):
    volume = blob_volume()
    dirs = write_grey_planes(tmp_path, volume)
    expected = slices(volume)
    for plane in PLANES:
        with qtbot.waitSignal(panel.changed, timeout=5000):
            enter, event = drop(qtbot, panel.targets[plane], [dirs[plane]])
        assert enter.isAccepted() and event.isAccepted()
    assert errors == []
    for plane in PLANES:
        target = panel.targets[plane]
        n = len(expected[plane])
        assert len(panel.images(plane)) == n
        assert panel.images(plane)[0].shape == expected[plane][0].shape
        assert target.thumbnails.count() == n
        assert not target.thumbnails.item(0).icon().isNull()
        assert target.count_label.text().startswith(f"{n} images from {n} files")
        assert panel.plane_paths()[plane] == sorted(dirs[plane].iterdir(),
                                                    key=lambda p: int(p.stem.split("_")[1]))


def test_drag_without_files_is_refused(qtbot, panel):
    mime = QMimeData()
    mime.setText("not a file")
    enter = QDragEnterEvent(panel.targets["xy"].rect().center(), Qt.DropAction.CopyAction,
                            mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(panel.targets["xy"], enter)
    assert not enter.isAccepted()


def test_drop_files_and_thumbnail_cap(qtbot, panel, tmp_path):
    rng = np.random.default_rng(1)
    folder = write_grey(tmp_path / "many", [rng.integers(0, 2, (8, 10)) for _ in range(30)])
    files = sorted(folder.iterdir(), key=lambda p: int(p.stem.split("_")[1]))
    drop(qtbot, panel.targets["xz"], files[:5])
    assert len(panel.images("xz")) == 5
    drop(qtbot, panel.targets["xz"], [folder])  # the 5 already there are not added twice
    assert len(panel.images("xz")) == 30
    # Thumbnails are capped; the rest is one "+N more" entry.
    assert panel.targets["xz"].thumbnails.count() == MAX_THUMBNAILS + 1
    assert panel.targets["xz"].thumbnails.item(MAX_THUMBNAILS).text() == \
        f"+{30 - MAX_THUMBNAILS} more"
    panel.clear("xz")
    assert panel.images("xz") == [] and panel.targets["xz"].thumbnails.count() == 0


def test_orientation_options_change_images(qtbot, panel, tmp_path):
    volume = blob_volume()
    dirs = write_grey_planes(tmp_path, volume)
    panel.add_paths("xz", [dirs["xz"]])
    raw = panel.images("xz")
    assert raw[0].shape == (SHAPE[0], SHAPE[2])
    with qtbot.waitSignal(panel.changed, timeout=5000):
        panel.targets["xz"].transpose.setChecked(True)
    assert panel.plane_options()["xz"] == PlaneOptions(transpose=True)
    assert panel.images("xz")[0].shape == (SHAPE[2], SHAPE[0])
    np.testing.assert_array_equal(panel.images("xz")[3], raw[3].T)
    panel.targets["xz"].flip_rows.setChecked(True)  # transpose first, then the flip
    np.testing.assert_array_equal(panel.images("xz")[3], raw[3].T[::-1])
    panel.targets["xz"].transpose.setChecked(False)
    panel.targets["xz"].flip_cols.setChecked(True)
    np.testing.assert_array_equal(panel.images("xz")[3], raw[3][::-1, ::-1])
    # The thumbnails follow the orientation: a transposed image is taller than wide.
    panel.targets["xz"].flip_rows.setChecked(False)
    panel.targets["xz"].transpose.setChecked(True)
    icon = panel.targets["xz"].thumbnails.item(0).icon()
    size = icon.availableSizes()[0]
    assert size.height() > size.width()


def test_otsu_fractions_preview_and_disagreement(qtbot, panel, tmp_path):
    volume = blob_volume()
    truth = volume.mean()
    assert 0.3 < truth < 0.7
    dirs = write_grey_planes(tmp_path, volume)
    for plane in PLANES:
        panel.add_paths(plane, [dirs[plane]])
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("otsu"))
    wait_segmented(qtbot, panel)
    seg = panel.segmentation()
    assert seg.num_phases == 2
    assert 20 < seg.thresholds[0] < 220
    for plane in PLANES:
        # Every plane's slices cover the volume once: each plane sees the true fraction.
        assert seg.fractions[plane][1] == pytest.approx(truth, abs=0.01)
        np.testing.assert_array_equal(np.stack(seg.labels[plane]), np.stack(slices(volume)[plane]))
    table = panel.fractions_table
    assert table.rowCount() == 3 and table.columnCount() == 2
    assert float(table.item(0, 1).text()) == pytest.approx(truth, abs=0.01)
    assert not panel.warning_label.isVisible()
    assert not panel.preview_before.pixmap().isNull()
    assert not panel.preview_after.pixmap().isNull()
    # The preview shows the labels in phase colours: phase 1 pixels get colour 1.
    after = panel.preview_after.pixmap().toImage()
    colours = {after.pixelColor(x, y).name() for x in range(0, after.width(), 7)
               for y in range(0, after.height(), 7)}
    assert len(colours) >= 2

    # yz micrographs of another material (much more phase 1): the planes disagree.
    other = blob_volume(level=-1.0, seed=5)
    assert other.mean() > truth + 0.2
    panel.clear("yz")
    panel.add_paths("yz", [write_grey(tmp_path / "yz_other", slices(other)["yz"])])
    qtbot.waitUntil(lambda: panel.warning_label.isVisible(), timeout=20000)
    assert "yz" in panel.warning_label.text()
    assert panel.warnings()


def test_labelled_method_on_grey_images_explains(qtbot, panel, tmp_path):
    dirs = write_grey_planes(tmp_path, blob_volume())
    panel.add_paths("xy", [dirs["xy"]])
    qtbot.waitUntil(lambda: panel.warning_label.isVisible(), timeout=20000)
    assert "grey levels" in panel.warning_label.text()
    with pytest.raises(dp.InputError):
        panel.segmentation()


def test_manual_thresholds(qtbot, panel, tmp_path):
    volume = blob_volume()
    dirs = write_grey_planes(tmp_path, volume)
    panel.add_paths("xy", [dirs["xy"]])
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("manual"))
    panel.thresholds_edit.setText("abc")
    qtbot.waitUntil(lambda: panel.warning_label.isVisible(), timeout=20000)
    assert "abc" in panel.warning_label.text()
    panel.thresholds_edit.setText("120")
    assert panel.segmentation_config().thresholds == (120.0,)
    wait_segmented(qtbot, panel)
    seg = panel.segmentation()
    np.testing.assert_array_equal(np.stack(seg.labels["xy"]), volume)


def test_corrupt_image_reported_and_rest_kept(qtbot, panel, tmp_path, errors):
    dirs = write_grey_planes(tmp_path, blob_volume())
    (dirs["xy"] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    drop(qtbot, panel.targets["xy"], [dirs["xy"]])
    assert len(errors) == 1
    assert "broken.png" in errors[0][1]
    assert len(panel.images("xy")) == SHAPE[0]
    assert all(p.name != "broken.png" for p in panel.plane_paths()["xy"])


def test_3d_tiff_drop_cuts_into_planes(qtbot, panel, tmp_path, monkeypatch):
    volume = blob_volume() * 255
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, volume, imagej=True, metadata={"axes": "ZYX"})
    asked = []
    monkeypatch.setattr(dialogs, "ask", lambda *a: asked.append(a) or True)
    drop(qtbot, panel.targets["xy"], [path])
    assert len(asked) == 1 and "stack.tif" in asked[0][2] and "12 x 16 x 20" in asked[0][2]
    np.testing.assert_array_equal(panel.reference_volume(), volume)
    expected = slices(volume)
    for plane in PLANES:
        assert len(panel.images(plane)) == len(expected[plane])
        np.testing.assert_array_equal(np.stack(panel.images(plane)), np.stack(expected[plane]))
        assert panel.plane_paths()[plane] == [path]
    assert "stack.tif" in panel.volume_label.text()


def test_3d_tiff_declined_gives_plane_images(qtbot, panel, tmp_path, monkeypatch):
    volume = blob_volume() * 255
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, volume, photometric="minisblack")  # plain multipage, 12 pages
    monkeypatch.setattr(dialogs, "ask", lambda *a: False)
    panel.add_paths("xy", [path])
    np.testing.assert_array_equal(panel.reference_volume(), volume)
    assert len(panel.images("xy")) == SHAPE[0]
    assert panel.images("xz") == [] and panel.images("yz") == []


def test_small_multipage_tiff_is_images_not_volume(qtbot, panel, tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(dialogs, "ask", lambda *a: asked.append(a) or True)
    pages = blob_volume()[:3] * 255
    tifffile.imwrite(tmp_path / "three.tif", pages, photometric="minisblack")
    panel.add_paths("xz", [tmp_path / "three.tif"], ask=True)
    assert asked == [] and panel.reference_volume() is None
    assert len(panel.images("xz")) == 3


def test_add_volume_without_question(qtbot, panel, tmp_path):
    volume = blob_volume(shape=(8, 10, 6))
    path = tmp_path / "v.tif"
    tifffile.imwrite(path, volume, imagej=True, metadata={"axes": "ZYX"})
    assert panel.add_volume(path, ask=False)
    assert [len(panel.images(p)) for p in PLANES] == [8, 10, 6]
    panel.clear_volume()
    assert panel.reference_volume() is None
    assert [len(panel.images(p)) for p in PLANES] == [0, 0, 0]


def test_state_round_trip(qtbot, panel, tmp_path, errors):
    volume = blob_volume()
    dirs = write_grey_planes(tmp_path, volume)
    stack = tmp_path / "ref.tif"
    tifffile.imwrite(stack, blob_volume(shape=(8, 8, 8), seed=3) * 255, imagej=True,
                     metadata={"axes": "ZYX"})
    for plane in ("xy", "xz"):
        panel.add_paths(plane, [dirs[plane]])
    panel.add_volume(stack, ask=False, cut=False)
    panel.targets["xz"].transpose.setChecked(True)
    panel.targets["xy"].flip_cols.setChecked(True)
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("multiotsu"))
    panel.phases_spin.setValue(3)
    state = json.loads(json.dumps(panel.state()))

    other = DataPanel()
    qtbot.addWidget(other)
    with qtbot.waitSignal(other.changed, timeout=5000):
        other.set_state(state)
    assert errors == []
    assert other.state() == state
    assert other.plane_options() == panel.plane_options()
    assert other.segmentation_config() == panel.segmentation_config()
    assert other.segmentation_config().method == "multiotsu"
    assert other.segmentation_config().phases == 3
    for plane in PLANES:
        assert len(other.images(plane)) == len(panel.images(plane))
        for a, b in zip(other.images(plane), panel.images(plane)):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(other.reference_volume(), panel.reference_volume())

    # A file that went missing is reported by name; the rest loads.
    missing = sorted(dirs["xy"].iterdir())[0]
    missing.unlink()
    third = DataPanel()
    qtbot.addWidget(third)
    third.set_state(state)
    assert any(missing.name in text for _, text in errors)
    assert len(third.images("xy")) == SHAPE[0] - 1


def test_panel_deleted_while_segmenting(qtbot, tmp_path):
    dirs = write_grey_planes(tmp_path, blob_volume())
    w = DataPanel()
    w.add_paths("xy", [dirs["xy"]])
    w.method_combo.setCurrentIndex(w.method_combo.findData("otsu"))
    w._start_segmentation()  # a worker is now on its way back to a panel about to go
    w.deleteLater()
    qtbot.wait(300)  # pytest-qt fails the test on any exception in the event loop


def test_set_segmentation_config(qtbot, panel, tmp_path):
    from micro3d_gui.preprocess.segment import SegmentationConfig

    volume = blob_volume()
    panel.add_paths("xz", [write_grey_planes(tmp_path, volume)["xz"]])
    config = SegmentationConfig("manual", thresholds=(115.5,))
    with qtbot.waitSignal(panel.changed, timeout=5000):
        panel.set_segmentation_config(config)
    assert panel.segmentation_config() == config
    assert not panel.phases_spin.isEnabled() and panel.thresholds_edit.isEnabled()
    np.testing.assert_array_equal(np.stack(panel.segmentation().labels["xz"]),
                                  np.stack(slices(volume)["xz"]))

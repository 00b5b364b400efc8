"""The inputs scientists have, in the app (issue 26): the Train panel's crop, auto by default
and fitted to the Data panel's micrographs by the core's rule (as ``micro3d train``) with
its note under the Crop field; folders holding files that are not images."""
import numpy as np
from PIL import Image
from PySide6.QtCore import Qt

from micro3d_gui.core.checkpoint import load_checkpoint
from micro3d_gui.session.training import TrainSettings


def write_62px(root):
    """Four 62 x 62 px two-phase micrographs per plane (too small for the recipe's 64 px)."""
    dirs = {}
    for i, plane in enumerate(("xy", "xz", "yz")):
        d = dirs[plane] = root / plane
        d.mkdir(parents=True)
        for j in range(4):
            im = np.random.default_rng(10 * i + j).random((31, 31)) > 0.5
            Image.fromarray(np.kron(im, np.ones((2, 2))).astype(np.uint8) * 255).save(
                d / f"{plane}_{j}.png")
    return dirs


def test_62_px_micrographs_train_with_the_auto_crop_and_its_note(qtbot, window, boxes,
                                                                   tmp_path):
    panel = window.train_panel
    assert panel.crop_spin.value() == 0 and panel.crop_spin.text() == "auto"
    for plane, folder in write_62px(tmp_path / "sem").items():
        window.data_panel.add_paths(plane, [folder])
    # the note appears once the Data panel has segmented the micrographs
    qtbot.waitUntil(lambda: "crop 56 px" in panel.crop_note.text(), timeout=30_000)
    assert panel.crop_note.text() == "crop 56 px: the smallest micrograph, xy_0.png, is 62 px"
    # a crop the user sets that the images cannot hold: said at once, and Start refuses
    panel.crop_spin.setValue(64)
    assert "xy_0.png: image is 62x62 px, smaller than the 64 px training crop; set Crop to " \
           "56 or less" in panel.crop_note.text()
    model = tmp_path / "m.pt"
    panel.set_settings(TrainSettings(preset="tiny", steps=1, batch=2, crop=64, device="cpu",
                                     model_path=str(model)))
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert "set Crop to 56 or less" in boxes.errors[-1][1] and not model.exists()
    # back to auto: Start trains on 56 px crops
    panel.crop_spin.setValue(0)
    assert panel.crop_note.text().startswith("crop 56 px")
    with qtbot.waitSignal(panel.model_saved, timeout=120_000):
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert load_checkpoint(model)["crop"] == 56


def test_files_that_are_not_images_are_skipped_with_a_count(qtbot, window, boxes, tmp_path):
    folder = write_62px(tmp_path / "sem")["xz"]
    (folder / "notes.txt").write_text("SEM, 5 kV")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    assert window.data_panel.add_paths("xz", [folder]) == 4
    assert boxes.errors == []
    assert window.data_panel.targets["xz"].count_label.text().endswith(
        "; skipped 2 files that are not images (.DS_Store, notes.txt)")

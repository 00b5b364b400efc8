"""The Data panel's declared symmetry ("same as ..." per plane, "Isotropic material") and the
refusal of an absent plane when the user presses Start: real folders, widgets, training."""
import json

from PySide6.QtCore import QPoint, Qt

from micro3d_gui.core.checkpoint import checkpoint_symmetry, load_checkpoint
from micro3d_gui.core.symmetry import Symmetry
from micro3d_gui.session.training import TrainSettings

TINY = dict(preset="tiny", batch=2, crop=16, device="cpu", seed=0, checkpoint_every=1000)


def load(win, dirs, planes):
    for plane in planes:
        win.data_panel.add_paths(plane, [dirs[plane]])
    assert win.data_panel.segmentation() is not None


def press_start(qtbot, win, model, steps=2):
    panel = win.train_panel
    panel.set_settings(TrainSettings(steps=steps, model_path=str(model), **TINY))
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)


def train(qtbot, win, model, steps=2):
    with qtbot.waitSignal(win.train_panel.model_saved, timeout=180_000):
        press_start(qtbot, win, model, steps)
    qtbot.waitUntil(lambda: not win.train_panel.is_running(), timeout=10_000)


def test_start_with_one_plane_and_no_declaration_says_why_and_starts_nothing(
        qtbot, window, boxes, micrograph_dirs, tmp_path):
    load(window, micrograph_dirs, ["xy"])
    model = tmp_path / "m.pt"
    model.write_bytes(b"an earlier model")
    press_start(qtbot, window, model)
    assert boxes.questions == []  # refused before "Replace model?" is asked
    assert len(boxes.errors) == 1
    title, text = boxes.errors[0]
    assert title == "Cannot train"
    assert "no xz or yz micrographs" in text
    assert "drop xz micrographs on the xz target" in text
    assert "set the yz target to 'same as xy'" in text and "tick 'Isotropic material'" in text
    assert not window.train_panel.is_running() and window.train_panel.job is None
    assert model.read_bytes() == b"an earlier model"
    assert window.train_panel.loss_plot.losses == []


def test_isotropic_switch_trains_a_model_that_keeps_the_declaration(
        qtbot, window, boxes, micrograph_dirs, tmp_path):
    load(window, micrograph_dirs, ["xz"])
    check = window.data_panel.isotropic_check  # clicked on its box, as a user does
    qtbot.mouseClick(check, Qt.MouseButton.LeftButton, pos=QPoint(8, check.height() // 2))
    assert window.data_panel.symmetry() == Symmetry(isotropic=True)
    assert not window.data_panel.targets["yz"].same_as.isEnabled()
    model = tmp_path / "iso.pt"
    train(qtbot, window, model)
    assert boxes.errors == []
    assert checkpoint_symmetry(load_checkpoint(model)) == Symmetry(
        {"xy": "xz", "yz": "xz"}, True)
    # Resume with the switch off: the model keeps its own declaration
    qtbot.mouseClick(check, Qt.MouseButton.LeftButton, pos=QPoint(8, check.height() // 2))
    assert window.data_panel.symmetry() == Symmetry()
    panel = window.train_panel
    panel.steps_spin.setValue(4)
    with qtbot.waitSignal(panel.model_saved, timeout=180_000):
        qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=10_000)
    resumed = load_checkpoint(model)
    assert resumed["step"] == 4 and boxes.errors == []
    assert checkpoint_symmetry(resumed) == Symmetry({"xy": "xz", "yz": "xz"}, True)


def test_same_as_on_a_plane_target_trains_and_the_project_keeps_it(
        qtbot, window, boxes, micrograph_dirs, tmp_path):
    load(window, micrograph_dirs, ["xy", "xz"])
    combo = window.data_panel.targets["yz"].same_as
    combo.setCurrentIndex(combo.findText("same as xz"))
    assert window.data_panel.symmetry() == Symmetry({"yz": "xz"})
    model = tmp_path / "like.pt"
    train(qtbot, window, model)
    assert boxes.errors == []
    assert checkpoint_symmetry(load_checkpoint(model)) == Symmetry({"yz": "xz"})

    folder = tmp_path / "project"
    assert window.save_project(folder)
    saved = json.loads((folder / "project.json").read_text())
    assert saved["data"]["symmetry"] == {"like": {"yz": "xz"}, "isotropic": False}
    combo.setCurrentIndex(0)  # undeclared, then the project brings it back
    assert window.data_panel.symmetry() == Symmetry()
    assert window.open_project(folder)
    qtbot.waitUntil(lambda: not window.data_panel.is_loading(), timeout=30_000)
    assert window.data_panel.symmetry() == Symmetry({"yz": "xz"})
    assert combo.currentText() == "same as xz"

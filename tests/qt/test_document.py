"""The project as a document, driven through the menus and shortcuts as a user does: Save /
Ctrl+S, the modified mark and "Save changes?", New, a portable project folder, closing
during a job, Resume with nothing left, Export's defaults, Analyse's plot.

Real parts: the main window under Xvfb, files on disk, real model files, the real analysis.
Only the modal boxes are answered by the ``boxes`` recorder, and the file dialogs by
:class:`FileDialogs` (what the user would type).
"""
import json
import shutil
import time

import numpy as np
import pytest
import tifffile
from PySide6.QtCore import QThreadPool, Qt, QTimer
from PySide6.QtWidgets import QApplication

from micro3d_gui.core.checkpoint import load_checkpoint
from micro3d_gui.preprocess.synthetic import lamellae
from micro3d_gui.qt import model_loading, project_menu, train_panel
from micro3d_gui.qt.main_window import MainWindow
from micro3d_gui.session.project import PROJECT_FILE
from micro3d_gui.session.training import TrainSettings

TINY = dict(preset="tiny", batch=2, crop=16, device="cpu", seed=0, checkpoint_every=1000)


def load_micrographs(win, dirs):
    for plane, folder in dirs.items():
        win.data_panel.add_paths(plane, [folder])
    assert win.data_panel.segmentation() is not None


def untrained_model(path, steps=0):
    """A real model file from the core's Trainer, trained ``steps`` of its run of 1."""
    from micro3d_gui.core.diffusion.unet import preset_config
    from micro3d_gui.core.plane_dataset import PlaneDataset
    from micro3d_gui.core.train_config import TrainConfig
    from micro3d_gui.core.training import Trainer

    data = PlaneDataset({"xy": [np.eye(16, dtype=np.uint8)]}, 2)
    trainer = Trainer(data, preset_config("tiny", 1), TrainConfig(steps=1, crop=16,
                                                                  batch_size=1))
    if steps:
        trainer.train()
    trainer.save(path)
    return path


class FileDialogs:
    """Answers the project menu's file dialogs with ``path`` (what the user typed)."""

    def __init__(self):
        self.path = None
        self.asked = 0

    def getSaveFileName(self, *args, **kwargs):
        self.asked += 1
        return (str(self.path) if self.path else "", "")

    def getExistingDirectory(self, *args, **kwargs):
        self.asked += 1
        return str(self.path) if self.path else ""

    def getOpenFileName(self, *args, **kwargs):
        return self.getSaveFileName()


@pytest.fixture
def file_dialogs(monkeypatch):
    fake = FileDialogs()
    monkeypatch.setattr(project_menu, "QFileDialog", fake)
    monkeypatch.setattr(model_loading, "QFileDialog", fake)
    monkeypatch.setattr(train_panel, "QFileDialog", fake)
    return fake


def small_volumes(n=2):
    return [lamellae((6, 8, 10), axis=2, seed=i) for i in range(n)]


def saved_meta(folder):
    return json.loads((folder / PROJECT_FILE).read_text())


def wait_title(qtbot, win, title):
    """The title is refreshed once the event loop runs (after a batch of edits)."""
    qtbot.waitUntil(lambda: win.windowTitle() == title, timeout=5000)


def press_ctrl_s(qtbot, win):
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=5000)
    qtbot.keyClick(win, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)


def test_every_menu_action_runs_when_triggered(qtbot, window, boxes, file_dialogs):
    """Each action as the menu or its shortcut fires it (``triggered(checked)``): none
    raises (pytest-qt fails a test on an exception in a slot), each does its job or says
    why not. The file dialogs are cancelled, the help boxes closed."""
    def close_help():
        box = QApplication.activeModalWidget()
        if box is not None:
            box.reject()
    closer = QTimer()
    closer.timeout.connect(close_help)
    closer.start(50)
    try:
        for key, action in window.actions.items():
            if key != "quit":
                action.trigger()
    finally:
        closer.stop()
    said = " ".join(text for _, text in boxes.errors)
    assert "no volumes to export" in said and "no volumes to analyse" in said
    assert "no model" in said
    # open, save (a new project asks), save as, load model, train (where to write it)
    assert file_dialogs.asked == 5
    assert window.isVisible() and boxes.save_questions == []


def test_save_and_ctrl_s_write_the_project(qtbot, window, boxes, file_dialogs, tmp_path):
    window.set_volumes(small_volumes(2), 2)
    wait_title(qtbot, window, "Micro3D - untitled*")
    # File > Save on a project never saved: asks for a folder; a new name is created.
    file_dialogs.path = tmp_path / "new" / "proj"
    window.actions["save"].trigger()
    folder = tmp_path / "new" / "proj"
    assert (folder / PROJECT_FILE).is_file() and window.project_dir == folder
    assert sorted(p.name for p in (folder / "volumes").iterdir()) == [
        "volume_000.npy", "volume_001.npy"]
    wait_title(qtbot, window, "Micro3D - proj")
    assert not window.is_modified() and boxes.errors == []

    # An edit marks it; Ctrl+S saves into the same folder without asking.
    window.voxel_spin.setValue(0.5)
    wait_title(qtbot, window, "Micro3D - proj*")
    asked = file_dialogs.asked
    press_ctrl_s(qtbot, window)
    qtbot.waitUntil(lambda: saved_meta(folder)["view"]["voxel_size"] == 0.5, timeout=5000)
    assert file_dialogs.asked == asked
    wait_title(qtbot, window, "Micro3D - proj")

    # An opened project: opening is no edit; Save and Ctrl+S write it.
    other = MainWindow(window.settings)
    qtbot.addWidget(other)
    other.show()
    assert other.open_project(folder)
    wait_title(qtbot, other, "Micro3D - proj")
    assert len(other.volumes) == 2
    other.set_volumes(small_volumes(1), 2)
    wait_title(qtbot, other, "Micro3D - proj*")
    other.actions["save"].trigger()
    assert saved_meta(folder)["volumes"] == ["volumes/volume_000.npy"]
    other.train_panel.steps_spin.setValue(77)
    press_ctrl_s(qtbot, other)
    qtbot.waitUntil(lambda: saved_meta(folder)["train"]["steps"] == 77, timeout=5000)
    assert not other.is_modified() and boxes.errors == []
    other.close()


def test_unsaved_changes_ask_and_cancel_keeps_everything(qtbot, window, boxes, file_dialogs,
                                                          micrograph_dirs, tmp_path):
    load_micrographs(window, micrograph_dirs)
    window.set_volumes(small_volumes(2), 2)
    window.voxel_spin.setValue(0.25)
    window.train_panel.status_label.setText("Trained 5 steps")
    window.train_panel.loss_plot.set_history([1.0, 0.5])
    saved = tmp_path / "other"
    window.save_project(saved)
    window.set_volumes(small_volumes(3), 2)  # an unsaved change
    assert window.is_modified()

    boxes.save_answer = "cancel"
    window.actions["new"].trigger()
    file_dialogs.path = saved
    window.actions["open"].trigger()
    window.actions["quit"].trigger()
    window._fill_recent_menu()  # File > Recent projects, as when the menu opens
    entry, = [a for a in window.recent_menu.actions() if a.text() == str(saved.resolve())]
    entry.trigger()
    assert [q[0] for q in boxes.save_questions] == ["Save changes?"] * 4
    assert window.isVisible() and len(window.volumes) == 3 and window.is_modified()
    assert window.data_panel.plane_paths()["xy"] and window.voxel_spin.value() == 0.25

    # Save: saved first, then the new project, clean in every panel.
    boxes.save_answer = "save"
    window.actions["new"].trigger()
    assert len(saved_meta(saved)["volumes"]) == 3
    assert window.volumes == [] and window.project_dir is None
    assert window.data_panel.plane_paths() == {"xy": [], "xz": [], "yz": []}
    assert window.voxel_spin.value() == 0.0 and window.voxel_size() is None
    assert window.train_panel.settings() == TrainSettings()
    assert window.train_panel.loss_plot.losses == []
    assert window.train_panel.status_label.text() == "Not trained yet"
    assert window.generate_panel.status_label.text() == ""
    assert window.analysis_panel.report() is None and window.model_path == ""
    wait_title(qtbot, window, "Micro3D")
    assert not window.is_modified()

    # Nothing changed since: New, Open and quit ask nothing.
    before = len(boxes.save_questions)
    window.actions["new"].trigger()
    assert window.open_project(saved)
    assert len(boxes.save_questions) == before and len(window.volumes) == 3
    assert window.close() and len(boxes.save_questions) == before


def test_a_project_folder_moves_with_everything(qtbot, window, boxes, file_dialogs,
                                                micrograph_dirs, tmp_path):
    folder = tmp_path / "proj"
    # The micrographs are kept in the project folder, the model elsewhere.
    shutil.copytree(micrograph_dirs["xy"].parent, folder / "micrographs")
    dirs = {p: folder / "micrographs" / p for p in micrograph_dirs}
    model = untrained_model(tmp_path / "elsewhere" / "m.pt")
    load_micrographs(window, dirs)
    window.set_model(model)
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=60_000)
    window.set_volumes(small_volumes(2), 2)
    window.voxel_spin.setValue(0.5)
    window.generate_panel.count_spin.setValue(3)
    # Analyse (Run > Analyse): the dock opens on the plot just computed.
    ap = window.analysis_panel
    ap.tabs.setCurrentWidget(ap.plots["diffusivity"])
    with qtbot.waitSignal(ap.finished, timeout=120_000):
        window.actions["analyse"].trigger()
    assert ap.tabs.currentWidget() is ap.plots["s2"]
    report = ap.report()

    file_dialogs.path = folder
    window.actions["save_as"].trigger()
    meta = saved_meta(folder)
    assert meta["model_path"] == "models/m.pt"  # copied in, stored relative
    assert meta["data"]["planes"]["xy"]["paths"][0].startswith("micrographs/")
    assert "copied" in window.statusBar().currentMessage()
    assert window.model_path == str(folder / "models" / "m.pt")

    copy = tmp_path / "moved" / "copy"
    shutil.copytree(folder, copy)
    shutil.rmtree(folder)
    (tmp_path / "elsewhere" / "m.pt").unlink()
    other = MainWindow(window.settings)
    qtbot.addWidget(other)
    other.show()
    assert other.open_project(copy)
    qtbot.waitUntil(lambda: other.model_info is not None, timeout=60_000)
    assert other.model_path == str(copy / "models" / "m.pt")
    for plane, paths in other.data_panel.plane_paths().items():
        assert sorted(paths) == sorted((copy / "micrographs" / plane).iterdir())
    seg = other.data_panel.segmentation()
    assert seg is not None and seg.num_phases == 2
    for a, b in zip(other.volumes, window.volumes):
        np.testing.assert_array_equal(a, b)
    assert other.voxel_spin.value() == 0.5 and other.generate_panel.count_spin.value() == 3
    assert other.analysis_panel.report()["s2_relative_error"] == pytest.approx(
        report["s2_relative_error"])
    assert any(ax.lines for ax in other.analysis_panel.plots["s2"].figure.axes)  # redrawn
    assert not other.is_modified() and boxes.errors == []
    other.close()

    # A missing file: named in one message, the rest opens.
    (copy / "volumes" / "volume_001.npy").unlink()
    (copy / "models" / "m.pt").unlink()
    third = MainWindow(window.settings)
    qtbot.addWidget(third)
    assert third.open_project(copy)
    title, text = boxes.errors[-1]
    assert "volume_001.npy" in text and "m.pt" in text
    assert len(third.volumes) == 1 and third.voxel_spin.value() == 0.5
    assert third.data_panel.segmentation() is not None
    third.close()


def test_the_model_the_app_starts_with_is_no_change(qtbot, window, boxes, tmp_path):
    model = untrained_model(tmp_path / "m.pt")
    window.preload_model(model)  # micro3d-gui --model m.pt
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=60_000)
    wait_title(qtbot, window, "Micro3D")
    other = untrained_model(tmp_path / "other.pt")
    window.set_model(other)  # File > Load model...: a change
    qtbot.waitUntil(lambda: window.model_path == str(other), timeout=60_000)
    wait_title(qtbot, window, "Micro3D - untitled*")


def test_closing_during_training_ends_every_job_without_a_dialog(qtbot, settings, boxes,
                                                                  micrograph_dirs, tmp_path):
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    other = untrained_model(tmp_path / "other.pt")  # another model is loaded
    win.set_model(other)
    qtbot.waitUntil(lambda: win.model_info is not None, timeout=60_000)
    load_micrographs(win, micrograph_dirs)
    panel = win.train_panel
    panel.set_settings(TrainSettings(steps=100_000, model_path=str(tmp_path / "new.pt"), **TINY))
    assert panel.start()
    qtbot.waitUntil(lambda: len(panel.loss_plot.losses) >= 1, timeout=180_000)

    boxes.answer = True  # "Yes, cancel and quit"
    t0 = time.perf_counter()
    win.actions["quit"].trigger()
    qtbot.wait(500)  # the ends the jobs had queued are delivered (and dropped)
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0
                    and not any(w.isVisible() for w in QApplication.topLevelWidgets()),
                    timeout=10_000)
    assert time.perf_counter() - t0 < 10.0
    assert [q[0] for q in boxes.questions] == ["Quit Micro3D?"]  # no "Use the new model?"
    assert boxes.errors == [] and win.model_path == str(other)
    assert 1 <= load_checkpoint(tmp_path / "new.pt")["step"] < 100_000


def test_resume_with_nothing_left_says_so_and_writes_nothing(qtbot, window, boxes,
                                                             micrograph_dirs, tmp_path):
    model = untrained_model(tmp_path / "m.pt", steps=1)  # its run of 1 step is done
    load_micrographs(window, micrograph_dirs)
    panel = window.train_panel
    panel.set_settings(TrainSettings(steps=0, model_path=str(model), **TINY))
    before = model.read_bytes()
    boxes.answer = False  # "Train longer?" No
    with qtbot.waitSignal(panel.busy, timeout=60_000, check_params_cb=lambda on: not on):
        panel.resume_button.click()
    assert boxes.errors == [], boxes.errors
    qtbot.waitUntil(lambda: len(boxes.questions) == 1, timeout=5000)
    assert "Nothing to resume" in panel.status_label.text()
    title, text = boxes.questions[0]
    assert title == "Train longer?" and "more steps" in text
    assert model.read_bytes() == before and not panel.is_running()
    assert window.model_path == "" and boxes.errors == []  # nothing handed to Generate


def test_export_shows_the_windows_voxel_size_and_remembers_the_folder(qtbot, window, boxes,
                                                                       tmp_path):
    window.set_volumes([np.eye(4, dtype=np.uint8)[None].repeat(3, 0)], 2)
    seen = []

    def export_to(folder):
        def drive():
            dialog = QApplication.activeModalWidget()
            try:
                seen.append((dialog.voxel_size(), dialog.unit(), dialog.folder()))
                dialog.set_folder(folder)
                dialog.set_format(".tif")
                dialog._export_and_close()
            finally:
                if dialog.isVisible():
                    dialog.reject()
        QTimer.singleShot(300, drive)
        window.actions["export"].trigger()

    out = tmp_path / "exports"
    export_to(out)
    assert seen[0][:2] == ((1.0, 1.0, 1.0), "voxel")  # not set: unit voxels
    with tifffile.TiffFile(out / "volume.tif") as tif:
        meta = tif.imagej_metadata
        assert (meta["min"], meta["max"]) == (0, 1) and meta["unit"] == "voxel"
    window.voxel_spin.setValue(0.5)
    window.unit_combo.setCurrentText("nm")
    export_to(out)
    assert seen[1] == ((0.5, 0.5, 0.5), "nm", out)  # the window's size; the last folder

"""The main window end to end: micrographs -> train -> generate -> viewport, cancel, close.

Real parts throughout: PNG files on disk, the Data panel, a tiny real model trained for a
few steps, the real sampler, a real VTK render under Xvfb. Only the modal message boxes are
recorded instead of shown (the ``boxes`` fixture).
"""
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from micro3d_gui.core.checkpoint import load_checkpoint
from micro3d_gui.qt import main_window as mw
from micro3d_gui.session.generation import SamplePreview
from micro3d_gui.qt.main_window import MainWindow
from micro3d_gui.session.training import TrainSettings

TINY = dict(preset="tiny", batch=2, crop=16, device="cpu", seed=0, checkpoint_every=1000)


def load_micrographs(win, dirs):
    for plane, folder in dirs.items():
        win.data_panel.add_paths(plane, [folder])
    seg = win.data_panel.segmentation()
    assert seg is not None and seg.num_phases == 2
    return seg


def train(qtbot, win, model_path, steps, resume=False, timeout=180_000):
    panel = win.train_panel
    panel.set_settings(TrainSettings(steps=steps, model_path=str(model_path), **TINY))
    with qtbot.waitSignal(panel.model_saved, timeout=timeout):
        assert panel.start(resume=resume)
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=10_000)


def test_train_generate_show_and_analyse(qtbot, window, boxes, micrograph_dirs, tmp_path):
    load_micrographs(window, micrograph_dirs)
    model = tmp_path / "models" / "model.pt"
    train(qtbot, window, model, steps=5)
    panel = window.train_panel
    assert len(panel.loss_plot.losses) == 5 and np.isfinite(panel.loss_plot.losses).all()
    assert panel.progress_bar.value() == 1000
    assert "ETA" in panel.status_label.text() or "Trained 5 steps" in panel.status_label.text()
    ckpt = load_checkpoint(model)  # written where the user chose, readable again
    assert ckpt["step"] == 5 and ckpt["model_config"]["preset"] == "tiny"
    assert not list(model.parent.glob("*.part"))  # atomic write left no temp file
    # The trained model is handed to the Generate panel once it has been read back.
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=30_000)
    gen = window.generate_panel
    assert Path(gen.settings().model_path) == model
    assert "tiny" in gen.model_info.text() and "5 steps" in gen.model_info.text()

    # No harmonizing: one pass, a preview per step (a 5-step model's volumes are broken
    # up, and a harmonizing recipe would sample them a second time: test_self_check.py).
    gen.set_settings(replace(gen.settings(), shape=(8, 12, 16), count=2, sampling_steps=6,
                             harmonize=0, seed=0, device="cpu"))
    # A tiny model samples faster than 4 estimates a second: no throttling here (it is
    # tested below), so the viewport gets every estimate of the volume forming.
    gen.preview_interval_ms = 0
    shown = []
    gen.preview.connect(lambda labels, k: shown.append(labels.copy()))
    updates_before = window.viewport.update_count
    with qtbot.waitSignal(gen.volumes_ready, timeout=180_000):
        assert gen.start()
    qtbot.waitUntil(lambda: not gen.is_running(), timeout=10_000)
    assert gen.previews_received == 6
    assert len(shown) == 6 and all(v.shape == (8, 12, 16) for v in shown)
    # The estimates change as the volume forms, and the last one is volume 0 itself.
    assert len({v.tobytes() for v in shown}) >= 2
    assert window.viewport.update_count - updates_before == len(shown) + 1  # + the final
    assert len(window.volumes) == 2 and window.num_phases == 2
    assert all(v.shape == (8, 12, 16) and v.dtype == np.uint8 for v in window.volumes)
    assert window.volume_combo.count() == 2
    np.testing.assert_array_equal(window.viewport.labels, window.volumes[0])
    np.testing.assert_array_equal(shown[-1], window.volumes[0])
    img = window.viewport.screenshot()
    assert not (img == img[0, 0]).all()
    window.volume_combo.setCurrentIndex(1)
    np.testing.assert_array_equal(window.viewport.labels, window.volumes[1])
    assert boxes.errors == []

    # Analyse: the Analysis panel compares the volumes with the segmented micrographs.
    ap = window.analysis_panel
    with qtbot.waitSignal(ap.finished, timeout=120_000) as blocker:
        gen.analyse_button.click()
    report = blocker.args[0]
    assert set(report["s2_relative_error"]) == {"xy", "xz", "yz"}
    assert boxes.errors == []


def test_cancel_stops_training_and_resume_continues(qtbot, window, boxes, micrograph_dirs,
                                                    tmp_path):
    load_micrographs(window, micrograph_dirs)
    model = tmp_path / "model.pt"
    panel = window.train_panel
    panel.set_settings(TrainSettings(steps=100_000, model_path=str(model), **TINY))
    assert panel.start()
    qtbot.waitUntil(lambda: len(panel.loss_plot.losses) >= 2, timeout=180_000)
    assert panel.cancel_button.isEnabled() and not panel.start_button.isEnabled()
    # The job ends after the current step, with the model saved (the signal's timeout
    # bounds it; a tighter time bound failed on a loaded CI machine: speed belongs in the
    # benchmarks).
    with qtbot.waitSignal(panel.job.ended, timeout=10_000):
        panel.cancel_button.click()
    assert panel.job.wait(1.0)
    stopped = load_checkpoint(model)["step"]
    assert 2 <= stopped < 100_000
    assert "Resume" in panel.status_label.text()

    train(qtbot, window, model, steps=stopped + 3, resume=True)
    assert load_checkpoint(model)["step"] == stopped + 3
    # The loss curve shows the resumed model's history, then the new steps.
    assert len(panel.loss_plot.losses) == stopped + 3
    assert boxes.errors == []


def test_closing_during_training_asks_then_cancels(qtbot, settings, boxes, micrograph_dirs,
                                                   tmp_path):
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    load_micrographs(win, micrograph_dirs)
    panel = win.train_panel
    panel.set_settings(TrainSettings(steps=100_000, model_path=str(tmp_path / "m.pt"), **TINY))
    assert panel.start()
    qtbot.waitUntil(lambda: len(panel.loss_plot.losses) >= 1, timeout=180_000)

    boxes.answer = False  # "No": the window stays, the job runs on
    assert not win.close()
    assert win.isVisible() and panel.is_running()
    assert "training" in boxes.questions[-1][1]

    boxes.answer = True
    job = panel.job
    t0 = time.perf_counter()
    assert win.close()
    assert job.wait(0.0)  # close() returned only after the worker thread ended
    assert time.perf_counter() - t0 < 5.0
    assert 1 <= load_checkpoint(tmp_path / "m.pt")["step"] < 100_000
    assert not win.isVisible()
    assert settings.value(mw.GEOMETRY_KEY) is not None


def test_bad_inputs_are_reported_and_state_kept(qtbot, window, boxes, micrograph_dirs, tmp_path):
    # No images yet.
    window.train_panel.set_settings(TrainSettings(steps=5, model_path=str(tmp_path / "m.pt"),
                                                  **TINY))
    assert not window.train_panel.start()
    assert "no training images" in boxes.errors[-1][1]
    # A crop larger than the 24 px images names an image file.
    load_micrographs(window, micrograph_dirs)
    window.train_panel.crop_spin.setValue(32)
    assert not window.train_panel.start()
    assert ".png" in boxes.errors[-1][1] and "set Crop to 24 or less" in boxes.errors[-1][1]
    # A file that is not a model: the message names it; the model in use is kept.
    bad = tmp_path / "not_a_model.pt"
    bad.write_bytes(b"garbage")
    with qtbot.waitSignal(window.set_model(bad).ended, timeout=30_000) as blocker:
        pass
    assert blocker.args == ["failed"]
    assert str(bad) in boxes.errors[-1][1] and "Traceback" not in boxes.errors[-1][1]
    assert window.model_path == "" and window.generate_panel.settings().model_path == ""
    # Generating without a model.
    assert not window.generate_panel.start()
    assert "no model" in boxes.errors[-1][1]


def test_preview_is_throttled_to_the_latest_estimate(qtbot, window):
    gen = window.generate_panel
    shown = []
    gen.preview.connect(lambda labels, k: shown.append(int(labels[0, 0, 0])))
    for i in range(10):  # ten estimates arrive at once: the first shows, the rest wait
        gen._on_preview(SamplePreview(i + 1, 10, "xy", np.full((4, 4, 4), i, np.uint8), 2,
                                      i + 1, 10))
    assert shown == [0]
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=2000)
    qtbot.wait(gen.preview_interval_ms + 100)
    assert shown == [0, 9]  # only the latest of the others, once


def test_open_demo_loads_bundled_planes_and_model(qtbot, window, micrograph_dirs, tmp_path,
                                                  monkeypatch):
    assert isinstance(window.open_demo(), bool)  # whatever is bundled, it does not fail
    models = tmp_path / "models"
    models.mkdir()
    from micro3d_gui.core.diffusion.unet import preset_config
    from micro3d_gui.core.plane_dataset import PlaneDataset
    from micro3d_gui.core.train_config import TrainConfig
    from micro3d_gui.core.training import Trainer

    seg = window.data_panel.segmentation()
    if seg is not None:  # a bundled demo was loaded: start from a clean window
        window.new_project()
    data = PlaneDataset({"xy": [np.eye(16, dtype=np.uint8)]}, 2)
    Trainer(data, preset_config("tiny", 1), TrainConfig(steps=1, crop=16)).save(models / "d.pt")
    monkeypatch.setattr(mw, "demo_paths", lambda: (micrograph_dirs["xy"].parent, models / "d.pt"))
    assert window.open_demo()
    assert {p: len(v) for p, v in window.data_panel.plane_paths().items()} == {
        "xy": 12, "xz": 12, "yz": 16}  # every 2nd slice of a 24 x 24 x 32 volume
    qtbot.waitUntil(lambda: window.model_path == str(models / "d.pt"), timeout=30_000)


def test_view_menu_reset_layout(qtbot, window):
    dock = window.docks["Train"]
    dock.setFloating(True)
    window.docks["Data"].hide()
    window.docks["Analysis"].show()
    window.actions["reset_layout"].trigger()
    assert not dock.isFloating() and window.docks["Data"].isVisible()
    # The Analysis dock stays folded away until there are results.
    assert not window.docks["Analysis"].isVisible()
    qtbot.waitUntil(lambda: on_top(window.docks["Generate"]), timeout=2000)
    assert not on_top(window.docks["Train"])


def on_top(dock) -> bool:
    """The dock is shown and not hidden behind another tab."""
    return dock.isVisible() and not dock.visibleRegion().isEmpty()


def test_entry_points():
    # Importing the entry point loads no Qt (the CLI and notebooks import the package).
    code = ("import sys, micro3d_gui.gui; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyvistaqt')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
    out = subprocess.run([sys.executable, "-m", "micro3d_gui", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0
    assert "micro3d-gui" in out.stdout and "--model" in out.stdout and "PROJECT_DIR" in out.stdout


def untrained_model(path):
    """A real model file from the core's Trainer (not trained: sampling cost is the same)."""
    from micro3d_gui.core.diffusion.unet import preset_config
    from micro3d_gui.core.plane_dataset import PlaneDataset
    from micro3d_gui.core.train_config import TrainConfig
    from micro3d_gui.core.training import Trainer

    data = PlaneDataset({"xy": [np.eye(16, dtype=np.uint8)]}, 2)
    Trainer(data, preset_config("tiny", 1), TrainConfig(steps=1, crop=16)).save(path)
    return path


def test_cancel_generation_keeps_the_volumes(qtbot, window, boxes, tmp_path):
    model = untrained_model(tmp_path / "m.pt")
    window.set_model(model)
    # wait on the state, not on `ended`: a fast job can end before a wait is set up
    qtbot.waitUntil(lambda: window.model_path == str(model), timeout=60_000)
    old = [np.zeros((4, 4, 4), np.uint8), np.ones((4, 4, 4), np.uint8)]
    window.set_volumes(old, 2)
    gen = window.generate_panel
    gen.set_settings(replace(gen.settings(), shape=(16, 16, 16), sampling_steps=1000,
                             harmonize=1, seed=0, device="cpu"))
    assert gen.start()
    qtbot.waitUntil(lambda: gen.previews_received >= 2, timeout=120_000)
    assert window.viewport.labels.shape == (16, 16, 16)  # the live estimate
    # 1000 steps would take minutes: ending within the signal's timeout is the cancel
    with qtbot.waitSignal(gen.job.ended, timeout=5000) as blocker:
        gen.cancel_button.click()
    assert blocker.args == ["cancelled"] and gen.job.wait(1.0)
    assert "cancelled" in gen.status_label.text()
    assert len(window.volumes) == 2  # nothing replaced
    np.testing.assert_array_equal(window.viewport.labels, old[0])  # back from the estimate
    assert boxes.errors == []


def test_export_menu_writes_the_volumes(qtbot, window, boxes, tmp_path):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    window.actions["export"].trigger()  # nothing to export yet
    assert "no volumes" in boxes.errors[-1][1]
    vols = [np.eye(4, dtype=np.uint8)[None].repeat(3, 0), np.zeros((3, 4, 4), np.uint8)]
    window.set_volumes(vols, 2)
    out = tmp_path / "export"

    def drive_dialog():  # the real dialog, driven as a user would
        dialog = QApplication.activeModalWidget()
        try:
            dialog.set_folder(out)
            dialog.set_format(".npy")
            dialog._export_and_close()
        finally:
            if dialog.isVisible():  # never leave exec() waiting
                dialog.reject()

    QTimer.singleShot(300, drive_dialog)
    window.actions["export"].trigger()
    written = sorted(out.glob("*.npy"))
    assert len(written) == 2
    for path, vol in zip(written, vols):
        np.testing.assert_array_equal(np.load(path), vol)


#: Runs the app's main() in a fresh process (as the micro3d-gui command does), prints what
#: the window opened, then closes it. In-process, app.exec() left the test session's event
#: loop unusable for the next test.
APP_SCRIPT = """
import sys
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, sys.argv[1])
app = QApplication(sys.argv[:1])
from micro3d_gui.qt import app as app_module
from micro3d_gui.qt.main_window import MainWindow
project, model = sys.argv[2], sys.argv[3]

def inspect_and_quit():
    win, = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
    if win.model_path != model:  # the model is read in a worker: look again
        QTimer.singleShot(100, inspect_and_quit)
        return
    print("OPENED", win.project_dir, len(win.volumes), win.model_path, flush=True)
    win.mark_clean()  # (another model than the project's is a change: no "Save changes?")
    win.close()
    app.quit()

QTimer.singleShot(200, inspect_and_quit)
QTimer.singleShot(60_000, app.quit)  # never hang
sys.exit(app_module.main([project, "--model", model]))
"""


def test_main_opens_a_project_and_preloads_a_model(tmp_path):
    from micro3d_gui.session.project import Project, save_project

    folder = tmp_path / "proj"
    save_project(folder, Project(volumes=[np.ones((3, 4, 5), np.uint8)], num_phases=2))
    model = untrained_model(tmp_path / "m.pt")
    res = subprocess.run([sys.executable, "-c", APP_SCRIPT, str(tmp_path / "settings"),
                          str(folder), str(model)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert f"OPENED {folder} 1 {model}" in res.stdout


def test_app_and_cli_train_identical_models(qtbot, window, boxes, micrograph_dirs, tmp_path):
    """The Train panel and ``micro3d train`` run the one training recipe: same micrographs,
    options and seed -> the same weights, bit for bit."""
    from micro3d_gui.cli import main as cli_main

    load_micrographs(window, micrograph_dirs)
    train(qtbot, window, tmp_path / "app.pt", steps=4)
    # The app then reads the new model in a worker and times one network call on it (the
    # time estimate). A CLI run beside that probe gave other weights in 1 run of 3: the two
    # share the cores, and Adam's first steps turn a rounding difference into one of the
    # size of the learning rate. Waiting for the probe, 6 runs of 6 were identical.
    qtbot.waitUntil(lambda: window.model_job is not None and not window.model_job.is_running(),
                    timeout=60_000)
    assert cli_main(["train", *[a for p, d in micrograph_dirs.items() for a in (f"--{p}", str(d))],
                     "--out", str(tmp_path / "cli.pt"), "--steps", "4", "--preset", "tiny",
                     "--batch", "2", "--crop", "16", "--seed", "0", "--device", "cpu"]) == 0
    app, cli = load_checkpoint(tmp_path / "app.pt"), load_checkpoint(tmp_path / "cli.pt")
    assert app["train_config"] == cli["train_config"]
    assert app["train_config"]["lr"] == 1e-3  # the tiny preset's recipe, in both
    for key in ("model", "ema"):
        for name, value in app[key].items():
            assert torch.equal(value, cli[key][name]), (key, name)


def test_train_panel_shows_the_model_defaults_to_time_and_plots_fidelity(
        qtbot, window, boxes, micrograph_dirs, tmp_path):
    from micro3d_gui import paths

    panel = window.train_panel
    assert panel.settings().steps == 0 and panel.minutes_spin.value() == 10.0  # by time
    assert window.open_demo()
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=30_000)
    ckpt = load_checkpoint(paths.demo_model())
    s = panel.settings()
    assert (s.preset, s.crop, s.batch) == (ckpt["model_config"]["preset"], ckpt["crop"],
                                           ckpt["train_config"]["batch_size"])
    assert f"trained {ckpt['step']} steps" in panel.status_label.text()
    # training never writes into the bundled model
    assert not Path(s.model_path).resolve().is_relative_to(paths.models_dir().resolve())
    # its reports are from before the lineal path: S2 plotted, the lineal path left empty
    assert ckpt["fidelity"] and "lineal_path" not in ckpt["fidelity"][-1]
    assert panel.loss_plot.figure.axes[1].get_lines()
    assert not panel.loss_plot.figure.axes[2].get_lines()

    window.data_panel.set_state({})
    load_micrographs(window, micrograph_dirs)
    boxes.answer = False  # keep Generate on the demo model
    train(qtbot, window, tmp_path / "m.pt", steps=5)
    assert any("Use the new model" in q for q, _ in boxes.questions)
    assert Path(window.model_path) == paths.demo_model()
    reports = panel.loss_plot.fidelity
    assert reports and reports[-1]["step"] == 5
    assert set(reports[-1]["errors"]) == set(reports[-1]["floor"]) == {"xy", "xz", "yz"}
    assert "floor" in panel.fidelity_label.text()
    fidelity_axes = panel.loss_plot.figure.axes[1]
    assert [line.get_label() for line in fidelity_axes.get_lines()][::2] == ["xy", "xz", "yz"]
    # the lineal path beside S2, per plane with its floor
    assert set(reports[-1]["lineal_path"]) == set(reports[-1]["lineal_path_floor"]) == {
        "xy", "xz", "yz"}
    lineal_axes = panel.loss_plot.figure.axes[2]
    assert [line.get_label() for line in lineal_axes.get_lines()][::2] == ["xy", "xz", "yz"]
    assert "lineal path" in panel.fidelity_label.text()

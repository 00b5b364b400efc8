"""Project folders: save / reopen restores the same state; bad folders are explained."""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from micro3d_gui.core.diffusion.unet import preset_config
from micro3d_gui.preprocess.synthetic import lamellae
from micro3d_gui.core.plane_dataset import PlaneDataset
from micro3d_gui.core.train_config import TrainConfig
from micro3d_gui.core.training import Trainer
from micro3d_gui.errors import InputError
from micro3d_gui.preprocess.orientation import PlaneOptions
from micro3d_gui.qt.main_window import MainWindow
from micro3d_gui.qt.project import MAX_RECENT, add_recent_project, recent_projects
from micro3d_gui.session.project import (PROJECT_FILE, Project, ProjectError, load_project,
                                         save_project)
from micro3d_gui.session.training import TrainSettings


def volumes(n=2, shape=(6, 8, 10)):
    return [lamellae(shape, axis=2, seed=i) for i in range(n)]


def write_model(path: Path) -> Path:
    """A real (untrained) model file, written by the core's Trainer."""
    data = PlaneDataset({"xy": [np.eye(16, dtype=np.uint8)]}, 2)
    Trainer(data, preset_config("tiny", 1), TrainConfig(steps=1, crop=16)).save(path)
    return path


def test_round_trip_of_a_project_folder(tmp_path):
    folder = tmp_path / "proj"
    model = str(folder / "models" / "m.pt")
    vols = volumes(3)
    project = Project(data={"planes": {"xy": {"paths": ["/data/a.png"]}}},
                      train={"steps": 7, "model_path": model},
                      generate={"shape": [6, 8, 10], "model_path": model},
                      model_path=model, volumes=vols, num_phases=2,
                      view={"mode": "surfaces", "volume": 1})
    save_project(folder, project)
    meta = json.loads((folder / PROJECT_FILE).read_text())
    assert meta["volumes"] == [f"volumes/volume_{i:03d}.npy" for i in range(3)]
    assert meta["model_path"] == "models/m.pt"  # inside the folder: stored relative
    assert not list(folder.rglob("*.part"))

    # The folder can move: relative model paths follow it.
    moved = tmp_path / "moved"
    folder.rename(moved)
    back = load_project(moved)
    assert back.model_path == str(moved / "models" / "m.pt")
    assert back.train == {"steps": 7, "model_path": str(moved / "models" / "m.pt")}
    assert back.generate["model_path"] == back.model_path
    assert back.data == project.data and back.view == project.view and back.num_phases == 2
    assert len(back.volumes) == 3
    for a, b in zip(back.volumes, vols):
        assert a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)

    # Saving fewer volumes removes the stale files; an outside model path stays absolute.
    save_project(moved, replace(back, volumes=vols[:1], model_path="/elsewhere/m.pt"))
    assert sorted(p.name for p in (moved / "volumes").iterdir()) == ["volume_000.npy"]
    again = load_project(moved)
    assert len(again.volumes) == 1 and again.model_path == "/elsewhere/m.pt"


@pytest.mark.parametrize("damage, match", [
    (lambda f: (f / PROJECT_FILE).unlink(), "not a Micro3D project"),
    (lambda f: (f / PROJECT_FILE).write_text("{ truncated"), "cannot be read"),
    (lambda f: (f / PROJECT_FILE).write_text('{"format": "other"}'), "not a Micro3D project"),
    (lambda f: (f / PROJECT_FILE).write_text('{"format": "micro3d-project", "version": 99}'),
     "newer Micro3D"),
    (lambda f: (f / "volumes" / "volume_000.npy").write_bytes(b"\x93NUMPY broken"),
     "volume_000.npy: cannot be read"),
])
def test_damaged_projects_raise_an_input_error_naming_the_file(tmp_path, damage, match):
    folder = tmp_path / "proj"
    save_project(folder, Project(volumes=volumes(1), num_phases=2))
    damage(folder)
    with pytest.raises(ProjectError, match=match) as info:
        load_project(folder)
    assert isinstance(info.value, InputError)
    assert str(folder) in str(info.value)


def test_recent_projects_in_qsettings(settings, tmp_path):
    folders = []
    for i in range(MAX_RECENT + 2):
        f = tmp_path / f"p{i}"
        save_project(f, Project())
        folders.append(f)
        add_recent_project(settings, f)
    add_recent_project(settings, folders[3])  # reopening moves it to the front
    recent = recent_projects(settings)
    assert recent[0] == folders[3].resolve() and len(recent) == MAX_RECENT
    assert recent[1] == folders[-1].resolve()
    (folders[-1] / PROJECT_FILE).unlink()  # a project deleted since is not offered
    assert folders[-1].resolve() not in recent_projects(settings)


@pytest.fixture
def make_window(qtbot, settings, boxes):
    windows = []

    def make():
        win = MainWindow(settings)
        qtbot.addWidget(win)
        win.show()
        windows.append(win)
        return win

    yield make
    for win in windows:
        win.close()


def window_state(win):
    return {
        "plane_paths": win.data_panel.plane_paths(),
        "plane_options": win.data_panel.plane_options(),
        "segmentation": win.data_panel.segmentation_config(),
        "train": win.train_panel.settings(),
        "generate": win.generate_panel.settings(),
        "model": win.model_path,
        "mode": win.viewport.mode,
        "volume_index": win.volume_combo.currentIndex(),
    }


def test_saved_project_reopens_with_the_same_state(qtbot, make_window, boxes, micrograph_dirs,
                                                    tmp_path, settings):
    win = make_window()
    for plane, folder in micrograph_dirs.items():
        win.data_panel.add_paths(plane, [folder])
    win.data_panel.set_plane_options("xz", PlaneOptions(flip_rows=True))
    model = write_model(tmp_path / "proj" / "model.pt")
    win.set_model(model)
    # wait on the state, not on `ended`: a fast job can end before a wait is set up
    qtbot.waitUntil(lambda: win.model_path == str(model) or bool(boxes.errors), timeout=60_000)
    assert not boxes.errors
    win.train_panel.set_settings(TrainSettings(preset="tiny", steps=123, batch=4, crop=16,
                                               device="cpu", seed=7, model_path=str(model)))
    gen = win.generate_panel
    gen.set_settings(replace(gen.settings(), shape=(6, 8, 10), count=3, sampling_steps=17,
                             harmonize=2, gamma=0.25, guidance=1.5, periodic=True, seed=42))
    vols = volumes(3)
    win.set_volumes(vols, 2)
    win.viewport.set_mode("surfaces")
    win.volume_combo.setCurrentIndex(2)
    before = window_state(win)

    folder = tmp_path / "proj"
    assert win.save_project(folder)
    assert (folder / PROJECT_FILE).is_file() and win.project_dir == folder
    assert "proj" in win.windowTitle()
    assert recent_projects(settings)[0] == folder.resolve()

    other = make_window()
    other._fill_recent_menu()  # File > Recent projects, as when the menu opens
    entry, = [a for a in other.recent_menu.actions() if a.text() == str(folder.resolve())]
    entry.trigger()
    assert other.project_dir == folder.resolve()
    qtbot.waitUntil(lambda: other.model_path == str(model), timeout=30_000)
    assert window_state(other) == before
    assert len(other.volumes) == 3
    for a, b in zip(other.volumes, vols):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(other.viewport.labels, vols[2])
    seg_a, seg_b = win.data_panel.segmentation(), other.data_panel.segmentation()
    for plane in seg_a.labels:
        for a, b in zip(seg_a.labels[plane], seg_b.labels[plane]):
            np.testing.assert_array_equal(a, b)
    assert boxes.errors == []


def test_opening_a_bad_project_keeps_the_current_work(qtbot, make_window, boxes, tmp_path):
    win = make_window()
    win.set_volumes(volumes(2), 2)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / PROJECT_FILE).write_text("not json")
    assert not win.open_project(tmp_path / "bad")
    assert str(tmp_path / "bad" / PROJECT_FILE) in boxes.errors[-1][1]
    assert len(win.volumes) == 2 and win.project_dir is None


def test_new_project_clears_and_geometry_is_remembered(qtbot, make_window, micrograph_dirs):
    win = make_window()
    win.data_panel.add_paths("xy", [micrograph_dirs["xy"]])
    win.set_volumes(volumes(1), 2)
    win.train_panel.steps_spin.setValue(5)
    win.actions["new"].trigger()
    assert win.volumes == [] and win.volume_combo.count() == 0
    assert win.data_panel.plane_paths()["xy"] == []
    assert win.train_panel.settings() == TrainSettings()

    win.resize(1240, 700)  # (the docks and the 3D view need about 1200 px)
    win.docks["Analysis"].hide()
    assert win.close()
    again = make_window()
    assert (again.width(), again.height()) == (1240, 700)
    assert not again.docks["Analysis"].isVisible()

"""A damaged or hand-edited project folder opened from the File menu: the app shows one
message naming the file and the field, keeps running, and keeps the work it had."""
import json

import numpy as np
import pytest
from PySide6.QtWidgets import QFileDialog

from micro3d_gui.session.project import PROJECT_FILE


def _set(path: str, value):
    """A change to project.json: ``path`` dotted (``train.batch``) -> ``value``."""
    def change(meta):
        *parents, last = path.split(".")
        node = meta
        for key in parents:
            node = node[key]
        node[last] = value
    return change


DAMAGES = [
    (_set("train.batch", "sixteen"), "train.batch is \"sixteen\", not a whole number"),
    (_set("generate.shape", [64, 64]), "generate.shape is [64, 64], not a list of 3 values"),
    (_set("view.voxel_size", "big"), "view.voxel_size is \"big\", not a number"),
    (_set("data.segmentation.phases", None), "data.segmentation.phases is null"),
    (_set("num_phases", "2"), "num_phases is \"2\", not a whole number or null"),
    (_set("volumes", "volumes/volume_000.npy"), "volumes is"),
    (_set("data.planes.xy.options.transpose", 1), "data.planes.xy.options.transpose is 1"),
]


@pytest.fixture
def project(tmp_path, window):
    """A project folder saved by the app itself, with one volume."""
    window.set_volumes([np.zeros((8, 8, 8), np.uint8)], 2)
    folder = tmp_path / "proj"
    assert window.save_project(folder)
    window.new_project()
    return folder


def open_from_menu(window, monkeypatch, folder):
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(folder)))
    window.actions["open"].trigger()


def test_a_value_of_the_wrong_type_is_named_and_the_app_stays_up(window, project, errors,
                                                                  monkeypatch):
    path = project / PROJECT_FILE
    good = path.read_text()
    for damage, text in DAMAGES:
        meta = json.loads(good)
        damage(meta)
        path.write_text(json.dumps(meta))
        errors.clear()
        open_from_menu(window, monkeypatch, project)
        assert len(errors) == 1, (text, errors)
        title, message = errors[0]
        assert str(path) in message and text in message, message
        assert window.isVisible() and window.project_dir is None
    path.write_text(good)  # the undamaged file still opens
    errors.clear()
    open_from_menu(window, monkeypatch, project)
    assert errors == [] and window.project_dir == project and len(window.volumes) == 1


def test_deep_nesting_and_labels_above_the_phases_are_refused(window, project, errors,
                                                             monkeypatch):
    path = project / PROJECT_FILE
    good = path.read_text()
    path.write_text(good[:-1] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}")
    open_from_menu(window, monkeypatch, project)
    assert len(errors) == 1 and "nests 100001 levels deep" in errors[0][1]

    path.write_text(good)
    np.save(project / "volumes" / "volume_000.npy", np.full((8, 8, 8), 7, np.uint8))
    errors.clear()
    open_from_menu(window, monkeypatch, project)
    assert len(errors) == 1, errors
    assert "volume_000.npy: holds values 7..7, not phase labels 0..1" in errors[0][1]
    assert window.isVisible() and window.project_dir is None


def test_project_volumes_keep_the_voxel_limit(window, project, errors, monkeypatch):
    monkeypatch.setenv("MICRO3D_MAX_VOLUME_VOXELS", "100")
    open_from_menu(window, monkeypatch, project)
    assert len(errors) == 1, errors
    assert "volume_000.npy: declares 8x8x8 = 512 voxels" in errors[0][1]
    assert "MICRO3D_MAX_VOLUME_VOXELS" in errors[0][1]

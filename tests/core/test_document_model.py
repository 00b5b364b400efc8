"""The document model and the portable project files (no Qt): what makes a project
modified, where its files are stored, and a saved analysis read back."""
import json

import numpy as np
import pytest

from micro3d_gui.core.planes import volume_plane_images
from micro3d_gui.core.training import steps_for_more_time
from micro3d_gui.session.document import Document
from micro3d_gui.io.project_files import absolute_path, copy_into, map_paths, relative_path
from micro3d_gui.metrics.report import run_evaluation
from micro3d_gui.metrics.saved import evaluation_from_json, evaluation_to_json
from micro3d_gui.preprocess.synthetic import lamellae


def test_modified_is_a_difference_from_the_saved_state(tmp_path):
    doc = Document("Micro3D")
    state = {"train": {"steps": 5}, "volumes": 0}
    doc.reset(state)
    assert not doc.is_modified(state) and doc.title(False) == "Micro3D"
    edited = {"train": {"steps": 6}, "volumes": 0}
    assert doc.is_modified(edited) and doc.title(True) == "Micro3D - untitled*"
    assert not doc.is_modified({"volumes": 0, "train": {"steps": 5}})  # an edit undone
    doc.mark_clean(edited, tmp_path / "proj")
    assert not doc.is_modified(edited) and doc.title(False) == "Micro3D - proj"
    assert doc.is_modified({**edited, "volumes": 1})  # new volumes: a revision number


def test_paths_inside_the_folder_are_relative_and_follow_it(tmp_path):
    folder = tmp_path / "proj"
    meta = {"model_path": str(folder / "models" / "m.pt"),
            "train": {"model_path": str(folder / "models" / "m.pt")},
            "generate": {"model_path": "/elsewhere/g.pt"},
            "data": {"planes": {"xy": {"paths": [str(folder / "img" / "a.png"), "/data/b.png"]},
                                "xz": {"paths": []}},
                     "volume": {"path": str(folder / "truth.tif"), "cut": False}}}
    map_paths(meta, lambda p: relative_path(p, folder))
    assert meta["model_path"] == meta["train"]["model_path"] == "models/m.pt"
    assert meta["generate"]["model_path"] == "/elsewhere/g.pt"
    assert meta["data"]["planes"]["xy"]["paths"] == ["img/a.png", "/data/b.png"]
    assert meta["data"]["volume"]["path"] == "truth.tif"
    moved = tmp_path / "moved"
    map_paths(meta, lambda p: absolute_path(p, moved))
    assert meta["data"]["planes"]["xy"]["paths"] == [str(moved / "img" / "a.png"), "/data/b.png"]
    assert meta["data"]["volume"]["path"] == str(moved / "truth.tif")
    bad = {"data": {"planes": "not a dict"}, "train": None}  # left for the loader's checks
    map_paths(bad, lambda p: p + "!")
    assert bad == {"data": {"planes": "not a dict"}, "train": None}


def test_a_model_is_copied_in_once_and_never_over_another(tmp_path):
    folder = tmp_path / "proj"
    src = tmp_path / "a" / "m.pt"
    src.parent.mkdir()
    src.write_bytes(b"model one")
    first = copy_into(src, folder)
    assert first == folder / "models" / "m.pt" and first.read_bytes() == b"model one"
    assert copy_into(src, folder) == first  # the same file: not copied again
    assert copy_into(first, folder) == first  # inside already
    other = tmp_path / "b" / "m.pt"
    other.parent.mkdir()
    other.write_bytes(b"model two")
    second = copy_into(other, folder)
    assert second == folder / "models" / "m_2.pt" and first.read_bytes() == b"model one"
    assert not list((folder / "models").glob("*.part"))


def test_a_saved_analysis_reads_back_with_its_properties():
    vols = [lamellae((8, 10, 12), axis=2, seed=i) for i in range(2)]
    ref = {p: list(ims) for p, ims in volume_plane_images(vols[0], step=2).items()}
    ev = run_evaluation(vols, 2, ref, diffusivity=True, elastic=True)
    back = evaluation_from_json(evaluation_to_json(ev))
    a, b = ev.report(), back.report()
    assert json.dumps(a, sort_keys=True, default=float) == json.dumps(b, sort_keys=True,
                                                                      default=float)
    np.testing.assert_array_equal(back.elastic[0].stiffness, ev.elastic[0].stiffness)
    assert set(back.diffusion[0]) == {0, 1}  # phases stay integers
    with pytest.raises(ValueError, match="not a saved analysis"):
        evaluation_from_json('{"num_phases": 2}')


def test_more_time_becomes_steps_at_the_models_pace():
    assert steps_for_more_time(100, 50.0, 60.0) == 120  # 2 steps a second
    assert steps_for_more_time(100, 0.0, 60.0) == 100  # pace unknown: as many again
    assert steps_for_more_time(3, 1000.0, 1.0) == 1

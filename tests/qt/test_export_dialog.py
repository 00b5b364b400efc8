"""The export dialog writes real files that load back with the right shape and spacing."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import pyvista as pv
import tifffile

from micro3d_gui.preprocess.synthetic import lamellae
from micro3d_gui.errors import InputError
from micro3d_gui.qt.export_dialog import ExportDialog

SHAPE = (6, 8, 10)  # z, y, x: all different, so an axis mix-up shows
VOXEL = (0.5, 0.25, 0.125)  # z, y, x


@pytest.fixture
def volumes():
    return [lamellae(SHAPE, axis=a, seed=a) for a in (0, 2)]


def make(qtbot, volumes, tmp_path, suffix, report=None):
    dlg = ExportDialog(volumes, report)
    qtbot.addWidget(dlg)
    dlg.set_folder(tmp_path)
    dlg.set_format(suffix)
    dlg.set_voxel_size(VOXEL)
    dlg.set_unit("nm")
    return dlg


def test_npy(qtbot, volumes, tmp_path):
    dlg = make(qtbot, volumes, tmp_path, ".npy")
    paths = dlg.export()
    assert [p.name for p in paths] == ["volume_000.npy", "volume_001.npy"]
    for vol, p in zip(volumes, paths):
        np.testing.assert_array_equal(np.load(p), vol)


def test_tiff(qtbot, volumes, tmp_path):
    dlg = make(qtbot, volumes, tmp_path, ".tif")
    paths = dlg.export()
    assert len(paths) == 2
    for vol, p in zip(volumes, paths):
        back = tifffile.imread(p)
        assert back.shape == SHAPE
        np.testing.assert_array_equal(back, vol)
        with tifffile.TiffFile(p) as tif:
            assert tif.is_imagej
            assert tif.imagej_metadata["spacing"] == pytest.approx(VOXEL[0])
            assert tif.imagej_metadata["unit"] == "nm"
            x_res = tif.pages[0].tags["XResolution"].value
            y_res = tif.pages[0].tags["YResolution"].value
            assert x_res[0] / x_res[1] == pytest.approx(1 / VOXEL[2])
            assert y_res[0] / y_res[1] == pytest.approx(1 / VOXEL[1])


def test_vti_one_volume_and_report(qtbot, volumes, tmp_path):
    report = {"volume_fraction": {"0": 0.25, "1": 0.75},
              "s2_relative_error": {"xy": 0.1, "xz": 0.2, "yz": 0.3}}
    dlg = make(qtbot, volumes, tmp_path, ".vti", report=report)
    dlg.set_selected([1])
    dlg.name_edit.setText("sample")
    paths = dlg.export()
    assert [p.name for p in paths] == ["sample_001.vti", "sample_report.json",
                                       "sample_report.csv"]
    grid = pv.read(paths[0])
    assert grid.dimensions == (SHAPE[2] + 1, SHAPE[1] + 1, SHAPE[0] + 1)  # points, x first
    assert grid.spacing == pytest.approx(VOXEL[::-1])
    # VTK stores cells x fastest: a C-order [z, y, x] reshape gives the volume back.
    np.testing.assert_array_equal(np.asarray(grid.cell_data["phase"]).reshape(SHAPE),
                                  volumes[1])
    assert json.loads(paths[1].read_text()) == report
    with open(paths[2], newline="") as fh:
        text = fh.read()
    assert "0.75" in text and "yz" in text and len(list(csv.reader(text.splitlines()))) >= 5


def test_single_volume_name_and_no_report(qtbot, volumes, tmp_path):
    dlg = make(qtbot, volumes[:1], tmp_path, ".npy")
    assert not dlg.report_check.isEnabled()
    assert [p.name for p in dlg.export()] == ["volume.npy"]


def test_nothing_selected(qtbot, volumes, tmp_path):
    dlg = make(qtbot, volumes, tmp_path, ".npy")
    dlg.set_selected([])
    with pytest.raises(InputError):
        dlg.export()


def test_button_exports_and_reports_errors(qtbot, volumes, tmp_path, errors):
    dlg = make(qtbot, volumes, tmp_path / "out", ".npy")
    dlg.export_button.click()
    assert dlg.result() == ExportDialog.DialogCode.Accepted
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["volume_000.npy",
                                                                     "volume_001.npy"]
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    dlg2 = make(qtbot, volumes, blocker, ".npy")
    dlg2.export_button.click()
    assert len(errors) == 1 and errors[0][0] == "Export failed"
    assert dlg2.result() != ExportDialog.DialogCode.Accepted

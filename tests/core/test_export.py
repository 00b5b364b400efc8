"""Exports read back by the libraries users open them with (pyvista, tifffile, numpy)."""
import csv
import json
import math
from fractions import Fraction

import numpy as np
import pytest
import pyvista as pv
import tifffile

from micro3d_gui.errors import ExportError, InputError
from micro3d_gui.io.export import (
    EXPORT_FORMATS,
    export_volume,
    flatten_report,
    write_npy,
    write_report,
    write_tiff_stack,
    write_vti,
)

SHAPE = (3, 4, 5)  # z, y, x: all different, so a transposition cannot pass
MARK = (2, 1, 3)  # a voxel (z, y, x) with its own label


@pytest.fixture
def volume():
    vol = np.zeros(SHAPE, np.uint8)
    vol[0, :, :2] = 1
    vol[MARK] = 2
    return vol


def test_vti_spacing_and_voxel_positions(tmp_path, volume):
    path = tmp_path / "out.vti"
    write_vti(volume, path, voxel_size=(0.5, 2.0, 3.0), unit="nm")
    grid = pv.read(path)
    assert isinstance(grid, pv.ImageData)
    assert grid.dimensions == (SHAPE[2] + 1, SHAPE[1] + 1, SHAPE[0] + 1)  # points, x y z
    assert grid.spacing == pytest.approx((3.0, 2.0, 0.5))  # x, y, z
    assert list(grid.field_data["unit"]) == ["nm"]
    phase = grid.cell_data["phase"]
    assert phase.dtype == np.uint8 and phase.size == volume.size
    # The cell around the physical centre of voxel (z, y, x) holds that voxel's label.
    z, y, x = MARK
    cell = grid.find_containing_cell(((x + 0.5) * 3.0, (y + 0.5) * 2.0, (z + 0.5) * 0.5))
    assert phase[cell] == 2
    for z, y, x in [(0, 3, 1), (0, 0, 2), (1, 2, 0)]:
        cell = grid.find_containing_cell(((x + 0.5) * 3.0, (y + 0.5) * 2.0, (z + 0.5) * 0.5))
        assert phase[cell] == volume[z, y, x]
    assert not list(tmp_path.glob(".*"))  # no temporary left behind


def test_tiff_stack_carries_the_voxel_size(tmp_path, volume):
    path = tmp_path / "out.tif"
    write_tiff_stack(volume, path, voxel_size=(0.7, 0.25, 0.4), unit="um")
    with tifffile.TiffFile(path) as tif:
        np.testing.assert_array_equal(tif.asarray(), volume)
        assert tif.is_imagej and len(tif.pages) == SHAPE[0]
        meta = tif.imagej_metadata
        assert meta["spacing"] == pytest.approx(0.7) and meta["unit"] == "um"
        # Fiji's display range spans the labels: 0 / 1 / 2 show black to white, not black.
        assert (meta["min"], meta["max"]) == (0, 2)
        tags = tif.pages[0].tags
        x_per_unit = float(Fraction(*tags["XResolution"].value))
        y_per_unit = float(Fraction(*tags["YResolution"].value))
    assert 1 / x_per_unit == pytest.approx(0.4, rel=1e-6)
    assert 1 / y_per_unit == pytest.approx(0.25, rel=1e-6)


def test_npy_round_trip_and_dispatch(tmp_path, volume):
    write_npy(volume, tmp_path / "a.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), volume)
    for suffix in EXPORT_FORMATS:
        out = export_volume(volume, tmp_path / f"b{suffix.upper()}", voxel_size=(1, 2, 3))
        assert out.exists() and out.stat().st_size > 0
    assert np.load(tmp_path / "b.NPY").dtype == np.uint8
    assert tifffile.imread(tmp_path / "b.TIFF").shape == SHAPE


def test_unknown_suffix_and_bad_input_are_input_errors(tmp_path, volume):
    with pytest.raises(ExportError, match=r"\.stl.*\.vti.*\.npy"):
        export_volume(volume, tmp_path / "out.stl")
    assert issubclass(ExportError, InputError)
    with pytest.raises(ExportError, match="voxel size"):
        write_vti(volume, tmp_path / "v.vti", voxel_size=(1, 0, 1))
    with pytest.raises(ExportError, match="3D"):
        write_npy(volume[0], tmp_path / "v.npy")
    assert not list(tmp_path.iterdir())


def test_report_json_and_csv_round_trip(tmp_path):
    report = {
        "volume_fraction": {"0": 0.6, "1": np.float64(0.4)},
        "diffusivity": {0: {"tortuosity": {"z": 1.25, "y": math.inf},
                            "relative_diffusivity": {"z": 0.48, "y": 0.0}}},
        "stiffness": np.arange(4.0).reshape(2, 2),
        "iterations": [np.int64(3), 4],
        "name": "sample 1",
    }
    write_report(report, json_path=tmp_path / "r.json", csv_path=tmp_path / "r.csv")
    back = json.loads((tmp_path / "r.json").read_text())
    assert back["volume_fraction"] == {"0": 0.6, "1": 0.4}
    # The one convention for non-finite numbers: null, and the reason under non_finite.
    assert back["diffusivity"]["0"]["tortuosity"] == {"z": 1.25, "y": None}
    assert back["non_finite"] == {
        "diffusivity.0.tortuosity.y": "inf: phase 0 does not connect the two faces along y"}
    assert back["stiffness"] == [[0.0, 1.0], [2.0, 3.0]]
    assert back["iterations"] == [3, 4] and back["name"] == "sample 1"

    with open(tmp_path / "r.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["key", "value"]
    table = dict(rows[1:])
    assert float(table["diffusivity.0.tortuosity.y"]) == math.inf
    assert float(table["diffusivity.0.relative_diffusivity.z"]) == 0.48
    assert float(table["stiffness.1.0"]) == 2.0
    # Numbers only (texts stay in the JSON), every one a number.
    assert "name" not in table and all(math.isfinite(float(v)) or "inf" in v
                                       for v in table.values())
    assert len(rows) - 1 == len(flatten_report(report)) - 1 == 12


def test_non_finite_values_become_null_with_a_reason():
    from micro3d_gui.io.export import json_ready

    inf = math.inf
    plain = json_ready({"tortuosity": {"1": {"x": inf, "y": 2.0}},
                        "per_volume": [{"tortuosity": {"1": {"z": inf}}}],
                        "summary": {"tortuosity": {"0": {"x": {"q75": inf}}}},
                        "error": math.nan, "low": -inf})
    assert plain["tortuosity"]["1"] == {"x": None, "y": 2.0}
    assert plain["non_finite"] == {
        "tortuosity.1.x": "inf: phase 1 does not connect the two faces along x",
        "per_volume.0.tortuosity.1.z": "inf: phase 1 does not connect the two faces along z",
        "summary.tortuosity.0.x.q75": "inf: phase 0 does not connect the two faces along x",
        "error": "nan", "low": "-inf"}
    json.dumps(plain, allow_nan=False)  # strict JSON

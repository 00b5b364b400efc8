"""``micro3d evaluate`` run as a user would: TIFF volumes and PNG micrograph folders on disk,
checked against known structures and independent calls of the metrics and solvers."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import tifffile

from micro3d_gui.cli import main
from micro3d_gui.preprocess.synthetic import fibre_composite
from micro3d_gui.io.volume import write_tiff

PLANES = ("xy", "xz", "yz")
TOP_KEYS = {"volume_fraction", "s2_relative_error", "lineal_path_relative_error",
            "relative_diffusivity", "tortuosity", "elastic", "cte", "per_volume", "summary",
            "num_volumes", "num_phases", "reference", "reference_volume_fraction", "max_r",
            "inputs"}
ELASTIC_KEYS = {"E1", "E2", "E3", "G12", "G13", "G23", "nu12", "nu13", "nu23"}
CTE_KEYS = {"a11", "a22", "a33", "a12", "a13", "a23"}


def layers_along_z(profile) -> np.ndarray:
    """16^3 layers normal to z: ``profile[z]`` is the phase of slice z."""
    return np.broadcast_to(np.asarray(profile, np.uint8)[:, None, None], (16, 16, 16)).copy()


#: Layers of 4 voxels (period 8) and of 1 voxel (period 2): both half phase 1, so every xy
#: section is uniform with the same statistics, while xz and yz sections differ.
THICK = layers_along_z((np.arange(16) // 4) % 2)
THIN = layers_along_z(np.arange(16) % 2)


def plane_args(dirs):
    return [arg for p in PLANES for arg in (f"--{p}", str(dirs[p]))]


def evaluate(*args):
    """Run ``micro3d evaluate``; return the JSON report it wrote."""
    argv = ["evaluate", *map(str, args)]
    assert main(argv) == 0
    with open(argv[argv.index("--json") + 1], encoding="utf-8") as fh:
        return json.load(fh)


def as_float(report, *keys):
    """A report number; JSON writes a non-finite one as null, its reason in non_finite."""
    value = report
    for k in keys:
        value = value[k]
    if value is None:
        return float(report["non_finite"][".".join(keys)].split(":")[0])
    return float(value)


def test_volume_against_its_own_slices_with_properties(plane_writer, tmp_path, capsys):
    from micro3d_gui.properties.diffusion import diffusivity_all
    from micro3d_gui.properties.elastic import Material, homogenize

    vol = fibre_composite((16, 16, 16), radius=2.5, seed=0)
    write_tiff(vol, tmp_path / "vol.tif")
    dirs = plane_writer(tmp_path / "planes", vol, step=1)
    mats = {"0": {"E": 4.0, "nu": 0.3, "cte": 5e-5}, "1": {"E": 200.0, "nu": 0.25, "cte": 1e-6}}
    (tmp_path / "mat.json").write_text(json.dumps(mats))
    report = evaluate(tmp_path / "vol.tif", *plane_args(dirs), "--diffusivity", "--elastic",
                      "--materials", tmp_path / "mat.json", "--device", "cpu",
                      "--json", tmp_path / "r.json", "--csv", tmp_path / "r.csv")
    progress = capsys.readouterr().err  # progress lines go to stderr
    assert "volume 1/1 (" in progress and "diffusivity (TauFactor)" in progress
    assert "elastic" in progress
    assert set(report) - {"non_finite"} == TOP_KEYS
    assert report["reference"] == "micrographs" and report["num_phases"] == 2
    # Every slice of the volume is a micrograph: the statistics agree exactly.
    for key in ("s2_relative_error", "lineal_path_relative_error"):
        assert report[key] == {p: 0.0 for p in PLANES}
    expected = np.bincount(vol.ravel(), minlength=2) / vol.size
    assert report["volume_fraction"] == {"0": expected[0], "1": expected[1]}
    assert report["reference_volume_fraction"] == report["volume_fraction"]

    # Properties: the same numbers as calling the solvers directly.
    direct = diffusivity_all(vol, 2)
    for k in (0, 1):
        for axis in "zyx":
            assert report["relative_diffusivity"][str(k)][axis] == pytest.approx(
                direct[k]["relative_diffusivity"][axis], rel=1e-9, abs=1e-12)
            assert as_float(report, "tortuosity", str(k), axis) == pytest.approx(
                direct[k]["tortuosity"][axis], rel=1e-9)
    elastic = homogenize(vol, {0: Material(4.0, 0.3, 5e-5), 1: Material(200.0, 0.25, 1e-6)})
    assert set(report["elastic"]) == ELASTIC_KEYS and set(report["cte"]) == CTE_KEYS
    for key, value in elastic.constants.items():
        assert report["elastic"][key] == pytest.approx(value, rel=1e-9)
    for key, value in elastic.cte.items():
        assert report["cte"][key] == pytest.approx(value, rel=1e-7, abs=1e-15)
    assert report["inputs"]["materials"]["1"] == {"E": 200.0, "nu": 0.25, "cte": 1e-6}
    # One volume: per_volume holds it (with its stiffness), the summary is that value.
    (entry,) = report["per_volume"]
    assert entry["name"] == str(tmp_path / "vol.tif")
    np.testing.assert_allclose(entry["stiffness"], elastic.stiffness, rtol=1e-9, atol=1e-9)
    assert report["summary"]["elastic"]["E1"]["median"] == report["elastic"]["E1"]

    # The CSV holds the same report as key,value rows.
    with open(tmp_path / "r.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["key", "value"]
    values = dict(rows[1:])
    assert float(values["volume_fraction.1"]) == pytest.approx(expected[1])
    assert float(values["elastic.E3"]) == pytest.approx(report["elastic"]["E3"])
    assert float(values["s2_relative_error.yz"]) == 0.0
    assert float(values["relative_diffusivity.0.x"]) == pytest.approx(
        report["relative_diffusivity"]["0"]["x"])


def test_several_volumes_show_which_planes_differ(plane_writer, tmp_path):
    rotated = np.transpose(THICK, (2, 1, 0)).copy()  # the same layers, now normal to x
    paths = []
    for name, vol in (("same", THICK), ("thin", THIN), ("rotated", rotated)):
        write_tiff(vol, tmp_path / f"{name}.tif")
        paths.append(tmp_path / f"{name}.tif")
    dirs = plane_writer(tmp_path / "planes", THICK, step=2)  # every other slice
    report = evaluate(*paths, *plane_args(dirs), "--json", tmp_path / "r.json")
    assert "relative_diffusivity" not in report and "elastic" not in report
    same, thin, rot = (v["s2_relative_error"] for v in report["per_volume"])
    assert [v["name"] for v in report["per_volume"]] == list(map(str, paths))
    # The volume the micrographs were cut from: zero error in every plane (half its slices
    # keep the statistics of all of them for this periodic stack).
    assert same == {p: 0.0 for p in PLANES}
    # Thinner layers: xy sections are still uniform, half of each phase, so only the xz
    # and yz sections (which show the layers) differ.
    assert thin["xy"] == 0.0 and thin["xz"] > 0.3 and thin["yz"] > 0.3
    # Rotated layers differ in every plane.
    assert all(rot[p] > 0.2 for p in PLANES)
    # Top level: means over the volumes; summary: median and quartiles of the same values.
    for p in PLANES:
        values = [same[p], thin[p], rot[p]]
        assert report["s2_relative_error"][p] == pytest.approx(np.mean(values))
        q25, med, q75 = np.percentile(values, [25, 50, 75])
        s = report["summary"]["s2_relative_error"][p]
        assert (s["q25"], s["median"], s["q75"]) == pytest.approx((q25, med, q75))
        assert (s["min"], s["max"]) == (min(values), max(values))
    assert report["num_volumes"] == 3
    assert report["volume_fraction"]["1"] == pytest.approx(0.5)


def test_reference_tiff_works_like_the_folders(plane_writer, tmp_path, capsys):
    write_tiff(THIN, tmp_path / "thin.tif")
    dirs = plane_writer(tmp_path / "planes", THICK, step=1)
    # The reference is stored as 0/255 grey levels: read and labelled like the micrographs.
    tifffile.imwrite(tmp_path / "real.tif", THICK * 255)
    by_folders = evaluate(tmp_path / "thin.tif", *plane_args(dirs), "--json",
                          tmp_path / "a.json")
    by_tiff = evaluate(tmp_path / "thin.tif", "--reference", tmp_path / "real.tif",
                       "--json", tmp_path / "b.json")
    assert by_tiff["reference"] == "volume"
    for key in ("s2_relative_error", "lineal_path_relative_error", "volume_fraction",
                "reference_volume_fraction"):
        assert by_tiff[key] == pytest.approx(by_folders[key], abs=1e-12)
    assert by_tiff["s2_relative_error"]["xz"] > 0.3
    # A raw grey reference, thresholded with --phases 2 (Otsu) as train would, gives the same.
    rng = np.random.default_rng(0)
    grey = (60 + 130 * THICK + rng.normal(0, 8, THICK.shape)).clip(0, 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "grey.tif", grey)
    by_grey = evaluate(tmp_path / "thin.tif", "--reference", tmp_path / "grey.tif",
                       "--phases", "2", "--json", tmp_path / "c.json")
    assert by_grey["s2_relative_error"] == pytest.approx(by_folders["s2_relative_error"])
    assert "otsu thresholds" in capsys.readouterr().out
    # Micrographs and a reference volume: errors against both.
    both = evaluate(tmp_path / "thin.tif", *plane_args(dirs), "--reference",
                    tmp_path / "real.tif", "--json", tmp_path / "d.json")
    assert both["reference"] == "micrographs"
    assert both["reference_volume"]["s2_relative_error"] == pytest.approx(
        by_tiff["s2_relative_error"])


def test_without_a_reference_only_fractions(tmp_path):
    vol = (np.arange(12 ** 3).reshape(12, 12, 12) % 7 % 3).astype(np.uint8)  # three phases
    write_tiff(vol, tmp_path / "v.tif")
    report = evaluate(tmp_path / "v.tif", "--json", tmp_path / "r.json", "--csv",
                      tmp_path / "r.csv")
    assert report["reference"] is None and report["num_phases"] == 3
    assert "s2_relative_error" not in report and "lineal_path_relative_error" not in report
    expected = np.bincount(vol.ravel()) / vol.size
    assert [report["volume_fraction"][str(k)] for k in range(3)] == pytest.approx(expected)
    # --phases declares a phase absent from the volume.
    report = evaluate(tmp_path / "v.tif", "--phases", "4", "--json", tmp_path / "r.json")
    assert report["volume_fraction"]["3"] == 0.0


def run_error(argv, capsys) -> str:
    assert main(["evaluate", *map(str, argv)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("micro3d: error: ") and "Traceback" not in err
    assert len(err.splitlines()) == 1
    return err


def test_bad_input_names_the_file_and_the_fix(plane_writer, tmp_path, capsys):
    write_tiff(THICK, tmp_path / "v.tif")
    dirs = plane_writer(tmp_path / "planes", THICK, step=4)
    out = ["--json", tmp_path / "r.json"]
    err = run_error([tmp_path / "nope.tif", *out], capsys)
    assert "nope.tif: no such file; check the path" in err
    tifffile.imwrite(tmp_path / "flat.tif", THICK[0])
    err = run_error([tmp_path / "flat.tif", *out], capsys)
    assert "flat.tif: has shape (16, 16), not a 3D [z, y, x] stack" in err
    tifffile.imwrite(tmp_path / "grey.tif", THICK.astype(np.float32) * 0.7)
    err = run_error([tmp_path / "grey.tif", *out], capsys)
    assert "grey.tif: holds float32 values" in err and "--reference" in err
    # Phases of the volumes against those of the micrographs.
    write_tiff(THICK * 2, tmp_path / "three.tif")
    err = run_error([tmp_path / "v.tif", tmp_path / "three.tif", *plane_args(dirs), *out],
                    capsys)
    assert "three.tif: holds labels up to 2, but the micrographs give 2 phases" in err
    write_tiff(np.zeros_like(THICK), tmp_path / "empty.tif")
    err = run_error([tmp_path / "empty.tif", *plane_args(dirs), *out], capsys)
    assert "empty.tif: hold 1 phases but the micrographs 2" in err and "--phases 2" in err
    # Materials: not JSON, and a phase without a material.
    (tmp_path / "bad.json").write_text("{E: 3")
    err = run_error([tmp_path / "v.tif", "--elastic", "--materials", tmp_path / "bad.json",
                     *out], capsys)
    assert "bad.json: is not valid JSON" in err
    (tmp_path / "one.json").write_text('{"0": {"E": 3.5, "nu": 0.35, "cte": 6e-5}}')
    err = run_error([tmp_path / "v.tif", "--elastic", "--materials", tmp_path / "one.json",
                     *out], capsys)
    assert "one.json: no material given for phase(s) [1]" in err
    # Options that cannot work.
    err = run_error([tmp_path / "v.tif", *plane_args(dirs), "--max-r", "16", *out], capsys)
    assert "--max-r 16: must be below the smallest side, 16 voxels" in err
    assert "--max-r 15" in err
    err = run_error([tmp_path / "v.tif", "--json", tmp_path / "v.tif" / "r.json"], capsys)
    assert "v.tif is a file, not a folder" in err  # (a missing folder is created)
    err = run_error([tmp_path / "v.tif", "--segment", "otsu", *out], capsys)
    assert "--segment / --thresholds apply to micrographs" in err
    assert not (tmp_path / "r.json").exists()


def test_sample_writes_any_format_then_evaluate(plane_writer, tmp_path, capsys):
    import pyvista as pv

    dirs = plane_writer(tmp_path / "planes", THICK, step=2)
    model = tmp_path / "m.pt"
    assert main(["train", *plane_args(dirs), "--out", str(model), "--preset", "tiny",
                 "--crop", "16", "--batch", "2", "--steps", "2", "--device", "cpu"]) == 0
    common = [str(model), "--shape", "8", "8", "8", "--sampling-steps", "2", "--harmonize",
              "0", "--seed", "0", "--device", "cpu"]
    vti = tmp_path / "v.vti"
    assert main(["sample", *common, "--out", str(vti), "--voxel-size", "2", "0.5", "0.25",
                 "--unit", "nm"]) == 0
    grid = pv.read(vti)
    assert grid.spacing == pytest.approx((0.25, 0.5, 2.0))  # VTK orders x, y, z
    assert grid.field_data["unit"][0] == "nm" and grid.n_cells == 8 ** 3
    tif = tmp_path / "v.tif"
    assert main(["sample", *common, "--out", str(tif)]) == 0
    vol = tifffile.imread(tif)
    np.testing.assert_array_equal(grid.cell_data["phase"].reshape(8, 8, 8), vol)  # same seed
    with tifffile.TiffFile(tif) as t:  # no voxel size given: none is invented
        assert t.imagej_metadata.get("unit") is None
    assert main(["sample", *common, "--out", str(tmp_path / "v.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), vol)
    capsys.readouterr()
    err = run_error_sample([*common, "--out", str(tmp_path / "v.png")], capsys)
    assert "v.png: cannot write '.png'" in err and ".vti" in err
    # The sampled stack evaluates against the micrographs it was trained on.
    report = evaluate(tif, *plane_args(dirs), "--json", tmp_path / "r.json")
    assert all(math.isfinite(v) for v in report["s2_relative_error"].values())
    assert sum(report["volume_fraction"].values()) == pytest.approx(1.0)


def run_error_sample(argv, capsys) -> str:
    assert main(["sample", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("micro3d: error: ") and len(err.splitlines()) == 1
    return err


def test_report_api_means_summary_and_stop():
    """The engine the CLI and the app share, called directly (no files)."""
    from micro3d_gui.metrics.report import (EvaluationCancelled, evaluate_volumes,
                                            quartiles, run_evaluation)

    # Quartiles as NumPy's, also where a non-percolating direction gives tau = inf.
    values = [0.3, 1.2, 0.7, 2.0]
    q25, med, q75 = np.percentile(values, [25, 50, 75])
    assert quartiles(values) == pytest.approx(
        {"median": med, "q25": q25, "q75": q75, "min": 0.3, "max": 2.0})
    assert quartiles([2.0, 3.0, math.inf]) == {"median": 3.0, "q25": 2.5, "q75": math.inf,
                                               "min": 2.0, "max": math.inf}
    # Against a reference volume (all its slices): zero for itself, means over volumes.
    report = evaluate_volumes([THICK, THIN], 2, THICK, names=["a", "b"])
    assert report["reference"] == "volume"
    assert report["per_volume"][0]["s2_relative_error"] == {p: 0.0 for p in PLANES}
    assert report["s2_relative_error"]["xz"] == pytest.approx(
        report["per_volume"][1]["s2_relative_error"]["xz"] / 2)
    # Progress reaches 1 in order; a True return stops the run.
    seen = []
    run_evaluation([THICK, THIN], 2, THICK, progress=lambda f, t: seen.append((f, t)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("volume 2/2" in t for _, t in seen)
    with pytest.raises(EvaluationCancelled):
        run_evaluation([THICK, THIN], 2, THICK, progress=lambda f, t: "volume 2/2" in t)
    with pytest.raises(ValueError, match="phase labels 0..1"):
        run_evaluation([THICK * 2], 2)

"""The micro3d command, run as a user would (in-process for speed, one subprocess)."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from micro3d_gui.cli import main


def train_args(dirs, out, *extra):
    return ["train", "--xy", str(dirs["xy"]), "--xz", str(dirs["xz"]), "--yz", str(dirs["yz"]),
            "--out", str(out), "--preset", "tiny", "--crop", "16", "--batch", "4", *extra]


def test_train_then_sample_writes_label_volumes(lamella_dirs, tmp_path, capsys):
    model = tmp_path / "m.pt"
    assert main(train_args(lamella_dirs, model, "--steps", "5")) == 0
    ckpt = torch.load(model, weights_only=True)
    assert ckpt["step"] == 5 and ckpt["num_phases"] == 2
    out = tmp_path / "vol.tif"
    assert main(["sample", str(model), "--shape", "8", "12", "10", "--out", str(out),
                 "--count", "2", "--sampling-steps", "4", "--harmonize", "1", "--seed", "1",
                 "--guidance", "1.5", "--periodic", "--device", "cpu"]) == 0
    for i in range(2):
        vol = tifffile.imread(tmp_path / f"vol_{i:03d}.tif")
        assert vol.shape == (8, 12, 10) and vol.dtype == np.uint8 and vol.max() <= 1
    assert "phase fractions" in capsys.readouterr().out


def test_sample_self_checks_its_volumes_and_writes_a_json_report(lamella_dirs, tmp_path,
                                                                 capsys):
    from micro3d_gui.core.checkpoint import load_checkpoint, reference_micrographs
    from micro3d_gui.metrics.selfcheck import NO_REFERENCE, self_check

    model = tmp_path / "m.pt"
    assert main(train_args(lamella_dirs, model, "--steps", "3", "--no-fidelity")) == 0
    capsys.readouterr()
    out, report = tmp_path / "vol.tif", tmp_path / "out" / "report.json"
    argv = ["sample", str(model), "--shape", "8", "12", "16", "--out", str(out), "--count",
            "2", "--sampling-steps", "2", "--harmonize", "0", "--seed", "0", "--device", "cpu"]
    assert main([*argv, "--json", str(report)]) == 0
    printed = capsys.readouterr().out.splitlines()
    written = json.loads(report.read_text())
    paths = [tmp_path / f"vol_{i:03d}.tif" for i in range(2)]
    assert written["volumes"] == [str(p) for p in paths]
    check = written["self_check"]
    assert check["reference"] == "the model's training micrographs"
    # the numbers are those of the written volumes against the micrographs the model keeps
    again = self_check(np.stack([tifffile.imread(p) for p in paths]),
                       reference_micrographs(load_checkpoint(model)), 2)
    for plane in ("xy", "xz", "yz"):
        for key in ("s2", "s2_floor", "lineal_path", "lineal_path_floor"):
            assert check["planes"][plane][key] == pytest.approx(again["planes"][plane][key])
    assert check["verdict"] == again["verdict"] and check["at_floor"] == again["at_floor"]
    # stdout: where each volume went, then the table and the one-line verdict
    assert [line.split(" (")[0] for line in printed[:2]] == [f"wrote {p}" for p in paths]
    assert printed[2].startswith("self-check against the model's training micrographs")
    assert [line.split(":")[0].strip() for line in printed[3:6]] == ["xy", "xz", "yz"]
    assert "lineal path" in printed[3] and "floor" in printed[3]
    assert printed[6] == check["verdict"] and printed[7] == f"wrote {report}"

    assert main([*argv, "--json", str(report), "--no-check"]) == 0
    assert "self-check" not in capsys.readouterr().out.lower()
    assert json.loads(report.read_text())["self_check"] is None

    # a model from before the self-check samples as before, and says what is missing
    old = torch.load(model, weights_only=True)
    del old["reference"]
    torch.save(old, tmp_path / "old.pt")
    assert main(["sample", str(tmp_path / "old.pt"), *argv[2:]]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == NO_REFERENCE


def test_resume_continues_to_more_steps(lamella_dirs, tmp_path):
    model = tmp_path / "m.pt"
    assert main(train_args(lamella_dirs, model, "--steps", "3")) == 0
    assert main(train_args(lamella_dirs, model, "--steps", "6", "--resume", str(model))) == 0
    assert torch.load(model, weights_only=True)["step"] == 6


def test_train_for_a_time_reports_fidelity_and_resume_says_what_it_ignores(
        lamella_dirs, tmp_path, capsys):
    model = tmp_path / "m.pt"
    assert main(train_args(lamella_dirs, model, "--time", "3s", "--seed", "2")) == 0
    out, err = capsys.readouterr()
    ckpt = torch.load(model, weights_only=True)
    steps = ckpt["train_config"]["steps"]  # the budget became a fixed step count
    assert ckpt["step"] == steps >= 12 and ckpt["train_config"]["time_budget_s"] == 3.0
    assert "0m03s of training" in out and "S2 error of 2D samples: xy" in out  # the result
    assert f"step {steps}: S2 error of 2D samples: xy" in err  # progress
    assert ckpt["fidelity"][-1]["step"] == steps
    assert main(train_args(lamella_dirs, model, "--steps", str(steps + 2), "--crop", "8",
                           "--time", "1m", "--resume", str(model))) == 0
    err = capsys.readouterr().err
    assert "ignored --crop 8, --time 60.0" in err
    resumed = torch.load(model, weights_only=True)
    assert resumed["crop"] == 16 and resumed["step"] == steps + 2


@pytest.mark.parametrize("text, seconds", [("600", 600), ("90s", 90), ("10m", 600),
                                           ("1h30m", 5400), ("2.5m", 150)])
def test_durations(text, seconds):
    from micro3d_gui.cli.options import duration

    assert duration(text) == seconds


def run_error(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("micro3d: error: ") and "Traceback" not in err
    assert len(err.splitlines()) == 1
    return err


def test_input_errors_name_the_file_and_the_fix(lamella_dirs, tmp_path, capsys):
    out = tmp_path / "m.pt"
    # missing folder
    args = train_args(lamella_dirs, out)
    args[2] = str(tmp_path / "nope")
    assert "nope: no such file or folder" in run_error(args, capsys)
    # empty folder
    empty = tmp_path / "empty"
    empty.mkdir()
    args[2] = str(empty)
    assert "empty: no images found" in run_error(args, capsys)
    # unreadable (truncated) image
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00garbage")
    args[2] = str(bad)
    err = run_error(args, capsys)
    assert "broken.png: cannot be read as an image" in err and "corrupt" in err
    # mixed phase labels: one image labelled 0/1 among 0/255 images
    odd = lamella_dirs["xz"] / "xz_0.png"
    Image.fromarray(np.array(Image.open(odd)) // 255).save(odd)
    err = run_error(train_args(lamella_dirs, out), capsys)
    assert "xz_0.png: uses grey levels [0, 1]" in err and "same grey values" in err
    Image.fromarray(np.array(Image.open(odd)) * 255).save(odd)
    # crop larger than the images (16x16 yz images)
    err = run_error(train_args(lamella_dirs, out, "--crop", "24"), capsys)
    assert "smaller than the 24 px training crop" in err and "--crop 16" in err
    # wrong phase count
    assert "--phases is 3" in run_error(train_args(lamella_dirs, out, "--phases", "3"), capsys)
    # not a model
    (tmp_path / "x.pt").write_text("hello")
    err = run_error(["sample", str(tmp_path / "x.pt"), "--shape", "8", "8", "8",
                     "--out", str(tmp_path / "v.tif")], capsys)
    assert "x.pt: not a readable Micro3D model" in err
    assert not out.exists()


def test_grey_micrographs_are_refused_with_a_hint(tmp_path, capsys):
    d = tmp_path / "grey"
    d.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(d / "raw.png")
    err = run_error(["train", "--xy", str(d), "--out", str(tmp_path / "m.pt")], capsys)
    assert "raw.png" in err and "not a labelled" in err


def test_console_script_runs_as_a_process(tmp_path):
    res = subprocess.run([sys.executable, "-m", "micro3d_gui.cli", "sample", str(tmp_path / "none.pt"),
                          "--shape", "8", "8", "8", "--out", str(tmp_path / "v.tif")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "none.pt: no such model file" in res.stderr and "Traceback" not in res.stderr


def write_raw_planes(root, truth, bits, transpose=()):
    """Raw grey micrographs (phase contrast + noise) of a label volume, 8-bit PNG or 16-bit
    TIFF; planes in ``transpose`` are written with rows and columns swapped."""
    from micro3d_gui.core.planes import volume_plane_images

    rng = np.random.default_rng(1)
    means, noise, dtype = ((60, 190), 12, np.uint8) if bits == 8 else \
        ((9000, 50000), 3000, np.uint16)
    dirs = {}
    for plane, ims in volume_plane_images(truth, step=2).items():
        d = dirs[plane] = root / plane
        d.mkdir(parents=True)
        for i, im in enumerate(ims):
            g = (np.asarray(means, float)[im] + rng.normal(0, noise, im.shape))
            g = g.clip(0, np.iinfo(dtype).max).astype(dtype)
            g = g.T if plane in transpose else g
            if bits == 8:
                Image.fromarray(g).save(d / f"{plane}_{i}.png")
            else:
                tifffile.imwrite(d / f"{plane}_{i}.tif", g)
    return dirs


@pytest.mark.parametrize("bits", [8, 16])
def test_train_on_raw_grey_micrographs(tmp_path, capsys, bits):
    from micro3d_gui.preprocess.synthetic import lamellae

    truth = lamellae((16, 16, 32), axis=2, seed=0)
    # the 16-bit xz micrographs come x down, z across: --transpose xz turns them back
    transpose = ("xz",) if bits == 16 else ()
    dirs = write_raw_planes(tmp_path / "raw", truth, bits, transpose)
    model = tmp_path / "m.pt"
    extra = ["--transpose", "xz"] if transpose else []
    assert main(train_args(dirs, model, "--phases", "2", "--steps", "2", "--batch", "2",
                           "--device", "cpu", *extra)) == 0
    ckpt = torch.load(model, weights_only=True)
    assert ckpt["step"] == 2 and ckpt["num_phases"] == 2
    out = capsys.readouterr().out
    assert "2 phases (otsu thresholds" in out and "phase fractions: xy" in out
    assert "xz: 8 (16x32)" in out  # METHOD.md orientation: z down, x across


def test_segmentation_options_are_checked(tmp_path, lamella_dirs, capsys):
    out = tmp_path / "m.pt"
    err = run_error(train_args(lamella_dirs, out, "--segment", "multiotsu"), capsys)
    assert "--segment multiotsu needs --phases K" in err
    err = run_error(train_args(lamella_dirs, out, "--segment", "otsu", "--thresholds", "9"),
                    capsys)
    assert "--thresholds goes with --segment manual" in err
    err = run_error(train_args(lamella_dirs, out, "--thresholds", "300"), capsys)
    assert "thresholds [300.0] leave phase(s) [1] without any pixel" in err
    err = run_error(train_args(lamella_dirs, out, "--segment", "otsu", "--phases", "3"), capsys)
    assert "use multiotsu for 3 phases" in err
    args = ["train", "--xy", str(lamella_dirs["xy"]), "--out", str(out), "--flip-rows", "yz"]
    assert "--flip-rows yz: no yz images given" in run_error(args, capsys)
    assert not out.exists()


def test_demo_samples_the_bundled_model_and_compares_with_its_truth(tmp_path, capsys):
    from micro3d_gui.metrics.fractions import volume_fractions
    from micro3d_gui.paths import demo_model

    assert demo_model("fibres").is_file()  # shipped in models/
    assert main(["demo", "--material", "fibres", "--size", "8", "--out", str(tmp_path),
                 "--device", "cpu"]) == 0
    vol = tifffile.imread(tmp_path / "volume.tif")
    assert vol.shape == (8, 8, 8) and vol.max() <= 1
    out = capsys.readouterr().out
    printed = np.round(volume_fractions(vol, 2), 3).tolist()
    assert f"generated: phase fractions {printed}" in out and "truth    : phase fractions" in out

"""The command line behaves like its neighbours (tifffile, napari, PoreSpy): --version,
``micro3d info``, every written format read back by ``evaluate``, progress on stderr,
``--json -``, a quiet end when stdout closes, writes that never lose the work."""
import errno
import importlib.metadata
import io
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import micro3d_gui
from micro3d_gui.cli import main
from micro3d_gui.cli.progress import Progress
from micro3d_gui.io.volume import read_volume, write_tiff
from micro3d_gui.paths import demo_model

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--shape", "8", "8", "8", "--sampling-steps", "3", "--harmonize", "0", "--seed", "0",
        "--device", "cpu"]


def train_args(dirs, out, *extra):
    return ["train", "--xy", str(dirs["xy"]), "--xz", str(dirs["xz"]), "--yz", str(dirs["yz"]),
            "--out", str(out), "--preset", "tiny", "--crop", "16", "--batch", "2",
            "--steps", "2", "--device", "cpu", *extra]


def test_version_has_one_definition(capsys):
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert micro3d_gui.__version__ == importlib.metadata.version("micro3d-gui") \
        == pyproject["project"]["version"]
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"micro3d {micro3d_gui.__version__}"
    res = subprocess.run([sys.executable, "-m", "micro3d_gui", "--version"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == f"micro3d-gui {micro3d_gui.__version__}"


def test_app_without_a_display_says_so_in_one_line():
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    res = subprocess.run([sys.executable, "-m", "micro3d_gui"], capture_output=True,
                         text=True, timeout=120, env=env)
    assert res.returncode == 2 and res.stdout == ""
    (line,) = res.stderr.strip().splitlines()
    assert "needs a display" in line and "micro3d --help" in line


def test_info_describes_the_bundled_model_as_text_and_json(capsys):
    model = demo_model("fibres")
    ckpt = torch.load(model, weights_only=True)
    assert main(["info", str(model), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["preset"] == "tiny" and info["num_phases"] == 2
    train = info["training"]
    assert train["step"] == ckpt["step"] and train["crop"] == ckpt["train_config"]["crop"]
    assert train["lr"] == ckpt["train_config"]["lr"]
    assert train["batch_size"] == ckpt["train_config"]["batch_size"]
    assert info["data"] == ckpt["data_summary"]
    assert info["parameters"] == sum(t.numel() for t in ckpt["ema"].values())
    assert main(["info", str(model)]) == 0
    text = capsys.readouterr().out
    assert f"step {ckpt['step']} of {ckpt['train_config']['steps']}" in text
    crop, lr = ckpt["train_config"]["crop"], ckpt["train_config"]["lr"]
    assert "preset tiny" in text and f"crop {crop} px" in text and f"learning rate {lr:g}" in text
    for plane, d in ckpt["data_summary"].items():
        assert f"data {plane}: {d['images']} images" in text
    assert info["self_check_images"] == {p: len(ims) for p, ims in ckpt["reference"].items()}
    kept = ", ".join(f"{p} {len(ims)} images" for p, ims in ckpt["reference"].items())
    assert f"self-check micrographs: {kept}" in text


def test_info_reports_the_training_time_of_a_new_model(lamella_dirs, tmp_path, capsys):
    model = tmp_path / "m.pt"
    assert main(train_args(lamella_dirs, model)) == 0
    capsys.readouterr()
    assert main(["info", str(model), "--json"]) == 0
    seconds = json.loads(capsys.readouterr().out)["training"]["seconds"]
    assert seconds > 0
    assert main(train_args(lamella_dirs, model, "--steps", "3", "--resume", str(model))) == 0
    assert torch.load(model, weights_only=True)["train_seconds"] > seconds


def test_evaluate_reads_every_format_sample_writes(tmp_path, capsys):
    model = str(demo_model("fibres"))
    for suffix in (".tif", ".vti", ".npy"):
        assert main(["sample", model, *FAST, "--out", str(tmp_path / f"v{suffix}")]) == 0
    vols = [read_volume(tmp_path / f"v{s}") for s in (".tif", ".vti", ".npy")]
    assert vols[0].shape == (8, 8, 8) and vols[0].dtype == np.uint8
    np.testing.assert_array_equal(vols[0], vols[1])  # same seed: the same volume
    np.testing.assert_array_equal(vols[0], vols[2])
    reports = []
    for s in (".tif", ".vti", ".npy"):
        assert main(["evaluate", str(tmp_path / f"v{s}"), "--json",
                     str(tmp_path / f"r{s}.json")]) == 0
        reports.append(json.loads((tmp_path / f"r{s}.json").read_text()))
    expected = np.bincount(vols[0].ravel(), minlength=2) / vols[0].size
    for r in reports:
        assert [r["volume_fraction"][k] for k in ("0", "1")] == pytest.approx(expected)


def test_vti_without_voxel_size_claims_no_unit_and_npy_gets_a_sidecar(tmp_path):
    import pyvista as pv

    model = str(demo_model("fibres"))
    assert main(["sample", model, *FAST, "--out", str(tmp_path / "plain.vti")]) == 0
    assert main(["sample", model, *FAST, "--out", str(tmp_path / "um.vti"),
                 "--voxel-size", "2", "1", "1"]) == 0
    assert str(pv.read(tmp_path / "plain.vti").field_data["unit"][0]) == "voxel"
    grid = pv.read(tmp_path / "um.vti")
    assert str(grid.field_data["unit"][0]) == "um" and grid.spacing == (1.0, 1.0, 2.0)
    assert main(["sample", model, *FAST, "--out", str(tmp_path / "v.npy"),
                 "--voxel-size", "2", "1", "0.5", "--unit", "nm"]) == 0
    assert json.loads((tmp_path / "v.npy.json").read_text()) == {
        "voxel_size": [2.0, 1.0, 0.5], "unit": "nm", "axes": "zyx"}
    assert main(["sample", model, *FAST, "--out", str(tmp_path / "w.npy")]) == 0
    assert not (tmp_path / "w.npy.json").exists()


def test_progress_goes_to_stderr_and_results_to_stdout(tmp_path, capsys):
    # n_h = 1 over the default recipe's last 60 % of 3 steps (the last 2): 1 + 2 + 2 calls
    assert main(["sample", str(demo_model("fibres")), *FAST, "--harmonize", "1",
                 "--out", str(tmp_path / "v.tif")]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith(f"wrote {tmp_path / 'v.tif'}")
    assert "call" not in captured.out and "done in" not in captured.out
    # Progress counts network calls; each line names its step and the step's plane.
    lines = [l.split() for l in captured.err.splitlines() if l.startswith("call ")]
    assert [l[:6] for l in lines] == [["call", "1/5", "step", "1/3", "plane", "xy"],
                                      ["call", "3/5", "step", "2/3", "plane", "xz"],
                                      ["call", "5/5", "step", "3/3", "plane", "yz"]]


def test_the_bar_shows_the_current_steps_plane():
    bar = Progress(3)
    from tqdm import tqdm

    text = io.StringIO()
    bar.bar, bar.interactive = tqdm(total=3, file=text, mininterval=0, miniters=1), True
    for step, plane in ((1, "xy"), (2, "xz")):
        bar.update(step, plane=plane)
        assert text.getvalue().rstrip().endswith(f"plane={plane}]")
    bar.close()


def test_json_dash_writes_the_report_to_stdout(tmp_path, capsys):
    vol = np.zeros((8, 8, 8), np.uint8)
    vol[:, :, ::2] = 1
    np.save(tmp_path / "v.npy", vol)
    assert main(["evaluate", str(tmp_path / "v.npy"), "--json", "-"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # stdout holds the JSON and nothing else
    assert report["volume_fraction"] == {"0": 0.5, "1": 0.5}
    assert "volume fractions" in captured.err
    assert not list(Path.cwd().glob("-"))


def test_closed_stdout_ends_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "micro3d_gui.cli", "info",
                             str(demo_model("fibres"))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # as `| head` does once it has its lines
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def fail_replace_of(target: Path, monkeypatch):
    """The file system refuses the final rename onto ``target`` (a full disk)."""
    import micro3d_gui.io.atomic as atomic

    real = os.replace

    def replace(src, dst):
        if Path(dst) == target:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)


def test_training_that_cannot_save_keeps_the_model_elsewhere(lamella_dirs, tmp_path,
                                                               capsys, monkeypatch):
    out = tmp_path / "out" / "m.pt"
    fail_replace_of(out, monkeypatch)
    assert main(train_args(lamella_dirs, out, "--checkpoint-every", "1")) == 2
    err = capsys.readouterr().err
    (line,) = [l for l in err.splitlines() if l.startswith("micro3d: error:")]
    assert f"{out}: could not be written (No space left on device)" in line
    assert "training stopped at step 1" in line
    rescued = Path(line.split("saved to ")[1].split(" instead")[0])
    assert rescued.parent == lamella_dirs["xy"].parent  # beside the input folders
    assert torch.load(rescued, weights_only=True)["step"] == 1
    assert not out.exists() and not list(out.parent.glob(".*part"))


def test_sampling_that_cannot_save_keeps_the_volume_elsewhere(tmp_path, capsys,
                                                                monkeypatch):
    out = tmp_path / "v.tif"
    fail_replace_of(out, monkeypatch)
    model = tmp_path / "models" / "m.pt"
    model.parent.mkdir()
    model.write_bytes(demo_model("fibres").read_bytes())
    assert main(["sample", str(model), *FAST, "--out", str(out)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "v.tif: could not be written" in line and "nothing is lost" in line
    rescued = Path(line.split("saved to ")[1].split(" instead")[0])
    assert rescued.parent == model.parent and read_volume(rescued).shape == (8, 8, 8)


def test_stale_part_files_of_a_killed_writer_are_removed(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".v.tif.{gone}-0123456789ab.part"
    live = tmp_path / f".v.tif.{os.getpid()}-0123456789ab.part"  # a writer still running
    other = tmp_path / f".w.tif.{gone}-0123456789ab.part"  # another target's
    for p in (stale, live, other):
        p.write_bytes(b"half a file")
    write_tiff(np.zeros((2, 2, 2), np.uint8), tmp_path / "v.tif")
    assert not stale.exists() and live.exists() and other.exists()


def test_resume_checks_with_the_models_options_and_names_the_ignored(lamella_dirs, tmp_path,
                                                                      capsys):
    model = tmp_path / "m.pt"
    assert main(train_args(lamella_dirs, model)) == 0
    capsys.readouterr()
    # --crop 24 would not fit the 16 px yz images: the model's crop (16) is what is checked.
    assert main(train_args(lamella_dirs, model, "--steps", "3", "--crop", "24", "--batch",
                           "8", "--resume", str(model))) == 0
    err = capsys.readouterr().err
    (warning,) = [l for l in err.splitlines() if l.startswith("warning: --resume")]
    assert "ignored --crop 24, --batch 8" in warning and "--crop 16" in warning
    ckpt = torch.load(model, weights_only=True)
    assert ckpt["step"] == 3 and ckpt["train_config"]["crop"] == 16
    assert ckpt["train_config"]["batch_size"] == 2


def test_planes_with_different_levels_train_when_phases_are_given(lamella_dirs, tmp_path,
                                                                   capsys):
    for f in lamella_dirs["xz"].glob("*.png"):
        im = np.array(Image.open(f))
        im[:, :2] = 127
        Image.fromarray(im).save(f)
    assert main(train_args(lamella_dirs, tmp_path / "m.pt")) == 2
    assert main(train_args(lamella_dirs, tmp_path / "m.pt", "--phases", "3")) == 0
    assert torch.load(tmp_path / "m.pt", weights_only=True)["num_phases"] == 3


def test_info_on_a_sampling_only_model(tmp_path, capsys):
    ckpt = torch.load(demo_model("fibres"), weights_only=True)
    slim = {k: ckpt[k] for k in ("format", "version", "model_config", "schedule_config",
                                 "num_phases", "ema", "model")}
    torch.save(slim, tmp_path / "slim.pt")
    assert main(["info", str(tmp_path / "slim.pt")]) == 0
    text = capsys.readouterr().out
    assert "step 0 of ?" in text and "time not recorded" in text and "no summary" in text


def test_missing_output_folders_are_created_by_every_command(tmp_path):
    out = tmp_path / "new" / "deeper"
    assert main(["sample", str(demo_model("fibres")), *FAST, "--out", str(out / "v.npy")]) == 0
    assert main(["evaluate", str(out / "v.npy"), "--json", str(out / "r" / "r.json"),
                 "--csv", str(out / "c" / "r.csv")]) == 0
    assert (out / "r" / "r.json").is_file() and (out / "c" / "r.csv").is_file()

"""Declared symmetry (--isotropic, --like) and the refusal of an absent plane: the core
declaration, training, sampling, the self-check and `micro3d train / sample / info`."""
import json

import numpy as np
import pytest
import torch

from micro3d_gui.cli import main
from micro3d_gui.core.checkpoint import (checkpoint_symmetry, load_checkpoint,
                                         reference_micrographs, save_checkpoint)
from micro3d_gui.core.pipeline import pipeline_progressive, run_pipeline
from micro3d_gui.core.diffusion.settings import SamplerSettings
from micro3d_gui.core.symmetry import APP_WORDS, Symmetry, parse_like
from micro3d_gui.core.plane_dataset import PlaneDataset
from micro3d_gui.errors import DatasetError

TINY = ["--preset", "tiny", "--crop", "16", "--batch", "4"]
SAMPLE = ["--shape", "8", "8", "8", "--sampling-steps", "2", "--harmonize", "0",
          "--seed", "0", "--device", "cpu"]


def run_error(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("micro3d: error: ") and "Traceback" not in err
    return err


# -- the declaration ------------------------------------------------------------------------
def test_an_absent_plane_is_refused_naming_it_and_the_two_ways_on():
    with pytest.raises(DatasetError) as e:
        Symmetry().resolve(["xy", "xz"])
    msg = str(e.value)
    assert msg.startswith("no yz micrographs")
    assert "--yz PATH" in msg and "--like yz=xz" in msg and "--isotropic" not in msg
    with pytest.raises(DatasetError) as e:
        Symmetry().resolve(["xy"], APP_WORDS)  # the app words the same refusal its way
    msg = str(e.value)
    assert msg.startswith("no xz or yz micrographs")
    assert "drop xz micrographs on the xz target" in msg
    assert "set the yz target to 'same as xy'" in msg and "tick 'Isotropic material'" in msg


@pytest.mark.parametrize("declared, given, expected", [
    (Symmetry(isotropic=True), ["xy", "xz"], "--isotropic: one plane's micrographs serve"),
    (Symmetry({"yz": "xz"}), ["xy"], "--like yz=xz: xz has no micrographs"),
    (Symmetry({"yz": "xz"}), ["xy", "xz", "yz"], "--like yz=xz: yz has micrographs of its own"),
    (Symmetry({"yz": "xz"}, True), ["xy"], "--isotropic already makes every plane like"),
])
def test_declarations_that_cannot_hold_are_refused(declared, given, expected):
    with pytest.raises(DatasetError, match=expected.replace("(", r"\(")):
        declared.resolve(given)


def test_declarations_resolve_to_the_plane_that_stands_for_each_plane():
    iso = Symmetry(isotropic=True).resolve(["xz"])
    assert iso.sources() == {"xy": "xz", "xz": "xz", "yz": "xz"}
    assert iso.labels() == {"xy": 1, "xz": 1, "yz": 1}
    like = Symmetry(parse_like(["yz=xz"])).resolve(["xy", "xz"])
    assert like.sources() == {"xy": "xy", "xz": "xz", "yz": "xz"} and not like.isotropic
    assert Symmetry.from_dict(like.to_dict()) == like and Symmetry.from_dict(None) == Symmetry()
    for bad in ("yz", "yz=ab", "yz=yz"):
        with pytest.raises(DatasetError, match=f"--like {bad}: write PLANE=PLANE"):
            parse_like([bad])
    with pytest.raises(ValueError):  # a chain is no declaration a checkpoint may hold
        Symmetry.from_dict({"like": {"yz": "xz", "xz": "xy"}, "isotropic": False})


def test_isotropic_training_also_transposes_crops_and_anisotropic_does_not():
    stripes = np.zeros((16, 16), np.uint8)
    stripes[::4] = 1  # rows of phase 1: every crop's rows are constant
    images = {"xy": [stripes]}

    def transposed(data):
        x0, _ = data.batch(64, 16, 0.0, torch.Generator().manual_seed(0))
        rows_constant = (x0 == x0[..., :1]).all(dim=-1).all(dim=(-1, -2))
        return int((~rows_constant).sum())

    assert transposed(PlaneDataset(images, 2)) == 0
    like = PlaneDataset.declared({**images, "xz": [stripes]}, 2, Symmetry({"yz": "xz"}))
    assert transposed(like) == 0  # --like keeps an axis apart: never transposed
    iso = PlaneDataset.declared(images, 2, Symmetry(isotropic=True))
    assert 16 < transposed(iso) < 48  # about half


# -- train, sample, info --------------------------------------------------------------------
def test_train_with_only_xy_and_no_declaration_exits_2_and_writes_nothing(lamella_dirs,
                                                                          tmp_path, capsys):
    model = tmp_path / "m.pt"
    err = run_error(["train", "--xy", str(lamella_dirs["xy"]), "--out", str(model), *TINY,
                     "--steps", "2"], capsys)
    assert "no xz or yz micrographs" in err
    assert "--xz PATH" in err and "--yz PATH" in err and "--isotropic" in err
    assert "--like yz=xy" in err
    assert not model.exists()


def test_isotropic_model_trains_samples_and_says_so(lamella_dirs, tmp_path, capsys):
    model = tmp_path / "iso.pt"
    assert main(["train", "--xy", str(lamella_dirs["xy"]), "--isotropic", "--out", str(model),
                 *TINY, "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "symmetry: isotropic: the xy micrographs stand for xz and yz" in out
    ckpt = torch.load(model, weights_only=True)
    assert ckpt["symmetry"] == {"like": {"xz": "xy", "yz": "xy"}, "isotropic": True}
    assert set(ckpt["data_summary"]) == {"xy"}
    assert set(ckpt["fidelity"][-1]["errors"]) == {"xy"}  # the monitor: the trained label
    # the self-check compares every plane with the micrographs that stand for it
    ref = reference_micrographs(load_checkpoint(model))
    assert set(ref) == {"xy", "xz", "yz"} and ref["yz"] is ref["xy"]
    report = tmp_path / "r.json"
    assert main(["sample", str(model), "--out", str(tmp_path / "v.tif"), *SAMPLE,
                 "--json", str(report)]) == 0
    assert set(json.loads(report.read_text())["self_check"]["planes"]) == {"xy", "xz", "yz"}
    capsys.readouterr()
    assert main(["info", str(model)]) == 0
    assert "symmetry: isotropic: the xy micrographs stand for xz and yz" in \
        capsys.readouterr().out
    assert main(["info", str(model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["symmetry"]["like"] == {"xz": "xy", "yz": "xy"}


def test_like_yz_xz_trains_on_two_planes_and_samples(lamella_dirs, tmp_path, capsys):
    model = tmp_path / "like.pt"
    assert main(["train", "--xy", str(lamella_dirs["xy"]), "--xz", str(lamella_dirs["xz"]),
                 "--like", "yz=xz", "--out", str(model), *TINY, "--steps", "3",
                 "--no-fidelity"]) == 0
    ckpt = load_checkpoint(model)
    assert checkpoint_symmetry(ckpt) == Symmetry({"yz": "xz"})
    assert main(["sample", str(model), "--out", str(tmp_path / "v.tif"), *SAMPLE]) == 0
    capsys.readouterr()
    assert main(["info", str(model)]) == 0
    assert "symmetry: yz like xz" in capsys.readouterr().out
    # resuming keeps the declaration; another one is refused
    assert main(["train", "--xy", str(lamella_dirs["xy"]), "--xz", str(lamella_dirs["xz"]),
                 "--out", str(model), "--resume", str(model), "--steps", "4",
                 "--no-fidelity"]) == 0
    assert checkpoint_symmetry(load_checkpoint(model)) == Symmetry({"yz": "xz"})
    capsys.readouterr()
    err = run_error(["train", "--xy", str(lamella_dirs["xy"]), "--xz", str(lamella_dirs["xz"]),
                     "--like", "yz=xy", "--out", str(model), "--resume", str(model),
                     "--steps", "5"], capsys)
    assert "trained with the symmetry 'yz like xz'" in err


def test_a_stand_in_plane_is_sampled_with_its_source_label(lamella_dirs, tmp_path):
    """An isotropic model samples as the same weights would with the xz and yz labels made
    the xy label: every plane is denoised with xy's condition."""
    model = tmp_path / "iso.pt"
    assert main(["train", "--xy", str(lamella_dirs["xy"]), "--isotropic", "--out", str(model),
                 *TINY, "--steps", "2", "--no-fidelity"]) == 0
    iso = load_checkpoint(model)
    gen = torch.Generator().manual_seed(0)
    for t in iso["ema"].values():  # the zero-initialized layers made live: a label shows
        if t.is_floating_point() and not t.any():
            t.copy_(0.3 * torch.randn(t.shape, generator=gen))
    w = iso["ema"]["cond_embed.weight"]
    w[1:3] = w[0] + 3 * torch.randn(2, w.shape[1], generator=gen)
    plain = {k: v for k, v in iso.items() if k != "symmetry"}  # xz, yz: labels 1, 2
    same = dict(plain, ema=dict(iso["ema"]))
    same["ema"]["cond_embed.weight"] = w.clone()
    same["ema"]["cond_embed.weight"][1:3] = w[0]  # xz and yz embedded as xy
    # ... and told xy's spread of crop fractions (a stand-in takes its source's)
    same["data_summary"] = {p: iso["data_summary"]["xy"] for p in ("xy", "xz", "yz")}
    settings = SamplerSettings(harmonize=0)

    def run(ckpt):  # the final x0 estimate, before decoding (3 steps: xy, xz, yz)
        steps = list(pipeline_progressive(ckpt, (8, 8, 8), 1, 3, settings, seed=1))
        assert [s.plane for s in steps] == ["xy", "xz", "yz"]
        return steps[-1].x0

    # (not bit-equal: the memory format is picked by a timing probe)
    x0 = run(iso)
    assert (x0 - run(same)).abs().max() < 1e-5
    assert (x0 - run(plain)).abs().max() > 1e-3


def test_models_without_a_declaration_load_and_sample_as_before(lamella_dirs, tmp_path,
                                                                capsys):
    model, old = tmp_path / "m.pt", tmp_path / "old.pt"
    args = ["train", "--xy", str(lamella_dirs["xy"]), "--xz", str(lamella_dirs["xz"]),
            "--yz", str(lamella_dirs["yz"]), *TINY, "--steps", "2", "--no-fidelity"]
    assert main([*args, "--out", str(model)]) == 0
    ckpt = load_checkpoint(model)
    assert ckpt["symmetry"] == {"like": {}, "isotropic": False}
    save_checkpoint({k: v for k, v in ckpt.items() if k not in ("symmetry", "format",
                                                                 "version")}, old)
    before = load_checkpoint(old)
    assert "symmetry" not in before and checkpoint_symmetry(before) == Symmetry()
    settings = SamplerSettings(harmonize=0)
    assert torch.equal(run_pipeline(ckpt, (8, 8, 8), 1, 3, settings, seed=2),
                       run_pipeline(before, (8, 8, 8), 1, 3, settings, seed=2))
    capsys.readouterr()
    assert main(["info", str(old)]) == 0
    out = capsys.readouterr().out
    assert "symmetry: none declared" in out and "untrained planes" not in out


def test_an_old_one_plane_model_still_samples_with_a_warning(tmp_path, capsys):
    from micro3d_gui.core.diffusion.unet import preset_config
    from micro3d_gui.core.train_config import TrainConfig
    from micro3d_gui.core.training import Trainer

    rng = np.random.default_rng(0)
    data = PlaneDataset({"xy": [rng.integers(0, 2, (16, 16), dtype=np.uint8)]}, 2)
    trainer = Trainer(data, preset_config("tiny", 1), TrainConfig(steps=1, batch_size=2,
                                                                  crop=16))
    trainer.train()
    state = {k: v for k, v in trainer.state().items() if k != "symmetry"}
    save_checkpoint(state, tmp_path / "old.pt")
    assert main(["info", str(tmp_path / "old.pt")]) == 0
    assert "untrained planes: xz, yz" in capsys.readouterr().out
    assert main(["sample", str(tmp_path / "old.pt"), "--out", str(tmp_path / "v.tif"),
                 *SAMPLE, "--no-check"]) == 0
    err = capsys.readouterr().err
    assert "trained without xz or yz micrographs" in err and "--isotropic" in err


def test_a_damaged_declaration_in_a_model_file_is_refused(lamella_dirs, tmp_path):
    from micro3d_gui.errors import CheckpointError

    model = tmp_path / "m.pt"
    assert main(["train", "--xy", str(lamella_dirs["xy"]), "--isotropic", "--out", str(model),
                 *TINY, "--steps", "1", "--no-fidelity"]) == 0
    ckpt = torch.load(model, weights_only=True)
    ckpt["symmetry"] = {"like": {"xz": "zz"}, "isotropic": True}
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="bad.pt: its plane symmetry"):
        load_checkpoint(tmp_path / "bad.pt")


def test_the_projects_micrographs_stand_in_as_the_model_declares(lamella_dirs, tmp_path):
    from micro3d_gui.metrics.checked_sample import PROJECT_MICROGRAPHS, check_sampled
    from micro3d_gui.preprocess.dataset import load_labelled_planes
    from micro3d_gui.preprocess.synthetic import lamellae

    model = tmp_path / "m.pt"
    assert main(["train", "--xy", str(lamella_dirs["xy"]), "--xz", str(lamella_dirs["xz"]),
                 "--like", "yz=xz", "--out", str(model), *TINY, "--steps", "1",
                 "--no-fidelity"]) == 0
    ckpt = load_checkpoint(model)
    planes = load_labelled_planes({p: lamella_dirs[p] for p in ("xy", "xz")})
    vols = lamellae((16, 16, 32), axis=2, seed=1)[None]
    report = check_sampled(vols, ckpt, planes.images, planes.num_phases)
    assert report["reference"] == PROJECT_MICROGRAPHS
    assert set(report["planes"]) == {"xy", "xz", "yz"}
    # yz is judged against the xz micrographs: the same numbers as a reference giving them
    from micro3d_gui.core.reference import reference_images
    from micro3d_gui.metrics.selfcheck import self_check

    ref = reference_images(planes.images)
    direct = self_check(vols, {**ref, "yz": ref["xz"]}, 2)
    assert report["planes"]["yz"] == direct["planes"]["yz"]


def test_the_benchmark_declares_through_the_same_core_path():
    """benchmarks/time_to_quality.py --planes xy refuses as micro3d train does, before any
    training (the declared runs themselves are benchmarks, run by hand)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    res = subprocess.run([sys.executable, str(root / "benchmarks" / "time_to_quality.py"),
                          "--materials", "fibres", "--planes", "xy", "--budgets", "0.01"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "fibres: no xz or yz micrographs" in res.stderr and "--isotropic" in res.stderr

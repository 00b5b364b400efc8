"""Training input has one check (prepare_trainer) and one definition of its choices: the
CLI and the app offer the same presets and devices, and a resume names the options it
ignores the same way for both."""
from pathlib import Path

import numpy as np
import pytest

import micro3d_gui
from micro3d_gui.cli.parser import build_parser
from micro3d_gui.core.device import DEVICES
from micro3d_gui.core.diffusion.unet import PRESETS
from micro3d_gui.core.plane_dataset import PlaneDataset
from micro3d_gui.core.train_config import CROP_MULTIPLE, PRESET_NAMES
from micro3d_gui.core.training import prepare_trainer
from micro3d_gui.errors import DatasetError


PACKAGE = Path(micro3d_gui.__file__).parent


def test_the_presets_and_the_crop_multiple_come_from_the_networks():
    assert PRESET_NAMES[0] == "auto" and set(PRESET_NAMES[1:]) == set(PRESETS)
    assert all(CROP_MULTIPLE % cfg.size_multiple == 0 for cfg in PRESETS.values())


def test_the_cli_offers_the_presets_and_names_the_devices():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    train = sub.choices["train"]
    preset = next(a for a in train._actions if a.dest == "preset")
    device = next(a for a in train._actions if a.dest == "device")
    assert tuple(preset.choices) == PRESET_NAMES
    assert all(d in device.help for d in DEVICES)


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    images = {p: [(rng.random((40, 40)) > 0.5).astype(np.uint8) for _ in range(4)]
              for p in ("xy", "xz")}
    trainer, ignored = prepare_trainer(PlaneDataset(images, 2), "tiny", "cpu", steps=1,
                                       batch_size=2, crop=16, checkpoint_every=0)
    assert ignored == []
    trainer.train()
    return images, trainer.state()


def test_a_resume_names_the_given_options_that_differ_from_the_models(trained):
    images, ckpt = trained
    data = PlaneDataset(images, 2)
    # the model's own values, and steps, are not ignored options
    _, ignored = prepare_trainer(data, "tiny", "cpu", ckpt, steps=2, batch_size=2, crop=16,
                                 seed=0, checkpoint_every=0)
    assert ignored == []
    resumed, ignored = prepare_trainer(data, "small", "cpu", ckpt, steps=2, crop=24,
                                       batch_size=2, lr=0.5, seed=0)
    assert ignored == ["crop", "lr", "preset"]  # in the order given, the preset last
    assert (resumed.config.crop, resumed.config.lr) == (16, ckpt["train_config"]["lr"])
    assert resumed.model_config.preset == "tiny"
    _, ignored = prepare_trainer(data, "auto", "cpu", ckpt, steps=2)
    assert ignored == []  # auto is no choice of network


def test_a_resumed_models_crop_is_checked_against_the_images_naming_the_file(trained):
    images, ckpt = trained
    small = {p: [im[:12, :12] for im in ims] for p, ims in images.items()}
    origins = {p: [f"{p}_{i}.png" for i in range(len(ims))] for p, ims in small.items()}
    with pytest.raises(DatasetError) as err:
        prepare_trainer(PlaneDataset(small, 2), "tiny", "cpu", ckpt, steps=2, origins=origins)
    assert str(err.value).startswith("xy_0.png: image is 12x12 px, smaller than the 16 px "
                                     "training crop")
    assert "the model to resume trains on 16 px crops" in str(err.value)


def test_a_new_runs_crop_must_be_a_multiple_of_the_networks_stride(trained):
    images, _ = trained
    with pytest.raises(ValueError, match=r"the crop \(20 px\) must be a multiple of 8 for "
                                         r"the tiny preset"):
        prepare_trainer(PlaneDataset(images, 2), "tiny", "cpu", steps=1, crop=20)


def test_demo_trains_its_recipe_as_train_does(tmp_path, capsys):
    from micro3d_gui.cli import main
    from micro3d_gui.cli.demo import DEMO_TRAINING
    from micro3d_gui.core.checkpoint import load_checkpoint

    assert main(["demo", "--train", "--steps", "2", "--size", "8", "--out", str(tmp_path),
                 "--device", "cpu", "--threads", "1"]) == 0
    ckpt = load_checkpoint(tmp_path / "model.pt")
    assert ckpt["step"] == 2 and ckpt["model_config"]["preset"] == DEMO_TRAINING["preset"]
    assert (ckpt["crop"], ckpt["train_config"]["batch_size"]) == (DEMO_TRAINING["crop"],
                                                                  DEMO_TRAINING["batch_size"])
    assert sorted(p.name for p in (tmp_path / "micrographs").iterdir()) == ["xy", "xz", "yz"]
    out = capsys.readouterr().out
    assert f"model saved to {tmp_path / 'model.pt'} (step 2" in out
    assert "wrote" in out and "truth    : phase fractions" in out


def test_the_apps_default_training_is_the_clis_with_no_options():
    """The Train panel's defaults and ``micro3d train`` with only planes and --out build the
    same recipe (the faces restate no training default)."""
    from micro3d_gui.cli.train import TRAIN_OPTIONS
    from micro3d_gui.session.training import TrainSettings

    rng = np.random.default_rng(1)
    data = PlaneDataset({p: [(rng.random((72, 72)) > 0.5).astype(np.uint8)] for p in
                         ("xy", "xz", "yz")}, 2)
    args = build_parser().parse_args(["train", "--xy", "x", "--out", "m.pt"])
    cli, _ = prepare_trainer(data, args.preset, "cpu",
                             **{f: getattr(args, name) for name, f in TRAIN_OPTIONS.items()})
    app_settings = TrainSettings()
    app, _ = prepare_trainer(data, app_settings.preset, "cpu", **app_settings.overrides())
    assert app.config == cli.config
    assert app.model_config == cli.model_config

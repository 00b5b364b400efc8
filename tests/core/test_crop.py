"""The training crop rule (core.crop.training_crop) and crops drawn fairly by area."""
from pathlib import Path

import numpy as np
import pytest
import torch

from micro3d_gui.core.crop import MIN_AUTO_CROP, MIN_PLANE_CROPS, training_crop
from micro3d_gui.core.plane_dataset import PlaneDataset
from micro3d_gui.core.training import prepare_trainer
from micro3d_gui.errors import DatasetError


def shapes(**planes):
    return {p: [tuple(s) for s in ss] for p, ss in planes.items()}


def test_the_recipes_crop_when_the_micrographs_hold_it():
    choice = training_crop(shapes(xy=[(64, 80)] * 4, xz=[(512, 512)]), 64, 8)
    assert (choice.crop, choice.note) == (64, None)


def test_62_px_micrographs_get_the_largest_multiple_of_the_stride_with_a_note():
    names = {"xy": [Path("/data/b.png"), Path("/data/a.png"), Path("/data/c.png")]}
    choice = training_crop(shapes(xy=[(70, 90), (62, 64), (70, 90)]), 64, 8, names=names)
    assert choice.crop == 56
    assert choice.note == "crop 56 px: the smallest micrograph, a.png, is 62 px"


def test_a_plane_too_small_for_four_crops_shrinks_the_crop_and_says_so():
    # one 100 x 100 micrograph: 10,000 px² hold 2.4 crops of 64 px, 4 of 48 px
    choice = training_crop(shapes(xy=[(100, 100)], xz=[(512, 512)]), 64, 8)
    assert choice.crop == 48 and MIN_PLANE_CROPS * 48 ** 2 <= 100 * 100
    assert "the xy micrographs cover 10,000 px²" in choice.note
    assert "2.4 of the recipe's 64 px" in choice.note


def test_micrographs_below_the_minimum_are_refused_naming_it():
    names = {"xy": ["/data/tiny.png"]}
    with pytest.raises(DatasetError) as err:
        training_crop(shapes(xy=[(30, 40)] * 8), 64, 8, names=names)
    msg = str(err.value)
    assert msg.startswith("/data/tiny.png: image is 30x40 px")
    assert f"at least {MIN_AUTO_CROP} px on a side" in msg and "24 px fits" in msg


def test_a_plane_too_small_even_for_the_smallest_crop_is_refused_with_its_area():
    with pytest.raises(DatasetError) as err:
        training_crop(shapes(xy=[(512, 512)], yz=[(40, 60)]), 64, 8)
    assert str(err.value) == (
        "yz: its micrographs cover 2,400 px², less than the 4,096 px² that 4 crops of 32 px "
        "(the smallest automatic training crop) need; add yz micrographs (or set a smaller "
        "crop yourself: 24 px fits these)")


def test_a_given_crop_is_checked_against_each_image_and_each_planes_area():
    assert training_crop(shapes(xy=[(40, 40)] * 8), 64, 8, crop=16).crop == 16
    with pytest.raises(DatasetError, match=r"x\.png: image is 40x40 px, smaller than the 48"):
        training_crop(shapes(xy=[(40, 40)]), 64, 8, crop=48, names={"xy": ["x.png"]})
    with pytest.raises(DatasetError) as err:
        training_crop(shapes(xy=[(512, 512)], yz=[(40, 70)]), 64, 8, crop=32)
    assert str(err.value).startswith(
        "yz: its 1 micrograph covers 2,800 px², room for only 2.7 crops of 32 px; a plane "
        "needs at least 4 crops' area (4,096 px², e.g. one 64x64 px micrograph)")
    assert "use --crop 24" in str(err.value)


def test_prepare_trainer_fits_the_crop_and_keeps_a_resumed_models_crop():
    rng = np.random.default_rng(0)
    images = {p: [(rng.random((62, 62)) > 0.5).astype(np.uint8) for _ in range(4)]
              for p in ("xy", "xz")}
    data = PlaneDataset(images, 2)
    trainer, _ = prepare_trainer(data, "tiny", "cpu", steps=1, batch_size=2,
                                 checkpoint_every=0,
                                 origins={p: [f"{p}_{i}.png" for i in range(4)]
                                          for p in images})
    assert trainer.config.crop == 56
    assert trainer.notes == ["crop 56 px: the smallest micrograph, xy_0.png, is 62 px"]
    trainer.train()
    ckpt = trainer.state()
    bigger = PlaneDataset({p: [np.pad(im, 20) for im in ims] for p, ims in images.items()}, 2)
    resumed, _ = prepare_trainer(bigger, "tiny", "cpu", ckpt, steps=2)
    assert resumed.config.crop == 56 and resumed.notes == []


def test_crops_are_drawn_in_proportion_to_the_windows_each_image_holds():
    # phase 1 fills a 32 x 32 image (17² windows of 16 px), phase 0 a 24 x 24 one (9²)
    data = PlaneDataset({"xy": [np.ones((32, 32), np.uint8), np.zeros((24, 24), np.uint8)]},
                        2)
    gen = torch.Generator().manual_seed(0)
    x0, _ = data.batch(4000, 16, 0.0, gen)
    from_small = float((x0[:, 0].mean(dim=(-2, -1)) < 0).float().mean())
    assert from_small == pytest.approx(81 / (81 + 289), abs=0.03)  # uniform would give 0.5


def test_one_large_micrograph_gives_crops_from_all_over_it():
    # one 512 x 512 micrograph, sparse (20 % phase 1) above the middle, dense (80 %) below
    rng = np.random.default_rng(0)
    im = (rng.random((512, 512)) < np.where(np.arange(512) < 256, 0.2, 0.8)[:, None])
    data = PlaneDataset({"xz": [im.astype(np.uint8)]}, 2)
    x0, labels = data.batch(64, 64, 0.0, torch.Generator().manual_seed(1))
    assert x0.shape == (64, 1, 64, 64)
    assert len({tuple(x.flatten().tolist()) for x in x0}) == 64  # 64 different windows
    ones = ((x0[:, 0] + 1) / 2).mean(dim=(-2, -1))  # model space: phase 1 is +1
    assert (ones < 0.3).any() and (ones > 0.7).any()  # from the top and from the bottom

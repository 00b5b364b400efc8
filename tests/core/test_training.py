from dataclasses import replace

import numpy as np
import pytest
import torch

from micro3d_gui.core.checkpoint import (
    load_checkpoint, model_from_checkpoint, reference_micrographs, save_checkpoint,
)
from micro3d_gui.core.reference import reference_images
from micro3d_gui.core.diffusion.unet import preset_config
from micro3d_gui.core.planes import NULL_LABEL, PLANE_LABELS
from micro3d_gui.core.planes import volume_plane_images
from micro3d_gui.preprocess.synthetic import lamellae
from micro3d_gui.core.plane_dataset import PlaneDataset
from micro3d_gui.core.train_config import TrainConfig
from micro3d_gui.core.training import Trainer, crop_means
from micro3d_gui.errors import CheckpointError, OutputError


@pytest.fixture(scope="module")
def data():
    return PlaneDataset(volume_plane_images(lamellae((16, 24, 32), seed=0), step=3), 2)


def make_trainer(data, steps, batch_size=4):
    cfg = TrainConfig(steps=steps, batch_size=batch_size, crop=16, seed=11, checkpoint_every=0)
    return Trainer(data, preset_config("tiny", 1), cfg)


def test_batches_are_flipped_crops_with_plane_labels():
    # each plane's single image is distinct, and transposes are never produced
    rng = np.random.default_rng(0)
    images = {"xy": [rng.integers(0, 2, (20, 24))], "xz": [rng.integers(0, 2, (18, 30))],
              "yz": [rng.integers(0, 2, (17, 17))]}
    ds = PlaneDataset(images, 2)
    gen = torch.Generator().manual_seed(0)
    x, labels = ds.batch(400, 8, 0.1, gen)
    assert x.shape == (400, 1, 8, 8) and set(torch.unique(x).tolist()) <= {-1.0, 1.0}
    drop = labels == NULL_LABEL
    assert 0.05 < drop.float().mean() < 0.15
    for xi, li in zip(x[~drop], labels[~drop]):
        plane = {v: k for k, v in PLANE_LABELS.items()}[int(li)]
        im = torch.from_numpy(images[plane][0] * 2.0 - 1)
        windows = im.unfold(0, 8, 1).unfold(1, 8, 1)  # every 8x8 crop
        variants = [xi[0], xi[0].flip(0), xi[0].flip(1), xi[0].flip(0, 1)]
        assert any((windows == v).all(-1).all(-1).any() for v in variants)


def test_the_fraction_condition_is_each_crops_mean_or_unknown_as_often_as_the_label_drop():
    gen = torch.Generator().manual_seed(0)
    x0 = (torch.rand(2000, 3, 8, 8, generator=gen) < 0.3).float() * 2 - 1
    on = preset_config("tiny", 3)
    means = crop_means(x0, 0.1, gen, on)
    known = ~torch.isnan(means).any(dim=1)
    assert torch.isnan(means[~known]).all()  # a dropped row is unknown in every channel
    assert 0.08 < 1 - known.float().mean() < 0.12
    assert torch.allclose(means[known], x0[known].mean(dim=(-2, -1)))
    state = gen.get_state()
    off = crop_means(x0, 0.1, gen, replace(on, fraction_conditioning=False))
    assert torch.isnan(off).all() and torch.equal(gen.get_state(), state)  # no draw


def test_summary_reports_per_plane_fractions(data):
    s = data.summary()
    assert set(s) == {"xy", "xz", "yz"}
    assert s["yz"]["images"] == len(data.images["yz"])
    assert sum(s["xy"]["volume_fractions"]) == pytest.approx(1.0)
    assert "crop_mean_spread" not in s["xy"]


def test_summary_with_a_crop_gives_the_spread_of_crop_means_per_plane():
    # stripes 4 px wide: every 8 px crop is half each phase (mean 0, no spread); uniform
    # images of phase 0 and 1 in turn: crop means -1 and +1, spread 1 (std, ddof 1)
    stripes = np.tile((np.arange(16) // 4) % 2, (16, 1))
    uniform = [np.full((16, 16), i % 2) for i in range(4)]
    d = PlaneDataset({"xy": [stripes, stripes.T], "yz": uniform}, 2)
    s = d.summary(crop=8)
    assert s["xy"]["crop_mean_spread"] == pytest.approx([0.0], abs=1e-6)
    n = 4 * 4  # 4 images of 4 crops, half at -1 and half at +1
    assert s["yz"]["crop_mean_spread"] == pytest.approx([np.sqrt(n / (n - 1))])
    assert "xz" not in s


def test_loss_falls_and_checkpoint_opens_with_weights_only(data, tmp_path):
    tr = make_trainer(data, 60, batch_size=8)
    seen = []
    assert tr.train(lambda p: seen.append(p) and False, checkpoint_path=tmp_path / "m.pt")
    assert [p.step for p in seen] == list(range(1, 61))
    assert seen[-1].eta_s == 0 and seen[-1].steps_per_s > 0
    assert np.mean(tr.losses[-15:]) < np.mean(tr.losses[:15])
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    assert raw["step"] == 60 and raw["num_phases"] == 2
    assert raw["model_config"]["preset"] == "tiny" and raw["crop"] == 16
    assert raw["data_summary"]["xz"]["images"] == len(data.images["xz"])
    model = model_from_checkpoint(load_checkpoint(tmp_path / "m.pt"))
    for k, v in model.state_dict().items():
        assert torch.equal(v, tr.ema.state_dict()[k])


def test_resume_matches_an_uninterrupted_run(data, tmp_path):
    straight = make_trainer(data, 8)
    straight.train()

    first = make_trainer(data, 8)
    first.train(lambda p: p.step == 3, checkpoint_path=tmp_path / "half.pt")
    assert first.step == 3
    resumed = Trainer.resume(load_checkpoint(tmp_path / "half.pt"), data)
    assert resumed.train()
    assert resumed.step == 8
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    for a, b in zip(straight.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b)
    assert straight.losses == resumed.losses


def test_checkpoint_write_is_atomic(tmp_path, data):
    path = tmp_path / "m.pt"
    save_checkpoint({**make_trainer(data, 1).state(), "step": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    # any failure mid-write is the error the rescue answers, naming the file
    with pytest.raises(OutputError, match="m.pt: could not be written"):
        save_checkpoint({"step": 2, "bad": Unpicklable()}, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp file left


def test_checkpoint_keeps_the_self_check_micrographs(data, tmp_path):
    path = tmp_path / "m.pt"
    make_trainer(data, 1).save(path)
    raw = torch.load(path, weights_only=True)  # plain tensors in a table: loads safely
    want = reference_images(data.images)
    assert set(raw["reference"]) == set(want) == {"xy", "xz", "yz"}
    for plane, images in want.items():
        stored = raw["reference"][plane]
        assert all(t.dtype == torch.uint8 and t.ndim == 2 for t in stored)
        assert [t.numpy().tolist() for t in stored] == [im.tolist() for im in images]
    kept = reference_micrographs(load_checkpoint(path))
    for plane, images in want.items():
        for a, b in zip(kept[plane], images):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == np.uint8

    # a model from before the self-check still loads, with no micrographs to check against
    old = {k: v for k, v in raw.items() if k != "reference"}
    save_checkpoint(old, tmp_path / "old.pt")
    assert reference_micrographs(load_checkpoint(tmp_path / "old.pt")) is None

    for name, change, message in (
            ("label.pt", lambda r: r["xz"][0].fill_(2), "xz image 0 holds label 2, but the "
             "model has 2 phases"),
            ("float.pt", lambda r: r["xy"].__setitem__(1, torch.zeros(4, 4)), "xy image 1 is "
             "torch.float32 (4, 4), not a 2D uint8 label image"),
            ("plane.pt", lambda r: r.update(zx=[]), "expected a table of the planes"),
            ("empty.pt", lambda r: r.update(yz=[]), "yz holds no list of images")):
        bad = torch.load(path, weights_only=True)
        change(bad["reference"])
        save_checkpoint(bad, tmp_path / name)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(tmp_path / name)
        assert f"{name}: its self-check micrographs ('reference') are damaged" in str(err.value)
        assert message in str(err.value)


def test_bad_checkpoint_files_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such model file"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a Micro3D model"):
        load_checkpoint(tmp_path / "other.pt")

"""The sampling-time estimate: its closed form, and a real probe of a real model."""
import math

import numpy as np
import pytest

from micro3d_gui import estimate
from micro3d_gui.core.diffusion.settings import SamplerSettings
from micro3d_gui.estimate import (PROBE_SIDES, about, pixel_seconds, probe_call,
                                  probe_speed, sampling_seconds)

#: One figure at every side: a flat cost per pixel.
FLAT = {side: 1e-6 for side in PROBE_SIDES}


def test_sampling_seconds_counts_network_calls_over_all_voxels():
    # 50 steps x (n_h + 1 = 2) calls x 2 volumes x 8*16*32 voxels x 1e-6 s
    calls = SamplerSettings(harmonize=1, harmonize_fraction=1.0).network_calls(50)
    assert sampling_seconds(FLAT, (8, 16, 32), 2, calls) == pytest.approx(
        50 * 2 * 2 * 8 * 16 * 32 * 1e-6)
    # Guidance w != 1 batches the unconditional call too: twice the work; harmonizing
    # only the last 60 % of 25 steps at n_h = 3: 25 + 15 * 3 = 70 calls.
    guided = SamplerSettings(harmonize=0, guidance=2.0).network_calls(10)
    assert sampling_seconds(FLAT, (8, 8, 8), 1, guided) == pytest.approx(
        2 * sampling_seconds(FLAT, (8, 8, 8), 1, 10))
    late = SamplerSettings(harmonize=3, harmonize_fraction=0.6, harmonize_late=True)
    assert sampling_seconds({64: 1.0}, (1, 1, 1), 1, late.network_calls(25)) == 70


def test_the_cost_per_pixel_follows_the_slice_side():
    speed = {64: 4e-6, 256: 1e-6}
    assert pixel_seconds(speed, 64 * 64) == 4e-6 and pixel_seconds(speed, 256 * 256) == 1e-6
    assert pixel_seconds(speed, 16 * 16) == 4e-6  # outside the timed sides: the nearest
    assert pixel_seconds(speed, 512 * 512) == 1e-6
    assert pixel_seconds(speed, 128 * 128) == pytest.approx(2.5e-6)  # halfway in log side
    # each plane's calls at its own slices: a 64 x 256 x 256 box has one plane of 256^2
    # slices and two of 64 x 256 (side 128)
    box = (64, 256, 256)
    assert sampling_seconds(speed, box, 1, 3) == pytest.approx(
        64 * 256 * 256 * (1e-6 + 2 * 2.5e-6))


def test_about_rounds_for_a_person():
    assert about(31) == "about 30 s" and about(2) == "about 5 s"
    assert about(150) == "about 2 min" and about(3 * 3600) == "about 3.0 h"


@pytest.fixture
def tiny_model(tmp_path):
    """A saved tiny network (one training step), as a checkpoint dict."""
    from micro3d_gui.core.checkpoint import load_checkpoint
    from micro3d_gui.core.diffusion.unet import preset_config
    from micro3d_gui.core.plane_dataset import PlaneDataset
    from micro3d_gui.core.train_config import TrainConfig
    from micro3d_gui.core.training import Trainer

    data = PlaneDataset({"xy": [np.eye(16, dtype=np.uint8)]}, 2)
    Trainer(data, preset_config("tiny", 1), TrainConfig(steps=1, crop=16)).save(tmp_path / "m.pt")
    return load_checkpoint(tmp_path / "m.pt")


def test_probe_times_a_real_model(tiny_model, monkeypatch):
    speed = probe_speed(tiny_model)
    assert set(speed) == set(PROBE_SIDES)  # a small network: every side timed
    assert all(math.isfinite(v) and 0 < v < 1e-2 for v in speed.values())
    # where the small side's figure puts a large side's call over the limit, it is skipped
    monkeypatch.setattr(estimate, "PROBE_CALL_LIMIT_S", 0.0)
    assert set(probe_speed(tiny_model)) == {PROBE_SIDES[0]}


def test_a_quick_probe_call_is_timed_again_with_more_slices(tiny_model, monkeypatch):
    """A cheap network's call is dominated by its fixed cost: the probe doubles the slices
    until a call takes PROBE_MIN_CALL_S, within PROBE_MAX_PIXELS."""
    import torch

    from micro3d_gui.core.checkpoint import model_from_checkpoint
    from micro3d_gui.core.slice_workers import SliceWorkers

    model = model_from_checkpoint(tiny_model, "cpu")
    cpu = torch.device("cpu")
    monkeypatch.setattr(estimate, "PROBE_MAX_PIXELS", 20 * 16 * 16)
    with torch.inference_mode(), SliceWorkers(1) as workers:
        monkeypatch.setattr(estimate, "PROBE_MIN_CALL_S", 0.0)
        seconds, slices = probe_call(model, workers, (2, 1, 16, 16), cpu)
        assert slices == 2 and 0 < seconds < 1e-2
        monkeypatch.setattr(estimate, "PROBE_MIN_CALL_S", 1e9)  # never reached
        assert probe_call(model, workers, (2, 1, 16, 16), cpu)[1] == 16

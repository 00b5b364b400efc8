"""The sampling-time estimate: its closed form, and a real probe of a real model."""
import math

import numpy as np
import pytest

from micro3d_gui.core.diffusion.settings import SamplerSettings
from micro3d_gui.estimate import about, probe_seconds_per_voxel, sampling_seconds


def test_sampling_seconds_counts_network_calls_over_all_voxels():
    # 50 steps x (n_h + 1 = 2) calls x 2 volumes x 8*16*32 voxels x 1e-6 s
    calls = SamplerSettings(harmonize=1, harmonize_fraction=1.0).network_calls(50)
    assert sampling_seconds(1e-6, (8, 16, 32), 2, calls) == pytest.approx(
        50 * 2 * 2 * 8 * 16 * 32 * 1e-6)
    # Guidance w != 1 batches the unconditional call too: twice the work; harmonizing
    # only the last 60 % of 25 steps at n_h = 3: 25 + 15 * 3 = 70 calls.
    guided = SamplerSettings(harmonize=0, guidance=2.0).network_calls(10)
    assert sampling_seconds(1e-6, (8, 8, 8), 1, guided) == pytest.approx(
        2 * sampling_seconds(1e-6, (8, 8, 8), 1, 10))
    late = SamplerSettings(harmonize=3, harmonize_fraction=0.6, harmonize_late=True)
    assert sampling_seconds(1.0, (1, 1, 1), 1, late.network_calls(25)) == 70


def test_about_rounds_for_a_person():
    assert about(31) == "about 30 s" and about(2) == "about 5 s"
    assert about(150) == "about 2 min" and about(3 * 3600) == "about 3.0 h"


def test_probe_times_a_real_model(tmp_path):
    from micro3d_gui.core.checkpoint import load_checkpoint
    from micro3d_gui.core.diffusion.unet import preset_config
    from micro3d_gui.core.plane_dataset import PlaneDataset
    from micro3d_gui.core.train_config import TrainConfig
    from micro3d_gui.core.training import Trainer

    data = PlaneDataset({"xy": [np.eye(16, dtype=np.uint8)]}, 2)
    Trainer(data, preset_config("tiny", 1), TrainConfig(steps=1, crop=16)).save(tmp_path / "m.pt")
    per_voxel = probe_seconds_per_voxel(load_checkpoint(tmp_path / "m.pt"))
    assert math.isfinite(per_voxel) and 0 < per_voxel < 1e-2

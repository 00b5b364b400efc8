"""The physics yardstick: S2 and lineal path against their floor, relative diffusivity
against the real sub-volumes' spread, on volumes whose answer is known."""
import numpy as np
import pytest

from micro3d_gui.io.volume import read_volume
from micro3d_gui.metrics.compare import corner_cubes, random_sub_volumes
from micro3d_gui.metrics.yardstick import (YardstickSettings, diffusivity_text, judge,
                                           ratio_text, truth_floor)
from micro3d_gui.paths import demo_dir

EDGE = 32


@pytest.fixture(scope="module")
def separator():
    """The separator demo's truth (anisotropic, binary) and its floor at EDGE^3."""
    truth = read_volume(demo_dir("separator") / "truth.tif")
    settings = YardstickSettings(edge=EDGE, sub_volumes=8)
    return truth, settings, truth_floor(truth, 2, settings)


def test_real_sub_volumes_pass_and_speckle_fails_on_lineal_path(separator):
    truth, settings, floor = separator
    real = random_sub_volumes(truth, EDGE, 4, seed=7)  # not the floor's draws
    verdict = judge(real, truth, 2, floor, settings)
    assert verdict["passes"], verdict
    # 10 % of voxels flipped: fractions and S2 at r > 0 move little, straight runs break.
    rng = np.random.default_rng(0)
    speckled = [np.where(rng.random(v.shape) < 0.1, 1 - v, v) for v in real]
    bad = judge(speckled, truth, 2, floor, settings)
    assert not bad["passes"]
    assert max(bad["ratio"]["lineal_path"].values()) > 1.5
    assert max(bad["ratio"]["lineal_path"].values()) > \
        1.5 * max(verdict["ratio"]["lineal_path"].values())
    assert ratio_text(bad["ratio"]["s2"]).count("/") == 2


def test_corner_cubes_are_the_opposite_corners_of_a_large_box():
    big = np.arange(5 * 6 * 7).reshape(5, 6, 7)
    near, far = corner_cubes(big, 3)
    assert np.array_equal(near, big[:3, :3, :3]) and np.array_equal(far, big[2:, 3:, 4:])
    assert corner_cubes(near, 3)[0] is near  # a box of the edge: itself, once


def test_diffusivity_band_on_straight_channels():
    """Channels along z: the relative diffusivity along z is the channel fraction exactly
    (closed form) in every real sub-volume (sd 0, so the 5 % band applies) and 0 across;
    the same channels turned to run along x fail along z and x."""
    truth = np.zeros((16, 16, 16), dtype=np.uint8)
    truth[:, ::4, ::4] = 1  # 1/16 of the voxels, straight along z
    settings = YardstickSettings(edge=8, sub_volumes=3)
    floor = truth_floor(truth, 2, settings)
    along = floor["diffusivity"]["1"]
    assert along["z"]["mean"] == pytest.approx(1 / 16, rel=1e-3)
    assert along["z"]["sd"] == pytest.approx(0, abs=1e-6)
    assert along["x"]["mean"] == 0 and along["y"]["mean"] == 0
    same = judge([truth[:8, :8, :8]], truth, 2, floor, settings)
    assert same["diffusivity"]["1"]["z"]["ok"] and same["diffusivity"]["1"]["z"]["percolates"]
    assert not same["diffusivity"]["1"]["x"]["percolates"]  # no channel across: not judged
    turned = np.ascontiguousarray(truth[:8, :8, :8].transpose(2, 1, 0))
    off = judge([turned], truth, 2, floor, settings)
    assert not off["diffusivity"]["1"]["z"]["ok"]
    assert off["diffusivity"]["1"]["z"]["relative"] == pytest.approx(-1.0)
    assert "*" in diffusivity_text(off["diffusivity"]) and not off["passes"]

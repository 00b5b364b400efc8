"""Acceptance: a tiny model trained with the CLI on lamellae keeps their anisotropy in 3D.

Lamellae normal to x: xy and xz micrographs show stripes, yz micrographs are uniform. The
sampled volumes must change phase along x and (almost) never along y or z, with the
micrographs' volume fraction. Trains 800 steps (about 1.5 minutes on one CPU thread): the
fewest at which every training seed tried kept layers in every volume.

It runs on one torch thread: on a loaded machine (more runnable threads than cores) the
OpenMP workers of two threads spin at every barrier, which made this test run many times
its unloaded time and hit the timeout; one thread costs little unloaded, stays
deterministic, and is among the settings this test was tuned with, as is the sampling
recipe (``fine``: S = 50, n_h = 1 at every step, the default until 2026-12).

It samples with the default decoded-fraction anchor, which is off for the micrographs' own
fractions since issue 25 because of this very case. In a 32^3 box these lamellae hold about
eight layers, and each layer is 1/32 of the volume. The anchor forces every volume to the
micrographs' fraction to within a voxel count, and a volume whose layers do not add up to
it gets the extra voxels as a speckled region across the layers. On one CI-trained model
(docs/experiments/2026-12-04-decoded-anchor-lamellae.md) that happened in 5 of 12 volumes
with ``fine`` and 7 of 12 with ``fast``; without the anchor, in none (fractions 0.59-0.72
against 0.656).
"""
import numpy as np
import pytest
import tifffile

from micro3d_gui.cli import main
from micro3d_gui.preprocess.synthetic import lamellae
from micro3d_gui.metrics.anisotropy import transition_rate


@pytest.mark.slow
def test_cli_trained_tiny_model_keeps_lamellar_anisotropy(tmp_path, plane_writer, one_thread):
    truth = lamellae((64, 64, 64), axis=2, mean_thickness=4, seed=1)
    dirs = plane_writer(tmp_path / "micrographs", truth, step=2)
    model = tmp_path / "model.pt"
    assert main(["train", "--xy", str(dirs["xy"]), "--xz", str(dirs["xz"]),
                 "--yz", str(dirs["yz"]), "--out", str(model), "--preset", "tiny",
                 "--steps", "800", "--crop", "32", "--batch", "16", "--seed", "0",
                 "--device", "cpu", "--threads", "1"]) == 0
    out = tmp_path / "vol.tif"
    assert main(["sample", str(model), "--shape", "32", "32", "32", "--out", str(out),
                 "--count", "4", "--recipe", "fine", "--seed", "0",
                 "--device", "cpu", "--threads", "1"]) == 0
    truth_rate = transition_rate(truth)["x"]
    rates = []
    for i in range(4):
        vol = tifffile.imread(tmp_path / f"vol_{i:03d}.tif")
        rates.append(transition_rate(vol))
        # Layers must be there; a model this small may make them thicker than the truth's
        # (x rates of 0.065 to 0.39 seen; truth 0.27).
        assert rates[-1]["x"] > 0.15 * truth_rate, rates[-1]
        assert abs(vol.mean() - truth.mean()) < 0.1
    # Across the volumes, phase changes along y and z are rare (without the decoded anchor,
    # 12 volumes of a CI-trained model had at most 0.008 of the x rate).
    mean = {a: float(np.mean([r[a] for r in rates])) for a in "zyx"}
    assert mean["y"] < 0.1 * mean["x"] and mean["z"] < 0.1 * mean["x"], rates

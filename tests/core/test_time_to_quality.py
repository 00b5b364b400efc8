"""The default training recipe, end to end on one bundled material at a short budget.

``benchmarks/time_to_quality.py`` measures the full budgets (2-20 minutes) on every demo and
devdata material; this is the smallest run that shows the recipe learns a material's 3D
statistics from its micrographs: 400 steps (about a minute on CI's 2 cores; a step count
rather than a time, so that a loaded machine trains the same model), 32 px crops, then the
app's sampler on a 32^3 box, judged against the material's truth by the physics yardstick
(``metrics.yardstick``) with looser bounds than the benchmark's: S2 and lineal path within 3x
instead of 1.5x the floor of real sub-volumes, fractions within 5 points.
"""
import pytest

from micro3d_gui.core.recipe import get_recipe, sample
from micro3d_gui.core.plane_dataset import PlaneDataset
from micro3d_gui.core.training import prepare_trainer
from micro3d_gui.preprocess.dataset import load_labelled_planes
from micro3d_gui.io.volume import read_volume
from micro3d_gui.metrics.yardstick import YardstickSettings, judge, truth_floor
from micro3d_gui.paths import demo_dir

pytestmark = pytest.mark.slow
EDGE = 32


def test_a_short_default_run_learns_the_fibre_composite():
    d = demo_dir("fibres")
    planes = load_labelled_planes({p: [d / p] for p in ("xy", "xz", "yz")}, None, None, None)
    truth = read_volume(d / "truth.tif")
    trainer, _ = prepare_trainer(PlaneDataset(planes.images, planes.num_phases), "auto", "cpu",
                                 steps=400, crop=32)
    trainer.train()
    vols = sample(trainer.state(), get_recipe(), (EDGE,) * 3, 2, seed=0).numpy()
    settings = YardstickSettings(edge=EDGE)
    floor = truth_floor(truth, 2, settings, diffusivity=False)
    got = judge(list(vols), truth, 2, floor, settings)
    for measure, ratios in got["ratio"].items():
        for plane, ratio in ratios.items():
            assert ratio <= 3, (measure, plane, got)
    assert got["volume_fraction_error"] <= 0.05, got

"""A second pass where the self-check finds the phases broken up or running long
(:func:`micro3d_gui.metrics.checked_sample.sample_checked` with ``retry``), on the demo
models. Three steps leave the fibres speckled, their lineal path several times its floor and
short, on every machine: the volumes are sampled again with the planes in turn (the same
seed), the second pass's steps count on from the first's calls, and the volumes nearer the
floor are kept and handed on. Checked against micrographs three times finer than the
model's (every third pixel), any volume's phases run long: sampled again with the planes'
vote. The separator's ``fast`` volume is at the floor: no second pass."""
import json

import numpy as np
import pytest
import tifffile

from micro3d_gui.cli import main
from micro3d_gui.core.checkpoint import load_checkpoint, reference_micrographs
from micro3d_gui.core.recipe import get_recipe, sample, with_plane_vote, with_planes_in_turn
from micro3d_gui.metrics.checked_sample import run_checked, sample_checked, second_pass_recipes
from micro3d_gui.metrics.selfcheck import (BROKEN_UP, LONG_ADVICE, RUNS_LONG,
                                           connectivity_fault, second_pass_lines, self_check)
from micro3d_gui.paths import demo_model
from micro3d_gui.session.generation import GenerateSettings, sample_job

BOX = (24, 24, 24)
#: Too few steps: speckled volumes, their phases broken up.
SPECKLED = get_recipe("fast").replace(sampling_steps=3, harmonize=1)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_retry_recipes_are_the_planes_in_turn_and_the_planes_vote():
    fast, connected, separated = (get_recipe(n) for n in ("fast", "connected", "separated"))
    assert second_pass_recipes(fast) == {BROKEN_UP: connected, RUNS_LONG: separated}
    assert with_planes_in_turn(connected) is None  # already in turn
    assert second_pass_recipes(connected) == {RUNS_LONG: separated}
    assert second_pass_recipes(separated) == {
        BROKEN_UP: separated.replace(harmonize_planes="cycle")}
    assert second_pass_recipes(fast.replace(harmonize=0)) == {}  # nothing to take turns
    assert with_planes_in_turn(SPECKLED) == SPECKLED.replace(harmonize_planes="cycle")
    # the vote's structure, the first recipe's other settings
    assert with_plane_vote(fast.replace(guidance=2)) == separated.replace(guidance=2)
    assert separated.network_calls(load_checkpoint(demo_model("fibres"))) == 72


def run(ckpt, recipe, seed=0, micrographs=None):
    """sample_checked with the retries: (steps, volumes handed on, result, reports handed
    to on_retry)."""
    steps, handed, retried = [], [], []
    gen = sample_checked(ckpt, recipe, BOX, 1, seed=seed, retry=second_pass_recipes(recipe),
                         micrographs=micrographs, on_sampled=handed.append,
                         on_retry=retried.append)
    return steps, handed, run_checked(gen, steps.append), retried


def test_broken_up_volumes_are_sampled_again_and_the_nearer_kept():
    ckpt = load_checkpoint(demo_model("fibres"))
    steps, handed, result, retried = run(ckpt, SPECKLED)
    assert len(retried) == 1 and connectivity_fault(retried[0]) == BROKEN_UP
    calls = SPECKLED.network_calls(ckpt)
    done = [1, 3, 5]  # n_h 1 on the last 60 % of 3 steps: the last 2
    assert done[-1] == calls
    assert [(s.step, s.calls, s.total_calls) for s in steps] == (
        [(k + 1, c, calls) for k, c in enumerate(done)]
        + [(k + 1, calls + c, 2 * calls) for k, c in enumerate(done)])
    first = sample(ckpt, SPECKLED, BOX, 1, seed=0).numpy()
    second = sample(ckpt, with_planes_in_turn(SPECKLED), BOX, 1, seed=0).numpy()
    again = result.self_check["second_pass"]
    assert again["reason"] == retried[0]["verdict"] and again["fault"] == BROKEN_UP
    assert again["worst_ratio"]["first"] == retried[0]["worst"]["ratio"]
    ratios = again["worst_ratio"]
    kept = "second" if ratios["second"] < ratios["first"] else "first"
    assert again["kept"] == kept and result.self_check["worst"]["ratio"] == ratios[kept]
    np.testing.assert_array_equal(handed[0], first)  # saved before its check
    want = second if kept == "second" else first
    np.testing.assert_array_equal(result.volumes, want)
    assert len(handed) == (2 if kept == "second" else 1)
    np.testing.assert_array_equal(handed[-1], want)  # the kept volumes handed on last
    assert f"kept the {kept} pass's volumes" in second_pass_lines(result.self_check)[0]


def test_long_phases_are_sampled_again_with_the_planes_vote():
    ckpt = load_checkpoint(demo_model("fibres"))
    finer = {p: [im[::3, ::3] for im in ims] for p, ims in reference_micrographs(ckpt).items()}
    fast, separated = get_recipe("fast"), get_recipe("separated")
    steps, handed, result, retried = run(ckpt, fast, micrographs=finer)
    assert len(retried) == 1 and connectivity_fault(retried[0]) == RUNS_LONG
    assert retried[0]["verdict"].endswith(LONG_ADVICE)  # the recipe the second pass takes
    first, second = fast.network_calls(ckpt), separated.network_calls(ckpt)
    assert [s.step for s in steps] == [*range(1, 13), *range(1, 21)]
    assert steps[11].calls == first and steps[-1].calls == steps[-1].total_calls == first + second
    again = result.self_check["second_pass"]
    assert again["fault"] == RUNS_LONG and again["recipe"]["sampler"]["vote_steps"] == 14
    voted = sample(ckpt, separated, BOX, 1, seed=0).numpy()  # what the second pass made
    assert again["worst_ratio"]["second"] == self_check(voted, finer, 2)["worst"]["ratio"]
    np.testing.assert_array_equal(result.volumes,
                                  voted if again["kept"] == "second" else handed[0])
    assert "running longer than the micrographs'" in second_pass_lines(result.self_check)[0]


def test_volumes_at_the_floor_are_not_sampled_again():
    steps, handed, result, retried = run(load_checkpoint(demo_model("separator")),
                                         get_recipe("fast"))
    assert result.self_check["at_floor"] and not retried
    assert len(steps) == 12 and len(handed) == 1
    assert "second_pass" not in result.self_check and not second_pass_lines(result.self_check)


def test_micro3d_sample_samples_again_says_so_and_writes_the_kept_volume(tmp_path, capsys):
    out, report = tmp_path / "v.tif", tmp_path / "r.json"
    model = demo_model("fibres")
    argv = ["sample", str(model), "--shape", *map(str, BOX), "--out", str(out),
            "--sampling-steps", "3", "--harmonize", "1", "--seed", "0", "--device", "cpu",
            "--threads", "1", "--json", str(report)]
    assert main(argv) == 0
    printed = capsys.readouterr()
    check = json.loads(report.read_text())["self_check"]
    again = check["second_pass"]
    assert again["reason"] in printed.err and "sampling again" in printed.err
    assert again["recipe"]["sampler"]["harmonize_planes"] == "cycle"
    assert printed.out.splitlines()[-2] == second_pass_lines(check)[0]
    # the file holds the kept volumes, whose check the report gives
    kept = self_check(tifffile.imread(out)[None], reference_micrographs(load_checkpoint(model)),
                      2)
    assert kept["worst"]["ratio"] == pytest.approx(check["worst"]["ratio"])
    assert kept["worst"]["ratio"] == pytest.approx(again["worst_ratio"][again["kept"]])
    assert printed.out.count(f"wrote {out}") == (2 if again["kept"] == "second" else 1)
    # the app's worker (the session's sample_job) makes the same two passes and keeps the same
    app = GenerateSettings(model_path=str(model), shape=BOX, sampling_steps=3, harmonize=1,
                           seed=0, device="cpu")
    jobs = sample_job(app, "cpu", should_stop=lambda: False)
    try:
        while True:
            next(jobs)
    except StopIteration as stop:
        volumes, _, app_check = stop.value
    np.testing.assert_array_equal(volumes[0], tifffile.imread(out))
    assert app_check["second_pass"] == again and app_check["verdict"] == check["verdict"]

    assert main([*argv, "--no-resample"]) == 0  # the switch: the first volumes stay
    printed = capsys.readouterr()
    assert "second_pass" not in json.loads(report.read_text())["self_check"]
    assert "sampling again" not in printed.err and printed.out.count(f"wrote {out}") == 1

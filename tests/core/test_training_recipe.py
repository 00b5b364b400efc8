"""The training recipe: one definition (TrainConfig.for_preset), its learning-rate schedule
and EMA fitted to the run, training by time budget, and the fidelity reports."""
import math

import numpy as np
import pytest
import torch

from micro3d_gui.core.checkpoint import load_checkpoint
from micro3d_gui.core.diffusion.schedule import Schedule, ScheduleConfig
from micro3d_gui.core.planes import NULL_LABEL, PLANE_LABELS, volume_plane_images
from micro3d_gui.core.plane_dataset import PlaneDataset
from micro3d_gui.core.train_config import (DEFAULT_PRESET, TrainConfig, auto_preset,
                                          fitted_ema_decay, resolve_preset)
from micro3d_gui.core.training import PROBE_STEPS, REFIT_UNTIL, prepare_trainer
from micro3d_gui.core.encoding import encode
from micro3d_gui.metrics.fidelity import FidelityMonitor, FidelitySettings, describe
from micro3d_gui.preprocess.synthetic import lamellae


@pytest.fixture(scope="module")
def data():
    return PlaneDataset(volume_plane_images(lamellae((16, 24, 32), seed=0), step=3), 2)


def test_cosine_schedule_with_warmup_in_closed_form():
    cfg = TrainConfig(steps=1000, lr=2e-3, warmup_steps=100, lr_final=0.1)
    assert cfg.lr_at(0, 1000) == pytest.approx(2e-3 / 100)
    assert cfg.lr_at(99, 1000) == pytest.approx(2e-3)
    for step in (100, 400, 700, 999):
        p = (step - 100) / 900
        want = 2e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))
        assert cfg.lr_at(step, 1000) == pytest.approx(want)
    assert cfg.lr_at(999, 1000) == pytest.approx(2e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(
        math.pi * 899 / 900))))
    # a run shorter than five warm-ups warms up over its first fifth
    assert TrainConfig(steps=50).lr_at(9, 50) == pytest.approx(TrainConfig.lr)
    const = TrainConfig(steps=10, lr_schedule="constant")
    assert {const.lr_at(s, 10) for s in range(10)} == {TrainConfig.lr}


def test_ema_decay_fitted_to_the_run():
    assert fitted_ema_decay(1000) == pytest.approx(0.99)
    assert fitted_ema_decay(10_000) == pytest.approx(0.999)
    assert fitted_ema_decay(10**7) == pytest.approx(0.9999)
    assert TrainConfig(ema_decay=0.5).ema_at(1000) == 0.5


def test_one_recipe_per_preset_with_overrides():
    tiny = TrainConfig.for_preset("tiny")
    assert (tiny.lr, tiny.batch_size, tiny.crop) == (1e-3, 16, 64)
    assert tiny.steps is None and tiny.time_budget_s == 600
    assert TrainConfig.for_preset("paper").lr == 1e-4
    # None keeps the recipe's value; a step count replaces the time budget
    c = TrainConfig.for_preset("tiny", steps=50, batch_size=None, crop=32)
    assert (c.steps, c.time_budget_s, c.batch_size, c.crop) == (50, None, 16, 32)
    with pytest.raises(TypeError, match="unknown training options: batch"):
        TrainConfig.for_preset("tiny", batch=3)
    with pytest.raises(ValueError, match="unknown preset"):
        TrainConfig.for_preset("huge")
    for bad, field in ((dict(lr=-1.0), "lr"), (dict(lr=float("nan")), "lr"),
                       (dict(time_budget_s=0.0), "time_budget_s"), (dict(steps=0), "steps"),
                       (dict(batch_size=0), "batch_size")):
        with pytest.raises(ValueError, match=field):
            TrainConfig.for_preset("tiny", **bad)


def test_auto_preset_by_device():
    assert auto_preset("cpu") == "tiny"
    assert auto_preset(torch.device("cuda")) == "small"
    assert resolve_preset(DEFAULT_PRESET, "cpu") == "tiny"
    assert resolve_preset(DEFAULT_PRESET, torch.device("cuda")) == "small"
    assert resolve_preset("paper", "cpu") == "paper"  # a named preset stays


def test_time_budget_becomes_a_fixed_step_count(data, tmp_path):
    trainer, ignored = prepare_trainer(data, "tiny", "cpu", time_budget_s=1.5, batch_size=2,
                                       crop=16, seed=3, checkpoint_every=0)
    assert ignored == [] and trainer.config.steps is None
    totals = []
    assert trainer.train(lambda p: totals.append(p.total) and False, tmp_path / "m.pt")
    steps = trainer.config.steps
    assert steps >= PROBE_STEPS and trainer.step == steps and totals[-1] == steps
    # fitted after the probe and again as the steps done double, never after half the run
    # (but for a last cut at the budget, should the machine slow down later)
    changes = [i + 1 for i in range(1, len(totals)) if totals[i] != totals[i - 1]]
    doublings = {PROBE_STEPS * 2 ** k for k in range(20)}
    if changes and changes[-1] not in doublings and changes[-1] > PROBE_STEPS:
        assert totals[changes[-1] - 1] == changes[-1] == steps  # the cut: that step is the last
        changes = changes[:-1]
    assert changes and set(changes) <= doublings
    # (totals[c - 2]: the step count planned before the fit at step c)
    assert all(c == PROBE_STEPS or c <= REFIT_UNTIL * totals[c - 2] for c in changes)
    ckpt = load_checkpoint(tmp_path / "m.pt")
    assert ckpt["train_config"]["steps"] == steps and ckpt["train_seconds"] > 0
    # resumed, it continues that fixed schedule; its own recipe wins over new options
    resumed, ignored = prepare_trainer(data, "tiny", "cpu", ckpt, steps=steps + 2, crop=8,
                                       lr=0.5)
    assert ignored == ["crop", "lr"] and resumed.config.crop == 16
    assert resumed.config.steps == steps + 2 and resumed.step == steps


@pytest.mark.parametrize("probe_s, later_s", [(0.5, 0.25), (0.1, 1.0)])
def test_a_time_budget_is_refitted_when_the_speed_changes(data, probe_s, later_s):
    # a clock driven by the step count: the probe's steps take probe_s seconds, the rest
    # later_s (a load that passes, or one that starts). The run still fills its budget.
    budget = 60.0 * max(probe_s, later_s)
    trainer, _ = prepare_trainer(data, "tiny", "cpu", time_budget_s=budget, batch_size=2,
                                 crop=16, seed=1, checkpoint_every=0)
    trainer.clock = lambda: (min(trainer.step, PROBE_STEPS) * probe_s
                             + max(trainer.step - PROBE_STEPS, 0) * later_s)
    assert trainer.train()
    fixed_at_probe = PROBE_STEPS + int((budget - PROBE_STEPS * probe_s) * 0.95 / probe_s)
    assert trainer.config.steps != fixed_at_probe
    assert 0.85 * budget <= trainer.elapsed_s <= budget


def train_on_a_driven_clock(data, budget, step_end_s, report_s):
    """A time-budgeted run whose clock is driven: step n ends at ``step_end_s(n)`` seconds,
    plus ``report_s`` for every fidelity report made so far. Returns the trainer and the
    steps the reports were made at."""
    trainer, _ = prepare_trainer(data, "tiny", "cpu", time_budget_s=budget, batch_size=2,
                                 crop=16, seed=1, checkpoint_every=0)
    reports = []
    trainer.clock = lambda: step_end_s(trainer.step) + report_s * len(reports)

    def monitor(model):
        reports.append(trainer.step)
        return {"errors": {}, "floor": {}}

    assert trainer.train(monitor=monitor)
    return trainer, reports


def test_a_time_budget_leaves_room_for_the_fidelity_reports(data):
    # every step takes 0.5 s and every fidelity report 3 s, the final one included (at 5 %
    # of the time only, three reports of a 2-minute run overran it, as a real one did)
    budget = 120.0
    trainer, reports = train_on_a_driven_clock(data, budget, lambda n: 0.5 * n, 3.0)
    assert len(reports) >= 3 and reports[-1] == trainer.step
    assert 0.85 * budget <= trainer.elapsed_s <= budget


def test_a_time_budget_holds_when_the_machine_slows_after_the_count_is_fixed(data):
    # 0.5 s a step, then 1.5 s once a load arrives after the last fit (a 10-minute run
    # beside a test suite took 798 s): the run stops at the budget, on a final report
    budget, slow_from = 120.0, 130
    trainer, reports = train_on_a_driven_clock(
        data, budget, lambda n: 0.5 * n + max(0, n - slow_from), 1.0)
    assert trainer.step > slow_from and reports[-1] == trainer.step
    assert trainer.config.steps == trainer.step  # a resume does not train past it
    assert 0.9 * budget <= trainer.elapsed_s <= budget


def test_checkpoints_from_before_the_schedule_resume_at_a_constant_rate():
    # the train_config of a checkpoint written before the schedule (the bundled models of
    # 2026-11, tiny, 4,000 steps): no lr_schedule, warmup_steps, lr_final or time budget
    old = {"steps": 4000, "batch_size": 16, "crop": 32, "lr": 0.001, "cond_drop": 0.1,
           "ema_decay": 0.999, "seed": 0, "checkpoint_every": 500}
    cfg = TrainConfig.from_dict(old)
    assert cfg.lr_schedule == "constant" and cfg.warmup_steps == 0
    assert cfg.time_budget_s is None and cfg.steps == 4000 and cfg.ema_decay == 0.999
    assert all(cfg.lr_at(step, 4000) == 0.001 for step in (0, 100, 3999))


class PlaneOracle(torch.nn.Module):
    """An exact denoiser whose x0 is, for the k-th slice of a condition in the batch, the
    k-th of that condition's images ``[n, 1, H, W]``: its samples are real micrographs."""

    def __init__(self, images_by_label, schedule):
        super().__init__()
        self.config = type("Config", (), {"in_channels": 1})()
        self.images = images_by_label
        self.abar = torch.as_tensor(schedule.alphas_cumprod, dtype=torch.float32)

    def forward(self, x, t, c, means=None):
        self.means = means  # the fraction condition it was given (read by a test)
        seen = {}
        x0 = []
        for ci in c.tolist():
            k = seen[ci] = seen.get(ci, -1) + 1
            x0.append(self.images[ci][k % len(self.images[ci])])
        x0 = torch.stack(x0)
        a = self.abar[t].reshape(-1, 1, 1, 1)
        return (x - a.sqrt() * x0) / (1 - a).sqrt()


def test_fidelity_of_real_micrographs_is_at_the_floor_and_of_swapped_planes_is_not():
    # lamellae normal to x: stripes across xy and xz images, uniform yz images
    vol = lamellae((48, 48, 48), axis=2, mean_thickness=4, seed=2)
    images = volume_plane_images(vol)
    schedule = Schedule.from_config(ScheduleConfig())
    settings = FidelitySettings(slices=6, sampling_steps=20, margin=1.5)
    monitor = FidelityMonitor(images, 2, schedule, 16, settings)
    crops = {p: encode(np.stack([im[8:24, 8:24] for im in images[p][1::7]]), 2)
             for p in images}

    real = PlaneOracle({PLANE_LABELS[p]: crops[p] for p in crops} | {NULL_LABEL: crops["xy"]},
                       schedule)
    report = monitor(real)
    assert set(report["errors"]) == {"xy", "xz", "yz"}
    # each plane's slices are told fractions around that plane's micrographs' (binary:
    # 2 f - 1): their mean is it, and at the last, near noiseless step each slice's own
    told = real.means.reshape(3, settings.slices)
    for j, p in enumerate(("xy", "xz", "yz")):
        want = 2 * float(np.mean([im.mean() for im in images[p]])) - 1
        assert float(told[j].mean()) == pytest.approx(want, abs=1e-5)
    yz_own = crops["yz"][:settings.slices].mean(dim=(1, 2, 3))  # uniform slices: -1 or +1
    assert yz_own.std() > 0.5 and torch.allclose(
        told[2], yz_own - yz_own.mean() + told[2].mean(), atol=0.05)
    assert report["at_floor"], report
    real_xy = np.stack([im[8:24, 8:24] for im in images["xy"][1::7]][:6])
    assert report["fractions"]["xy"] == pytest.approx(
        [float((real_xy == k).mean()) for k in (0, 1)], abs=1e-4)

    swapped = {PLANE_LABELS["xy"]: crops["yz"], PLANE_LABELS["xz"]: crops["xz"],
               PLANE_LABELS["yz"]: crops["xy"], NULL_LABEL: crops["xy"]}
    bad = monitor(PlaneOracle(swapped, schedule))
    assert not bad["at_floor"]
    assert bad["errors"]["xy"] > 2 * report["errors"]["xy"]
    assert bad["errors"]["xz"] == pytest.approx(report["errors"]["xz"])
    # the lineal path beside S2, measured the same way (at_floor above needs both)
    assert set(report["lineal_path"]) == set(report["lineal_path_floor"]) == set(images)
    assert bad["lineal_path"]["xy"] > 2 * report["lineal_path"]["xy"]
    assert bad["lineal_path"]["xz"] == pytest.approx(report["lineal_path"]["xz"])
    assert "; lineal path: xy" in describe(report) and describe(report).endswith("at the floor")
    old = {k: report[k] for k in ("errors", "floor", "at_floor")}  # a report from before it
    assert describe(old).startswith("S2 error of 2D samples: xy") and "lineal" not in describe(old)


def test_trainer_reports_fidelity_within_its_share_and_keeps_it(data, tmp_path):
    trainer, _ = prepare_trainer(data, "tiny", "cpu", steps=PROBE_STEPS + 3, batch_size=2,
                                 crop=16, checkpoint_every=0)
    monitor = FidelityMonitor.for_trainer(trainer, FidelitySettings(slices=2,
                                                                    sampling_steps=4))
    seen = []
    trainer.train(lambda p: seen.append(p.fidelity) and False, tmp_path / "m.pt", monitor)
    reports = [r for r in seen if r is not None]
    assert reports and reports[-1]["step"] == trainer.step
    assert set(reports[-1]["floor"]) == {"xy", "xz", "yz"}
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    assert raw["fidelity"][-1]["errors"] == reports[-1]["errors"]
    assert np.isfinite(list(reports[-1]["errors"].values())).all()

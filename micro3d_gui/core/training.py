"""Training the plane-conditional denoiser on 2D micrographs (METHOD.md Sec. 1-2).

Each batch item: a plane chosen uniformly among those with images, an image of that plane
(in proportion to the crops it holds: one large micrograph counts as many small ones),
a random ``crop x crop`` window, random horizontal/vertical flips (never rotations or
transposes: they would mix the planes' anisotropy; only a material declared isotropic is
also transposed, :mod:`.symmetry`), the plane label replaced by null with
probability ``cond_drop``. Loss: mean |target - net(x_t, t, c)|^2, the target eps (the
paper's) or v, as the schedule's ``prediction`` says (:data:`DEFAULT_SCHEDULE`).

Every random draw comes from one ``torch.Generator`` whose state is checkpointed, so a
resumed run continues exactly as an uninterrupted one.
"""
from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import torch

from ..errors import DatasetError
from .checkpoint import save_checkpoint
from .crop import (CLI_CROP_ADVICE, CropChoice, check_image_sides, image_shapes,
                   training_crop)
from .device import enable_fast_matmul, to_device
from .distributed import SINGLE, Distributed
from .diffusion.schedule import Schedule, ScheduleConfig
from .diffusion.unet import UNet, UNetConfig, preset_config
from .memory import check_training_fits
from .plane_dataset import PlaneDataset
from .planes import NULL_LABEL, PLANE_LABELS
from .reference import reference_images
from .symmetry import Symmetry
from .train_config import DEFAULT_PRESET, DEFAULT_SCHEDULE, TrainConfig, resolve_preset


#: Steps timed before a time budget is turned into a step count (the first two are slow:
#: allocator and kernel warm-up, so they are not counted in the rate).
PROBE_STEPS = 12

#: After the probe the step count is fitted again whenever the steps done double (24, 48,
#: ...), at the speed since the last fit, while at most half the run is done: a probe slowed
#: by a passing load would fix the whole run at its speed
#: (docs/experiments/2026-12-02-bundled-models-retrained.md).
REFIT_UNTIL = 0.5

#: Most of the training time the fidelity reports may take (issue: <= 5 %).
FIDELITY_TIME_FRACTION = 0.05

#: Share of the time left at the last fit that is kept back because the step count is then
#: fixed: the speed of the run's second half can differ from the first's
#: (docs/experiments/2026-12-05-fast-without-blend.md).
SPEED_MARGIN = 0.04


@dataclass
class TrainProgress:
    """After step ``step`` of ``total`` (``total`` is an estimate until the time budget has
    been turned into steps, after the first :data:`PROBE_STEPS`)."""

    step: int
    total: int
    loss: float
    steps_per_s: float
    eta_s: float
    lr: float = 0.0
    #: The latest fidelity report, when one was made at this step (see ``Trainer.train``).
    fidelity: dict | None = None


#: monitor(ema_model) -> {"errors": {plane: float}, "floor": {plane: float}, ...}: a
#: fidelity report on the EMA network (e.g. :class:`micro3d_gui.metrics.fidelity.FidelityMonitor`).
Monitor = Callable[[torch.nn.Module], dict]


def crop_means(x0: torch.Tensor, drop: float, gen: torch.Generator,
               model_config: UNetConfig) -> torch.Tensor:
    """The fraction condition of a batch ``x0 [B, C, H, W]``: each crop's mean per channel
    ``[B, C]``, NaN (unknown) with probability ``drop`` as the plane label is, so the
    network also learns to denoise without it. All NaN, with no draw, for a network
    without ``fraction_conditioning`` (its training stream stays as it was)."""
    if not model_config.fraction_conditioning:
        return torch.full(x0.shape[:2], float("nan"))
    means = x0.mean(dim=(-2, -1))
    dropped = torch.rand(x0.shape[0], generator=gen) < drop
    return torch.where(dropped[:, None], float("nan"), means)


class Trainer:
    """Owns model, EMA, optimizer and RNG; :meth:`train` runs to ``config.steps`` (or, with
    a time budget, to the step count the budget allows)."""

    def __init__(self, data: PlaneDataset, model_config: UNetConfig, config: TrainConfig,
                 schedule_config: ScheduleConfig = DEFAULT_SCHEDULE,
                 device: torch.device | str = "cpu", dist: Distributed = SINGLE):
        if model_config.in_channels != data.channels:
            raise ValueError("model channels do not match the number of phases")
        self.data = data
        # The data and crop are fixed for the run: summarized once, not at every checkpoint.
        self._data_summary = data.summary(config.crop)
        # ... and so are the micrographs kept for the self-check of sampled volumes.
        self._reference = {p: [torch.tensor(im) for im in ims]
                           for p, ims in reference_images(data.images).items()}
        self.model_config = model_config
        self.config = config
        self.schedule_config = schedule_config
        self.schedule = Schedule.from_config(schedule_config)
        self.device = torch.device(device)
        self.dist = dist  # core/distributed.py: draws, gradients and saving across ranks
        dist.per_rank(config.batch_size)
        enable_fast_matmul(self.device)
        torch.manual_seed(config.seed)  # weight init only; data draws use self.gen
        self.model = UNet(model_config).to(self.device)
        self.net = dist.wrap(self.model)  # what trains; self.model is what is saved
        # a second network given the same weights, not copy.deepcopy of the module tree,
        # which segfaulted in the app's worker thread (Parameter.__deepcopy__)
        self.ema = UNet(model_config).to(self.device)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.eval().requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.losses: list[float] = []
        #: Fidelity reports so far: ``{"step": int, "errors": {plane: float}, ...}``.
        self.fidelity: list[dict] = []
        #: Wall seconds spent training so far (all runs of this model, resumes included).
        self.elapsed_s = 0.0
        #: What the user should know about how the run was set up (e.g. why its crop).
        self.notes: list[str] = []
        #: The time source of the budget (seconds); a test may drive it.
        self.clock: Callable[[], float] = time.perf_counter

    # -- checkpoints ----------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "model_config": self.model_config.to_dict(),
            "schedule_config": asdict(self.schedule_config),
            "train_config": asdict(self.config),
            "num_phases": self.data.num_phases,
            "plane_labels": dict(PLANE_LABELS, null=NULL_LABEL),
            "symmetry": self.data.symmetry.to_dict(),
            "crop": self.config.crop,
            "data_summary": copy.deepcopy(self._data_summary),
            "reference": {p: list(ims) for p, ims in self._reference.items()},
            "step": self.step,
            "train_seconds": float(self.elapsed_s),
            "losses": torch.tensor(self.losses, dtype=torch.float32),
            "fidelity": list(self.fidelity),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng_state": self.gen.get_state(),
        }

    def save(self, path: str | os.PathLike) -> None:
        if self.dist.is_main:
            save_checkpoint(self.state(), path)

    @classmethod
    def resume(cls, ckpt: dict, data: PlaneDataset, steps: int | None = None,
               device: torch.device | str = "cpu", dist: Distributed = SINGLE) -> "Trainer":
        """Continue a checkpoint's run; ``steps`` overrides its total step count."""
        cfg = TrainConfig.from_dict(ckpt["train_config"])
        if cfg.steps is None:  # saved before its budget was turned into steps
            cfg = replace(cfg, steps=max(int(ckpt["step"]) + 1, PROBE_STEPS))
        if steps is not None:
            cfg = replace(cfg, steps=steps)
        if ckpt["num_phases"] != data.num_phases:
            raise ValueError(
                f"the model was trained with {ckpt['num_phases']} phases, "
                f"these images have {data.num_phases}"
            )
        if "symmetry" in ckpt and Symmetry.from_dict(ckpt["symmetry"]) != data.symmetry:
            raise ValueError(
                f"the model was trained with the symmetry "
                f"'{Symmetry.from_dict(ckpt['symmetry']).describe()}', these images are "
                f"declared '{data.symmetry.describe()}'; give the planes and declaration "
                "it was trained with")
        tr = cls(data, UNetConfig.from_dict(ckpt["model_config"]), cfg,
                 ScheduleConfig(**ckpt["schedule_config"]), device, dist)
        tr.model.load_state_dict(ckpt["model"])
        tr.ema.load_state_dict(ckpt["ema"])
        tr.optimizer.load_state_dict(ckpt["optimizer"])
        tr.gen.set_state(ckpt["rng_state"])
        tr.step = int(ckpt["step"])
        tr.losses = [float(v) for v in ckpt.get("losses", [])]
        tr.fidelity = list(ckpt.get("fidelity", []))
        tr.elapsed_s = float(ckpt.get("train_seconds", 0.0))
        return tr

    # -- training -------------------------------------------------------------------------
    def _self_condition(self, x_t, t, labels, means, use) -> torch.Tensor | None:
        """A self-conditioned network's earlier x0 estimate for this batch: on the items
        ``use`` marks (``[B, 1, 1, 1]`` bool, half of them drawn) its own first estimate,
        made without a gradient, clamped to the data's [-1, 1]; zeros ("no estimate") on
        the others, as Chen et al. 2022 train it. None for other networks."""
        if use is None:
            return None
        with torch.no_grad():
            first = self.net(x_t, t, labels, means, None)
            estimate = self.schedule.x0_from_output(x_t, t, first).clamp(-1, 1)
        return estimate * use.to(x_t)

    def train_step(self, total: int) -> float:
        """One optimizer step of a run of ``total`` steps; returns the loss."""
        cfg = self.config
        x0, labels = self.data.batch(cfg.batch_size, cfg.crop, cfg.cond_drop, self.gen)
        t = torch.randint(self.schedule.num_steps, (cfg.batch_size,), generator=self.gen)
        noise = torch.randn(x0.shape, generator=self.gen)
        means = crop_means(x0, cfg.cond_drop, self.gen, self.model_config)
        drawn = (x0, t, noise, labels, means)
        if self.model_config.self_condition:  # the items given their own first estimate
            drawn += (torch.rand((cfg.batch_size, 1, 1, 1), generator=self.gen) < 0.5,)
        # Every rank drew the same global batch; each trains on its own rows of it.
        x0, t, noise, labels, means, *use = to_device(self.dist.shard(*drawn), self.device)
        x_t = self.schedule.q_sample(x0, t, noise)
        target = self.schedule.training_target(x0, t, noise)
        x0_self = self._self_condition(x_t, t, labels, means, use[0] if use else None)
        loss = torch.mean((self.net(x_t, t, labels, means, x0_self) - target) ** 2)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = cfg.lr_at(self.step, total)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.step += 1
        self._update_ema(cfg.ema_at(total))
        return self.dist.mean(loss)  # the global batch's loss

    @torch.no_grad()
    def _update_ema(self, target: float) -> None:
        # Warm-up (as diffusers' EMAModel) so short runs are not dominated by the init.
        decay = min(target, (1 + self.step) / (10 + self.step))
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p, 1 - decay)

    def _steps_for_budget(self, seconds_per_step: float, spent_s: float,
                          final_report_s: float = 0.0) -> int:
        """The step count the time budget allows, at the measured speed, leaving the
        fidelity reports their share, the final report (always made, on the last model)
        ``final_report_s`` and the :data:`SPEED_MARGIN`."""
        left = self.config.time_budget_s - spent_s - final_report_s
        share = 1 - FIDELITY_TIME_FRACTION - SPEED_MARGIN
        more = int(left * share / max(seconds_per_step, 1e-9))
        return max(self.step + 1, self.step + more)

    def train(self, callback: Callable[[TrainProgress], object] | None = None,
              checkpoint_path: str | os.PathLike | None = None,
              monitor: Monitor | None = None) -> bool:
        """Train until ``config.steps`` (or the time budget); False if ``callback`` asked to
        stop.

        ``callback(progress)`` runs after every step; a truthy return stops training after
        that step (a checkpoint is still written). Checkpoints go to ``checkpoint_path``
        every ``checkpoint_every`` steps and at the end. ``monitor`` (optional) reports
        fidelity on the EMA network every so often, spaced so that it takes at most
        :data:`FIDELITY_TIME_FRACTION` of the time, and at the end; its reports are kept in
        :attr:`fidelity` and the checkpoint.
        """
        cfg = self.config
        t_start, s_start = self.clock(), self.step
        elapsed_before = self.elapsed_s
        budgeted = cfg.steps is None
        total = cfg.steps if not budgeted else self.step + 10 * PROBE_STEPS
        fit = None  # (steps done, seconds, monitor seconds) where the speed is measured from
        monitor_s, next_report_s, reports = 0.0, None, 0
        last_now = 0.0  # when the step before ended (the last step's time: now - last_now)
        finished = True
        self.model.train()
        while self.step < total:
            loss = self.train_step(total)
            self.losses.append(loss)
            now = self.clock() - t_start
            done = self.step - s_start
            # the final report will cost about what the earlier ones did
            report_s = monitor_s / reports if reports else 0.0
            if budgeted and done == 2:
                fit = (done, now, monitor_s)
            elif budgeted and (done == PROBE_STEPS or (done > PROBE_STEPS and done == 2 * fit[0]
                                                       and self.step <= REFIT_UNTIL * total)):
                # the budget becomes a step count, at the speed since the last fit
                seconds_per_step = (now - fit[1] - (monitor_s - fit[2])) / (done - fit[0])
                total = self._steps_for_budget(seconds_per_step, elapsed_before + now,
                                               report_s)
                # every rank runs the same schedule: the ranks' mean estimate
                total = int(self.dist.mean(torch.tensor(float(total), device=self.device)))
                self.config = cfg = replace(cfg, steps=total)
                fit = (done, now, monitor_s)
            elif budgeted and done > PROBE_STEPS and self.step < total and self.dist.any(
                    elapsed_before + now + (now - last_now) + report_s > cfg.time_budget_s,
                    self.device):
                # another step and the final report would pass the budget (the machine
                # slowed after the count was fixed): the budget is the user's limit, so this
                # step is the last
                total = self.step
                self.config = cfg = replace(cfg, steps=total)
            last_now = now
            report = None
            if monitor is not None and self.dist.is_main:  # the others wait at the next step
                if next_report_s is None and self.step - s_start >= PROBE_STEPS:
                    # the first report after a tenth of the run, when there is a model
                    run_s = now * (total - s_start) / (self.step - s_start)
                    next_report_s = 0.1 * run_s
                due = next_report_s is not None and now >= next_report_s
                if due or self.step >= total:  # and always on the final model
                    report, cost = self._report(monitor)
                    monitor_s += cost
                    reports += 1
                    # space the reports so that they stay within their share of the time
                    next_report_s = now + cost + cost / FIDELITY_TIME_FRACTION
            self.elapsed_s = elapsed_before + self.clock() - t_start
            if checkpoint_path and cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                self.save(checkpoint_path)
            at_floor = bool(cfg.stop_at_floor and report is not None and report.get("at_floor"))
            asked = False
            if callback is not None:
                rate = (self.step - s_start) / max(now - monitor_s, 1e-9)
                eta = (total - self.step) / rate if rate > 0 else float("inf")
                if cfg.steps is None and cfg.time_budget_s is not None:
                    eta = max(0.0, cfg.time_budget_s - self.elapsed_s)
                asked = bool(callback(TrainProgress(self.step, total, loss, rate, eta,
                                                    cfg.lr_at(self.step - 1, total), report)))
            if self.dist.any(asked or at_floor, self.device):  # all ranks stop together
                finished = self.step >= total or not self.dist.any(asked, self.device)
                break
        self.elapsed_s = elapsed_before + self.clock() - t_start
        if checkpoint_path:
            self.save(checkpoint_path)
        return finished

    def _report(self, monitor: Monitor) -> tuple[dict, float]:
        start = self.clock()
        report = {"step": self.step, **monitor(self.ema)}
        self.fidelity.append(report)
        return report, self.clock() - start


def prepare_trainer(data: PlaneDataset, preset: str = DEFAULT_PRESET,
                    device: torch.device | str = "cpu", resume: dict | None = None,
                    dist: Distributed = SINGLE, origins: Mapping[str, Sequence] | None = None,
                    crop_advice: str = CLI_CROP_ADVICE, self_condition: bool = False,
                    **overrides) -> tuple[Trainer, list[str]]:
    """The trainer ``micro3d train``, ``micro3d demo`` and the app's Train panel run: the one
    place their training input is checked.

    A new run: the network ``preset`` (``auto``: :func:`resolve_preset` for ``device``),
    self-conditioned with ``self_condition`` (:attr:`UNetConfig.self_condition`), and
    :meth:`TrainConfig.for_preset` with ``overrides`` (None = the recipe's). With
    ``resume`` (a checkpoint), its run continues with its own recipe: only ``steps`` is
    taken from ``overrides``; the names of the other given overrides whose values differ
    from the model's (and ``preset`` when it is neither ``auto`` nor the model's,
    ``self_condition`` when asked for and the model's network is not) are
    returned in the order given, so that the caller can say they were ignored. ``dist``:
    this process's place in a torchrun run (core/distributed.py). Raises ValueError with
    a readable message.

    A new run without a ``crop`` trains with :func:`~micro3d_gui.core.crop.training_crop`'s
    (the recipe's, or the largest the micrographs hold); why, when it is not the recipe's,
    is in the trainer's :attr:`~Trainer.notes`. The crop (given, chosen or the resumed
    model's) is checked against every image: ``origins`` (the file of each image) and
    ``crop_advice`` word the DatasetError when the images are too small.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if resume is not None:
        kept = resume["train_config"]
        ignored = [k for k, v in given.items() if k != "steps" and v != kept.get(k)]
        if preset not in (DEFAULT_PRESET, resume["model_config"].get("preset")):
            ignored.append("preset")
        if self_condition and not resume["model_config"].get("self_condition", False):
            ignored.append("self_condition")
        steps = given.get("steps")
        if steps is not None and steps <= int(resume["step"]):
            raise ValueError(f"the model has already trained {int(resume['step'])} steps; "
                             "ask for more steps to continue its training")
        crop = int(resume["crop"])
        model_config = UNetConfig.from_dict(resume["model_config"])
        try:
            check_image_sides(image_shapes(data.images), origins, crop, crop_advice,
                              model_config.size_multiple)
        except DatasetError as exc:
            raise DatasetError(f"{exc} (the model to resume trains on {crop} px crops, so "
                               "its images must be at least that large)") from None
        check_training_fits(model_config, crop, int(kept["batch_size"]), dist.world_size,
                            device)
        return Trainer.resume(resume, data, steps=steps, device=device, dist=dist), ignored
    preset = resolve_preset(preset, device)
    choice = new_run_crop(data.images, preset, given.get("crop"), origins, crop_advice)
    config = TrainConfig.for_preset(preset, **{**given, "crop": choice.crop})
    # refused here, before the network or a batch exists (a batch of 10^9 crops would
    # otherwise grow until the machine swaps)
    network = preset_config(preset, data.channels)
    if self_condition:
        network = replace(network, self_condition=True)
    check_training_fits(network, config.crop, config.batch_size, dist.world_size, device)
    trainer = Trainer(data, network, config, device=device, dist=dist)
    trainer.notes = [choice.note] if choice.note else []
    return trainer, []


def steps_for_more_time(step: int, train_seconds: float, seconds: float) -> int:
    """How many more steps ``seconds`` of training allow at a model's own pace so far
    (``step`` steps in ``train_seconds``); as many as it has when its pace is unknown."""
    if step <= 0 or train_seconds <= 0:
        return max(step, PROBE_STEPS)
    return max(1, int(seconds * step / train_seconds))


def new_run_crop(images: Mapping[str, Sequence], preset: str, crop: int | None,
                 origins: Mapping[str, Sequence] | None = None,
                 crop_advice: str = CLI_CROP_ADVICE) -> CropChoice:
    """The crop a new run of ``preset`` (not ``auto``) trains with on label ``images``
    ``{plane: [[H, W]]}``: ``crop`` (None: :func:`~micro3d_gui.core.crop.training_crop`'s
    choice), checked first to be a multiple of the network's stride (ValueError), then
    against every image and every plane's area (a DatasetError worded with ``origins`` and
    ``crop_advice``). One rule for :func:`prepare_trainer` and the app's note on the crop
    before a start."""
    multiple = preset_config(preset, 1).size_multiple
    if crop and crop % multiple:
        raise ValueError(f"the crop ({crop} px) must be a multiple of {multiple} for "
                         f"the {preset} preset")
    return training_crop(image_shapes(images), TrainConfig.for_preset(preset).crop, multiple,
                         crop, origins, crop_advice)

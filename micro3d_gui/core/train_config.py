"""The training recipe: :class:`TrainConfig` (every training default), the recipe of each
network preset, the preset a device trains when none is chosen, and the crop multiple every
preset's network needs. Apart from the trainer (:mod:`.training`), so that the checkpoint
checks can read a recipe without importing the trainer.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

import torch

from .diffusion.schedule import ScheduleConfig
from .diffusion.unet import PRESETS


#: Training time when neither steps nor a time is given: the product's promise of a
#: validated model in 10 minutes on a laptop CPU (docs/experiments/2026-12-02-training.md).
DEFAULT_TIME_BUDGET_S = 600.0

#: The schedule new models train with: the paper's, with v prediction (an eps model's x0
#: near t = T magnifies its error; docs/experiments/2026-12-02-v-prediction.md).
DEFAULT_SCHEDULE = ScheduleConfig(prediction="v")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Build it with :meth:`for_preset`, which applies the preset's recipe;
    the class defaults are the paper's (Adam lr 1e-4, batch 32, crops of 64 px, p_drop
    0.1) with a time budget instead of its 60k steps.

    ``steps`` None: as many steps as ``time_budget_s`` seconds allow, estimated from the
    speed of the first :data:`~.training.PROBE_STEPS` steps, fitted again as the speed changes during
    the first half of the run (:data:`~.training.REFIT_UNTIL`) and then fixed (stored in the
    checkpoint, so a resumed run is exact); should the machine slow down after that, the
    run ends early, at the last step that leaves room for the final fidelity report
    within the budget. The learning rate warms up linearly over
    ``warmup_steps``, then follows a cosine to ``lr_final * lr`` at the last step
    (``lr_schedule="constant"``: no warm-up, no decay, as checkpoints before the schedule
    trained). ``ema_decay`` None: fitted to the step count (:func:`fitted_ema_decay`).
    """

    steps: int | None = None
    time_budget_s: float | None = DEFAULT_TIME_BUDGET_S
    batch_size: int = 32
    crop: int = 64
    lr: float = 1e-4
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    lr_final: float = 0.1
    cond_drop: float = 0.1
    ema_decay: float | None = None
    seed: int = 0
    checkpoint_every: int = 1000
    #: Stop once every plane's fidelity report is at its floor (see metrics.fidelity).
    stop_at_floor: bool = False

    def __post_init__(self):
        checks = (
            ("steps", self.steps is None or self.steps >= 1, "a positive whole number"),
            ("time_budget_s", self.time_budget_s is None or
             (math.isfinite(self.time_budget_s) and self.time_budget_s > 0),
             "a positive number of seconds"),
            ("batch_size", self.batch_size >= 1, "a positive whole number"),
            ("crop", self.crop >= 1, "a positive whole number"),
            ("lr", math.isfinite(self.lr) and 0 < self.lr < 1, "a number between 0 and 1"),
            ("lr_schedule", self.lr_schedule in LR_SCHEDULES, f"one of {LR_SCHEDULES}"),
            ("warmup_steps", self.warmup_steps >= 0, "0 or more"),
            ("lr_final", 0 <= self.lr_final <= 1, "between 0 and 1"),
            ("cond_drop", 0 <= self.cond_drop < 1, "between 0 and 1"),
            ("ema_decay", self.ema_decay is None or 0 <= self.ema_decay < 1,
             "between 0 and 1"),
            ("checkpoint_every", self.checkpoint_every >= 0, "0 (never) or more"),
        )
        for name, ok, what in checks:
            if not ok:
                raise ValueError(f"{name} must be {what}, got {getattr(self, name)!r}")
        if self.steps is None and self.time_budget_s is None:
            raise ValueError("give a number of steps or a time budget")

    @classmethod
    def for_preset(cls, preset: str, **overrides) -> "TrainConfig":
        """The training recipe of a network preset, with ``overrides`` (None = keep).

        The one place a recipe is made: ``micro3d train``, the app's Train panel, the
        benchmarks and the Python API all call it, so the same inputs train the same model.
        A given ``steps`` wins over the time budget.
        """
        if preset not in PRESET_RECIPES:
            raise ValueError(f"unknown preset {preset!r}; choose one of "
                             f"{', '.join(PRESET_RECIPES)}")
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(given) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown training options: {', '.join(sorted(unknown))}")
        if "steps" in given and "time_budget_s" not in given:
            given["time_budget_s"] = None
        return cls(**{**PRESET_RECIPES[preset], **given})

    @classmethod
    def from_dict(cls, d: Mapping) -> "TrainConfig":
        """A checkpoint's ``train_config``; one written before the schedule existed trained
        at a constant rate with a fixed EMA, and resumes so."""
        d = {k: v for k, v in d.items() if k in {f.name for f in fields(cls)}}
        if "lr_schedule" not in d:
            d.update(lr_schedule="constant", warmup_steps=0, time_budget_s=None)
        return cls(**d)

    def lr_at(self, step: int, total: int) -> float:
        """Learning rate of step ``step`` (0-based) of a run of ``total`` steps."""
        if self.lr_schedule == "constant":
            return self.lr
        warmup = min(self.warmup_steps, max(1, total // 5))
        if step < warmup:
            return self.lr * (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return self.lr * (self.lr_final + (1 - self.lr_final) * 0.5 *
                          (1 + math.cos(math.pi * progress)))

    def ema_at(self, total: int) -> float:
        return self.ema_decay if self.ema_decay is not None else fitted_ema_decay(total)


LR_SCHEDULES = ("cosine", "constant")

#: Recipe per network preset (every field not named takes the class default). The CPU
#: presets learn at a higher rate than the paper's 1e-4, at which the tiny preset learns too
#: slowly (docs/experiments/2026-11-25-sampler-corrections.md); ``small`` sits between.
PRESET_RECIPES: dict[str, dict] = {
    "tiny": dict(lr=1e-3, batch_size=16, crop=64),
    "lean": dict(lr=1e-3, batch_size=16, crop=64),
    "small": dict(lr=5e-4, batch_size=16, crop=64),
    "paper": dict(lr=1e-4, batch_size=32, crop=64),
}

#: The preset used when none is chosen, per device type: the largest network that reaches
#: the floor within the default time budget there (docs/benchmarks.md).
AUTO_PRESET = {"cpu": "tiny", "cuda": "small", "mps": "small"}

#: The preset name that leaves the network to the device (:data:`AUTO_PRESET`): the default
#: of ``--preset`` and of the Train panel.
DEFAULT_PRESET = "auto"


def auto_preset(device: torch.device | str) -> str:
    return AUTO_PRESET.get(torch.device(device).type, "tiny")


def resolve_preset(preset: str, device: torch.device | str) -> str:
    """``preset``, or for :data:`DEFAULT_PRESET` the network :func:`auto_preset` picks for
    ``device``."""
    return auto_preset(device) if preset == DEFAULT_PRESET else preset


def fitted_ema_decay(total_steps: int) -> float:
    """EMA decay whose averaging window is about a tenth of the run (at most 0.9999):
    0.999 for 10,000 steps, 0.99 for 1,000. A fixed 0.999 would average a short run's
    first, poor weights into the model it keeps."""
    return float(min(0.9999, 1.0 - 1.0 / max(10.0, 0.1 * total_steps)))

#: Every value of ``--preset`` and of the Train panel's Preset: ``auto`` (:func:`auto_preset`)
#: and each recipe's network.
PRESET_NAMES = (DEFAULT_PRESET, *PRESET_RECIPES)

#: What ``--preset`` and the Train panel's Preset say of the choices.
PRESET_HELP = (f"network: auto picks {AUTO_PRESET['cpu']} on a CPU and {AUTO_PRESET['cuda']} "
               "on a GPU; lean is tiny on 2x2 pixel patches, about 4x faster to sample, "
               "for large boxes; paper (Table 1) needs a GPU")

#: Training crops are multiples of this (px): every preset's network halves its input
#: ``levels - 1`` times, after its pixel patches
#: (:attr:`~.diffusion.unet.UNetConfig.size_multiple`).
CROP_MULTIPLE = math.lcm(*(PRESETS[name].size_multiple for name in PRESET_RECIPES))

"""Training the plane-conditional denoiser on 2D micrographs (METHOD.md Sec. 1-2).

Each batch item: a plane chosen uniformly among those with images, an image of that plane,
a random ``crop x crop`` window, random horizontal/vertical flips (never rotations or
transposes: they would mix the planes' anisotropy), the plane label replaced by null with
probability ``cond_drop``. Loss: mean |eps - eps_theta(x_t, t, c)|^2.

Every random draw comes from one ``torch.Generator`` whose state is checkpointed, so a
resumed run continues exactly as an uninterrupted one.
"""
from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .checkpoint import save_checkpoint
from .device import enable_fast_matmul, to_device
from .distributed import SINGLE, Distributed
from .diffusion.schedule import Schedule, ScheduleConfig
from .diffusion.unet import UNet, UNetConfig
from .encoding import encode, num_channels
from .planes import NULL_LABEL, PLANE_LABELS, PLANES


@dataclass(frozen=True)
class TrainConfig:
    """Paper defaults: Adam lr 1e-4, batch 32, 60k steps, crops of 64 px, p_drop 0.1."""

    steps: int = 60_000
    batch_size: int = 32
    crop: int = 64
    lr: float = 1e-4
    cond_drop: float = 0.1
    ema_decay: float = 0.999
    seed: int = 0
    checkpoint_every: int = 1000


#: Adam learning rate per network preset. The paper's 1e-4 suits its big network and 60k
#: steps; the CPU presets train for a few thousand steps, and on the tiny preset 1e-3
#: reached in 1,500 steps a lower loss than 1e-4 did (docs/benchmarks.md). ``small`` sits
#: between the two (not measured as finely).
PRESET_LR = {"tiny": 1e-3, "small": 5e-4, "paper": 1e-4}


def default_lr(preset: str) -> float:
    return PRESET_LR.get(preset, TrainConfig.lr)


@dataclass
class TrainProgress:
    step: int
    total: int
    loss: float
    steps_per_s: float
    eta_s: float


class PlaneDataset:
    """Labelled 2D images per plane: ``images[plane]`` is a list of ``[H, W]`` int arrays
    with phases ``0 .. num_phases-1``. Sizes may differ between images."""

    def __init__(self, images: Mapping[str, Sequence[np.ndarray]], num_phases: int):
        self.num_phases = int(num_phases)
        self.planes = [p for p in PLANES if len(images.get(p, ()))]
        if not self.planes:
            raise ValueError("no training images in any plane")
        self.images = {p: [np.asarray(im) for im in images[p]] for p in self.planes}
        # Pre-encoded once: crops are then plain tensor slices.
        self._encoded = {p: [encode(im, self.num_phases) for im in self.images[p]]
                         for p in self.planes}

    @property
    def channels(self) -> int:
        return num_channels(self.num_phases)

    def min_size(self) -> int:
        return min(min(im.shape) for p in self.planes for im in self.images[p])

    def summary(self) -> dict:
        """Counts, sizes and per-phase volume fractions per plane (plain data)."""
        out = {}
        for p in self.planes:
            ims = self.images[p]
            counts = sum(np.bincount(im.ravel().astype(np.int64), minlength=self.num_phases)
                         for im in ims)
            out[p] = {
                "images": len(ims),
                "shapes": [list(s) for s in sorted({im.shape for im in ims})],
                "volume_fractions": [float(c) for c in counts / counts.sum()],
            }
        return out

    def batch(self, size: int, crop: int, cond_drop: float, gen: torch.Generator):
        """A batch ``x0 [B, C, crop, crop]`` and labels ``[B]``, all draws from ``gen``."""
        def randint(high: int) -> int:
            return int(torch.randint(high, (1,), generator=gen))

        xs, labels = [], []
        for _ in range(size):
            plane = self.planes[randint(len(self.planes))]
            im = self._encoded[plane][randint(len(self._encoded[plane]))]
            h, w = im.shape[-2:]
            r, c = randint(h - crop + 1), randint(w - crop + 1)
            x = im[:, r:r + crop, c:c + crop]
            flips = torch.rand(2, generator=gen)
            dims = [d for d, f in zip((-1, -2), flips) if f < 0.5]
            xs.append(torch.flip(x, dims) if dims else x)
            labels.append(PLANE_LABELS[plane])
        labels = torch.tensor(labels)
        drop = torch.rand(size, generator=gen) < cond_drop
        return torch.stack(xs), torch.where(drop, torch.full_like(labels, NULL_LABEL), labels)


class Trainer:
    """Owns model, EMA, optimizer and RNG; :meth:`train` runs to ``config.steps``."""

    def __init__(self, data: PlaneDataset, model_config: UNetConfig, config: TrainConfig,
                 schedule_config: ScheduleConfig = ScheduleConfig(),
                 device: torch.device | str = "cpu", dist: Distributed = SINGLE):
        if model_config.in_channels != data.channels:
            raise ValueError("model channels do not match the number of phases")
        if config.crop % model_config.size_multiple:
            raise ValueError(
                f"crop must be a multiple of {model_config.size_multiple} for this model"
            )
        self.data = data
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
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.losses: list[float] = []

    # -- checkpoints ----------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "model_config": self.model_config.to_dict(),
            "schedule_config": asdict(self.schedule_config),
            "train_config": asdict(self.config),
            "num_phases": self.data.num_phases,
            "plane_labels": dict(PLANE_LABELS, null=NULL_LABEL),
            "crop": self.config.crop,
            "data_summary": self.data.summary(),
            "step": self.step,
            "losses": torch.tensor(self.losses, dtype=torch.float32),
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
        cfg = TrainConfig(**ckpt["train_config"])
        if steps is not None:
            cfg = TrainConfig(**{**asdict(cfg), "steps": steps})
        if ckpt["num_phases"] != data.num_phases:
            raise ValueError(
                f"the model was trained with {ckpt['num_phases']} phases, "
                f"these images have {data.num_phases}"
            )
        tr = cls(data, UNetConfig.from_dict(ckpt["model_config"]), cfg,
                 ScheduleConfig(**ckpt["schedule_config"]), device, dist)
        tr.model.load_state_dict(ckpt["model"])
        tr.ema.load_state_dict(ckpt["ema"])
        tr.optimizer.load_state_dict(ckpt["optimizer"])
        tr.gen.set_state(ckpt["rng_state"])
        tr.step = int(ckpt["step"])
        tr.losses = [float(v) for v in ckpt.get("losses", [])]
        return tr

    # -- training -------------------------------------------------------------------------
    def train_step(self) -> float:
        cfg = self.config
        x0, labels = self.data.batch(cfg.batch_size, cfg.crop, cfg.cond_drop, self.gen)
        t = torch.randint(self.schedule.num_steps, (cfg.batch_size,), generator=self.gen)
        noise = torch.randn(x0.shape, generator=self.gen)
        # Every rank drew the same global batch; each trains on its own rows of it.
        x0, t, noise, labels = to_device(self.dist.shard(x0, t, noise, labels), self.device)
        x_t = self.schedule.q_sample(x0, t, noise)
        loss = torch.mean((self.net(x_t, t, labels) - noise) ** 2)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        self._update_ema()
        return self.dist.mean(loss)  # the global batch's loss

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Warm-up (as diffusers' EMAModel) so short runs are not dominated by the init.
        decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p, 1 - decay)

    def train(self, callback: Callable[[TrainProgress], object] | None = None,
              checkpoint_path: str | os.PathLike | None = None) -> bool:
        """Train until ``config.steps``; returns False if ``callback`` asked to stop.

        ``callback(progress)`` runs after every step; a truthy return stops training after
        that step (a checkpoint is still written). Checkpoints go to ``checkpoint_path``
        every ``checkpoint_every`` steps and at the end.
        """
        cfg = self.config
        t_start, s_start = time.perf_counter(), self.step
        finished = True
        self.model.train()
        while self.step < cfg.steps:
            loss = self.train_step()
            self.losses.append(loss)
            if checkpoint_path and cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                self.save(checkpoint_path)
            if callback is not None:
                rate = (self.step - s_start) / max(time.perf_counter() - t_start, 1e-9)
                eta = (cfg.steps - self.step) / rate if rate > 0 else float("inf")
                stop = callback(TrainProgress(self.step, cfg.steps, loss, rate, eta))
                if self.dist.any(bool(stop), self.device):  # all ranks stop together
                    finished = self.step >= cfg.steps
                    break
        if checkpoint_path:
            self.save(checkpoint_path)
        return finished

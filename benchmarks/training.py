"""Training speed: where a step's time goes, steps/s and achieved FLOP/s per preset.

    python benchmarks/training.py [PRESET ...] [--steps 12] [--device cpu]

For each preset's recipe (``TrainConfig.for_preset``: batch, crop) on random binary
micrographs, times ``--steps`` training steps after two warm-up steps, split into the data
batch (crops, flips, noise), forward, backward, optimizer and EMA, in both memory layouts
(contiguous and channels_last). Achieved FLOP/s counts 3x the forward FLOPs of
``flops_per_slice`` per crop (forward + backward). The reference is the FLOP rate the
device reaches in a large fp32 matmul. Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from machine import describe

from micro3d_gui.core.device import DEFAULT_DEVICE, resolve_device
from micro3d_gui.core.diffusion.unet import count_parameters, flops_per_slice
from micro3d_gui.core.plane_dataset import PlaneDataset
from micro3d_gui.core.training import prepare_trainer

PARTS = ("batch", "forward", "backward", "optimizer", "ema")


def matmul_gflops(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def time_steps(trainer, steps: int, layout: torch.memory_format) -> dict[str, float]:
    """Mean seconds per part of a training step (the same computation as Trainer.train_step,
    timed part by part)."""
    cfg, sched, dev = trainer.config, trainer.schedule, trainer.device
    trainer.model.to(memory_format=layout)
    sums = dict.fromkeys(PARTS, 0.0)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for i in range(steps + 2):
        t0 = time.perf_counter()
        x0, labels = trainer.data.batch(cfg.batch_size, cfg.crop, cfg.cond_drop, trainer.gen)
        t = torch.randint(sched.num_steps, (cfg.batch_size,), generator=trainer.gen)
        noise = torch.randn(x0.shape, generator=trainer.gen)
        x0, t, noise, labels = (v.to(dev) for v in (x0, t, noise, labels))
        x_t = sched.q_sample(x0, t, noise).contiguous(memory_format=layout)
        sync()
        t1 = time.perf_counter()
        loss = torch.mean((trainer.model(x_t, t, labels) - noise) ** 2)
        sync()
        t2 = time.perf_counter()
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        sync()
        t3 = time.perf_counter()
        trainer.optimizer.step()
        sync()
        t4 = time.perf_counter()
        trainer.step += 1
        trainer._update_ema(cfg.ema_at(1000))
        sync()
        t5 = time.perf_counter()
        if i >= 2:
            for part, a, b in zip(PARTS, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
                sums[part] += b - a
    return {k: v / steps for k, v in sums.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("presets", nargs="*", default=["tiny", "lean", "small"])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--device", default=DEFAULT_DEVICE)
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    rng = np.random.default_rng(0)
    images = {p: [rng.integers(0, 2, (128, 128)) for _ in range(4)] for p in ("xy", "xz", "yz")}
    data = PlaneDataset(images, 2)
    peak = matmul_gflops(device)
    print(describe(device))
    print(f"fp32 matmul 2048^2: {peak:.0f} GFLOP/s\n")
    print("| preset | params | batch x crop | layout | " + " | ".join(f"{p} ms" for p in PARTS)
          + " | steps/s | GFLOP/s | of matmul peak |")
    print("|---|---|---|---|" + "---|" * len(PARTS) + "---|---|---|")
    for preset in args.presets:
        trainer, _ = prepare_trainer(data, preset, device, steps=10**6, checkpoint_every=0)
        cfg = trainer.config
        flops = 3 * flops_per_slice(trainer.model_config, (cfg.crop, cfg.crop)) * cfg.batch_size
        for name, layout in (("contiguous", torch.contiguous_format),
                             ("channels_last", torch.channels_last)):
            parts = time_steps(trainer, args.steps, layout)
            total = sum(parts.values())
            rate = flops / total / 1e9
            print(f"| {preset} | {count_parameters(trainer.model) / 1e6:.2f} M | "
                  f"{cfg.batch_size} x {cfg.crop}^2 | {name} | "
                  + " | ".join(f"{1000 * parts[p]:.0f}" for p in PARTS)
                  + f" | {1 / total:.2f} | {rate:.0f} | {rate / peak:.0%} |", flush=True)


if __name__ == "__main__":
    main()

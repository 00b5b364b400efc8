"""Sampler speed: network calls, seconds and seconds per call, per preset, box and schedule.

    python benchmarks/sampler.py [PRESET ...]      # default: tiny lean small paper

Untrained weights (speed does not depend on them). Seconds per call are measured per
preset and box; runs shorter than MICRO3D_BENCH_BUDGET_S (default 120 s) are then timed to
the end, longer ones (the paper's schedule) are extrapolated, and the table says which. Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import os
import sys
import time

from machine import describe

from micro3d_gui.core.device import resolve_device
from micro3d_gui.core.diffusion.settings import SamplerSettings
from micro3d_gui.core.diffusion.schedule import ScheduleConfig
from micro3d_gui.core.diffusion.unet import UNet, count_parameters, flops_per_slice, preset_config
from micro3d_gui.core.pipeline import pipeline_progressive

BOXES = (32, 64)
SCHEDULES = ((1000, 4), (100, 1), (50, 1), (50, 0))  # (S, n_h); (1000, 4) is the paper's
#: Runs expected to take longer than this are extrapolated from the measured s/call.
BUDGET_S = float(os.environ.get("MICRO3D_BENCH_BUDGET_S", "120"))


def checkpoint_for(preset: str) -> dict:
    cfg = preset_config(preset, 1)
    model = UNet(cfg)
    return {"model_config": cfg.to_dict(), "ema": model.state_dict(),
            "schedule_config": vars(ScheduleConfig()), "num_phases": 2}


def time_steps(ckpt, box, steps, harmonize, device):
    """Seconds per network call over the steps after the first (which holds the layout
    probe), and whether the whole run was timed."""
    settings = SamplerSettings(harmonize=harmonize, gamma=0.5, harmonize_fraction=1.0)  # every step
    gen = pipeline_progressive(ckpt, (box,) * 3, 1, steps, settings, seed=0, device=device)
    next(gen)
    start = time.perf_counter()
    done = 0
    for _ in gen:
        done += 1
    elapsed = time.perf_counter() - start
    return elapsed / (done * settings.calls_per_step()), done == steps - 1


def main(presets):
    device = resolve_device()  # the app's choice: a GPU where there is one
    print(describe(device) + "\n")
    print("| preset | params | GFLOP/64x64 slice | box | S | n_h | network calls | slices/call "
          "| s/call | total s | timing |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for preset in presets:
        ckpt = checkpoint_for(preset)
        cfg = preset_config(preset, 1)
        params = count_parameters(UNet(cfg))
        gflop = flops_per_slice(cfg) / 1e9
        for box in BOXES:
            # s/call depends on the batch (box) only: measure it on two plain steps first.
            per_call, _ = time_steps(ckpt, box, 3, 0, device)
            for steps, nh in SCHEDULES:
                calls = steps * SamplerSettings(harmonize=nh).calls_per_step()
                measured = calls * per_call < BUDGET_S
                if measured:
                    per_call_run, measured = time_steps(ckpt, box, steps, nh, device)
                else:
                    per_call_run = per_call
                print(f"| {preset} | {params / 1e6:.2f} M | {gflop:.2f} | {box}^3 | {steps} | {nh} "
                      f"| {calls} | {box} | {per_call_run:.3f} | {calls * per_call_run:,.0f} "
                      f"| {'measured' if measured else 'extrapolated'} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["tiny", "lean", "small", "paper"])

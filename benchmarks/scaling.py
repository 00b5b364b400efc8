"""Sampling cost against box size: seconds and peak memory per volume, 32^3 ... 256^3 on CPU
(up to 512^3 when a CUDA GPU is present), with the app's sampling recipe.

    python benchmarks/scaling.py [SIDE ...]        # default: 32 64 128 256 (+ 384 512 on GPU)

The bundled fibres model (or the checkpoint MICRO3D_BENCH_MODEL names), the app's recipe
(the Generate panel's defaults, core/recipe.py; MICRO3D_BENCH_SET="harmonize=6" sets fields
over it, as time_to_quality's --set) and the default memory budget
(core/memory.py). Every size runs in its own process, so its peak RSS (``ru_maxrss``) is
that size's alone. Boxes whose run would take longer than MICRO3D_BENCH_BUDGET_S (default
300 s) run 3 steps, harmonized (one per plane: every plane's buffers, the harmonizing ones
included, have then been allocated, so the peak is reached), and the time is extrapolated
to the recipe's network calls from the seconds per call; the table says which. The first
step also holds the layout and slices-per-call probes; it is timed apart ("first") and
added once. "slices/call" is what the pipeline took (core/device.py ``fastest_chunk``), with
what the memory budget allows beside it; "app estimate" what the app's Generate
says before the run, without the self-check's second pass (micro3d_gui/estimate.py). Prints
a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = float(os.environ.get("MICRO3D_BENCH_BUDGET_S", "300"))
MODEL = os.environ.get("MICRO3D_BENCH_MODEL")
#: Recipe fields over the app's, as time_to_quality's --set: "harmonize=6 gamma=1".
OVERRIDES = os.environ.get("MICRO3D_BENCH_SET", "")
CPU_SIDES = (32, 64, 128, 256)
GPU_SIDES = (32, 64, 128, 256, 384, 512)


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def app_recipe():
    """The app's sampling recipe: the Generate panel's defaults (one definition), with the
    fields MICRO3D_BENCH_SET names over it."""
    from micro3d_gui.session.generation import GenerateSettings
    from time_to_quality import setting

    return GenerateSettings().to_recipe().replace(**dict(map(setting, OVERRIDES.split())))


def load_model() -> dict:
    from micro3d_gui.core.checkpoint import load_checkpoint
    from micro3d_gui.paths import demo_model

    return load_checkpoint(MODEL or demo_model("fibres"))


def run_one(side: int, steps: int, device: str) -> dict:
    """In the child process: sample ``steps`` steps of the app's recipe (all of them, or a
    few with harmonizing from the first step on) and time each, with its network calls."""
    from dataclasses import replace

    from micro3d_gui.core.diffusion.unet import UNetConfig
    from micro3d_gui.core.pipeline import pipeline_progressive
    from micro3d_gui.core.memory import estimate_sampling

    chosen = []  # the slices per call the pipeline takes, from its log

    class Chosen(logging.Handler):
        def emit(self, record):
            chosen.append(record.args[0])

    logger = logging.getLogger("micro3d_gui.core.pipeline")
    logger.setLevel(logging.INFO)
    logger.addHandler(Chosen())
    ckpt = load_model()
    recipe = app_recipe()
    settings = recipe.sampler
    if steps < recipe.steps_for(ckpt):  # the harmonized steps' peak, in the few steps run
        settings = replace(settings, harmonize_late=False, harmonize_fraction=1.0)
    shape = (side,) * 3
    est = estimate_sampling(UNetConfig.from_dict(ckpt["model_config"]), shape, device=device)
    base = rss_mib()
    times, calls = [], []
    start = time.perf_counter()
    gen = pipeline_progressive(ckpt, shape, 1, recipe.sampling_steps, settings, seed=0,
                               device=device)
    for k, step in zip(range(steps), gen):
        step.labels()  # what every consumer does with the estimate
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        now = time.perf_counter()
        times.append(now - start)
        calls.append(step.calls - sum(calls))  # this step's calls
        start = now
    gen.close()
    out = {"side": side, "slices_per_call": chosen[0] if chosen else est.slices_per_call,
           "memory_slices": est.slices_per_call, "times": times,
           "calls": calls, "base_mib": base, "peak_mib": rss_mib(),
           "estimate_mib": base + est.total_bytes / 2 ** 20}
    if device.startswith("cuda"):
        out["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def measure(side, steps, device) -> dict:
    cmd = [sys.executable, __file__, "--one", str(side), str(steps), device]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(sides) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from machine import describe

    from micro3d_gui.estimate import probe_speed, sampling_seconds

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    recipe, ckpt = app_recipe(), load_model()
    S, calls = recipe.steps_for(ckpt), recipe.network_calls(ckpt)
    print(describe(torch.device(devices[-1])))
    print(f"{MODEL or 'the bundled fibres model'} ({ckpt['model_config']['preset']} "
          f"preset), the app's recipe{f' with {OVERRIDES}' if OVERRIDES else ''}: "
          f"S = {S}, n_h = "
          f"{recipe.sampler.harmonize}, {calls} network calls, default memory budget\n")
    print("| device | box | voxels | slices/call (memory allows) | first step s | s/call "
          "| s/volume | app estimate s | timing | peak RSS MiB | estimate MiB | GPU peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for device in devices:
        probed = probe_speed(ckpt, device)
        per_voxel = None  # s per call per voxel, from the last size, to predict the next
        for side in sides or (GPU_SIDES if device == "cuda" else CPU_SIDES):
            predicted = per_voxel * side ** 3 * calls if per_voxel else 0.0
            steps = S if predicted < BUDGET_S else 3
            r = measure(side, steps, device)
            first = r["times"][0]
            per_call = sum(r["times"][1:]) / sum(r["calls"][1:])
            per_voxel = per_call / side ** 3
            total = first + per_call * (calls - r["calls"][0])
            gpu = f"{r['gpu_peak_mib']:,.0f}" if "gpu_peak_mib" in r else "-"
            print(f"| {device} | {side}^3 | {side ** 3:,} | {r['slices_per_call']} "
                  f"({r['memory_slices']}) | {first:.1f} | {per_call:.2f} | {total:,.0f} | "
                  f"{sampling_seconds(probed, (side,) * 3, 1, calls):,.0f} | "
                  f"{'measured' if steps == S else f'{steps} steps, extrapolated'} "
                  f"| {r['peak_mib']:,.0f} | {r['estimate_mib']:,.0f} | {gpu} |", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        side, steps = (int(v) for v in sys.argv[2:4])
        print(json.dumps(run_one(side, steps, sys.argv[4])))
    else:
        main([int(v) for v in sys.argv[1:]])

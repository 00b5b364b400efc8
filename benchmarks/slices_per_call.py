"""What one network call costs per slice pixel against the slices in it, per slice size.

    python benchmarks/slices_per_call.py [PRESET ...]     # default: tiny lean

Untrained networks of each preset (3 input channels, a three-phase model's), the layout the
sampler's probe picks on this machine (``core/device.py``), the threads ``core/threads.py``
gives; per cell the best of 3 timed rounds, each of enough calls for about 2^20 pixels.
The sampler takes, per box, the batch its own probe finds fastest
(``core/device.py`` ``fastest_chunk``); this table shows why that is not simply "all the
slices memory allows". Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

SIDES = (64, 128, 256)
BATCHES = (1, 2, 4, 8, 16, 32, 64)


def us_per_pixel(model, side: int, batch: int, fmt) -> float:
    x = torch.zeros(batch, model.config.in_channels, side, side).contiguous(memory_format=fmt)
    t = torch.full((batch,), 400)
    c = torch.zeros(batch, dtype=torch.long)
    calls = max(2, (1 << 20) // (batch * side * side))
    model(x, t, c)  # warm-up: this shape's kernels
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            model(x, t, c)
        best = min(best, (time.perf_counter() - start) / calls)
    return best / (batch * side * side) * 1e6


@torch.inference_mode()
def main(presets) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from machine import describe
    from micro3d_gui.core.device import fastest_memory_format
    from micro3d_gui.core.diffusion.unet import UNet, preset_config
    from micro3d_gui.core.threads import use_threads

    use_threads()
    print(describe(torch.device("cpu")))
    print("\nMicroseconds per slice pixel, by slices per call:\n")
    print("| preset | slice | " + " | ".join(f"{b}" for b in BATCHES) + " |")
    print("|---|---|" + "---|" * len(BATCHES))
    for name in presets or ("tiny", "lean"):
        model = UNet(preset_config(name, 3)).eval()
        fmt = fastest_memory_format(model, torch.zeros(8, 3, 64, 64))
        for side in SIDES:
            cells = [f"{us_per_pixel(model, side, b, fmt):.2f}" for b in BATCHES]
            print(f"| {name} | {side}^2 | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

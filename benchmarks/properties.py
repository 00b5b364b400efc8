"""Property solvers' speed: FFT homogenization (7 load cases) and TauFactor diffusivity.

    python benchmarks/properties.py [BOX ...]      # default: 32 64

A periodic unidirectional fibre composite (fibres along x, fibre fraction 0.5, radius 3
voxels) per box; default materials (epoxy / carbon fibre, E contrast 66). Prints a
Markdown table for docs/benchmarks.md. ``MICRO3D_BENCH_THREADS`` sets torch's threads.
"""
from __future__ import annotations

import os
import sys
import time

import torch
from machine import describe

from micro3d_gui.core.device import resolve_device
from micro3d_gui.preprocess.synthetic import fibre_composite
from micro3d_gui.properties.diffusion import diffusivity_all
from micro3d_gui.properties.elastic import DEFAULT_MATERIALS, homogenize


def main(boxes):
    if os.environ.get("MICRO3D_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["MICRO3D_BENCH_THREADS"]))
    device = resolve_device()  # the app's choice: a GPU where there is one
    import taufactor  # noqa: F401,PLC0415  (its 3 s import is not part of a solve's time)
    print(describe(device) + "\n")
    print("| box | fibre fraction | homogenize s | CG iterations per load case | s / iteration "
          "| E1 / E2 / E3 GPa | diffusivity s (2 phases x 3 dirs) | SOR sweeps (fibre z/y/x; matrix z/y/x) |")
    print("|---|---|---|---|---|---|---|---|")
    for box in boxes:
        vol = fibre_composite((box,) * 3, fraction=0.5, radius=3.0, axis=2, seed=0)
        start = time.perf_counter()
        res = homogenize(vol, DEFAULT_MATERIALS, device=device)
        t_el = time.perf_counter() - start
        start = time.perf_counter()
        diff = diffusivity_all(vol, 2, device=device)
        t_diff = time.perf_counter() - start
        sweeps = "; ".join("/".join(str(diff[k]["iterations"][d]) for d in "zyx") for k in (1, 0))
        c = res.constants
        print(f"| {box}^3 | {vol.mean():.3f} | {t_el:.1f} | {', '.join(map(str, res.iterations))} "
              f"| {t_el / sum(res.iterations):.3f} | {c['E1']:.1f} / {c['E2']:.1f} / {c['E3']:.1f} "
              f"| {t_diff:.1f} | {sweeps} |", flush=True)


if __name__ == "__main__":
    main([int(b) for b in sys.argv[1:]] or [32, 64])

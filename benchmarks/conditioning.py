"""Conditioned sampling with the bundled models: kept sections and target fractions.

    python benchmarks/conditioning.py [--size 32] [--seeds 0 1] [--materials separator electrode]
                                      [--shifts -0.2 -0.1 0.1 0.2] [--recipe fast]

Kept section: the truth's xz section through the middle of a ``size`` box is kept at slice
``size // 2``; reported: whether the volume holds it voxel for voxel, the S2 relative error
of the single slices at distance 1, 2, 3 from it and of all other slices (their mean is
the volume's own average error), against the truth's xz slices (``metrics.compare.
slice_s2_errors``), and the same for the truth's own slices around that section (what a
continuation of it looks like). Target fractions: phase 0's fraction moved by each shift from the
truth's (the others scaled to fill the rest); reported: the fractions reached, the
transition rates z / y / x (the truth's at the top) and the share of speckle voxels (no
6-neighbour in their own phase: 0 in the truth), a measure of when the structure stops
being plausible. Prints Markdown tables for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from micro3d_gui.core.checkpoint import load_checkpoint
from micro3d_gui.core.diffusion.sampler import KeptSection
from micro3d_gui.core.recipe import get_recipe, sample
from micro3d_gui.io.volume import read_volume
from micro3d_gui.metrics.anisotropy import transition_rate
from micro3d_gui.metrics.compare import slice_s2_errors
from micro3d_gui.metrics.fractions import volume_fractions
from micro3d_gui.paths import demo_dir, demo_model


def speckle(volume: np.ndarray) -> float:
    """Share of voxels none of whose (up to 6) face neighbours is in their own phase."""
    v = np.pad(volume.astype(np.int16), 1, constant_values=-1)
    core = v[1:-1, 1:-1, 1:-1]
    same = np.zeros(core.shape, bool)
    for axis in range(3):
        for shift in (-1, 1):
            same |= np.roll(v, shift, axis=axis)[1:-1, 1:-1, 1:-1] == core
    return float((~same).mean())


def material(name: str):
    """(truth volume, checkpoint, K) of a bundled material."""
    ckpt = load_checkpoint(demo_model(name))
    return read_volume(demo_dir(name) / "truth.tif"), ckpt, int(ckpt["num_phases"])


def fmt(values) -> str:
    return " / ".join(f"{v:.3f}" for v in values)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--materials", nargs="+", default=["separator", "electrode"])
    ap.add_argument("--shifts", type=float, nargs="*", default=[-0.2, -0.1, 0.1, 0.2])
    ap.add_argument("--recipe", default="fast")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = get_recipe(args.recipe)
    n = args.size
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; recipe {args.recipe}, "
          f"{n}^3, seeds {args.seeds}\n")
    print("| material | seed | kept voxel for voxel | S2 error of the kept slice | S2 error at "
          "distance 1 / 2 / 3 | mean at 1-3 | volume's own mean | ratio | the truth's slices "
          "at 1-3 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m in args.materials:
        truth, ckpt, k = material(m)
        z0, y0, x0 = (s // 2 - n // 2 for s in truth.shape)
        section = truth[z0:z0 + n, y0 + n // 2, x0:x0 + n]
        index = n // 2
        box = truth[z0:z0 + n, y0:y0 + n, x0:x0 + n]  # the truth around the kept section
        t_err = slice_s2_errors(box, truth, "xz", k)
        t_near = np.mean([t_err[index + d] for d in (-3, -2, -1, 1, 2, 3)])
        for seed in args.seeds:
            v = sample(ckpt, recipe, (n,) * 3, 1, seed=seed,
                       keep=[KeptSection("xz", index, section)])[0].numpy()
            exact = bool(np.array_equal(v[:, index, :], section))
            err = slice_s2_errors(v, truth, "xz", k)
            by_d = [np.mean([err[index - d], err[index + d]]) for d in (1, 2, 3)]
            own = float(np.mean(np.delete(err, index)))
            print(f"| {m} | {seed} | {'yes' if exact else 'NO'} | {err[index]:.3f} | "
                  f"{fmt(by_d)} | {np.mean(by_d):.3f} | {own:.3f} | {np.mean(by_d) / own:.2f} "
                  f"| {t_near:.3f} |", flush=True)
    print()
    print("| material | target fractions | reached (mean of seeds) | transition rates z / y / x "
          "| speckle voxels |")
    print("|---|---|---|---|---|")
    for m in args.materials:
        truth, ckpt, k = material(m)
        f = volume_fractions(truth, k)
        r = transition_rate(truth)
        print(f"| {m} | truth {fmt(f)} | - | {fmt(r.values())} | {speckle(truth):.4f} |")
        for shift in [0.0, *args.shifts]:
            target = f.copy()
            target[0] = f[0] + shift
            target[1:] = f[1:] * (1 - target[0]) / f[1:].sum()
            if target[0] <= 0 or target[0] >= 1:
                continue
            vols = [sample(ckpt, recipe, (n,) * 3, 1, fractions=target.tolist(),
                           seed=s)[0].numpy() for s in args.seeds]
            reached = np.mean([volume_fractions(v, k) for v in vols], axis=0)
            rates = np.mean([list(transition_rate(v).values()) for v in vols], axis=0)
            sp = np.mean([speckle(v) for v in vols])
            print(f"| {m} | {fmt(target)} (phase 0 {shift:+.1f}) | {fmt(reached)} | "
                  f"{fmt(rates)} | {sp:.4f} |", flush=True)


if __name__ == "__main__":
    main()

"""Where does the chain lose a real structure? Real sub-volumes noised to a step and
finished by the recipe's remaining steps (SDEdit), judged by the physics yardstick.

    python benchmarks/from_truth.py --material electrode --models DIR [--recipe fast]
        [--set NAME=VALUE ...] [--starts I0 ...] [--count 2] [--size 64] [--seed 3]
        [--floor-cache FLOORS.json]

``count`` random real sub-volumes of the material's truth (``time_to_quality.material``)
start the chain at each respaced step i0 of ``--starts`` (0 = the last, least noisy; the
recipe's steps - 1 = pure noise in all but name). The chain then runs steps i0 .. 0, each
in the plane and with the harmonizing the whole chain gives it (``core.recipe.sample``
with ``start``). A chain whose steps keep the data's distribution hands back real-looking
volumes from any start; the noisiest start from which the physics drifts out of the real
band says which steps change it. Per start: the share of voxels changed, and the
yardstick (``metrics.yardstick``: S2 and lineal path x floor, TauFactor D_eff/D_0 per
phase along z / y / x against the real sub-volumes' band); the start volumes' own first.
Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from machine import describe
from time_to_quality import DEVDATA, floor_of, material, setting

from micro3d_gui.core.checkpoint import load_checkpoint, schedule_from_checkpoint
from micro3d_gui.core.diffusion.respace import respace
from micro3d_gui.core.recipe import get_recipe, sample
from micro3d_gui.metrics.compare import random_sub_volumes
from micro3d_gui.metrics.yardstick import (YardstickSettings, diffusivity_text, judge,
                                           ratio_text)


def cells(verdict: dict) -> str:
    """The yardstick's cells: S2 and lineal path x floor, D_rel, passes."""
    r = verdict["ratio"]
    return (f"{ratio_text(r['s2'])} | {ratio_text(r['lineal_path'])} | "
            f"{diffusivity_text(verdict['diffusivity'])} | "
            f"{'yes' if verdict['passes'] else 'no'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--material", required=True)
    ap.add_argument("--models", type=Path, required=True, help="folder of <material>.pt")
    ap.add_argument("--recipe", default="fast")
    ap.add_argument("--set", type=setting, nargs="+", default=[], metavar="NAME=VALUE")
    ap.add_argument("--starts", type=int, nargs="+", default=None,
                    help="respaced steps to start from (0 = the least noisy; default: a "
                         "sixth, a third, a half and two thirds of the steps, and the "
                         "noisiest: 2 4 6 8 11 for fast's 12)")
    ap.add_argument("--count", type=int, default=2)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=3, help="seed of the sub-volumes' places")
    ap.add_argument("--devdata", type=Path, default=DEVDATA)
    ap.add_argument("--floor-cache", type=Path, default=None, metavar="FLOORS.json",
                    help="keep the truths' floors in this file and reuse them")
    a = ap.parse_args()
    print(describe("cpu") + "\n")
    _, k, truth = material(a.material, a.devdata)
    ckpt = load_checkpoint(a.models / f"{a.material}.pt")
    recipe = get_recipe(a.recipe).replace(**dict(a.set))
    base = schedule_from_checkpoint(ckpt)
    steps = recipe.sampling_steps or base.num_steps
    abar = respace(base, steps).alphas_cumprod
    starts = a.starts or [steps // 6, steps // 3, steps // 2, 2 * steps // 3, steps - 1]
    settings = YardstickSettings(edge=a.size)
    floor = floor_of(a.material, truth, k, settings, True, "cpu", a.floor_cache)
    subs = np.stack(random_sub_volumes(truth, a.size, a.count, a.seed))
    what = f"{a.recipe} {' '.join(f'{n}={v}' for n, v in a.set)}".strip()
    print(f"{a.material}, {what}, started from {a.count} real {a.size}^3 sub-volumes "
          f"(seed {a.seed}); the yardstick against the real sub-volumes' band\n")
    print("| start step (noise sd) | voxels changed | S2 x floor | lineal path x floor | "
          "D_rel vs real sub-volumes, z/y/x | passes |")
    print("|---|---|---|---|---|---|")
    print(f"| the start volumes | 0 | {cells(judge(subs, truth, k, floor, settings))} |",
          flush=True)
    for i0 in starts:
        vols = sample(ckpt, recipe, (a.size,) * 3, a.count, seed=0,
                      start=(subs, i0)).numpy()
        print(f"| {i0} ({np.sqrt(1 - abar[i0]):.2f}) | {(vols != subs).mean():.3f} | "
              f"{cells(judge(vols, truth, k, floor, settings))} |", flush=True)


if __name__ == "__main__":
    main()

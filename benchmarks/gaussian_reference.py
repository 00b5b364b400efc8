"""What S2 alone gives: each phase of a material's truth against its Gaussian reference, a
level-cut Gaussian random field with the phase's own 3D two-point function
(``metrics.gaussian_reference``), judged by the physics yardstick.

    python benchmarks/gaussian_reference.py [--materials electrode electrode3 ...]
        [--phases K ...] [--count 2] [--size 64] [--seed 0] [--floor-cache FLOORS.json]

Per material and phase, the truth is cut to that phase against the rest (a binary
material), and ``count`` Gaussian references of the whole truth are drawn, one random
``size``^3 sub-volume of each. They are judged against the binary truth as generated
volumes are (``metrics.yardstick.judge``: S2 and lineal path x floor per plane, D_eff/D_0
along z / y / x against the real sub-volumes' band; phase 1 = the phase, 0 = the rest).
A generated phase whose diffusivity sits where its Gaussian reference's does has the
truth's two-point statistics and nothing of what the structure adds beyond them.
Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from machine import describe
from time_to_quality import DEVDATA, MATERIALS, floor_of, material

from micro3d_gui.metrics.compare import random_sub_volumes
from micro3d_gui.metrics.gaussian_reference import gaussian_reference
from micro3d_gui.metrics.yardstick import (YardstickSettings, diffusivity_text, judge,
                                           ratio_text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--materials", nargs="+", default=list(MATERIALS))
    ap.add_argument("--phases", type=int, nargs="+", default=None,
                    help="the phases to judge (default: every phase)")
    ap.add_argument("--count", type=int, default=2)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--devdata", type=Path, default=DEVDATA)
    ap.add_argument("--floor-cache", type=Path, default=None, metavar="FLOORS.json",
                    help="keep the binary truths' floors in this file and reuse them")
    a = ap.parse_args()
    print(describe("cpu") + "\n")
    settings = YardstickSettings(edge=a.size)
    rng = np.random.default_rng(a.seed)
    print("| material | phase (fraction) | volumes | S2 x floor | lineal path x floor | "
          "D_rel vs real sub-volumes, z/y/x (1: the phase, 0: the rest) | passes |")
    print("|---|---|---|---|---|---|---|")
    for name in a.materials:
        _, k, truth = material(name, a.devdata)
        for phase in a.phases if a.phases is not None else range(k):
            binary = (truth == phase).astype(np.uint8)
            floor = floor_of(f"{name}-phase{phase}", binary, 2, settings, True, "cpu",
                             a.floor_cache)
            refs = gaussian_reference(binary.astype(bool), a.count, rng)
            subs = [random_sub_volumes(r.astype(np.uint8), a.size, 1, a.seed + n)[0]
                    for n, r in enumerate(refs)]
            verdict = judge(subs, binary, 2, floor, settings)
            print(f"| {name} | {phase} ({binary.mean():.2f}) | Gaussian reference | "
                  f"{ratio_text(verdict['ratio']['s2'])} | "
                  f"{ratio_text(verdict['ratio']['lineal_path'])} | "
                  f"{diffusivity_text(verdict['diffusivity'])} | "
                  f"{'yes' if verdict['passes'] else 'no'} |", flush=True)


if __name__ == "__main__":
    main()

"""Reconstruction quality against a known 3D truth, per synthetic material and sampler setting.

    python benchmarks/quality.py [--size 32] [--count 3] [--materials fibres separator electrode]
                                 [--paper-size 16]

For each bundled material (``resources/demo/<m>/truth.tif`` and the model trained on its
micrographs, ``models/<m>.pt``, see ``models/train_models.sh``), sample ``count`` volumes per
setting and report against the truth: per-plane S2 relative error (mean over phases and
image axes; ``metrics.report``), the largest volume-fraction error, and relative diffusivity
per direction next to the truth's. Floor: the same errors for random real sub-volumes of the
truth of the same size. Settings: the app's default (S = 50, n_h = 1 with the three sampler
corrections), no harmonizing (n_h = 0), the paper's sampler equations without corrections at
S = 50, n_h = 1, and the paper's full schedule (S = 1000, n_h = 4) on a small box. Prints a
Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from micro3d_gui.core.checkpoint import load_checkpoint
from micro3d_gui.core.diffusion.sampler import SamplerSettings
from micro3d_gui.core.generate import generate
from micro3d_gui.io.volume import read_volume
from micro3d_gui.metrics.report import evaluate_volumes
from micro3d_gui.paths import demo_dir, demo_model

PLAIN = dict(x0_projection="none", anchor_fractions=False, match_variance=False)
#: (label, sampling steps S, settings, box edge: None = --size, else --paper-size)
SETTINGS = (
    ("app default: S=50, n_h=1", 50, SamplerSettings(harmonize=1), None),
    ("no harmonizing: S=50, n_h=0", 50, SamplerSettings(harmonize=0), None),
    ("S=50, n_h=3", 50, SamplerSettings(harmonize=3), None),
    ("paper equations, no corrections: S=50, n_h=1", 50, SamplerSettings(harmonize=1, **PLAIN),
     None),
    ("paper schedule: S=1000, n_h=4", 1000, SamplerSettings(harmonize=4), "paper"),
    ("paper schedule and equations: S=1000, n_h=4", 1000, SamplerSettings(harmonize=4, **PLAIN),
     "paper"),
)


def sub_volumes(truth: np.ndarray, edge: int, count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        z, y, x = (int(rng.integers(0, s - edge + 1)) for s in truth.shape)
        out.append(truth[z:z + edge, y:y + edge, x:x + edge])
    return out


def row(material: str, label: str, volumes, truth, k: int, seconds: float | None) -> str:
    rep = evaluate_volumes(volumes, k, reference=truth, diffusivity=True)
    s2 = rep["s2_relative_error"]
    vf_err = max(abs(rep["volume_fraction"][p] - rep["reference_volume_fraction"][p])
                 for p in rep["volume_fraction"])
    phase = str(k - 1)
    d = rep["relative_diffusivity"][phase]
    return (f"| {material} | {label} | {volumes[0].shape[0]}^3 x {len(volumes)} | "
            f"{s2['xy']:.3f} / {s2['xz']:.3f} / {s2['yz']:.3f} | {vf_err:.3f} | "
            f"{d['z']:.3f} / {d['y']:.3f} / {d['x']:.3f} | "
            f"{'-' if seconds is None else f'{seconds:.0f}'} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--paper-size", type=int, default=16)
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--materials", nargs="+", default=["fibres", "separator", "electrode"])
    ap.add_argument("--skip-paper", action="store_true", help="leave out the S=1000 rows")
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| material | setting | volumes | S2 rel. error xy / xz / yz | max vf error "
          "| D_rel of phase K-1 z / y / x | s per volume |")
    print("|---|---|---|---|---|---|---|")
    for m in args.materials:
        truth = read_volume(demo_dir(m) / "truth.tif")
        ckpt = load_checkpoint(demo_model(m))
        k = ckpt["num_phases"]
        for edge in sorted({args.size, args.paper_size}):
            print(row(m, f"truth: random real sub-volumes {edge}^3", sub_volumes(truth, edge,
                      args.count), truth, k, None), flush=True)
        for label, steps, settings, box in SETTINGS:
            if box == "paper" and args.skip_paper:
                continue
            edge = args.paper_size if box == "paper" else args.size
            start = time.perf_counter()
            vols = generate(ckpt, (edge,) * 3, args.count, steps, settings, seed=0).numpy()
            per = (time.perf_counter() - start) / args.count
            print(row(m, label, list(vols), truth, k, per), flush=True)


if __name__ == "__main__":
    main()

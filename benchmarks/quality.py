"""Reconstruction quality against a known 3D truth, per material and sampling recipe: the
Pareto table of network calls against errors.

    python benchmarks/quality.py [--size 32] [--seeds 0 1] [--materials fibres separator electrode]
                                 [--rows fast paper ...] [--paper-size 16] [--diffusivity]
                                 [--model NAME=MODEL.pt:TRUTH.tif ...]

For each bundled material (``resources/demo/<m>/truth.tif`` and the model trained on its
micrographs, ``models/<m>.pt``, see ``models/train_models.sh``), and any ``--model`` given
(e.g. a model trained on a devdata volume and that volume), sample one volume per seed and
row and report against the truth: network calls per slice batch, per-plane S2 relative
error (mean over phases and image axes; ``metrics.report``), the largest volume-fraction
error, the transition rates along z / y / x (``metrics.anisotropy``) next to the truth's,
and optionally the relative diffusivity of the last phase. Floor: the same errors for
random real sub-volumes of the truth of the same size. Every row is a
:mod:`micro3d_gui.core.recipe` recipe (named, or the ``fine`` recipe with fields replaced);
prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from micro3d_gui.core.checkpoint import load_checkpoint
from micro3d_gui.core.recipe import RECIPES, Recipe, get_recipe, sample
from micro3d_gui.io.volume import read_volume
from micro3d_gui.metrics.anisotropy import transition_rate
from micro3d_gui.metrics.compare import random_sub_volumes
from micro3d_gui.metrics.report import evaluate_volumes
from micro3d_gui.paths import demo_dir, demo_model


@dataclass(frozen=True)
class Row:
    """A benchmark row: ``base`` recipe with ``fields`` replaced; ``paper_box``: sampled on
    the small --paper-size box (the 5,000-call rows)."""

    name: str
    base: str
    fields: dict = field(default_factory=dict)
    paper_box: bool = False

    def recipe(self) -> Recipe:
        return get_recipe(self.base).replace(**self.fields)


#: name -> row. "fast", "blend", "fine", "quick" and "paper" are the named recipes; the
#: others are candidates, written as changes of ``fine`` (S = 50, n_h = 1) so that their
#: names hold whatever ``fast`` is.
ROWS = {r.name: r for r in (
    Row("fast", "fast"),
    Row("blend", "blend"),
    Row("fine", "fine"),
    Row("quick", "quick"),
    Row("S=50, n_h=0", "fine", dict(harmonize=0)),
    Row("S=50, n_h=3", "fine", dict(harmonize=3)),
    Row("S=35, n_h=1", "fine", dict(sampling_steps=35)),
    Row("S=25, n_h=1", "fine", dict(sampling_steps=25)),
    Row("S=35, n_h=1, DDIM eta=0", "fine", dict(sampling_steps=35, solver="ddim", eta=0.0)),
    Row("S=35, n_h=1, DDIM eta=0.5", "fine", dict(sampling_steps=35, solver="ddim", eta=0.5)),
    Row("S=35, n_h=1, DPM-Solver++(2M)", "fine", dict(sampling_steps=35, solver="dpm2m")),
    Row("S=40, n_h=3 for the first 25 %", "fine", dict(sampling_steps=40, harmonize=3,
                                                       harmonize_fraction=0.25)),
    Row("S=30, n_h=3 for the first 45 %", "fine", dict(sampling_steps=30, harmonize=3,
                                                       harmonize_fraction=0.45)),
    Row("S=25, n_h=2 for the first 90 %", "fine", dict(sampling_steps=25, harmonize=2,
                                                       harmonize_fraction=0.9)),
    Row("S=40, n_h=3 for the last 25 %", "fine", dict(sampling_steps=40, harmonize=3,
                                                      harmonize_fraction=0.25,
                                                      harmonize_late=True)),
    Row("S=25, n_h=3 for the last 60 %", "fine", dict(sampling_steps=25, harmonize=3,
                                                      harmonize_fraction=0.6,
                                                      harmonize_late=True)),
    Row("fine without the decoded anchor", "fine", dict(anchor_decoded=False)),
    Row("paper equations, no corrections: S=50, n_h=1", "paper",
        dict(sampling_steps=50, harmonize=1)),
    Row("paper schedule, corrected: S=1000, n_h=4", "fine",
        dict(sampling_steps=1000, harmonize=4), paper_box=True),
    Row("paper", "paper", paper_box=True),
)}


def _distinct(rows) -> list[str]:
    """The names of ``rows`` whose recipe no earlier one has (a candidate that became a named
    recipe keeps its name for the tables already written, but runs once)."""
    seen, names = [], []
    for r in rows:
        if r.recipe() not in seen:
            seen.append(r.recipe())
            names.append(r.name)
    return names


DEFAULT_ROWS = _distinct(r for r in ROWS.values() if not r.paper_box)


def rates(volumes) -> list[float]:
    per = [transition_rate(v) for v in volumes]
    return [float(np.mean([r[a] for r in per])) for a in ("z", "y", "x")]


def row(material: str, label: str, calls, volumes, truth, k: int, seconds: float | None,
        diffusivity: bool) -> str:
    rep = evaluate_volumes(volumes, k, reference=truth, diffusivity=diffusivity)
    s2 = rep["s2_relative_error"]
    vf_err = max(abs(rep["volume_fraction"][p] - rep["reference_volume_fraction"][p])
                 for p in rep["volume_fraction"])
    rz, ry, rx = rates(volumes)
    text = (f"| {material} | {label} | {calls} | {volumes[0].shape[0]}^3 x {len(volumes)} | "
            f"{s2['xy']:.3f} / {s2['xz']:.3f} / {s2['yz']:.3f} | "
            f"{np.mean(list(s2.values())):.3f} | {vf_err:.3f} | "
            f"{rz:.3f} / {ry:.3f} / {rx:.3f} |")
    if diffusivity:
        d = rep["relative_diffusivity"][str(k - 1)]
        text += f" {d['z']:.3f} / {d['y']:.3f} / {d['x']:.3f} |"
    return text + f" {'-' if seconds is None else f'{seconds:.0f}'} |"


def materials(names, extra):
    for m in names:
        yield m, demo_model(m), demo_dir(m) / "truth.tif"
    for spec in extra:
        name, paths = spec.split("=", 1)
        model, truth = paths.split(":", 1)
        yield name, model, truth


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--paper-size", type=int, default=16)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--materials", nargs="*", default=["fibres", "separator", "electrode"])
    ap.add_argument("--model", action="append", default=[], metavar="NAME=MODEL.pt:TRUTH.tif",
                    help="another model and its 3D truth (e.g. trained on a devdata volume)")
    ap.add_argument("--rows", nargs="+", default=DEFAULT_ROWS, choices=list(ROWS),
                    metavar="ROW", help=f"rows to run (default: all but the S=1000 ones); "
                                        f"known: {'; '.join(ROWS)}".replace("%", "%%"))
    ap.add_argument("--diffusivity", action="store_true", help="also TauFactor D_rel")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; recipes "
          f"{', '.join(RECIPES)}\n")
    head = ("| material | setting | network calls | volumes | S2 rel. error xy / xz / yz | "
            "S2 mean | max vf error | transition rates z / y / x |")
    if args.diffusivity:
        head += " D_rel of phase K-1 z / y / x |"
    print(head + " s per volume |")
    print("|---" * (head.count("|") + 1) + "|")
    for m, model, truth_path in materials(args.materials, args.model):
        truth = read_volume(truth_path)
        ckpt = load_checkpoint(model)
        k = ckpt["num_phases"]
        rows = [ROWS[n] for n in args.rows]
        edges = {args.paper_size if r.paper_box else args.size for r in rows}
        for edge in sorted(edges):
            print(row(m, f"truth: random real sub-volumes {edge}^3", "-",
                      random_sub_volumes(truth, edge, len(args.seeds)), truth, k, None,
                      args.diffusivity), flush=True)
        for r in rows:
            recipe = r.recipe()
            edge = args.paper_size if r.paper_box else args.size
            start = time.perf_counter()
            vols = [sample(ckpt, recipe, (edge,) * 3, 1, seed=s)[0].numpy() for s in args.seeds]
            per = (time.perf_counter() - start) / len(args.seeds)
            print(row(m, r.name, recipe.network_calls(ckpt), vols, truth, k, per,
                      args.diffusivity), flush=True)


if __name__ == "__main__":
    main()

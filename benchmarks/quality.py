"""Reconstruction quality against a known 3D truth, per material and sampling recipe: the
Pareto table of network calls against errors.

    python benchmarks/quality.py [--size 32] [--seeds 0 1] [--materials fibres separator electrode]
                                 [--rows fast paper ...] [--paper-size 16] [--diffusivity]
                                 [--model NAME=MODEL.pt:TRUTH.tif ...]

For each bundled material (``resources/demo/<m>/truth.tif`` and the model trained on its
micrographs, ``models/<m>.pt``, see ``models/train_models.sh``), and any ``--model`` given
(e.g. a model trained on a devdata volume and that volume), sample one volume per seed and
row and judge them against the truth with the physics yardstick (``metrics.yardstick``):
network calls per slice batch, S2 and lineal-path relative error per plane as a ratio to
their floor (the same errors of 8 random real sub-volumes of the truth of the same size),
the largest volume-fraction error, the transition rates along z / y / x
(``metrics.anisotropy``) next to the truth's, and with ``--diffusivity`` the TauFactor
relative diffusivity of every phase and axis against the real sub-volumes' mean +- sd. Every row is a
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
from micro3d_gui.metrics.yardstick import (YardstickSettings, diffusivity_text, judge,
                                           ratio_text, truth_floor)
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
        floor: dict, settings: YardstickSettings) -> str:
    verdict = judge(volumes, truth, k, floor, settings)
    rz, ry, rx = rates(volumes)
    return (f"| {material} | {label} | {calls} | {volumes[0].shape[0]}^3 x {len(volumes)} | "
            f"{ratio_text(verdict['ratio']['s2'])} | "
            f"{ratio_text(verdict['ratio']['lineal_path'])} | "
            f"{verdict['volume_fraction_error']:.3f} | {rz:.3f} / {ry:.3f} / {rx:.3f} | "
            f"{diffusivity_text(verdict['diffusivity'])} | "
            f"{'yes' if verdict['passes'] else 'no'} | "
            f"{'-' if seconds is None else f'{seconds:.0f}'} |")


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
    ap.add_argument("--diffusivity", action="store_true",
                    help="also TauFactor relative diffusivity of every phase and axis")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; recipes "
          f"{', '.join(RECIPES)}\n")
    head = ("| material | setting | network calls | volumes | S2 x floor xy / xz / yz | "
            "lineal path x floor | max vf error | transition rates z / y / x | "
            "rel. diffusivity vs real, per phase z/y/x (* outside 2 sd) | passes |")
    print(head + " s per volume |")
    print("|---" * (head.count("|") + 1) + "|")
    for m, model, truth_path in materials(args.materials, args.model):
        truth = read_volume(truth_path)
        ckpt = load_checkpoint(model)
        k = ckpt["num_phases"]
        rows = [ROWS[n] for n in args.rows]
        edges = {args.paper_size if r.paper_box else args.size for r in rows}
        settings, floors = {}, {}
        for edge in sorted(edges):
            settings[edge] = YardstickSettings(edge=edge)
            floors[edge] = truth_floor(truth, k, settings[edge], diffusivity=args.diffusivity)
            print(row(m, f"truth: random real sub-volumes {edge}^3 (not the floor's)", "-",
                      random_sub_volumes(truth, edge, len(args.seeds), seed=1), truth, k, None,
                      floors[edge], settings[edge]), flush=True)
        for r in rows:
            recipe = r.recipe()
            edge = args.paper_size if r.paper_box else args.size
            start = time.perf_counter()
            vols = [sample(ckpt, recipe, (edge,) * 3, 1, seed=s)[0].numpy() for s in args.seeds]
            per = (time.perf_counter() - start) / len(args.seeds)
            print(row(m, r.name, recipe.network_calls(ckpt), vols, truth, k, per,
                      floors[edge], settings[edge]), flush=True)


if __name__ == "__main__":
    main()

"""Time to quality: train with the default recipe for a time budget, then sample and compare.

    python benchmarks/time_to_quality.py [--budgets 2 5 10 20] [--size 64] [--count 2]
        [--materials fibres separator electrode tf500 electrode3] [--devdata DIR]
        [--models DIR]    # evaluate DIR/<material>.pt (e.g. the bundled models) instead
        [--recipe blend] [--set gamma=1 harmonize=6]    # sampling recipe, and fields over it
        [--seed 1]    # the training seed (micro3d train --seed)

For each material and budget (minutes): train a model from the material's micrographs with
``prepare_trainer`` and nothing but the time given (the recipe of ``micro3d train --time``),
sample ``count`` volumes of ``size``^3 with the default sampling recipe (the app's), and report against the
material's 3D truth: the S2 relative error per plane (``metrics.report``), its ratio to the
floor (the same error of random real sub-volumes of the truth of the same size), the largest
phase-fraction error, and the last fidelity report of training (2D samples against the
micrographs, as a ratio to its own floor). Materials: the bundled demos
(``resources/demo/<m>``: 32 micrographs per plane cut from a 128^3 truth) and the third-party
volumes of ``../shared/devdata`` (``tf500``: every slice of the anisotropic 160^3 volume;
``electrode3``: every second slice of the three-phase 256^3 volume), cut into planes as a
user's micrographs would be. Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from machine import describe

from micro3d_gui.core.checkpoint import load_checkpoint
from micro3d_gui.core.device import resolve_device
from micro3d_gui.core.recipe import DEFAULT_RECIPE, RECIPES, get_recipe, sample
from micro3d_gui.core.training import PlaneDataset, prepare_trainer
from micro3d_gui.preprocess.dataset import load_labelled_planes
from micro3d_gui.core.planes import volume_plane_images
from micro3d_gui.io.volume import read_volume
from micro3d_gui.metrics.compare import random_sub_volumes
from micro3d_gui.metrics.fidelity import FidelityMonitor
from micro3d_gui.metrics.report import evaluate_volumes
from micro3d_gui.paths import demo_dir

DEVDATA = Path(__file__).resolve().parents[2] / "shared" / "devdata"
#: devdata volumes: (file, every n-th slice per plane)
DEV_VOLUMES = {"tf500": ("tf500_aniso_160.tif", 1), "electrode3": ("electrode_3phase_256.tif", 2)}


#: The paper's reverse-step equations (no x0 projection, anchors or variance matching) at
#: the default recipe's schedule: does the model alone carry the structure?
UNCORRECTED = dict(x0_projection="none", anchor_fractions=False, anchor_decoded=False,
                   match_variance=False)


def material(name: str, devdata: Path):
    """(images per plane, number of phases, truth volume) of a demo or devdata material."""
    if name in DEV_VOLUMES:
        file, step = DEV_VOLUMES[name]
        truth = read_volume(devdata / file)
        k = int(truth.max()) + 1
        return volume_plane_images(truth, step), k, truth
    d = demo_dir(name)
    planes = load_labelled_planes({p: [d / p] for p in ("xy", "xz", "yz")}, None, None, None)
    return planes.images, planes.num_phases, read_volume(d / "truth.tif")


def setting(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` of a sampling setting (a Recipe field); VALUE as JSON, else text."""
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=VALUE, e.g. gamma=1")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def errors(volumes, truth, k):
    rep = evaluate_volumes(list(volumes), k, reference=truth)
    s2 = rep["s2_relative_error"]
    vf = max(abs(rep["volume_fraction"][p] - rep["reference_volume_fraction"][p])
             for p in rep["volume_fraction"])
    return s2, vf


def row(name, budget, label, s2, floor, vf, fidelity, seconds) -> str:
    planes = ("xy", "xz", "yz")
    return (f"| {name} | {budget} | {label} | "
            + " / ".join(f"{s2[p]:.3f}" for p in planes) + " | "
            + " / ".join(f"{s2[p] / floor[p]:.1f}" for p in planes)
            + f" | {vf:.3f} | {fidelity} | {'-' if seconds is None else f'{seconds:.0f}'} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", type=float, nargs="+", default=[2, 5, 10, 20],
                    help="training minutes")
    ap.add_argument("--materials", nargs="+",
                    default=["fibres", "separator", "electrode", "tf500", "electrode3"])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--count", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--devdata", type=Path, default=DEVDATA)
    ap.add_argument("--save", type=Path, default=None, help="keep the models in this folder")
    ap.add_argument("--models", type=Path, default=None,
                    help="evaluate the models DIR/<material>.pt (trained by `micro3d train`, "
                         "e.g. models/) instead of training; --budgets is then ignored")
    ap.add_argument("--uncorrected", action="store_true",
                    help="also sample each model with the paper's equations (no x0 "
                         "projection, anchor or variance matching): does the model alone "
                         "carry the structure?")
    ap.add_argument("--recipe", choices=tuple(RECIPES), default=DEFAULT_RECIPE,
                    help="the sampling recipe of every row (default: the app's)")
    ap.add_argument("--set", type=setting, nargs="+", default=[], metavar="NAME=VALUE",
                    help="sampling settings over the recipe for every row (e.g. "
                         "gamma=1 harmonize=6): which part of the recipe loses what")
    ap.add_argument("--seed", type=int, default=None,
                    help="training seed (default: the recipe's, as micro3d train)")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    recipe = get_recipe(args.recipe).replace(**dict(args.set))
    print(f"sampling: the {args.recipe} recipe",
          *(["with", " ".join(f"{k}={v}" for k, v in args.set)] if args.set else []))
    print(describe(device), "\n")
    print("| material | budget | preset, steps trained | S2 rel. error xy / xz / yz | "
          "x floor | max vf error | 2D fidelity x its floor | s sampling per volume |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.materials:
        images, k, truth = material(name, args.devdata)
        floor, floor_vf = errors(random_sub_volumes(truth, args.size, 8), truth, k)
        print(f"| {name} | real sub-volumes | - | "
              + " / ".join(f"{floor[p]:.3f}" for p in ("xy", "xz", "yz"))
              + f" | 1 | {floor_vf:.3f} | - | - |", flush=True)
        data = PlaneDataset(images, k)
        for minutes in ([None] if args.models else args.budgets):
            if minutes is None:
                ckpt = load_checkpoint(args.models / f"{name}.pt")
                minutes = ckpt.get("train_seconds", 0.0) / 60
                steps, preset = int(ckpt["step"]), ckpt["model_config"]["preset"]
                fid = (ckpt.get("fidelity") or [None])[-1]
            else:
                trainer, _ = prepare_trainer(data, "auto", device, time_budget_s=60 * minutes,
                                             seed=args.seed)
                trainer.train(monitor=FidelityMonitor.for_trainer(trainer))
                if args.save:
                    args.save.mkdir(parents=True, exist_ok=True)
                    seed = "" if args.seed is None else f"_seed{args.seed}"
                    trainer.save(args.save / f"{name}_{minutes:g}min{seed}.pt")
                ckpt = trainer.state()
                steps, preset = trainer.step, trainer.model_config.preset
                fid = trainer.fidelity[-1]
            start = time.perf_counter()
            vols = sample(ckpt, recipe, (args.size,) * 3, args.count, seed=0,
                          device=device).numpy()
            per = (time.perf_counter() - start) / args.count
            s2, vf = errors(vols, truth, k)
            ratio = ("-" if fid is None else "%.1f (worst plane)" % max(
                fid["errors"][p] / fid["floor"][p] for p in fid["errors"]))
            label = f"{preset}, {steps}"
            print(row(name, f"{minutes:.3g} min", label, s2, floor, vf, ratio, per), flush=True)
            if args.uncorrected:
                vols = sample(ckpt, recipe.replace(**UNCORRECTED), (args.size,) * 3,
                              args.count, seed=0, device=device).numpy()
                s2, vf = errors(vols, truth, k)
                print(row(name, f"{minutes:.3g} min, paper equations", label, s2, floor, vf,
                          "-", None), flush=True)


if __name__ == "__main__":
    main()

"""Time to quality: train with the default recipe for a time budget, then sample and compare.

    python benchmarks/time_to_quality.py [--budgets 2 5 10 20] [--size 64] [--count 2]
        [--materials fibres separator electrode tf500 electrode3] [--devdata DIR]
        [--models DIR]    # evaluate DIR/<material>.pt (e.g. the bundled models) instead
        [--recipe blend] [--set gamma=1 harmonize=6]    # sampling recipe, and fields over it
        [--seed 1]    # the training seed (micro3d train --seed)
        [--sample-seeds 0 1 2]    # a row per sampling seed (default: 0)
        [--no-resample]    # no second pass where the self-check finds broken-up or long phases
        [--judge-edge 64]    # judge each volume's two opposite corner cubes of this side
        [--real-pairs 6]    # first judge pairs of real sub-volumes as generated volumes are
        [--self-condition]    # self-conditioned networks (micro3d train --self-condition)
        [--no-diffusivity] [--floor-cache FLOORS.json]    # reuse the truths' floors
        [--planes xy [xz]] [--isotropic | --like PLANE=PLANE ...]    # a declared symmetry
        [--slice-step N]    # cut synthetic / devdata truths every N-th slice

For each material and budget (minutes): train a model from the material's micrographs with
``prepare_trainer`` and nothing but the time given (the recipe of ``micro3d train --time``),
sample ``count`` volumes of ``size``^3 with the default sampling recipe (the app's, with
its second pass where the self-check finds the phases broken up), and judge
them against the material's 3D truth with the physics yardstick (``metrics.yardstick``): S2
and lineal-path relative error per plane as a ratio to their floor (the same errors of 8
random real sub-volumes of the truth of the same size), the largest phase-fraction error,
TauFactor relative diffusivity of every phase along z / y / x against the real sub-volumes'
mean +- sd (``--no-diffusivity`` skips it), whether all of it passes, and the last fidelity
report of training (2D samples against the micrographs, as a ratio to its own floor).
Materials: the bundled demos (``resources/demo/<m>``: 32 micrographs per plane cut from a
128^3 truth) and the third-party volumes of ``../shared/devdata`` (``tf500``: every slice
of the anisotropic 160^3 volume; ``electrode3``: every second slice of the three-phase 256^3
volume), cut into planes as a user's micrographs would be; ``electrode_iso`` is the
demo electrode made isotropic (round particles), a 128^3 truth cut every 4th slice as the
demos are. ``--planes`` keeps only those planes' micrographs and ``--isotropic`` /
``--like`` declares what stands for the others, through ``PlaneDataset.declared`` as
``micro3d train --isotropic / --like`` does (e.g. ``--planes xy --isotropic``). Prints a
Markdown table for docs/benchmarks.md. ``--judge-edge E`` with ``--size`` above it judges
the two cubes of side E at opposite corners of each volume against the floor of real E^3
sub-volumes: does a large box keep a small box's fidelity (``--size 128 --count 1
--judge-edge 64`` is judged as two 64^3 volumes are)? ``--real-pairs N`` first judges N
pairs of real sub-volumes of the truth (drawn apart from the floor's) exactly as two
generated volumes are: how often real material itself passes the line.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from machine import describe

from micro3d_gui.core.checkpoint import load_checkpoint
from micro3d_gui.core.device import DEFAULT_DEVICE, resolve_device
from micro3d_gui.core.recipe import DEFAULT_RECIPE, RECIPES, get_recipe
from micro3d_gui.core.symmetry import Symmetry, parse_like
from micro3d_gui.core.plane_dataset import PlaneDataset
from micro3d_gui.core.train_config import DEFAULT_PRESET, PRESET_NAMES
from micro3d_gui.core.training import prepare_trainer
from micro3d_gui.errors import InputError
from micro3d_gui.preprocess.synthetic import electrode
from micro3d_gui.preprocess.dataset import load_labelled_planes
from micro3d_gui.core.planes import volume_plane_images
from micro3d_gui.io.volume import read_volume
from micro3d_gui.metrics.compare import corner_cubes, random_sub_volumes
from micro3d_gui.metrics.checked_sample import run_checked, sample_checked, second_pass_recipes
from micro3d_gui.metrics.fidelity import FidelityMonitor
from micro3d_gui.metrics.yardstick import (YardstickSettings, diffusivity_text, judge,
                                           ratio_text, truth_floor)
from micro3d_gui.paths import demo_dir

DEVDATA = Path(__file__).resolve().parents[2] / "shared" / "devdata"
#: devdata volumes: (file, every n-th slice per plane)
DEV_VOLUMES = {"tf500": ("tf500_aniso_160.tif", 1), "electrode3": ("electrode_3phase_256.tif", 2)}
#: Seed of the first real pair of --real-pairs (the floor draws with the yardstick's seed).
REAL_PAIR_SEED = 10
#: The benchmark materials: the three demos and the devdata volumes.
MATERIALS = ("fibres", "separator", "electrode", "tf500", "electrode3")


#: The paper's reverse-step equations (no x0 projection, anchors or variance matching) at
#: the default recipe's schedule: does the model alone carry the structure?
UNCORRECTED = dict(x0_projection="none", anchor_fractions=False, anchor_decoded=False,
                   match_variance=False)


#: Materials made here: name -> (128^3 truth, every n-th slice per plane), as the demos.
SYNTHETIC = {"electrode_iso": (lambda: electrode((128, 128, 128), elongation=(1.0, 1.0, 1.0),
                                                 seed=0), 4)}


def material(name: str, devdata: Path, step: int | None = None):
    """(images per plane, number of phases, truth volume) of a demo or devdata material;
    ``step``: cut a synthetic or devdata truth every ``step``-th slice instead of its own."""
    if name in SYNTHETIC or name in DEV_VOLUMES:
        if name in SYNTHETIC:
            make, own = SYNTHETIC[name]
            truth = make()
        else:
            file, own = DEV_VOLUMES[name]
            truth = read_volume(devdata / file)
        return volume_plane_images(truth, step or own), int(truth.max()) + 1, truth
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


def floor_of(name: str, truth, k: int, settings: YardstickSettings, diffusivity: bool,
             device, cache: Path | None) -> dict:
    """The truth's floor (``truth_floor``), read from / added to the JSON ``cache``."""
    key = f"{name}:{settings.edge}:{settings.sub_volumes}:{settings.seed}:{int(diffusivity)}"
    stored = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    if key not in stored:
        stored[key] = truth_floor(truth, k, settings, diffusivity=diffusivity, device=device)
        if cache:
            cache.write_text(json.dumps(stored))
    return stored[key]


def fidelity_text(fid) -> str:
    """The last training report's worst plane, S2 and lineal path, as a ratio to its floor."""
    if fid is None:
        return "-"
    parts = ["%.1f" % max(fid["errors"][p] / fid["floor"][p] for p in fid["errors"])]
    if "lineal_path" in fid:
        parts.append("%.1f" % max(fid["lineal_path"][p] / fid["lineal_path_floor"][p]
                                  for p in fid["lineal_path"]))
    return " / ".join(parts)


def row(name, budget, label, verdict, fidelity, seconds) -> str:
    return (f"| {name} | {budget} | {label} | {ratio_text(verdict['ratio']['s2'])} | "
            f"{ratio_text(verdict['ratio']['lineal_path'])} | "
            f"{verdict['volume_fraction_error']:.3f} | "
            f"{diffusivity_text(verdict['diffusivity'])} | "
            f"{'yes' if verdict['passes'] else 'no'} | {fidelity} | "
            f"{'-' if seconds is None else f'{seconds:.0f}'} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", type=float, nargs="+", default=[2, 5, 10, 20],
                    help="training minutes")
    ap.add_argument("--materials", nargs="+", default=list(MATERIALS))
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--count", type=int, default=2)
    ap.add_argument("--device", default=DEFAULT_DEVICE)
    ap.add_argument("--devdata", type=Path, default=DEVDATA)
    ap.add_argument("--slice-step", type=int, default=None, metavar="N",
                    help="cut synthetic and devdata truths every N-th slice per plane "
                         "(default: each material's own), e.g. 1 to give one plane all "
                         "its sections")
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
    ap.add_argument("--preset", choices=PRESET_NAMES, default=DEFAULT_PRESET,
                    help="the network to train (micro3d train --preset)")
    ap.add_argument("--self-condition", action="store_true",
                    help="train self-conditioned networks (micro3d train --self-condition)")
    ap.add_argument("--no-resample", action="store_true",
                    help="judge the first volumes, without the second pass that micro3d "
                         "sample makes where the self-check finds the phases broken up or long")
    ap.add_argument("--judge-edge", type=int, default=None, metavar="E",
                    help="judge the two E^3 cubes at opposite corners of each volume "
                         "against real E^3 sub-volumes (default: the whole --size box)")
    ap.add_argument("--real-pairs", type=int, default=0, metavar="N",
                    help="first judge N pairs of real sub-volumes as two generated volumes "
                         "are: how often the truth itself passes")
    ap.add_argument("--sample-seeds", type=int, nargs="+", default=[0], metavar="SEED",
                    help="sample and judge with each of these seeds, a row each: one "
                         "seed's 2 volumes can pass where the next seed's fail "
                         "(docs/experiments/2026-12-07-self-conditioning-seeds.md)")
    ap.add_argument("--seed", type=int, default=None,
                    help="training seed (default: the recipe's, as micro3d train)")
    ap.add_argument("--no-diffusivity", action="store_true",
                    help="judge S2, lineal path and fractions only (no TauFactor)")
    ap.add_argument("--floor-cache", type=Path, default=None, metavar="FLOORS.json",
                    help="keep the truths' floors in this file and reuse them")
    ap.add_argument("--planes", nargs="+", choices=("xy", "xz", "yz"),
                    default=["xy", "xz", "yz"],
                    help="train on these planes' micrographs only (declare the others' "
                         "stand-ins with --isotropic or --like)")
    ap.add_argument("--isotropic", action="store_true",
                    help="declare the material isotropic (micro3d train --isotropic)")
    ap.add_argument("--like", nargs="+", default=[], metavar="PLANE=PLANE",
                    help="declare a plane like another (micro3d train --like), e.g. xz=xy")
    args = ap.parse_args(argv)
    try:
        declared = Symmetry(parse_like(args.like), args.isotropic)
    except InputError as exc:
        ap.error(str(exc))
    device = resolve_device(args.device)
    recipe = get_recipe(args.recipe).replace(**dict(args.set))
    print(f"sampling: the {args.recipe} recipe",
          *(["with", " ".join(f"{k}={v}" for k, v in args.set)] if args.set else []))
    print(describe(device), "\n")
    edge = args.judge_edge or args.size
    if edge > args.size:
        ap.error(f"--judge-edge {edge}: at most --size {args.size}")
    settings = YardstickSettings(edge=edge)
    with_d = not args.no_diffusivity
    print("| material | budget | preset, steps trained | S2 x floor xy / xz / yz | "
          "lineal path x floor | max vf error | rel. diffusivity vs real, per phase "
          "z/y/x (* outside 2 sd) | passes | 2D fidelity x floor (S2 / LP, worst plane) | "
          "s sampling per volume |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.materials:
        images, k, truth = material(name, args.devdata, args.slice_step)
        try:  # the one path of micro3d train: an absent plane needs a declaration
            data = PlaneDataset.declared({p: images[p] for p in args.planes}, k, declared)
        except InputError as exc:
            ap.error(f"{name}: {exc}")
        planes = (f" ({'+'.join(data.planes)}, {data.symmetry.describe()})"
                  if data.symmetry.declared and not args.models else "")
        floor = floor_of(name, truth, k, settings, with_d, device, args.floor_cache)
        print(f"| {name} | real sub-volumes | - | "
              + " / ".join(f"{floor['s2'][p]:.3f}" for p in ("xy", "xz", "yz")) + " | "
              + " / ".join(f"{floor['lineal_path'][p]:.3f}" for p in ("xy", "xz", "yz"))
              + " | - | "
              + (", ".join(f"{ph}: " + "/".join(f"{d['mean']:.3f}+-{d['sd']:.3f}"
                                                for d in axes.values())
                           for ph, axes in floor["diffusivity"].items()) if with_d else "-")
              + " | - | - | - |", flush=True)
        for pair in range(args.real_pairs):  # draws apart from the floor's (its seed 0)
            real = random_sub_volumes(truth, edge, 2, seed=REAL_PAIR_SEED + pair)
            print(row(name, f"real pair {pair + 1}", "-",
                      judge(real, truth, k, floor, settings, device=device), "-", None),
                  flush=True)
        for minutes in ([None] if args.models else args.budgets):
            if minutes is None:
                ckpt = load_checkpoint(args.models / f"{name}.pt")
                minutes = ckpt.get("train_seconds", 0.0) / 60
                steps, preset = int(ckpt["step"]), ckpt["model_config"]["preset"]
                fid = (ckpt.get("fidelity") or [None])[-1]
            else:
                trainer, _ = prepare_trainer(data, args.preset, device,
                                             time_budget_s=60 * minutes, seed=args.seed,
                                             self_condition=args.self_condition)
                trainer.train(monitor=FidelityMonitor.for_trainer(trainer))
                if args.save:
                    args.save.mkdir(parents=True, exist_ok=True)
                    seed = "" if args.seed is None else f"_seed{args.seed}"
                    tag = f"_{'+'.join(data.planes)}" if data.symmetry.declared else ""
                    trainer.save(args.save / f"{name}_{minutes:g}min{seed}{tag}.pt")
                ckpt = trainer.state()
                steps, preset = trainer.step, trainer.model_config.preset
                fid = trainer.fidelity[-1]
            label = f"{preset}, {steps}{planes}"
            rows = [("", recipe)] + ([(", paper equations", recipe.replace(**UNCORRECTED))]
                                     if args.uncorrected else [])
            for (suffix, rec), seed in itertools.product(rows, args.sample_seeds):
                start = time.perf_counter()
                # as micro3d sample: a second pass where the self-check finds the phases
                # broken up or running long
                retry = {} if suffix or args.no_resample else second_pass_recipes(rec)
                result = run_checked(sample_checked(
                    ckpt, rec, (args.size,) * 3, args.count, check=bool(retry),
                    retry=retry, seed=seed, device=device))
                per = (time.perf_counter() - start) / args.count
                judged = [c for v in result.volumes for c in corner_cubes(v, edge)]
                verdict = judge(judged, truth, k, floor, settings, device=device)
                seeded = "" if args.sample_seeds == [0] else f", sampling seed {seed}"
                again = (result.self_check or {}).get("second_pass")
                passes = ("" if not again else
                          f", second pass {again['fault']} ({again['kept']} kept)")
                print(row(name, f"{minutes:.3g} min{suffix}{seeded}{passes}", label, verdict,
                          fidelity_text(fid) if not suffix else "-", per), flush=True)


if __name__ == "__main__":
    main()

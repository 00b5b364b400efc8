"""``micro3d sample``: generate 3D volumes with a trained model, and check them."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError
from ..interrupt import stop_on_signals
from ..io.atomic import check_output
from ..io.run_files import rescue
from .files import check_command_files, output_paths, rescue_folders, save_or_rescue
from .options import (add_device_option, device_option, positive, positive_float, seed_value,
                      stopped_by, warn)
from .progress import sampling_progress
from .ranks import launch_ranks
from .recipe_options import add_recipe_options, sampling_recipe


def add_arguments(sub) -> argparse.ArgumentParser:
    """The ``sample`` subcommand and its options, on the subparsers ``sub``."""
    sa = sub.add_parser("sample", help="generate 3D volumes with a trained model")
    sa.add_argument("model", metavar="MODEL.pt")
    sa.add_argument("--shape", nargs=3, type=positive, required=True, metavar=("Z", "Y", "X"))
    sa.add_argument("--out", required=True, metavar="VOLUME.tif",
                    help="uint8 phase labels, axis order [z, y, x]; the suffix picks the "
                         "format: .tif/.tiff (ImageJ stack), .vti (VTK image), .npy")
    sa.add_argument("--voxel-size", nargs=3, type=positive_float, default=None,
                    metavar=("Z", "Y", "X"),
                    help="voxel size along z, y, x, written into .tif and .vti files (and "
                         "a VOLUME.npy.json sidecar for .npy); default none: a .vti then "
                         "has spacing 1 in the unit 'voxel'")
    sa.add_argument("--unit", default=None,
                    help="unit of --voxel-size, e.g. um or nm (default um)")
    sa.add_argument("--count", type=positive, default=1,
                    help="number of volumes (N > 1 writes VOLUME_000.tif, ...)")
    sa.add_argument("--periodic", action="store_true",
                    help="periodic (tileable) volumes: circular padding in the network")
    sa.add_argument("--seed", type=seed_value, default=None)
    add_device_option(sa)
    add_recipe_options(sa)
    sa.add_argument("--fractions", nargs="+", type=float, default=None, metavar="F",
                    help="target phase fractions F0 F1 [F2 ...] (phases 0..K-1, sum 1) that "
                         "every volume is held at (default: the micrographs')")
    sa.add_argument("--keep", nargs=3, action="append", default=[],
                    metavar=("PLANE", "INDEX", "IMAGE"),
                    help="a measured section the volumes hold exactly: slice INDEX of PLANE "
                         "(xy, xz, yz) is the labelled IMAGE (rows and columns as the "
                         "plane's micrographs); the volume grows around it (repeatable)")
    sa.add_argument("--memory-budget", type=float, default=None, metavar="GIB",
                    help="memory sampling may use, in GiB: sets the slices per network "
                         "call (default: half the free RAM, or 80%% of a CUDA GPU's)")
    sa.add_argument("--compile", action="store_true",
                    help="run the network through torch.compile: faster long runs after a "
                         "cold start of about half a minute")
    sa.add_argument("--nproc", type=positive, default=1, metavar="N",
                    help="sample in N processes on this machine (torchrun: one GPU each on "
                         "CUDA, gloo on CPU), each taking its share of the slices of every "
                         "network call; the volume is the one-process volume")
    sa.add_argument("--json", metavar="REPORT.json", default=None,
                    help="also write the volumes' paths and the self-check as JSON")
    sa.add_argument("--no-check", action="store_true",
                    help="skip the self-check of the volumes against the micrographs the "
                         "model keeps")
    sa.add_argument("--no-resample", action="store_true",
                    help="where the self-check finds the phases more broken up than the "
                         "micrographs', or running longer, keep the volumes; by default "
                         "they are sampled again, broken-up phases with the harmonizing "
                         "rounds in the three planes in turn (--harmonize-planes cycle), "
                         "long ones with the separated recipe's vote of the planes, and the "
                         "volumes nearer the floor kept")
    return sa


def _volume_writer(out: str, voxel_size, unit):
    """Check --out / --voxel-size / --unit before any sampling -> ``write(volume, path)``."""
    from ..io.calibration import check_voxel_size
    from ..io.export import EXPORT_FORMATS, VOXEL_UNIT, export_volume, write_voxel_sidecar
    from ..io.volume import write_tiff

    check_output(out, "--out")  # a folder given as --out: say so before the suffix
    suffix = Path(out).suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise InputError(f"{out}: cannot write {suffix or 'a file without suffix'!r}; end "
                         f"--out in one of {', '.join(EXPORT_FORMATS)}")
    if voxel_size is not None and not all(np.isfinite(v) and v > 0 for v in voxel_size):
        raise InputError(f"--voxel-size {' '.join(map(str, voxel_size))}: must be three "
                         "positive numbers (z, y, x)")
    if unit is not None and voxel_size is None:
        raise InputError(f"--unit {unit}: gives the unit of --voxel-size; add --voxel-size "
                         "Z Y X or drop --unit")
    if voxel_size is None and suffix in (".tif", ".tiff"):
        return write_tiff  # no physical size was given: a plain label stack, as always
    if voxel_size is None:  # spacing 1 voxel: no physical unit is claimed
        return lambda vol, path: export_volume(vol, path, unit=VOXEL_UNIT)
    size, unit = tuple(voxel_size), unit or "um"
    check_voxel_size(suffix, size, unit)  # the writer's own limits, before the work
    if suffix == ".npy":
        print(f"note: .npy has no place for --voxel-size; it goes to a sidecar "
              f"{Path(out).name}.json", file=sys.stderr)

        def write_npy(vol, path):
            export_volume(vol, path)
            write_voxel_sidecar(path, size, unit)

        return write_npy
    return lambda vol, path: export_volume(vol, path, voxel_size=size, unit=unit)


def _memory_budget(gib: float | None) -> int | None:
    if gib is None:
        return None
    if not (np.isfinite(gib) and gib > 0):
        raise InputError(f"--memory-budget {gib}: must be a positive number of GiB")
    return int(gib * (1 << 30))


def _check_shape_fits(ckpt, args, recipes, device, budget) -> None:
    """Refuse a --shape whose sampling with any of ``recipes`` (the first pass's and the
    second passes') cannot fit in memory, before anything is allocated."""
    from ..core.diffusion.unet import UNetConfig
    from ..core.pipeline import uses_fraction_condition
    from ..core.memory import VolumeTooLarge, free_bytes, plan_sampling

    # the passes differ only in the full-size copies a step holds
    settings = max((r.sampler for r in recipes), key=lambda s: s.extra_volume_copies)
    try:
        plan = plan_sampling(UNetConfig.from_dict(ckpt["model_config"]), tuple(args.shape),
                      args.count, branches=settings.calls_per_denoise(
                          uses_fraction_condition(ckpt, args.fractions)),
                      extra_copies=settings.extra_volume_copies, max_batch=settings.max_batch,
                      budget=budget, device=device)
    except VolumeTooLarge as exc:
        count = f" --count {args.count}" if args.count > 1 else ""
        raise InputError(f"--shape {' '.join(map(str, args.shape))}{count}: {exc}") from None
    available = free_bytes(device)
    if budget is not None and budget > available:  # the chunk it allows would not fit
        raise InputError(f"--memory-budget {args.memory_budget:g}: this machine has "
                         f"{available / (1 << 30):.1f} GiB free; give at most that, or leave "
                         "the option out")
    if budget is not None and budget < plan.minimum_bytes:
        warn(f"--memory-budget {args.memory_budget:g}: this box needs at least about "
              f"{plan.minimum_bytes / (1 << 30):.2f} GiB (one slice per network call), "
              "which it uses")


def _warn_untrained(ckpt: dict, path: str) -> None:
    """A model from before absent planes were refused may sample planes it never saw."""
    from ..core.checkpoint import untrained_planes

    planes = untrained_planes(ckpt)
    if planes:
        warn(f"{path} was trained without {' or '.join(planes)} micrographs, so its "
              f"{' and '.join(planes)} sections come from a condition the network never "
              "learned; retrain with those micrographs, or with --like / --isotropic")


def run(args) -> int:
    from ..core.bounds import check_processes
    from ..core.checkpoint import load_checkpoint
    from ..core.distributed import from_environment
    from ..core.diffusion.sampler import SamplingCancelled
    from ..io.export import write_report
    from ..metrics.checked_sample import run_checked, sample_checked, second_pass_recipes
    from ..metrics.selfcheck import SECOND_PASS_WORDS, connectivity_fault, self_check_lines
    from ..session.generation import kept_sections

    write = _volume_writer(args.out, args.voxel_size, args.unit)
    recipe = sampling_recipe(args)
    ckpt = load_checkpoint(args.model)
    _warn_untrained(ckpt, args.model)
    keep = kept_sections(args.keep, int(ckpt["num_phases"]), name="--keep")
    shape = tuple(args.shape)
    recipe.check(ckpt, shape, args.fractions, keep)
    device = device_option(args.device)
    budget = _memory_budget(args.memory_budget)
    retry = {} if args.no_check or args.no_resample else second_pass_recipes(recipe)
    # --shape and --count first: a million output paths are memory too
    _check_shape_fits(ckpt, args, [recipe, *retry.values()], device, budget)
    paths = output_paths(args.out, args.count)
    check_command_files(args)
    check_processes(args.nproc, device)
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:  # start the ranks, then wait
        return launch_ranks(args)
    dist = from_environment(device)  # every rank samples; rank 0 alone writes and prints
    device = dist.device(device)
    bar, progress = sampling_progress(recipe, ckpt, args.fractions, quiet=not dist.is_main)

    def second_pass(report) -> None:  # a fresh bar, counting on from the first pass's calls
        nonlocal bar, progress
        fault = connectivity_fault(report)
        print(f"{report['verdict']}\nsampling again with {SECOND_PASS_WORDS[fault][1]} "
              "(--no-resample: keep these)...", file=sys.stderr, flush=True)
        bar, progress = sampling_progress(recipe, ckpt, args.fractions, quiet=not dist.is_main,
                                          then=retry[fault])

    written = []  # a kept second pass writes over the first's files

    def write_all(volumes) -> None:  # before the self-check: the volumes are saved first
        bar.close()
        for i, (vol, path) in enumerate(zip(volumes, paths)):
            try:
                write(vol, path)
            except OutputError as exc:
                def save_rest(rescued, rest=volumes[i:]):
                    for v, rescued_path in zip(rest, rescued):
                        write(v, rescued_path)

                raise rescue(save_rest, paths[i:], rescue_folders(args), exc) from None
            counts = np.bincount(vol.ravel(), minlength=ckpt["num_phases"])
            print(f"wrote {path} ({'x'.join(map(str, vol.shape))} [z, y, x], "
                  f"phase fractions {np.round(counts / vol.size, 3).tolist()})", flush=True)
        if not args.no_check and not written:
            print("self-check of the volumes...", file=sys.stderr, flush=True)
        written.append(True)

    with stop_on_signals() as stop_requested:
        try:
            result = run_checked(sample_checked(
                ckpt, recipe, shape, args.count, check=dist.is_main and not args.no_check,
                on_sampled=write_all if dist.is_main else None, fractions=args.fractions,
                keep=keep, periodic=args.periodic, seed=args.seed, device=device,
                should_stop=stop_requested, memory_budget=budget,
                compile_network=args.compile, dist=dist, retry=retry,
                on_retry=second_pass), lambda step: progress(step))
        except SamplingCancelled:
            bar.close()
            if dist.is_main:
                kept = ("the first pass's volumes are kept, written above" if written
                        else "nothing written")
                print(f"sampling cancelled{stopped_by(stop_requested)}; {kept}",
                      file=sys.stderr)
            return stop_requested.exit_code
    bar.close()  # a second pass whose volumes were not kept left its bar open
    dist.close()
    if not dist.is_main:
        return 0
    if result.self_check is not None:
        print("\n".join(self_check_lines(result.self_check)))
    if args.json is not None:
        report = {"volumes": [str(p) for p in paths], "self_check": result.self_check}
        save_or_rescue(lambda json_path: write_report(report, *json_path), [args.json], args)
        print(f"wrote {args.json}")
    return 0

"""``micro3d train``: train a plane-conditional diffusion model on micrographs."""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from ..core.train_config import (
    DEFAULT_PRESET, DEFAULT_TIME_BUDGET_S, PRESET_HELP, PRESET_NAMES,
)
from ..errors import InputError, OutputError
from ..interrupt import stop_on_signals
from ..io.run_files import rescue
from .files import check_command_files, rescue_folders
from .micrographs import add_micrograph_options, describe_micrographs, load_micrographs
from .options import (add_device_option, device_option, duration, format_duration, positive,
                      positive_float, seed_value, stopped_by, warn)
from .progress import Progress
from .ranks import launch_ranks


def add_arguments(sub) -> argparse.ArgumentParser:
    """The ``train`` subcommand and its options, on the subparsers ``sub``."""
    tr = sub.add_parser("train", help="train a plane-conditional diffusion model")
    add_micrograph_options(tr)
    tr.add_argument("--isotropic", action="store_true",
                    help="the material looks the same in every direction: one plane's "
                         "micrographs (e.g. --xy alone) serve all three planes")
    tr.add_argument("--like", action="append", default=[], metavar="PLANE=PLANE",
                    help="a plane without micrographs looks like another, row for row "
                         "(repeatable): --like yz=xz for a material alike along x and y "
                         "(transversely isotropic about z). Without --like or --isotropic "
                         "every plane needs its micrographs")
    tr.add_argument("--out", required=True, metavar="MODEL.pt", help="model file to write")
    tr.add_argument("--preset", choices=PRESET_NAMES, default=DEFAULT_PRESET,
                    help=f"{PRESET_HELP} (default {DEFAULT_PRESET})")
    tr.add_argument("--time", type=duration, default=None, metavar="DURATION",
                    help="training time, e.g. 10m, 90s, 1h30m or seconds (default "
                         f"{format_duration(DEFAULT_TIME_BUDGET_S)} unless --steps is given)")
    tr.add_argument("--steps", type=positive, default=None,
                    help="train exactly this many steps instead of for a time")
    tr.add_argument("--batch", type=positive, default=None,
                    help="batch size (default: the preset's recipe)")
    tr.add_argument("--crop", type=positive, default=None,
                    help="crop size in px (default: the preset's recipe, or the largest "
                         "the micrographs hold)")
    tr.add_argument("--lr", type=positive_float, default=None,
                    help="peak Adam learning rate (default: the preset's recipe)")
    add_device_option(tr)
    tr.add_argument("--seed", type=seed_value, default=0)
    tr.add_argument("--checkpoint-every", type=positive, default=None, metavar="N",
                    help="save the model every N steps (default: the recipe's)")
    tr.add_argument("--stop-at-floor", action="store_true", default=None,
                    help="stop early once the 2D samples of every plane are at the "
                         "micrographs' own floor")
    tr.add_argument("--no-fidelity", action="store_true",
                    help="skip the fidelity reports (S2 of 2D samples against the "
                         "micrographs, at most 5 %% of the training time)")
    tr.add_argument("--resume", metavar="MODEL.pt", help="continue training this model")
    tr.add_argument("--self-condition", action="store_true",
                    help="experimental, not the default: a self-conditioned network, "
                         "which also sees the previous step's estimate of its slices "
                         "(about 25%% fewer steps in the same time); see "
                         "docs/benchmarks.md, Quality per material")
    tr.add_argument("--nproc", type=positive, default=1, metavar="N",
                    help="train in N processes on this machine (torchrun + DDP: one GPU "
                         "each on CUDA, gloo on CPU); --batch is the global batch")
    return tr


#: ``micro3d train`` options that go into the training recipe: argument name -> the
#: TrainConfig field (None = not given: the recipe's value), in the order a resume names
#: those it ignores.
TRAIN_OPTIONS = {"steps": "steps", "crop": "crop", "batch": "batch_size", "lr": "lr",
                 "checkpoint_every": "checkpoint_every", "seed": "seed",
                 "time": "time_budget_s", "stop_at_floor": "stop_at_floor"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _ignored_warning(args, ckpt: dict, ignored: list[str]) -> str:
    """The warning naming the options a resume ignored (prepare_trainer's recipe names)
    and the model's own values it keeps instead."""
    names = {field: name for name, field in TRAIN_OPTIONS.items()}
    own = {**ckpt["train_config"], "preset": ckpt["model_config"].get("preset"),
           "self_condition": ckpt["model_config"].get("self_condition", False)}
    given = ", ".join(f"{_flag(names.get(f, f))} {getattr(args, names.get(f, f))}"
                      for f in ignored)
    kept = ", ".join(f"{_flag(names.get(f, f))} {own.get(f)}" for f in ignored)
    return (f"--resume {args.resume} continues with the model's own {kept}; ignored "
            f"{given}")


def run(args) -> int:
    from ..core.bounds import check_processes
    from ..core.distributed import from_environment
    from ..core.memory import TrainingTooLarge
    from ..core.checkpoint import load_checkpoint, require_training_state, resumed_symmetry
    from ..core.symmetry import Symmetry, parse_like
    from ..core.plane_dataset import PlaneDataset
    from ..core.training import prepare_trainer
    from ..metrics.fidelity import FidelityMonitor

    check_command_files(args)
    device = device_option(args.device)
    check_processes(args.nproc, device)
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:  # start the ranks, then wait
        if args.batch is not None and args.batch % args.nproc:
            raise InputError(f"--batch {args.batch}: must be a multiple of --nproc {args.nproc}")
        return launch_ranks(args)
    dist = from_environment(device)
    device = dist.device(device)
    say = print if dist.is_main else (lambda *a, **k: None)
    ckpt = (require_training_state(load_checkpoint(args.resume), args.resume)
            if args.resume else None)
    image_set = load_micrographs(args)
    symmetry = resumed_symmetry(Symmetry(parse_like(args.like), args.isotropic), ckpt)
    data = PlaneDataset.declared(image_set.images, image_set.num_phases, symmetry)
    # A resumed run keeps its own recipe: it is given only the options written, and names
    # those it ignores.
    options = {field: getattr(args, name) for name, field in TRAIN_OPTIONS.items()
               if ckpt is None or _flag(name) in args.given}
    try:
        trainer, ignored = prepare_trainer(data, args.preset, device, ckpt, dist=dist,
                                           origins=image_set.origins,
                                           self_condition=args.self_condition, **options)
    except ValueError as exc:
        raise InputError(f"{args.resume or 'micro3d train'}: {exc}") from None
    except TrainingTooLarge as exc:
        where = args.resume or (f"--batch {args.batch}" if args.batch else "micro3d train")
        raise InputError(f"{where}: {exc}") from None
    if ignored and dist.is_main:
        warn(_ignored_warning(args, ckpt, ignored))
    cfg = trainer.config
    described, fractions = describe_micrographs(image_set)
    length = (f"{cfg.steps} steps" if cfg.steps else
              f"{format_duration(cfg.time_budget_s)} of training")
    ranks = f" x {dist.world_size} processes" if dist.active else ""
    say(f"{described}; device {device}{ranks}; preset {trainer.model_config.preset}; "
        f"{length}, batch {cfg.batch_size}, crop {cfg.crop}, lr {cfg.lr:g}")
    say(fractions)
    if data.symmetry.declared:
        say(f"symmetry: {data.symmetry.describe()}")
    for warning in image_set.warnings:
        warn(warning)
    for note in trainer.notes if dist.is_main else ():
        print(f"note: {note}", file=sys.stderr)
    monitor = (None if args.no_fidelity or not dist.is_main else
               FidelityMonitor.for_trainer(trainer))
    rc = train_to_file(trainer, args.out, monitor, rescue_folders(args),
                       quiet=not dist.is_main)
    dist.close()
    return rc


def train_to_file(trainer, out: str, monitor=None, rescue_to=(), quiet: bool = False) -> int:
    """Run ``trainer`` (:func:`~micro3d_gui.core.training.prepare_trainer`'s) to its end
    with a progress bar on stderr, the model written to ``out`` every ``checkpoint_every``
    steps and at the end (into a folder of ``rescue_to`` when ``out`` cannot be written);
    Ctrl-C or SIGTERM stop it after the current step, the model saved. ``monitor``: the
    fidelity reports (None: none). Returns the exit code: 0, or the stop signal's."""
    from ..metrics.fidelity import describe

    say = (lambda *a, **k: None) if quiet else print
    bar = Progress(trainer.config.steps or 0, trainer.step, quiet=quiet)
    with stop_on_signals() as stop_requested:
        def progress(p):
            bar.set_total(p.total)
            bar.update(p.step, loss=f"{p.loss:.4f}")
            if p.fidelity is not None:
                bar.write(f"step {p.step}: {describe(p.fidelity)}")
            return stop_requested()

        try:
            finished = trainer.train(progress, checkpoint_path=out, monitor=monitor)
        except OutputError as exc:  # the folder vanished, the disk filled up, ...
            bar.close()
            raise rescue(lambda paths: trainer.save(paths[0]), [out], rescue_to,
                         OutputError(f"{exc}; training stopped at step {trainer.step}")
                         ) from None
    bar.close()
    if not finished:
        say(f"stopped at step {trainer.step}{stopped_by(stop_requested)}; model saved to "
            f"{out}; continue with --resume {out}")
        return stop_requested.exit_code
    say(f"model saved to {out} (step {trainer.step}, "
        f"{trainer.elapsed_s:.0f} s of training, "
        f"final loss {np.mean(trainer.losses[-50:]):.4f})")
    if trainer.fidelity:
        say(describe(trainer.fidelity[-1]))
    return 0

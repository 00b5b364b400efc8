"""The ``micro3d`` command: train, sample, evaluate and demo, headless (for batch runs and
clusters).

Bad input prints one line naming the file (or option) and the fix, and exits with code 2;
every output path is checked before the work starts. Results go to stdout, progress,
warnings and timings to stderr.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__
from .core import threads

threads.prefer_passive_wait()  # before torch loads OpenMP (the next imports), as the app

import torch

from .cli_files import PLANE_NAMES, check_command_files, output_paths, rescue_folders
from .core.training import DEFAULT_TIME_BUDGET_S
from .interrupt import call_forwarding_signals, stop_on_signals
from .io.atomic import check_output
from .io.run_files import rescue
from .errors import InputError, OutputError

EXIT_INPUT = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command cut off by head


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _seed(text: str) -> int:
    from .core.bounds import check_seed

    try:
        return check_seed(int(text), "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).strip()) from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _unit_interval(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _duration(text: str) -> float:
    """``600``, ``90s``, ``10m``, ``1h30m`` -> seconds."""
    import re

    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        seconds = float(t)
    else:
        number = r"(\d+(?:\.\d+)?)"
        parts = re.fullmatch(rf"(?:{number}h)?(?:{number}m)?(?:{number}s)?", t)
        if not t or parts is None:
            raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 10m, 90s, "
                                             "1h30m)")
        h, m, sec = (float(v) if v else 0.0 for v in parts.groups())
        seconds = 3600 * h + 60 * m + sec
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"must be a positive duration, got {text!r}")
    return seconds


def _format_duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if s else f"{m}m"


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _given(parser: argparse.ArgumentParser, argv: list[str], command: str) -> set[str]:
    """The long options of ``command`` written on the command line (abbreviations
    resolved as argparse does), to tell a given option from a default."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = [o for o in sub.choices[command]._option_string_actions if o.startswith("--")]
    given = set()
    for token in argv:
        name = token.split("=", 1)[0]
        if not name.startswith("--"):
            continue
        matches = [o for o in options if o == name] or [o for o in options
                                                         if o.startswith(name)]
        if len(matches) == 1:
            given.add(matches[0])
    return given


def _add_micrograph_options(parser: argparse.ArgumentParser, reference: bool = False) -> None:
    """Micrographs per plane and how they become phases: shared by train and evaluate."""
    for plane in PLANE_NAMES:
        parser.add_argument(f"--{plane}", nargs="+", metavar="PATH",
                            help=f"{plane} micrographs: folder(s) and/or image files")
    images = "images (and the --reference volume)" if reference else "images"
    parser.add_argument("--phases", type=_positive, default=None,
                        help=f"number of phases K: checked against labelled {images}; grey "
                             "micrographs are thresholded into K phases (Otsu for 2, "
                             "multi-Otsu for 3 to 5) on all planes' pixels together")
    parser.add_argument("--segment", choices=("labelled", "otsu", "multiotsu", "manual"),
                        default=None,
                        help="how images become phases (default: labelled when they hold at "
                             "most 16 grey levels, else otsu/multiotsu with --phases)")
    parser.add_argument("--thresholds", nargs="+", type=_number, default=None, metavar="T",
                        help="grey thresholds for --segment manual: K-1 increasing values "
                             "for K phases (a pixel above T_k is in phase k or higher)")
    parser.add_argument("--transpose", action="append", default=[], choices=PLANE_NAMES,
                        metavar="PLANE",
                        help="swap rows and columns of this plane's images (repeatable); "
                             "applied before the flips")
    parser.add_argument("--flip-rows", action="append", default=[], choices=PLANE_NAMES,
                        metavar="PLANE",
                        help="turn this plane's images upside down (repeatable)")
    parser.add_argument("--flip-cols", action="append", default=[], choices=PLANE_NAMES,
                        metavar="PLANE", help="mirror this plane's images left-right "
                                              "(repeatable)")


def _segmentation_config(args):
    """The --segment / --thresholds / --phases options -> a SegmentationConfig, or None to
    let the data decide (labelled, or Otsu when grey images come with --phases)."""
    from .preprocess.segment import SegmentationConfig

    if not (args.segment or args.thresholds):
        return None
    method = args.segment or "manual"
    if args.thresholds and method != "manual":
        raise InputError(f"--thresholds goes with --segment manual, not --segment {method}")
    if method == "multiotsu" and args.phases is None:
        raise InputError("--segment multiotsu needs --phases K (3 to 5)")
    phases = args.phases if method in ("otsu", "multiotsu") and args.phases else 2
    return SegmentationConfig(method, phases, tuple(args.thresholds or ()))


def _load_micrographs(args):
    """Read and segment the --xy/--xz/--yz micrographs as the options say -> PlaneImageSet
    (as ``micro3d train`` does; an InputError when no plane is given)."""
    from .preprocess.dataset import load_labelled_planes
    from .preprocess.planeset import PlaneOptions

    folders = {p: getattr(args, p) for p in PLANE_NAMES}
    segmentation = _segmentation_config(args)
    flags = {"--transpose": args.transpose, "--flip-rows": args.flip_rows,
             "--flip-cols": args.flip_cols}
    for flag, planes in flags.items():
        for plane in planes:
            if not folders[plane]:
                raise InputError(f"{flag} {plane}: no {plane} images given; add --{plane} "
                                 f"PATH or drop {flag} {plane}")
    options = {p: PlaneOptions(p in args.transpose, p in args.flip_rows, p in args.flip_cols)
               for p in folders}
    return load_labelled_planes(folders, args.phases, segmentation, options)


def _describe_micrographs(image_set) -> list[str]:
    """Lines for the user: phases and how they were found, images per plane, fractions."""
    counts = ", ".join(
        f"{p}: {len(v)} ({', '.join(sorted({f'{h}x{w}' for h, w in (im.shape for im in v)}))})"
        for p, v in image_set.images.items())
    seg = image_set.segmentation
    how = (f"grey levels {image_set.grey_levels}" if seg.method == "labelled" else
           f"{seg.method} thresholds {[float(f'{t:.4g}') for t in seg.thresholds]}")
    return [f"{image_set.num_phases} phases ({how}); images {counts}",
            "phase fractions: " + "; ".join(f"{p} {np.round(f, 3).tolist()}"
                                            for p, f in seg.fractions.items())]


#: ``micro3d sample`` flags of the recipe fields: flag -> (field, argparse options). Their
#: defaults are the recipe's (core.recipe); a flag given overrides that field.
_RECIPE_FLAGS = {
    "--sampling-steps": ("sampling_steps", dict(type=_positive, metavar="S"),
                         "respaced reverse steps (the model's T when unset)"),
    "--harmonize": ("harmonize", dict(type=_non_negative, metavar="NH"), "harmonizing steps n_h"),
    "--gamma": ("gamma", dict(type=_unit_interval), "blend of Eq. 17, 0 to 1"),
    "--guidance": ("guidance", dict(type=_number, metavar="W"),
                   "classifier-free guidance w (1 = conditional only)"),
    "--fraction-guidance": ("fraction_guidance", dict(type=_non_negative_float, metavar="WF"),
                            "classifier-free guidance on the phase-fraction condition "
                            "(1 = off)"),
    "--solver": ("solver", dict(choices=None), "reverse step"),
    "--eta": ("eta", dict(type=_number), "DDIM noise scale (--solver ddim)"),
    "--harmonize-fraction": ("harmonize_fraction", dict(type=_unit_interval, metavar="F"),
                             "harmonize only in this fraction of the steps: the first, noisy "
                             "ones, or with --harmonize-late the last"),
    "--harmonize-late": ("harmonize_late", dict(action=argparse.BooleanOptionalAction),
                         "take --harmonize-fraction at the end (low noise) instead"),
    "--consensus-steps": ("consensus_steps", dict(type=_non_negative, metavar="N"),
                          "the last N steps step from the mean x0 estimate of all three "
                          "planes (2 more network calls each)"),
    "--x0-projection": ("x0_projection", dict(choices=None),
                        "correction of each x0 estimate (none = the paper's)"),
    "--anchor": ("anchor_fractions", dict(action=argparse.BooleanOptionalAction),
                 "hold the volume fractions at the target (the micrographs' by default)"),
    "--decoded-anchor": ("anchor_decoded", dict(action=argparse.BooleanOptionalAction),
                         "hold the decoded (sign / argmax) fractions at the target exactly "
                         "(auto: for --fractions only)"),
    "--match-variance": ("match_variance", dict(action=argparse.BooleanOptionalAction),
                         "restore the variance of the Eq. 17 blend (--no-match-variance: "
                         "the paper's plain blend)"),
    "--max-batch": ("max_batch", dict(type=_positive),
                    "most slices per network call (lower it to save memory)"),
}


def _add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """--recipe and one flag per recipe field; every default is the recipe's, shown in the
    help from the dataclasses (not restated here)."""
    from .core.diffusion.sampler import SOLVERS, X0_PROJECTIONS
    from .core.recipe import DEFAULT_RECIPE, RECIPES

    parser.add_argument("--recipe", choices=tuple(RECIPES), default=DEFAULT_RECIPE,
                        help=f"named sampling recipe (default {DEFAULT_RECIPE}); the flags "
                             "below override its fields")
    choices = {"solver": SOLVERS, "x0_projection": X0_PROJECTIONS}
    for flag, (name, options, text) in _RECIPE_FLAGS.items():
        values = ", ".join(f"{r} {_recipe_value(recipe, name)}" for r, recipe in RECIPES.items())
        options = dict(options, default=None, dest=name)
        if "choices" in options:
            options["choices"] = choices[name]
        parser.add_argument(flag, help=f"{text} (recipes: {values})", **options)


def _recipe_value(recipe, name: str):
    if name == "sampling_steps":
        return recipe.sampling_steps or "T"
    value = getattr(recipe.sampler, name)
    return "auto" if value is None else value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="micro3d",
        description="Reconstruct 3D microstructures from 2D micrographs of three planes.",
    )
    parser.add_argument("--version", action="version", version=f"micro3d {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    tr = sub.add_parser("train", help="train a plane-conditional diffusion model")
    _add_micrograph_options(tr)
    tr.add_argument("--isotropic", action="store_true",
                    help="the material looks the same in every direction: one plane's "
                         "micrographs (e.g. --xy alone) serve all three planes")
    tr.add_argument("--like", action="append", default=[], metavar="PLANE=PLANE",
                    help="a plane without micrographs looks like another, row for row "
                         "(repeatable): --like yz=xz for a material alike along x and y "
                         "(transversely isotropic about z). Without --like or --isotropic "
                         "every plane needs its micrographs")
    tr.add_argument("--out", required=True, metavar="MODEL.pt", help="model file to write")
    tr.add_argument("--preset", choices=("auto", "tiny", "small", "paper"), default="auto",
                    help="network size (default auto: tiny on a CPU, small on a GPU)")
    tr.add_argument("--time", type=_duration, default=None, metavar="DURATION",
                    help="training time, e.g. 10m, 90s, 1h30m or seconds (default "
                         f"{_format_duration(DEFAULT_TIME_BUDGET_S)} unless --steps is given)")
    tr.add_argument("--steps", type=_positive, default=None,
                    help="train exactly this many steps instead of for a time")
    tr.add_argument("--batch", type=_positive, default=None,
                    help="batch size (default: the preset's recipe)")
    tr.add_argument("--crop", type=_positive, default=None,
                    help="crop size in px (default: the preset's recipe, or the largest "
                         "the micrographs hold)")
    tr.add_argument("--lr", type=_positive_float, default=None,
                    help="peak Adam learning rate (default: the preset's recipe)")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    tr.add_argument("--seed", type=_seed, default=0)
    tr.add_argument("--checkpoint-every", type=_positive, default=None, metavar="N",
                    help="save the model every N steps (default: the recipe's)")
    tr.add_argument("--stop-at-floor", action="store_true", default=None,
                    help="stop early once the 2D samples of every plane are at the "
                         "micrographs' own floor")
    tr.add_argument("--no-fidelity", action="store_true",
                    help="skip the fidelity reports (S2 of 2D samples against the "
                         "micrographs, at most 5 %% of the training time)")
    tr.add_argument("--resume", metavar="MODEL.pt", help="continue training this model")
    tr.add_argument("--nproc", type=_positive, default=1, metavar="N",
                    help="train in N processes on this machine (torchrun + DDP: one GPU "
                         "each on CUDA, gloo on CPU); --batch is the global batch")

    sa = sub.add_parser("sample", help="generate 3D volumes with a trained model")
    sa.add_argument("model", metavar="MODEL.pt")
    sa.add_argument("--shape", nargs=3, type=_positive, required=True, metavar=("Z", "Y", "X"))
    sa.add_argument("--out", required=True, metavar="VOLUME.tif",
                    help="uint8 phase labels, axis order [z, y, x]; the suffix picks the "
                         "format: .tif/.tiff (ImageJ stack), .vti (VTK image), .npy")
    sa.add_argument("--voxel-size", nargs=3, type=_positive_float, default=None,
                    metavar=("Z", "Y", "X"),
                    help="voxel size along z, y, x, written into .tif and .vti files (and "
                         "a VOLUME.npy.json sidecar for .npy); default none: a .vti then "
                         "has spacing 1 in the unit 'voxel'")
    sa.add_argument("--unit", default=None,
                    help="unit of --voxel-size, e.g. um or nm (default um)")
    sa.add_argument("--count", type=_positive, default=1,
                    help="number of volumes (N > 1 writes VOLUME_000.tif, ...)")
    sa.add_argument("--periodic", action="store_true",
                    help="periodic (tileable) volumes: circular padding in the network")
    sa.add_argument("--seed", type=_seed, default=None)
    sa.add_argument("--device", default="auto")
    _add_recipe_options(sa)
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
    sa.add_argument("--nproc", type=_positive, default=1, metavar="N",
                    help="sample in N processes on this machine (torchrun: one GPU each on "
                         "CUDA, gloo on CPU), each taking its share of the slices of every "
                         "network call; the volume is the one-process volume")
    sa.add_argument("--json", metavar="REPORT.json", default=None,
                    help="also write the volumes' paths and the self-check as JSON")
    sa.add_argument("--no-check", action="store_true",
                    help="skip the self-check of the volumes against the micrographs the "
                         "model keeps")

    ev = sub.add_parser("evaluate", help="S2, lineal path, volume fractions and properties "
                                         "of volumes -> a JSON / CSV report")
    ev.add_argument("volumes", nargs="+", metavar="VOLUME.tif",
                    help="label volumes [z, y, x] of phases 0..K-1, as micro3d sample "
                         "writes them (.tif/.tiff stacks, .vti, .npy)")
    _add_micrograph_options(ev, reference=True)
    ev.add_argument("--reference", metavar="REAL.tif",
                    help="a measured 3D TIFF stack whose slices are the reference (read and "
                         "segmented like the micrographs); with micrographs too, its errors "
                         "are reported under reference_volume")
    ev.add_argument("--diffusivity", action="store_true",
                    help="relative diffusivity and tortuosity of every phase along z, y, x "
                         "(TauFactor)")
    ev.add_argument("--elastic", action="store_true",
                    help="effective elastic constants and thermal expansion (FFT solver)")
    ev.add_argument("--materials", metavar="MATERIALS.json",
                    help='phase materials for --elastic: {"0": {"E": GPa, "nu": .., '
                         '"cte": 1/K}, ...} (default: epoxy 0, carbon fibre 1, glass 2)')
    ev.add_argument("--device", default="auto",
                    help="for the property solvers: auto, cpu, cuda, cuda:1 or mps")
    ev.add_argument("--max-r", type=_positive, default=None, metavar="R",
                    help="largest distance (voxels) of the S2 / lineal-path curves (default "
                         "a quarter of the smallest image side, at most 32)")
    ev.add_argument("--json", required=True, metavar="REPORT.json",
                    help="report to write ('-' for stdout; other output then goes to "
                         "stderr)")
    ev.add_argument("--csv", metavar="REPORT.csv",
                    help="the report's numbers as key,value rows too (texts such as "
                         "paths are in the JSON only)")

    inf = sub.add_parser("info", help="what a model file holds: preset, phases, training "
                                      "steps and time, crop, learning rate, data, symmetry")
    inf.add_argument("model", metavar="MODEL.pt")
    inf.add_argument("--json", action="store_true", help="print it as JSON")

    de = sub.add_parser("demo", help="sample the bundled demo model of a synthetic material "
                                     "(or, with --train, train one on synthetic lamellae)")
    de.add_argument("--material", default="fibres", choices=("fibres", "separator", "electrode"),
                    help="bundled material (default fibres)")
    de.add_argument("--out", default="micro3d-demo", metavar="DIR")
    de.add_argument("--size", type=_positive, default=32, help="edge of the sampled cube")
    de.add_argument("--train", action="store_true",
                    help="train a tiny model on synthetic lamellae first (a few minutes) "
                         "instead of using the bundled model")
    de.add_argument("--steps", type=_positive, default=1500,
                    help="training steps with --train (default 1500)")
    de.add_argument("--device", default="auto")
    for p in (tr, sa, ev, de):
        p.add_argument("--threads", type=_positive, default=None, metavar="N",
                       help="CPU threads per process (default: the cores that other "
                            "processes leave free, at most OMP_NUM_THREADS when set)")
    return parser


class _Progress:
    """A tqdm bar on a terminal; plain log lines (about 20 per run) when stderr is a file.
    Both go to stderr: stdout keeps the results."""

    def __init__(self, total: int, initial: int = 0, unit: str = "step", quiet: bool = False):
        from tqdm import tqdm

        self.total, self.unit, self.initial = total, unit, initial
        self.printed = None
        self.start = time.perf_counter()
        self.interactive = sys.stderr.isatty() and not quiet
        self.quiet = quiet
        self.bar = tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True,
                        disable=not self.interactive)

    def update(self, done: int, **info) -> None:
        """Move the bar to ``done`` units; ``info`` is shown beside it."""
        self.bar.set_postfix(info, refresh=False)  # before update(), which draws the bar
        self._draw(self.bar.update, done - self.bar.n)
        every = max(1, (self.total - self.initial) // 20)
        # a line each time ``done`` passes a multiple of ``every`` (it may jump past one)
        passed = self.printed is None or done // every != self.printed // every
        if not self.interactive and not self.quiet and done != self.printed and (
                passed or done == self.total):
            self.printed = done
            rate = (done - self.initial) / max(time.perf_counter() - self.start, 1e-9)
            eta = (self.total - done) / rate if rate else float("nan")
            extra = " ".join(f"{k} {v}" for k, v in info.items())
            self._draw(print, f"{self.unit} {done}/{self.total} {extra} {rate:.2f} "
                       f"{self.unit}/s eta {eta:.0f} s", file=sys.stderr, flush=True)

    def _draw(self, fn, *args, **kwargs) -> None:
        """``fn(*args, **kwargs)``, which writes progress; a terminal that has gone (an ssh
        session closed: EIO, which can come before SIGHUP's handler runs) silences the bar
        instead of ending the run before it saves."""
        try:
            fn(*args, **kwargs)
        except OSError:
            self.quiet, self.interactive, self.bar.disable = True, False, True

    def set_total(self, total: int) -> None:
        """A time-budgeted run knows its step count only after its first steps."""
        if total != self.total:
            self.total = self.bar.total = total
            self._draw(self.bar.refresh)

    def write(self, line: str) -> None:
        """A line of its own (above the bar on a terminal), on stderr with the progress."""
        if self.quiet:
            return
        if self.interactive:
            self._draw(self.bar.write, line, file=sys.stderr)
        else:
            self._draw(print, line, file=sys.stderr, flush=True)

    def close(self) -> None:
        self._draw(self.bar.close)


def _sampling_progress(recipe, ckpt: dict, fractions=None, quiet: bool = False):
    """A bar counting network calls (a harmonized step costs n_h + 1 plain ones, so steps
    would misstate the ETA) and the sampler callback that moves it, naming the step and its
    plane."""
    bar = _Progress(recipe.network_calls(ckpt, fractions), unit="call", quiet=quiet)

    def progress(step) -> None:
        bar.update(step.calls, step=f"{step.step}/{step.total}", plane=step.plane)

    return bar, progress


def _by(stop) -> str:
    """`` by SIGTERM`` for a stop that came as a signal other than Ctrl-C."""
    return f" by {stop.name}" if stop() and stop.name != "SIGINT" else ""


def _device(name: str):
    from .core.device import resolve_device

    try:
        return resolve_device(name)
    except (ValueError, RuntimeError) as exc:
        raise InputError(f"--device {name}: {exc}") from None


#: Options of ``micro3d train`` that a resumed run takes from its checkpoint instead:
#: (option, train_config key).
RESUMED_OPTIONS = (("--crop", "crop"), ("--batch", "batch_size"), ("--lr", "lr"),
                   ("--checkpoint-every", "checkpoint_every"), ("--seed", "seed"),
                   ("--time", "time_budget_s"))

#: ``micro3d train`` options that go into the training recipe: argument name -> the
#: TrainConfig field (None = not given: the recipe's value).
TRAIN_OPTIONS = {"steps": "steps", "time": "time_budget_s", "batch": "batch_size",
                 "crop": "crop", "lr": "lr", "seed": "seed",
                 "checkpoint_every": "checkpoint_every", "stop_at_floor": "stop_at_floor"}


def _resumed_checkpoint(args) -> tuple[dict, int]:
    """The --resume checkpoint (checked for a training state) and its crop; warns about
    the given options that the checkpoint's values replace."""
    from .core.checkpoint import load_checkpoint, require_training_state

    ckpt = require_training_state(load_checkpoint(args.resume), args.resume)
    config = ckpt["train_config"]
    given = getattr(args, "given", set())
    ignored = [f"{flag} {getattr(args, flag[2:].replace('-', '_'))}"
               for flag, key in RESUMED_OPTIONS
               if flag in given and getattr(args, flag[2:].replace("-", "_")) != config.get(key)]
    if "--preset" in given and args.preset != ckpt["model_config"].get("preset"):
        ignored.append(f"--preset {args.preset}")
    if ignored:
        kept = ", ".join(f"{flag} {config[key]}" for flag, key in RESUMED_OPTIONS
                         if config.get(key) is not None)
        _warn(f"--resume {args.resume} continues with the model's own {kept}; ignored "
              f"{', '.join(ignored)}")
    return ckpt, int(config["crop"])


def _without_option(argv: list[str], flag: str) -> list[str]:
    """``argv`` less ``flag VALUE`` / ``flag=VALUE``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        elif not a.startswith(flag + "="):
            out.append(a)
    return out


def _launch_ranks(args) -> int:
    """Run this command again in ``--nproc`` processes under torchrun and wait for them."""
    from .core.distributed import torchrun_command

    argv = _without_option(args.argv, "--nproc")
    if args.threads is None:  # the free cores shared out, decided once for all ranks
        argv += ["--threads", str(threads.decide_threads(processes=args.nproc))]
    return call_forwarding_signals(torchrun_command(args.nproc, argv))


def cmd_train(args) -> int:
    from .core.bounds import check_processes
    from .core.distributed import from_environment
    from .core.memory import TrainingTooLarge
    from .core.checkpoint import resumed_symmetry
    from .core.symmetry import Symmetry, parse_like
    from .core.plane_dataset import PlaneDataset
    from .core.training import prepare_trainer
    from .metrics.fidelity import FidelityMonitor, describe

    check_command_files(args)
    device = _device(args.device)
    check_processes(args.nproc, device)
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:  # start the ranks, then wait
        if args.batch is not None and args.batch % args.nproc:
            raise InputError(f"--batch {args.batch}: must be a multiple of --nproc {args.nproc}")
        return _launch_ranks(args)
    dist = from_environment(device)
    device = dist.device(device)
    say = print if dist.is_main else (lambda *a, **k: None)
    ckpt, crop = _resumed_checkpoint(args) if args.resume else (None, None)
    image_set = _load_micrographs(args)
    if ckpt is not None:
        try:
            image_set.check_crop(crop)
        except InputError as exc:
            raise InputError(f"{exc} (--resume {args.resume}: the model trains on {crop} px "
                             "crops, so its images must be at least that large)") from None
    symmetry = resumed_symmetry(Symmetry(parse_like(args.like), args.isotropic), ckpt)
    data = PlaneDataset.declared(image_set.images, image_set.num_phases, symmetry)
    # A resumed run keeps its own recipe (the options it replaces were named above).
    options = ({"steps": args.steps} if ckpt is not None else
               {field: getattr(args, name) for name, field in TRAIN_OPTIONS.items()})
    try:
        trainer, _ = prepare_trainer(data, args.preset, device, ckpt,
                                     check_crop=image_set.check_crop, dist=dist,
                                     origins=image_set.origins, **options)
    except ValueError as exc:
        raise InputError(f"{args.resume or 'micro3d train'}: {exc}") from None
    except TrainingTooLarge as exc:
        where = args.resume or (f"--batch {args.batch}" if args.batch else "micro3d train")
        raise InputError(f"{where}: {exc}") from None
    cfg = trainer.config
    described, fractions = _describe_micrographs(image_set)
    length = (f"{cfg.steps} steps" if cfg.steps else
              f"{_format_duration(cfg.time_budget_s)} of training")
    ranks = f" x {dist.world_size} processes" if dist.active else ""
    say(f"{described}; device {device}{ranks}; preset {trainer.model_config.preset}; "
        f"{length}, batch {cfg.batch_size}, crop {cfg.crop}, lr {cfg.lr:g}")
    say(fractions)
    if data.symmetry.declared:
        say(f"symmetry: {data.symmetry.describe()}")
    for warning in image_set.warnings:
        _warn(warning)
    for note in trainer.notes if dist.is_main else ():
        print(f"note: {note}", file=sys.stderr)
    monitor = (None if args.no_fidelity or not dist.is_main else
               FidelityMonitor.for_trainer(trainer))
    bar = _Progress(cfg.steps or 0, trainer.step, quiet=not dist.is_main)
    with stop_on_signals() as stop_requested:
        def progress(p):
            bar.set_total(p.total)
            bar.update(p.step, loss=f"{p.loss:.4f}")
            if p.fidelity is not None:
                bar.write(f"step {p.step}: {describe(p.fidelity)}")
            return stop_requested()

        try:
            finished = trainer.train(progress, checkpoint_path=args.out, monitor=monitor)
        except OutputError as exc:  # the folder vanished, the disk filled up, ...
            bar.close()
            raise rescue(lambda paths: trainer.save(paths[0]), [args.out], rescue_folders(args),
                         OutputError(f"{exc}; training stopped at step {trainer.step}")
                         ) from None
    bar.close()
    dist.close()
    if not finished:
        say(f"stopped at step {trainer.step}{_by(stop_requested)}; model saved to "
            f"{args.out}; continue with --resume {args.out}")
        return stop_requested.exit_code
    say(f"model saved to {args.out} (step {trainer.step}, "
        f"{trainer.elapsed_s:.0f} s of training, "
        f"final loss {np.mean(trainer.losses[-50:]):.4f})")
    if trainer.fidelity:
        say(describe(trainer.fidelity[-1]))
    return 0


def _volume_writer(out: str, voxel_size, unit):
    """Check --out / --voxel-size / --unit before any sampling -> ``write(volume, path)``."""
    from .io.calibration import check_voxel_size
    from .io.export import EXPORT_FORMATS, VOXEL_UNIT, export_volume, write_voxel_sidecar
    from .io.volume import write_tiff

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


def sampling_recipe(args):
    """The --recipe named, with the flags given overriding its fields (InputError if bad)."""
    from .core.recipe import get_recipe

    return get_recipe(args.recipe).replace(
        **{name: getattr(args, name) for name, _, _ in _RECIPE_FLAGS.values()})


def _kept_sections(keep, num_phases: int):
    """--keep PLANE INDEX IMAGE triples -> KeptSection list (InputError naming the image)."""
    from .core.diffusion.sampler import KeptSection
    from .preprocess.labels import read_section_labels

    sections = []
    for plane, index, image in keep:
        if plane not in PLANE_NAMES:
            raise InputError(f"--keep {plane} {index} {image}: the plane must be one of "
                             f"{', '.join(PLANE_NAMES)}")
        try:
            k = int(index)
        except ValueError:
            raise InputError(f"--keep {plane} {index} {image}: the index must be a whole "
                             "number (the slice along the plane's fixed axis)") from None
        sections.append(KeptSection(plane, k, read_section_labels(image, num_phases)))
    return sections


def _memory_budget(gib: float | None) -> int | None:
    if gib is None:
        return None
    if not (np.isfinite(gib) and gib > 0):
        raise InputError(f"--memory-budget {gib}: must be a positive number of GiB")
    return int(gib * (1 << 30))


def _check_shape_fits(ckpt, args, settings, device, budget) -> None:
    """Refuse a --shape whose sampling cannot fit in memory, before anything is allocated."""
    from .core.diffusion.unet import UNetConfig
    from .core.generate import uses_fraction_condition
    from .core.memory import VolumeTooLarge, free_bytes, plan_sampling

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
        _warn(f"--memory-budget {args.memory_budget:g}: this box needs at least about "
              f"{plan.minimum_bytes / (1 << 30):.2f} GiB (one slice per network call), "
              "which it uses")


def _warn_untrained(ckpt: dict, path: str) -> None:
    """A model from before absent planes were refused may sample planes it never saw."""
    from .core.checkpoint import untrained_planes

    planes = untrained_planes(ckpt)
    if planes:
        _warn(f"{path} was trained without {' or '.join(planes)} micrographs, so its "
              f"{' and '.join(planes)} sections come from a condition the network never "
              "learned; retrain with those micrographs, or with --like / --isotropic")


def cmd_sample(args) -> int:
    from .core.bounds import check_processes
    from .core.checkpoint import load_checkpoint
    from .core.distributed import from_environment
    from .core.diffusion.sampler import SamplingCancelled
    from .io.export import write_report
    from .metrics.checked_sample import run_checked, sample_checked
    from .metrics.selfcheck import self_check_lines

    write = _volume_writer(args.out, args.voxel_size, args.unit)
    recipe = sampling_recipe(args)
    ckpt = load_checkpoint(args.model)
    _warn_untrained(ckpt, args.model)
    keep = _kept_sections(args.keep, int(ckpt["num_phases"]))
    shape = tuple(args.shape)
    recipe.check(ckpt, shape, args.fractions, keep)
    device = _device(args.device)
    budget = _memory_budget(args.memory_budget)
    # --shape and --count first: a million output paths are memory too
    _check_shape_fits(ckpt, args, recipe.sampler, device, budget)
    paths = output_paths(args.out, args.count)
    check_command_files(args)
    check_processes(args.nproc, device)
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:  # start the ranks, then wait
        return _launch_ranks(args)
    dist = from_environment(device)  # every rank samples; rank 0 alone writes and prints
    device = dist.device(device)
    bar, progress = _sampling_progress(recipe, ckpt, args.fractions, quiet=not dist.is_main)

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
        if not args.no_check:
            print("self-check of the volumes...", file=sys.stderr, flush=True)

    with stop_on_signals() as stop_requested:
        try:
            result = run_checked(sample_checked(
                ckpt, recipe, shape, args.count, check=dist.is_main and not args.no_check,
                on_sampled=write_all if dist.is_main else None, fractions=args.fractions,
                keep=keep, periodic=args.periodic, seed=args.seed, device=device,
                should_stop=stop_requested, memory_budget=budget,
                compile_network=args.compile, dist=dist), progress)
        except SamplingCancelled:
            bar.close()
            if dist.is_main:
                print(f"sampling cancelled{_by(stop_requested)}; nothing written",
                      file=sys.stderr)
            return stop_requested.exit_code
    dist.close()
    if not dist.is_main:
        return 0
    if result.self_check is not None:
        print("\n".join(self_check_lines(result.self_check)))
    if args.json is not None:
        report = {"volumes": [str(p) for p in paths], "self_check": result.self_check}
        _save_or_rescue(lambda json_path: write_report(report, *json_path), [args.json], args)
        print(f"wrote {args.json}")
    return 0


def _save_or_rescue(save, paths: list, args) -> None:
    """``save(paths)``, or when that fails the same to the rescue folders (an OutputError
    saying where the work went)."""
    try:
        save(paths)
    except OutputError as exc:
        raise rescue(save, paths, rescue_folders(args), exc) from None


def _evaluation_phases(args, volumes: list[np.ndarray], references: list[tuple[str, int]]
                       ) -> int:
    """The phase count K of an evaluation; InputError naming the file when the volumes'
    labels do not fit the references' (or --phases') phases."""
    from .preprocess.labels import MAX_LABEL_LEVELS

    for path, vol in zip(args.volumes, volumes):
        if vol.dtype.kind not in "iub" or vol.min() < 0:
            raise InputError(f"{path}: holds {vol.dtype} values {vol.min():g}..{vol.max():g}, "
                             "not phase labels 0..K-1; evaluate label volumes as micro3d "
                             "sample writes them, or pass a grey volume as --reference")
    tops = [int(v.max()) for v in volumes]
    worst = args.volumes[int(np.argmax(tops))]
    if references:
        source, k = references[0]
        if len(references) > 1 and references[1][1] != k:
            raise InputError(f"{references[1][0]}: segments into {references[1][1]} phases "
                             f"but {source} into {k}; label or segment both the same way "
                             "(e.g. --phases K)")
    elif args.phases:
        source, k = "--phases", args.phases
    else:
        k = max(tops) + 1
        if k > MAX_LABEL_LEVELS:
            raise InputError(f"{worst}: holds values up to {max(tops)}, not phase labels "
                             "0..K-1; evaluate label volumes as micro3d sample writes them, "
                             "or give --phases K")
        return max(k, 2)
    if max(tops) >= k:
        raise InputError(f"{worst}: holds labels up to {max(tops)}, but {source} give "
                         f"{k} phases (0..{k - 1}); evaluate volumes of the same material "
                         "(or segment the references into as many phases)")
    if max(tops) + 1 < k and not args.phases:
        raise InputError(f"{', '.join(args.volumes)}: hold {max(tops) + 1} phases but "
                         f"{source} {k}; evaluate volumes of the same material, or pass "
                         f"--phases {k} if a phase is just absent from the volumes")
    return k


def _print_report(report: dict, file=None) -> None:
    """The report's headline numbers, one line each (to ``file``, default stdout)."""
    import builtins
    import functools

    print = functools.partial(builtins.print, file=file)  # noqa: A001

    def fmt(d, digits=3):
        return ", ".join(f"{k} {v:.{digits}g}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in d.items())

    print(f"volume fractions: {fmt(report['volume_fraction'])}")
    for key, name in (("s2_relative_error", "S2"),
                      ("lineal_path_relative_error", "lineal path")):
        if key in report:
            print(f"{name} relative error vs {report['reference']}: {fmt(report[key])}")
        if key in report.get("reference_volume", {}):
            print(f"{name} relative error vs the reference volume: "
                  f"{fmt(report['reference_volume'][key])}")
    for k, d in report.get("relative_diffusivity", {}).items():
        print(f"phase {k}: relative diffusivity {fmt(d)}; tortuosity "
              f"{fmt(report['tortuosity'][k])}")
    if "elastic" in report:
        print(f"elastic (GPa; 1 = x, 2 = y, 3 = z): {fmt(report['elastic'], 4)}")
        print(f"thermal expansion (1/K): {fmt(report['cte'])}")
    if report["num_volumes"] > 1:
        print(f"(means over {report['num_volumes']} volumes; per_volume and summary in "
              "the report)")


def cmd_evaluate(args) -> int:
    from .preprocess.dataset import load_labelled_volume
    from .io.export import report_json, write_report
    from .io.volume import read_volume
    from .metrics.report import EvaluationCancelled, check_materials, run_evaluation

    to_stdout = args.json == "-"
    info = sys.stderr if to_stdout else sys.stdout  # stdout then carries the JSON alone
    check_command_files(args)
    image_set = None
    if any(getattr(args, p) for p in PLANE_NAMES) or args.transpose or args.flip_rows \
            or args.flip_cols:
        image_set = _load_micrographs(args)
        for line in _describe_micrographs(image_set):
            print(f"micrographs: {line}", file=info)
        for warning in image_set.warnings:
            _warn(warning)
    elif (args.segment or args.thresholds) and not args.reference:
        raise InputError("--segment / --thresholds apply to micrographs (--xy, --xz, --yz) "
                         "or a --reference volume; give them or drop the option")
    references, reference_volume = [], None
    if image_set is not None:
        references.append(("the micrographs", image_set.num_phases))
    if args.reference:
        reference_volume, seg = load_labelled_volume(args.reference, args.phases,
                                                     _segmentation_config(args))
        references.append((args.reference, seg.num_phases))
        how = (f"grey levels {seg.thresholds}" if seg.method == "labelled" else
               f"{seg.method} thresholds {[float(f'{t:.4g}') for t in seg.thresholds]}")
        print(f"reference {args.reference}: {'x'.join(map(str, reference_volume.shape))} "
              f"[z, y, x], {seg.num_phases} phases ({how})", file=info)
    volumes = [read_volume(path) for path in args.volumes]
    num_phases = _evaluation_phases(args, volumes, references)

    materials = None
    if args.materials:
        from .properties.elastic import load_materials

        materials = load_materials(args.materials)
    if args.elastic:
        materials = check_materials(materials, num_phases, source=args.materials or
                                    "the default materials (give --materials MATERIALS.json)")
    if args.max_r is not None:
        sides = [(min(v.shape), path) for v, path in zip(volumes, args.volumes)]
        if image_set is not None:
            sides += [(min(im.shape), origin) for p, ims in image_set.images.items()
                      for im, origin in zip(ims, image_set.origins[p])]
        if reference_volume is not None:
            sides.append((min(reference_volume.shape), args.reference))
        side, where = min(sides, key=lambda t: t[0])
        if args.max_r >= side:
            raise InputError(f"--max-r {args.max_r}: must be below the smallest side, "
                             f"{side} voxels (of {where}); choose --max-r {side - 1} or less")
    device = _device(args.device) if args.diffusivity or args.elastic else "cpu"

    last = {"text": None}
    with stop_on_signals() as stop_requested:
        def progress(fraction: float, text: str) -> bool:
            if text != last["text"] and text != "done":
                last["text"] = text
                print(f"[{100 * fraction:3.0f} %] {text}", file=sys.stderr, flush=True)
            return stop_requested()

        try:
            evaluation = run_evaluation(
                volumes, num_phases,
                image_set.images if image_set is not None else reference_volume,
                reference_volume=reference_volume if image_set is not None else None,
                diffusivity=args.diffusivity, elastic=args.elastic, materials=materials,
                device=device, max_r=args.max_r, names=list(args.volumes), progress=progress)
        except EvaluationCancelled:
            print(f"evaluation cancelled{_by(stop_requested)}; nothing written",
                  file=sys.stderr)
            return stop_requested.exit_code
    report = evaluation.report()
    inputs = {"volumes": list(args.volumes)}
    if image_set is not None:
        inputs["micrographs"] = {p: [str(o) for o in image_set.origins[p]]
                                 for p in image_set.images}
    if args.reference:
        inputs["reference_volume"] = args.reference
    if args.elastic:
        inputs["materials"] = {str(k): {"E": m.E, "nu": m.nu, "cte": m.cte}
                               for k, m in materials.items()}
    report["inputs"] = inputs
    if to_stdout:
        sys.stdout.write(report_json(report))
        sys.stdout.flush()
    json_path = None if to_stdout else args.json
    written = [p for p in (json_path, args.csv) if p]
    if written:
        _save_or_rescue(lambda paths: write_report(
            report, paths[0] if json_path else None, paths[-1] if args.csv else None),
            written, args)
    _print_report(report, file=info)
    if written:
        print(f"wrote {' and '.join(written)}", file=info)
    return 0


def cmd_demo(args) -> int:
    from .core.checkpoint import load_checkpoint
    from .core.memory import VolumeTooLarge
    from .core.recipe import DEFAULT_RECIPE, get_recipe, sample
    from .io.volume import read_volume, write_tiff
    from .metrics.anisotropy import transition_rate
    from .metrics.fractions import volume_fractions
    from .paths import demo_dir, demo_model

    out = Path(args.out)
    if args.train:
        rc, model, truth = _train_lamellae_demo(out, args.steps, args.device)
        if rc:
            return rc
    else:
        model, truth = demo_model(args.material), demo_dir(args.material) / "truth.tif"
        if not model.is_file():
            raise InputError(f"{model}: no bundled model; make it with 'bash "
                             "models/train_models.sh', or run 'micro3d demo --train'")
        truth = read_volume(truth)
    volume = out / "volume.tif"
    ckpt = load_checkpoint(model)
    recipe = get_recipe(DEFAULT_RECIPE)
    shape = (args.size,) * 3
    recipe.check(ckpt, shape)
    device = _device(args.device)
    bar, progress = _sampling_progress(recipe, ckpt)
    try:
        vol = sample(ckpt, recipe, shape, seed=0, device=device, callback=progress)[0].numpy()
    except VolumeTooLarge as exc:  # checked before anything of the box's size exists
        raise InputError(f"--size {args.size}: {exc}") from None
    bar.close()
    write_tiff(vol, volume)
    print(f"wrote {volume} (recipe {DEFAULT_RECIPE}, {recipe.network_calls(ckpt)} network "
          "calls per slice batch)")
    k = int(max(vol.max(), truth.max())) + 1
    for name, v in (("generated", vol), ("truth", truth)):
        rates = transition_rate(v)
        print(f"{name:9s}: phase fractions {np.round(volume_fractions(v, k), 3).tolist()}; "
              "phase changes per voxel step " +
              ", ".join(f"{a} {r:.3f}" for a, r in rates.items()))
    return 0


def _train_lamellae_demo(out: Path, steps: int, device: str):
    """Synthetic lamellae normal to x -> micrographs -> a tiny model.

    Returns (the train command's exit code, model path, truth volume)."""
    from PIL import Image

    from .core.planes import volume_plane_images
    from .preprocess.synthetic import lamellae

    truth = lamellae((64, 64, 64), axis=2, mean_thickness=4, seed=1)
    for plane, ims in volume_plane_images(truth, step=2).items():
        folder = out / "micrographs" / plane
        folder.mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(ims):
            Image.fromarray(im * 255).save(folder / f"{plane}_{i:03d}.png")
    print(f"synthetic lamellae normal to x: micrographs in {out / 'micrographs'}")
    model = out / "model.pt"
    rc = main(["train", "--xy", str(out / "micrographs/xy"), "--xz", str(out / "micrographs/xz"),
               "--yz", str(out / "micrographs/yz"), "--out", str(model), "--preset", "tiny",
               "--steps", str(steps), "--crop", "32", "--batch", "16", "--device", device])
    return rc, model, truth


def cmd_info(args) -> int:
    import json

    from .core.checkpoint import describe_checkpoint, load_checkpoint
    from .core.symmetry import Symmetry
    from .io.export import report_json

    info = describe_checkpoint(load_checkpoint(args.model))
    info = {"file": str(args.model), **info}
    if args.json:
        sys.stdout.write(report_json(info))
        return 0
    train = info["training"]
    seconds = train["seconds"]
    lines = [
        f"{args.model}: Micro3D model (format version {info['format_version']})",
        f"network: preset {info['preset']}, {info['parameters']:,} parameters, base width "
        f"{info['model_config']['base_channels']}, channel multiples "
        f"{info['model_config']['channel_mults']}; sides a multiple of {info['size_multiple']}",
        f"phases: {info['num_phases']} ({info['channels']} channel"
        f"{'s' if info['channels'] > 1 else ''}); schedule T = {info['schedule']['num_steps']}",
        f"training: step {train['step']} of {train['steps'] or '?'}"
        + (f" in {seconds:.0f} s" if seconds is not None else " (time not recorded)")
        + f"; crop {train['crop'] or '?'} px, batch {train['batch_size'] or '?'}, learning "
          f"rate {'?' if train['lr'] is None else format(train['lr'], 'g')}, checkpoint every "
          f"{train['checkpoint_every'] or '?'}, seed {train['seed']}"
        + (f"; final loss {train['final_loss']:.4f}" if train["final_loss"] is not None
           else ""),
    ]
    for plane, d in (info["data"] or {}).items():
        shapes = ", ".join("x".join(map(str, s)) for s in d["shapes"])
        lines.append(f"data {plane}: {d['images']} images ({shapes}), phase fractions "
                     f"{json.dumps([round(f, 3) for f in d['volume_fractions']])}")
    if not info["data"]:
        lines.append("data: no summary stored")
    lines.append("symmetry: " + Symmetry.from_dict(info["symmetry"]).describe())
    if info["untrained_planes"]:
        lines.append(f"untrained planes: {', '.join(info['untrained_planes'])} (trained "
                     "without their micrographs or a declared symmetry: their sections are "
                     "not learned)")
    kept = info["self_check_images"]
    lines.append("self-check micrographs: " + (
        ", ".join(f"{p} {n} images" for p, n in kept.items()) if kept
        else "none (trained before the self-check)"))
    print("\n".join(lines))
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate,
            "demo": cmd_demo, "info": cmd_info}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = list(argv)  # to relaunch under torchrun
    args.given = _given(parser, argv, args.command)
    start = time.perf_counter()
    before = torch.get_num_threads()  # given back at the end: main() may run in-process
    try:
        if hasattr(args, "threads"):
            # at most the caller's count, as the app's jobs: a fresh process has torch's
            # default (OMP_NUM_THREADS, else the cores); a program calling main() its own
            threads.use_threads(args.threads, limit=before)
        rc = COMMANDS[args.command](args)
        if args.command not in ("demo", "info") and os.environ.get("RANK", "0") == "0":
            print(f"done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        sys.stdout.flush()
    except InputError as exc:
        print(f"micro3d: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:
        # The reader went away (``micro3d info m.pt | head``): stop quietly, as cat does,
        # and point stdout at devnull so the interpreter's final flush does not complain.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return EXIT_BROKEN_PIPE
    finally:
        torch.set_num_threads(before)
    return rc


if __name__ == "__main__":
    sys.exit(main())

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
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import __version__
from .io.atomic import check_output
from .errors import InputError, OutputError

EXIT_INPUT = 2
EXIT_INTERRUPTED = 130
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


def _unit_interval(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


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


PLANE_NAMES = ("xy", "xz", "yz")


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="micro3d",
        description="Reconstruct 3D microstructures from 2D micrographs of three planes.",
    )
    parser.add_argument("--version", action="version", version=f"micro3d {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    tr = sub.add_parser("train", help="train a plane-conditional diffusion model")
    _add_micrograph_options(tr)
    tr.add_argument("--out", required=True, metavar="MODEL.pt", help="model file to write")
    tr.add_argument("--preset", choices=("tiny", "small", "paper"), default="small",
                    help="network size (default: small; paper is for GPUs)")
    tr.add_argument("--steps", type=_positive, default=None,
                    help="total training steps (default 60000, the paper's)")
    tr.add_argument("--batch", type=_positive, default=32, help="batch size (default 32)")
    tr.add_argument("--crop", type=_positive, default=64, help="crop size in px (default 64)")
    tr.add_argument("--lr", type=_positive_float, default=None,
                    help="Adam learning rate (default: 1e-3 tiny, 5e-4 small, 1e-4 paper)")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--checkpoint-every", type=_positive, default=1000, metavar="N",
                    help="save the model every N steps (default 1000)")
    tr.add_argument("--resume", metavar="MODEL.pt", help="continue training this model")

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
    sa.add_argument("--sampling-steps", type=_positive, default=None, metavar="S",
                    help="respaced reverse steps (default: all T=1000, the paper's)")
    sa.add_argument("--harmonize", type=_non_negative, default=4, metavar="NH",
                    help="harmonizing steps n_h (default 4)")
    sa.add_argument("--gamma", type=_unit_interval, default=0.5,
                    help="blend of Eq. 17, 0 to 1 (default 0.5)")
    sa.add_argument("--guidance", type=_number, default=1.0, metavar="W",
                    help="classifier-free guidance w (default 1 = conditional only)")
    sa.add_argument("--periodic", action="store_true",
                    help="periodic (tileable) volumes: circular padding in the network")
    sa.add_argument("--seed", type=int, default=None)
    sa.add_argument("--device", default="auto")
    sa.add_argument("--x0-projection", choices=("rms", "clip", "none"), default="rms",
                    help="correction of each x0 estimate (default rms; none = the paper's)")
    sa.add_argument("--no-anchor", action="store_true",
                    help="do not hold the volume fractions at the micrographs'")
    sa.add_argument("--no-match-variance", action="store_true",
                    help="plain Eq. 17 blend (the paper's), without restoring its variance")
    sa.add_argument("--max-batch", type=_positive, default=256,
                    help="most slices per network call (lower it to save memory)")

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
                                      "steps and time, crop, learning rate, data")
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
    return parser


class _Progress:
    """A tqdm bar on a terminal; plain log lines (about 20 per run) when stderr is a file.
    Both go to stderr: stdout keeps the results."""

    def __init__(self, total: int, initial: int = 0, unit: str = "step"):
        from tqdm import tqdm

        self.total, self.unit, self.initial = total, unit, initial
        self.start = time.perf_counter()
        self.interactive = sys.stderr.isatty()
        self.every = max(1, (total - initial) // 20)
        self.bar = tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True,
                        disable=not self.interactive)

    def update(self, step: int, **info) -> None:
        self.bar.set_postfix(info, refresh=False)  # before update(), which draws the bar
        self.bar.update(step - self.bar.n)
        if not self.interactive and (step % self.every == 0 or step == self.total):
            rate = (step - self.initial) / max(time.perf_counter() - self.start, 1e-9)
            eta = (self.total - step) / rate if rate else float("nan")
            extra = " ".join(f"{k} {v}" for k, v in info.items())
            print(f"{self.unit} {step}/{self.total} {extra} {rate:.2f} {self.unit}/s "
                  f"eta {eta:.0f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.bar.close()


@contextmanager
def _stop_on_sigint():
    """Turn Ctrl-C into a polite stop request, so a step is never cut in half."""
    flag = {"stop": False}

    def handler(signum, frame):
        flag["stop"] = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield lambda: flag["stop"]
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _device(name: str):
    from .core.device import resolve_device

    try:
        return resolve_device(name)
    except (ValueError, RuntimeError) as exc:
        raise InputError(f"--device {name}: {exc}") from None


#: Options of ``micro3d train`` that a resumed run takes from its checkpoint instead:
#: (option, train_config key).
RESUMED_OPTIONS = (("--crop", "crop"), ("--batch", "batch_size"), ("--lr", "lr"),
                   ("--checkpoint-every", "checkpoint_every"), ("--seed", "seed"))


def _resumed_checkpoint(args) -> tuple[dict, int]:
    """The --resume checkpoint (checked for a training state) and its crop; warns about
    the given options that the checkpoint's values replace."""
    from .core.checkpoint import load_checkpoint, require_training_state

    ckpt = require_training_state(load_checkpoint(args.resume), args.resume)
    config = ckpt["train_config"]
    given = getattr(args, "given", set())
    ignored = [f"{flag} {getattr(args, flag[2:].replace('-', '_'))}"
               for flag, key in RESUMED_OPTIONS
               if flag in given and getattr(args, flag[2:].replace("-", "_")) != config[key]]
    if "--preset" in given and args.preset != ckpt["model_config"].get("preset"):
        ignored.append(f"--preset {args.preset}")
    if ignored:
        kept = ", ".join(f"{flag} {config[key]}" for flag, key in RESUMED_OPTIONS)
        _warn(f"--resume {args.resume} continues with the model's own {kept}; ignored "
              f"{', '.join(ignored)}")
    return ckpt, int(config["crop"])


def _input_folders(args) -> list[Path]:
    """The folder holding the first micrograph source (for rescued files)."""
    for plane in PLANE_NAMES:
        for src in getattr(args, plane) or ():
            p = Path(src)
            return [(p if p.is_dir() else p.parent).resolve().parent]
    return []


def _rescue(save, outputs: list[Path], near: list[Path], error: OSError) -> OutputError:
    """Work whose ``outputs`` could not be written goes beside the inputs (``near``), else
    to the temp folder, as ``NAME-rescued-PID.SUFFIX``: ``save(paths)`` writes it there.
    Returns the error to report, saying where the work went."""
    import tempfile

    for folder in (*near, Path(tempfile.gettempdir())):
        paths = [folder / f"{p.stem}-rescued-{os.getpid()}{p.suffix}" for p in outputs]
        try:
            save(paths)
        except OSError:
            continue
        return OutputError(f"{error}; nothing is lost: saved to "
                           f"{', '.join(map(str, paths))} instead")
    return OutputError(f"{error}; saving it beside the inputs and in the temp folder "
                       "failed too")


def cmd_train(args) -> int:
    from .core.diffusion.unet import preset_config
    from .core.encoding import num_channels
    from .core.training import PlaneDataset, TrainConfig, Trainer, default_lr

    check_output(args.out, "--out")
    device = _device(args.device)
    ckpt, crop = _resumed_checkpoint(args) if args.resume else (None, args.crop)
    image_set = _load_micrographs(args)
    try:
        image_set.check_crop(crop)
    except InputError as exc:
        if ckpt is None:
            raise
        raise InputError(f"{exc} (--resume {args.resume}: the model trains on {crop} px "
                         "crops, so its images must be at least that large)") from None
    data = PlaneDataset(image_set.images, image_set.num_phases)
    if ckpt is not None:
        try:
            trainer = Trainer.resume(ckpt, data, steps=args.steps, device=device)
        except ValueError as exc:
            raise InputError(f"{args.resume}: {exc}") from None
    else:
        model_cfg = preset_config(args.preset, num_channels(image_set.num_phases))
        if args.crop % model_cfg.size_multiple:
            raise InputError(
                f"--crop {args.crop}: must be a multiple of {model_cfg.size_multiple} "
                f"for the {args.preset} preset"
            )
        cfg = TrainConfig(steps=args.steps or TrainConfig.steps, batch_size=args.batch,
                          crop=args.crop, lr=args.lr or default_lr(args.preset), seed=args.seed,
                          checkpoint_every=args.checkpoint_every)
        trainer = Trainer(data, model_cfg, cfg, device=device)
    described, fractions = _describe_micrographs(image_set)
    print(f"{described}; device {device}; preset {trainer.model_config.preset}")
    print(fractions)
    for warning in image_set.warnings:
        _warn(warning)
    bar = _Progress(trainer.config.steps, trainer.step)
    with _stop_on_sigint() as stop_requested:
        def progress(p):
            bar.update(p.step, loss=f"{p.loss:.4f}")
            return stop_requested()

        try:
            finished = trainer.train(progress, checkpoint_path=args.out)
        except OutputError as exc:  # the folder vanished, the disk filled up, ...
            bar.close()
            raise _rescue(lambda paths: trainer.save(paths[0]), [Path(args.out)],
                          _input_folders(args),
                          OutputError(f"{exc}; training stopped at step {trainer.step}")
                          ) from None
    bar.close()
    if not finished:
        print(f"stopped at step {trainer.step}; model saved to {args.out}; "
              f"continue with --resume {args.out}")
        return EXIT_INTERRUPTED
    print(f"model saved to {args.out} (step {trainer.step}, "
          f"final loss {np.mean(trainer.losses[-50:]):.4f})")
    return 0


def _output_paths(out: str, count: int) -> list[Path]:
    p = Path(out)
    if count == 1:
        return [p]
    return [p.with_name(f"{p.stem}_{i:03d}{p.suffix}") for i in range(count)]


def _volume_writer(out: str, voxel_size, unit):
    """Check --out / --voxel-size / --unit before any sampling -> ``write(volume, path)``."""
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
    if suffix == ".npy":
        print(f"note: .npy has no place for --voxel-size; it goes to a sidecar "
              f"{Path(out).name}.json", file=sys.stderr)

        def write_npy(vol, path):
            export_volume(vol, path)
            write_voxel_sidecar(path, size, unit)

        return write_npy
    return lambda vol, path: export_volume(vol, path, voxel_size=size, unit=unit)


def cmd_sample(args) -> int:
    from .core.checkpoint import load_checkpoint
    from .core.diffusion.sampler import SamplerSettings, SamplingCancelled
    from .core.generate import generate

    write = _volume_writer(args.out, args.voxel_size, args.unit)
    paths = _output_paths(args.out, args.count)
    for path in paths:
        check_output(path, "--out")
    ckpt = load_checkpoint(args.model)
    try:
        settings = SamplerSettings(harmonize=args.harmonize, gamma=args.gamma,
                                   x0_projection=args.x0_projection,
                                   anchor_fractions=not args.no_anchor,
                                   match_variance=not args.no_match_variance,
                                   guidance=args.guidance, max_batch=args.max_batch)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    total = ckpt["schedule_config"]["num_steps"]
    if args.sampling_steps and args.sampling_steps > total:
        raise InputError(f"--sampling-steps must be at most {total}, the model's T")
    device = _device(args.device)
    bar = _Progress(args.sampling_steps or total)
    with _stop_on_sigint() as stop_requested:
        def progress(step):
            bar.update(step.step, plane=step.plane)

        try:
            volumes = generate(ckpt, tuple(args.shape), args.count, args.sampling_steps,
                               settings, callback=progress, periodic=args.periodic,
                               seed=args.seed, device=device, should_stop=stop_requested)
        except SamplingCancelled:
            bar.close()
            print("sampling cancelled; nothing written", file=sys.stderr)
            return EXIT_INTERRUPTED
    bar.close()
    volumes = volumes.numpy()
    for i, (vol, path) in enumerate(zip(volumes, paths)):
        try:
            write(vol, path)
        except OutputError as exc:
            def save_rest(rescued, rest=volumes[i:]):
                for v, rescued_path in zip(rest, rescued):
                    write(v, rescued_path)

            raise _rescue(save_rest, paths[i:], [Path(args.model).resolve().parent],
                          exc) from None
        print(f"wrote {path} ({'x'.join(map(str, vol.shape))} [z, y, x], "
              f"phase fractions {np.round(np.bincount(vol.ravel(), minlength=ckpt['num_phases']) / vol.size, 3).tolist()})")
    return 0


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
    if not to_stdout:
        check_output(args.json, "--json")
    if args.csv is not None:
        check_output(args.csv, "--csv")
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
    with _stop_on_sigint() as stop_requested:
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
            print("evaluation cancelled; nothing written", file=sys.stderr)
            return EXIT_INTERRUPTED
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
    if not to_stdout or args.csv:
        write_report(report, None if to_stdout else args.json, args.csv)
    _print_report(report, file=info)
    written = [p for p in (None if to_stdout else args.json, args.csv) if p]
    if written:
        print(f"wrote {' and '.join(written)}", file=info)
    return 0


#: The sampler settings of the demo and the app: respaced to 50 steps with one harmonizing
#: step, the fastest setting that kept both fractions and anisotropy (docs/benchmarks.md).
FAST_SAMPLING = ("--sampling-steps", "50", "--harmonize", "1")


def cmd_demo(args) -> int:
    from .io.volume import read_volume
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
    n = str(args.size)
    rc = main(["sample", str(model), "--shape", n, n, n, "--out", str(volume), *FAST_SAMPLING,
               "--seed", "0", "--device", args.device])
    if rc:
        return rc
    vol = read_volume(volume)
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
    print("\n".join(lines))
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate,
            "demo": cmd_demo, "info": cmd_info}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.given = _given(parser, argv, args.command)
    start = time.perf_counter()
    try:
        rc = COMMANDS[args.command](args)
        if args.command not in ("demo", "info"):
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
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""The ``micro3d`` command: train, sample, evaluate and demo, headless (for batch runs and
clusters).

Bad input prints one line naming the file and the fix, and exits with code 2.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .io.errors import InputError

EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


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
    parser.add_argument("--thresholds", nargs="+", type=float, default=None, metavar="T",
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
    from .core.segment import SegmentationConfig

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
    from .io.dataset import load_labelled_planes
    from .io.planeset import PlaneOptions

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
    tr.add_argument("--lr", type=float, default=None,
                    help="Adam learning rate (default: 1e-3 tiny, 5e-4 small, 1e-4 paper)")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--checkpoint-every", type=_positive, default=1000, metavar="N",
                    help="save the model every N steps (default 1000)")
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
    sa.add_argument("--voxel-size", nargs=3, type=float, default=None, metavar=("Z", "Y", "X"),
                    help="voxel size along z, y, x, written into .tif and .vti files "
                         "(default: none for .tif, 1 for .vti)")
    sa.add_argument("--unit", default=None,
                    help="unit of --voxel-size, e.g. um or nm (default um)")
    sa.add_argument("--count", type=_positive, default=1,
                    help="number of volumes (N > 1 writes VOLUME_000.tif, ...)")
    sa.add_argument("--sampling-steps", type=_positive, default=None, metavar="S",
                    help="respaced reverse steps (default: all T=1000, the paper's)")
    sa.add_argument("--harmonize", type=_non_negative, default=4, metavar="NH",
                    help="harmonizing steps n_h (default 4)")
    sa.add_argument("--gamma", type=float, default=0.5, help="blend of Eq. 17 (default 0.5)")
    sa.add_argument("--guidance", type=float, default=1.0, metavar="W",
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
    sa.add_argument("--memory-budget", type=float, default=None, metavar="GIB",
                    help="memory sampling may use, in GiB: sets the slices per network "
                         "call (default: half the free RAM, or 80%% of a CUDA GPU's)")
    sa.add_argument("--compile", action="store_true",
                    help="run the network through torch.compile: faster long runs after a "
                         "cold start of about half a minute")

    ev = sub.add_parser("evaluate", help="S2, lineal path, volume fractions and properties "
                                         "of volumes -> a JSON / CSV report")
    ev.add_argument("volumes", nargs="+", metavar="VOLUME.tif",
                    help="label volumes [z, y, x] (TIFF stacks of phases 0..K-1, as "
                         "micro3d sample writes them)")
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
    ev.add_argument("--json", required=True, metavar="REPORT.json", help="report to write")
    ev.add_argument("--csv", metavar="REPORT.csv", help="the report as key,value rows too")

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
    """A tqdm bar on a terminal; plain log lines (about 20 per run) when output is a file."""

    def __init__(self, total: int, initial: int = 0, unit: str = "step", quiet: bool = False):
        from tqdm import tqdm

        self.total, self.unit, self.initial = total, unit, initial
        self.start = time.perf_counter()
        self.interactive = sys.stderr.isatty() and not quiet
        self.quiet = quiet
        self.every = max(1, (total - initial) // 20)
        self.bar = tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True,
                        disable=not self.interactive)

    def update(self, step: int, **info) -> None:
        self.bar.update(step - self.bar.n)
        self.bar.set_postfix(info, refresh=False)
        if not self.interactive and not self.quiet and (step % self.every == 0
                                                        or step == self.total):
            rate = (step - self.initial) / max(time.perf_counter() - self.start, 1e-9)
            eta = (self.total - step) / rate if rate else float("nan")
            extra = " ".join(f"{k} {v}" for k, v in info.items())
            print(f"{self.unit} {step}/{self.total} {extra} {rate:.2f} {self.unit}/s "
                  f"eta {eta:.0f} s", flush=True)

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


def cmd_train(args) -> int:
    from .core.checkpoint import load_checkpoint
    from .core.diffusion.unet import preset_config
    from .core.encoding import num_channels
    from .core.training import PlaneDataset, TrainConfig, Trainer, default_lr

    from .core.distributed import from_environment, torchrun_command

    device = _device(args.device)
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:  # start the ranks, then wait
        if args.batch % args.nproc:
            raise InputError(f"--batch {args.batch}: must be a multiple of --nproc {args.nproc}")
        return subprocess.call(torchrun_command(args.nproc, _without_option(args.argv,
                                                                            "--nproc")))
    dist = from_environment(device)
    device = dist.device(device)
    if args.batch % dist.world_size:
        raise InputError(f"--batch {args.batch}: must be a multiple of the {dist.world_size} "
                         "processes (it is the global batch)")
    say = print if dist.is_main else (lambda *a, **k: None)
    image_set = _load_micrographs(args)
    image_set.check_crop(args.crop)
    data = PlaneDataset(image_set.images, image_set.num_phases)
    if args.resume:
        ckpt = load_checkpoint(args.resume)
        try:
            trainer = Trainer.resume(ckpt, data, steps=args.steps, device=device, dist=dist)
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
        trainer = Trainer(data, model_cfg, cfg, device=device, dist=dist)
    described, fractions = _describe_micrographs(image_set)
    ranks = f" x {dist.world_size} processes" if dist.active else ""
    say(f"{described}; device {device}{ranks}; preset {trainer.model_config.preset}")
    say(fractions)
    for warning in image_set.warnings:
        say(f"warning: {warning}")
    bar = _Progress(trainer.config.steps, trainer.step, quiet=not dist.is_main)
    with _stop_on_sigint() as stop_requested:
        def progress(p):
            bar.update(p.step, loss=f"{p.loss:.4f}")
            return stop_requested()

        finished = trainer.train(progress, checkpoint_path=args.out)
    bar.close()
    dist.close()
    if not finished:
        say(f"stopped at step {trainer.step}; model saved to {args.out}; "
            f"continue with --resume {args.out}")
        return EXIT_INTERRUPTED
    say(f"model saved to {args.out} (step {trainer.step}, "
        f"final loss {np.mean(trainer.losses[-50:]):.4f})")
    return 0


def _output_paths(out: str, count: int) -> list[Path]:
    p = Path(out)
    if count == 1:
        return [p]
    return [p.with_name(f"{p.stem}_{i:03d}{p.suffix}") for i in range(count)]


def _volume_writer(out: str, voxel_size, unit):
    """Check --out / --voxel-size / --unit before any sampling -> ``write(volume, path)``."""
    from .io.export import EXPORT_FORMATS, export_volume
    from .io.volume import write_tiff

    suffix = Path(out).suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise InputError(f"{out}: cannot write {suffix or 'a file without suffix'!r}; end "
                         f"--out in one of {', '.join(EXPORT_FORMATS)}")
    if voxel_size is not None and not all(np.isfinite(v) and v > 0 for v in voxel_size):
        raise InputError(f"--voxel-size {' '.join(map(str, voxel_size))}: must be three "
                         "positive numbers (z, y, x)")
    if voxel_size is None and unit is None and suffix in (".tif", ".tiff"):
        return write_tiff  # no physical size was given: a plain label stack, as always
    size = tuple(voxel_size) if voxel_size is not None else (1.0, 1.0, 1.0)
    return lambda vol, path: export_volume(vol, path, voxel_size=size, unit=unit or "um")


def _memory_budget(gib: float | None) -> int | None:
    if gib is None:
        return None
    if not (np.isfinite(gib) and gib > 0):
        raise InputError(f"--memory-budget {gib}: must be a positive number of GiB")
    return int(gib * (1 << 30))


def _check_shape_fits(ckpt, args, settings, device, budget) -> None:
    """Refuse a --shape whose sampling cannot fit in memory, before anything is allocated."""
    from .core.diffusion.unet import UNetConfig
    from .core.memory import VolumeTooLarge, plan_sampling

    try:
        plan_sampling(UNetConfig.from_dict(ckpt["model_config"]), tuple(args.shape),
                      args.count, guided=settings.guidance != 1.0,
                      max_batch=settings.max_batch, budget=budget, device=device)
    except VolumeTooLarge as exc:
        raise InputError(f"--shape {' '.join(map(str, args.shape))}: {exc}") from None


def cmd_sample(args) -> int:
    from .core.checkpoint import load_checkpoint
    from .core.diffusion.sampler import SamplerSettings, SamplingCancelled
    from .core.generate import generate

    write = _volume_writer(args.out, args.voxel_size, args.unit)
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
    budget = _memory_budget(args.memory_budget)
    _check_shape_fits(ckpt, args, settings, device, budget)
    bar = _Progress(args.sampling_steps or total)
    with _stop_on_sigint() as stop_requested:
        def progress(step):
            bar.update(step.step, plane=step.plane)

        try:
            volumes = generate(ckpt, tuple(args.shape), args.count, args.sampling_steps,
                               settings, callback=progress, periodic=args.periodic,
                               seed=args.seed, device=device, should_stop=stop_requested,
                               memory_budget=budget, compile_network=args.compile)
        except SamplingCancelled:
            bar.close()
            print("sampling cancelled; nothing written")
            return EXIT_INTERRUPTED
    bar.close()
    for vol, path in zip(volumes.numpy(), _output_paths(args.out, args.count)):
        write(vol, path)
        print(f"wrote {path} ({'x'.join(map(str, vol.shape))} [z, y, x], "
              f"phase fractions {np.round(np.bincount(vol.ravel(), minlength=ckpt['num_phases']) / vol.size, 3).tolist()})")
    return 0


def _check_output(path: str | None, flag: str) -> None:
    if path is not None and not Path(path).parent.is_dir():
        raise InputError(f"{flag} {path}: the folder {Path(path).parent} does not exist; "
                         "create it or write the report elsewhere")


def _evaluation_phases(args, volumes: list[np.ndarray], references: list[tuple[str, int]]
                       ) -> int:
    """The phase count K of an evaluation; InputError naming the file when the volumes'
    labels do not fit the references' (or --phases') phases."""
    from .io.labels import MAX_LABEL_LEVELS

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


def _print_report(report: dict) -> None:
    """The report's headline numbers, one line each."""
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
    from .io.dataset import load_labelled_volume
    from .io.export import write_report
    from .io.volume import read_volume
    from .metrics.report import EvaluationCancelled, check_materials, run_evaluation

    _check_output(args.json, "--json")
    _check_output(args.csv, "--csv")
    image_set = None
    if any(getattr(args, p) for p in PLANE_NAMES) or args.transpose or args.flip_rows \
            or args.flip_cols:
        image_set = _load_micrographs(args)
        for line in _describe_micrographs(image_set):
            print(f"micrographs: {line}")
        for warning in image_set.warnings:
            print(f"warning: {warning}")
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
              f"[z, y, x], {seg.num_phases} phases ({how})")
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
                print(f"[{100 * fraction:3.0f} %] {text}", flush=True)
            return stop_requested()

        try:
            evaluation = run_evaluation(
                volumes, num_phases,
                image_set.images if image_set is not None else reference_volume,
                reference_volume=reference_volume if image_set is not None else None,
                diffusivity=args.diffusivity, elastic=args.elastic, materials=materials,
                device=device, max_r=args.max_r, names=list(args.volumes), progress=progress)
        except EvaluationCancelled:
            print("evaluation cancelled; nothing written")
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
    write_report(report, args.json, args.csv)
    _print_report(report)
    print(f"wrote {args.json}" + (f" and {args.csv}" if args.csv else ""))
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

    from .core.synthetic import lamellae, plane_images

    truth = lamellae((64, 64, 64), axis=2, mean_thickness=4, seed=1)
    for plane, ims in plane_images(truth, step=2).items():
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


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate,
            "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to relaunch under torchrun
    start = time.perf_counter()
    try:
        rc = COMMANDS[args.command](args)
    except InputError as exc:
        print(f"micro3d: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    if args.command != "demo":
        print(f"done in {time.perf_counter() - start:.1f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())

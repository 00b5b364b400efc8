"""The ``micro3d`` command: train, sample and demo, headless (for batch runs and clusters).

Bad input prints one line naming the file and the fix, and exits with code 2.
"""
from __future__ import annotations

import argparse
import signal
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="micro3d",
        description="Reconstruct 3D microstructures from 2D micrographs of three planes.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    tr = sub.add_parser("train", help="train a plane-conditional diffusion model")
    for plane in ("xy", "xz", "yz"):
        tr.add_argument(f"--{plane}", nargs="+", metavar="PATH",
                        help=f"{plane} micrographs: folder(s) and/or image files")
    tr.add_argument("--out", required=True, metavar="MODEL.pt", help="model file to write")
    tr.add_argument("--preset", choices=("tiny", "small", "paper"), default="small",
                    help="network size (default: small; paper is for GPUs)")
    tr.add_argument("--steps", type=_positive, default=None,
                    help="total training steps (default 60000, the paper's)")
    tr.add_argument("--batch", type=_positive, default=32, help="batch size (default 32)")
    tr.add_argument("--crop", type=_positive, default=64, help="crop size in px (default 64)")
    tr.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4)")
    tr.add_argument("--phases", type=_positive, default=None,
                    help="number of phases K: checked against labelled images; grey "
                         "micrographs are thresholded into K phases (Otsu for 2, multi-Otsu "
                         "for 3 to 5) on all planes' pixels together")
    tr.add_argument("--segment", choices=("labelled", "otsu", "multiotsu", "manual"),
                    default=None,
                    help="how images become phases (default: labelled when they hold at "
                         "most 16 grey levels, else otsu/multiotsu with --phases)")
    tr.add_argument("--thresholds", nargs="+", type=float, default=None, metavar="T",
                    help="grey thresholds for --segment manual: K-1 increasing values for "
                         "K phases (a pixel above T_k is in phase k or higher)")
    tr.add_argument("--transpose", action="append", default=[], choices=("xy", "xz", "yz"),
                    metavar="PLANE",
                    help="swap rows and columns of this plane's images (repeatable); "
                         "applied before the flips")
    tr.add_argument("--flip-rows", action="append", default=[], choices=("xy", "xz", "yz"),
                    metavar="PLANE", help="turn this plane's images upside down (repeatable)")
    tr.add_argument("--flip-cols", action="append", default=[], choices=("xy", "xz", "yz"),
                    metavar="PLANE", help="mirror this plane's images left-right (repeatable)")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--checkpoint-every", type=_positive, default=1000, metavar="N",
                    help="save the model every N steps (default 1000)")
    tr.add_argument("--resume", metavar="MODEL.pt", help="continue training this model")

    sa = sub.add_parser("sample", help="generate 3D volumes with a trained model")
    sa.add_argument("model", metavar="MODEL.pt")
    sa.add_argument("--shape", nargs=3, type=_positive, required=True, metavar=("Z", "Y", "X"))
    sa.add_argument("--out", required=True, metavar="VOLUME.tif",
                    help="uint8 phase labels, axis order [z, y, x]")
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
    sa.add_argument("--max-batch", type=_positive, default=256,
                    help="most slices per network call (lower it to save memory)")

    de = sub.add_parser("demo", help="synthetic material -> train a tiny model -> sample")
    de.add_argument("--out", default="micro3d-demo", metavar="DIR")
    de.add_argument("--steps", type=_positive, default=1500,
                    help="training steps (default 1500, a few minutes on a laptop CPU)")
    de.add_argument("--size", type=_positive, default=32, help="edge of the sampled cube")
    de.add_argument("--device", default="auto")
    return parser


class _Progress:
    """A tqdm bar on a terminal; plain log lines (about 20 per run) when output is a file."""

    def __init__(self, total: int, initial: int = 0, unit: str = "step"):
        from tqdm import tqdm

        self.total, self.unit, self.initial = total, unit, initial
        self.start = time.perf_counter()
        self.interactive = sys.stderr.isatty()
        self.every = max(1, (total - initial) // 20)
        self.bar = tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True,
                        disable=not self.interactive)

    def update(self, step: int, **info) -> None:
        self.bar.update(step - self.bar.n)
        self.bar.set_postfix(info, refresh=False)
        if not self.interactive and (step % self.every == 0 or step == self.total):
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


def cmd_train(args) -> int:
    from .core.checkpoint import load_checkpoint
    from .core.diffusion.unet import preset_config
    from .core.encoding import num_channels
    from .core.training import PlaneDataset, TrainConfig, Trainer
    from .core.segment import SegmentationConfig
    from .io.dataset import load_labelled_planes
    from .io.planeset import PlaneOptions

    device = _device(args.device)
    folders = {"xy": args.xy, "xz": args.xz, "yz": args.yz}
    segmentation = None  # None: labelled, or Otsu when grey images come with --phases
    if args.segment or args.thresholds:
        method = args.segment or "manual"
        if args.thresholds and method != "manual":
            raise InputError(f"--thresholds goes with --segment manual, not --segment {method}")
        if method == "multiotsu" and args.phases is None:
            raise InputError("--segment multiotsu needs --phases K (3 to 5)")
        phases = args.phases if method in ("otsu", "multiotsu") and args.phases else 2
        segmentation = SegmentationConfig(method, phases, tuple(args.thresholds or ()))
    flags = {"--transpose": args.transpose, "--flip-rows": args.flip_rows,
             "--flip-cols": args.flip_cols}
    for flag, planes in flags.items():
        for plane in planes:
            if not folders[plane]:
                raise InputError(f"{flag} {plane}: no {plane} images given; add --{plane} "
                                 f"PATH or drop {flag} {plane}")
    options = {p: PlaneOptions(p in args.transpose, p in args.flip_rows, p in args.flip_cols)
               for p in folders}
    image_set = load_labelled_planes(folders, args.phases, segmentation, options)
    image_set.check_crop(args.crop)
    data = PlaneDataset(image_set.images, image_set.num_phases)
    if args.resume:
        ckpt = load_checkpoint(args.resume)
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
                          crop=args.crop, lr=args.lr, seed=args.seed,
                          checkpoint_every=args.checkpoint_every)
        trainer = Trainer(data, model_cfg, cfg, device=device)
    counts = ", ".join(
        f"{p}: {len(v)} ({', '.join(sorted({f'{h}x{w}' for h, w in (im.shape for im in v)}))})"
        for p, v in image_set.images.items())
    seg = image_set.segmentation
    how = (f"grey levels {image_set.grey_levels}" if seg.method == "labelled" else
           f"{seg.method} thresholds {[float(f'{t:.4g}') for t in seg.thresholds]}")
    print(f"{image_set.num_phases} phases ({how}); "
          f"images {counts}; device {device}; preset {trainer.model_config.preset}")
    print("phase fractions: " + "; ".join(f"{p} {np.round(f, 3).tolist()}"
                                          for p, f in seg.fractions.items()))
    for warning in image_set.warnings:
        print(f"warning: {warning}")
    bar = _Progress(trainer.config.steps, trainer.step)
    with _stop_on_sigint() as stop_requested:
        def progress(p):
            bar.update(p.step, loss=f"{p.loss:.4f}")
            return stop_requested()

        finished = trainer.train(progress, checkpoint_path=args.out)
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


def cmd_sample(args) -> int:
    from .core.checkpoint import load_checkpoint
    from .core.diffusion.sampler import SamplerSettings, SamplingCancelled
    from .core.generate import generate
    from .io.volume import write_tiff

    ckpt = load_checkpoint(args.model)
    try:
        settings = SamplerSettings(harmonize=args.harmonize, gamma=args.gamma,
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
            print("sampling cancelled; nothing written")
            return EXIT_INTERRUPTED
    bar.close()
    for vol, path in zip(volumes.numpy(), _output_paths(args.out, args.count)):
        write_tiff(vol, path)
        print(f"wrote {path} ({'x'.join(map(str, vol.shape))} [z, y, x], "
              f"phase fractions {np.round(np.bincount(vol.ravel(), minlength=ckpt['num_phases']) / vol.size, 3).tolist()})")
    return 0


def cmd_demo(args) -> int:
    from .core.synthetic import lamellae, plane_images
    from .io.volume import read_volume
    from .metrics.anisotropy import transition_rate
    from PIL import Image

    out = Path(args.out)
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
               "--steps", str(args.steps), "--crop", "32", "--batch", "16",
               "--device", args.device])
    if rc:
        return rc
    volume = out / "volume.tif"
    n = str(args.size)
    rc = main(["sample", str(model), "--shape", n, n, n, "--out", str(volume),
               "--sampling-steps", "50", "--harmonize", "1", "--seed", "0",
               "--device", args.device])
    if rc:
        return rc
    rates = transition_rate(read_volume(volume))
    print("phase changes per voxel step: " + ", ".join(f"{k} {v:.3f}" for k, v in rates.items())
          + "   (truth: x high, y and z zero)")
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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

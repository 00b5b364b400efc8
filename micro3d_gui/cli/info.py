"""``micro3d info``: what a model file holds."""
from __future__ import annotations

import argparse
import sys


def add_arguments(sub) -> argparse.ArgumentParser:
    """The ``info`` subcommand and its options, on the subparsers ``sub``."""
    inf = sub.add_parser("info", help="what a model file holds: preset, phases, training "
                                      "steps and time, crop, learning rate, data, symmetry")
    inf.add_argument("model", metavar="MODEL.pt")
    inf.add_argument("--json", action="store_true", help="print it as JSON")
    return inf


def run(args) -> int:
    import json

    from ..core.symmetry import Symmetry
    from ..io.export import report_json
    from ..session.model import describe_model

    info = describe_model(args.model)
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

"""The micrograph options (--xy / --xz / --yz and how they become phases) shared by
``micro3d train`` and ``micro3d evaluate``, and reading them."""
from __future__ import annotations

import argparse

import numpy as np

from ..errors import InputError
from .files import PLANE_NAMES
from .options import number, positive


def add_micrograph_options(parser: argparse.ArgumentParser, reference: bool = False) -> None:
    """Micrographs per plane and how they become phases: shared by train and evaluate."""
    for plane in PLANE_NAMES:
        parser.add_argument(f"--{plane}", nargs="+", metavar="PATH",
                            help=f"{plane} micrographs: folder(s) and/or image files")
    images = "images (and the --reference volume)" if reference else "images"
    parser.add_argument("--phases", type=positive, default=None,
                        help=f"number of phases K: checked against labelled {images}; grey "
                             "micrographs are thresholded into K phases (Otsu for 2, "
                             "multi-Otsu for 3 to 5) on all planes' pixels together")
    parser.add_argument("--segment", choices=("labelled", "otsu", "multiotsu", "manual"),
                        default=None,
                        help="how images become phases (default: labelled when they hold at "
                             "most 16 grey levels, else otsu/multiotsu with --phases)")
    parser.add_argument("--thresholds", nargs="+", type=number, default=None, metavar="T",
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


def segmentation_config(args):
    """The --segment / --thresholds / --phases options -> a SegmentationConfig, or None to
    let the data decide (labelled, or Otsu when grey images come with --phases)."""
    from ..preprocess.segment import SegmentationConfig

    if not (args.segment or args.thresholds):
        return None
    method = args.segment or "manual"
    if args.thresholds and method != "manual":
        raise InputError(f"--thresholds goes with --segment manual, not --segment {method}")
    if method == "multiotsu" and args.phases is None:
        raise InputError("--segment multiotsu needs --phases K (3 to 5)")
    phases = args.phases if method in ("otsu", "multiotsu") and args.phases else 2
    return SegmentationConfig(method, phases, tuple(args.thresholds or ()))


def load_micrographs(args):
    """Read and segment the --xy/--xz/--yz micrographs as the options say -> PlaneImageSet
    (as ``micro3d train`` does; an InputError when no plane is given)."""
    from ..preprocess.dataset import load_labelled_planes
    from ..preprocess.orientation import PlaneOptions

    folders = {p: getattr(args, p) for p in PLANE_NAMES}
    segmentation = segmentation_config(args)
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


def describe_micrographs(image_set) -> list[str]:
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

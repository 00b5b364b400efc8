"""``micro3d evaluate``: statistics and properties of volumes, as a JSON / CSV report."""
from __future__ import annotations

import argparse
import sys

import numpy as np

from ..errors import InputError
from ..interrupt import stop_on_signals
from .files import PLANE_NAMES, check_command_files, save_or_rescue
from .micrographs import (add_micrograph_options, describe_micrographs, load_micrographs,
                          segmentation_config)
from .options import add_device_option, device_option, positive, stopped_by, warn


def add_arguments(sub) -> argparse.ArgumentParser:
    """The ``evaluate`` subcommand and its options, on the subparsers ``sub``."""
    ev = sub.add_parser("evaluate", help="S2, lineal path, volume fractions and properties "
                                         "of volumes -> a JSON / CSV report")
    ev.add_argument("volumes", nargs="+", metavar="VOLUME.tif",
                    help="label volumes [z, y, x] of phases 0..K-1, as micro3d sample "
                         "writes them (.tif/.tiff stacks, .vti, .npy)")
    add_micrograph_options(ev, reference=True)
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
    add_device_option(ev, "for the property solvers: ")
    ev.add_argument("--max-r", type=positive, default=None, metavar="R",
                    help="largest distance (voxels) of the S2 / lineal-path curves (default "
                         "a quarter of the smallest image side, at most 32)")
    ev.add_argument("--json", required=True, metavar="REPORT.json",
                    help="report to write ('-' for stdout; other output then goes to "
                         "stderr)")
    ev.add_argument("--csv", metavar="REPORT.csv",
                    help="the report's numbers as key,value rows too (texts such as "
                         "paths are in the JSON only)")
    return ev


def _evaluation_phases(args, volumes: list[np.ndarray], references: list[tuple[str, int]]
                       ) -> int:
    """The phase count K of an evaluation; InputError naming the file when the volumes'
    labels do not fit the references' (or --phases') phases."""
    from ..preprocess.labels import MAX_LABEL_LEVELS

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


def run(args) -> int:
    from ..preprocess.dataset import load_labelled_volume
    from ..io.export import report_json, write_report
    from ..io.volume import read_volume
    from ..metrics.report import EvaluationCancelled, check_materials, run_evaluation

    to_stdout = args.json == "-"
    info = sys.stderr if to_stdout else sys.stdout  # stdout then carries the JSON alone
    check_command_files(args)
    image_set = None
    if any(getattr(args, p) for p in PLANE_NAMES) or args.transpose or args.flip_rows \
            or args.flip_cols:
        image_set = load_micrographs(args)
        for line in describe_micrographs(image_set):
            print(f"micrographs: {line}", file=info)
        for warning in image_set.warnings:
            warn(warning)
    elif (args.segment or args.thresholds) and not args.reference:
        raise InputError("--segment / --thresholds apply to micrographs (--xy, --xz, --yz) "
                         "or a --reference volume; give them or drop the option")
    references, reference_volume = [], None
    if image_set is not None:
        references.append(("the micrographs", image_set.num_phases))
    if args.reference:
        reference_volume, seg = load_labelled_volume(args.reference, args.phases,
                                                     segmentation_config(args))
        references.append((args.reference, seg.num_phases))
        how = (f"grey levels {seg.thresholds}" if seg.method == "labelled" else
               f"{seg.method} thresholds {[float(f'{t:.4g}') for t in seg.thresholds]}")
        print(f"reference {args.reference}: {'x'.join(map(str, reference_volume.shape))} "
              f"[z, y, x], {seg.num_phases} phases ({how})", file=info)
    volumes = [read_volume(path) for path in args.volumes]
    num_phases = _evaluation_phases(args, volumes, references)

    materials = None
    if args.materials:
        from ..properties.elastic import load_materials

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
    device = device_option(args.device) if args.diffusivity or args.elastic else "cpu"

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
            print(f"evaluation cancelled{stopped_by(stop_requested)}; nothing written",
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
        save_or_rescue(lambda paths: write_report(
            report, paths[0] if json_path else None, paths[-1] if args.csv else None),
            written, args)
    _print_report(report, file=info)
    if written:
        print(f"wrote {' and '.join(written)}", file=info)
    return 0

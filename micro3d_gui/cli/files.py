"""The files each ``micro3d`` command reads and writes, from its parsed options: checked
together before the work starts (:func:`check_command_files`), and the folders where work
that could not be written goes instead (:func:`rescue_folders`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..core.planes import PLANES
from ..errors import InputError, OutputError
from ..io.export import voxel_sidecar_path
from ..io.images import list_images
from ..io.run_files import NamedPath, check_run_files, rescue

#: The planes of the micrograph options --xy, --xz and --yz.
PLANE_NAMES = PLANES


def output_paths(out: str, count: int) -> list[Path]:
    """The volume files of ``sample --out OUT --count N``: OUT itself, or OUT_000, ..."""
    p = Path(out)
    if count == 1:
        return [p]
    return [p.with_name(f"{p.stem}_{i:03d}{p.suffix}") for i in range(count)]


def _micrographs(args: argparse.Namespace) -> list[NamedPath]:
    """Every image file the --xy/--xz/--yz options name, folders listed as the loader does
    (a source that cannot be listed is left to the loader, which says why)."""
    files = []
    for plane in PLANE_NAMES:
        for source in getattr(args, plane, None) or ():
            try:
                files += [(f"the --{plane} micrograph", p) for p in list_images(source)]
            except InputError:
                continue
    return files


def command_files(args: argparse.Namespace
                  ) -> tuple[list[NamedPath], list[NamedPath], list[str]]:
    """``(outputs, inputs, replaced)`` of the command in ``args`` (see
    :func:`~micro3d_gui.io.run_files.check_run_files`)."""
    if args.command == "train":
        inputs = _micrographs(args)
        if args.resume:
            inputs.append(("the --resume model", args.resume))
        # a resumed run reads its model whole, then replaces it: the usual way to continue
        return [("--out", args.out)], inputs, [args.resume] if args.resume else []
    if args.command == "sample":
        volumes = output_paths(args.out, args.count)
        outputs = [("--out", p) for p in volumes]
        if args.voxel_size is not None and Path(args.out).suffix.lower() == ".npy":
            outputs += [("the --out sidecar", voxel_sidecar_path(p))
                        for p in volumes]
        if args.json is not None:
            outputs.append(("--json", args.json))
        inputs = [("the model", args.model)] + [(f"the --keep {plane} {index} image", image)
                                                for plane, index, image in args.keep]
        return outputs, inputs, []
    if args.command == "evaluate":
        outputs = [] if args.json == "-" else [("--json", args.json)]
        if args.csv is not None:
            outputs.append(("--csv", args.csv))
        inputs = [("the volume", v) for v in args.volumes] + _micrographs(args)
        if args.reference:
            inputs.append(("the --reference volume", args.reference))
        if args.materials:
            inputs.append(("the --materials file", args.materials))
        return outputs, inputs, []
    return [], [], []


def check_command_files(args: argparse.Namespace) -> None:
    """Refuse (OutputError, one line) an output of the command that cannot be written, is
    one of its inputs or is another of its outputs, before any work."""
    outputs, inputs, replaced = command_files(args)
    check_run_files(outputs, inputs, replaced)


def rescue_folders(args: argparse.Namespace) -> list[Path]:
    """Where work that could not be written goes first: beside the inputs (the folder
    holding the first micrograph folder, the model's folder or the first volume's)."""
    if args.command == "sample":
        return [Path(args.model).resolve().parent]
    if args.command == "evaluate":
        return [Path(args.volumes[0]).resolve().parent]
    for plane in PLANE_NAMES:
        for source in getattr(args, plane, None) or ():
            p = Path(source)
            return [(p if p.is_dir() else p.parent).resolve().parent]
    return []


def save_or_rescue(save, paths: list, args) -> None:
    """``save(paths)``, or when that fails the same to the rescue folders (an OutputError
    saying where the work went)."""
    try:
        save(paths)
    except OutputError as exc:
        raise rescue(save, paths, rescue_folders(args), exc) from None

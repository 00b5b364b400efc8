"""The ``micro3d`` argument parser: one subcommand per module of this package."""
from __future__ import annotations

import argparse

from .. import __version__
from . import demo, evaluate, info, sample, train
from .options import positive

#: The subcommands in the order ``micro3d --help`` lists them, and those taking --threads.
SUBCOMMANDS = (train, sample, evaluate, info, demo)
THREADED = (train, sample, evaluate, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="micro3d",
        description="Reconstruct 3D microstructures from 2D micrographs of three planes.",
    )
    parser.add_argument("--version", action="version", version=f"micro3d {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in SUBCOMMANDS:
        p = command.add_arguments(sub)
        if command in THREADED:
            p.add_argument("--threads", type=positive, default=None, metavar="N",
                           help="CPU threads per process (default: the cores that other "
                                "processes leave free, at most OMP_NUM_THREADS when set)")
    return parser

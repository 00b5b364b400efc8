"""The ``micro3d`` argument parser: one subcommand per module of this package."""
from __future__ import annotations

import argparse

from .. import __version__
from . import demo, evaluate, info, sample, train
from .options import positive

#: The subcommands in the order ``micro3d --help`` lists them, and those taking --threads.
SUBCOMMANDS = (train, sample, evaluate, info, demo)
THREADED = (train, sample, evaluate, demo)
#: Those whose threads run apart (sampling's slice workers, core/slice_workers.py): they
#: take every core whatever the load (core/threads.py ``decide_threads``).
THREADS_APART = (sample,)


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
            apart = command in THREADS_APART
            default = "every core" if apart else "the cores that other processes leave free"
            p.add_argument("--threads", type=positive, default=None, metavar="N",
                           help=f"CPU threads per process (default: {default}, at most "
                                "OMP_NUM_THREADS when set)")
            p.set_defaults(threads_apart=apart)
    return parser

"""The ``micro3d`` command: train, sample, evaluate and demo, headless (for batch runs and
clusters).

Bad input prints one line naming the file (or option) and the fix, and exits with code 2;
every output path is checked before the work starts. Results go to stdout, progress,
warnings and timings to stderr.
"""
from __future__ import annotations

import os
import sys
import time

from ..core import threads

threads.prefer_passive_wait()  # before torch loads OpenMP (the next imports), as the app

import torch

from ..errors import InputError
from . import demo, evaluate, info, sample, train
from .options import given_options
from .parser import build_parser
from .recipe_options import sampling_recipe

__all__ = ["COMMANDS", "build_parser", "main", "sampling_recipe"]

EXIT_INPUT = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command cut off by head


COMMANDS = {"train": train.run, "sample": sample.run, "evaluate": evaluate.run,
            "demo": demo.run, "info": info.run}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = list(argv)  # to relaunch under torchrun
    args.given = given_options(parser, argv, args.command)
    start = time.perf_counter()
    before = torch.get_num_threads()  # given back at the end: main() may run in-process
    try:
        if hasattr(args, "threads"):
            # at most the caller's count, as the app's jobs: a fresh process has torch's
            # default (OMP_NUM_THREADS, else the cores); a program calling main() its own
            threads.use_threads(args.threads, limit=before, load=not args.threads_apart)
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

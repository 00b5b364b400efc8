"""Running a command in ``--nproc`` processes under torchrun."""
from __future__ import annotations

from ..core import threads
from ..interrupt import call_forwarding_signals


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


def launch_ranks(args) -> int:
    """Run this command again in ``--nproc`` processes under torchrun and wait for them."""
    from ..core.distributed import torchrun_command

    argv = _without_option(args.argv, "--nproc")
    if args.threads is None:  # the cores shared out, decided once for all ranks
        argv += ["--threads", str(threads.decide_threads(processes=args.nproc,
                                                         load=not args.threads_apart))]
    return call_forwarding_signals(torchrun_command(args.nproc, argv))

"""How many CPU threads torch uses: the cores this process may run on, less those other
processes keep busy. One rule for both faces: the ``micro3d`` command applies it when a
command starts, the app when each job (training, generation, analysis) starts.

Why: OpenMP's threads wait for each other at every parallel region, so one thread on a
core that a neighbour (a browser, another job) holds stalls all the others; under load
2 threads on 2 cores ran many times slower than 1 (docs/benchmarks.md, Load and threads).
Giving the busy cores up loses only the neighbour's share. Also, OpenMP's idle threads
should sleep rather than spin (:func:`prefer_passive_wait`), so that they take nothing from
the neighbour either.

No Qt; torch is imported only where threads are set.
"""
from __future__ import annotations

import math
import os
from collections.abc import MutableMapping

#: Seconds over which the other processes' CPU use is measured (psutil).
MEASURE_S = 0.2


def prefer_passive_wait(environ: MutableMapping[str, str] = os.environ) -> None:
    """Let OpenMP's idle threads sleep instead of spinning (unless the user chose). Takes
    effect only before torch loads OpenMP, so the entry points call it first thing."""
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def busy_cores(interval: float = MEASURE_S) -> float:
    """Cores' worth of CPU that OTHER processes use now: the whole machine's use over
    ``interval`` seconds less this process's own (psutil); without psutil, the 1-minute
    load average (which lags, and counts this process's recent work too); 0 where
    neither exists."""
    try:
        import psutil  # noqa: PLC0415
    except ImportError:
        psutil = None
    if psutil is not None:
        me = psutil.Process()
        me.cpu_percent(None)  # starts this process's own count
        machine = psutil.cpu_percent(interval) / 100 * (psutil.cpu_count() or 1)
        return max(0.0, machine - me.cpu_percent(None) / 100)
    if hasattr(os, "getloadavg"):
        return float(os.getloadavg()[0])
    return 0.0


def choose_threads(cores: int, busy: float, processes: int = 1,
                   limit: int | None = None) -> int:
    """The threads for each of ``processes`` processes on ``cores`` cores of which ``busy``
    cores' worth are used by others: the free cores (a core counts as busy from half a
    core's use) shared out, at most ``limit``, at least 1."""
    free = cores - math.floor(busy + 0.5)
    threads = max(1, free // max(1, processes))
    return max(1, min(threads, limit)) if limit else threads


def environment_limit(environ: MutableMapping[str, str] = os.environ) -> int | None:
    """``OMP_NUM_THREADS`` when it is set to a positive whole number (a batch script's or
    a user's own choice, which the rule does not exceed), else None."""
    try:
        value = int(environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def decide_threads(requested: int | None = None, *, processes: int = 1,
                   limit: int | None = None, load: bool = True) -> int:
    """The threads for each of ``processes`` processes of this machine: ``requested`` when
    given (``--threads N``), else :func:`choose_threads` for this machine now, at most
    ``limit`` (default ``OMP_NUM_THREADS`` when set). No measurement where the answer is
    1 anyway.

    ``load=False``: every core, whatever the other processes use, for work whose threads
    run apart rather than sharing each operator (sampling: :mod:`.slice_workers`). Such a
    thread on a busy core only runs slower, and it stalls no other thread: beside busy
    neighbours, sampling on every core beat sampling on the free ones
    (docs/benchmarks.md, Load and threads)."""
    if requested is not None:
        return int(requested)
    cores = usable_cores()
    limit = environment_limit() if limit is None else limit
    if cores == 1 or limit == 1 or cores <= processes:
        return 1
    return choose_threads(cores, busy_cores() if load else 0.0, processes, limit)


def use_threads(requested: int | None = None, *, limit: int | None = None,
                load: bool = True) -> int:
    """Set torch's threads for the calling thread to :func:`decide_threads` and return
    how many."""
    import torch  # noqa: PLC0415

    threads = decide_threads(requested, limit=limit, load=load)
    torch.set_num_threads(threads)
    return threads

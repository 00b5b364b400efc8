"""A network call's slices shared among CPU threads of one OpenMP thread each.

Why: the small U-Nets run many small operators, and with torch's threads inside each
operator (intra-op) every operator ends at a barrier where the threads wait for each
other; threads that each run their own slices alone wait for nobody, and ran each call
faster (docs/benchmarks.md, Speed). A call's slices are independent (the networks
normalise each slice on its own), so splitting them changes nothing but the order of
floating-point sums.

No Qt. The caller's own thread count is what is shared out: it is whatever the thread rule
(:mod:`.threads`) set for the job.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

Network = Callable[..., torch.Tensor]
#: Seconds the workers may take to start (a thread starts in well under one).
START_TIMEOUT_S = 60


def cpu_workers(device: torch.device | str) -> int:
    """The workers for network calls on ``device``: the calling thread's torch threads on a
    CPU (one worker where that is 1), 1 elsewhere (a GPU runs a call as one batch)."""
    return torch.get_num_threads() if torch.device(device).type == "cpu" else 1


class SliceWorkers:
    """``workers`` threads, each running one OpenMP thread, that share each network call's
    slices out in contiguous parts (:meth:`split`). A context manager: the threads end with
    it. One worker: calls run in the caller's thread, as they are.

    The caller's torch thread count is left as it was: torch keeps one count per thread,
    and a new thread starts from the last count set anywhere, so the workers take theirs
    while the caller waits, and the caller's is set again after.
    """

    def __init__(self, workers: int):
        self.workers = max(1, int(workers))
        # one single-thread pool per worker: part i always goes to worker i (a shared
        # queue could hand both parts to whichever thread woke first)
        self._pools: list[ThreadPoolExecutor] = []
        if self.workers > 1:
            own = torch.get_num_threads()
            ready = threading.Barrier(self.workers + 1)
            self._pools = [ThreadPoolExecutor(1, thread_name_prefix="micro3d-slices",
                                              initializer=_one_thread, initargs=(ready,))
                           for _ in range(self.workers)]
            for pool in self._pools:  # every thread starts (and takes 1) before ...
                pool.submit(int)
            ready.wait(timeout=START_TIMEOUT_S)
            torch.set_num_threads(own)  # ... the caller's count is set back

    def split(self, network: Network) -> Network:
        """``network(x, t, c, *rest)`` run with its rows (dim 0 of every tensor argument)
        shared among the workers, the results concatenated in order; calls of fewer rows
        than workers, and one worker, run whole in the caller's thread."""
        if not self._pools:
            return network
        pools = self._pools

        def call(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
            parts = min(self.workers, x.shape[0])
            if parts < 2:
                return network(x, *args, **kwargs)
            shares = [_rows(a, parts) for a in (x, *args)]
            named = {k: _rows(v, parts) for k, v in kwargs.items()}
            modes = torch.is_inference_mode_enabled(), torch.is_grad_enabled()
            futures = [pools[i].submit(_run, network, modes, [s[i] for s in shares],
                                       {k: v[i] for k, v in named.items()})
                       for i in range(parts)]
            return torch.cat([f.result() for f in futures])

        return call

    def close(self) -> None:
        for pool in self._pools:
            pool.shutdown(wait=True)
        self._pools = []

    def __enter__(self) -> "SliceWorkers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _one_thread(ready: threading.Barrier) -> None:
    torch.set_num_threads(1)
    torch.get_num_threads()  # torch's per-thread set-up reads the count now, while it is 1
    ready.wait()


def _rows(value, parts: int) -> list:
    """``parts`` contiguous row blocks of a tensor; anything else (None, a number) as is."""
    if isinstance(value, torch.Tensor) and value.dim() > 0:
        return list(value.tensor_split(parts))
    return [value] * parts


def _run(network: Network, modes: tuple[bool, bool], args: list, kwargs: dict
         ) -> torch.Tensor:
    # inference and grad mode (like autocast) are per thread: the worker takes the caller's
    inference, grad = modes
    with torch.inference_mode(inference), torch.set_grad_enabled(grad):
        return network(*args, **kwargs)

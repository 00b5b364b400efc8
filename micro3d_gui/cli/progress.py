"""Progress of a ``micro3d`` command on stderr: a bar on a terminal, log lines in a file."""
from __future__ import annotations

import sys
import time


class Progress:
    """A tqdm bar on a terminal; plain log lines (about 20 per run) when stderr is a file.
    Both go to stderr: stdout keeps the results."""

    def __init__(self, total: int, initial: int = 0, unit: str = "step", quiet: bool = False):
        from tqdm import tqdm

        self.total, self.unit, self.initial = total, unit, initial
        self.printed = None
        self.start = time.perf_counter()
        self.interactive = sys.stderr.isatty() and not quiet
        self.quiet = quiet
        self.bar = tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True,
                        disable=not self.interactive)

    def update(self, done: int, **info) -> None:
        """Move the bar to ``done`` units; ``info`` is shown beside it."""
        self.bar.set_postfix(info, refresh=False)  # before update(), which draws the bar
        self._draw(self.bar.update, done - self.bar.n)
        every = max(1, (self.total - self.initial) // 20)
        # a line each time ``done`` passes a multiple of ``every`` (it may jump past one)
        passed = self.printed is None or done // every != self.printed // every
        if not self.interactive and not self.quiet and done != self.printed and (
                passed or done == self.total):
            self.printed = done
            rate = (done - self.initial) / max(time.perf_counter() - self.start, 1e-9)
            eta = (self.total - done) / rate if rate else float("nan")
            extra = " ".join(f"{k} {v}" for k, v in info.items())
            self._draw(print, f"{self.unit} {done}/{self.total} {extra} {rate:.2f} "
                       f"{self.unit}/s eta {eta:.0f} s", file=sys.stderr, flush=True)

    def _draw(self, fn, *args, **kwargs) -> None:
        """``fn(*args, **kwargs)``, which writes progress; a terminal that has gone (an ssh
        session closed: EIO, which can come before SIGHUP's handler runs) silences the bar
        instead of ending the run before it saves."""
        try:
            fn(*args, **kwargs)
        except OSError:
            self.quiet, self.interactive, self.bar.disable = True, False, True

    def set_total(self, total: int) -> None:
        """A time-budgeted run knows its step count only after its first steps."""
        if total != self.total:
            self.total = self.bar.total = total
            self._draw(self.bar.refresh)

    def write(self, line: str) -> None:
        """A line of its own (above the bar on a terminal), on stderr with the progress."""
        if self.quiet:
            return
        if self.interactive:
            self._draw(self.bar.write, line, file=sys.stderr)
        else:
            self._draw(print, line, file=sys.stderr, flush=True)

    def close(self) -> None:
        self._draw(self.bar.close)


def sampling_progress(recipe, ckpt: dict, fractions=None, quiet: bool = False, then=None):
    """A bar counting network calls (a harmonized step costs n_h + 1 plain ones, so steps
    would misstate the ETA) and the sampler callback that moves it, naming the step and its
    plane. ``then``: the recipe of a second pass after ``recipe``'s, whose bar starts where
    the first pass's calls end."""
    first = recipe.network_calls(ckpt, fractions)
    if then is None:
        bar = Progress(first, unit="call", quiet=quiet)
    else:
        bar = Progress(first + then.network_calls(ckpt, fractions), initial=first,
                       unit="call", quiet=quiet)

    def progress(step) -> None:
        bar.update(step.calls, step=f"{step.step}/{step.total}", plane=step.plane)

    return bar, progress

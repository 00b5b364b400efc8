"""Stop requests from the outside, for long runs (training, sampling, evaluation): Ctrl-C
(SIGINT), a plain ``kill`` or a batch system's time limit (SIGTERM) and a closed terminal or
ssh session (SIGHUP) all ask the run to stop after its current step, so that it saves its
work instead of dying mid-step. One handler for every command; no Qt.
"""
from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator, Sequence

#: The signals that stop a run politely (those this platform has: no SIGHUP on Windows).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


class StopRequest:
    """Callable: True once a stop signal came. ``signum`` is the first one, if any."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal, as a shell reports a command the signal ended (130 for
        Ctrl-C, 143 for SIGTERM, 129 for SIGHUP)."""
        return 128 + int(self.signum or signal.SIGINT)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum or signal.SIGINT).name


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Within the block, the stop signals set the yielded :class:`StopRequest` instead of
    ending the process; the previous handlers come back after it. A signal ignored when the
    block starts stays ignored (``nohup`` ignores SIGHUP; a shell's ``&`` job, SIGINT).
    Outside the main thread (where Python cannot set handlers) the request is never set."""
    stop = StopRequest()

    def handler(signum, frame):
        if getattr(signal, "SIGHUP", None) == signum:
            _leave_the_terminal()
        if stop.signum is None:
            stop.signum = signum

    previous = {}
    try:
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) != signal.SIG_IGN:
                previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _leave_the_terminal() -> None:
    """After SIGHUP the terminal is gone and writing to it fails (EIO): send what would
    have gone there to the null device, so the run can still save and report in its log
    files. Output already going to a file or a pipe is left as it is. (A hung-up terminal
    no longer answers ``isatty``; it is still a character device.)"""
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
            if stat.S_ISCHR(os.fstat(fd).st_mode):
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
                os.close(null)
        except (OSError, ValueError, AttributeError):
            continue


def call_forwarding_signals(command: Sequence[str]) -> int:
    """Run ``command`` and wait for it, passing SIGTERM and SIGHUP on to it (so a ``kill`` of
    this process stops the child's work politely too); returns its exit code, or 128 + the
    signal passed on when the child failed after it (torchrun exits 1 on a signal). SIGINT
    is not passed on: Ctrl-C reaches the whole foreground process group already, and a
    second one would cut the child's own clean stop short."""
    child = subprocess.Popen(list(command))
    stop = StopRequest()

    def forward(signum, frame):
        stop.signum = stop.signum or signum
        with contextlib.suppress(OSError):
            child.send_signal(signum)

    previous = {}
    try:
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) != signal.SIG_IGN:  # the child ignores it too
                previous[sig] = signal.signal(
                    sig, signal.SIG_IGN if sig == signal.SIGINT else forward)
    except ValueError:  # not the main thread
        pass
    try:
        code = child.wait()
        return stop.exit_code if code and stop() else code
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

"""Long work (training, sampling, property runs) in a superqt worker thread.

A :class:`Job` runs one plain function from the core in a thread of the global
``QThreadPool`` and re-emits its reports on the GUI thread: a progress fraction with a
rate / ETA text, every yielded or reported item, and how it ended. The function is either

- a generator function ``fn(*args, should_stop=callable, **kwargs)`` whose yielded items are
  reports (the napari / superqt style), or
- a plain function; if it has parameters named ``report`` / ``should_stop`` they are
  passed (core APIs that report through a callback, as ``Trainer.train``): ``report(item)``
  forwards an item.

``should_stop()`` turns True when the user cancels; the function polls it (the sampler before
every network call, the trainer after every step) so a cancel takes effect within about one
network call. An exception raised after a cancel counts as the cancel
(``SamplingCancelled``, ``PropertyCancelled``); any other exception is shown with
:func:`micro3d_gui.qt.dialogs.show_error` (the message, never a traceback).

Progress is throttled with superqt's ``qthrottled`` (at most one ``progress`` per
``throttle_ms``, the latest always delivered before the job ends); :func:`throttled` gives
the panels the same for their own redraws (live previews, plots).
"""
from __future__ import annotations

import inspect
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget
from superqt.utils import WorkerBase, qthrottled

from ..core import threads
from . import dialogs

log = logging.getLogger(__name__)

#: ``progress_of(item) -> (done, total)`` or None for items that carry no progress.
ProgressOf = Callable[[Any], "tuple[float, float] | None"]


def format_duration(seconds: float) -> str:
    """``75.2 -> '1:15'``, ``3725 -> '1:02:05'``; '?' when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


#: Default progress throttle: at most 4 progress updates a second reach the widgets.
THROTTLE_MS = 250


def throttled(fn: Callable, timeout_ms: int, parent: QObject):
    """``fn`` called at most once per ``timeout_ms`` with the latest arguments (the first
    call at once, the last one at the end of its period); ``timeout_ms <= 0``: every call.
    The result has ``flush()`` and ``cancel()`` (superqt's ``qthrottled``)."""
    if timeout_ms <= 0:
        return _Unthrottled(fn)
    return qthrottled(fn, timeout=timeout_ms, leading=True, parent=parent)


class _Unthrottled:
    """``fn`` passed straight through, with the throttled callable's flush / cancel."""

    def __init__(self, fn: Callable):
        self._fn = fn

    def __call__(self, *args):
        return self._fn(*args)

    def flush(self) -> None:
        pass

    def cancel(self) -> None:
        pass


class _WorkerSignals(QObject):
    """The signals superqt's ``WorkerBase`` emits, and ``yielded`` for the reports."""

    started = Signal()
    finished = Signal()
    _finished = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    warned = Signal(tuple)
    yielded = Signal(object)


def _torch_threads() -> int | None:
    """The calling thread's torch thread count (None when torch is not loaded)."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


class _Worker(WorkerBase):
    """A superqt worker that drives a generator or a callback function to its end.

    Unlike superqt's GeneratorWorker it closes the generator on a stop (so the function's
    ``finally`` blocks run in the worker thread) and it tells when its thread is done.
    """

    def __init__(self, fn: Callable, args: tuple, kwargs: dict, should_stop: Callable[[], bool],
                 threads_apart: bool = False):
        super().__init__(SignalsClass=_WorkerSignals)
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._should_stop = should_stop
        self._threads_apart = threads_apart
        self.thread_done = threading.Event()
        # torch's intra-op thread count is per OS thread (OpenMP): a pool thread would
        # start at the machine default, not at the app's (e.g. the tests' one thread),
        # which is the most the job takes.
        self._torch_threads = _torch_threads()

    def work(self):
        try:
            if self._torch_threads:
                # the cores other processes leave free now, as the micro3d command does
                # (every core for work whose threads run apart, as micro3d sample)
                threads.use_threads(limit=self._torch_threads,
                                    load=not self._threads_apart)
            if inspect.isgeneratorfunction(self._fn):
                return self._drive(self._fn(*self._args, should_stop=self._should_stop,
                                            **self._kwargs))
            params = inspect.signature(self._fn).parameters
            extra = {k: v for k, v in (("report", self.yielded.emit),
                                       ("should_stop", self._should_stop)) if k in params}
            return self._fn(*self._args, **extra, **self._kwargs)
        finally:
            self.thread_done.set()

    def _drive(self, gen):
        try:
            while True:
                try:
                    item = next(gen)
                except StopIteration as stop:
                    return stop.value
                self.yielded.emit(item)
                if self._should_stop():
                    # A generator that does not poll should_stop itself stops at its next
                    # yield; the end is reported as a cancel (no result).
                    raise JobCancelled()
        finally:
            gen.close()


class JobCancelled(Exception):
    """The job was stopped at a yield because the user cancelled it."""


class Job(QObject):
    """One run of ``fn`` in a worker thread. Create, connect, :meth:`start`.

    Signals (all on the GUI thread): ``progress(fraction, text)``, ``yielded(item)``,
    ``succeeded(result)`` when ``fn`` returned (also after a cancel it honoured by
    returning, as the trainer does), ``cancelled()`` when it stopped by raising after a
    cancel, ``failed(exception)`` on any other exception (after the message box), and
    ``ended(status)`` last, always, with status ``"done" | "cancelled" | "failed"``.
    ``threads_apart``: ``fn``'s threads run apart (sampling), so it takes every core the
    app may use, whatever the load (:func:`~micro3d_gui.core.threads.decide_threads`).
    """

    progress = Signal(float, str)
    yielded = Signal(object)
    succeeded = Signal(object)
    cancelled = Signal()
    failed = Signal(object)
    ended = Signal(str)

    def __init__(self, fn: Callable, *args, name: str = "Job",
                 progress_of: ProgressOf | None = None, unit: str = "step",
                 error_parent: QWidget | None = None, show_errors: bool = True,
                 throttle_ms: int = THROTTLE_MS, threads_apart: bool = False,
                 parent: QObject | None = None, **kwargs):
        super().__init__(parent)
        self._emit_progress = throttled(self.progress.emit, throttle_ms, self)
        self.name = name
        self.unit = unit
        self.status: str | None = None  # set when ended
        self.result: Any = None
        self.error: BaseException | None = None
        self._progress_of = progress_of
        self._error_parent = error_parent
        self._show_errors = show_errors
        self._stop = threading.Event()
        self._detached = False
        self._started_at: float | None = None
        self._first: tuple[float, float] | None = None  # (time, done) at the first report
        # A job deleted with its panel while running stops at its next check.
        self.destroyed.connect(self._stop.set)
        self._worker = _Worker(fn, args, kwargs, self._stop.is_set, threads_apart)
        w = self._worker
        w.yielded.connect(self._on_yielded)
        w.returned.connect(self._on_returned)
        w.errored.connect(self._on_errored)
        w.finished.connect(self._on_finished)

    # -- control --------------------------------------------------------------------------
    def start(self) -> "Job":
        self._started_at = time.perf_counter()
        self._worker.start()
        return self

    def cancel(self) -> None:
        """Ask the function to stop (it polls ``should_stop``); returns at once."""
        self._stop.set()

    def detach(self) -> None:
        """Cancel, and from now on emit nothing and show no message: for a window that
        is closing, where a late result (a "use the new model?" question, an error box)
        would appear on an empty screen and keep the process alive."""
        self._detached = True
        self._stop.set()

    @property
    def cancel_requested(self) -> bool:
        return self._stop.is_set()

    def is_running(self) -> bool:
        """True from :meth:`start` until the worker thread is done (``ended`` follows)."""
        return (self._started_at is not None and self.status is None
                and not self._worker.thread_done.is_set())

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Block until the worker thread is done (for shutdown); True if it is."""
        if self._started_at is None:
            return True
        return self._worker.thread_done.wait(timeout_s)

    # -- worker signals (GUI thread) ------------------------------------------------------
    def _on_yielded(self, item) -> None:
        if self._detached:
            return
        self.yielded.emit(item)
        if self._progress_of is None:
            return
        p = self._progress_of(item)
        if p is not None:
            self._emit_progress(*self.progress_report(*p))

    def progress_report(self, done: float, total: float) -> tuple[float, str]:
        """Fraction and ``'done/total - rate unit/s - ETA m:ss'`` from the reports so far.

        The rate counts from the first report, so a resumed run or a slow first step
        (model set-up) does not distort the estimate.
        """
        now = time.perf_counter()
        if self._first is None:
            self._first = (now, done)
        t0, d0 = self._first
        rate = (done - d0) / (now - t0) if now > t0 and done > d0 else float("nan")
        eta = (total - done) / rate if rate and rate > 0 else float("nan")
        fraction = min(max(done / total, 0.0), 1.0) if total else 0.0
        rate_text = f"{rate:.2f} {self.unit}s/s" if math.isfinite(rate) else f"- {self.unit}s/s"
        text = f"{self.unit} {done:g}/{total:g} · {rate_text} · ETA {format_duration(eta)}"
        return fraction, text

    def _on_returned(self, result) -> None:
        self._emit_progress.flush()
        self.result = result
        self.status = "done"
        if not self._detached:
            self.succeeded.emit(result)

    def _on_errored(self, exc) -> None:
        self._emit_progress.cancel()
        if self._stop.is_set():
            self.status = "cancelled"
            if not self._detached:
                self.cancelled.emit()
            return
        self.status = "failed"
        self.error = exc
        log.debug("%s failed", self.name, exc_info=(type(exc), exc, exc.__traceback__))
        if self._show_errors:
            dialogs.show_error(self._error_parent, f"{self.name} failed", dialogs.error_text(exc))
        self.failed.emit(exc)

    def _on_finished(self) -> None:
        self._emit_progress.flush()
        if self.status is None:  # the worker swallowed the result (should not happen)
            self.status = "cancelled" if self._stop.is_set() else "done"
        if not self._detached:
            self.ended.emit(self.status)


class JobPanel(QWidget):
    """A panel that runs one :class:`Job` at a time (the Train and Generate panels).

    The panel has a ``progress_bar`` (range 0..1000) and a ``status_label``; this class
    draws the job's progress and end in them. Subclasses provide ``_on_done(result)`` and
    ``_sync()`` (enable or disable their buttons), and may override ``_progress_text`` and
    ``_job_ended(status)`` (their own clean-up). ``busy(bool)`` tells the main window a run
    started (True) or ended (False).
    """

    busy = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.job: Job | None = None

    def is_running(self) -> bool:
        return self.job is not None and self.job.is_running()

    def _launch(self, job: Job, on_yield: Callable[[Any], None]) -> bool:
        """Wire ``job`` to this panel's slots, start it and say so; always True."""
        job.yielded.connect(on_yield)
        job.progress.connect(self._on_progress)
        job.succeeded.connect(self._on_done)
        job.ended.connect(self._on_ended)
        self.job = job.start()
        self._sync()
        self.busy.emit(True)
        return True

    def _cancel(self, message: str) -> None:
        if self.is_running():
            self.job.cancel()
            self.status_label.setText(message)

    def _progress_text(self, text: str) -> str:
        return text

    def _on_progress(self, fraction: float, text: str) -> None:
        self.progress_bar.setValue(int(round(1000 * fraction)))
        self.status_label.setText(self._progress_text(text))

    def _job_ended(self, status: str) -> None:
        """Subclasses' clean-up when a run ended (before the buttons are synced)."""

    def _on_ended(self, status: str) -> None:
        self._job_ended(status)
        name = self.job.name if self.job is not None else "The run"
        if status == "cancelled":
            self.status_label.setText(f"{name} cancelled")
        elif status == "failed":
            self.status_label.setText(f"{name} failed; see the message")
        self._sync()
        self.busy.emit(False)

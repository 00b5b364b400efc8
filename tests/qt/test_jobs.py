"""Jobs: progress and ETA, cancel within about a second, errors as a message (no traceback)."""
import gc
import sys
import time

import pytest

from micro3d_gui.errors import ImageReadError
from micro3d_gui.qt.jobs import Job, format_duration


def counting(n, delay, *, should_stop):
    for i in range(1, n + 1):
        time.sleep(delay)
        yield i
    return "counted"


def endless(delay, *, should_stop):
    """Never polls should_stop: the job stops it at its next yield."""
    i = 0
    while True:
        time.sleep(delay)
        i += 1
        yield i


def polling(delay, *, should_stop):
    """Polls should_stop between short sleeps, as the sampler does between network calls."""
    i = 0
    while True:
        for _ in range(20):
            if should_stop():
                raise RuntimeError("stopped by request")
            time.sleep(delay / 20)
        i += 1
        yield i


def callback_style(steps, *, report, should_stop):
    """Like Trainer.train: report each step, stop (and return normally) when asked."""
    done = 0
    for done in range(1, steps + 1):
        time.sleep(0.02)
        report(done)
        if should_stop():
            break
    return {"finished": done == steps, "step": done}


def failing(message, *, should_stop):
    yield 1
    raise ImageReadError(message)


def broken(*, should_stop):
    yield 1
    raise KeyError("num_phases")


def run(qtbot, job, timeout=10_000):
    with qtbot.waitSignal(job.ended, timeout=timeout) as blocker:
        job.start()
    return blocker.args[0]


def test_generator_job_reports_progress_eta_and_result(qtbot, boxes):
    job = Job(counting, 5, 0.02, name="Count", progress_of=lambda i: (i, 5), throttle_ms=0)
    items, progress = [], []
    job.yielded.connect(items.append)
    job.progress.connect(lambda f, t: progress.append((f, t)))
    results = []
    job.succeeded.connect(results.append)
    assert run(qtbot, job) == "done"
    assert items == [1, 2, 3, 4, 5]
    assert [f for f, _ in progress] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert progress[0][1].startswith("step 1/5")
    assert "ETA" in progress[2][1] and "steps/s" in progress[2][1]
    assert "ETA 0:00" in progress[-1][1]
    assert results == ["counted"] and job.result == "counted"
    assert not job.is_running() and job.wait(0.1)
    assert boxes.errors == []


def test_progress_is_throttled_and_the_last_one_arrives(qtbot, boxes):
    # 40 reports in about 0.2 s against a 150 ms throttle: a few progress signals, the
    # first at once and the final 40/40 before the job says it ended.
    job = Job(counting, 40, 0.005, name="Count", progress_of=lambda i: (i, 40),
              throttle_ms=150)
    progress, order = [], []
    job.progress.connect(lambda f, t: progress.append(f))
    job.ended.connect(lambda status: order.append(len(progress)))
    assert run(qtbot, job) == "done"
    assert 2 <= len(progress) <= 10
    assert progress[0] == pytest.approx(1 / 40) and progress[-1] == pytest.approx(1.0)
    assert order == [len(progress)]  # nothing arrives after ended


def test_eta_from_the_rate_since_the_first_report(qtbot):
    job = Job(counting, 1, 0.0)
    job._first = (time.perf_counter() - 10.0, 100.0)  # 100 steps done 10 s ago
    fraction, text = job.progress_report(200, 1000)  # 10 steps/s, 800 to go
    assert fraction == pytest.approx(0.2)
    assert "10.00 steps/s" in text and "ETA 1:20" in text


@pytest.mark.parametrize("fn", [endless, polling])
def test_cancel_stops_within_a_second(qtbot, boxes, fn):
    job = Job(fn, 0.05, name="Loop")
    items = []
    job.yielded.connect(items.append)
    job.start()
    qtbot.waitUntil(lambda: len(items) >= 2, timeout=5000)
    with qtbot.waitSignal(job.ended, timeout=5000) as blocker:
        t0 = time.perf_counter()
        job.cancel()
    assert time.perf_counter() - t0 < 1.0
    assert blocker.args == ["cancelled"]
    assert job.wait(1.0)  # the worker thread is done, not just the signal
    assert boxes.errors == []  # a cancel is not an error


def test_callback_job_cancel_returns_its_partial_result(qtbot, boxes):
    job = Job(callback_style, 10_000, name="Steps", progress_of=lambda i: (i, 10_000))
    seen = []
    job.yielded.connect(seen.append)
    job.start()
    qtbot.waitUntil(lambda: len(seen) >= 3, timeout=5000)
    t0 = time.perf_counter()
    with qtbot.waitSignal(job.ended, timeout=5000) as blocker:
        job.cancel()
    assert time.perf_counter() - t0 < 1.0
    assert blocker.args == ["done"]
    assert job.result["finished"] is False and 3 <= job.result["step"] < 10_000


def test_plain_function_job(qtbot):
    job = Job(sum, [1, 2, 3])
    assert run(qtbot, job) == "done"
    assert job.result == 6


def test_input_error_shows_its_message(qtbot, boxes):
    job = Job(failing, "/data/xy/bad.png: not an image; remove it", name="Training")
    failures = []
    job.failed.connect(failures.append)
    assert run(qtbot, job) == "failed"
    assert boxes.errors == [("Training failed", "/data/xy/bad.png: not an image; remove it")]
    assert isinstance(failures[0], ImageReadError)


def test_other_errors_show_type_and_message_without_traceback(qtbot, boxes):
    job = Job(broken, name="Generation")
    assert run(qtbot, job) == "failed"
    (title, text), = boxes.errors
    assert title == "Generation failed"
    assert text == "KeyError: 'num_phases'"
    assert "Traceback" not in text


def test_format_duration():
    assert format_duration(0) == "0:00"
    assert format_duration(75.4) == "1:15"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(float("nan")) == "?"
    assert format_duration(float("inf")) == "?"


def torch_threads_of_the_job(*, should_stop):
    import torch

    yield torch.get_num_threads()


def test_a_job_takes_the_threads_the_command_would(qtbot, monkeypatch, torch_threads):
    """The app's jobs call the one thread rule the ``micro3d`` command calls
    (tests/core/test_threads.py), at most the app's own count, and run with its answer."""
    from micro3d_gui.core import threads

    calls = []
    real_use = threads.use_threads

    def recording(requested=None, **kw):
        calls.append((requested, kw, real_use(requested, **kw)))
        return calls[-1][2]

    monkeypatch.setattr(threads, "use_threads", recording)
    torch_threads(2)  # the app's count (the tests' session holds 1)
    seen = []
    for apart in (False, True):  # e.g. training; sampling (the Generate panel's job)
        job = Job(torch_threads_of_the_job, name="Threads", threads_apart=apart)
        job.yielded.connect(seen.append)
        assert run(qtbot, job) == "done"
    assert [(r, kw) for r, kw, _ in calls] == [(None, {"limit": 2, "load": True}),
                                                (None, {"limit": 2, "load": False})]
    assert seen == [c[2] for c in calls] and 1 <= seen[0] <= 2
    # threads that run apart take every core the app may use, whatever the load
    assert seen[1] == min(2, threads.usable_cores())


def test_a_long_job_keeps_pythons_reference_counts(qtbot):
    """Every report crosses threads as a Qt signal. PySide6 6.12.0 drops a reference to
    ``True`` at every emit; under Python 3.11 (where True is not immortal) a long session
    then aborts ("deallocating True or False") or crashes, so pyproject.toml excludes it.
    This job's 300 reports and their progress signals must leave the counts as they were."""
    def counts():
        gc.collect()
        return sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None)

    def reporting(steps, *, report):
        for i in range(1, steps + 1):
            report(i)
        return steps

    job = Job(reporting, 300, name="Count", progress_of=lambda i: (i, 300), throttle_ms=0)
    job.yielded.connect(lambda item: None)
    before = counts()
    assert run(qtbot, job, timeout=60_000) == "done"
    qtbot.wait(50)  # the queued ends are delivered
    after = counts()
    lost = [b - a for b, a in zip(before, after)]
    assert max(lost) < 30, f"references lost to True, False, None: {lost}"

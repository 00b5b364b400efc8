"""The thread rule, on given load numbers, and the micro3d command applying it."""
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from micro3d_gui.cli import main
from micro3d_gui.core import threads
from micro3d_gui.core.threads import choose_threads, decide_threads, environment_limit
from micro3d_gui.paths import demo_model


@pytest.mark.parametrize("cores, busy, processes, limit, expected", [
    (2, 0.0, 1, None, 2),    # idle: every core
    (2, 0.4, 1, None, 2),    # a browser's flicker leaves the core
    (2, 1.0, 1, None, 1),    # one busy single-thread neighbour takes its core
    (2, 0.6, 1, None, 1),    # from half a core's use on, the core counts as busy
    (2, 7.5, 1, None, 1),    # overloaded: one thread, never none
    (16, 3.2, 1, None, 13),
    (16, 3.2, 2, None, 6),   # the free cores shared among the processes of a run
    (8, 0.0, 3, None, 2),
    (8, 0.0, 1, 3, 3),       # OMP_NUM_THREADS / the app's own count is the most
    (8, 6.0, 1, 4, 2),
])
def test_threads_are_the_free_cores(cores, busy, processes, limit, expected):
    assert choose_threads(cores, busy, processes, limit) == expected


def test_the_environment_and_the_request_win():
    assert environment_limit({"OMP_NUM_THREADS": "3"}) == 3
    assert environment_limit({}) is None
    assert environment_limit({"OMP_NUM_THREADS": "lots"}) is None
    assert environment_limit({"OMP_NUM_THREADS": "0"}) is None
    assert decide_threads(5) == 5  # --threads N, whatever the load
    assert decide_threads(limit=1) == 1
    assert 1 <= decide_threads() <= threads.usable_cores()
    assert threads.busy_cores(0.05) >= 0.0


def test_the_command_sets_its_threads_and_gives_them_back(tmp_path, monkeypatch):
    """``micro3d evaluate`` (any computing command) calls the rule the app's jobs call
    (tests/qt/test_jobs.py) and runs with its answer; ``--threads`` wins."""
    calls, seen = [], []
    real_use = threads.use_threads

    def recording(requested=None, **kw):
        calls.append((requested, kw, real_use(requested, **kw)))
        return calls[-1][2]

    monkeypatch.setattr(threads, "use_threads", recording)
    import micro3d_gui.cli as cli

    real_evaluate = cli.COMMANDS["evaluate"]
    monkeypatch.setitem(cli.COMMANDS, "evaluate",
                        lambda args: seen.append(torch.get_num_threads()) or real_evaluate(args))
    vol = tmp_path / "v.npy"
    np.save(vol, (np.arange(8 * 8 * 8).reshape(8, 8, 8) % 3 == 0).astype(np.uint8))
    before = torch.get_num_threads()
    for extra in ([], ["--threads", "1"], ["--threads", "2"]):
        assert main(["evaluate", str(vol), "--json", str(tmp_path / "r.json"), *extra]) == 0
        assert torch.get_num_threads() == before
    assert [c[0] for c in calls] == [None, 1, 2]
    assert seen == [c[2] for c in calls] and seen[1:] == [1, 2]


def test_work_whose_threads_run_apart_takes_every_core_beside_a_busy_neighbour():
    # on a 2-core machine the rule gives the busy core up; sampling's threads keep it
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert decide_threads(load=False, limit=2) == min(2, threads.usable_cores())
        assert decide_threads(load=False, limit=1) == 1
        assert decide_threads(1, load=False) == 1  # --threads still wins
    finally:
        neighbour.kill()
        neighbour.wait()


def test_sample_takes_every_core_and_the_other_commands_the_free_ones(tmp_path, monkeypatch):
    calls = []
    real_use = threads.use_threads

    def recording(requested=None, **kw):
        calls.append(kw["load"])
        return real_use(requested, **kw)

    monkeypatch.setattr(threads, "use_threads", recording)
    assert main(["sample", str(demo_model("fibres")), "--shape", "8", "16", "16", "--out",
                 str(tmp_path / "v.npy"), "--sampling-steps", "2", "--harmonize", "0",
                 "--no-check", "--device", "cpu"]) == 0
    assert main(["evaluate", str(tmp_path / "v.npy"), "--json",
                 str(tmp_path / "r.json")]) == 0
    assert calls == [False, True]

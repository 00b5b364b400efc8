"""A network call's slices shared among threads of one OpenMP thread each
(core/slice_workers.py)."""
import logging
import threading

import numpy as np
import pytest
import torch

from micro3d_gui.cli import main
from micro3d_gui.core.checkpoint import load_checkpoint, model_from_checkpoint
from micro3d_gui.core.slice_workers import SliceWorkers, cpu_workers
from micro3d_gui.paths import demo_model


@pytest.fixture
def two_threads(torch_threads):
    torch_threads(2)


def recording(seen: list):
    """A stand-in network that notes, per call, the torch threads, the inference mode and
    the thread it ran in, and its rows."""
    def network(x, t, c, means=None):
        seen.append((torch.get_num_threads(), torch.is_inference_mode_enabled(),
                     threading.get_ident(), x.shape[0]))
        return x
    return network


def test_each_worker_runs_one_thread_and_the_caller_keeps_its_count(two_threads):
    seen = []
    network = recording(seen)
    x = torch.zeros(5, 1, 4, 4)
    t = torch.zeros(5, dtype=torch.long)
    with SliceWorkers(2) as workers, torch.inference_mode():
        workers.split(network)(x, t, t)
    assert torch.get_num_threads() == 2
    # two parts (3 and 2 rows), each in a worker of one thread, the caller's mode kept
    assert sorted(rows for *_, rows in seen) == [2, 3]
    assert {(n, inference) for n, inference, _, _ in seen} == {(1, True)}
    idents = {ident for _, _, ident, _ in seen}
    assert len(idents) == 2 and threading.get_ident() not in idents


def test_a_call_of_fewer_rows_than_workers_and_one_worker_run_in_the_caller(two_threads):
    seen = []
    network = recording(seen)
    t = torch.zeros(1, dtype=torch.long)
    with SliceWorkers(2) as workers:
        workers.split(network)(torch.zeros(1, 1, 4, 4), t, t)
    with SliceWorkers(1) as one:
        assert one.split(network) is network
    assert seen == [(2, False, threading.get_ident(), 1)]


def test_the_rows_come_back_in_order_with_every_argument_split_alike(two_threads):
    def network(x, t, c, means=None, x0_self=None):
        assert x0_self is None  # None passes to every part as is
        return x + t[:, None, None, None] + 10 * c[:, None, None, None] + means[:, :, None,
                                                                                 None]

    x = torch.randn(7, 2, 3, 3)
    t, c = torch.arange(7), torch.arange(7) % 3
    means = torch.randn(7, 2)
    with SliceWorkers(3) as workers:
        got = workers.split(network)(x, t, c, means=means, x0_self=None)
    torch.testing.assert_close(got, network(x, t, c, means), rtol=0, atol=0)


def test_the_real_network_split_gives_the_whole_call(two_threads):
    ckpt = load_checkpoint(demo_model("fibres"))
    model = model_from_checkpoint(ckpt, "cpu")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 32, 32, generator=g)
    t = torch.full((6,), 400)
    c = torch.tensor([0, 1, 2, 0, 1, 2])
    means = torch.rand(6, 1, generator=g) * 2 - 1
    with torch.inference_mode(), SliceWorkers(2) as workers:
        whole = model(x, t, c, means)
        split = workers.split(model)(x, t, c, means)
    # slices are independent (group norm per slice): equal up to float summation order
    torch.testing.assert_close(split, whole, rtol=1e-4, atol=1e-5)


def test_workers_follow_the_callers_threads_on_a_cpu_only(two_threads):
    assert cpu_workers("cpu") == 2
    assert cpu_workers("cuda") == 1
    torch.set_num_threads(1)
    assert cpu_workers("cpu") == 1


def test_sampling_on_two_threads_gives_the_one_thread_volume(tmp_path, caplog):
    def sample(out, threads):
        return main(["sample", str(demo_model("fibres")), "--shape", "16", "16", "16", "--out",
                     str(out), "--sampling-steps", "3", "--harmonize", "1", "--seed", "3",
                     "--no-check", "--device", "cpu", "--threads", str(threads)])

    with caplog.at_level(logging.INFO, logger="micro3d_gui.core.pipeline"):
        assert sample(tmp_path / "one.npy", 1) == 0
        assert "1 worker thread(s)" in caplog.text
        caplog.clear()
        assert sample(tmp_path / "two.npy", 2) == 0
        assert "2 worker thread(s)" in caplog.text
    one, two = np.load(tmp_path / "one.npy"), np.load(tmp_path / "two.npy")
    # the same draws and network answers, up to float noise of other batch sizes
    assert one.shape == two.shape == (16, 16, 16)
    assert (one == two).mean() > 0.99

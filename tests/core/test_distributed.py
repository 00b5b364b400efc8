"""Data-parallel training and sampling: torchrun + DDP on CPU (gloo), two processes against one."""
import multiprocessing as mp
import os
import socket

import numpy as np
import torch

from micro3d_gui.cli import main
from micro3d_gui.core.distributed import SINGLE, from_environment


def train(dirs, out, steps, *extra):
    return main(["train", "--xy", str(dirs["xy"]), "--xz", str(dirs["xz"]), "--yz",
                 str(dirs["yz"]), "--out", str(out), "--preset", "tiny", "--crop", "16",
                 "--batch", "4", "--steps", str(steps), "--device", "cpu", *extra])


def test_two_processes_train_as_one_with_the_whole_batch_and_resume_on_one(lamella_dirs,
                                                                           tmp_path):
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    assert train(lamella_dirs, one, 4) == 0
    # two gloo processes, 2 crops each of the same 4 draws: torchrun started by --nproc
    assert train(lamella_dirs, two, 2, "--nproc", "2") == 0
    ckpt = torch.load(two, weights_only=True)
    assert ckpt["step"] == 2 and not any(k.startswith("module.") for k in ckpt["model"])
    reference = torch.load(one, weights_only=True)
    np.testing.assert_allclose(ckpt["losses"].numpy(), reference["losses"][:2].numpy(),
                               rtol=1e-4)
    # the two-process checkpoint continues on one process as if it had never been split
    assert train(lamella_dirs, two, 4, "--resume", str(two)) == 0
    resumed = torch.load(two, weights_only=True)
    np.testing.assert_allclose(resumed["losses"].numpy(), reference["losses"].numpy(),
                               rtol=1e-4)
    # weights agree to float noise; Adam scales the noise of a near-zero gradient up to
    # about lr (1e-3) per step in the zero-initialised output layers, hence the atol
    for key, value in reference["ema"].items():
        torch.testing.assert_close(resumed["ema"][key], value, rtol=1e-3, atol=1e-3)
    # and it samples on one process
    assert main(["sample", str(two), "--shape", "8", "16", "16", "--out",
                 str(tmp_path / "v.tif"), "--sampling-steps", "2", "--harmonize", "0",
                 "--device", "cpu"]) == 0
    assert (tmp_path / "v.tif").is_file()


def test_a_self_conditioned_network_trains_on_two_processes_as_on_one(lamella_dirs,
                                                                      tmp_path):
    # which items get their own first estimate is drawn for the global batch, as the
    # crops are, so the ranks' shares add up to the one-process step
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    assert train(lamella_dirs, one, 2, "--no-fidelity", "--self-condition") == 0
    assert train(lamella_dirs, two, 2, "--no-fidelity", "--self-condition", "--nproc",
                 "2") == 0
    np.testing.assert_allclose(torch.load(two, weights_only=True)["losses"].numpy(),
                               torch.load(one, weights_only=True)["losses"].numpy(),
                               rtol=1e-4)


def test_two_processes_sample_the_one_process_volume(lamella_dirs, tmp_path):
    model = tmp_path / "m.pt"
    # self-conditioned: each rank also hands its share of the slices' earlier estimate on
    assert train(lamella_dirs, model, 2, "--no-fidelity", "--self-condition") == 0

    def sample(out, *extra):
        # 7 xy slices: shares of 4 and 3, so the short share and the padded gather count;
        # 160 xz slices of 7 x 16 (410 k pixels in one call): each rank times the slices
        # per call, and the ranks must agree on one number, as they meet at every call
        return main(["sample", str(model), "--shape", "7", "160", "16", "--out", str(out),
                     "--sampling-steps", "3", "--harmonize", "1", "--seed", "5",
                     "--no-check", "--device", "cpu", *extra])

    assert sample(tmp_path / "one.npy") == 0
    # two gloo processes under torchrun, started by --nproc; rank 0 alone writes
    assert sample(tmp_path / "two.npy", "--nproc", "2") == 0
    one, two = np.load(tmp_path / "one.npy"), np.load(tmp_path / "two.npy")
    assert one.shape == two.shape == (7, 160, 16)
    # the same draws and the same network answers, up to float noise of other batch sizes
    assert (one == two).mean() > 0.99
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".npy") == ["one.npy",
                                                                                 "two.npy"]


def _smallest(rank: int, port: int, out) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2")
    ctx = from_environment(torch.device("cpu"))
    out.put((rank, ctx.smallest((8, 4)[rank])))
    ctx.close()


def test_ranks_agree_on_the_smallest_of_their_choices():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spawn = mp.get_context("spawn")
    out = spawn.Queue()
    procs = [spawn.Process(target=_smallest, args=(r, port, out)) for r in range(2)]
    for p in procs:
        p.start()
    got = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert got == {0: 4, 1: 4}
    assert SINGLE.smallest(7) == 7

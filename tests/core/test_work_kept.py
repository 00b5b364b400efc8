"""Nothing a user's system does to a run loses its work: SIGTERM and SIGHUP stop training as
Ctrl-C does (saved, resumable to the same weights), and a disk that fills up during
``train``, ``sample`` or ``evaluate`` (a real, small file system) ends with the work saved
beside the inputs, as the README says."""
import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from micro3d_gui.cli import main
from micro3d_gui.io.volume import read_volume
from micro3d_gui.paths import demo_model
from micro3d_gui.preprocess.synthetic import lamellae

STEPS = 24  # tiny steps: enough that a signal sent at the first progress line lands mid-run


def train_args(dirs, out, *extra):
    return ["train", "--xy", str(dirs["xy"]), "--xz", str(dirs["xz"]), "--yz", str(dirs["yz"]),
            "--out", str(out), "--preset", "tiny", "--crop", "16", "--batch", "2",
            "--steps", str(STEPS), "--device", "cpu", "--no-fidelity", "--threads", "1",
            *extra]  # one thread everywhere: float sums in one order, so weights compare equal


def run_until_progress(argv, signum, marker: str):
    """Start ``micro3d argv`` in its own process, send ``signum`` once its stderr shows a
    line starting with ``marker``; -> (exit code, stdout, stderr)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "micro3d_gui.cli", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = []
    for line in proc.stderr:
        err.append(line)
        if line.startswith(marker):
            proc.send_signal(signum)
            break
    out, rest = proc.communicate(timeout=300)
    return proc.returncode, out, "".join(err) + rest


def weights(path):
    ckpt = torch.load(path, weights_only=True)
    return ckpt["step"], ckpt["model"], ckpt["ema"], ckpt["losses"]


def test_stop_signals_become_a_request_and_ignored_ones_stay_ignored():
    from micro3d_gui.interrupt import stop_on_signals

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with stop_on_signals() as stop:
            signal.raise_signal(signal.SIGHUP)
            assert not stop()
            signal.raise_signal(signal.SIGTERM)
            assert stop() and stop.name == "SIGTERM" and stop.exit_code == 143
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_sigterm_stops_training_saved_and_it_resumes_to_the_uninterrupted_weights(
        lamella_dirs, tmp_path, capsys):
    killed = tmp_path / "killed.pt"
    rc, out, err = run_until_progress(train_args(lamella_dirs, killed), signal.SIGTERM,
                                      "step ")
    assert rc == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    step = torch.load(killed, weights_only=True)["step"]
    assert 1 <= step < STEPS
    assert (f"stopped at step {step} by SIGTERM; model saved to {killed}; continue with "
            f"--resume {killed}") in out

    assert main(train_args(lamella_dirs, killed, "--resume", str(killed))) == 0
    straight = tmp_path / "straight.pt"
    assert main(train_args(lamella_dirs, straight)) == 0
    (s1, model1, ema1, losses1), (s2, model2, ema2, losses2) = weights(killed), weights(straight)
    assert s1 == s2 == STEPS
    for name, value in model2.items():
        assert torch.equal(model1[name], value), name
    for name, value in ema2.items():
        assert torch.equal(ema1[name], value), name
    assert torch.equal(losses1, losses2)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a pseudo-terminal")
def test_a_closed_terminal_stops_training_saved(lamella_dirs, tmp_path):
    # an ssh session closed under a run: SIGHUP, and the terminal gone (writing to it fails)
    import fcntl
    import pty
    import re
    import struct
    import termios

    model = tmp_path / "m.pt"
    argv = [sys.executable, "-m", "micro3d_gui.cli", *train_args(lamella_dirs, model)]
    pid, terminal = pty.fork()
    if pid == 0:  # the run, in a terminal wide enough for its progress bar
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        # a login session's default, whatever the test runner inherited (nohup's ignored
        # SIGHUP, which the run rightly keeps ignored, would survive exec)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        os.execve(sys.executable, argv, dict(os.environ, OMP_NUM_THREADS="1"))
    seen = b""
    while not re.search(rb" [1-9]\d*/%d " % STEPS, seen):  # the bar past its first step
        seen += os.read(terminal, 4096)
    os.close(terminal)  # the terminal goes away: the kernel sends the run SIGHUP
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGHUP, seen.decode()
    assert 1 <= torch.load(model, weights_only=True)["step"] < STEPS


def test_sigterm_to_a_multi_process_run_reaches_its_processes(lamella_dirs, tmp_path):
    # `micro3d train --nproc 2` runs torchrun: a kill of micro3d is passed on, and every
    # process stops at the same step, the model saved by rank 0
    model = tmp_path / "m.pt"
    argv = train_args(lamella_dirs, model, "--nproc", "2")
    argv[argv.index("--batch") + 1] = "4"
    rc, out, err = run_until_progress(argv, signal.SIGTERM, "step ")
    assert rc == 128 + signal.SIGTERM, err
    step = torch.load(model, weights_only=True)["step"]
    assert 1 <= step < STEPS and f"stopped at step {step} by SIGTERM" in out


def test_sigterm_cancels_sampling_and_keeps_the_earlier_volume(tmp_path):
    out = tmp_path / "v.tif"
    out.write_bytes(b"an earlier volume")
    rc, _, err = run_until_progress(
        ["sample", str(demo_model("fibres")), "--shape", "16", "16", "16", "--sampling-steps",
         "200", "--harmonize", "0", "--device", "cpu", "--out", str(out)], signal.SIGTERM,
        "call ")
    assert rc == 128 + signal.SIGTERM, err
    assert "sampling cancelled by SIGTERM; nothing written" in err and "Traceback" not in err
    assert out.read_bytes() == b"an earlier volume"
    assert not list(tmp_path.glob(".*part"))


# -- a disk that fills up ---------------------------------------------------------------------

@pytest.fixture
def full_disk(tmp_path):
    """A small tmpfs mounted for the test and filled to its last byte (an earlier output,
    ``old.bin``, then a filler): every write to it fails with ENOSPC. Needs root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                         capture_output=True, text=True)
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs: {res.stderr.strip()}")
    try:
        (mount / "old.bin").write_bytes(b"an earlier output")
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        assert os.statvfs(mount).f_bavail == 0
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def rescued_path(err: str, target: Path) -> Path:
    """The one error line says the write failed, why, and where the work went instead."""
    (line,) = [l for l in err.splitlines() if l.startswith("micro3d: error:")]
    assert f"{target}: could not be written (No space left on device); free some disk " \
           "space" in line, line
    assert "nothing is lost: saved to " in line, line
    return Path(line.split("saved to ")[1].split(" instead")[0].split(", ")[0])


def test_train_on_a_full_disk_saves_the_model_beside_the_micrographs(
        full_disk, lamella_dirs, capsys):
    out = full_disk / "old.bin"  # an earlier model there stays as it was
    argv = train_args(lamella_dirs, out)
    argv[argv.index("--steps") + 1] = "2"
    assert main(argv) == 2
    rescued = rescued_path(capsys.readouterr().err, out)
    assert rescued.parent == lamella_dirs["xy"].parent
    assert torch.load(rescued, weights_only=True)["step"] == 2
    assert out.read_bytes() == b"an earlier output"
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler", "old.bin"]


@pytest.mark.parametrize("suffix", [".tif", ".vti"])  # VTK only logs its failures
def test_sample_on_a_full_disk_saves_the_volumes_beside_the_model(full_disk, tmp_path,
                                                                  capsys, suffix):
    model = tmp_path / "models" / "m.pt"
    model.parent.mkdir()
    model.write_bytes(demo_model("fibres").read_bytes())
    out = full_disk / f"v{suffix}"
    assert main(["sample", str(model), "--shape", "8", "8", "8", "--sampling-steps", "2",
                 "--harmonize", "0", "--seed", "0", "--device", "cpu", "--count", "2",
                 "--out", str(out), "--no-check"]) == 2
    err = capsys.readouterr().err
    first = rescued_path(err, full_disk / f"v_000{suffix}")
    assert first.parent == model.parent
    for name in ("v_000", "v_001"):  # both volumes, as the one error line lists them
        path = model.parent / f"{name}-rescued-{os.getpid()}{suffix}"
        assert str(path) in err and read_volume(path).shape == (8, 8, 8)
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler", "old.bin"]


def test_evaluate_on_a_full_disk_saves_the_report_beside_the_volume(full_disk, tmp_path,
                                                                   capsys):
    volume = tmp_path / "vols" / "v.npy"
    volume.parent.mkdir()
    np.save(volume, lamellae((8, 8, 8), axis=2, seed=0))
    report, table = full_disk / "r.json", full_disk / "r.csv"
    assert main(["evaluate", str(volume), "--json", str(report), "--csv", str(table)]) == 2
    err = capsys.readouterr().err
    rescued = rescued_path(err, report)
    assert rescued.parent == volume.parent
    assert json.loads(rescued.read_text())["inputs"]["volumes"] == [str(volume)]
    assert (volume.parent / f"r-rescued-{os.getpid()}.csv").read_text().startswith("key,")
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler", "old.bin"]

"""Sampling beside a busy neighbour: ``micro3d sample`` of one cube, idle and beside one
busy single-thread process, with the thread rule (core/threads.py: sampling takes every
core) and with only the cores the neighbour leaves free (the rule of the other commands).

    python benchmarks/load.py [--size 64] [--sampling-steps S] [--check]

Each run is the real command in its own process (the bundled fibres model, the default
recipe unless --sampling-steps is given; --no-check unless --check, which keeps the
command's self-check and the second pass it may start, as a user's run has them). The
neighbour is a Python loop that holds one core. "threads" is what the rule picks at that
moment (the command decides the same way a moment later; the free cores are given to it
as ``--threads``). Prints a Markdown table for docs/benchmarks.md; the load average
before each run is printed, as other work on a shared machine skews every figure.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSY = "while True: pass"


def sample(model: str, size: int, out: Path, extra: list[str]) -> float:
    """Seconds of one ``micro3d sample`` run (the whole command, start-up included)."""
    command = [sys.executable, "-m", "micro3d_gui.cli", "sample", model, "--shape",
               str(size), str(size), str(size), "--out", str(out), "--seed", "0",
               "--device", "cpu", *extra]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--sampling-steps", type=int, default=None)
    parser.add_argument("--check", action="store_true",
                        help="keep the self-check and its second pass")
    args = parser.parse_args()
    os.environ.pop("OMP_NUM_THREADS", None)  # the rule decides, here and in the runs
    sys.path.insert(0, str(ROOT))
    from micro3d_gui.core.threads import decide_threads, usable_cores
    from micro3d_gui.paths import demo_model

    model = str(demo_model("fibres"))
    extra = ([] if args.sampling_steps is None else ["--sampling-steps",
                                                     str(args.sampling_steps)])
    extra += [] if args.check else ["--no-check"]
    cores = usable_cores()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "v.npy"
        for label, busy, free in (("idle", False, False), ("beside 1 busy", True, False),
                                  ("beside 1 busy, the free cores only", True, True)):
            neighbour = (subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None)
            try:
                time.sleep(1.0 if busy else 0.0)  # the neighbour on its core first
                load = os.getloadavg()[0]
                chosen = decide_threads(load=free)
                seconds = sample(model, args.size, out,
                                 extra + (["--threads", str(chosen)] if free else []))
            finally:
                if neighbour is not None:
                    neighbour.kill()
                    neighbour.wait()
            rows.append((label, chosen, load, seconds))
            print(f"{label}: {chosen} threads, load {load:.1f}, {seconds:.1f} s",
                  file=sys.stderr, flush=True)
    idle = rows[0][3]
    print(f"\n{args.size}^3, {cores} cores, steps {args.sampling_steps or 'recipe'}, "
          f"{'with' if args.check else 'without'} the self-check\n")
    print("| run | threads | load avg before | s | x idle |")
    print("|---|---|---|---|---|")
    for label, chosen, load, seconds in rows:
        print(f"| {label} | {chosen} | {load:.1f} | {seconds:.1f} | {seconds / idle:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

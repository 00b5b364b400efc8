"""Training speed in the app against ``micro3d train``: the same micrographs, recipe and steps.

    xvfb-run -a python benchmarks/app_training.py [--material fibres] [--steps 60]

The app: a real MainWindow, shown, with the demo micrographs loaded in its Data panel; the
Train panel's job runs in its worker thread while the GUI thread draws the loss plot, as a
user sees it (the app's own set-up: ``OMP_WAIT_POLICY=PASSIVE`` before torch loads). The
CLI: ``micro3d train`` in a subprocess. Both train the default recipe's network (preset
``auto``, its batch and crop) for ``--steps`` steps from seed 0; the rate is steps over the
checkpoint's ``train_seconds`` (training only: start-up and data loading excluded), so the
two are compared step for step. Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as micro3d_gui.gui.main, before torch

from machine import describe  # noqa: E402

from micro3d_gui.core.checkpoint import load_checkpoint  # noqa: E402
from micro3d_gui.paths import demo_dir  # noqa: E402

PLANES = ("xy", "xz", "yz")


def rate(path: Path) -> tuple[int, float]:
    ckpt = load_checkpoint(path)
    return int(ckpt["step"]), int(ckpt["step"]) / float(ckpt["train_seconds"])


def train_in_app(folder: Path, steps: int, out: Path, timeout_s: float) -> float:
    """Wall seconds of a Train panel run of ``steps`` steps in a real, shown MainWindow."""
    from dataclasses import replace

    from PySide6.QtCore import QEventLoop, QTimer

    from micro3d_gui.qt import dialogs
    from micro3d_gui.qt.app import create_app
    from micro3d_gui.qt.main_window import MainWindow

    app = create_app([])
    # After training the app asks whether Generate should use the new model: answer no,
    # so no modal box waits for a person.
    dialogs.ask = lambda *args, **kwargs: False
    window = MainWindow()
    window.resize(1280, 800)
    window.show()
    for plane in PLANES:
        window.data_panel.add_paths(plane, [folder / plane])
    panel = window.train_panel
    panel.set_settings(replace(panel.settings(), steps=steps, model_path=str(out), seed=0,
                               device="cpu"))
    loop = QEventLoop()
    panel.model_saved.connect(lambda _path: loop.quit())
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    start = time.perf_counter()
    if not panel.start():
        raise SystemExit("the Train panel refused to start")
    loop.exec()
    wall = time.perf_counter() - start
    while panel.is_running():
        app.processEvents()
    window.close()
    return wall


def train_in_cli(folder: Path, steps: int, out: Path) -> float:
    args = [sys.executable, "-m", "micro3d_gui.cli", "train",
            *[a for p in PLANES for a in (f"--{p}", str(folder / p))],
            "--out", str(out), "--steps", str(steps), "--seed", "0", "--device", "cpu"]
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--material", default="fibres")
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args(argv)
    folder = demo_dir(args.material)
    print(describe("cpu"), "\n")
    with tempfile.TemporaryDirectory() as tmp:
        cli_out, app_out = Path(tmp) / "cli.pt", Path(tmp) / "app.pt"
        cli_wall = train_in_cli(folder, args.steps, cli_out)
        app_wall = train_in_app(folder, args.steps, app_out, timeout_s=60 * 60)
        rows = [("micro3d train (subprocess)", cli_out, cli_wall),
                ("app: Train panel, window shown", app_out, app_wall)]
        print(f"{args.material} micrographs, {args.steps} steps of the default recipe\n")
        print("| run | steps | steps/s (training) | wall s (with start-up) |")
        print("|---|---|---|---|")
        for name, path, wall in rows:
            n, r = rate(path)
            print(f"| {name} | {n} | {r:.2f} | {wall:.0f} |")
        print(f"\napp / CLI steps/s: {rate(app_out)[1] / rate(cli_out)[1]:.2f}")


if __name__ == "__main__":
    main()

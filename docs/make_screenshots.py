"""Screenshot of the main window after a small real run: ``docs/screenshot_main.png``.

Synthetic lamellar micrographs -> Data panel -> a tiny model trained for 1500 steps
-> two 32^3 volumes sampled -> analysed; then the window is grabbed (``QWidget.grab``, which
includes the VTK view). Takes a few minutes on a CPU. Run it under a display or Xvfb:

    xvfb-run -a python docs/make_screenshots.py [OUT_DIR]

Settings go to a temporary folder, so the user's Micro3D settings are not touched.
"""
from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QSettings

from micro3d_gui.core.synthetic import lamellae, plane_images
from micro3d_gui.qt.app import create_app
from micro3d_gui.qt.train_panel import TrainSettings


def wait_until(app, condition, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the run took too long")
        app.processEvents()
        time.sleep(0.02)


def main(out_dir: Path) -> Path:
    work = Path(tempfile.mkdtemp(prefix="micro3d-shot-"))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work))
    app = create_app([sys.argv[0]])
    from micro3d_gui.qt.main_window import MainWindow

    truth = lamellae((48, 48, 48), axis=2, mean_thickness=4, seed=1)
    for plane, ims in plane_images(truth, step=3).items():
        folder = work / "micrographs" / plane
        folder.mkdir(parents=True)
        for i, im in enumerate(ims):
            Image.fromarray((im * 255).astype(np.uint8)).save(folder / f"{plane}_{i:03d}.png")

    win = MainWindow(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    win.resize(1500, 950)
    win.show()
    for plane in ("xy", "xz", "yz"):
        win.data_panel.add_paths(plane, [work / "micrographs" / plane])

    train = win.train_panel
    train.set_settings(TrainSettings(preset="tiny", steps=1500, batch=8, crop=32, device="auto",
                                     seed=0, model_path=str(work / "model.pt")))
    train.start()
    wait_until(app, lambda: not train.is_running(), 900)
    wait_until(app, lambda: win.model_info is not None, 60)

    gen = win.generate_panel
    gen.set_settings(replace(gen.settings(), shape=(32, 32, 32), count=2, sampling_steps=30,
                             harmonize=1, seed=0, device="auto"))
    win.docks["Generate"].raise_()
    gen.start()
    wait_until(app, lambda: not gen.is_running(), 900)
    wait_until(app, lambda: len(win.volumes) == 2, 10)
    gen.analyse_button.click()
    wait_until(app, lambda: not win.analysis_panel.is_running(), 900)
    for _ in range(20):  # let the plots and the 3D view settle
        app.processEvents()
        time.sleep(0.05)

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "screenshot_main.png"
    win.grab().save(str(path))
    win.close()
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    print(main(target))

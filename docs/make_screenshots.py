"""Screenshot of the main window on the first run: ``docs/screenshot_main.png``.

What a new user sees: the app opens on the bundled fibre-composite demo (micrographs and
model), one Generate with the panel's defaults (64^3, S = 50, n_h = 1) forms a volume
live, then Analyse compares it with the micrographs; the window is grabbed (``QWidget.grab``,
which includes the VTK view). Prints how long Generate took. Run it under a display or Xvfb:

    xvfb-run -a python docs/make_screenshots.py [OUT_DIR]

Settings go to a temporary folder, so the user's Micro3D settings are not touched.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings

from micro3d_gui.qt.app import create_app


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

    win = MainWindow(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    win.resize(1500, 950)
    win.show()
    if not win.open_demo():
        raise SystemExit("no bundled demo: resources/demo/ and models/ are missing")
    wait_until(app, lambda: win.model_info is not None, 60)

    gen = win.generate_panel
    win.docks["Generate"].raise_()
    start = time.perf_counter()
    gen.start()
    wait_until(app, lambda: not gen.is_running(), 900)
    print(f"Generate {gen.settings().shape} with S = {gen.settings().sampling_steps}, "
          f"n_h = {gen.settings().harmonize}: {time.perf_counter() - start:.0f} s, "
          f"{gen.previews_received} live updates received")
    wait_until(app, lambda: len(win.volumes) == 1, 10)
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

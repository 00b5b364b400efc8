"""Screenshots of the app's first hour, at 1280 x 800 and 1920 x 1080, into ``docs/``:

- ``first_run_<W>x<H>.png``: the window as it opens on the bundled fibre-composite demo
  (micrographs, its 3D truth as reference volume, model): the Generate tab, the
  placeholder with the time estimate;
- ``denoising_<W>x<H>.png``: Generate running, the volume forming live (3D and 2D panes);
- ``analysis_<W>x<H>.png``: after Analyse: S2 per plane, generated against the micrographs
  and the truth, relative errors in the titles;
- ``view3d_<W>x<H>.png``: the 3D view with a voxel size (cube axes in µm) and named phases;
- ``train_<W>x<H>.png``: the Train tab after a short real run on the demo's micrographs
  (``--train-steps``, default 200): loss and per-plane fidelity against the floor. The new
  model is saved in the temporary folder and not put in Generate's place.

One Generate serves both sizes (the window is resized between the grabs, which
``QWidget.grab`` takes with the VTK view). The Model field shows the bundled model's name,
never a path of this machine. Settings go to a temporary folder. Run under Xvfb with a
screen of at least 1920 x 1080:

    xvfb-run -a -s "-screen 0 1920x1200x24" python docs/make_screenshots.py [OUT_DIR] [--box N]
        [--train-steps N]

``--box N`` samples an N^3 box (default: the Generate panel's default); prints the times.
"""
from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSettings

from micro3d_gui.qt.app import create_app

SIZES = ((1280, 800), (1920, 1080))


def wait_until(app, condition, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the run took too long")
        app.processEvents()
        time.sleep(0.02)


def settle(app, seconds: float = 1.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def grab_both(app, win, out_dir: Path, stem: str) -> list[Path]:
    """``stem_<W>x<H>.png`` at both sizes (the window ends at the last size)."""
    written = []
    for w, h in SIZES:
        win.resize(w, h)
        settle(app, 0.8)
        win.viewport.reset_camera()  # the whole box in the resized view
        settle(app, 0.3)
        win.viewport.plotter.render()
        path = out_dir / f"{stem}_{w}x{h}.png"
        win.grab().save(str(path))
        written.append(path)
        print(f"{path.name}: {win.width()} x {win.height()}", flush=True)
    return written


def take_int(argv: list[str], flag: str, default: int | None) -> int | None:
    """Remove ``flag N`` from ``argv`` and return N (``default`` without it); argparse
    belongs to the micro3d command only."""
    if flag not in argv:
        return default
    i = argv.index(flag)
    value = int(argv[i + 1])
    del argv[i:i + 2]
    return value


def main(out_dir: Path, box: int | None, train_steps: int = 200) -> list[Path]:
    work = Path(tempfile.mkdtemp(prefix="micro3d-shot-"))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work))
    app = create_app([sys.argv[0]])
    from micro3d_gui.qt.main_window import MainWindow

    screen = app.primaryScreen().availableGeometry()
    if screen.width() < SIZES[-1][0] or screen.height() < SIZES[-1][1]:
        raise SystemExit(f"the screen is {screen.width()} x {screen.height()}; run Xvfb with "
                         "-screen 0 1920x1200x24")
    out_dir.mkdir(parents=True, exist_ok=True)
    win = MainWindow(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    win.resize(*SIZES[0])
    win.show()
    gen = win.generate_panel
    if box is not None:
        gen.set_settings(replace(gen.settings(), shape=(box, box, box)))
    if not win.open_demo():
        raise SystemExit("no bundled demo: resources/demo/ and models/ are missing")
    wait_until(app, lambda: win.model_info is not None, 120)
    written = grab_both(app, win, out_dir, "first_run")

    start = time.perf_counter()
    gen.start()
    total = gen.settings().sampling_steps
    wait_until(app, lambda: gen.previews_received >= 0.6 * total or not gen.is_running(),
               3600)
    written += grab_both(app, win, out_dir, "denoising")
    wait_until(app, lambda: not gen.is_running(), 3600)
    s = gen.settings()
    print(f"Generate {s.shape} with S = {s.sampling_steps}, n_h = {s.harmonize}: "
          f"{time.perf_counter() - start:.0f} s ({win.placeholder_text().splitlines()[1]} "
          "was the estimate)", flush=True)

    wait_until(app, lambda: len(win.volumes) == 1, 10)
    start = time.perf_counter()
    gen.analyse_button.click()
    wait_until(app, lambda: win.analysis_panel.report() is not None
               and not win.analysis_panel.is_running(), 1800)
    print(f"Analyse: {time.perf_counter() - start:.0f} s", flush=True)
    written += grab_both(app, win, out_dir, "analysis")

    # The demo's voxel size is arbitrary (1 unit): 0.5 µm shows the physical axes.
    win.voxel_spin.setValue(0.5)
    win.viewport.set_phase_style(names=["matrix", "fibre"])
    win.viewport.set_mode("surfaces")
    win.docks["Analysis"].hide()
    win.docks["Phases"].raise_()  # the names and colours beside the view
    written += grab_both(app, win, out_dir, "view3d")

    from micro3d_gui.qt import dialogs
    dialogs.ask = lambda *args: False  # keep the bundled model in Generate after training
    train = win.train_panel
    train.set_settings(replace(train.settings(), steps=train_steps,
                               model_path=str(work / "trained.pt")))
    win.docks["Train"].raise_()
    start = time.perf_counter()
    if not train.start():
        raise SystemExit("training did not start")
    wait_until(app, lambda: not train.is_running(), 3600)
    print(f"Train {train_steps} steps: {time.perf_counter() - start:.0f} s", flush=True)
    written += grab_both(app, win, out_dir, "train")
    win.mark_clean()  # nothing of a script's window to save: no "Save changes?" box
    win.close()
    return written


if __name__ == "__main__":
    argv = sys.argv[1:]
    size = take_int(argv, "--box", None)
    steps = take_int(argv, "--train-steps", 200)
    target = Path(argv[0]) if argv else Path(__file__).resolve().parent
    for path in main(target, size, steps):
        print(path)

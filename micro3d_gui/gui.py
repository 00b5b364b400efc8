"""Entry point of the desktop app (``micro3d-gui``, ``python -m micro3d_gui``).

Qt is imported only inside :func:`main`, so importing this module (and the CLI) stays
Qt-free.
"""
from __future__ import annotations

import os
import sys


def display_missing() -> str | None:
    """Why Qt could not open a window here, or None. On Linux (and other X11/Wayland
    systems) a window needs DISPLAY or WAYLAND_DISPLAY, unless QT_QPA_PLATFORM names a
    platform that needs neither (offscreen, vnc, ...); without one Qt aborts the process."""
    if sys.platform in ("win32", "darwin") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("micro3d-gui: error: the desktop app needs a display (no DISPLAY or "
            "WAYLAND_DISPLAY is set); run it in a desktop session (or under xvfb-run), "
            "or use the command line: micro3d --help")


def main(argv: list[str] | None = None) -> int:
    """``micro3d-gui [PROJECT_DIR] [--model MODEL.pt]``; see :mod:`micro3d_gui.qt.app`."""
    args = sys.argv[1:] if argv is None else argv
    if "--version" in args:
        from . import __version__  # noqa: PLC0415

        print(f"micro3d-gui {__version__}")
        return 0
    # Before torch loads OpenMP: its idle threads sleep instead of spinning, so a training
    # or sampling job in a worker thread leaves the GUI thread a core (docs/benchmarks.md,
    # Load and threads).
    from .core.threads import prefer_passive_wait  # noqa: PLC0415

    prefer_passive_wait()
    if "--self-test" in args:
        # Before any Qt import: the self-test runs where no display exists.
        from .selftest import run  # noqa: PLC0415

        return run()
    if not ({"-h", "--help", "-?"} & set(args)):
        problem = display_missing()
        if problem:
            print(problem, file=sys.stderr)
            return 2
    from .qt.app import main as app_main

    return app_main(argv)

"""Entry point of the desktop app (``micro3d-gui``, ``python -m micro3d_gui``).

Qt is imported only inside :func:`main`, so importing this module (and the CLI) stays
Qt-free.
"""
from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """``micro3d-gui [PROJECT_DIR] [--model MODEL.pt]``; see :mod:`micro3d_gui.qt.app`."""
    import os  # noqa: PLC0415
    import sys  # noqa: PLC0415

    # Before torch loads OpenMP: its idle threads sleep instead of spinning, so a training
    # or sampling job in a worker thread leaves the GUI thread a core (docs/benchmarks.md).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "--self-test" in (sys.argv[1:] if argv is None else argv):
        # Before any Qt import: the self-test runs where no display exists.
        from .selftest import run  # noqa: PLC0415

        return run()
    from .qt.app import main as app_main

    return app_main(argv)

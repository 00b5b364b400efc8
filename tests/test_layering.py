"""The non-GUI layers import no Qt (checked in a fresh interpreter)."""
import pkgutil
import subprocess
import sys

import micro3d_gui

QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "pyvistaqt", "qtpy", "superqt")


def non_gui_modules():
    names = []
    for info in pkgutil.walk_packages(micro3d_gui.__path__, "micro3d_gui."):
        if ".qt" not in info.name and not info.name.endswith("__main__"):
            names.append(info.name)
    return names


def test_non_gui_modules_import_no_qt():
    modules = non_gui_modules()
    assert "micro3d_gui.core.diffusion.sampler" in modules and "micro3d_gui.cli" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"

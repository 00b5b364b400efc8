"""Entry script of the PyInstaller bundle (``build_spec/micro3d.spec``): ``micro3d-gui``.

``dist/micro3d/micro3d [PROJECT_DIR] [--model MODEL.pt]`` opens the app;
``dist/micro3d/micro3d --self-test`` checks the bundle without a window.
"""
import multiprocessing
import os
import sys

if __name__ == "__main__":
    # a frozen app re-runs this script for any child process (Windows, macOS spawn)
    multiprocessing.freeze_support()
    # pyvistaqt and superqt reach Qt through qtpy: name the one binding that is bundled
    os.environ.setdefault("QT_API", "pyside6")
    from micro3d_gui.gui import main

    sys.exit(main())

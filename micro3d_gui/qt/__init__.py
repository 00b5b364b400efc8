"""The desktop app (PySide6 + pyvistaqt + superqt): the only package that imports Qt.

It holds no numerics: widgets call :mod:`micro3d_gui.session`, :mod:`micro3d_gui.core`,
:mod:`micro3d_gui.io`, :mod:`micro3d_gui.metrics` and :mod:`micro3d_gui.properties` in
worker threads.
"""

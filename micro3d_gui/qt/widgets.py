"""Small widget helpers the panels share."""
from __future__ import annotations

from PySide6.QtWidgets import QSpinBox


def spin_box(lo: int, hi: int, tip: str) -> QSpinBox:
    """An integer spin box with a range and a tooltip."""
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setToolTip(tip)
    s.setAccelerated(True)
    return s

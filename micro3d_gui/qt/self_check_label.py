"""The self-check's verdict beside the generated volumes (:mod:`micro3d_gui.metrics.selfcheck`).

One line in a plain colour (:data:`~.palette.VERDICT_HEX`: green at the floor, amber up to
:data:`~micro3d_gui.metrics.selfcheck.FAR_RATIO` times it, red beyond, grey when there was
nothing to check against), the per-plane numbers in its tooltip.
"""
from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from ..metrics.floor import MEASURES
from ..metrics.selfcheck import MEASURE_NAMES, level, ratios, second_pass_lines
from .palette import VERDICT_HEX


def self_check_tooltip(report: dict) -> str:
    """The report as rich text: what the numbers are, and a row per plane."""
    if not report.get("planes"):
        return escape(report["verdict"])
    n = report.get("num_volumes", 1)
    head = (f"<p>Self-check of {'the volume' if n == 1 else f'the {n} volumes'} against "
            f"{escape(str(report.get('reference') or 'the micrographs'))}: relative error "
            "of the sections' S2 and lineal path per plane, beside the floor (the same error "
            "of as many real crops of the micrographs, against their other half). At the "
            f"floor: at most {report['margin']:g}x on both, on every plane.</p>")
    cells = "".join(f"<th>{MEASURE_NAMES[m]}</th><th>floor</th><th></th>" for m in MEASURES)
    rows = [f"<tr><th>plane</th>{cells}</tr>"]
    r = ratios(report)
    for plane, entry in report["planes"].items():
        rows.append(f"<tr><td>{plane}</td>" + "".join(
            f"<td>{entry[m]:.3f}</td><td>{entry[f'{m}_floor']:.3f}</td>"
            f"<td><b>{r[plane][m]:.1f}x</b></td>" for m in MEASURES) + "</tr>")
    notes = "".join(f"<p>{escape(note)}</p>" for note in report.get("notes", ()))
    return head + "<table cellspacing='6'>" + "".join(rows) + "</table>" + notes


class SelfCheckLabel(QLabel):
    """Hidden until :meth:`show_report`; :attr:`level` is the colour's meaning
    (``"at_floor"``, ``"near"``, ``"far"``, ``"none"``; None when empty)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)
        # A long verdict wraps; it must not widen the central area (the docks would jump).
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(1)
        self.level: str | None = None
        self.hide()

    def show_report(self, report: dict | None) -> None:
        """Show a self-check report (None: no check was made, the label is cleared)."""
        if report is None:
            self.clear_report()
            return
        self.level = level(report)
        again = " (sampled twice: see the tooltip)" if report.get("second_pass") else ""
        self.setText(report["verdict"] + again)
        self.setStyleSheet(f"QLabel {{ color: {VERDICT_HEX[self.level]}; }}")
        self.setToolTip(self_check_tooltip(report) + "".join(
            f"<p>{escape(line)}</p>" for line in second_pass_lines(report)))
        self.show()

    def clear_report(self) -> None:
        self.level = None
        self.clear()
        self.setToolTip("")
        self.hide()

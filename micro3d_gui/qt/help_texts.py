"""The Help menu's texts: quick start (the README's five steps), shortcuts, About."""
from __future__ import annotations

import html
from collections.abc import Mapping

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox, QWidget

#: The README's "The desktop app" steps, short.
QUICK_START = """
<p>The app opens on a bundled demo (micrographs and a trained model of a fibre composite):
press <b>Generate</b> to watch a 3D volume denoise, then <b>Analyse</b> to compare it with
the micrographs and the demo's 3D truth. For your own material:</p>
<ol>
<li><b>Data</b> (left): drop folders of xy, xz and yz micrographs on their targets;
transpose / flip a plane whose images came rotated; choose the segmentation and check the
before / after preview and the phase fractions. A dropped 3D TIFF can be cut into the
three planes and is kept as a reference volume.</li>
<li><b>Train</b> (right): choose a preset and steps, where to save the model, Start; the
loss curve, steps/s and ETA show; Cancel saves the model, Resume continues it.</li>
<li><b>Generate</b> (right): box size, number of volumes, sampling steps; the 3D view and
the xy / xz / yz panes show the estimate forming. Then a line above the 3D view says how
the volumes' sections compare with the micrographs (green: at the micrographs' own spread,
amber: up to 3x it, red: beyond; hover it for the numbers). Drop a micrograph on a pane, or
on a face or slice of the 3D view, to keep it there in the next volumes.</li>
<li><b>Analysis</b> (bottom): S2 and lineal path per plane with relative errors against the
micrographs and the reference volume, volume fractions, and with Properties diffusivity and
elastic / thermal constants. Every plot saves as PNG and CSV.</li>
<li><b>File</b>: export volumes (.vti, TIFF, .npy) with the voxel size; save and open
projects.</li>
</ol>
<p>Set the <b>voxel size</b> above the 3D view to read its axes and the analysis in
physical units; rename and recolour phases in the table beside the 3D view.</p>
"""

LICENCES = (("Micro3D", "MIT"), ("PyTorch", "BSD-3-Clause"), ("Qt for Python (PySide6)",
            "LGPL-3.0"), ("VTK / PyVista / pyvistaqt", "BSD-3-Clause / MIT / MIT"),
            ("NumPy, SciPy, scikit-image", "BSD-3-Clause"), ("matplotlib", "PSF-based"),
            ("superqt", "BSD-3-Clause"), ("TauFactor", "MIT"), ("tifffile", "BSD-3-Clause"),
            ("Pillow", "MIT-CMU (HPND)"))


def shortcuts_html(actions: Mapping[str, QAction]) -> str:
    """A table of the menu actions that have a keyboard shortcut."""
    rows = "".join(
        f"<tr><td>{html.escape(a.text().replace('&', ''))}</td><td><b>"
        f"{html.escape(a.shortcut().toString())}</b></td></tr>"
        for a in actions.values() if not a.shortcut().isEmpty())
    return f"<table cellspacing='6'>{rows}</table>"


def about_html() -> str:
    """Version, torch and the device it would use, and the licences."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    from ..core.device import resolve_device

    try:
        ours = version("micro3d-gui")
    except PackageNotFoundError:  # a source checkout that is not installed
        ours = "source checkout"
    device = resolve_device()  # the device "auto" picks here
    gpu = (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
    licences = "".join(f"<tr><td>{html.escape(n)}</td><td>{html.escape(lic)}</td></tr>"
                       for n, lic in LICENCES)
    return (f"<h3>Micro3D {html.escape(ours)}</h3>"
            "<p>3D microstructures from 2D micrographs of three orthogonal planes, with one "
            "plane-conditional diffusion model and multi-plane harmonized sampling.</p>"
            f"<p>torch {html.escape(torch.__version__)}, device: <b>{device}{gpu}</b>; "
            f"{torch.get_num_threads()} CPU threads</p>"
            f"<p>Licences:</p><table cellspacing='4'>{licences}</table>")


def show(parent: QWidget | None, title: str, text: str) -> None:
    """A modal box with rich text."""
    box = QMessageBox(QMessageBox.Icon.NoIcon, title, text, QMessageBox.StandardButton.Ok,
                      parent)
    box.setTextFormat(Qt.TextFormat.RichText)
    box.exec()

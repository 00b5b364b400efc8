"""The analysis panel runs the real metrics / TauFactor / FFT solver in its worker."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from micro3d_gui.qt.analysis_panel import AnalysisPanel

PLANES = ("xy", "xz", "yz")


def blobs(shape=(16, 16, 16), seed=0) -> np.ndarray:
    noise = gaussian_filter(np.random.default_rng(seed).normal(size=shape), 1.5, mode="wrap")
    return (noise > 0).astype(np.uint8)


def slices(volume):
    """Plane images by plain indexing (xy rows y; xz rows z, cols x; yz rows z, cols y)."""
    z, y, x = volume.shape
    return {"xy": [volume[k] for k in range(z)], "xz": [volume[:, j] for j in range(y)],
            "yz": [volume[:, :, i] for i in range(x)]}


@pytest.fixture
def panel(qtbot, errors):
    w = AnalysisPanel()
    qtbot.addWidget(w)
    return w


def run(qtbot, panel, volumes, num_phases, properties=False, timeout=60000):
    with qtbot.waitSignal(panel.finished, timeout=timeout) as blocker:
        panel.analyse(volumes, num_phases, properties=properties)
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=5000)
    return blocker.args[0]


def labelled_lines(plot):
    return [line for ax in plot.figure.axes for line in ax.get_lines()
            if not line.get_label().startswith("_")]


def test_metrics_against_micrographs(qtbot, panel, tmp_path, errors):
    truth = blobs(seed=0)
    panel.set_reference_planes(slices(truth), 2)
    volumes = [truth, blobs(seed=1)]
    report = run(qtbot, panel, volumes, 2)
    assert errors == []
    assert report == panel.report()
    assert report["num_volumes"] == 2 and report["reference"] == "micrographs"
    # The truth against its own sections matches exactly; another sample does not.
    first, second = report["per_volume"]
    for key in ("s2_relative_error", "lineal_path_relative_error"):
        assert set(first[key]) == set(PLANES)
        assert all(v == pytest.approx(0.0, abs=1e-12) for v in first[key].values())
        assert all(0 < v < math.inf for v in second[key].values())
        for p in PLANES:
            assert report[key][p] == pytest.approx((first[key][p] + second[key][p]) / 2)
    assert report["volume_fraction"]["1"] == pytest.approx(
        np.mean([v.mean() for v in volumes]))
    assert report["reference_volume_fraction"]["1"] == pytest.approx(truth.mean())

    # S2 and lineal path: three planes, generated and reference lines, errors in titles.
    for key in ("s2", "lineal_path"):
        plot = panel.plots[key]
        assert len(plot.figure.axes) == 3
        for ax, p in zip(plot.figure.axes, PLANES):
            assert ax.get_title().startswith(f"{p}: rel. error")
            labels = [line.get_label() for line in ax.get_lines()]
            assert sum(lbl.startswith("generated") for lbl in labels) == 2
            assert sum(lbl.startswith("micrographs") for lbl in labels) == 2
    # S2(0) of phase 1 is its volume fraction: the mean generated curve starts there.
    s2_xy = {line.get_label(): line.get_ydata() for line in panel.plots["s2"].figure.axes[0]
             .get_lines()}
    assert s2_xy["generated φ1 along x"][0] == pytest.approx(report["volume_fraction"]["1"])
    assert s2_xy["micrographs φ1 along y"][0] == pytest.approx(truth.mean())
    # Volume-fraction histogram: the table has one row per volume and phase + reference.
    header, rows = panel.plots["volume_fraction"].table()
    assert header[:3] == ["volume", "phase", "fraction"]
    assert len(rows) == 2 * 2 + 2
    assert "Not computed" in panel.plots["diffusivity"].figure.axes[0].texts[0].get_text()


def test_save_png_and_csv(qtbot, panel, tmp_path):
    truth = blobs(seed=0)
    panel.set_reference_planes(slices(truth), 2)
    run(qtbot, panel, [blobs(seed=2)], 2)
    plot = panel.plots["s2"]
    png = plot.save_png(tmp_path / "s2.png")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > 100 and im.height > 100
    path = plot.save_csv(tmp_path / "s2.csv")
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["axes", "line", "x", "y"]
    lines = labelled_lines(plot)
    assert len(rows) - 1 == sum(len(line.get_xdata()) for line in lines)
    # The CSV holds exactly the plotted points.
    line = lines[0]
    title = line.axes.get_title()
    got = [(float(r[2]), float(r[3])) for r in rows[1:]
           if r[0] == title and r[1] == line.get_label()]
    np.testing.assert_allclose(got, np.column_stack([line.get_xdata(), line.get_ydata()]))
    written = panel.save_all(tmp_path / "all")
    assert {p.name for p in written} >= {"s2.png", "s2.csv", "volume_fraction.csv",
                                         "lineal_path.png", "diffusivity.png"}
    with open(tmp_path / "all" / "volume_fraction.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    generated = [r for r in table if r["source"] == "generated"]
    assert len(generated) == 2  # one volume, two phases
    assert sum(float(r["fraction"]) for r in generated) == pytest.approx(1.0)


def test_reference_volume_and_no_reference(qtbot, panel):
    truth = blobs(seed=3)
    panel.set_reference_volume(truth)
    report = run(qtbot, panel, [truth], 2)
    assert report["reference"] == "volume"
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in report["s2_relative_error"].values())
    # Micrographs and a reference volume: both sets of curves and errors.
    panel.set_reference_planes(slices(blobs(seed=4)), 2)
    report = run(qtbot, panel, [truth], 2)
    assert report["reference"] == "micrographs"
    assert all(v == pytest.approx(0.0, abs=1e-12)
               for v in report["reference_volume"]["s2_relative_error"].values())
    assert all(v > 0 for v in report["s2_relative_error"].values())
    assert any(line.get_label().startswith("reference volume")
               for line in labelled_lines(panel.plots["s2"]))
    # No reference at all: curves of the volume only, no errors.
    panel.set_reference_planes(None)
    panel.set_reference_volume(None)
    report = run(qtbot, panel, [truth], 2)
    assert report["reference"] is None and "s2_relative_error" not in report
    assert len(labelled_lines(panel.plots["s2"])) == 6


def test_properties_of_a_laminate(qtbot, panel):
    # Layers normal to x: both phases conduct fully along z and y (tau = 1) and not at all
    # along x; the laminate is transversely isotropic about x (E2 = E3).
    x = np.arange(12)
    vol = np.broadcast_to((x % 4 < 1).astype(np.uint8), (12, 12, 12)).copy()
    vf = np.array([0.75, 0.25])
    report = run(qtbot, panel, [vol], 2, properties=True, timeout=240000)
    for k in (0, 1):
        rel = report["relative_diffusivity"][str(k)]
        assert rel["z"] == pytest.approx(vf[k], rel=1e-3)
        assert rel["y"] == pytest.approx(vf[k], rel=1e-3)
        assert rel["x"] == 0.0
        assert report["tortuosity"][str(k)]["x"] == math.inf
    el = report["elastic"]
    assert el["E2"] == pytest.approx(el["E3"], rel=1e-3)
    assert el["E1"] < el["E2"]
    assert set(report["cte"]) == {"a11", "a22", "a33", "a12", "a13", "a23"}
    assert report["cte"]["a22"] == pytest.approx(report["cte"]["a33"], rel=1e-3)

    header, rows = panel.plots["diffusivity"].table()
    assert len(rows) == 2 * 3
    assert len(panel.plots["diffusivity"].figure.axes[0].patches) == 6  # six boxes
    header, rows = panel.plots["elastic"].table()
    assert {r[1] for r in rows} == {"E1", "E2", "E3", "G12", "G13", "G23", "nu12", "nu13",
                                    "nu23"}
    assert len(panel.plots["elastic"].figure.axes) == 2
    assert all(math.isfinite(r[2]) for r in panel.plots["cte"].table()[1])


def test_cancel(qtbot, panel):
    finished = []
    panel.finished.connect(finished.append)
    vol = blobs(shape=(24, 24, 24), seed=5)
    panel.analyse([vol, vol, vol], 2, properties=True)
    assert panel.is_running()
    assert panel.cancel_button.isEnabled()
    # Cancel inside a property solver (TauFactor or the elastic one): their should_stop /
    # progress callbacks end it. The label is polled 4 times a second, so a fast TauFactor
    # stage may never show: either stage will do.
    qtbot.waitUntil(lambda: any(stage in panel.status_label.text()
                                for stage in ("diffusivity", "elastic")), timeout=60000)
    panel.cancel()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=60000)
    assert finished == [] and panel.report() is None
    assert panel.status_label.text() == "Analysis cancelled"
    assert panel.run_button.isEnabled()


def test_no_volumes(qtbot, panel, errors):
    panel.analyse([], 2)
    assert not panel.is_running() and len(errors) == 1


def test_panel_deleted_while_running(qtbot):
    from PySide6.QtCore import QThreadPool

    w = AnalysisPanel()
    w.set_reference_planes(slices(blobs(seed=0)), 2)
    vol = blobs(shape=(24, 24, 24), seed=6)
    w.analyse([vol, vol, vol], 2, properties=True)
    qtbot.wait(200)
    w.deleteLater()
    qtbot.wait(100)  # the deletion stops the job; its late signals reach nobody
    assert QThreadPool.globalInstance().waitForDone(20_000)
    qtbot.wait(100)


def test_missing_material_is_reported(qtbot, panel, errors):
    vol = (np.arange(8 ** 3).reshape(8, 8, 8) % 4).astype(np.uint8)  # four phases
    panel.analyse([vol], 4, properties=True)  # the defaults cover phases 0..2 only
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=60000)
    assert len(errors) == 1 and "phase(s) [3]" in errors[0][1]
    assert panel.report() is None


def test_micrographs_of_one_plane_only(qtbot, panel, errors):
    truth = blobs(seed=0)
    panel.set_reference_planes({"xy": slices(truth)["xy"], "xz": [], "yz": []}, 2)
    report = run(qtbot, panel, [truth], 2)
    assert errors == []
    assert set(report["s2_relative_error"]) == {"xy"}
    xy, xz, yz = panel.plots["s2"].figure.axes
    assert len(xy.get_lines()) == 4 and xy.get_title().startswith("xy: rel. error")
    assert xz.get_lines() == [] and "no reference images" in xz.get_title()

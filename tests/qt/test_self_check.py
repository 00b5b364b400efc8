"""The self-check in the app, as a user meets it: Generate, clicked, shows beside the
volumes the verdict of their self-check in a plain colour, the per-plane numbers in its
tooltip; against the project's micrographs when the Data panel has them, else against the
micrographs the model keeps. The Train panel's fidelity plot shows the lineal path beside
S2, and still plots reports from before it.

Real parts: a real (untrained) model file from the core's Trainer, PNG micrographs on disk,
the real sampler in the worker thread; only modal boxes are recorded (``boxes``).
"""
from dataclasses import replace
from html import escape

import numpy as np
import pytest
from PySide6.QtCore import Qt

from micro3d_gui.core.checkpoint import load_checkpoint, reference_micrographs
from micro3d_gui.core.diffusion.unet import preset_config
from micro3d_gui.core.planes import volume_plane_images
from micro3d_gui.core.reference import reference_images
from micro3d_gui.core.plane_dataset import PlaneDataset
from micro3d_gui.core.train_config import TrainConfig
from micro3d_gui.core.training import Trainer
from micro3d_gui.metrics.selfcheck import level, self_check
from micro3d_gui.preprocess.synthetic import lamellae
from micro3d_gui.qt.fidelity_plot import LossPlot, fidelity_text
from micro3d_gui.qt.palette import VERDICT_HEX


def lamella_model(path):
    """A real model file of a lamellar material (layers normal to x) other than the
    project's micrographs' (another seed): the self-check's two references differ."""
    images = volume_plane_images(lamellae((24, 24, 32), axis=2, seed=5), step=2)
    Trainer(PlaneDataset(images, 2), preset_config("tiny", 1),
            TrainConfig(steps=1, crop=16)).save(path)
    return path


def generate_by_click(qtbot, win):
    """Click Generate as a user does; the self-check report it hands on."""
    gen = win.generate_panel
    with qtbot.waitSignal(gen.self_checked, timeout=120_000) as blocker:
        qtbot.mouseClick(gen.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not gen.is_running(), timeout=10_000)
    return blocker.args[0]


def test_generate_shows_the_self_check_beside_the_volumes(qtbot, window, boxes,
                                                           micrograph_dirs, tmp_path):
    model = lamella_model(tmp_path / "m.pt")
    window.set_model(model)
    qtbot.waitUntil(lambda: window.model_path == str(model), timeout=60_000)
    gen = window.generate_panel
    gen.set_settings(replace(gen.settings(), shape=(8, 12, 16), count=2, sampling_steps=2,
                             harmonize=0, seed=0, device="cpu"))
    assert not window.check_label.isVisible()

    report = generate_by_click(qtbot, window)
    assert boxes.errors == []
    assert len(window.volumes) == 2
    # the volumes shown, checked against the micrographs the model keeps
    want = self_check(np.stack(window.volumes),
                      reference_micrographs(load_checkpoint(model)), 2)
    assert report["reference"] == "the model's training micrographs"
    label = window.check_label
    assert label.isVisible() and label.text() == want["verdict"] == report["verdict"]
    assert label.text().startswith("Self-check")
    assert label.level == level(want) and VERDICT_HEX[label.level] in label.styleSheet()
    tip = label.toolTip()
    for plane, entry in want["planes"].items():
        assert f"<td>{plane}</td>" in tip
        assert f"<td>{entry['lineal_path']:.3f}</td>" in tip and f"{entry['s2']:.3f}" in tip
    assert "lineal path" in tip and "floor" in tip

    # with micrographs in the Data panel, those are the reference
    for plane, folder in micrograph_dirs.items():
        window.data_panel.add_paths(plane, [folder])
    seg = window.data_panel.segmentation()
    report = generate_by_click(qtbot, window)
    assert report["reference"] == "the project's micrographs"
    want = self_check(np.stack(window.volumes), reference_images(seg.labels), 2)
    for plane, entry in want["planes"].items():
        for key in ("s2", "s2_floor", "lineal_path", "lineal_path_floor"):
            assert report["planes"][plane][key] == pytest.approx(entry[key])
    assert window.check_label.text() == want["verdict"]

    window.actions["new"].trigger()  # the volumes go, and their verdict with them
    assert not window.check_label.isVisible() and window.check_label.text() == ""


def test_broken_up_volumes_are_sampled_again_and_the_label_says_so(qtbot, window, boxes):
    """Three steps leave the fibres speckled (broken up): Generate samples them again with
    the planes in turn, as ``micro3d sample`` does, keeps the volumes nearer the floor and
    says so beside them."""
    from micro3d_gui.metrics.selfcheck import second_pass_lines
    from micro3d_gui.paths import demo_model

    model = demo_model("fibres")
    window.set_model(model)
    qtbot.waitUntil(lambda: window.model_path == str(model), timeout=60_000)
    gen = window.generate_panel
    gen.set_settings(replace(gen.settings(), shape=(24, 24, 24), count=1, sampling_steps=3,
                             harmonize=1, seed=0, device="cpu"))
    report = generate_by_click(qtbot, window)
    assert boxes.errors == []
    again = report["second_pass"]
    assert again["recipe"]["sampler"]["harmonize_planes"] == "cycle"
    label = window.check_label
    assert label.text() == report["verdict"] + " (sampled twice: see the tooltip)"
    assert f"<p>{escape(second_pass_lines(report)[0])}</p>" in label.toolTip()
    shown = self_check(np.stack(window.volumes), reference_micrographs(load_checkpoint(model)),
                       2)
    assert shown["worst"]["ratio"] == pytest.approx(again["worst_ratio"][again["kept"]])


def test_fidelity_plot_shows_the_lineal_path_and_still_plots_old_reports(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    old = {"step": 10, "errors": {"xy": 0.3, "yz": 0.2}, "floor": {"xy": 0.1, "yz": 0.1},
           "at_floor": False}
    new = {**old, "step": 20, "lineal_path": {"xy": 0.5, "yz": 0.1},
           "lineal_path_floor": {"xy": 0.1, "yz": 0.1}}
    plot.set_history([1.0, 0.5], [old])
    s2, lineal = plot.figure.axes[1], plot.figure.axes[2]
    assert [line.get_label() for line in s2.get_lines()][::2] == ["xy", "yz"]
    assert not lineal.get_lines()
    assert any("not in these" in t.get_text() for t in lineal.texts)
    plot.set_history([1.0, 0.5], [old, new])
    s2, lineal = plot.figure.axes[1], plot.figure.axes[2]
    assert list(s2.get_lines()[0].get_xdata()) == [10, 20]
    xy = lineal.get_lines()[0]
    assert xy.get_label() == "xy" and list(xy.get_xdata()) == [20]
    assert list(xy.get_ydata()) == [0.5]
    assert lineal.get_lines()[1].get_ydata()[0] == 0.1  # the xy floor, dashed
    text = fidelity_text(new)
    assert "S2 xy 3.0x, yz 2.0x; lineal path xy 5.0x, yz 1.0x the floor" in text
    assert text.endswith("xy is furthest from its micrographs (lineal path).")
    assert "lineal" not in fidelity_text(old)

"""A new user's first hour, at 1280 x 800 and 1920 x 1080: the first window leads to
Generate, both Analyse buttons give the same comparison (micrograph curves and relative
errors), the demo's truth is the reference, the docks hold their minimum sizes after a
shrink-and-restore, and the 2D panes show the sliders' sections.

Real parts: the bundled demo (micrographs, truth.tif, model), a real tiny model sampling a
16^3 box, real VTK under Xvfb. The 1920 x 1080 cases need a screen that large (``.ci/run``
starts Xvfb at 1920 x 1200); on a smaller one they are skipped, not faked.
"""
from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit,
                               QWidget)

from micro3d_gui import paths
from micro3d_gui.qt.main_window import MainWindow
from micro3d_gui.qt.thumbnails import labels_pixmap
from micro3d_gui.qt.viewport import PANE_SIZE

SIZES = [(1280, 800), (1920, 1080)]


def fit_screen(size):
    screen = QGuiApplication.primaryScreen().availableGeometry()
    if screen.width() < size[0] or screen.height() < size[1]:
        pytest.skip(f"the screen is {screen.width()} x {screen.height()}, smaller than "
                    f"{size[0]} x {size[1]} (run Xvfb with -screen 0 1920x1200x24)")


@pytest.fixture
def make_window(qtbot, settings, boxes):
    windows = []

    def make(size):
        fit_screen(size)
        win = MainWindow(settings)
        qtbot.addWidget(win)
        win.resize(*size)
        win.show()
        qtbot.waitExposed(win)
        windows.append(win)
        return win

    yield make
    for win in windows:
        win.cancel_jobs()
        win.close()


def on_top(dock) -> bool:
    return dock.isVisible() and not dock.visibleRegion().isEmpty()


def has_demo() -> bool:
    return (paths.demo_dir() / "truth.tif").is_file() and paths.demo_model().is_file()


needs_demo = pytest.mark.skipif(not has_demo(), reason="the bundled demo is not installed")


@needs_demo
@pytest.mark.parametrize("size", SIZES)
def test_first_window_leads_to_generate(qtbot, make_window, size):
    win = make_window(size)
    assert win.open_demo()
    qtbot.waitUntil(lambda: win.model_info is not None, timeout=60_000)
    qtbot.waitUntil(lambda: on_top(win.docks["Generate"]), timeout=5000)
    assert not on_top(win.docks["Train"])
    assert win.generate_panel.start_button.text() == "Generate"
    assert win.generate_panel.start_button.isEnabled()
    # The empty view says what to do and about how long it takes here.
    text = win.viewport.placeholder
    assert text.startswith("Demo model loaded:\npress Generate") and " here" in text
    assert "about " in text and win.viewport._placeholder_actor is not None
    # fast's second pass: the planes in turn (68 calls) or their vote (72), the longer
    assert "more if the self-check asks for a second pass)" in text
    assert text.split("\n")[2].startswith("(up to about ")
    # the paper's recipe (sampling steps 0: all T) is estimated at its T steps' calls
    win.generate_panel.recipe_combo.setCurrentText("paper")
    win.generate_panel._apply_recipe("paper")
    assert win.placeholder_text().endswith(", 1000 steps)")
    assert "about 5 s" not in win.placeholder_text()
    win.generate_panel.recipe_combo.setCurrentText("fast")
    win.generate_panel._apply_recipe("fast")
    assert not win.docks["Analysis"].isVisible()  # nothing to show yet
    # No path of the machine in the Model field: the bundled model by its name.
    assert win.generate_panel.model_edit.text() == "fibres.pt (bundled demo)"
    assert win.generate_panel.settings().model_path == str(paths.demo_model())
    assert str(paths.data_root()) not in win.statusBar().currentMessage()
    # The demo's truth is the reference volume (compared with, not cut into training data).
    assert win.data_panel.reference_volume_path().name == "truth.tif"
    assert not win.data_panel.model.volume_cut
    assert win.data_panel.reference_labels().shape == (128, 128, 128)
    # Help is there: quick start, shortcuts, About with the version and torch.
    from micro3d_gui.qt import help_texts

    assert {"quick_start", "shortcuts", "about"} <= set(win.actions)
    about = help_texts.about_html()
    assert "Micro3D" in about and "torch" in about and "MIT" in about
    assert "Ctrl+G" in help_texts.shortcuts_html(win.actions)
    # A field's tooltip is on its label too.
    labels = [w for w in win.generate_panel.findChildren(QWidget)
              if type(w).__name__ == "QLabel" and w.text() == "Sampling steps"]
    assert labels and labels[0].toolTip() == win.generate_panel.steps_spin.toolTip()


def untrained_model(path):
    from micro3d_gui.core.diffusion.unet import preset_config
    from micro3d_gui.core.plane_dataset import PlaneDataset
    from micro3d_gui.core.train_config import TrainConfig
    from micro3d_gui.core.training import Trainer

    data = PlaneDataset({"xy": [np.eye(16, dtype=np.uint8)]}, 2)
    Trainer(data, preset_config("tiny", 1), TrainConfig(steps=1, crop=16)).save(path)
    return path


def figures(panel):
    """Titles and line data of the S2 and lineal-path plots."""
    out = {}
    for key in ("s2", "lineal_path"):
        for i, ax in enumerate(panel.plots[key].figure.axes):
            out[(key, i, "title")] = ax.get_title()
            for j, line in enumerate(ax.get_lines()):
                out[(key, i, j)] = (line.get_label(), np.asarray(line.get_ydata()).copy())
    return out


def analyse_with(qtbot, win, button):
    with qtbot.waitSignal(win.analysis_panel.finished, timeout=120_000) as blocker:
        button.click()
    return blocker.args[0], figures(win.analysis_panel)


@pytest.mark.parametrize("size", SIZES)
def test_generate_then_analyse_from_either_button(qtbot, make_window, micrograph_dirs,
                                                  tmp_path, size):
    win = make_window(size)
    for plane, folder in micrograph_dirs.items():
        win.data_panel.add_paths(plane, [folder])
    win.set_model(untrained_model(tmp_path / "m.pt"))
    qtbot.waitUntil(lambda: win.model_info is not None, timeout=60_000)
    gen = win.generate_panel
    gen.set_settings(replace(gen.settings(), shape=(16, 16, 16), sampling_steps=3,
                             harmonize=0, seed=0, device="cpu"))
    with qtbot.waitSignal(gen.volumes_ready, timeout=120_000):
        assert gen.start()
    qtbot.waitUntil(lambda: not gen.is_running(), timeout=10_000)
    assert not win.docks["Analysis"].isVisible()

    report_a, figs_a = analyse_with(qtbot, win, gen.analyse_button)
    assert win.docks["Analysis"].isVisible()  # unfolded by the results
    report_b, figs_b = analyse_with(qtbot, win, win.analysis_panel.run_button)
    assert report_a["reference"] == report_b["reference"] == "micrographs"
    assert report_a["s2_relative_error"] == report_b["s2_relative_error"]
    assert figs_a.keys() == figs_b.keys()
    for key in figs_a:
        if key[2] == "title":
            assert figs_a[key] == figs_b[key]
        else:
            assert figs_a[key][0] == figs_b[key][0]
            np.testing.assert_array_equal(figs_a[key][1], figs_b[key][1])
    # Micrograph curves and the relative errors are in the figures.
    labels = [v[0] for k, v in figs_a.items() if k[2] != "title"]
    assert any(label.startswith("micrographs") for label in labels)
    assert any(label.startswith("generated") for label in labels)
    for i, plane in enumerate(("xy", "xz", "yz")):
        title = figs_a[("s2", i, "title")]
        assert title == f"{plane}: rel. error {report_a['s2_relative_error'][plane]:.3f} " \
                        "vs micrographs"
    # Two phases: one colour per direction, the same in every plane.
    from micro3d_gui.qt.palette import direction_hex
    from matplotlib.colors import to_hex

    xy_axes = win.analysis_panel.plots["s2"].figure.axes[0]
    colours = {line.get_label().split(" along ")[1]: to_hex(line.get_color())
               for line in xy_axes.get_lines()}
    assert colours == {"y": direction_hex("y"), "x": direction_hex("x")}
    # The legend is the figure's (outside the axes), not one on the curves.
    assert all(ax.get_legend() is None for ax in win.analysis_panel.plots["s2"].figure.axes)
    assert win.analysis_panel.plots["s2"].figure.legends


@needs_demo
def test_demo_analysis_compares_with_the_truth(qtbot, make_window):
    win = make_window(SIZES[0])
    assert win.open_demo()
    qtbot.waitUntil(lambda: win.model_info is not None, timeout=60_000)
    truth = win.data_panel.reference_labels()
    win.set_volumes([np.ascontiguousarray(truth[:24, :24, :24])], 2)
    win.voxel_spin.setValue(0.5)  # r then reads in µm
    report, figs = analyse_with(qtbot, win, win.analysis_panel.run_button)
    assert report["reference"] == "micrographs" and "reference_volume" in report
    for i, plane in enumerate(("xy", "xz", "yz")):
        title = figs[("s2", i, "title")]
        assert "vs micrographs" in title and "vs volume" in title
    labels = {v[0].split(" φ")[0] for k, v in figs.items() if k[2] != "title"}
    assert labels == {"generated", "micrographs", "reference volume"}
    ax = win.analysis_panel.plots["s2"].figure.axes[0]
    assert ax.get_xlabel() == "r (µm)"
    assert ax.get_lines()[0].get_xdata()[1] == pytest.approx(0.5)


def visible_fields(dock):
    kinds = (QAbstractButton, QLineEdit, QAbstractSpinBox, QComboBox)
    # (a spin box's or combo box's own line edit is part of it, not a field)
    return [w for w in dock.widget().widget().findChildren(QWidget)
            if isinstance(w, kinds) and w.isVisibleTo(dock)
            and not isinstance(w.parentWidget(), (QAbstractSpinBox, QComboBox))]


@pytest.mark.parametrize("size", SIZES)
def test_docks_keep_their_minimum_sizes_after_shrink_and_restore(qtbot, make_window, size):
    win = make_window(size)
    win.set_volumes([np.zeros((8, 8, 8), np.uint8)], 2)  # the first volume: no jump
    qtbot.wait(50)
    before = {name: dock.width() for name, dock in win.docks.items() if dock.isVisible()}
    win.resize(1250, 760)
    qtbot.wait(100)
    win.resize(*size)
    qtbot.wait(200)
    for name, dock in win.docks.items():
        if not on_top(dock):
            continue
        panel = dock.widget().widget()
        assert panel.width() >= panel.minimumSizeHint().width(), name
        for w in visible_fields(dock):
            assert w.width() >= w.minimumSizeHint().width(), (name, w, w.width())
    # Reset layout brings the first layout back.
    win.actions["reset_layout"].trigger()
    qtbot.wait(200)
    for name, width in before.items():
        assert abs(win.docks[name].width() - width) <= 2, name


def test_slice_panes_show_the_sliders_sections(qtbot, make_window):
    win = make_window(SIZES[0])
    vp = win.viewport
    vol = np.zeros((10, 12, 14), np.uint8)
    vol[3] = 1  # the xy section z = 3 is all phase 1
    vol[:, 5, :7] = 2  # the xz section y = 5: phase 2 on its left half
    win.set_volumes([vol], 3)
    vp.sliders["z"].setValue(3)
    vp.sliders["y"].setValue(5)
    vp.sliders["x"].setValue(9)
    for plane, expected in (("xy", vol[3]), ("xz", vol[:, 5, :]), ("yz", vol[:, :, 9])):
        np.testing.assert_array_equal(vp.pane_section(plane), expected)
        shown = vp.panes[plane].pixmap().toImage()
        want = labels_pixmap(expected, PANE_SIZE, vp.phase_table.rgb()).toImage()
        assert shown == want, plane
    assert vp.pane_titles["xy"].text() == "xy  (z = 3)"
    # Physical units and names: the titles, the axes and the legend follow.
    win.voxel_spin.setValue(2.0)
    assert vp.pane_titles["xy"].text() == "xy  (z = 6 µm)"
    vp.set_phase_style(names=["matrix", "fibre", "binder"], colours=["#000000", "#ff0000",
                                                                     "#00ff00"])
    want = labels_pixmap(vol[3], PANE_SIZE, np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]],
                                                      np.uint8)).toImage()
    assert vp.panes["xy"].pixmap().toImage() == want
    assert "fibre" in win.volume_info.text() or "fibre" in vp.phase_table.names


def test_quit_during_generation_says_what_is_lost(qtbot, make_window, boxes, tmp_path):
    win = make_window(SIZES[0])
    win.set_model(untrained_model(tmp_path / "m.pt"))
    qtbot.waitUntil(lambda: win.model_info is not None, timeout=60_000)
    gen = win.generate_panel
    gen.set_settings(replace(gen.settings(), shape=(16, 16, 16), sampling_steps=1000,
                             harmonize=0, seed=0, device="cpu"))
    assert gen.start()
    boxes.answer = False  # "No": keep running
    assert not win.close()
    title, text = boxes.questions[-1]
    assert text.startswith("The generation is still running. Cancel it and quit?")
    assert "not kept" in text and "training" not in text.lower()
    gen.cancel()
    qtbot.waitUntil(lambda: not gen.is_running(), timeout=30_000)
    # Export proposes the project folder, else the model's, never the launch folder.
    assert win.export_folder() == tmp_path

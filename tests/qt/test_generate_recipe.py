"""The Generate panel samples with the core recipes: its defaults are the default recipe's,
its new fields (fractions, kept sections) reach the sampler, and it gives what
``micro3d sample`` gives for the same settings."""
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from micro3d_gui.cli import build_parser, main, sampling_recipe
from micro3d_gui.core.recipe import DEFAULT_RECIPE, PAPER, get_recipe, sampling_settings
from micro3d_gui.errors import InputError
from micro3d_gui.io.volume import read_volume
from micro3d_gui.metrics.fractions import volume_fractions
from micro3d_gui.paths import demo_dir, demo_model
from micro3d_gui.qt.generate_panel import ALL_STEPS, GeneratePanel
from micro3d_gui.session.generation import (PANEL_FIELDS, GenerateSettings, check_kept_sections,
                                            sample_job)


def run_job(settings, previews=None):
    gen = sample_job(settings, "cpu", should_stop=lambda: False)
    try:
        while True:
            item = next(gen)
            if previews is not None:
                previews.append(item)
    except StopIteration as stop:
        return stop.value


def test_panel_defaults_are_the_cli_defaults_are_the_recipe(qtbot):
    panel = GeneratePanel()
    qtbot.addWidget(panel)
    cli = sampling_recipe(build_parser().parse_args(["sample", "m.pt", "--shape", "8", "8",
                                                     "8", "--out", "v.tif"]))
    assert GenerateSettings().to_recipe() == panel.settings().to_recipe() == cli \
        == get_recipe(DEFAULT_RECIPE)
    assert panel.harmonize_spin.text() == "8  on the last 60 %"
    panel.fraction_guidance_spin.setValue(2.5)
    assert panel.settings().to_recipe() == get_recipe().replace(fraction_guidance=2.5)
    panel.recipe_combo.setCurrentText("paper")
    panel._apply_recipe("paper")  # what choosing it in the combo does
    assert panel.settings().to_recipe() == PAPER
    assert panel.fraction_guidance_spin.value() == 1.0  # the paper has none
    assert panel.steps_spin.text() == "all (T)" and panel.harmonize_spin.text() == "4"


@pytest.mark.parametrize("name, steps, harmonize", [
    # fast's numbers: the user sees that the rounds take the planes in turn
    ("connected", "12", "8  on the last 60 %, planes in turn"),
    # the user sees which steps the planes vote on, and which harmonize
    ("separated", "20, the first 14 voted", "4  on the last 30 %"),
])
def test_choosing_a_recipe_by_keyboard_shows_what_it_does_and_samples_with_it(
        qtbot, name, steps, harmonize):
    """A recipe whose fields alone do not say what it does (the planes in turn, the
    planes' vote), chosen in the combo by typing its name: the spin boxes say it, and the
    panel's recipe is the named one."""
    panel = GeneratePanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.recipe_combo.setFocus()
    qtbot.keyClicks(panel.recipe_combo, name)
    qtbot.waitUntil(lambda: panel.recipe_combo.currentText() == name, timeout=2000)
    assert panel.steps_spin.text() == steps and panel.harmonize_spin.text() == harmonize
    assert panel.settings().to_recipe() == get_recipe(name)


def test_fractions_and_kept_sections_round_trip_and_reach_the_sampler(qtbot, tmp_path):
    truth = read_volume(demo_dir("separator") / "truth.tif")
    section = truth[40:56, 50, 30:46]  # xz: rows z, columns x
    Image.fromarray(section * 255).save(tmp_path / "face.png")
    panel = GeneratePanel()
    qtbot.addWidget(panel)
    s = replace(GenerateSettings(), model_path=str(demo_model("separator")), shape=(16, 16, 16),
                sampling_steps=6, seed=0, device="cpu", fractions=(0.55, 0.45),
                keep=(("xz", 5, str(tmp_path / "face.png")),))
    panel.set_settings(s)
    assert panel.settings() == s
    assert GenerateSettings.from_dict({**s.__dict__, "keep": [list(s.keep[0])],
                                       "fractions": [0.55, 0.45]}) == s
    volumes, k, _ = run_job(s)
    np.testing.assert_array_equal(volumes[0][:, 5, :], section)
    np.testing.assert_allclose(volume_fractions(volumes[0], k), [0.55, 0.45], atol=0.01)
    panel.fractions_edit.setText("0.5 x")
    with pytest.raises(InputError, match="give numbers"):
        panel.settings()


def test_panel_and_cli_give_the_same_volume(tmp_path):
    model = str(demo_model("fibres"))
    s = replace(GenerateSettings(), model_path=model, shape=(8, 10, 12), sampling_steps=5,
                seed=3, device="cpu")
    previews = []
    volumes, _, _ = run_job(s, previews)
    # the progress counts network calls: 5 steps, the last 3 of them with n_h = 8
    assert [(p.step, p.calls, p.total_calls) for p in previews] == [
        (1, 1, 29), (2, 2, 29), (3, 11, 29), (4, 20, 29), (5, 29, 29)]
    out = tmp_path / "v.tif"
    assert main(["sample", model, "--shape", "8", "10", "12", "--out", str(out),
                 "--sampling-steps", "5", "--seed", "3", "--device", "cpu"]) == 0
    np.testing.assert_array_equal(read_volume(out), volumes[0])


def test_the_cli_and_the_panel_keep_the_same_sections(qtbot, tmp_path, capsys):
    """``micro3d sample --keep`` and the panel's Keep sections field go through one function
    (session.generation.kept_sections): the same section gives the same volume, holding
    it, and the same refusal of a plane that is none of xy, xz, yz."""
    model = str(demo_model("fibres"))
    truth = read_volume(demo_dir("fibres") / "truth.tif")
    section = truth[:8, 20, :12]  # an xz section of an 8 x 10 x 12 box: rows z, columns x
    image = tmp_path / "xz.png"
    Image.fromarray(section * 255).save(image)
    panel = GeneratePanel()
    qtbot.addWidget(panel)
    panel.set_settings(replace(GenerateSettings(), model_path=model, shape=(8, 10, 12),
                               sampling_steps=3, seed=1, device="cpu"))
    panel.keep_edit.setText(f"xz 4 {image}")  # as a user types it
    volumes, _, _ = run_job(panel.settings())
    out = tmp_path / "v.tif"
    cli = ["sample", model, "--shape", "8", "10", "12", "--sampling-steps", "3", "--seed", "1",
           "--device", "cpu", "--out", str(out)]
    assert main([*cli, "--keep", "xz", "4", str(image)]) == 0
    np.testing.assert_array_equal(read_volume(out), volumes[0])
    np.testing.assert_array_equal(volumes[0][:, 4, :], section)
    capsys.readouterr()
    assert main([*cli, "--keep", "zz", "4", str(image)]) == 2
    assert f"--keep zz 4 {image}: the plane must be one of xy, xz, yz" in capsys.readouterr().err
    panel.keep_edit.setText(f"zz 4 {image}")
    with pytest.raises(InputError, match="kept section zz 4 .*: the plane must be one of xy, "
                                         "xz, yz"):
        check_kept_sections(panel.settings())


def test_each_recipe_field_of_the_panel_takes_its_range_and_help_from_its_definition(qtbot):
    panel = GeneratePanel()
    qtbot.addWidget(panel)
    assert tuple(panel.recipe_spins) == PANEL_FIELDS
    for name, spin in panel.recipe_spins.items():
        spec = sampling_settings()[name]
        assert spin.toolTip().lower() == spec.help.lower()
        low, high = spec.panel or (spec.low, spec.high)
        assert (spin.minimum(), spin.maximum()) == ((ALL_STEPS if name == "sampling_steps"
                                                     else low), high)
        # whatever the panel lets a user type, the recipe takes
        for value in (spin.minimum(), spin.maximum()):
            spin.setValue(value)
            panel.settings().to_recipe()
    # "all (T)" is the library's None, and a project that stored 0 for it still loads
    panel.steps_spin.setValue(ALL_STEPS)
    assert panel.steps_spin.text() == "all (T)" and panel.settings().sampling_steps is None
    assert panel.settings().to_recipe().sampling_steps is None
    assert GenerateSettings.from_dict({"sampling_steps": 0}).sampling_steps is None

"""The Train panel on the session layer: it offers the core's presets, devices and crop
step, and a resume says which of its fields the model's own recipe replaced."""
from micro3d_gui.core.checkpoint import load_checkpoint
from micro3d_gui.core.device import DEVICES
from micro3d_gui.core.train_config import CROP_MULTIPLE, PRESET_NAMES
from micro3d_gui.session.training import TrainSettings

TINY = dict(preset="tiny", batch=2, crop=16, device="cpu", seed=0, checkpoint_every=1000)


def items(combo):
    return tuple(combo.itemText(i) for i in range(combo.count()))


def test_the_panels_offer_the_cores_presets_devices_and_crop_step(window):
    panel = window.train_panel
    assert items(panel.preset_combo) == PRESET_NAMES
    assert items(panel.device_combo) == items(window.generate_panel.device_combo) == DEVICES
    assert panel.crop_spin.singleStep() == CROP_MULTIPLE


def train(qtbot, panel, settings, resume=False):
    panel.set_settings(settings)
    with qtbot.waitSignal(panel.model_saved, timeout=180_000):
        assert panel.start(resume=resume)
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=10_000)


def test_a_resume_says_which_fields_the_models_recipe_replaced(qtbot, window, boxes,
                                                               micrograph_dirs, tmp_path):
    for plane, folder in micrograph_dirs.items():
        window.data_panel.add_paths(plane, [folder])
    panel = window.train_panel
    model = tmp_path / "m.pt"
    train(qtbot, panel, TrainSettings(steps=3, model_path=str(model), **TINY))
    assert "kept the model's own" not in panel.status_label.text()
    # the same fields: nothing to say
    train(qtbot, panel, TrainSettings(steps=4, model_path=str(model), **TINY), resume=True)
    assert panel.status_label.text() == f"Trained 4 steps; model saved to {model}"
    # a batch and a seed of its own: the resume keeps the model's and says so
    changed = TrainSettings(steps=6, model_path=str(model), **{**TINY, "batch": 4, "seed": 7})
    train(qtbot, panel, changed, resume=True)
    assert panel.status_label.text() == (f"Trained 6 steps; model saved to {model} (Resume "
                                         "kept the model's own Batch, Seed)")
    ckpt = load_checkpoint(model)
    assert ckpt["step"] == 6 and ckpt["train_config"]["batch_size"] == 2
    assert ckpt["train_config"]["seed"] == 0
    assert boxes.errors == []

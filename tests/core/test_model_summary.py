"""The model summary both faces show (no Qt): ``micro3d info``'s picture of a model file and
the app's, one description of the checkpoint under both."""
import pytest
import torch

from micro3d_gui.core.checkpoint import describe_checkpoint, load_checkpoint
from micro3d_gui.core.recipe import get_recipe
from micro3d_gui.errors import CheckpointError
from micro3d_gui.paths import demo_model
from micro3d_gui.session.model import describe_model, model_summary


def test_the_app_summary_is_the_info_description_plus_what_the_panels_need():
    path = demo_model("fibres")
    ckpt = load_checkpoint(path)
    described = describe_model(path)
    assert described == {"file": str(path), **describe_checkpoint(ckpt)}
    summary = model_summary(path, "cpu")
    assert {k: summary[k] for k in described} == described  # the same fields, unchanged
    assert summary["path"] == str(path) and summary["step"] == ckpt["step"]
    assert summary["crop"] == ckpt["train_config"]["crop"]
    assert summary["train_config"] == ckpt["train_config"]
    assert summary["losses"] == [float(v) for v in ckpt["losses"]]
    assert min(summary["network_speed"].values()) > 0  # network calls timed on the CPU
    # Recipes take the summary as they take the checkpoint.
    recipe = get_recipe("paper").replace(harmonize=2)
    assert recipe.steps_for(summary) == recipe.steps_for(ckpt)
    assert recipe.network_calls(summary) == recipe.network_calls(ckpt)


def test_a_sampling_only_model_is_summarised_with_unknown_training(tmp_path):
    ckpt = torch.load(demo_model("fibres"), weights_only=True)
    slim = {k: ckpt[k] for k in ("format", "version", "model_config", "schedule_config",
                                 "num_phases", "ema", "model")}
    torch.save(slim, tmp_path / "slim.pt")
    summary = model_summary(tmp_path / "slim.pt", "cpu")
    assert summary["step"] == 0 and summary["crop"] == 0 and summary["train_seconds"] == 0.0
    assert summary["losses"] == [] and summary["fidelity"] == [] and summary["data"] == {}


def test_a_file_that_is_not_a_model_is_refused_naming_it(tmp_path):
    bad = tmp_path / "text.pt"
    bad.write_text("not a model")
    for read in (describe_model, model_summary):
        with pytest.raises(CheckpointError, match="text.pt"):
            read(bad)

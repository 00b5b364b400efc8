"""Self-conditioning (``UNetConfig.self_condition``): the network reads an earlier x0
estimate, training gives it its own first estimate on half of the batch, and the multi-plane
chain hands each plane the latest estimate of its slices."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from micro3d_gui.cli import main
from micro3d_gui.core.checkpoint import load_checkpoint, model_from_checkpoint
from micro3d_gui.core.diffusion.respace import respace
from micro3d_gui.core.diffusion.sampler import chain_progressive
from micro3d_gui.core.diffusion.schedule import Schedule, ScheduleConfig
from micro3d_gui.core.diffusion.settings import SamplerSettings
from micro3d_gui.core.diffusion.unet import UNet, UNetConfig
from micro3d_gui.core.planes import volume_to_slices
from micro3d_gui.core.plane_dataset import PlaneDataset
from micro3d_gui.core.training import prepare_trainer

SMALL = UNetConfig(in_channels=2, base_channels=8, channel_mults=(1, 2), num_res_blocks=1,
                   attention_levels=(False, False), num_heads=1, head_dim=8, cond_dim=16)


def _network(self_condition: bool) -> UNet:
    torch.manual_seed(0)
    net = UNet(replace(SMALL, self_condition=self_condition)).eval()
    torch.nn.init.normal_(net.out[-1].weight, std=0.1)  # zero-initialised: make it speak
    return net


def test_a_self_conditioned_network_reads_the_estimate_and_none_is_zeros():
    net = _network(True)
    assert net.input_conv.in_channels == 2 * SMALL.in_channels
    x = torch.randn(3, 2, 8, 8)
    t, c = torch.tensor([5, 50, 500]), torch.tensor([0, 1, 2])
    estimate = torch.rand(3, 2, 8, 8) * 2 - 1
    with torch.no_grad():
        none, zeros, given = (net(x, t, c, None, e) for e in
                              (None, torch.zeros_like(x), estimate))
    torch.testing.assert_close(none, zeros, rtol=0, atol=0)
    assert (given - none).abs().max() > 1e-3
    plain = _network(False)  # a plain network has no input for it and ignores it
    assert plain.input_conv.in_channels == SMALL.in_channels
    with torch.no_grad():
        torch.testing.assert_close(plain(x, t, c, None, estimate), plain(x, t, c),
                                   rtol=0, atol=0)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_the_x0_estimate_per_batch_item_is_the_per_step_one(prediction):
    sched = Schedule.from_config(ScheduleConfig(prediction=prediction))
    x_t, out = torch.randn(4, 1, 5, 5, dtype=torch.float64), torch.randn(4, 1, 5, 5,
                                                                          dtype=torch.float64)
    steps = torch.tensor([0, 17, 400, 999])
    per_item = sched.x0_from_output(x_t, steps, out)
    for row, i in enumerate(steps.tolist()):
        torch.testing.assert_close(per_item[row], sched.x0_from_output(x_t[row], i, out[row]))


class Recorder:
    """A denoiser that says what it was given: ``out = x / 2 + x0_self / 4`` (without an
    estimate ``x / 2``), recording each call's slices, plane label, estimate and output."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, t, c, *means, **given):
        est = given.get("x0_self")
        out = x / 2 if est is None else x / 2 + est / 4
        self.calls.append((int(c[0]), int(t[0]), x.clone(), est, out.clone(), "x0_self" in given))
        return out


#: The reverse step of each network call of :func:`_run`: 6 steps, the last 3 harmonized
#: once (two calls each).
STEP_OF_CALL = [0, 1, 2, 3, 3, 4, 4, 5, 5]


def _run(model, self_condition, max_batch=256):
    sched = respace(Schedule.from_config(ScheduleConfig()), 6)
    settings = SamplerSettings(harmonize=1, harmonize_fraction=0.5,
                               max_batch=max_batch)
    steps = list(chain_progressive(model, sched, (6, 4, 5), 2, 1, count=2, settings=settings,
                                   seed=3, self_condition=self_condition))
    return sched, steps


def test_each_planes_denoiser_is_given_the_latest_estimate_of_its_slices():
    model = Recorder()
    sched, steps = _run(model, True)
    # the chain's planes in turn, xy xz yz
    assert [c[0] for c in model.calls] == [step % 3 for step in STEP_OF_CALL]
    assert model.calls[0][3] is None  # nothing estimated yet
    i_of = {int(t): i for i, t in enumerate(sched.timestep_map)}
    previous_raw = None
    for n, (_, t, x, est, out, _) in enumerate(model.calls):
        step = STEP_OF_CALL[n]
        if n and STEP_OF_CALL[n - 1] != step:  # the previous step's estimate, made by another plane
            want = volume_to_slices(steps[step - 1].x0, steps[step].plane).clamp(-1, 1)
            torch.testing.assert_close(est, want)
        elif n:  # a harmonizing round: this plane's own estimate of the call before
            torch.testing.assert_close(est, previous_raw.clamp(-1, 1))
        previous_raw = sched.x0_from_output(x, i_of[t], out)


def test_the_estimate_follows_its_slices_through_chunked_calls():
    whole, chunked = Recorder(), Recorder()
    _, a = _run(whole, True)
    _, b = _run(chunked, True, max_batch=3)  # 2 volumes x 4-6 slices: 3-4 calls a pass
    assert len(chunked.calls) > len(whole.calls)
    torch.testing.assert_close(a[-1].x0, b[-1].x0)


def test_a_plain_network_is_never_given_an_estimate():
    model = Recorder()
    _run(model, False)
    assert not any(given for *_, given in model.calls)


def test_self_conditioned_training_saves_a_model_that_samples(lamella_dirs, tmp_path, capsys):
    """``micro3d train --self-condition`` -> a checkpoint whose network is self-conditioned
    (``weights_only`` opens it), and ``micro3d sample`` runs it; resuming a plain model with
    the option keeps the model's network and says so."""
    planes = ["--xy", str(lamella_dirs["xy"]), "--xz", str(lamella_dirs["xz"]),
              "--yz", str(lamella_dirs["yz"])]
    common = [*planes, "--preset", "tiny", "--crop", "16", "--batch", "4", "--no-fidelity"]
    model = tmp_path / "sc.pt"
    assert main(["train", *common, "--out", str(model), "--steps", "3",
                 "--self-condition"]) == 0
    ckpt = torch.load(model, weights_only=True)
    assert ckpt["model_config"]["self_condition"] is True
    net = model_from_checkpoint(load_checkpoint(model))
    assert net.input_conv.in_channels == 2 * net.config.in_channels
    out = tmp_path / "v.tif"
    assert main(["sample", str(model), "--shape", "8", "8", "8", "--out", str(out),
                 "--sampling-steps", "3", "--harmonize", "1", "--no-check"]) == 0
    assert out.exists()

    plain = tmp_path / "plain.pt"
    assert main(["train", *common, "--out", str(plain), "--steps", "2"]) == 0
    assert torch.load(plain, weights_only=True)["model_config"]["self_condition"] is False
    capsys.readouterr()
    assert main(["train", *common, "--out", str(plain), "--steps", "3", "--resume",
                 str(plain), "--self-condition"]) == 0
    assert "--self-condition False; ignored --self-condition True" in capsys.readouterr().err
    assert torch.load(plain, weights_only=True)["model_config"]["self_condition"] is False


def test_prepare_trainer_builds_the_self_conditioned_network():
    from micro3d_gui.core.planes import volume_plane_images
    from micro3d_gui.preprocess.synthetic import lamellae

    data = PlaneDataset(volume_plane_images(lamellae((16, 16, 32), axis=2, seed=0), step=2), 2)
    trainer, _ = prepare_trainer(data, "tiny", "cpu", steps=2, crop=16, batch_size=4,
                                 self_condition=True)
    assert trainer.model_config.self_condition and trainer.net.config.self_condition
    assert np.isfinite(trainer.train_step(2))

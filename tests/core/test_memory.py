"""Sampling in bounded memory: the estimate, the chunk it chooses, and the up-front refusal."""
import numpy as np
import pytest
import torch
from torch import nn

from micro3d_gui.cli import main
from micro3d_gui.core.checkpoint import load_checkpoint
from micro3d_gui.core.diffusion.sampler import run_to_end
from micro3d_gui.core.diffusion.settings import SamplerSettings
from micro3d_gui.core.diffusion.unet import UNet, UNetConfig, preset_config
from micro3d_gui.core.pipeline import pipeline_progressive
from micro3d_gui.core.memory import (
    RUNTIME_BYTES, VOLUME_COPIES, VolumeTooLarge, estimate_sampling, network_bytes_per_slice,
    plan_sampling,
)
from micro3d_gui.paths import demo_model


def test_counted_working_set_holds_the_skips_and_grows_with_the_area():
    cfg = preset_config("tiny", 1)
    # Independently: run the real network on one 32x32 slice and add up the skip maps the
    # U-Net keeps for its up path (every down stage's output and the input conv's).
    model = UNet(cfg).eval()
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel() * 4))
             for m in [model.input_conv, *model.down]]
    with torch.inference_mode():
        model(torch.zeros(1, 1, 32, 32), torch.zeros(1, dtype=torch.long),
              torch.zeros(1, dtype=torch.long))
    for h in hooks:
        h.remove()
    counted = network_bytes_per_slice(cfg, 32, 32)
    assert counted >= sum(sizes)
    assert counted < 20 * sum(sizes)  # a working set, not a runaway count
    assert network_bytes_per_slice(cfg, 64, 64) == pytest.approx(4 * counted, rel=0.02)


def test_estimate_grows_with_voxels_and_fits_the_budget():
    cfg = preset_config("tiny", 1)
    small = estimate_sampling(cfg, (32, 32, 32), budget=1 << 40)
    big = estimate_sampling(cfg, (64, 64, 64), budget=1 << 40)
    assert big.latent_bytes == 8 * small.latent_bytes == 8 * 4 * 32 ** 3
    assert big.slice_bytes == pytest.approx(4 * small.slice_bytes, rel=0.02)
    assert small.slices_per_call == 32  # a plane's slices, all at once, when memory allows
    budget = small.fixed_bytes + 5 * small.slice_bytes + 1
    tight = estimate_sampling(cfg, (32, 32, 32), budget=budget)
    assert tight.slices_per_call == 5 and tight.total_bytes <= budget
    guided = estimate_sampling(cfg, (32, 32, 32), budget=budget, branches=2)
    assert guided.slice_bytes == 2 * small.slice_bytes and guided.slices_per_call == 2
    both = estimate_sampling(cfg, (32, 32, 32), budget=budget, branches=3)  # w and w_f
    assert both.slice_bytes == 3 * small.slice_bytes and both.slices_per_call == 1
    assert small.fixed_bytes == (VOLUME_COPIES * small.latent_bytes + small.weights_bytes
                                 + RUNTIME_BYTES)


def test_a_small_budget_bounds_every_network_batch_and_keeps_the_sample(one_thread):
    # one thread: each network call whole (with more, the slice workers split a call's
    # slices, core/slice_workers.py, and the hook below would see the parts)
    ckpt = load_checkpoint(demo_model("fibres"))
    cfg = UNetConfig.from_dict(ckpt["model_config"])
    shape = (16, 8, 16)
    est = estimate_sampling(cfg, shape, budget=1 << 40)
    budget = est.fixed_bytes + 3 * est.slice_bytes
    batches = []

    def record(module, args):
        if isinstance(module, UNet):
            batches.append(args[0].shape[0])

    settings = SamplerSettings(harmonize=0)
    hook = nn.modules.module.register_module_forward_pre_hook(record)
    try:
        low = run_to_end(pipeline_progressive(ckpt, shape, 1, 3, settings, seed=2,
                                              memory_budget=budget))
    finally:
        hook.remove()
    # no call (the layout probe's included) saw more than the 3 slices the budget allows;
    # a plane's 16, 8 or 16 slices went through in ceil(S / 3) calls per pass
    assert max(batches) == 3
    assert len(batches) >= 6 + 3 + 6
    high = run_to_end(pipeline_progressive(ckpt, shape, 1, 3, settings, seed=2,
                                           memory_budget=1 << 40))
    # the chunking changes the batches the network sees, not the sample
    torch.testing.assert_close(low.x0, high.x0, atol=1e-4, rtol=0)


def test_a_box_beyond_memory_is_refused_before_allocating(tmp_path, capsys):
    ckpt = load_checkpoint(demo_model("fibres"))
    cfg = UNetConfig.from_dict(ckpt["model_config"])
    with pytest.raises(VolumeTooLarge, match=r"needs about [\d.]+ GiB .*has [\d.]+ GiB free"):
        plan_sampling(cfg, (8192, 8192, 8192))
    out = tmp_path / "v.tif"
    # 8192^3 float32 copies are terabytes: allocating would fail with a traceback, not exit 2
    assert main(["sample", str(demo_model("fibres")), "--shape", "8192", "8192", "8192",
                 "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "--shape 8192 8192 8192: a 8192^3 volume needs about" in err
    assert "Traceback" not in err and not out.exists()
    assert main(["sample", str(demo_model("fibres")), "--shape", "8", "8", "8", "--out",
                 str(out), "--memory-budget", "-1"]) == 2
    assert "--memory-budget" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_estimate_covers_the_measured_gpu_working_set():
    cfg = preset_config("small", 1)
    model = UNet(cfg).cuda().eval()
    x = torch.randn(16, 1, 128, 128, device="cuda")
    t = torch.zeros(16, dtype=torch.long, device="cuda")
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        model(x, t, t)
    used = torch.cuda.max_memory_allocated() - base
    est = estimate_sampling(cfg, (128, 128, 128), budget=1 << 40, device="cuda")
    assert used <= 16 * est.slice_bytes
    assert used >= 16 * est.slice_bytes / 10
    assert np.isfinite(used)


def test_live_preview_of_a_large_box_decodes_every_nth_voxel():
    from micro3d_gui.core.encoding import decode_preview, decode_volume, preview_stride

    x = torch.randn(2, 3, 9, 6, 8)
    np.testing.assert_array_equal(decode_preview(x, 3, max_voxels=9 * 6 * 8),
                                  decode_volume(x, 3)[0])  # small enough: every voxel
    assert preview_stride((9, 6, 8), 100) == 2  # 5 * 3 * 4 = 60 voxels
    np.testing.assert_array_equal(decode_preview(x, 3, max_voxels=100),
                                  decode_volume(x, 3)[0, ::2, ::2, ::2])
    assert preview_stride((256, 256, 256)) == 2 and preview_stride((512,) * 3) == 4


@pytest.mark.parametrize("pooled", [dict(consensus_steps=2), dict(vote_steps=2)])
def test_consensus_and_vote_steps_count_their_extra_copies_of_the_latent(pooled):
    cfg = preset_config("tiny", 1)
    settings = SamplerSettings(**pooled)
    plain = estimate_sampling(cfg, (32, 32, 32), budget=1 << 34)
    more = estimate_sampling(cfg, (32, 32, 32), budget=1 << 34,
                             extra_copies=settings.extra_volume_copies)
    assert SamplerSettings().extra_volume_copies == 0
    assert more.fixed_bytes - plain.fixed_bytes == \
        settings.extra_volume_copies * plain.latent_bytes > 0

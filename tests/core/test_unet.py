from dataclasses import replace

import pytest
import torch

from micro3d_gui.core.diffusion.unet import (
    PRESETS, ResBlock, UNet, count_parameters, flops_per_slice, fraction_input, preset_config,
)


def tiny(channels=1):
    return UNet(preset_config("tiny", channels)).eval()


def randomize(model):
    """Zero-initialised output layers make an untrained net output 0; perturb them."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model


@pytest.mark.parametrize("channels,size", [(1, (32, 32)), (3, (16, 40)), (1, (8, 64))])
def test_output_shape_matches_input_on_non_square_images(channels, size):
    model = tiny(channels)
    x = torch.randn(2, channels, *size)
    t = torch.tensor([0, 999])
    c = torch.tensor([0, 3])
    assert model(x, t, c).shape == x.shape


def test_sides_must_divide_by_size_multiple():
    model = tiny()
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.randn(1, 1, 20, 16), torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long))


def test_condition_and_time_change_the_output():
    model = randomize(tiny())
    x = torch.randn(1, 1, 16, 16)
    t = torch.tensor([500])
    outs = [model(x, t, torch.tensor([c])) for c in range(4)]
    assert all(not torch.allclose(outs[0], o) for o in outs[1:])
    assert not torch.allclose(model(x, torch.tensor([10]), torch.tensor([0])), outs[0])


@pytest.mark.parametrize("scale_shift", [False, True])
def test_a_block_of_one_channel_per_group_sees_the_embedding_only_as_scale_and_shift(scale_shift):
    """16 channels make 16 GroupNorm groups of one channel: an embedding added before the
    norm is a per-channel constant the norm subtracts, so the paper's block cannot see t or
    the plane; the scale-shift block must."""
    torch.manual_seed(0)
    block = randomize(ResBlock(16, 16, temb=32, dropout=0.0, scale_shift=scale_shift)).eval()
    x = torch.randn(2, 16, 8, 8)
    e1, e2 = torch.randn(2, 32), torch.randn(2, 32)
    same = torch.allclose(block(x, e1, None), block(x, e2, None), atol=1e-5)
    assert same is not scale_shift


def test_the_cpu_presets_use_scale_shift_norm_and_old_configs_do_not():
    assert PRESETS["tiny"].scale_shift_norm and PRESETS["small"].scale_shift_norm
    old = preset_config("tiny", 1).to_dict()
    del old["scale_shift_norm"]  # a checkpoint saved before the field existed
    from micro3d_gui.core.checkpoint import _check_model_config
    assert _check_model_config(old, "old.pt").scale_shift_norm is False


def test_the_cpu_presets_are_told_fractions_and_old_configs_load_without_it():
    assert PRESETS["tiny"].fraction_conditioning and PRESETS["small"].fraction_conditioning
    assert not PRESETS["paper"].fraction_conditioning  # the paper's network as published
    old = preset_config("tiny", 1).to_dict()
    del old["fraction_conditioning"]  # a checkpoint saved before the field existed
    from micro3d_gui.core.checkpoint import _check_model_config
    assert _check_model_config(old, "old.pt").fraction_conditioning is False


def test_the_fraction_condition_changes_the_output_and_unknown_is_its_own_input():
    model = randomize(UNet(preset_config("tiny", 3)))
    x = torch.randn(2, 3, 16, 16)
    t, c = torch.tensor([900, 900]), torch.tensor([0, 0])
    with torch.no_grad():
        low = model(x, t, c, torch.tensor([-0.8, -0.2, 0.0]))  # [C]: the same for each item
        high = model(x, t, c, torch.tensor([[0.4, -0.6, -0.8]] * 2))
        unknown = model(x, t, c)
        nan_rows = model(x, t, c, torch.full((2, 3), float("nan")))
        mixed = model(x, t, c, torch.tensor([[-0.8, -0.2, 0.0], [float("nan")] * 3]))
    assert not torch.allclose(low, high, atol=1e-4)
    assert not torch.allclose(low, unknown, atol=1e-4)
    assert torch.equal(unknown, nan_rows)
    assert torch.allclose(mixed[0], low[0], atol=1e-6) and torch.allclose(mixed[1], unknown[1], atol=1e-6)
    assert fraction_input(None, x).tolist() == [[0.0, 0.0, 0.0, 1.0]] * 2
    assert fraction_input(torch.tensor([0.5, -1.0, 0.0]), x).tolist() == [[0.5, -1.0, 0.0, 0.0]] * 2


def test_a_network_without_the_fraction_condition_ignores_it():
    model = randomize(UNet(replace(preset_config("tiny", 1), fraction_conditioning=False)))
    x, t, c = torch.randn(1, 1, 16, 16), torch.tensor([500]), torch.tensor([1])
    with torch.no_grad():
        assert torch.equal(model(x, t, c), model(x, t, c, torch.tensor([[0.3]])))
    assert not hasattr(model, "fraction_embed")


def test_periodic_padding_makes_the_net_shift_equivariant():
    model = randomize(tiny())
    model.set_periodic(True)
    x = torch.randn(1, 1, 32, 32)
    t, c = torch.tensor([300]), torch.tensor([1])
    shift = 8  # multiple of 2^(levels-1), so down/up-sampling grids line up
    with torch.no_grad():
        a = torch.roll(model(x, t, c), (shift, -shift), (-2, -1))
        b = model(torch.roll(x, (shift, -shift), (-2, -1)), t, c)
    assert torch.allclose(a, b, atol=1e-4)
    model.set_periodic(False)
    with torch.no_grad():
        a = torch.roll(model(x, t, c), (shift, -shift), (-2, -1))
        b = model(torch.roll(x, (shift, -shift), (-2, -1)), t, c)
    assert not torch.allclose(a, b, atol=1e-4)  # zero padding sees the border


def test_presets_fit_their_compute_budgets():
    assert flops_per_slice(PRESETS["tiny"]) <= 0.5e9
    assert flops_per_slice(PRESETS["small"]) <= 3e9
    paper = PRESETS["paper"]
    assert (paper.base_channels, paper.channel_mults, paper.num_res_blocks) == (128, (1, 2, 4, 8), 3)
    assert paper.attention_levels == (False, True, True, True)
    assert (paper.num_heads, paper.head_dim, paper.cond_dim) == (8, 64, 512)
    assert count_parameters(UNet(PRESETS["tiny"])) < count_parameters(UNet(PRESETS["small"]))


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="tiny"):
        preset_config("huge", 1)


def test_config_round_trips_through_a_plain_dict():
    cfg = preset_config("small", 3)
    d = cfg.to_dict()
    assert all(isinstance(v, (int, float, str, bool, list)) for v in d.values())
    assert type(cfg).from_dict(d) == cfg


def test_the_lean_preset_is_the_tiny_network_on_2x2_pixel_patches():
    """A patched network is its unpatched twin on the space-to-depth rearranged image:
    the same weights give pixel_shuffle(twin(pixel_unshuffle(x)))."""
    assert preset_config("lean", 2).size_multiple == 16
    cfg = replace(preset_config("lean", 2), fraction_conditioning=False)
    lean = randomize(UNet(cfg)).eval()
    twin = UNet(replace(cfg, patch=1, in_channels=8)).eval()
    twin.load_state_dict(lean.state_dict())
    x = torch.randn(2, 2, 32, 48)
    t, c = torch.tensor([10, 700]), torch.tensor([0, 2])
    shuffle, unshuffle = torch.nn.functional.pixel_shuffle, torch.nn.functional.pixel_unshuffle
    with torch.no_grad():
        got = lean(x, t, c)
        want = shuffle(twin(unshuffle(x, 2), t, c), 2)
    assert got.shape == x.shape
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="multiples of 16"):
        lean(torch.randn(1, 2, 24, 32), t[:1], c[:1])


def test_the_lean_preset_costs_a_quarter_of_the_tiny_one():
    tiny_flops = flops_per_slice(preset_config("tiny", 1))
    lean_flops = flops_per_slice(preset_config("lean", 1))
    assert 0.2 < lean_flops / tiny_flops < 0.3

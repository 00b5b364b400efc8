"""The fraction condition a slice is told while sampling, against its closed form."""
import numpy as np
import pytest
import torch

from micro3d_gui.core.diffusion.fraction_condition import (UNKNOWN_SPREAD, crop_mean_spread,
                                                           plane_spreads, slice_condition)
from micro3d_gui.core.diffusion.sampler import chain_progressive
from micro3d_gui.core.diffusion.settings import SamplerSettings
from micro3d_gui.core.diffusion.schedule import Schedule, ScheduleConfig
from micro3d_gui.core.diffusion.respace import respace
from micro3d_gui.core.planes import NULL_LABEL


def constant_slices(means, side=8):
    """Slices ``[B, C, side, side]`` each of one value per channel: ``means [B, C]``."""
    m = torch.as_tensor(means, dtype=torch.float32)
    return m[:, :, None, None].expand(*m.shape, side, side).clone()


def test_noiseless_slices_are_told_their_own_mean_centred_on_the_target_per_volume():
    # two volumes of three slices: each volume's told means average to the target
    own = torch.tensor([[0.2], [0.6], [1.0], [-1.0], [-0.6], [-0.2]])
    x_t = constant_slices(own) * np.sqrt(1 - 1e-12)  # abar -> 1: no noise at all
    told = slice_condition(x_t, 1 - 1e-12, torch.tensor([-0.5]), [1.0], groups=2)
    want = torch.cat([own[:3] - own[:3].mean() - 0.5, own[3:] - own[3:].mean() - 0.5])
    assert torch.allclose(told, want, atol=1e-5)


def test_the_weight_is_the_posterior_one():
    # noise variance (1 - abar) / (abar N) equal to the spread squared: half the way
    side, s = 8, 0.3
    abar = 1 / (1 + s ** 2 * side * side)  # (1 - abar) / (abar * 64) = s^2
    own = torch.tensor([[0.5, -0.1], [-0.5, 0.3]])
    x_t = constant_slices(own, side) * np.sqrt(abar)  # the mean exactly, noise left out
    told = slice_condition(x_t, abar, torch.tensor([0.0, 0.2]), [s, s])
    assert torch.allclose(told, torch.tensor([0.0, 0.2]) + 0.5 * (own - own.mean(0)),
                          atol=1e-5)
    # pure noise: every slice told the target
    loud = slice_condition(torch.randn(4, 2, side, side), 1e-9, torch.tensor([0.0, 0.2]),
                           [s, s])
    assert torch.allclose(loud, torch.tensor([[0.0, 0.2]] * 4), atol=1e-3)


def test_it_is_the_posterior_mean_of_a_slices_fraction_given_the_noisy_slice():
    # slice means drawn from N(mu, s^2), then forward-noised: the condition's error is the
    # posterior's variance s^2 v / (s^2 + v) and unbiased, far below the raw estimate's v
    gen = torch.Generator().manual_seed(0)
    b, side, s, mu, abar = 20000, 8, 0.25, -0.4, 0.02
    own = mu + s * torch.randn(b, 1, generator=gen)
    x0 = constant_slices(own, side)
    x_t = np.sqrt(abar) * x0 + np.sqrt(1 - abar) * torch.randn(x0.shape, generator=gen)
    told = slice_condition(x_t, abar, torch.tensor([mu]), [s])
    v = (1 - abar) / (abar * side * side)
    err = told - own
    assert float(err.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(err.var()) == pytest.approx(s ** 2 * v / (s ** 2 + v), rel=0.05)
    raw = x_t.mean(dim=(2, 3)) / np.sqrt(abar) - own
    assert float(raw.var()) == pytest.approx(v, rel=0.05)


def test_crop_spread_and_its_fallback():
    halves = torch.cat([-torch.ones(1, 4, 8), torch.ones(1, 4, 8)], dim=1)  # [1, 8, 8]
    assert crop_mean_spread([halves], 4) == pytest.approx([np.sqrt(4 / 3)])  # -1,-1,1,1
    assert crop_mean_spread([halves], 8) == [UNKNOWN_SPREAD]  # one crop: no spread measured
    summary = {"xy": {"crop_mean_spread": [0.2]}, "xz": {"images": 3}}
    assert plane_spreads(summary, ("xy", "xz", "yz"), 1) == {
        "xy": [0.2], "xz": [UNKNOWN_SPREAD], "yz": [UNKNOWN_SPREAD]}


class Recorder(torch.nn.Module):
    """eps = 0 (x0 = x_t / sqrt(abar)); keeps the labels and fraction condition of each call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, t, c, means=None):
        self.calls.append((c, means))
        return torch.zeros_like(x)


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_the_sampler_tells_every_slice_and_each_volume_the_target(guidance):
    schedule = respace(Schedule.from_config(ScheduleConfig()), 6)
    settings = SamplerSettings(harmonize=0, guidance=guidance, max_batch=8,
                               x0_projection="none", anchor_fractions=False,
                               anchor_decoded=False, match_variance=False)
    spread = {"xy": [0.3], "xz": [0.3], "yz": [1.0]}
    net, first_call = Recorder(), []
    for step in chain_progressive(net, schedule, (4, 6, 8), 2, 1, count=2,
                                  settings=settings, seed=0, target_fractions=[0.7, 0.3],
                                  fraction_spread=spread):
        first_call.append(len(net.calls))
    # the second xy step (the 4th; moderate noise): 2 volumes x 4 slices, in chunks
    calls = net.calls[first_call[2]:first_call[3]]
    told = []
    for c, means in calls:
        cond = c != NULL_LABEL
        if guidance != 1.0:  # the unconditional half is told the same
            assert torch.equal(means[cond], means[~cond])
        told.append(means[cond])
    told = torch.cat(told)
    assert told.shape == (8, 1)
    assert told.std() > 0.01  # slices are told different fractions...
    assert torch.allclose(told.reshape(2, 4).mean(dim=1), torch.tensor([-0.4, -0.4]),
                          atol=1e-5)  # ... around the target 2 * 0.3 - 1, per volume
    # a network without the option is called with three arguments, as before
    plain = Recorder()
    list(chain_progressive(plain, schedule, (4, 6, 8), 2, 1, settings=settings, seed=0))
    assert all(means is None for _, means in plain.calls)


def test_fraction_guidance_composes_with_plane_guidance_in_one_batch():
    """eps = e(c, m) + (w - 1)(e(c, m) - e(null, m)) + (w_f - 1)(e(c, m) - e(c, unknown)):
    with a network that adds 1 for a known plane and 10 for known fractions, every step
    with w = 2, w_f = 3 is that of a network that always answers 11 + 1 + 2 * 10 = 32."""
    schedule = respace(Schedule.from_config(ScheduleConfig()), 4)
    seen = []

    def net(x, t, c, means=None):
        seen.append((c.clone(), None if means is None else means.clone()))
        known = torch.isfinite(means).all(dim=1).to(x.dtype)
        value = (c != NULL_LABEL).to(x.dtype) + 10 * known
        return value[:, None, None, None].expand_as(x).clone()

    def constant(x, t, c, means=None):
        return torch.full_like(x, 32.0)

    common = dict(harmonize=1, gamma=0.5, harmonize_fraction=1.0, x0_projection="none",
                  anchor_fractions=False, anchor_decoded=False, match_variance=False)
    spread = {p: [0.3] for p in ("xy", "xz", "yz")}
    run = dict(seed=0, target_fractions=[0.7, 0.3], fraction_spread=spread)
    guided = SamplerSettings(guidance=2.0, fraction_guidance=3.0, **common)
    steps = list(chain_progressive(net, schedule, (3, 4, 5), 2, 1, 1, guided, **run))
    plain = list(chain_progressive(constant, schedule, (3, 4, 5), 2, 1, 1,
                                   SamplerSettings(**common), **run))
    for a, b in zip(steps, plain):
        assert torch.allclose(a.x0, b.x0)
    # three branches per call, the cost counted: 4 steps x (n_h + 1) calls, each of 3
    assert len(seen) == 8 and steps[-1].total_calls == steps[-1].calls == 24
    c, means = seen[0]  # the first xy step: 3 slices per branch
    assert c.tolist() == [0] * 3 + [NULL_LABEL] * 3 + [0] * 3
    assert torch.isfinite(means[:6]).all() and torch.isnan(means[6:]).all()
    assert torch.equal(means[:3], means[3:6])


def test_fraction_guidance_costs_nothing_without_a_fraction_condition():
    settings = SamplerSettings(harmonize=0, fraction_guidance=3.0)
    net = Recorder()
    steps = list(chain_progressive(net, respace(Schedule.from_config(ScheduleConfig()), 3),
                                   (2, 2, 2), 2, 1, settings=settings, seed=0))
    assert [c.shape[0] for c, _ in net.calls] == [2, 2, 2]  # one branch: the conditional
    assert steps[-1].total_calls == settings.network_calls(3, False) == 3
    assert settings.network_calls(3) == 6  # with one, it doubles

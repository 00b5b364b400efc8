"""The multi-plane sampler against exact denoisers (no network)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from micro3d_gui.core.diffusion.respace import respace
from micro3d_gui.core.diffusion.settings import SamplerSettings
from micro3d_gui.core.diffusion.sampler import (
    SamplingCancelled, chain_progressive, plane_vote, project_x0, run_to_end,
)
from micro3d_gui.core.diffusion.schedule import Schedule, ScheduleConfig
from micro3d_gui.core.planes import NULL_LABEL

SCHED = Schedule.from_config(ScheduleConfig())


def every_step(**overrides) -> SamplerSettings:
    """Settings that harmonize at every step with the paper's gamma 0.5 (the defaults are
    the ``fast`` recipe's), with ``overrides``."""
    return SamplerSettings(**{**dict(gamma=0.5, harmonize_fraction=1.0,
                                     harmonize_late=False), **overrides})
LABEL_PLANE = {0: "xy", 1: "xz", 2: "yz"}


def slices_by_loops(v: np.ndarray, plane: str) -> np.ndarray:
    """Independent of the planes module: v [C, Z, Y, X] -> [S, C, rows, cols] by index loops."""
    c, z, y, x = v.shape
    if plane == "xy":
        return np.stack([v[:, k, :, :] for k in range(z)])
    if plane == "xz":
        return np.stack([v[:, :, k, :] for k in range(y)])
    return np.stack([v[:, :, :, k] for k in range(x)])


class Oracle:
    """Exact eps for the single clean volume v: eps = (x_t - sqrt(abar_t) v) / sqrt(1 - abar_t)."""

    def __init__(self, v: np.ndarray, pad_mode: str | None = None):
        self.v = v
        self.pad_mode = pad_mode
        self.calls = []

    def __call__(self, x, t, c):
        plane = LABEL_PLANE[int(c[0])]
        assert (c == c[0]).all() and (t == t[0]).all()
        ref = torch.from_numpy(slices_by_loops(self.v, plane)).to(x.dtype)
        self.calls.append((plane, int(t[0]), x.shape[0]))
        if self.pad_mode:  # the sampler pads odd sizes; pad the truth the same way
            ph, pw = x.shape[-2] - ref.shape[-2], x.shape[-1] - ref.shape[-1]
            ref = F.pad(ref, (0, pw, 0, ph), mode=self.pad_mode)
        # chunks of the batch: find which slices these are from the call's position
        ref = ref[self._offset(x.shape[0], ref.shape[0])]
        abar = SCHED.alphas_cumprod[int(t[0])]
        return (x - np.sqrt(abar) * ref) / np.sqrt(1 - abar)

    def _offset(self, b, s):
        # Chunks of one pass over a plane's slices come in order; a new pass starts at 0.
        start = getattr(self, "_cursor", 0)
        if start >= s or getattr(self, "_s", None) != s:
            start = 0
        self._cursor, self._s = start + b, s
        return slice(start, start + b)


@pytest.mark.parametrize("shape", [(4, 6, 8), (7, 5, 3), (2, 9, 4)])
@pytest.mark.parametrize("harmonize,steps", [(0, 1000), (2, 1000), (0, 37), (3, 20)])
def test_oracle_returns_the_volume(shape, harmonize, steps):
    rng = np.random.default_rng(sum(shape))
    v = rng.choice([-1.0, 1.0], size=(1, *shape))
    oracle = Oracle(v)
    sched = respace(SCHED, steps)
    settings = every_step(harmonize=harmonize)
    estimates = list(chain_progressive(oracle, sched, shape, 2, 1, 1, settings, seed=3))
    assert len(estimates) == steps
    assert [e.plane for e in estimates[:4]] == ["xy", "xz", "yz", "xy"][: min(4, steps)]
    for e in estimates:  # the exact denoiser's x0 estimate is v at every step
        np.testing.assert_allclose(e.x0[0].numpy(), v, atol=1e-3)
    np.testing.assert_array_equal(estimates[-1].labels()[0].numpy(), (v[0] > 0).astype(np.uint8))
    # the network saw the original time steps of the respaced schedule, n_h + 1 calls per step
    assert [t for _, t, _ in oracle.calls[:: harmonize + 1]] == list(sched.timestep_map[::-1])
    assert len(oracle.calls) == steps * (harmonize + 1)


def test_oracle_multichannel_many_volumes_chunked_and_padded():
    rng = np.random.default_rng(5)
    shape = (5, 6, 7)
    v = rng.choice([-1.0, 1.0], size=(3, *shape))
    vols = np.stack([v, -v])  # two volumes sampled at once

    class TwoVolumeOracle(Oracle):
        def __call__(self, x, t, c):
            plane = LABEL_PLANE[int(c[0])]
            ref = np.concatenate([slices_by_loops(vols[0], plane), slices_by_loops(vols[1], plane)])
            ref = F.pad(torch.from_numpy(ref), (0, x.shape[-1] - ref.shape[-1], 0, x.shape[-2] - ref.shape[-2]), mode="replicate")
            ref = ref[self._offset(x.shape[0], ref.shape[0])]
            self.calls.append((plane, int(t[0]), tuple(x.shape)))
            abar = SCHED.alphas_cumprod[int(t[0])]
            return (x - np.sqrt(abar) * ref) / np.sqrt(1 - abar)

    oracle = TwoVolumeOracle(None)
    settings = every_step(harmonize=1, max_batch=4)
    last = run_to_end(chain_progressive(oracle, respace(SCHED, 12), shape, 3, 3, 2, settings,
                                        seed=0, size_multiple=4))
    np.testing.assert_allclose(last.x0.numpy(), vols, atol=1e-3)
    assert all(s[0] <= 4 and s[-2] % 4 == 0 and s[-1] % 4 == 0 for _, _, s in oracle.calls)
    assert last.labels().shape == (2, *shape)


@pytest.mark.parametrize("harmonize,gamma", [(0, 0.5), (2, 1.0), (2, 0.0)])
def test_gaussian_data_keeps_its_variance(harmonize, gamma):
    """Exact eps for x0 ~ N(0, s^2 I): the chain ends at variance s^2.

    Harmonizing alone (gamma = 1: denoise + renoise) keeps the marginal; so does gamma = 0.
    (0 < gamma < 1 blends two partly independent samples and so shrinks the variance:
    a property of Eq. 17 itself, not tested here.)
    """
    s2 = 0.25

    def eps(x, t, c):
        abar = SCHED.alphas_cumprod[int(t[0])]
        return np.sqrt(1 - abar) * x / (abar * s2 + 1 - abar)

    last = run_to_end(chain_progressive(eps, respace(SCHED, 200), (16, 16, 16), 2, 1, 4,
                                        every_step(harmonize=harmonize, gamma=gamma,
                                                   x0_projection="none"),
                                        seed=1))
    assert last.x0.var().item() == pytest.approx(s2, rel=0.1)


def test_guidance_batches_conditional_and_null_together():
    seen = []

    def model(x, t, c):
        seen.append(c.tolist())
        # conditional predicts 1, unconditional 0: guided eps is w exactly
        return (c != NULL_LABEL).to(x.dtype)[:, None, None, None].expand_as(x).clone()

    w = 3.0
    sched = respace(SCHED, 3)
    guided = list(chain_progressive(model, sched, (2, 2, 2), 2, 1, 1,
                                    SamplerSettings(harmonize=0, guidance=w), seed=0))
    assert len(seen) == 3  # one call per step: both halves in one batch
    assert seen[0] == [0, 0, NULL_LABEL, NULL_LABEL]
    # eps_hat = w * 1 + (1 - w) * 0 = w: the same as an unguided model that predicts w
    plain = list(chain_progressive(lambda x, t, c: torch.full_like(x, w), sched, (2, 2, 2), 2,
                                   1, 1, SamplerSettings(harmonize=0), seed=0))
    for a, b in zip(guided, plain):
        assert torch.allclose(a.x0, b.x0)


def test_should_stop_cancels_within_one_call():
    calls = []

    def model(x, t, c):
        calls.append(1)
        return torch.zeros_like(x)

    stop_after = 5
    gen = chain_progressive(model, SCHED, (8, 8, 8), 2, 1, 1, every_step(harmonize=4),
                            seed=0, should_stop=lambda: len(calls) >= stop_after)
    with pytest.raises(SamplingCancelled):
        for _ in gen:
            pass
    assert len(calls) == stop_after


def test_callback_can_cancel():
    steps = []
    with pytest.raises(SamplingCancelled):
        run_to_end(chain_progressive(lambda x, t, c: torch.zeros_like(x), respace(SCHED, 10),
                                     (4, 4, 4), 2, 1, 1, SamplerSettings(harmonize=0), seed=0),
                   callback=lambda s: steps.append(s.step) or s.step == 3)
    assert steps == [1, 2, 3]


def test_seed_makes_runs_reproducible():
    def run(seed):
        return run_to_end(chain_progressive(lambda x, t, c: 0.1 * x, respace(SCHED, 10),
                                            (4, 4, 4), 2, 1, 1, every_step(harmonize=1),
                                            seed=seed)).x0
    assert torch.equal(run(7), run(7)) and not torch.equal(run(7), run(8))


def test_x0_projections():
    x0 = torch.tensor([[[[0.2, -0.1], [0.05, -0.3]]], [[[3.0, -2.0], [1.5, -0.5]]]])
    assert torch.equal(project_x0(x0, "none"), x0)
    assert project_x0(x0, "clip").abs().max() == 1.0
    assert torch.equal(project_x0(x0, "clip")[0], x0[0])
    given = x0.clone()
    rms = project_x0(x0, "rms")
    assert torch.equal(x0, given)  # a new tensor: the caller's estimate is left alone
    assert torch.equal(torch.sign(rms), torch.sign(x0))  # the phases are kept
    assert rms.abs().max() <= 1.0
    # a uniformly shrunken estimate of +-1 data is restored exactly
    pattern = torch.tensor([[[[1.0, -1.0], [-1.0, 1.0]]]])
    assert torch.allclose(project_x0(0.3 * pattern, "rms"), pattern)
    with pytest.raises(ValueError):
        SamplerSettings(x0_projection="magic")


def test_anchor_sets_each_volumes_channel_means_and_keeps_structure():
    from micro3d_gui.core.diffusion.sampler import _anchor_mean

    gen = torch.Generator().manual_seed(0)
    count, slices = 3, 5
    x0 = torch.randn(count * slices, 2, 4, 6, generator=gen) + 0.7
    target = torch.tensor([-0.4, 0.2])
    out = _anchor_mean(x0, target, count)
    per_volume = out.reshape(count, slices, 2, 4, 6).mean(dim=(1, 3, 4))
    torch.testing.assert_close(per_volume, target.expand(count, 2))
    # only a constant per volume and channel moved: differences between voxels are kept
    diff = (out - x0).reshape(count, slices, 2, 4, 6)
    torch.testing.assert_close(diff, diff[:, :1, :, :1, :1].expand_as(diff))


def test_blend_is_eq17_and_variance_matching_restores_the_plain_rms():
    from micro3d_gui.core.diffusion.sampler import _blend

    gen = torch.Generator().manual_seed(1)
    h, plain = torch.randn(2, 6, 1, 8, 8, generator=gen).unbind(0)
    torch.testing.assert_close(_blend(h, plain, 0.3, False), 0.3 * h + 0.7 * plain)
    out = _blend(h, plain, 0.3, True)
    rms = lambda a: a.pow(2).mean(dim=(1, 2, 3)).sqrt()  # noqa: E731
    torch.testing.assert_close(rms(out), rms(plain))
    # independent noises: the plain blend has lost variance, by 0.3^2 + 0.7^2 on average
    assert rms(_blend(h, plain, 0.3, False)).pow(2).mean() == pytest.approx(0.58, abs=0.12)


def test_anchored_sampler_keeps_the_oracle_volume_and_needs_no_target():
    rng = np.random.default_rng(2)
    v = rng.choice([-1.0, 1.0], size=(1, 4, 5, 6), p=[0.7, 0.3])
    settings = every_step(harmonize=1)
    last = run_to_end(chain_progressive(Oracle(v), respace(SCHED, 12), (4, 5, 6), 2, 1, 1,
                                        settings, seed=0, target_mean=[float(v.mean())]))
    np.testing.assert_allclose(last.x0[0].numpy(), v, atol=1e-3)


@pytest.mark.parametrize("late", [False, True])
def test_harmonizing_only_a_fraction_of_the_steps_calls_the_network_there(late):
    """n_h = 3 on 40 % of 10 steps: 4 calls at the 4 noisiest steps (or, late, the 4
    least noisy), 1 at the others; the count is what network_calls() says."""
    ts = []

    def model(x, t, c):
        ts.append(int(t[0]))
        return torch.zeros_like(x)

    settings = every_step(harmonize=3, harmonize_fraction=0.4, harmonize_late=late)
    sched = respace(SCHED, 10)
    steps = list(chain_progressive(model, sched, (4, 4, 4), 2, 1, 1, settings, seed=0))
    per_step = [ts.count(int(t)) for t in sched.timestep_map[::-1]]  # noisiest first
    assert per_step == ([1] * 6 + [4] * 4 if late else [4] * 4 + [1] * 6)
    assert len(ts) == settings.network_calls(10) == 22
    # each step reports the calls made so far, as counted at the network
    assert [(s.calls, s.total_calls) for s in steps] == [
        (int(c), 22) for c in np.cumsum(per_step)]


def test_consensus_steps_step_from_the_mean_of_the_three_planes_estimates():
    """A network that answers a constant per plane (xy 1, xz 2, yz 3): with consensus at
    the last 2 of 4 steps, those steps step as a network answering the mean 2 does (x0 is
    linear in eps for one latent); every plane is asked there, and network_calls counts
    it. The exact denoiser's volume stays the volume."""
    seen = []

    def model(x, t, c):
        seen.append((int(t[0]), int(c[0])))
        return (c.to(x.dtype) + 1)[:, None, None, None].expand_as(x).clone()

    plain = dict(harmonize=0, x0_projection="none", anchor_fractions=False,
                 anchor_decoded=False)
    sched = respace(SCHED, 4)
    settings = SamplerSettings(consensus_steps=2, **plain)
    got = list(chain_progressive(model, sched, (3, 4, 5), 2, 1, 1, settings, seed=0))
    assert len(seen) == settings.network_calls(4) == 1 + 1 + 3 + 3
    assert sorted(c for t, c in seen if t == sched.timestep_map[0]) == [0, 1, 2]
    # the first two steps as the plane network, the last two as a constant 2
    calls = iter([1.0, 2.0, 2.0, 2.0])  # step 0 is xy (1), step 1 is xz (2)
    ref = list(chain_progressive(lambda x, t, c: torch.full_like(x, next(calls)), sched,
                                 (3, 4, 5), 2, 1, 1, SamplerSettings(**plain), seed=0))
    for a, b in zip(got, ref):
        torch.testing.assert_close(a.x0, b.x0)
    v = np.random.default_rng(0).choice([-1.0, 1.0], size=(1, 3, 4, 5))
    exact = run_to_end(chain_progressive(Oracle(v), respace(SCHED, 6), (3, 4, 5), 2, 1, 1,
                                         every_step(harmonize=4, consensus_steps=6), seed=1))
    np.testing.assert_allclose(exact.x0[0].numpy(), v, atol=1e-3)


@pytest.mark.parametrize("phases", [2, 3])
def test_the_plane_vote_takes_the_other_two_planes_where_they_outvote_the_stepping_one(phases):
    """Voxel by voxel, independent of the sampler's decoding: where the other two planes'
    estimates decode to one phase and the stepping plane's to another, their mean; else
    the stepping plane's estimate."""
    rng = np.random.default_rng(5)
    c = 1 if phases == 2 else phases
    own, a, b = (torch.from_numpy(rng.normal(size=(2, c, 3, 4, 5))).float() for _ in range(3))
    got = plane_vote(own, a, b, phases).numpy()

    def phase(e):  # per voxel: sign for one channel, else the largest channel
        return (e[:, 0] > 0).astype(int) if c == 1 else e.argmax(axis=1)

    pa, pb, po = phase(a.numpy()), phase(b.numpy()), phase(own.numpy())
    for n, z, y, x in np.ndindex(pa.shape):
        outvoted = pa[n, z, y, x] == pb[n, z, y, x] != po[n, z, y, x]
        want = ((a + b) / 2 if outvoted else own)[n, :, z, y, x].numpy()
        np.testing.assert_allclose(got[n, :, z, y, x], want)
    outvoted = (pa == pb) & (pa != po)
    assert 0 < outvoted.mean() < 1  # both cases were tried


def test_vote_steps_ask_every_plane_at_the_first_steps_and_keep_the_exact_volume():
    """The first 3 of 5 steps ask the other two planes too (3 calls each, as
    network_calls says); the exact denoiser, whose planes always agree, still gives the
    volume, harmonized or not."""
    shape = (3, 4, 5)
    v = np.random.default_rng(3).choice([-1.0, 1.0], size=(1, *shape))
    sched = respace(SCHED, 5)
    for harmonize in (0, 2):
        oracle = Oracle(v)
        settings = every_step(harmonize=harmonize, vote_steps=3)
        last = run_to_end(chain_progressive(oracle, sched, shape, 2, 1, 1, settings, seed=2))
        np.testing.assert_allclose(last.x0[0].numpy(), v, atol=1e-3)
        asked = [[p for p, t, _ in oracle.calls if t == sched.timestep_map[i]]
                 for i in range(4, -1, -1)]  # noisiest first, one pass of slices per call
        assert [sorted(set(p)) for p in asked[:3]] == [["xy", "xz", "yz"]] * 3
        assert [len(set(p)) for p in asked[3:]] == [1, 1]  # the step's own plane alone
        assert last.total_calls == settings.network_calls(5) == 5 * (1 + harmonize) + 2 * 3


def test_harmonizing_in_the_planes_in_turn_ends_each_step_in_its_own_plane():
    """``harmonize_planes = cycle``: the n_h rounds of step k take the planes k+1, k+2, k,
    ... in turn and the step's own plane k denoises last; the exact denoiser, asked about
    each plane's slices of a box with three different sides, still gives the volume (the
    slices are cut again along each round's plane). ``own`` asks the step's plane only."""
    shape = (3, 4, 5)
    v = np.random.default_rng(2).choice([-1.0, 1.0], size=(1, *shape))
    planes = ["xy", "xz", "yz"]
    for mode, nh in (("cycle", 4), ("cycle", 2), ("own", 4)):
        oracle = Oracle(v)
        settings = every_step(harmonize=nh, harmonize_planes=mode)
        steps = list(chain_progressive(oracle, respace(SCHED, 5), shape, 2, 1, 1, settings,
                                       seed=4))
        for e in steps:
            np.testing.assert_allclose(e.x0[0].numpy(), v, atol=1e-3)
        asked = [p for p, _, _ in oracle.calls]
        for k in range(5):
            rounds = asked[k * (nh + 1):(k + 1) * (nh + 1)]
            own = planes[k % 3]
            want = ([planes[(k + r - nh) % 3] for r in range(nh)] + [own] if mode == "cycle"
                    else [own] * (nh + 1))
            assert rounds == want
            assert mode == "own" or set(rounds) == set(planes)
        assert len(asked) == settings.network_calls(5)


@pytest.mark.parametrize("i0", [0, 5, 11])
def test_a_start_is_noised_to_its_step_and_the_rest_of_the_chain_runs(i0):
    """SDEdit: the first call sees the start volume at step i0's noise level (its mean
    product with the volume is sqrt(abar), its variance 1); only steps i0 .. 0 run, each in
    the whole chain's plane and with its harmonizing, and the calls are counted so."""
    v = np.random.default_rng(7).choice([-1.0, 1.0], size=(1, 1, 16, 16, 16))
    sched, settings = respace(SCHED, 12), SamplerSettings()  # fast: n_h 8 on the last 60 %
    seen = []

    def model(x, t, c):
        seen.append((LABEL_PLANE[int(c[0])], int(t[0]), x.clone()))
        return torch.zeros_like(x)

    steps = list(chain_progressive(model, sched, (16, 16, 16), 2, 1, 1, settings, seed=0,
                                   start=(torch.from_numpy(v), i0)))
    ks = range(11 - i0, 12)
    assert [s.step for s in steps] == [k + 1 for k in ks]
    assert [s.plane for s in steps] == [("xy", "xz", "yz")[k % 3] for k in ks]
    called = [int(sched.timestep_map[11 - k]) for k in ks
              for _ in range(settings.step_calls(k, 12))]
    assert [t for _, t, _ in seen] == called
    assert steps[-1].calls == steps[-1].total_calls == len(called)
    plane, _, first = seen[0]
    own = torch.from_numpy(slices_by_loops(v[0], plane)).float()
    assert (first * own).mean().item() == pytest.approx(np.sqrt(sched.alphas_cumprod[i0]),
                                                        abs=0.05)
    assert first.var().item() == pytest.approx(1.0, abs=0.1)

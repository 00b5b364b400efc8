import numpy as np
import pytest
import torch

from micro3d_gui.core.diffusion.respace import respace, spaced_steps
from micro3d_gui.core.diffusion.schedule import Schedule, ScheduleConfig


@pytest.fixture
def sched():
    return Schedule.from_config(ScheduleConfig())


def test_linear_betas_and_abar(sched):
    assert sched.num_steps == 1000
    assert sched.betas[0] == pytest.approx(1e-4) and sched.betas[-1] == pytest.approx(2e-2)
    assert np.allclose(np.diff(sched.betas), (2e-2 - 1e-4) / 999)
    assert sched.alphas_cumprod[10] == pytest.approx(np.prod(1 - sched.betas[:11]))
    assert sched.alphas_cumprod[-1] < 1e-4  # the chain ends close to pure noise


@pytest.mark.parametrize("i", [0, 99, 500, 999])
def test_q_sample_moments_match_closed_form(sched, i):
    gen = torch.Generator().manual_seed(i)
    x0 = torch.full((200_000,), 0.7, dtype=torch.float64)
    xt = sched.q_sample(x0, torch.full((x0.shape[0],), i), torch.randn(x0.shape, generator=gen, dtype=torch.float64))
    abar = sched.alphas_cumprod[i]
    assert xt.mean().item() == pytest.approx(np.sqrt(abar) * 0.7, abs=5e-3)
    assert xt.var().item() == pytest.approx(1 - abar, rel=2e-2, abs=1e-6)


def test_forward_steps_compose_to_q_sample_variance(sched):
    """Iterating q(x_t|x_{t-1}) from x_0 gives the moments of q(x_t|x_0)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.full((100_000,), -1.0, dtype=torch.float64)
    for i in range(300):
        x = sched.q_step(x, i, torch.randn(x.shape, generator=gen, dtype=torch.float64))
    abar = sched.alphas_cumprod[299]
    assert x.mean().item() == pytest.approx(-np.sqrt(abar), abs=1e-2)
    assert x.var().item() == pytest.approx(1 - abar, rel=2e-2)


def test_predict_x0_inverts_q_sample(sched):
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(5, 1, 4, 4, generator=gen, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    for i in (0, 400, 999):
        xt = sched.q_sample(x0, torch.full((5,), i), eps)
        assert torch.allclose(sched.predict_x0(xt, i, eps), x0, atol=1e-8)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_the_training_target_maps_back_to_x0_and_to_the_noise(prediction):
    """For x_t = q_sample(x0, noise), the output the network is trained to give yields x0
    exactly, and eps_from_x0 of that x0 yields the noise; v = sqrt(abar) eps - sqrt(1-abar) x0
    in closed form."""
    sched = Schedule.from_config(ScheduleConfig(prediction=prediction))
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn(4, 1, 4, 4, generator=gen, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    for i in (0, 400, 999):
        xt = sched.q_sample(x0, torch.full((4,), i), eps)
        target = sched.training_target(x0, torch.full((4,), i), eps)
        abar = sched.alphas_cumprod[i]
        expected = eps if prediction == "eps" else np.sqrt(abar) * eps - np.sqrt(1 - abar) * x0
        assert torch.allclose(target, expected, atol=1e-12)
        given = (xt.clone(), target.clone())
        assert torch.allclose(sched.x0_from_output(xt, i, target), x0, atol=1e-6)
        assert torch.equal(xt, given[0]) and torch.equal(target, given[1])  # inputs kept
        assert torch.allclose(sched.eps_from_x0(xt, i, sched.x0_from_output(xt, i, target)),
                              eps, atol=1e-6 if i < 999 else 1e-4)
    # respacing keeps what the network predicts
    assert respace(sched, 10).prediction == prediction


def test_an_unknown_prediction_is_refused():
    with pytest.raises(ValueError, match="eps, v"):
        ScheduleConfig(prediction="x0")


def test_reverse_mean_is_posterior_mean_at_x0_hat(sched):
    """Eq. 8's mean equals the mean of q(x_{t-1} | x_t, x0_hat) (DDPM)."""
    gen = torch.Generator().manual_seed(2)
    xt = torch.randn(100, generator=gen, dtype=torch.float64)
    eps = torch.randn(100, generator=gen, dtype=torch.float64)
    for i in (1, 250, 999):
        x0 = sched.predict_x0(xt, i, eps)
        assert torch.allclose(sched.p_step(xt, i, eps, None), sched.posterior_mean(x0, xt, i), atol=1e-10)
        # the sampler's form through x0 is the same step, noise included
        z = torch.randn(100, generator=gen, dtype=torch.float64)
        assert torch.allclose(sched.p_step_from_x0(xt, i, x0, z), sched.p_step(xt, i, eps, z),
                              atol=1e-10)
    # the last step adds no noise and lands on x0_hat
    assert torch.allclose(sched.p_step(xt, 0, eps, torch.ones(100, dtype=torch.float64)),
                          sched.predict_x0(xt, 0, eps), atol=1e-10)


@pytest.mark.parametrize("count", [1, 10, 50, 250, 999])
def test_respaced_abar_equals_original_at_kept_steps(sched, count):
    sp = respace(sched, count)
    assert sp.num_steps == count
    keep = spaced_steps(1000, count)
    assert np.array_equal(sp.timestep_map, keep)
    assert keep[-1] == 999 and (count == 1 or keep[0] == 0)
    assert np.allclose(sp.alphas_cumprod, sched.alphas_cumprod[keep], rtol=1e-12)


def test_respace_to_full_length_is_identity(sched):
    assert respace(sched, 1000) is sched


def test_respace_rejects_bad_counts(sched):
    for bad in (0, 1001):
        with pytest.raises(ValueError):
            respace(sched, bad)

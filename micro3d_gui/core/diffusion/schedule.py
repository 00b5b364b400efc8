"""Gaussian diffusion schedule (METHOD.md Sec. 2), kept apart from the network.

All arrays are float64 NumPy, indexed by step ``i = 0 .. S-1`` where ``i`` stands for the
paper's ``t = i + 1``. A respaced schedule (see :mod:`.respace`) is a ``Schedule`` too; its
``timestep_map[i]`` is the original step index that the network was trained with.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


#: What the network predicts: the paper's noise eps, or v = sqrt(abar) eps - sqrt(1-abar) x0
#: (Salimans & Ho 2022).
PREDICTIONS = ("eps", "v")


@dataclass(frozen=True)
class ScheduleConfig:
    """Linear beta schedule of the paper: T = 1000, beta from 1e-4 to 2e-2, and what the
    network predicts (``prediction``, one of :data:`PREDICTIONS`; the paper's is eps)."""

    num_steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 2e-2
    prediction: str = "eps"

    def __post_init__(self):
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)}, "
                             f"got {self.prediction!r}")


def linear_betas(cfg: ScheduleConfig) -> np.ndarray:
    return np.linspace(cfg.beta_start, cfg.beta_end, cfg.num_steps, dtype=np.float64)


@dataclass
class Schedule:
    """A discrete DDPM noise schedule.

    ``betas[i]`` is beta at step i; ``timestep_map[i]`` is the network's time input for step
    i (the identity unless respaced); ``prediction`` is what the network outputs (see
    :data:`PREDICTIONS`).
    """

    betas: np.ndarray
    timestep_map: np.ndarray = field(default=None)
    prediction: str = "eps"

    def __post_init__(self):
        self.betas = np.asarray(self.betas, dtype=np.float64)
        if self.betas.ndim != 1 or not ((self.betas > 0) & (self.betas <= 1)).all():
            raise ValueError("betas must be a 1D array in (0, 1]")
        if self.timestep_map is None:
            self.timestep_map = np.arange(len(self.betas))
        self.timestep_map = np.asarray(self.timestep_map, dtype=np.int64)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = np.cumprod(self.alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        # Posterior q(x_{t-1} | x_t, x_0) (DDPM Eq. 6-7).
        self.posterior_variance = (
            self.betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        )
        self.posterior_mean_coef_x0 = (
            self.betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        )
        self.posterior_mean_coef_xt = (
            (1.0 - self.alphas_cumprod_prev) * np.sqrt(self.alphas) / (1.0 - self.alphas_cumprod)
        )

    @classmethod
    def from_config(cls, cfg: ScheduleConfig) -> "Schedule":
        return cls(linear_betas(cfg), prediction=cfg.prediction)

    @property
    def num_steps(self) -> int:
        return len(self.betas)

    # -- forward process ----------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, i, noise: torch.Tensor) -> torch.Tensor:
        """Draw x_t ~ q(x_t | x_0) = N(sqrt(abar) x_0, (1 - abar) I); ``i`` per batch item."""
        abar = _gather(self.alphas_cumprod, i, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def q_step(self, x_prev: torch.Tensor, i: int, noise: torch.Tensor) -> torch.Tensor:
        """One forward step q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I) (Eq. 1)."""
        # one fused add on one new tensor: the sampler's latents are whole volumes
        return x_prev.mul(float(np.sqrt(self.alphas[i]))).add_(
            noise, alpha=float(np.sqrt(self.betas[i])))

    def training_target(self, x0: torch.Tensor, i, noise: torch.Tensor) -> torch.Tensor:
        """What the network learns to output for x_t = q_sample(x0, i, noise): ``noise``
        (eps prediction) or v = sqrt(abar) noise - sqrt(1 - abar) x0."""
        if self.prediction == "eps":
            return noise
        abar = _gather(self.alphas_cumprod, i, x0)
        return abar.sqrt() * noise - (1 - abar).sqrt() * x0

    # -- reverse process ----------------------------------------------------------------
    def _roots(self, i, like: torch.Tensor):
        """(sqrt(abar_i), sqrt(1 - abar_i)): floats for one step ``i``, or for a tensor of
        steps (one per batch item, as in training) tensors broadcastable against ``like``."""
        if isinstance(i, torch.Tensor):
            abar = _gather(self.alphas_cumprod, i, like)
            return abar.sqrt(), (1 - abar).sqrt()
        abar = self.alphas_cumprod[i]
        return float(np.sqrt(abar)), float(np.sqrt(1 - abar))

    def x0_from_output(self, x_t: torch.Tensor, i, out: torch.Tensor) -> torch.Tensor:
        """The x0 estimate of a network output at step i (an int, or one step per batch
        item as in training): :meth:`predict_x0` for eps, and sqrt(abar) x_t -
        sqrt(1 - abar) v for v. v's is well conditioned at t near T, where eps's divides
        the network's error by sqrt(abar_T) (x156 for the paper's schedule)."""
        if self.prediction == "eps":
            return self.predict_x0(x_t, i, out)
        root, root_rest = self._roots(i, x_t)
        if isinstance(root, float):  # one step for all: one fused add on one new tensor
            return out.mul(-root_rest).add_(x_t, alpha=root)
        return root * x_t - root_rest * out

    def predict_x0(self, x_t: torch.Tensor, i, eps: torch.Tensor) -> torch.Tensor:
        """x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t); ``i`` as for
        :meth:`x0_from_output`."""
        root, root_rest = self._roots(i, x_t)
        return (x_t - root_rest * eps) / root

    def posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, i: int) -> torch.Tensor:
        return x0.mul(float(self.posterior_mean_coef_x0[i])).add_(
            x_t, alpha=float(self.posterior_mean_coef_xt[i]))

    def p_step(self, x_t: torch.Tensor, i: int, eps: torch.Tensor, noise: torch.Tensor | None):
        """One reverse step (Eq. 5, 8) with sigma_t^2 = beta_t; ``noise=None`` adds none.

        x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) + sigma_t z.
        """
        coef = self.betas[i] / np.sqrt(1.0 - self.alphas_cumprod[i])
        return self._add_noise((x_t - float(coef) * eps) / float(np.sqrt(self.alphas[i])), i, noise)

    def p_step_from_x0(self, x_t: torch.Tensor, i: int, x0: torch.Tensor,
                       noise: torch.Tensor | None):
        """The same step written through an x0 estimate: mean of q(x_{t-1} | x_t, x0) plus
        sigma_t z. Equal to :meth:`p_step` when ``x0 = predict_x0(x_t, i, eps)``; lets a
        sampler correct x0 (e.g. clamp it to the data range) before stepping."""
        return self._add_noise(self.posterior_mean(x0, x_t, i), i, noise)

    def eps_from_x0(self, x_t: torch.Tensor, i: int, x0: torch.Tensor) -> torch.Tensor:
        """The noise that ``x0`` implies at step i: (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)."""
        abar = self.alphas_cumprod[i]
        return (x_t - float(np.sqrt(abar)) * x0) / float(np.sqrt(1 - abar))

    def ddim_sigma(self, i: int, eta: float) -> float:
        """DDIM's sigma_t(eta) = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev).

        eta = 1 gives the posterior variance of q(x_{t-1} | x_t, x0) (DDPM's beta-tilde),
        eta = 0 the deterministic DDIM step."""
        abar, abar_prev = self.alphas_cumprod[i], self.alphas_cumprod_prev[i]
        return float(eta * np.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)))

    def ddim_step(self, x_t: torch.Tensor, i: int, x0: torch.Tensor, eta: float,
                  noise: torch.Tensor | None) -> torch.Tensor:
        """One DDIM step (Song et al. 2021, Eq. 12) written through an x0 estimate:

        x_{t-1} = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps(x0) + sigma z.

        eps is recomputed from x0 (:meth:`eps_from_x0`), so a corrected x0 stays consistent.
        With eta = 1 the mean is the posterior mean of :meth:`p_step_from_x0` and the
        variance the posterior variance."""
        abar_prev = self.alphas_cumprod_prev[i]
        sigma = self.ddim_sigma(i, eta)
        eps = self.eps_from_x0(x_t, i, x0)
        mean = (float(np.sqrt(abar_prev)) * x0
                + float(np.sqrt(max(1 - abar_prev - sigma ** 2, 0.0))) * eps)
        if noise is None or i == 0 or sigma == 0.0:
            return mean
        return mean + sigma * noise

    def log_snr_half(self, i: int) -> float:
        """lambda_t = log(sqrt(abar_t) / sqrt(1 - abar_t)) (DPM-Solver's half log-SNR)."""
        abar = self.alphas_cumprod[i]
        return float(0.5 * (np.log(abar) - np.log1p(-abar)))

    def dpm2m_step(self, x_t: torch.Tensor, i: int, x0: torch.Tensor,
                   x0_before: torch.Tensor | None) -> torch.Tensor:
        """One DPM-Solver++(2M) step (Lu et al. 2022, Alg. 2), deterministic.

        ``x0_before`` is the x0 estimate of the previous (noisier) step i + 1, or None for
        the first-order step (equal to DDIM with eta = 0). The last step (abar_prev = 1)
        returns x0."""
        abar_prev = self.alphas_cumprod_prev[i]
        if abar_prev >= 1.0:
            return x0
        abar = self.alphas_cumprod[i]
        lam = self.log_snr_half(i)
        lam_prev = float(0.5 * (np.log(abar_prev) - np.log1p(-abar_prev)))
        h = lam_prev - lam
        d = x0
        if x0_before is not None and i + 1 < self.num_steps:
            r = (lam - self.log_snr_half(i + 1)) / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_before
        ratio = float(np.sqrt((1 - abar_prev) / (1 - abar)))
        return ratio * x_t - float(np.sqrt(abar_prev) * np.expm1(-h)) * d

    def _add_noise(self, mean: torch.Tensor, i: int, noise: torch.Tensor | None):
        if noise is None or i == 0:  # no noise at the last step
            return mean
        return mean.add(noise, alpha=float(np.sqrt(self.betas[i])))


def _gather(values: np.ndarray, i, like: torch.Tensor) -> torch.Tensor:
    """values[i] as a tensor broadcastable against ``like`` ``[B, ...]``."""
    idx = torch.as_tensor(i, device="cpu").long()
    out = torch.from_numpy(values)[idx].to(device=like.device, dtype=like.dtype)
    return out.reshape(-1, *([1] * (like.dim() - 1))) if out.dim() else out

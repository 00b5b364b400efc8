"""Multi-plane denoising with modified harmonized sampling (METHOD.md Sec. 3).

One latent ``x`` of shape ``[N, C, Z, Y, X]`` (N volumes at once) starts as Gaussian noise.
Reverse step number k works on plane ``xy, xz, yz``[k % 3]: the volume is cut into that
plane's slices, harmonized ``n_h`` times (denoise, then one forward step back: Eq. 16),
blended with the unharmonized slices by ``gamma`` (Eq. 17), denoised once more and put back.

The sampler is a generator (improved-diffusion's ``p_sample_loop_progressive``): it yields a
:class:`SampleStep` after every reverse step with the current estimate of the clean volume,
so a viewer can show the volume forming. It knows nothing of any GUI; ``should_stop`` is
polled before every network call so a cancel takes effect within one call.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..encoding import decode_volume
from ..planes import NULL_LABEL, PLANE_LABELS, PLANES, slices_to_volume, volume_to_slices
from .schedule import Schedule

#: eps_theta(x [B, C, H, W], t [B] long, c [B] long) -> [B, C, H, W]
Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class SamplingCancelled(Exception):
    """Raised inside the sampler when ``should_stop()`` returned True."""


X0_PROJECTIONS = ("none", "clip", "rms")


def project_x0(x0: torch.Tensor, mode: str) -> torch.Tensor:
    """Bring x0 estimates ``[B, C, H, W]`` back to what encoded data can be.

    ``none``: as predicted (METHOD.md's Eq. 8 exactly). ``clip``: clamp to [-1, 1]
    (improved-diffusion's ``clip_denoised``). ``rms``: scale each slice to unit RMS, then
    clamp: encoded data are +-1 everywhere, so every slice of a real sample has RMS 1.
    A small network's estimate is shrunken where it is unsure, and in the multi-plane chain
    that shrinkage compounds through the posterior mean until the latent fades and the
    sample decays to noise (``clip`` and ``none`` did, docs/benchmarks.md); ``rms`` keeps
    the chain's norm. Its failure mode, a drift of the mean to one phase, is what
    :func:`_anchor_mean` prevents.
    """
    if mode == "none":
        return x0
    if mode == "rms":
        rms = x0.pow(2).mean(dim=(-3, -2, -1), keepdim=True).sqrt()
        x0 = x0 / rms.clamp_min(1e-6)
    return x0.clamp(-1.0, 1.0)


@dataclass(frozen=True)
class SamplerSettings:
    """How to sample. n_h, gamma and w default to the paper's (4, 0.5, 1); the three
    corrections (x0 projection, anchor, variance-matched blend) are on by default, and
    ``x0_projection="none", match_variance=False, anchor_fractions=False`` is the paper's
    sampler exactly (docs/benchmarks.md says why they are on)."""

    harmonize: int = 4
    gamma: float = 0.5
    guidance: float = 1.0
    #: Most slices in one network call (memory cap); halved internally when w != 1.
    max_batch: int = 256
    #: Correction of each x0 estimate before the reverse step: see :func:`project_x0`.
    x0_projection: str = "rms"
    #: Rescale the blend of Eq. 17 to the RMS of the unharmonized slices (see _blend).
    match_variance: bool = True
    #: Hold each volume's mean x0 at the training data's (see _anchor_mean); the pipeline
    #: supplies the target from the checkpoint (``sample_progressive(target_mean=...)``).
    anchor_fractions: bool = True

    def __post_init__(self):
        if self.harmonize < 0:
            raise ValueError("harmonize (n_h) must be >= 0")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError("gamma must be between 0 and 1")
        if self.max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if self.x0_projection not in X0_PROJECTIONS:
            raise ValueError(f"x0_projection must be one of {', '.join(X0_PROJECTIONS)}")

    def calls_per_step(self) -> int:
        """Network evaluations per slice batch per reverse step."""
        return (self.harmonize + 1) * (1 if self.guidance == 1.0 else 2)


@dataclass
class SampleStep:
    """Progress after reverse step ``step`` of ``total`` (1-based)."""

    step: int
    total: int
    plane: str
    #: Estimate of the clean volumes, model space ``[N, C, Z, Y, X]`` float32.
    x0: torch.Tensor
    num_phases: int

    def labels(self) -> torch.Tensor:
        """The estimate decoded to phase labels ``[N, Z, Y, X]`` uint8."""
        return decode_volume(self.x0, self.num_phases)


class _Eps:
    """Batched, guided, padded network calls for one plane's slices."""

    def __init__(self, model: Denoiser, settings: SamplerSettings, size_multiple: int,
                 periodic: bool, dtype: torch.dtype, should_stop: Callable[[], bool] | None):
        self.model = model
        self.settings = settings
        self.multiple = size_multiple
        self.pad_mode = "circular" if periodic else "replicate"
        self.dtype = dtype
        self.should_stop = should_stop
        #: Slices per network call (its batch is twice that with guidance).
        self.chunk = max(1, settings.max_batch // (2 if settings.guidance != 1.0 else 1))

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        # The U-Net needs sides divisible by 2^(levels-1); pad any box up and crop back.
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph == 0 and pw == 0:
            return x, (h, w)
        return F.pad(x, (0, pw, 0, ph), mode=self.pad_mode), (h, w)

    def __call__(self, x: torch.Tensor, t_model: int, label: int) -> torch.Tensor:
        w = self.settings.guidance
        guided = w != 1.0
        chunk = self.chunk
        out = torch.empty_like(x)
        for start in range(0, x.shape[0], chunk):
            if self.should_stop is not None and self.should_stop():
                raise SamplingCancelled()
            xb, (h, wd) = self._pad(x[start:start + chunk])
            b = xb.shape[0]
            labels = torch.full((b,), label, dtype=torch.long, device=x.device)
            if guided:  # conditional and unconditional in one batch (Eq. 9)
                xb = torch.cat([xb, xb])
                labels = torch.cat([labels, torch.full_like(labels, NULL_LABEL)])
            t = torch.full((xb.shape[0],), t_model, dtype=torch.long, device=x.device)
            eps = self.model(xb.to(self.dtype), t, labels).to(x.dtype)
            if guided:
                eps = w * eps[:b] + (1 - w) * eps[b:]
            out[start:start + chunk] = eps[..., :h, :wd]
        return out


def sample_progressive(
    model: Denoiser,
    schedule: Schedule,
    shape: tuple[int, int, int],
    num_phases: int,
    channels: int,
    count: int = 1,
    settings: SamplerSettings = SamplerSettings(),
    *,
    seed: int | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    size_multiple: int = 1,
    periodic: bool = False,
    should_stop: Callable[[], bool] | None = None,
    target_mean: Sequence[float] | None = None,
) -> Iterator[SampleStep]:
    """Generate ``count`` volumes of ``shape = (Z, Y, X)`` voxels, yielding every step.

    ``schedule`` may be respaced; the network is called with ``schedule.timestep_map``.
    ``dtype`` is the network's input dtype (the latent stays float32). ``target_mean``
    ``[C]``, the mean of the encoded training data per channel, anchors every x0 estimate
    when ``settings.anchor_fractions`` (None: no anchor). The last :class:`SampleStep`'s
    ``x0`` is the final sample.
    """
    device = torch.device(device)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed) if seed is not None else torch.seed())
    eps_fn = _Eps(model, settings, size_multiple, periodic, dtype, should_stop)

    def noise(like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.shape, generator=gen, device=device, dtype=like.dtype)

    anchor = (torch.as_tensor(target_mean, dtype=torch.float32, device=device)
              if target_mean is not None and settings.anchor_fractions else None)
    box = tuple(int(s) for s in shape)
    x = torch.randn((count, channels, *box), generator=gen, device=device)
    total = schedule.num_steps
    mode = settings.x0_projection
    for k, i in enumerate(range(total - 1, -1, -1)):
        plane = PLANES[k % 3]
        t_model = int(schedule.timestep_map[i])
        label = PLANE_LABELS[plane]
        plain = volume_to_slices(x, plane)  # no_x'_t
        # The step runs chunk by chunk (the network's chunk): besides a few full-size
        # buffers only one chunk's temporaries exist at a time (core/memory.py counts them).
        chunks = [slice(s, s + eps_fn.chunk) for s in range(0, plain.shape[0], eps_fn.chunk)]

        def denoise(xs, out):
            """One reverse step of the slices ``xs``: x_{t-1} into ``out`` (may be ``xs``);
            returns the x0 estimates."""
            x0 = torch.empty_like(xs)
            for c in chunks:
                x0[c] = schedule.predict_x0(xs[c], i, eps_fn(xs[c], t_model, label))
            shift = (None if anchor is None else
                     _anchor_shift(x0.sum(dim=(-2, -1)), anchor, count,
                                   xs.shape[-2] * xs.shape[-1]))
            z = noise(xs)
            for c in chunks:
                x0c = x0[c] if shift is None else x0[c] + shift[c, :, None, None]
                x0[c] = x0c = project_x0(x0c, mode)
                out[c] = schedule.p_step_from_x0(xs[c], i, x0c, z[c])
            return x0

        xs = plain
        for _ in range(settings.harmonize):  # Eq. 16: denoise, then renoise one step
            nxt = torch.empty_like(plain) if xs is plain else xs  # plain is kept for Eq. 17
            denoise(xs, nxt)
            z = noise(nxt)
            for c in chunks:
                nxt[c] = schedule.q_step(nxt[c], i, z[c])
            xs, z = nxt, None
        if settings.harmonize:
            for c in chunks:
                xs[c] = _blend(xs[c], plain[c], settings.gamma, settings.match_variance)
        out = xs if xs is not plain else torch.empty_like(plain)
        x0 = denoise(xs, out)
        del plain, xs
        x = None  # free the old latent before building the new one
        x = slices_to_volume(out, plane, count, box)
        del out
        x0 = slices_to_volume(x0, plane, count, box)
        yield SampleStep(k + 1, total, plane, x0, num_phases)
        del x0


def _anchor_shift(sums: torch.Tensor, target: torch.Tensor, count: int,
                  pixels: int) -> torch.Tensor:
    """The shift per slice ``[B, C]`` that sets each volume's mean x0 per channel to
    ``target`` ``[C]``, from the sums of every slice's x0 over its ``pixels`` ``[B, C]``.

    Volume n's slices are contiguous in the batch (``B = N * S``). The mean of encoded data
    per channel is ``2 f - 1`` for a phase fraction f, so this holds the volume's phase
    fractions at the micrographs' while leaving every structure free.
    """
    b, c = sums.shape
    per_volume = sums.reshape(count, b // count, c).sum(dim=1) / (pixels * (b // count))
    shift = target.to(sums.dtype)[None] - per_volume  # [N, C]
    return shift.repeat_interleave(b // count, dim=0)


def _anchor_mean(x0: torch.Tensor, target: torch.Tensor, count: int) -> torch.Tensor:
    """Shift each volume's x0 estimate ``[N * S, C, H, W]`` so that its mean per channel
    is ``target`` ``[C]`` (the whole-batch form of :func:`_anchor_shift`)."""
    shift = _anchor_shift(x0.sum(dim=(-2, -1)), target, count, x0.shape[-2] * x0.shape[-1])
    return x0 + shift[:, :, None, None]


def _blend(harmonized: torch.Tensor, plain: torch.Tensor, gamma: float,
           match_variance: bool) -> torch.Tensor:
    """Eq. 17, ``gamma * h + (1 - gamma) * no``, per slice ``[B, C, H, W]``.

    h and no carry partly independent noise (each harmonizing step draws fresh noise, a lot
    of it when the schedule is respaced), so their blend has less variance than x_t should
    have; the network then reads it as a less noisy step and the latent fades step after
    step. ``match_variance`` scales each blended slice back to the RMS of ``plain``.
    """
    out = gamma * harmonized + (1 - gamma) * plain
    if match_variance:
        dims = tuple(range(1, out.dim()))
        rms_out = out.pow(2).mean(dim=dims, keepdim=True).sqrt()
        out = out * (plain.pow(2).mean(dim=dims, keepdim=True).sqrt() / rms_out.clamp_min(1e-12))
    return out


def run_to_end(steps: Iterator[SampleStep],
               callback: Callable[[SampleStep], object] | None = None) -> SampleStep:
    """Consume a progressive sampler; returns the last step (its ``x0`` is the sample).

    ``callback(step)`` is called after every step; a truthy return cancels
    (:class:`SamplingCancelled` is raised).
    """
    last = None
    for last in steps:
        if callback is not None and callback(last):
            raise SamplingCancelled()
    return last

"""Multi-plane denoising with modified harmonized sampling (METHOD.md Sec. 3).

One latent ``x`` of shape ``[N, C, Z, Y, X]`` (N volumes at once) starts as Gaussian noise.
Reverse step number k works on plane ``xy, xz, yz``[k % 3]: the volume is cut into that
plane's slices, harmonized ``n_h`` times (denoise, then one forward step back: Eq. 16),
blended with the unharmonized slices by ``gamma`` (Eq. 17), denoised once more and put back.

The chain, :func:`chain_progressive`, is a generator (improved-diffusion's
``p_sample_loop_progressive``): it yields a :class:`SampleStep` after every reverse step
with the current estimate of the clean volume, so a viewer can show the volume forming. It
knows nothing of any GUI; ``should_stop`` is polled before every network call so a cancel
takes effect within one call.

Its settings are :class:`~.settings.SamplerSettings`. The layers above: the pipeline
(:mod:`..pipeline`: a checkpoint's network and schedule wired to this chain) and the
recipes (:mod:`..recipe`: a named recipe, checked; what callers use).

Over several processes (``dist``, see :mod:`..distributed`) every rank runs this same
chain with the same draws; only each network call's slices are shared out and gathered.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..distributed import SINGLE, Distributed
from ..encoding import decode_volume, encode, encoded_mean
from ..planes import (NULL_LABEL, PLANE_LABELS, PLANES, fixed_axis, slices_to_volume,
                      volume_to_slices)
from .fraction_condition import slice_condition
from .schedule import Schedule
from .settings import SamplerSettings

#: The network (x [B, C, H, W], t [B] long, c [B] long) -> [B, C, H, W]: eps or v, as the
#: schedule's ``prediction`` says. With a fraction condition (``chain_progressive``'s
#: ``fraction_spread``) it is also given the slices' condition ``[B, C]`` as a 4th argument;
#: a self-conditioned one (``chain_progressive``'s ``self_condition``) an earlier x0 estimate
#: ``[B, C, H, W]`` as ``x0_self=``.
Denoiser = Callable[..., torch.Tensor]


class SamplingCancelled(Exception):
    """Raised inside the sampler when ``should_stop()`` returned True."""


def project_x0(x0: torch.Tensor, mode: str) -> torch.Tensor:
    """Bring x0 estimates ``[B, C, H, W]`` back to what encoded data can be.

    ``none``: as predicted (METHOD.md's Eq. 8 exactly). ``clip``: clamp to [-1, 1]
    (improved-diffusion's ``clip_denoised``). ``rms``: scale each slice to unit RMS, then
    clamp: encoded data are +-1 everywhere, so every slice of a real sample has RMS 1.
    A small network's estimate is shrunken where it is unsure, and in the multi-plane chain
    that shrinkage compounds through the posterior mean until the latent fades and the
    sample decays to noise (``clip`` and ``none`` do:
    docs/experiments/2026-11-25-sampler-corrections.md); ``rms`` keeps
    the chain's norm. Its failure mode, a drift of the mean to one phase, is what
    :func:`_anchor_mean` prevents.
    """
    if mode == "none":
        return x0
    if mode == "rms":
        n = x0.shape[-3] * x0.shape[-2] * x0.shape[-1]
        rms = torch.linalg.vector_norm(x0, dim=(-3, -2, -1), keepdim=True) / math.sqrt(n)
        return (x0 / rms.clamp_min(1e-6)).clamp_(-1.0, 1.0)  # clamps its own new tensor
    return x0.clamp(-1.0, 1.0)


@dataclass(frozen=True)
class KeptSection:
    """A measured section the volume must hold: ``labels`` ``[rows, cols]`` (phases
    0..K-1, rows and columns as in METHOD.md's plane table) at slice ``index`` of
    ``plane``."""

    plane: str
    index: int
    labels: np.ndarray = field(compare=False)


@dataclass
class SampleStep:
    """Progress after reverse step ``step`` of ``total`` (1-based)."""

    step: int
    total: int
    plane: str
    #: Estimate of the clean volumes, model space ``[N, C, Z, Y, X]`` float32.
    x0: torch.Tensor
    num_phases: int
    #: Network calls per slice batch so far and in the whole run: the cost that progress
    #: and ETA should count, as a harmonized step costs n_h + 1 plain ones.
    calls: int
    total_calls: int

    def labels(self) -> torch.Tensor:
        """The estimate decoded to phase labels ``[N, Z, Y, X]`` uint8."""
        return decode_volume(self.x0, self.num_phases)


class _Eps:
    """Batched, guided, padded network calls for one plane's slices.

    Guidance (Eq. 9, extended to the fraction condition, as composed classifier-free
    guidance): with ``e(c, m)`` the network told plane ``c`` and fractions ``m``,

        eps = e(c, m) + (w - 1) (e(c, m) - e(null, m)) + (w_f - 1) (e(c, m) - e(c, unknown))

    which is Eq. 9's ``w e(c) + (1 - w) e(null)`` when w_f = 1. Every branch in use goes
    through the network in one batch. Over several processes (``dist``) each rank asks the
    network about its own contiguous share of the slices and the answers are gathered.
    """

    def __init__(self, model: Denoiser, settings: SamplerSettings, size_multiple: int,
                 periodic: bool, dtype: torch.dtype, should_stop: Callable[[], bool] | None,
                 fraction_condition: bool = False, dist: Distributed = SINGLE):
        self.model = model
        self.dist = dist
        self.settings = settings
        self.multiple = size_multiple
        self.pad_mode = "circular" if periodic else "replicate"
        self.dtype = dtype
        self.should_stop = should_stop
        self.plane_guided = settings.guidance != 1.0
        self.fraction_guided = fraction_condition and settings.fraction_guidance != 1.0
        #: Slices per network call (its batch is that times the branches).
        self.chunk = max(1, settings.max_batch // settings.calls_per_denoise(fraction_condition))

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        # The U-Net needs sides divisible by 2^(levels-1); pad any box up and crop back.
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph == 0 and pw == 0:
            return x, (h, w)
        return F.pad(x, (0, pw, 0, ph), mode=self.pad_mode), (h, w)

    def _stopped(self, device: torch.device) -> bool:
        # Over several processes the ranks agree, so that all leave at the same call.
        return self.should_stop is not None and self.dist.any(self.should_stop(), device)

    def __call__(self, x: torch.Tensor, t_model: int, label: int,
                 means: torch.Tensor | None = None,
                 x0_self: torch.Tensor | None = None) -> torch.Tensor:
        rows = x.shape[0]
        mine = self.dist.share(rows)
        part = self._evaluate(x[mine], t_model, label, None if means is None else means[mine],
                              None if x0_self is None else x0_self[mine],
                              -(-rows // self.dist.world_size))
        return self.dist.gather_rows(part, rows)

    def _evaluate(self, x: torch.Tensor, t_model: int, label: int,
                  means: torch.Tensor | None, x0_self: torch.Tensor | None,
                  largest: int) -> torch.Tensor:
        """The guided network output for slices ``x`` (this rank's share); ``largest`` is
        the largest share, whose calls every rank walks through so that all poll a stop
        equally often (a short share skips its empty calls)."""
        s = self.settings
        out = torch.empty_like(x)
        for start in range(0, largest, self.chunk):
            if self._stopped(x.device):
                raise SamplingCancelled()
            if start >= x.shape[0]:
                continue
            xb, (h, wd) = self._pad(x[start:start + self.chunk])
            b = xb.shape[0]
            labels = torch.full((b,), label, dtype=torch.long, device=x.device)
            m = None if means is None else means[start:start + self.chunk]
            # the branches, conditional first: (labels, means)
            branches = [(labels, m)]
            if self.plane_guided:
                branches.append((torch.full_like(labels, NULL_LABEL), m))
            if self.fraction_guided and m is not None:
                branches.append((labels, torch.full_like(m, float("nan"))))
            # one branch: the chunk itself, not a copy
            xs = xb if len(branches) == 1 else torch.cat([xb] * len(branches))
            ls = torch.cat([lab for lab, _ in branches])
            extra = () if m is None else (torch.cat([mb for _, mb in branches]),)
            given = {}
            if x0_self is not None:
                own, _ = self._pad(x0_self[start:start + self.chunk])
                given["x0_self"] = torch.cat([own] * len(branches)).to(self.dtype)
            t = torch.full((xs.shape[0],), t_model, dtype=torch.long, device=x.device)
            eps = self.model(xs.to(self.dtype), t, ls, *extra, **given).to(x.dtype)
            cond, *rest = eps.split(b)
            guided = cond
            if self.plane_guided:
                guided = guided + (s.guidance - 1) * (cond - rest.pop(0))
            if rest:
                guided = guided + (s.fraction_guidance - 1) * (cond - rest.pop(0))
            out[start:start + self.chunk] = guided[..., :h, :wd]
        return out


def chain_progressive(
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
    target_fractions: Sequence[float] | None = None,
    keep: Sequence[KeptSection] = (),
    fraction_spread: Mapping[str, Sequence[float]] | None = None,
    plane_labels: Mapping[str, int] | None = None,
    dist: Distributed = SINGLE,
    self_condition: bool = False,
    start: tuple[torch.Tensor, int] | None = None,
) -> Iterator[SampleStep]:
    """Generate ``count`` volumes of ``shape = (Z, Y, X)`` voxels, yielding every step.

    ``schedule`` may be respaced; the network is called with ``schedule.timestep_map``.
    ``dtype`` is the network's input dtype (the latent stays float32). ``target_mean``
    ``[C]``, the mean of the encoded training data per channel, anchors every x0 estimate
    when ``settings.anchor_fractions`` (None: no anchor). ``target_fractions`` ``[K]``
    (phase fractions, sum 1) sets that mean and, with ``settings.anchor_decoded``, also the
    decoded fractions. ``keep``: sections every volume holds exactly; after each reverse
    step the latent's kept slices are replaced by their forward-noised version at the new
    noise level (RePaint-style inpainting), so the multi-plane chain grows the rest around
    them. ``fraction_spread`` ``{plane: [C]}`` (for a network with the fraction condition;
    needs a target): each slice is told its fraction, as
    :func:`~.fraction_condition.slice_condition` estimates it from the slice and the
    target, with the plane's spread. ``plane_labels`` ``{plane: condition}`` (default
    ``PLANE_LABELS``): the label each plane's slices are denoised with (a declared
    symmetry's, :meth:`~..symmetry.Symmetry.labels`). ``dist``: the processes that share
    every network call's slices (each calls this with the same arguments, ``device`` its
    own); every rank yields the same steps. ``self_condition``: the network is
    self-conditioned; each call on a step's plane is given the latest x0 estimate of its
    slices, the previous step's (made by another plane) for the first, then its own. The
    last :class:`SampleStep`'s ``x0`` is the final sample. ``start = (volumes, i0)``:
    encoded volumes ``[N, C, Z, Y, X]`` noised to respaced step ``i0`` begin the chain
    (SDEdit), which then runs steps ``i0 .. 0`` only, each in the plane and with the
    harmonizing the whole chain gives it: how much of a real structure the rest of the
    chain keeps (benchmarks/from_truth.py).
    """
    labels = PLANE_LABELS if plane_labels is None else plane_labels
    device = torch.device(device)
    seed = dist.agreed_seed(seed, device)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed) if seed is not None else torch.seed())

    def noise(like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.shape, generator=gen, device=device, dtype=like.dtype)

    if target_fractions is not None and target_mean is None:
        target_mean = encoded_mean(target_fractions)
    anchor = (torch.as_tensor(target_mean, dtype=torch.float32, device=device)
              if target_mean is not None and settings.anchor_fractions else None)
    decoded = (torch.as_tensor(target_fractions, dtype=torch.float32, device=device)
               if target_fractions is not None and settings.anchor_decoded is True else None)
    if fraction_spread is not None and target_mean is None:
        raise ValueError("a fraction condition needs target fractions (or a target mean)")
    told = (None if fraction_spread is None
            else torch.as_tensor(target_mean, dtype=torch.float32, device=device))
    eps_fn = _Eps(model, settings, size_multiple, periodic, dtype, should_stop,
                  fraction_condition=told is not None, dist=dist)
    box = tuple(int(s) for s in shape)
    kept = [(k.plane, int(k.index), encode(k.labels, num_phases).to(device)) for k in keep]
    x = torch.randn((count, channels, *box), generator=gen, device=device)
    total = schedule.num_steps
    first = total - 1 if start is None else int(start[1])
    if start is not None:
        x = schedule.q_sample(start[0].to(device, torch.float32), first, x)
    _impose(x, kept, schedule, first, noise)
    mode = settings.x0_projection
    offsets = {"last": None}  # the decoded anchor's offsets, carried from step to step
    x0_before = None  # the previous step's x0 estimate of the volumes (DPM-Solver++ 2M)
    run = range(total - 1 - first, total)  # k of the steps to run (0 = the noisiest)
    calls, total_calls = 0, sum(settings.step_calls(k, total, told is not None) for k in run)
    for k in run:
        i = total - 1 - k
        plane = PLANES[k % 3]
        t_model = int(schedule.timestep_map[i])
        plain = volume_to_slices(x, plane)  # no_x'_t
        x_t_kept = _kept_slices(x, kept)
        before = None if x0_before is None else volume_to_slices(x0_before, plane)
        latest = {plane: None if before is None else before.clamp(-1, 1)}

        def estimate(xs, q, latest_now=False):  # the corrected x0 estimate of q's slices xs
            means = (None if told is None else slice_condition(
                xs, float(schedule.alphas_cumprod[i]), told, fraction_spread[q], count))
            given = latest.get(q) if self_condition else None
            x0 = schedule.x0_from_output(xs, i, eps_fn(xs, t_model, labels[q], means, given))
            if self_condition and latest_now:  # the plane being denoised: the latest
                latest[q] = x0.clamp(-1, 1)
            if anchor is not None:
                x0 = _anchor_mean(x0, anchor, count)
            return project_x0(x0, mode)

        def others(xs):  # the other two planes' estimates of plane slices xs, as volumes
            v = slices_to_volume(xs, plane, count, box)
            for q in PLANES:
                if q != plane:
                    yield slices_to_volume(estimate(volume_to_slices(v, q), q), q, count, box)

        def consensus(xs, x0):  # the mean of all three planes' estimates, as plane slices
            total = slices_to_volume(x0, plane, count, box)
            for e in others(xs):
                total += e
            return volume_to_slices(total / len(PLANES), plane)

        def vote(xs, x0):  # two planes' estimate where they outvote the step's plane
            return volume_to_slices(
                plane_vote(slices_to_volume(x0, plane, count, box), *others(xs), num_phases),
                plane)

        def denoise(xs, q, pool=None):  # one reverse step in plane q: (x0, x_{t-1})
            x0 = estimate(xs, q, latest_now=True)
            if pool is not None:
                x0 = pool(xs, x0)
            if decoded is not None:
                x0, offsets["last"] = _anchor_decoded(x0, decoded, count, num_phases,
                                                      offsets["last"])
            if settings.solver == "ddim":
                return x0, schedule.ddim_step(xs, i, x0, settings.eta, noise(xs))
            if settings.solver == "dpm2m":
                history = (before if q == plane or x0_before is None
                           else volume_to_slices(x0_before, q))
                return x0, schedule.dpm2m_step(xs, i, x0, history)
            return x0, schedule.p_step_from_x0(xs, i, x0, noise(xs))

        xs, xs_plane = plain, plane
        nh = settings.harmonize if settings.harmonizes(k, total) else 0
        for r in range(nh):  # Eq. 16: denoise, then renoise one step
            q = PLANES[settings.harmonize_plane(k, r, nh)]
            xs, xs_plane = _recut(xs, xs_plane, q, count, box), q
            xs = schedule.q_step(denoise(xs, q)[1], i, noise(xs))
            if kept:  # RePaint's resampling: the known slices back in at this noise level
                v = slices_to_volume(xs, q, count, box)
                _impose(v, kept, schedule, i, noise)
                xs = volume_to_slices(v, q)
        xs = _recut(xs, xs_plane, plane, count, box)
        if nh:
            xs = _blend(xs, plain, settings.gamma, settings.match_variance)
        x0, x_prev = denoise(xs, plane, vote if settings.votes(k) else
                             consensus if settings.consensus(k, total) else None)
        x = slices_to_volume(x_prev, plane, count, box)
        x0_vol = slices_to_volume(x0, plane, count, box)
        _impose(x, kept, schedule, i - 1, noise, before=x_t_kept)
        _impose(x0_vol, kept, schedule, -1, noise)
        x0_before = x0_vol
        calls += settings.step_calls(k, total, told is not None)
        yield SampleStep(k + 1, total, plane, x0_vol, num_phases, calls, total_calls)


def plane_vote(own: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
               num_phases: int) -> torch.Tensor:
    """The step's plane's x0 estimate ``own`` ``[N, C, Z, Y, X]``, except where the other
    two planes' estimates ``a`` and ``b`` decode to the same phase and ``own`` to another:
    there their mean."""
    pa, pb = decode_volume(a, num_phases), decode_volume(b, num_phases)
    outvoted = ((pa == pb) & (decode_volume(own, num_phases) != pa)).unsqueeze(1)
    return torch.where(outvoted, (a + b) / 2, own)


def _recut(xs: torch.Tensor, plane: str, to: str, count: int, box) -> torch.Tensor:
    """Slices ``xs`` of ``plane`` cut again along ``to`` (themselves when the same)."""
    return xs if plane == to else volume_to_slices(slices_to_volume(xs, plane, count, box), to)


def _kept_slices(x: torch.Tensor, kept) -> list[torch.Tensor]:
    """The latent's kept slices ``[N, C, rows, cols]`` (copies), one per kept section."""
    return [x.select(2 + fixed_axis(plane), index).clone() for plane, index, _ in kept]


def _impose(x: torch.Tensor, kept, schedule: Schedule, i: int, noise,
            before: list[torch.Tensor] | None = None) -> None:
    """Write each kept section ``(plane, index, code [C, rows, cols])`` into the volumes
    ``x [N, C, Z, Y, X]`` in place, at step ``i`` (the clean code for ``i < 0``).

    Without ``before``: drawn from q(x_i | code). With ``before``, the kept slices of the
    latent one step earlier (step i + 1): drawn from q(x_i | x_{i+1}, code), the exact
    reverse of the forward process given the known section, whose marginal is the same
    q(x_i | code) but which moves on from the slice the neighbours were denoised with,
    instead of jumping to fresh noise at every step (which left seams in the neighbours).
    """
    for j, (plane, index, code) in enumerate(kept):
        view = x.select(2 + fixed_axis(plane), index)  # [N, C, rows, cols]
        value = code.to(x.dtype).expand_as(view)
        if i >= 0 and before is None:
            value = schedule.q_sample(value, i, noise(view))
        elif i >= 0:
            k = i + 1  # the step just taken, from x_{k} to x_{k-1} = x_i
            value = (schedule.posterior_mean(value, before[j], k)
                     + float(np.sqrt(schedule.posterior_variance[k])) * noise(view))
        view.copy_(value)


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


def _anchor_decoded(x0: torch.Tensor, fractions: torch.Tensor, count: int, num_phases: int,
                    start: torch.Tensor | None = None, iterations: int = 20,
                    tol: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Offset each volume's x0 estimate, per channel, so that its DECODED phase fractions
    are ``fractions`` ``[K]``; returns (x0, offsets ``[N, C]`` to warm-start the next call).

    ``x0`` is one plane's slices ``[N * S, C, H, W]`` (volume n's slices contiguous). The
    mean anchor holds the continuous estimate's mean, which decoding does not preserve for
    K >= 3 (argmax) nor exactly for K = 2 (sign). Binary: the offset that puts the
    threshold between the (1 - f1) quantiles, exact. K >= 3: per-channel offsets found by
    per-channel secant steps on the argmax fractions (argmax passes only, no network call;
    ``start``, the previous step's offsets, makes it a few passes), to ``tol``. Only a
    constant per volume and channel moves, as for the mean anchor.
    """
    b, c, h, w = x0.shape
    per_volume = b // count
    if num_phases == 2:
        v = x0.reshape(count, -1)
        n = v.shape[1]
        ones = int(round(float(fractions[1]) * n))
        if ones <= 0:
            t = v.max(dim=1).values + 1e-3
        elif ones >= n:
            t = v.min(dim=1).values - 1e-3
        else:  # n - ones values at or below t, the other ones above
            t = 0.5 * (v.kthvalue(n - ones, dim=1).values + v.kthvalue(n - ones + 1, dim=1).values)
        return x0 - t.repeat_interleave(per_volume).reshape(b, 1, 1, 1), None
    v = x0.reshape(count, per_volume, c, h, w)
    flat = x0.reshape(count, per_volume, c, h * w).transpose(2, 3).reshape(count, -1, c)
    n = flat.shape[1]  # [N, voxels, C]: argmax over the last, contiguous axis is fastest
    base = (torch.arange(count, device=x0.device) * c).reshape(count, 1)
    target = fractions.to(x0.dtype).reshape(1, c)

    def error(off):
        labels = (flat + off.unsqueeze(1)).argmax(dim=2) + base
        counts = torch.bincount(labels.reshape(-1), minlength=count * c).reshape(count, c)
        return target - counts.to(x0.dtype) / n

    off = (torch.zeros(count, c, dtype=x0.dtype, device=x0.device) if start is None
           else start.to(x0.dtype).clone())
    err = error(off)
    slope = torch.full_like(off, 2.0)  # d offset / d fraction, refined by secant steps
    for _ in range(iterations):
        if err.abs().max() <= tol:
            break
        new_off = off + slope * err
        new_err = error(new_off)
        d_frac = err - new_err  # the fraction gained by the move
        ok = d_frac.abs() > 1e-4
        slope = torch.where(ok, ((new_off - off) / torch.where(ok, d_frac, 1.0)).clamp(0.05, 20),
                            slope * 2)
        off, err = new_off, new_err
    return (v + off.reshape(count, 1, c, 1, 1)).reshape(b, c, h, w), off


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

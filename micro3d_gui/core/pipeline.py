"""The pipeline: a checkpoint -> 3D volumes (its network and schedule wired to the sampler's
chain, :func:`~.diffusion.sampler.chain_progressive`), with a given number of steps
and :class:`~.diffusion.settings.SamplerSettings`. Callers want the recipe layer above it,
:func:`micro3d_gui.core.recipe.sample_progressive`, which checks the inputs first."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np
import torch

from .checkpoint import checkpoint_symmetry, model_from_checkpoint, schedule_from_checkpoint
from .distributed import SINGLE, Distributed
from .device import (LAYOUT_PROBE_SLICES, autocast, enable_fast_matmul, fastest_autocast,
                     fastest_chunk, fastest_memory_format, maybe_compile)
from .diffusion.fraction_condition import plane_spreads
from .diffusion.respace import respace
from .diffusion.unet import UNetConfig
from .slice_workers import SliceWorkers, cpu_workers
from .memory import default_budget, largest_slice, padded, plan_sampling
from .diffusion.sampler import KeptSection, SampleStep, chain_progressive, run_to_end
from .diffusion.settings import SamplerSettings
from .encoding import encode, num_channels
from .planes import PLANES

log = logging.getLogger(__name__)


def pipeline_progressive(
    ckpt: dict,
    shape: tuple[int, int, int],
    count: int,
    sampling_steps: int | None,
    settings: SamplerSettings,
    *,
    periodic: bool = False,
    seed: int | None = None,
    device: torch.device | str = "cpu",
    should_stop: Callable[[], bool] | None = None,
    fractions: Sequence[float] | None = None,
    keep: Sequence[KeptSection] = (),
    memory_budget: int | None = None,
    compile_network: bool = False,
    dist: Distributed = SINGLE,
    start: tuple[np.ndarray, int] | None = None,
) -> Iterator[SampleStep]:
    """Yield a :class:`SampleStep` per reverse step for ``count`` volumes ``(Z, Y, X)``.

    ``sampling_steps`` respaces the training schedule (None = all T steps). ``fractions``
    ``[K]``: the phase fractions the anchor holds and, for a network with the fraction
    condition, that each volume's slices are told around (None: the training micrographs');
    ``keep``: sections every volume holds (see the sampler). No defaults here: the steps
    and settings are a recipe's (:mod:`.recipe`).
    Each network call takes as many slices as fit ``memory_budget`` bytes (default: a share
    of the free memory, :func:`~.memory.default_budget`), at most ``settings.max_batch``,
    and on a CPU no more than run fastest (:func:`~.device.fastest_chunk`); a
    box that cannot fit at all raises :class:`~.memory.VolumeTooLarge` before anything is
    allocated. On CUDA, TF32 is on and bf16/fp16 autocast is used where a probe finds it
    faster; ``compile_network`` runs the network through ``torch.compile`` (a cold cost
    first, :data:`~.device.COMPILE_COLD_COST_S`). ``dist``: the processes that share each
    network call's slices (:mod:`.distributed`); on CPU the default budget is split among
    the processes of this machine, which each hold the whole latent. ``start = (labels,
    i0)``: label volumes ``[count, Z, Y, X]`` noised to respaced step ``i0`` (0 = the
    last, least noisy) begin the chain, which runs the rest of its steps (SDEdit; see the
    sampler).
    """
    if any(int(s) < 1 for s in shape):
        raise ValueError(f"box sides must be positive, got {tuple(shape)}")
    device = torch.device(device)
    if fractions is None:
        fractions = training_fractions(ckpt)
    conditioned = uses_fraction_condition(ckpt, fractions)
    branches = settings.calls_per_denoise(conditioned)
    if memory_budget is None and device.type == "cpu" and dist.local_size > 1:
        memory_budget = default_budget(device) // dist.local_size
    plan = plan_sampling(UNetConfig.from_dict(ckpt["model_config"]), shape, count,
                         branches=branches, extra_copies=settings.extra_volume_copies,
                         max_batch=settings.max_batch,
                         budget=memory_budget, device=device)
    model = model_from_checkpoint(ckpt, device)
    model.set_periodic(periodic)
    schedule = schedule_from_checkpoint(ckpt)
    schedule = respace(schedule, sampling_steps or schedule.num_steps)
    if start is not None:
        start = _encoded_start(start, ckpt["num_phases"], count, shape, schedule.num_steps)
    k = ckpt["num_phases"]
    channels = num_channels(k)
    cfg = model.config
    m = cfg.size_multiple
    side = [padded(s, m) for s in shape[1:]]  # an xy slice, padded as the sampler does
    probe = torch.zeros(min(LAYOUT_PROBE_SLICES, plan.slices_per_call * branches), channels,
                        *side, device=device)
    enable_fast_matmul(device)
    # The threads share each call's slices out (the probes time the calls that way too);
    # a compiled network runs whole (torch.compile's tracing is not for concurrent calls).
    with SliceWorkers(1 if compile_network else cpu_workers(device)) as workers:
        fmt = fastest_memory_format(model, probe, workers.split(model))
        amp = fastest_autocast(model, probe)
        # Slices per call: what memory allows, cut to what runs fastest on a CPU; one
        # number for all processes, which meet at every call.
        example = torch.zeros(1, channels, *largest_slice(shape, m), device=device)
        fastest = fastest_chunk(workers.split(model), example,
                                plan.slices_per_call * branches, fmt)
        settings = replace(settings, max_batch=max(branches, dist.smallest(fastest, device)))
        log.info("%d slices per network call (memory allows %d), %d worker thread(s)",
                 settings.max_batch // branches, plan.slices_per_call, workers.workers)
        net = maybe_compile(model, compile_network)
        # A stand-in plane is denoised with its source's label and told its source's spread.
        symmetry = checkpoint_symmetry(ckpt)
        # A network with the fraction condition is told each slice's fraction around the
        # target.
        spread = (plane_spreads(ckpt.get("data_summary"), PLANES, channels) if conditioned
                  else None)
        spread = None if spread is None else {p: spread[s] for p, s in symmetry.sources().items()}

        def network(x, t, c, means=None, x0_self=None):
            if x0_self is not None:
                x0_self = x0_self.contiguous(memory_format=fmt)
            with autocast(device, amp):
                return net(x.contiguous(memory_format=fmt), t, c, means, x0_self).float()

        with torch.inference_mode():
            yield from chain_progressive(
                workers.split(network), schedule, shape, k, channels, count, settings,
                seed=seed, device=device, size_multiple=cfg.size_multiple,
                periodic=periodic, should_stop=should_stop, target_fractions=fractions,
                keep=keep, fraction_spread=spread, plane_labels=symmetry.labels(),
                dist=dist, self_condition=cfg.self_condition, start=start,
            )


def _encoded_start(start, num_phases: int, count: int, shape, steps: int):
    """``(labels [count, Z, Y, X], i0)`` -> ``(encoded [count, C, Z, Y, X], i0)``; ValueError
    for volumes of another box or count, or a step outside ``0 .. steps - 1``."""
    labels, i0 = np.asarray(start[0]), int(start[1])
    if labels.shape != (count, *(int(s) for s in shape)):
        raise ValueError(f"start volumes of shape {labels.shape}, expected "
                         f"{(count, *shape)}")
    if not 0 <= i0 < steps:
        raise ValueError(f"start step {i0} outside 0 .. {steps - 1}")
    return encode(labels, num_phases).movedim(2, 1), i0


def uses_fraction_condition(ckpt: dict, fractions: Sequence[float] | None = None) -> bool:
    """Whether sampling ``ckpt`` tells the network each slice's fractions: it was trained
    with the fraction condition and there is a target (``fractions``, else the training
    micrographs')."""
    return (UNetConfig.from_dict(ckpt["model_config"]).fraction_conditioning
            and (fractions is not None or training_fractions(ckpt) is not None))


def training_fractions(ckpt: dict) -> list[float] | None:
    """Phase fractions of a checkpoint's training micrographs, pooled over the planes
    (weighted by image count); None for a checkpoint without a data summary."""
    summary = ckpt.get("data_summary")
    if not summary:
        return None
    weights = [summary[p]["images"] for p in summary]
    fractions = [summary[p]["volume_fractions"] for p in summary]
    return [sum(w * f[k] for w, f in zip(weights, fractions)) / sum(weights)
            for k in range(ckpt["num_phases"])]


def run_pipeline(ckpt: dict, shape, count: int, sampling_steps: int | None,
                 settings: SamplerSettings,
                 callback: Callable[[SampleStep], object] | None = None, **kwargs) -> torch.Tensor:
    """Run :func:`pipeline_progressive` to the end: labels ``[N, Z, Y, X]`` uint8 (CPU).

    ``callback`` as in :func:`~.diffusion.sampler.run_to_end`.
    """
    steps = pipeline_progressive(ckpt, shape, count, sampling_steps, settings, **kwargs)
    return run_to_end(steps, callback).labels().cpu()

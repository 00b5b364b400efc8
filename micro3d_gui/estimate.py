"""How long sampling will take on this machine, from a few timed network calls (no Qt).

One reverse step denoises every slice of the volume along its target plane, so whatever the
plane each network call of a run pushes ``count * Z * Y * X`` voxels through the network
(a run's calls per slice batch: ``SamplerSettings.network_calls``, which counts n_h, the
steps that harmonize and guidance, METHOD.md Sec. 3). What one pixel costs moves with the
slice's size (on a CPU by up to a third between 64^2 and 256^2 slices; docs/benchmarks.md,
Speed), so :func:`probe_speed` times calls at a small and a large slice side, and
:func:`sampling_seconds` reads each plane's cost off them for the box's slices.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch

#: Slice sides the probe times (px): the default box's, and a large box's.
PROBE_SIDES = (64, 256)
#: Slice pixels per timed call (16 slices of 64^2, one of 256^2): enough to spread the fixed
#: cost of a call (tens of ms for the tiny preset on a CPU), few enough for a probe at load.
PROBE_PIXELS = 1 << 16
#: A call quicker than this is timed again at twice the pixels, up to PROBE_MAX_PIXELS (a
#: 64^3 box's whole call): a cheap network's fixed cost per call would otherwise weigh in
#: the probe as it does not in the sampler's larger calls.
PROBE_MIN_CALL_S = 0.1
PROBE_MAX_PIXELS = 1 << 18
#: A larger side is timed only where the smaller one's figure puts its call under this
#: (the paper preset on a CPU would take a minute); above it the smaller side's figure holds.
PROBE_CALL_LIMIT_S = 1.0


def probe_speed(ckpt: dict, device: torch.device | str = "cpu") -> dict[int, float]:
    """Seconds per slice pixel of a conditional network call of the checkpoint's model, per
    slice side ``{side px: seconds}`` (the sides of :data:`PROBE_SIDES` that were timed),
    each a call of :data:`PROBE_PIXELS` pixels (or one slice per worker thread, where
    that is more), timed again at twice the slices while it takes under
    :data:`PROBE_MIN_CALL_S` (up to :data:`PROBE_MAX_PIXELS`).

    Each: a warm-up call, then the mean of two (:func:`~.core.device.time_call`). On a CPU
    in both memory layouts, the faster counting, as the sampler runs the faster
    (:func:`~.core.device.fastest_memory_format`; which one wins can change with the slice
    size), and the slices shared among the threads as the sampler shares them
    (:mod:`~.core.slice_workers`).
    """
    from .core.checkpoint import model_from_checkpoint
    from .core.encoding import num_channels
    from .core.slice_workers import SliceWorkers, cpu_workers

    device = torch.device(device)
    model = model_from_checkpoint(ckpt, device)
    channels = num_channels(int(ckpt["num_phases"]))
    speed: dict[int, float] = {}
    with torch.inference_mode(), SliceWorkers(cpu_workers(device)) as workers:
        for side in PROBE_SIDES:
            # at least a slice per worker, as the sampler's calls of large slices have
            slices = max(workers.workers, PROBE_PIXELS // side ** 2)
            if speed and max(speed.values()) * slices * side ** 2 > PROBE_CALL_LIMIT_S:
                break
            speed[side] = probe_call(model, workers, (slices, channels, side, side),
                                     device)[0]
    return speed


def probe_call(model, workers, shape: tuple[int, int, int, int],
               device: torch.device) -> tuple[float, int]:
    """(seconds per slice pixel, slices timed) of the network calls of
    :func:`probe_speed`: slices ``shape`` ``[N, C, H, W]``, then twice N while a call
    takes under :data:`PROBE_MIN_CALL_S` and the next stays within
    :data:`PROBE_MAX_PIXELS`. ``model``: the network; ``workers``: the
    :class:`~.core.slice_workers.SliceWorkers` whose ``split`` runs the calls on a CPU."""
    from .core.device import memory_format_seconds, time_call

    slices, *rest = shape
    pixels = rest[-2] * rest[-1]
    while True:
        x = torch.zeros(slices, *rest, device=device)
        seconds = (min(memory_format_seconds(model, x, workers.split(model)).values())
                   if device.type == "cpu" else time_call(model, x))
        if seconds >= PROBE_MIN_CALL_S or 2 * slices * pixels > PROBE_MAX_PIXELS:
            return seconds / (slices * pixels), slices
        slices *= 2


def pixel_seconds(speed: Mapping[int, float], pixels: int) -> float:
    """Seconds per pixel of slices of ``pixels`` pixels: log-linear in the side between the
    timed sides of ``speed`` (:func:`probe_speed`), the nearest figure outside them."""
    sides = sorted(int(s) for s in speed)
    side = math.sqrt(pixels)
    if side <= sides[0]:
        return float(speed[sides[0]])
    for low, high in zip(sides, sides[1:]):
        if side <= high:
            w = math.log(side / low) / math.log(high / low)
            return float((1 - w) * speed[low] + w * speed[high])
    return float(speed[sides[-1]])


def sampling_seconds(speed: Mapping[int, float], shape: tuple[int, int, int], count: int,
                     network_calls: int) -> float:
    """Estimated wall time of sampling ``count`` volumes ``shape`` (Z, Y, X) in a run of
    ``network_calls`` calls per slice batch (``Recipe.network_calls``): the steps cycle
    through the planes, so each call is priced at the mean of the three planes' slices
    (xy: Y x X, xz: Z x X, yz: Z x Y pixels)."""
    z, y, x = (int(s) for s in shape)
    per_voxel = sum(pixel_seconds(speed, a) for a in (y * x, z * x, z * y)) / 3
    return int(network_calls) * int(count) * z * y * x * per_voxel


def about(seconds: float) -> str:
    """'about 30 s', 'about 2 min', 'about 1.5 h' (rounded for a person)."""
    if seconds < 90:
        return f"about {max(5, 5 * round(seconds / 5)):.0f} s"
    if seconds < 5400:
        return f"about {round(seconds / 60):.0f} min"
    return f"about {seconds / 3600:.1f} h"

"""Choosing the compute device and the fastest CPU layout, by probing, not by assumption."""
from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

#: The devices offered by name (:func:`resolve_device` also takes any torch device, e.g.
#: ``cuda:1``).
DEVICES = ("auto", "cpu", "cuda", "mps")
#: What every face asks for unless told otherwise: the best device here.
DEFAULT_DEVICE = DEVICES[0]


def resolve_device(name: str = DEFAULT_DEVICE) -> torch.device:
    """``auto`` -> CUDA, else Apple MPS, else CPU; otherwise ``torch.device(name)``.

    Raises ValueError with a readable message when the named device is not available.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was asked for but this PyTorch build sees no CUDA GPU; use --device cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("Apple MPS was asked for but is not available; use --device cpu")
    return dev


def time_call(model: Callable[..., torch.Tensor], x: torch.Tensor, repeats: int = 2
              ) -> float:
    """Mean seconds of ``repeats`` calls of ``model`` on ``x`` after a warm-up call: a
    shape's first call also builds its kernels (oneDNN, cuDNN), which costs a small batch
    as much as its work. CUDA's queued work is waited for."""
    t = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    model(x, t, t)
    _finish(x.device)
    start = time.perf_counter()
    for _ in range(repeats):
        model(x, t, t)
    _finish(x.device)
    return (time.perf_counter() - start) / repeats


def _finish(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: Slices in the example batch the layout is probed on (few: the probe runs every format).
LAYOUT_PROBE_SLICES = 8


@torch.inference_mode()
def fastest_memory_format(model: nn.Module, example: torch.Tensor,
                          run: Callable[..., torch.Tensor] | None = None
                          ) -> torch.memory_format:
    """On CPU, time a forward pass in contiguous vs channels_last and keep the faster.

    Which is faster for the small U-Nets is a property of the machine (docs/benchmarks.md,
    Speed), so it is measured. GPUs keep the default. The model is left in
    the chosen format. ``run``: what calls the model, as the sampler will (default: the
    model itself; e.g. :meth:`~.slice_workers.SliceWorkers.split`).
    """
    if example.device.type != "cpu":
        return torch.contiguous_format
    times = memory_format_seconds(model, example, run)
    best = min(times, key=times.get)
    model.to(memory_format=best)
    return best


@torch.inference_mode()
def memory_format_seconds(model: nn.Module, example: torch.Tensor,
                          run: Callable[..., torch.Tensor] | None = None
                          ) -> dict[torch.memory_format, float]:
    """Seconds of a forward pass of ``example`` per memory layout (a warm-up call, then
    the mean of two), through ``run`` (default: the model itself); the model is left in
    the last layout timed."""
    times = {}
    for fmt in (torch.contiguous_format, torch.channels_last):
        model.to(memory_format=fmt)
        times[fmt] = time_call(run or model, example.contiguous(memory_format=fmt))
    return times


#: On CPU a network call of at most this many slice pixels runs fastest whole: below it
#: the per-call overhead dominates, so the memory plan's chunk stands unprobed (the
#: default 64^3 box: 64 slices of 64^2).
WHOLE_CALL_PIXELS = 1 << 18
#: The chunk probe's first batch holds at least this many pixels (smaller ones only pay
#: the per-call overhead).
FIRST_PROBE_PIXELS = 1 << 14
#: The probe stops after PROBE_PATIENCE batches in a row this much slower per slice than
#: the best so far: one slow call (a neighbour's burst of work) does not end the search.
PROBE_TOLERANCE = 1.1
PROBE_PATIENCE = 2


@torch.inference_mode()
def fastest_chunk(model: Callable[..., torch.Tensor], example: torch.Tensor, most: int,
                  memory_format: torch.memory_format = torch.contiguous_format) -> int:
    """On CPU, the slices per network call (at most ``most``, the memory plan's) that run
    fastest per slice for slices shaped like ``example`` ``[1, C, H, W]``, in the model's
    ``memory_format``.

    A call of many large slices runs its activations through main memory rather than
    the cache, and costs up to twice as much per pixel as a call of a few
    (docs/benchmarks.md, Speed), by an amount that depends on the network and the machine;
    so batches from about :data:`FIRST_PROBE_PIXELS` up, doubling, are timed once each
    (after a warm-up call of the same batch, whose kernel set-up would favour large ones)
    until :data:`PROBE_PATIENCE` in a row are :data:`PROBE_TOLERANCE` slower per slice than
    the best. GPUs, and calls of at most :data:`WHOLE_CALL_PIXELS`, keep ``most``.
    """
    pixels = example.shape[-2] * example.shape[-1]
    if example.device.type != "cpu" or most * pixels <= WHOLE_CALL_PIXELS:
        return most
    batch = 1
    while batch * 2 <= most and batch * pixels < FIRST_PROBE_PIXELS:
        batch *= 2
    best, best_time, slower = most, float("inf"), 0
    while True:
        x = example.expand(batch, *example.shape[1:]).contiguous(memory_format=memory_format)
        per_slice = time_call(model, x, repeats=1) / batch
        if per_slice < best_time:
            best, best_time = batch, per_slice
        slower = slower + 1 if per_slice > PROBE_TOLERANCE * best_time else 0
        if slower == PROBE_PATIENCE or batch == most:
            return best
        batch = min(2 * batch, most)


def enable_fast_matmul(device: torch.device | str) -> None:
    """On CUDA, let float32 matmuls and convolutions use TF32 tensor cores (Ampere and
    later; 10 mantissa bits, ample for a denoiser). A process-wide torch switch, set only
    when a CUDA device is in use; elsewhere nothing changes."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


@torch.inference_mode()
def fastest_autocast(model: nn.Module, example: torch.Tensor, margin: float = 0.9
                     ) -> torch.dtype | None:
    """On CUDA, time a forward pass in float32 and under bf16 / fp16 autocast and return the
    autocast dtype that is at least ``1 / margin`` times faster (None: stay float32).

    CPUs stay float32 without a probe: bf16 autocast slows the U-Net on AVX2 CPUs
    (docs/benchmarks.md, Speed), and CPUs with AMX are not what this app meets; a GPU's
    gain depends on the card, so it is measured.
    """
    if example.device.type != "cuda":
        return None
    candidates = [torch.float16] + ([torch.bfloat16] if torch.cuda.is_bf16_supported() else [])

    def timed(dtype):  # time_call's warm-up call is where cudnn picks its kernels
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            return time_call(model, example)

    base = timed(None)
    times = {d: timed(d) for d in candidates}
    best = min(times, key=times.get)
    return best if times[best] < margin * base else None


def autocast(device: torch.device | str, dtype: torch.dtype | None):
    """``torch.autocast`` for ``dtype`` on the device's type, or a no-op for None."""
    device = torch.device(device)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def to_device(tensors, device: torch.device | str):
    """Move CPU tensors to ``device``; on CUDA through pinned memory, asynchronously (the
    copy overlaps the previous step's kernels)."""
    device = torch.device(device)
    if device.type != "cuda":
        return tuple(t.to(device) for t in tensors)
    return tuple(t.pin_memory().to(device, non_blocking=True) for t in tensors)


#: torch.compile's first call traces and compiles the network: about 30 s on the 2-core
#: CPU (BRIEF), repaid only by long runs; every new batch shape may compile again.
COMPILE_COLD_COST_S = 30


def maybe_compile(model: nn.Module, enabled: bool) -> nn.Module:
    """``torch.compile(model)`` when ``enabled`` (dynamic shapes: the last chunk of a plane
    is smaller), else the model itself."""
    return torch.compile(model, dynamic=True) if enabled else model

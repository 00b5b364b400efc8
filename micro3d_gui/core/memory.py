"""How much memory sampling a box needs, and how many slices one network call may take.

Peak memory of the multi-plane sampler = a few full-size copies of the latent (the latent,
one plane's slices, the harmonized slices, the x0 estimates, a noise draw and the estimate
handed to the viewer: :data:`VOLUME_COPIES`) + the network's weights + the working set of
one network call, which grows with the slices in that call. The sampler streams a plane's
slices through the network in chunks (``SamplerSettings.max_batch``), so choosing the chunk
from a memory budget bounds the peak; a box whose latent copies alone do not fit is refused
up front, before anything big is allocated.

The working set per slice is counted, not guessed: the U-Net runs once on the ``meta``
device (shapes only, no memory) under a dispatch mode that adds up the bytes of the tensors
alive at each moment; :data:`WORKING_SET_FACTOR` covers what that count cannot see (oneDNN's
layout copies, the allocator's slack), and ``benchmarks/scaling.py`` checks the estimate
against the peak RSS it measures.
"""
from __future__ import annotations

import functools
import os
import weakref
from dataclasses import dataclass

import torch

from ..errors import InputError
from .diffusion.unet import UNet, UNetConfig
from .planes import PLANES, num_slices, slice_shape

#: Full-size float32 copies of the latent alive at the peak of one reverse step (see the
#: module docstring; the sampler's step is written to hold no more).
VOLUME_COPIES = 7
#: Measured peak / counted working set of a network call, on the safe side
#: (docs/benchmarks.md, Scaling with the box).
WORKING_SET_FACTOR = 1.5
#: What the runtime adds whatever the box (oneDNN scratch, the layout probe, the
#: allocator), from measured peaks (docs/benchmarks.md, Scaling with the box).
RUNTIME_BYTES = 256 << 20
#: Default share of the free memory (RAM, or the GPU's for CUDA) that sampling may use.
BUDGET_FRACTION = {"cpu": 0.5, "cuda": 0.8, "mps": 0.5}
#: On CPU a larger batch runs no faster, often slower (the pipeline times the slices per
#: call, ``core.device.fastest_chunk``), so more memory buys no speed: the working set
#: defaults to at most this.
CPU_WORKING_SET_CAP = 1 << 30

GiB = float(1 << 30)


class VolumeTooLarge(InputError):
    """A box that cannot be sampled in this machine's memory (message: need and have)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of one sampling run; ``slices_per_call`` slices go through each network call."""

    shape: tuple[int, int, int]
    latent_bytes: int
    weights_bytes: int
    slice_bytes: int  # working set of one slice in one network call (factor included)
    slices_per_call: int
    #: Full-size copies of the latent at the peak (VOLUME_COPIES + the sampler's extra).
    copies: int = VOLUME_COPIES
    #: Volumes sampled together (all held at once).
    count: int = 1

    @property
    def fixed_bytes(self) -> int:
        """What any chunk size needs: the latent's copies, the weights, the runtime."""
        return self.copies * self.latent_bytes + self.weights_bytes + RUNTIME_BYTES

    @property
    def minimum_bytes(self) -> int:
        """The need with one slice per network call (slow, but the least there is)."""
        return self.fixed_bytes + self.slice_bytes

    @property
    def total_bytes(self) -> int:
        """Estimated peak with ``slices_per_call`` slices per call."""
        return self.fixed_bytes + self.slice_bytes * self.slices_per_call


class _LiveBytes(torch.utils._python_dispatch.TorchDispatchMode):
    """Bytes of the tensors created under this mode that are still alive, and their peak."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {id(a) for a in torch.utils._pytree.tree_leaves((args, kwargs))}
        for t in torch.utils._pytree.tree_leaves(out):
            # in-place ops return an input, views share its storage: neither allocates
            if isinstance(t, torch.Tensor) and id(t) not in inputs and not t._is_view():
                nbytes = t.untyped_storage().nbytes()
                self.live += nbytes
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._free, nbytes)
        return out

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes


@functools.lru_cache(maxsize=64)
def network_bytes_per_slice(config: UNetConfig, rows: int, cols: int,
                            dtype: torch.dtype = torch.float32) -> int:
    """Peak bytes of the activations of one ``rows x cols`` slice in an inference call,
    counted on the meta device (the count is linear in the batch: two batch sizes, 2 and
    4, give it)."""
    with torch.device("meta"):
        model = UNet(config).to(dtype).eval()

    def peak(batch: int) -> int:
        x = torch.empty(batch, config.in_channels, rows, cols, device="meta", dtype=dtype)
        t = torch.zeros(batch, dtype=torch.long, device="meta")
        with torch.inference_mode(), _LiveBytes() as live:
            model(x, t, t)
        return live.peak

    return max(1, (peak(4) - peak(2)) // 2)


def free_bytes(device: torch.device | str = "cpu") -> int:
    """Memory free for this process now: the GPU's for CUDA, else the system's RAM
    (Apple's MPS shares it)."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        import psutil  # noqa: PLC0415

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def default_budget(device: torch.device | str = "cpu", available: int | None = None) -> int:
    """Bytes sampling may use by default: a share of the free memory (on CPU with the
    working set capped, see :data:`CPU_WORKING_SET_CAP`)."""
    device = torch.device(device)
    available = free_bytes(device) if available is None else available
    return int(BUDGET_FRACTION.get(device.type, 0.5) * available)


def padded(side: int, multiple: int) -> int:
    return -(-int(side) // multiple) * multiple


def largest_slice(shape, multiple: int) -> tuple[int, int]:
    """(rows, cols) of the largest slice of a ``(Z, Y, X)`` box over the three planes,
    each side padded to ``multiple`` as the sampler pads it."""
    return max(((padded(r, multiple), padded(c, multiple))
                for r, c in (slice_shape(p, shape) for p in PLANES)),
               key=lambda rc: rc[0] * rc[1])


def estimate_sampling(config: UNetConfig, shape, count: int = 1, *, branches: int = 1,
                      extra_copies: int = 0, max_batch: int = 256, budget: int | None = None,
                      device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                      available: int | None = None) -> MemoryEstimate:
    """Memory of sampling ``count`` volumes of ``shape = (Z, Y, X)`` with a network of
    ``config``, and the slices per network call that fit ``budget`` bytes (default
    :func:`default_budget`), at most ``max_batch``; each call's batch is that times
    ``branches``, the network evaluations per denoising that guidance asks for
    (``SamplerSettings.calls_per_denoise``); ``extra_copies``: latent copies the sampler's
    settings hold beyond :data:`VOLUME_COPIES` (``SamplerSettings.extra_volume_copies``).

    Only shapes are looked at; nothing of the box's size is allocated.
    """
    device = torch.device(device)
    box = tuple(int(s) for s in shape)
    channels = config.in_channels
    latent = 4 * count * channels * box[0] * box[1] * box[2]
    # The plane with the largest (padded) slices sets the working set per slice.
    per_slice = network_bytes_per_slice(config, *largest_slice(box, config.size_multiple),
                                        dtype)
    per_slice = int(WORKING_SET_FACTOR * per_slice * branches)
    weights = sum(p.numel() for p in _meta_model(config).parameters()) * 4
    copies = VOLUME_COPIES + int(extra_copies)
    est = MemoryEstimate(box, latent, weights, per_slice, 1, copies, count)
    if budget is None:
        budget = default_budget(device, available)
        if device.type == "cpu":
            budget = min(budget, est.fixed_bytes + CPU_WORKING_SET_CAP)
    most = max(num_slices(p, box) for p in PLANES) * count
    fit = (budget - est.fixed_bytes) // per_slice
    chunk = int(max(1, min(fit, max_batch // branches, most)))
    return MemoryEstimate(box, latent, weights, per_slice, chunk, copies, count)


@functools.lru_cache(maxsize=8)
def _meta_model(config: UNetConfig) -> UNet:
    with torch.device("meta"):
        return UNet(config)


def check_fits(estimate: MemoryEstimate, device: torch.device | str = "cpu",
               available: int | None = None) -> None:
    """Raise :class:`VolumeTooLarge` when even one slice per call would not fit in the free
    memory, with the need and what the machine has."""
    device = torch.device(device)
    available = free_bytes(device) if available is None else available
    if estimate.minimum_bytes > available:
        z, y, x = estimate.shape
        box = f"{z}^3" if z == y == x else f"{z}x{y}x{x}"
        what = (f"a {box} volume needs" if estimate.count == 1 else
                f"{estimate.count} volumes of {box} need")
        where = "this GPU has" if device.type == "cuda" else "this machine has"
        raise VolumeTooLarge(
            f"{what} about {estimate.minimum_bytes / GiB:.1f} GiB to sample; "
            f"{where} {available / GiB:.1f} GiB free. Sample a smaller box (or fewer "
            "volumes at once), or on a machine with more memory")


def plan_sampling(config: UNetConfig, shape, count: int = 1, *, branches: int = 1,
                  extra_copies: int = 0, max_batch: int = 256, budget: int | None = None,
                  device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
                  ) -> MemoryEstimate:
    """:func:`estimate_sampling` checked against the free memory (:func:`check_fits`)."""
    available = free_bytes(device)
    est = estimate_sampling(config, shape, count, branches=branches,
                            extra_copies=extra_copies, max_batch=max_batch,
                            budget=budget, device=device, dtype=dtype, available=available)
    check_fits(est, device, available)
    return est


# -- training -----------------------------------------------------------------------------
#: Copies of the weights a training run holds: the network, its EMA, the gradients and
#: Adam's two moments.
TRAINING_WEIGHT_COPIES = 5
#: Crop-sized float32 tensors of a step's whole batch outside the network (the clean crops,
#: the noise, the noisy crops, the target, the output), drawn on the host by every rank.
TRAINING_BATCH_COPIES = 5


class TrainingTooLarge(InputError):
    """A training batch that cannot fit in this machine's memory (message: need, have, fix)."""


@functools.lru_cache(maxsize=64)
def training_bytes_per_crop(config: UNetConfig, crop: int) -> int:
    """Peak bytes one ``crop x crop`` crop adds to a training step (forward and backward,
    the activations autograd keeps), counted on the meta device as
    :func:`network_bytes_per_slice` counts inference."""
    with torch.device("meta"):
        model = UNet(config).train()

    def peak(batch: int) -> int:
        model.zero_grad(set_to_none=True)
        x = torch.empty(batch, config.in_channels, crop, crop, device="meta")
        t = torch.zeros(batch, dtype=torch.long, device="meta")
        means = (torch.zeros(batch, config.in_channels, device="meta")
                 if config.fraction_conditioning else None)
        with _LiveBytes() as live:
            model(x, t, t, means).pow(2).mean().backward()
        return live.peak

    return max(1, (peak(4) - peak(2)) // 2)


def check_training_fits(config: UNetConfig, crop: int, batch: int, ranks: int = 1,
                        device: torch.device | str = "cpu",
                        available: int | None = None) -> None:
    """Raise :class:`TrainingTooLarge` when a training step of ``batch`` crops of ``crop``
    px (split over ``ranks`` processes; on a CPU they share its memory) would not fit in
    the free memory, naming the largest batch that fits. Only shapes are looked at."""
    device = torch.device(device)
    available = free_bytes(device) if available is None else available
    weights = sum(p.numel() for p in _meta_model(config).parameters()) * 4
    per_rank = -(-int(batch) // max(1, ranks))
    per_crop = int(WORKING_SET_FACTOR * training_bytes_per_crop(config, int(crop)))
    host_crop = TRAINING_BATCH_COPIES * 4 * config.in_channels * int(crop) ** 2
    shared = ranks if device.type == "cpu" else 1  # processes whose memory adds up
    fixed = shared * (TRAINING_WEIGHT_COPIES * weights + RUNTIME_BYTES)
    need = fixed + shared * (per_crop * per_rank + host_crop * int(batch))
    if need <= available:
        return
    fit = max(0, (available - fixed) // (shared * (per_crop + host_crop)))
    where = "this GPU has" if device.type == "cuda" else "this machine has"
    fix = (f"choose a batch of {fit} or less" if fit >= 1 else
           "even one crop does not fit: choose a smaller crop or preset")
    raise TrainingTooLarge(f"a batch of {batch} crops of {crop} px needs about "
                           f"{need / GiB:.1f} GiB to train; {where} {available / GiB:.1f} "
                           f"GiB free; {fix}")

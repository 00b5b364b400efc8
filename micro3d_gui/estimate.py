"""How long sampling will take on this machine, from one timed network call (no Qt).

One reverse step denoises every slice of the volume along its target plane, so whatever the
plane each network call of a run pushes ``count * Z * Y * X`` voxels through the network
(a run's calls per slice batch: ``SamplerSettings.network_calls``, which counts n_h, the
steps that harmonize and guidance, METHOD.md Sec. 3). :func:`probe_seconds_per_voxel` times one
call on a small batch of slices; :func:`sampling_seconds` scales it up.
"""
from __future__ import annotations

import time

import torch

#: The probe: one batch of this many slices of PROBE_SIDE x PROBE_SIDE pixels (the
#: default box's slices). A network call has a fixed overhead that dominates small batches
#: (tens of ms for the tiny preset on a CPU), so the probe batch is large enough to spread
#: it, as the sampler's batches of all slices of a volume do; it still costs about a
#: quarter of one reverse step of the default 64^3 box.
PROBE_BATCH = 16
PROBE_SIDE = 64


def probe_seconds_per_voxel(ckpt: dict, device: torch.device | str = "cpu") -> float:
    """Seconds per slice pixel of one conditional network call of the checkpoint's model
    (a one-slice warm-up call, then one timed call)."""
    from .core.checkpoint import model_from_checkpoint
    from .core.encoding import num_channels

    device = torch.device(device)
    model = model_from_checkpoint(ckpt, device)
    x = torch.zeros(PROBE_BATCH, num_channels(int(ckpt["num_phases"])), PROBE_SIDE,
                    PROBE_SIDE, device=device)
    t = torch.full((PROBE_BATCH,), 1, dtype=torch.long, device=device)
    c = torch.zeros(PROBE_BATCH, dtype=torch.long, device=device)
    with torch.inference_mode():
        model(x[:1], t[:1], c[:1])  # warm-up (first-call allocations), one slice
        start = time.perf_counter()
        model(x, t, c)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - start
    return elapsed / (PROBE_BATCH * PROBE_SIDE * PROBE_SIDE)


def sampling_seconds(seconds_per_voxel: float, shape: tuple[int, int, int], count: int,
                     network_calls: int) -> float:
    """Estimated wall time of sampling ``count`` volumes ``shape`` (Z, Y, X) in a run of
    ``network_calls`` calls per slice batch (``Recipe.network_calls``)."""
    z, y, x = (int(s) for s in shape)
    return int(network_calls) * int(count) * z * y * x * seconds_per_voxel


def about(seconds: float) -> str:
    """'about 30 s', 'about 2 min', 'about 1.5 h' (rounded for a person)."""
    if seconds < 90:
        return f"about {max(5, 5 * round(seconds / 5)):.0f} s"
    if seconds < 5400:
        return f"about {round(seconds / 60):.0f} min"
    return f"about {seconds / 3600:.1f} h"

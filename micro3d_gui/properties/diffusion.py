"""Tortuosity factor and relative diffusivity of each phase along z, y and x, by TauFactor.

TauFactor (Cooper et al. 2016, taufactor 1.2 API) solves steady diffusion through the
voxels of one phase with fixed concentrations on the two faces normal to the first array
axis and no flux through the side faces. The relative diffusivity ``D_eff / D_0`` follows
from the flux and the tortuosity factor is ``tau = vf / (D_eff / D_0)`` with ``vf`` the
phase's whole volume fraction (TauFactor's convention). A phase with no connected path between the two faces has ``tau = inf`` and
``D_eff / D_0 = 0``; that is a result, not an error.
"""
from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable

import numpy as np
import torch
from skimage.measure import label as label_clusters

from . import PropertyCancelled

#: Array axis of a ``[z, y, x]`` volume for each flux direction.
AXES = {"z": 0, "y": 1, "x": 2}
#: SOR sweeps between two polls of ``should_stop``; TauFactor checks convergence every 100.
_CHUNK = 100


def _check_volume(volume: np.ndarray) -> np.ndarray:
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"expected a [z, y, x] label volume, got shape {vol.shape}")
    if min(vol.shape) < 2:
        raise ValueError(f"a volume of shape {vol.shape} is too thin for a diffusion solve")
    return vol


def _flux_first(mask: np.ndarray, axis: int) -> np.ndarray:
    """Bring ``axis`` to the front: TauFactor drives the flux along the first array axis."""
    order = (axis,) + tuple(a for a in range(3) if a != axis)
    return np.ascontiguousarray(mask.transpose(order), dtype=np.uint8)


def spanning(mask: np.ndarray) -> np.ndarray:
    """The voxels of ``mask`` in face-connected clusters that touch both end faces of
    axis 0 (the only ones that carry a steady flux along it)."""
    labels = label_clusters(mask, connectivity=1)  # faces only, as TauFactor's fluxes
    through = np.intersect1d(labels[0][labels[0] > 0], labels[-1][labels[-1] > 0])
    return np.isin(labels, through)


def _relative_diffusivity(mask: np.ndarray, device, iter_limit: int,
                          tick: Callable[[float], None] | None) -> tuple[float, int]:
    """(D_eff / D_0, SOR sweeps) of the 1-voxels of ``mask`` for a flux along axis 0
    (0 without a solve if they do not connect the two end faces). ``tick(fraction)`` is
    called between chunks of sweeps and may raise to stop."""
    net = spanning(mask)
    if not net.any():
        return 0.0, 0
    import taufactor  # noqa: PLC0415  (3 s import: only when a solve is asked for)

    # Isolated clusters carry no flux but keep TauFactor's flux balance from settling,
    # so it solves on the spanning network alone (same D_eff, its own volume fraction).
    solver = taufactor.Solver(net.astype(np.uint8), device=device)
    # TauFactor prints its status (and "not converged" after each partial run); keep the
    # terminal clean. Repeated solve() calls continue from the current field and count.
    with contextlib.redirect_stdout(io.StringIO()), np.errstate(divide="ignore", invalid="ignore"):
        while not solver.converged and solver.iter < iter_limit:
            solver.solve(iter_limit=min(solver.iter + _CHUNK, iter_limit), verbose=False)
            if tick is not None:
                tick(solver.iter / iter_limit)
    # TauFactor has no tau at all before its first convergence check
    tau_net = math.nan if solver.tau is None else float(np.asarray(solver.tau).reshape(-1)[0])
    if not solver.converged or not math.isfinite(tau_net) or tau_net <= 0:
        raise RuntimeError(f"TauFactor did not converge in {iter_limit} iterations "
                           f"(last tau {tau_net:.4g}); pass a larger iter_limit")
    return float(net.mean()) / tau_net, int(solver.iter)


def diffusivity(volume: np.ndarray, phase: int, device: str | torch.device = "cpu", *,
                iter_limit: int = 20000, strict: bool = True,
                should_stop: Callable[[], bool] | None = None,
                progress: Callable[[float], bool | None] | None = None) -> dict:
    """Tortuosity factor and relative diffusivity of one phase along z, y and x.

    Args:
        volume: ``[z, y, x]`` integer label array (phases 0..K-1); voxels are cubes.
        phase: the label whose voxels conduct (all other voxels are insulating).
        device: torch device for TauFactor ("cpu", "cuda", or a ``torch.device``).
        iter_limit: SOR sweeps allowed per direction (RuntimeError when not converged).
        strict: False gives NaN tortuosity and diffusivity for a direction that does not
            converge (a benchmark over many volumes) instead of the RuntimeError.
        should_stop: polled every 100 sweeps; True raises :class:`PropertyCancelled`.
        progress: ``progress(fraction in [0, 1])``; a True return also cancels.

    Returns:
        ``{"tortuosity": {"z", "y", "x": tau >= 1 or inf},
        "relative_diffusivity": {"z", "y", "x": D_eff / D_0 = vf / tau in [0, vf]},
        "iterations": {"z", "y", "x": TauFactor SOR sweeps, 0 where nothing was solved}}``
        where direction "z" means flux along array axis 0, "y" axis 1, "x" axis 2.
    """
    vol = _check_volume(volume)
    mask = vol == phase
    vf = float(mask.mean())
    taus, rel, sweeps = {}, {}, {}
    for i, (name, axis) in enumerate(AXES.items()):
        if vf == 0.0:
            taus[name], rel[name], sweeps[name] = math.inf, 0.0, 0
            continue

        def tick(frac, i=i):
            if (should_stop is not None and should_stop()) or \
                    (progress is not None and progress((i + min(frac, 1.0)) / 3)):
                raise PropertyCancelled("diffusivity computation cancelled")

        tick(0.0)
        try:
            d_rel, sweeps[name] = _relative_diffusivity(_flux_first(mask, axis), device,
                                                        iter_limit, tick)
        except RuntimeError:
            if strict:
                raise
            taus[name], rel[name], sweeps[name] = math.nan, math.nan, iter_limit
            continue
        rel[name] = d_rel
        taus[name] = vf / d_rel if d_rel > 0 else math.inf
    if progress is not None and progress(1.0):
        raise PropertyCancelled("diffusivity computation cancelled")
    return {"tortuosity": taus, "relative_diffusivity": rel, "iterations": sweeps}


def diffusivity_all(volume: np.ndarray, num_phases: int, device: str | torch.device = "cpu",
                    should_stop: Callable[[], bool] | None = None, *,
                    iter_limit: int = 20000, strict: bool = True,
                    progress: Callable[[float], bool | None] | None = None) -> dict[int, dict]:
    """:func:`diffusivity` of every phase 0..num_phases-1 -> ``{phase: result}``.

    ``should_stop()`` (polled every 100 sweeps) or a True return of ``progress(fraction)``
    raises :class:`PropertyCancelled`.
    """
    vol = _check_volume(volume)
    out = {}
    for k in range(num_phases):
        def sub(frac, k=k):
            return progress((k + frac) / num_phases)
        out[k] = diffusivity(vol, k, device, iter_limit=iter_limit, strict=strict,
                             should_stop=should_stop,
                             progress=None if progress is None else sub)
    return out

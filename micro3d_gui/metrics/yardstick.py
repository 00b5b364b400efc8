"""The physics yardstick of generated volumes against a known 3D truth.

A volume is judged by S2 *and* lineal path per plane against their floor, and by TauFactor
relative diffusivity per phase and axis against the spread of real sub-volumes: S2 can sit
at its floor while the diffusivity is far off (docs/benchmarks.md, Quality per material).
The floor is what real sub-volumes of the generated box's size score against the whole
truth: errors at or below it cannot be told from a real sample of that size.

Every benchmark, recipe table and recipe test judges with :func:`truth_floor` and
:func:`judge`; the product's own check without a truth is :mod:`.selfcheck`.
Volumes are label arrays ``[z, y, x]``; axes of the diffusivity are named by the flux
direction (``"z"``: along array axis 0).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .compare import random_sub_volumes
from .floor import MEASURES
from .report import evaluate_volumes


@dataclass(frozen=True)
class YardstickSettings:
    #: Side (voxels) of the real sub-volumes; judge generated volumes of the same box.
    edge: int = 64
    #: Real sub-volumes drawn for the floor and the diffusivity spread.
    sub_volumes: int = 8
    #: S2 and lineal path pass at most ``margin`` x their floor on every plane.
    margin: float = 1.5
    #: Relative diffusivity passes within ``sd_band`` standard deviations of the real
    #: sub-volumes' mean ...
    sd_band: float = 2.0
    #: ... or within this relative difference where that band is narrower.
    min_relative: float = 0.05
    #: Real sub-volumes whose phase carries less than this relative diffusivity along an
    #: axis count as not percolating there (TauFactor gives 0 for no spanning path).
    percolation: float = 1e-3
    seed: int = 0


def _errors(report: Mapping) -> dict[str, dict[str, float]]:
    return {"s2": dict(report["s2_relative_error"]),
            "lineal_path": dict(report["lineal_path_relative_error"])}


def _diffusivities(volumes: Sequence[np.ndarray], num_phases: int, device) -> list[dict]:
    """Each volume's ``{phase: {axis: D_eff / D_0}}``; NaN where TauFactor did not
    converge (a barely connected phase in a generated volume can take it past its limit)."""
    from ..properties.diffusion import diffusivity_all  # noqa: PLC0415  (torch, TauFactor)

    return [{str(k): dict(r["relative_diffusivity"]) for k, r in
             diffusivity_all(v, num_phases, device, strict=False).items()} for v in volumes]


def _diffusivity_spread(per_volume: Sequence[Mapping]) -> dict[str, dict[str, dict]]:
    """``{phase: {axis: {"mean", "sd", "values"}}}`` of per-volume relative diffusivities
    (mean and sd over the converged ones; NaN when none converged)."""
    out: dict[str, dict[str, dict]] = {}
    for k, axes in per_volume[0].items():
        out[k] = {}
        for a in axes:  # z, y, x as the solver names them
            v = np.array([pv[k][a] for pv in per_volume], dtype=float)
            ok = v[np.isfinite(v)]
            out[k][a] = {"mean": float(ok.mean()) if ok.size else math.nan,
                         "sd": float(ok.std(ddof=1)) if ok.size > 1 else 0.0,
                         "values": v.tolist()}
    return out


def truth_floor(truth: np.ndarray, num_phases: int,
                settings: YardstickSettings = YardstickSettings(), *,
                diffusivity: bool = True, device: Any = "cpu") -> dict:
    """The floor of ``truth`` ``[z, y, x]`` at ``settings.edge``: S2 and lineal-path errors
    per plane of ``sub_volumes`` random real sub-volumes (mean), and their relative
    diffusivity per phase and axis (mean, sd) when ``diffusivity``. Plain data:
    ``{"s2": {plane: e}, "lineal_path": {plane: e}, "diffusivity": {...} | None,
    "edge": int, "sub_volumes": int}``."""
    subs = random_sub_volumes(truth, settings.edge, settings.sub_volumes, settings.seed)
    rep = evaluate_volumes(subs, num_phases, reference=truth)
    return {**_errors(rep), "edge": int(settings.edge),
            "sub_volumes": int(settings.sub_volumes),
            "diffusivity": (_diffusivity_spread(_diffusivities(subs, num_phases, device))
                            if diffusivity else None)}


def _judge_diffusivity(generated: Mapping, floor: Mapping,
                       settings: YardstickSettings) -> dict:
    """Per phase and axis: generated mean against the real mean +- sd; only where every
    real sub-volume percolates (a phase that does not percolate has no diffusivity to
    match). A generated mean that is NaN (no volume converged) fails."""
    out: dict[str, dict[str, dict]] = {}
    for k, axes in floor.items():
        out[k] = {}
        for a, real in axes.items():
            gen = generated[k][a]["mean"]
            percolates = bool(np.nanmin(real["values"]) > settings.percolation)
            band = max(settings.sd_band * real["sd"], settings.min_relative * real["mean"])
            out[k][a] = {"generated": gen, "real_mean": real["mean"], "real_sd": real["sd"],
                         "relative": gen / real["mean"] - 1 if real["mean"] > 0 else None,
                         "sd_off": ((gen - real["mean"]) / real["sd"]) if real["sd"] > 0
                         else None,
                         "percolates": bool(percolates),
                         "unconverged": int(np.isnan(generated[k][a]["values"]).sum()),
                         "ok": bool(not percolates or abs(gen - real["mean"]) <= band)}
    return out


def judge(volumes: Sequence[np.ndarray], truth: np.ndarray, num_phases: int, floor: Mapping,
          settings: YardstickSettings = YardstickSettings(), *, device: Any = "cpu") -> dict:
    """Generated ``volumes`` (each ``[z, y, x]``, of the floor's box) against ``truth`` and
    its :func:`truth_floor`. Plain data: ``errors`` and ``ratio`` ``{measure: {plane: x}}``
    (error / floor), ``volume_fraction_error`` (largest over phases), ``diffusivity``
    (see :func:`_judge_diffusivity`, None without it in the floor), and ``passes``: every
    ratio at most ``margin`` and every percolating phase and axis within its band."""
    with_d = floor.get("diffusivity") is not None
    rep = evaluate_volumes(list(volumes), num_phases, reference=truth)
    errors = _errors(rep)
    ratio = {m: {p: e / max(floor[m][p], 1e-12) for p, e in errors[m].items()}
             for m in MEASURES}
    vf = max(abs(rep["volume_fraction"][k] - rep["reference_volume_fraction"][k])
             for k in rep["volume_fraction"])
    diff = (_judge_diffusivity(_diffusivity_spread(_diffusivities(volumes, num_phases, device)),
                               floor["diffusivity"], settings) if with_d else None)
    passes = all(r <= settings.margin for m in MEASURES for r in ratio[m].values())
    if diff is not None:
        passes = passes and all(d["ok"] for axes in diff.values() for d in axes.values())
    return {"errors": errors, "ratio": ratio, "volume_fraction_error": float(vf),
            "diffusivity": diff, "passes": bool(passes)}


def ratio_text(ratio: Mapping[str, float]) -> str:
    """``"0.8 / 1.1 / 1.3"``: a measure's ratio to its floor on xy / xz / yz."""
    return " / ".join(f"{ratio[p]:.1f}" for p in ("xy", "xz", "yz") if p in ratio)


def diffusivity_text(diff: Mapping | None) -> str:
    """Per percolating phase, the generated relative diffusivity along z, y, x as a
    relative difference from the real mean, with ``*`` where it is outside the band:
    ``"0: -3/+1/+2 %, 1: -21*/+4/+1 %"``."""
    if not diff:
        return "-"
    parts = []
    for k, axes in diff.items():
        cells = [("%+.0f" % (100 * d["relative"])) + ("" if d["ok"] else "*")
                 if d["percolates"] and d["relative"] is not None else "n.p."
                 for d in axes.values()]
        parts.append(f"{k}: " + "/".join(cells) + " %")
    return ", ".join(parts)

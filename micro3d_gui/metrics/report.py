"""Evaluate label volumes: plane statistics against a reference, volume fractions and
effective properties, gathered into one report.

This is the engine of ``micro3d evaluate`` and of the app's Analysis panel: both call
:func:`run_evaluation` (raw results, for plots) and :meth:`Evaluation.report` (plain data:
the JSON / CSV report). No Qt here.

Report keys (all plain dicts / lists / floats; phases are strings "0".."K-1"):

- ``volume_fraction`` ``{phase: fraction}``;
- with a reference: ``s2_relative_error`` and ``lineal_path_relative_error``
  ``{plane: sum|f-g|/sum|g|}`` (mean over phases and both image axes) and
  ``reference_volume_fraction``; with micrographs *and* a reference volume, also
  ``reference_volume`` ``{"s2_relative_error", "lineal_path_relative_error"}`` against it;
- with diffusivity: ``relative_diffusivity`` and ``tortuosity`` ``{phase: {"z","y","x"}}``
  (flux along array axis 0, 1, 2; ``inf`` tortuosity where a phase does not percolate);
- with elastic: ``elastic`` ``{E1, E2, E3, G12, G13, G23 (GPa), nu12, nu13, nu23}`` and
  ``cte`` ``{a11, a22, a33, a12, a13, a23}`` (1/K), with 1 = x, 2 = y, 3 = z;
- ``num_volumes``, ``num_phases``, ``reference`` ("micrographs", "volume" or None),
  ``max_r`` (when the same for every volume), ``per_volume`` (each volume's values, plus
  its ``name`` when given and its 6x6 ``stiffness``), and ``summary``: for every value
  above, ``{"median", "q25", "q75", "min", "max"}`` over the volumes.

The top-level values are means over the volumes.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.planes import PLANES
from ..errors import MaterialsError
from ..properties import PropertyCancelled
from .compare import compare_planes
from .correlation import default_max_r, lineal_path_volume, s2_volume
from .fractions import volume_fractions

#: Reference kinds, as the report's ``reference`` names them.
MICROGRAPHS = "micrographs"
VOLUME = "volume"
#: Per-volume keys that are not averaged into the top level.
_NOT_AVERAGED = ("name", "stiffness", "max_r")
#: Relative cost of each stage, for the progress fraction.
_WEIGHTS = {"metrics": 1.0, "metrics_volume": 1.0, "diffusion": 1.0, "elastic": 2.0}

Progress = Callable[[float, str], "bool | None"]


class EvaluationCancelled(PropertyCancelled):
    """The evaluation stopped because ``should_stop`` or ``progress`` asked for it."""


@dataclass
class Evaluation:
    """Raw results of :func:`run_evaluation`, one list entry per volume.

    ``metrics``: :func:`~micro3d_gui.metrics.compare.compare_planes` results against the
    reference (or :func:`volume_curves` without one), with the curves for plotting;
    ``metrics_volume``: against the extra reference volume (None when not asked);
    ``diffusion``: :func:`~micro3d_gui.properties.diffusion.diffusivity_all` results
    ``{phase (int): {...}}``; ``elastic``:
    :class:`~micro3d_gui.properties.elastic.ElasticResult` (None when not asked).
    ``reference``: "micrographs", "volume" or None; ``names``: the volumes' names or None.
    """

    num_phases: int
    reference: str | None
    metrics: list[dict]
    metrics_volume: list[dict] | None = None
    diffusion: list[dict] | None = None
    elastic: list[Any] | None = None
    names: list[str] | None = None

    def per_volume(self) -> list[dict]:
        """Each volume's report values (plain data)."""
        out = []
        for i, m in enumerate(self.metrics):
            entry: dict[str, Any] = {}
            if self.names is not None:
                entry["name"] = str(self.names[i])
            entry["volume_fraction"] = dict(m["volume_fraction"])
            if self.reference is not None:
                entry["s2_relative_error"] = dict(m["s2_relative_error"])
                entry["lineal_path_relative_error"] = dict(m["lineal_path_relative_error"])
            if self.metrics_volume is not None:
                mv = self.metrics_volume[i]
                entry["reference_volume"] = {
                    "s2_relative_error": dict(mv["s2_relative_error"]),
                    "lineal_path_relative_error": dict(mv["lineal_path_relative_error"])}
            if self.diffusion is not None:
                d = self.diffusion[i]
                entry["relative_diffusivity"] = {str(k): {a: float(v) for a, v in
                                                          r["relative_diffusivity"].items()}
                                                 for k, r in d.items()}
                entry["tortuosity"] = {str(k): {a: float(v) for a, v in r["tortuosity"].items()}
                                       for k, r in d.items()}
            if self.elastic is not None:
                e = self.elastic[i]
                entry["elastic"] = {k: float(v) for k, v in e.constants.items()}
                entry["cte"] = {k: float(v) for k, v in e.cte.items()}
                entry["stiffness"] = np.asarray(e.stiffness, dtype=float).tolist()
            entry["max_r"] = int(m["max_r"])
            out.append(entry)
        return out

    def report(self) -> dict:
        """The report (see the module docstring): means over the volumes, ``summary``
        (median and quartiles) and ``per_volume``."""
        per_volume = self.per_volume()
        keys = [k for k in per_volume[0] if k not in _NOT_AVERAGED] if per_volume else []
        report: dict[str, Any] = {k: mean_dict([v[k] for v in per_volume]) for k in keys}
        if self.reference is not None and self.metrics:
            report["reference_volume_fraction"] = dict(
                self.metrics[0]["reference_volume_fraction"])
        radii = {v["max_r"] for v in per_volume}
        if len(radii) == 1:
            report["max_r"] = radii.pop()
        report.update({"num_volumes": len(per_volume), "num_phases": int(self.num_phases),
                       "reference": self.reference,
                       "summary": {k: summary_dict([v[k] for v in per_volume]) for k in keys},
                       "per_volume": per_volume})
        return report


def mean_dict(values: Sequence[Any]) -> Any:
    """Key-wise mean of (nested) dicts of numbers, e.g. per-volume values -> one."""
    if not len(values):
        return {}
    if isinstance(values[0], Mapping):
        return {k: mean_dict([v[k] for v in values]) for k in values[0]}
    return float(np.mean(np.asarray(values, dtype=float)))


def quartiles(values: Sequence[float]) -> dict[str, float]:
    """``{"median", "q25", "q75", "min", "max"}`` of numbers (linear interpolation).

    ``inf`` is allowed (a non-percolating direction's tortuosity): a quantile that falls
    between a finite value and ``inf`` is ``inf``.
    """
    v = np.asarray(values, dtype=float)
    big = np.finfo(float).max
    finite_max = v[np.isfinite(v)].max() if np.isfinite(v).any() else -np.inf
    q = np.percentile(np.where(np.isposinf(v), big, v), [25, 50, 75])
    q = np.where(q > finite_max, np.inf, q) if np.isposinf(v).any() else q
    return {"median": float(q[1]), "q25": float(q[0]), "q75": float(q[2]),
            "min": float(v.min()), "max": float(v.max())}


def summary_dict(values: Sequence[Any]) -> Any:
    """Like :func:`mean_dict`, with :func:`quartiles` at the leaves."""
    if isinstance(values[0], Mapping):
        return {k: summary_dict([v[k] for v in values]) for k in values[0]}
    return quartiles(values)


def volume_curves(volume: np.ndarray, num_phases: int, max_r: int | None = None) -> dict:
    """A volume's own S2 and lineal-path curves and fractions, without any reference, in
    :func:`~micro3d_gui.metrics.compare.compare_planes`' layout (``curves`` hold only
    ``"generated"``; no relative errors). ``max_r`` (voxels): default a quarter of the
    smallest side, at most 32."""
    vol = np.asarray(volume)
    if max_r is None:
        max_r = default_max_r([vol.shape[1:], vol.shape[::2], vol.shape[:2]])
    curves: dict = {"s2": {p: {} for p in PLANES}, "lineal_path": {p: {} for p in PLANES}}
    for k in range(num_phases):
        for name, stat in (("s2", s2_volume), ("lineal_path", lineal_path_volume)):
            for p, c in stat(vol, k, max_r).items():
                curves[name][p][str(k)] = {"generated": c.to_dict()}
    vf = volume_fractions(vol, num_phases)
    return {"volume_fraction": {str(k): float(v) for k, v in enumerate(vf)},
            "max_r": int(max_r), "curves": curves}


def check_materials(materials: Mapping | None, num_phases: int,
                    source: str | None = None) -> dict:
    """``{phase: Material}`` for phases ``0..num_phases-1`` from ``materials`` (None: the
    defaults, :data:`~micro3d_gui.properties.elastic.DEFAULT_MATERIALS`).

    Raises :class:`~micro3d_gui.errors.MaterialsError` naming ``source`` (the materials
    file, when given) when a phase has no material.
    """
    from ..properties.elastic import DEFAULT_MATERIALS  # noqa: PLC0415  (imports torch)

    mats = DEFAULT_MATERIALS if materials is None else materials
    missing = [k for k in range(num_phases) if k not in mats]
    if missing:
        where = f"{source}: " if source else ""
        raise MaterialsError(
            f"{where}no material given for phase(s) {missing}; give a materials file (JSON "
            f'{{"{missing[0]}": {{"E": GPa, "nu": .., "cte": 1/K}}, ...}}) with an entry for '
            "every phase")
    return {k: mats[k] for k in range(num_phases)}


def check_labels(volume: np.ndarray, num_phases: int) -> np.ndarray:
    """``volume`` as a ``[z, y, x]`` array of phase labels ``0..num_phases-1``
    (ValueError otherwise)."""
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"expected a [z, y, x] label volume, got shape {vol.shape}")
    if vol.dtype == bool:
        return vol.astype(np.uint8)
    if vol.dtype.kind not in "iu" or vol.size == 0 or vol.min() < 0 or vol.max() >= num_phases:
        lo, hi = (vol.min(), vol.max()) if vol.size else (None, None)
        raise ValueError(f"expected phase labels 0..{num_phases - 1}, got values {lo}..{hi} "
                         f"({vol.dtype})")
    return vol


def run_evaluation(volumes: Sequence[np.ndarray], num_phases: int,
                   reference: Mapping[str, Sequence[np.ndarray]] | np.ndarray | None = None,
                   *, reference_volume: np.ndarray | None = None,
                   diffusivity: bool = False, elastic: bool = False,
                   materials: Mapping | None = None, device: Any = "cpu",
                   max_r: int | None = None, names: Sequence[str] | None = None,
                   progress: Progress | None = None,
                   should_stop: Callable[[], bool] | None = None) -> Evaluation:
    """Metrics and properties of label volumes -> :class:`Evaluation` (raw, with curves).

    Args:
        volumes: label volumes ``[z, y, x]``, phases ``0..num_phases-1`` (shapes may differ).
        reference: label images per plane ``{plane: [[H, W], ...]}`` in METHOD.md
            orientation (micrographs; planes without images are skipped) or a reference
            label volume ``[z, y, x]`` (all its slices); None: no errors, only the volumes'
            own curves.
        reference_volume: a reference volume compared *as well* (``metrics_volume``) when
            ``reference`` holds micrographs; alone it acts as ``reference``.
        diffusivity: TauFactor relative diffusivity and tortuosity of every phase along
            z, y, x. elastic: FFT homogenization (stiffness, engineering constants, CTE)
            with ``materials`` ``{phase: Material}`` (None: the defaults).
        device: torch device for the property solvers.
        max_r: largest distance (voxels) of the curves; default a quarter of the smallest
            image side, at most 32.
        names: a name per volume for the report (e.g. its file).
        progress: ``progress(fraction in [0, 1], text)`` at each stage and during the
            solvers; returning True stops. ``should_stop()``: polled likewise.

    Raises :class:`EvaluationCancelled` when stopped, ValueError for volumes that are not
    label volumes, :class:`~micro3d_gui.errors.MaterialsError` for a phase without a
    material (checked before any work).
    """
    vols = [check_labels(v, num_phases) for v in volumes]
    if not vols:
        raise ValueError("no volumes given")
    if names is not None and len(names) != len(vols):
        raise ValueError(f"{len(names)} names for {len(vols)} volumes")
    if reference is None and reference_volume is not None:
        reference, reference_volume = reference_volume, None
    if isinstance(reference, np.ndarray) and reference_volume is not None:
        raise ValueError("give a reference volume either as reference or as "
                         "reference_volume, not both")
    kind = None if reference is None else VOLUME if isinstance(reference, np.ndarray) \
        else MICROGRAPHS
    mats = check_materials(materials, num_phases) if elastic else None

    stages = ["metrics"] + ["metrics_volume"] * (reference_volume is not None) \
        + ["diffusion"] * bool(diffusivity) + ["elastic"] * bool(elastic)
    total = len(vols) * sum(_WEIGHTS[s] for s in stages)
    done = 0.0

    def post(fraction_of_stage: float, stage: str, text: str) -> bool:
        """Report progress inside a stage; True when a stop was asked for."""
        stop = False
        if progress is not None:
            frac = (done + _WEIGHTS[stage] * min(max(fraction_of_stage, 0.0), 1.0)) / total
            stop = bool(progress(min(frac, 1.0), text))
        return stop or (should_stop is not None and bool(should_stop()))

    result = Evaluation(int(num_phases), kind, [],
                        [] if reference_volume is not None else None,
                        [] if diffusivity else None, [] if elastic else None,
                        None if names is None else [str(n) for n in names])
    texts = {"metrics": "correlation functions", "metrics_volume": "against the reference volume",
             "diffusion": "diffusivity (TauFactor)", "elastic": "elastic and thermal constants"}
    try:
        for i, vol in enumerate(vols):
            tag = f"volume {i + 1}/{len(vols)}" + (f" ({names[i]})" if names else "")
            for stage in stages:
                text = f"{tag}: {texts[stage]}"
                if post(0.0, stage, text):
                    raise EvaluationCancelled("evaluation cancelled")

                def sub(f, stage=stage, text=text):
                    return post(f, stage, text)

                if stage == "metrics":
                    result.metrics.append(volume_curves(vol, num_phases, max_r)
                                          if reference is None else
                                          compare_planes(vol, reference, num_phases, max_r))
                elif stage == "metrics_volume":
                    result.metrics_volume.append(
                        compare_planes(vol, reference_volume, num_phases, max_r))
                elif stage == "diffusion":
                    # Imported here: torch and TauFactor take seconds to load.
                    from ..properties.diffusion import diffusivity_all  # noqa: PLC0415
                    result.diffusion.append(diffusivity_all(
                        vol, num_phases, device=device, should_stop=should_stop,
                        progress=sub))
                else:
                    from ..properties.elastic import homogenize  # noqa: PLC0415
                    result.elastic.append(homogenize(vol, mats, device=device, progress=sub,
                                                     should_stop=should_stop))
                done += _WEIGHTS[stage]
    except EvaluationCancelled:
        raise
    except PropertyCancelled as exc:
        raise EvaluationCancelled(str(exc)) from None
    if progress is not None:
        progress(1.0, "done")
    return result


def evaluate_volumes(volumes: Sequence[np.ndarray], num_phases: int,
                     reference: Mapping[str, Sequence[np.ndarray]] | np.ndarray | None = None,
                     *, reference_volume: np.ndarray | None = None,
                     diffusivity: bool = False, elastic: bool = False,
                     materials: Mapping | None = None, device: Any = "cpu",
                     max_r: int | None = None, names: Sequence[str] | None = None,
                     progress: Progress | None = None,
                     should_stop: Callable[[], bool] | None = None) -> dict:
    """:func:`run_evaluation` (same arguments) -> its report dict (see the module
    docstring), ready for :func:`micro3d_gui.io.export.write_report`."""
    return run_evaluation(volumes, num_phases, reference, reference_volume=reference_volume,
                          diffusivity=diffusivity, elastic=elastic, materials=materials,
                          device=device, max_r=max_r, names=names, progress=progress,
                          should_stop=should_stop).report()

"""The self-check: do sampled volumes look like the micrographs, by the micrographs' own
yardstick?

For each plane with micrographs, every slice of the volumes in that plane is compared with
the plane's micrographs by S2 and by lineal path (relative error, mean over phases and both
image axes: :mod:`.floor`). Beside each error stands the plane's **floor**: the same error
of random real crops of the micrographs, of the slices' size and as many as the slices
are worth independent images (:func:`floor_crop_count`), measured against the other half
of the micrographs (:func:`~.floor.halves`). A volume whose errors are at most ``margin``
times their floors on every plane and both measures is "at the floor": it differs from the
micrographs no more than the micrographs differ among themselves.

Volumes are label arrays ``[Z, Y, X]`` (or ``[N, Z, Y, X]``), micrographs label images
``[H, W]`` in METHOD.md's orientation (``xy``: rows y, columns x; ``xz``: rows z, columns x;
``yz``: rows z, columns y); sizes in pixels (voxels). No Qt, no torch: reports are plain
data (JSON-ready).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..core.planes import PLANES, check_plane, fixed_axis, image_axes, label_volume_to_images
from .correlation import default_max_r, s2_images
from .floor import MEASURES, compare_curves, fits, halves, plane_floor


@dataclass(frozen=True)
class SelfCheckSettings:
    #: A plane is at the floor when both its S2 and lineal-path errors are at most
    #: ``margin`` times their floors.
    margin: float = 1.5
    #: Draws of real crops averaged into each floor (a floor is itself noisy).
    floor_draws: int = 4
    #: Most real crops per draw (bounds the cost for many or large volumes).
    max_crops: int = 64
    seed: int = 0


#: Up to this many times the floor a volume is "near" (amber); beyond it, "far" (red).
FAR_RATIO = 3.0

#: What to try when a volume is off its floor: the one place this advice is worded.
ADVICE = ("try training longer (resume the model with more --steps) or sampling with the "
          "fine recipe (--recipe fine)")
#: What to try for phases more broken up than the micrographs' (lineal path short): the
#: recipe whose harmonizing takes the planes in turn kept the fibres' runs whole
#: (core.recipe.CONNECTED; docs/benchmarks.md, Recipes).
BROKEN_ADVICE = ("try sampling with the connected recipe (--recipe connected: the planes "
                 "take turns in every harmonized step), or training longer (resume the "
                 "model with more --steps)")
#: What to try for phases running longer than the micrographs' (lineal path long): the
#: recipe whose early steps put each voxel to the three planes' vote cut the synthetic
#: electrode's joined particles back (core.recipe.SEPARATED; docs/benchmarks.md, Recipes).
LONG_ADVICE = ("try sampling with the separated recipe (--recipe separated: two planes "
               "outvote the third in the early steps), or training longer (resume the "
               "model with more --steps)")

#: The connectivity faults a self-check names (:func:`connectivity_fault`), and what a
#: second pass does about each (:func:`second_pass_lines`).
BROKEN_UP, RUNS_LONG = "broken_up", "runs_long"
SECOND_PASS_WORDS = {
    BROKEN_UP: ("found the phases broken up", "the harmonizing rounds in the three planes "
                "in turn", "with the planes in turn"),
    RUNS_LONG: ("found the phases running longer than the micrographs'", "the three planes' "
                "vote in the early steps", "with the planes' vote"),
}

#: The verdict when there is nothing to check against.
NO_REFERENCE = ("Self-check: not made: this model was trained before the self-check; give "
                "micrographs to `micro3d evaluate`")

#: Names of the measures in words.
MEASURE_NAMES = {"s2": "S2", "lineal_path": "lineal path"}

#: What an error off the floor means, by measure and the sign of its curves' shift.
_DIAGNOSES = {
    ("lineal_path", -1): "the volume's phases are more broken up than the micrographs'",
    ("lineal_path", 1): "the volume's phases run longer than the micrographs'",
    ("s2", -1): "the volume's features are finer than the micrographs' (or its phase "
                "fractions differ)",
    ("s2", 1): "the volume's features are coarser than the micrographs' (or its phase "
               "fractions differ)",
}


def floor_crop_count(slices_per_volume: int, volumes: int, max_crops: int,
                     correlation_length: float = 1.0) -> int:
    """Real crops per floor draw: as many as the volumes hold independent slices in the
    plane, ``slices_per_volume / correlation_length * volumes``, at least 1 and at most
    ``max_crops``.

    A pooled curve's error falls as more independent images are pooled, so the floor pools
    as many crops as the volumes' slices are worth. Neighbouring slices of a volume are
    alike (a fibre along x crosses every yz slice at the same place), while random crops
    are nearly independent: ``correlation_length`` (slices, :func:`correlation_length`)
    says how many slices make one independent image. Counting every slice as one image
    (``correlation_length`` 1) puts real sub-volumes far above their floor
    (docs/experiments/2026-12-06-physics-yardstick.md, the self-check).
    """
    count = round(int(slices_per_volume) * int(volumes) / max(float(correlation_length), 1.0))
    return max(1, min(count, int(max_crops)))


def correlation_length(reference: Mapping[str, Sequence[np.ndarray]], plane: str,
                       slices: int, num_phases: int) -> float:
    """How many of ``slices`` consecutive slices of a volume in ``plane`` make one
    independent image, from the micrographs: ``1 + 2 sum_{r=1}^{R} (1 - r / slices)
    rho(r)``, the variance factor of a mean over correlated slices (at least 1, at most
    ``slices``).

    ``rho(r) = (S2(r) - phi^2) / (phi - phi^2)`` is the phases' correlation at ``r`` voxels
    along the plane's fixed axis (mean over phases), read from the micrographs of the other
    planes, whose images show that axis (``R``: up to ``slices - 1`` and half their
    smallest side). When none shows it, the plane's own two image axes stand in.
    """
    axis = fixed_axis(plane)
    sources = [(q, "along_rows" if image_axes(q)[0] == axis else "along_cols")
               for q in PLANES if q != plane and len(reference.get(q, ()))
               and axis in image_axes(q)]
    if not sources and len(reference.get(plane, ())):
        sources = [(plane, "along_rows"), (plane, "along_cols")]
    rhos = []
    for q, direction in sources:
        ims = [np.asarray(im) for im in reference[q]]
        max_r = min(int(slices) - 1, min(min(im.shape) for im in ims) // 2)
        if max_r < 1:
            continue
        for k in range(num_phases):
            c = getattr(s2_images(ims, k, max_r), direction)
            phi = c[0]
            if 0 < phi < 1:
                rhos.append((c - phi ** 2) / (phi - phi ** 2))
    if not rhos:
        return 1.0
    n = min(len(r) for r in rhos)
    rho = np.mean([r[:n] for r in rhos], axis=0)
    r = np.arange(1, n)
    factor = 1.0 + 2.0 * float(np.sum((1.0 - r / slices) * rho[1:]))
    return float(min(max(factor, 1.0), slices))


def _volume_stack(volumes) -> np.ndarray:
    vols = np.asarray(volumes) if isinstance(volumes, np.ndarray) else \
        np.stack([np.asarray(v) for v in volumes])
    if vols.ndim == 3:
        vols = vols[None]
    if vols.ndim != 4 or vols.shape[0] == 0:
        raise ValueError(f"expected label volumes [N, Z, Y, X] or [Z, Y, X], got shape "
                         f"{vols.shape}")
    return vols


def _check_labels(arrays, num_phases: int, what: str) -> None:
    for a in arrays:
        if a.size and (a.dtype.kind not in "iub" or a.min() < 0 or a.max() >= num_phases):
            raise ValueError(f"{what} hold values {a.min()}..{a.max()}, not phase labels "
                             f"0..{num_phases - 1}")


def _ratio(error: float, floor: float) -> float:
    if floor > 0:
        return error / floor
    return 0.0 if error == 0 else math.inf


def self_check(volumes: np.ndarray | Sequence[np.ndarray],
               reference: Mapping[str, Sequence[np.ndarray]], num_phases: int,
               settings: SelfCheckSettings = SelfCheckSettings()) -> dict:
    """Check label volumes (``[N, Z, Y, X]``, a list of ``[Z, Y, X]`` or one) against
    reference micrographs ``{plane: [label images [H, W]]}`` (planes without images are
    skipped), phases ``0..num_phases-1``.

    Per plane: the reference images split into halves A and B (:func:`~.floor.halves`);
    the error is that of all the volumes' slices in the plane against half B's curves, the
    floor the mean over ``floor_draws`` of the same error for random crops of half A of
    the slices' shape, as many as the slices are worth independent images
    (:func:`floor_crop_count`, :func:`correlation_length`). When no image of half A holds a slice,
    slices and crops are both cut to the largest centred square that fits (said in
    ``notes`` and ``compared_shape``). Curves run over ``r = 0..max_r``, ``max_r`` the
    :func:`~.correlation.default_max_r` of the compared shapes.

    Returns plain data: ``planes`` ``{plane: {"s2", "s2_floor", "s2_shift", "lineal_path",
    "lineal_path_floor", "lineal_path_shift", "slice_shape", "compared_shape", "max_r",
    "correlation_length", "crops"}}`` (errors and floors: relative errors; shifts: their
    signed counterparts, :func:`~.floor.compare_curves`; shapes in pixels, ``max_r`` in
    pixels, ``correlation_length`` in slices); ``at_floor`` (bool); ``worst`` ``{"plane",
    "measure" ("s2" | "lineal_path"), "ratio"}`` (error over floor); ``margin``;
    ``num_volumes``; ``notes`` (list of str); ``verdict`` (:func:`describe_self_check`).
    """
    vols = _volume_stack(volumes)
    ref = {check_plane(p): [np.asarray(im) for im in ims]
           for p, ims in reference.items() if len(ims)}
    planes = [p for p in PLANES if p in ref]
    if not planes:
        raise ValueError("no reference images in any plane")
    _check_labels([vols], num_phases, "the volumes")
    _check_labels([im for p in planes for im in ref[p]], num_phases, "the micrographs")
    rng = np.random.default_rng(settings.seed)
    report = {"planes": {}, "margin": float(settings.margin), "num_volumes": len(vols),
              "notes": []}
    for p in planes:
        slices = np.concatenate([label_volume_to_images(v, p) for v in vols])
        entry, note = _check_plane(slices, len(vols), ref, p, num_phases, settings, rng)
        if entry is not None:
            report["planes"][p] = entry
        if note:
            report["notes"].append(note)
    if not report["planes"]:  # every plane's slices too thin for a curve
        return {**report, "at_floor": None, "worst": None,
                "verdict": "Self-check: not made: " + "; ".join(report["notes"])}
    found = [(p, m, r) for p, by_measure in ratios(report).items()
             for m, r in by_measure.items()]
    worst = max(found, key=lambda t: t[2])
    report["at_floor"] = all(r <= settings.margin for _, _, r in found)
    report["worst"] = {"plane": worst[0], "measure": worst[1], "ratio": float(worst[2])}
    report["verdict"] = describe_self_check(report)
    return report


def _check_plane(slices: np.ndarray, volumes: int,
                 reference: Mapping[str, Sequence[np.ndarray]], plane: str, num_phases: int,
                 settings: SelfCheckSettings, rng: np.random.Generator
                 ) -> tuple[dict | None, str | None]:
    """One plane of :func:`self_check`: ``slices [volumes * S, rows, cols]`` against the
    plane's reference images -> (the plane's entry, a note when the slices were cut), or
    (None, why) when they are too thin for a curve (a side under 2 px)."""
    half_a, half_b = halves(reference[plane])
    shape = tuple(int(s) for s in slices.shape[1:])
    if min(shape) < 2 or max(min(im.shape) for im in half_a + half_b) < 2:
        return None, (f"{plane}: the {shape[0]} x {shape[1]} px slices (or the "
                      "micrographs) are too thin to compare")
    compared, note = shape, None
    if not fits(half_a, shape):
        side = min(min(shape), max(min(im.shape) for im in half_a))
        compared = (side, side)
        r0, c0 = (shape[0] - side) // 2, (shape[1] - side) // 2
        slices = slices[:, r0:r0 + side, c0:c0 + side]
        note = (f"{plane}: the volumes' {shape[0]} x {shape[1]} px slices are larger than "
                f"the micrographs hold; compared as their central {side} x {side} px")
    max_r = default_max_r([compared, *(im.shape for im in half_a + half_b)])
    per_volume = slices.shape[0] // volumes
    length = correlation_length(reference, plane, per_volume, num_phases)
    count = floor_crop_count(per_volume, volumes, settings.max_crops, length)
    curves, floors = plane_floor(reference[plane], compared, count, settings.floor_draws,
                                 num_phases, max_r, rng)
    entry = {}
    for m in MEASURES:
        error, shift = compare_curves(slices, curves[m], m, num_phases, max_r)
        entry.update({m: error, f"{m}_floor": floors[m], f"{m}_shift": shift})
    entry.update({"slice_shape": list(shape), "compared_shape": list(compared),
                  "max_r": int(max_r), "correlation_length": round(length, 3),
                  "crops": int(count)})
    return entry, note


def no_reference_report(settings: SelfCheckSettings = SelfCheckSettings()) -> dict:
    """The report when there is nothing to check against (a model from before the
    self-check, and no micrographs given): no planes, ``at_floor`` None."""
    return {"planes": {}, "margin": float(settings.margin), "notes": [],
            "at_floor": None, "worst": None, "verdict": NO_REFERENCE}


def ratios(report: Mapping) -> dict[str, dict[str, float]]:
    """``{plane: {"s2": error / floor, "lineal_path": error / floor}}`` of a report."""
    return {p: {m: _ratio(e[m], e[f"{m}_floor"]) for m in MEASURES}
            for p, e in report.get("planes", {}).items()}


def level(report: Mapping) -> str:
    """``"at_floor"`` (every ratio within the margin), ``"near"`` (the worst at most
    :data:`FAR_RATIO`), ``"far"``, or ``"none"`` (no check made): what a colour shows."""
    if not report.get("planes"):
        return "none"
    if report.get("at_floor"):
        return "at_floor"
    return "near" if report["worst"]["ratio"] <= FAR_RATIO else "far"


def _span(values: Sequence[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.1f}x" if f"{lo:.1f}" == f"{hi:.1f}" else f"{lo:.1f}-{hi:.1f}x"


def describe_self_check(report: Mapping) -> str:
    """One line for a person: at the floor (with the spans of the ratios), or the worst
    plane and measure, what it means and what to try (:func:`advice`)."""
    if not report.get("planes"):
        return report.get("verdict") or NO_REFERENCE
    r = ratios(report)
    if report["at_floor"]:
        return ("Self-check against the micrographs: at the floor (S2 "
                f"{_span([v['s2'] for v in r.values()])}, lineal path "
                f"{_span([v['lineal_path'] for v in r.values()])} the micrographs' own "
                "spread)")
    worst = report["worst"]
    plane, measure = worst["plane"], worst["measure"]
    other = "s2" if measure == "lineal_path" else "lineal_path"
    shift = report["planes"][plane][f"{measure}_shift"]
    meaning = _DIAGNOSES[(measure, -1 if shift < 0 else 1)]
    # after a second pass, the recipe advised has been tried
    tip = ADVICE if report.get("second_pass") else advice(measure, shift)
    return (f"Self-check: {MEASURE_NAMES[measure]} {worst['ratio']:.1f}x the floor on "
            f"{plane} ({MEASURE_NAMES[other]} {r[plane][other]:.1f}x): {meaning}; {tip}")


def advice(measure: str, shift: float) -> str:
    """What to try for a volume whose worst ``measure`` is off the floor with curves
    shifted by ``shift`` (see :func:`~.floor.compare_curves`)."""
    return {BROKEN_UP: BROKEN_ADVICE, RUNS_LONG: LONG_ADVICE}.get(_fault(measure, shift),
                                                                 ADVICE)


def _fault(measure: str, shift: float) -> str | None:
    """A lineal path whose curves fall short: phases more broken up than the micrographs'
    (:data:`BROKEN_UP`); whose curves run long: phases running longer (:data:`RUNS_LONG`)."""
    if measure != "lineal_path":
        return None
    return BROKEN_UP if shift < 0 else RUNS_LONG


def connectivity_fault(report: Mapping) -> str | None:
    """What a report finds wrong with the volumes' connectivity when they are off the
    floor and their worst measure is the lineal path: :data:`BROKEN_UP` (its curves
    short) or :data:`RUNS_LONG` (long); None otherwise."""
    if not report.get("planes") or report.get("at_floor") or not report.get("worst"):
        return None
    worst = report["worst"]
    return _fault(worst["measure"],
                  report["planes"][worst["plane"]][f"{worst['measure']}_shift"])


def nearer_floor(a: Mapping, b: Mapping) -> bool:
    """Whether report ``a``'s worst ratio to its floor is below report ``b``'s (False when
    either made no comparison)."""
    if not a.get("worst") or not b.get("worst"):
        return False
    return a["worst"]["ratio"] < b["worst"]["ratio"]


def self_check_table(report: Mapping) -> list[str]:
    """Per plane, the errors, floors and ratios, one line each, then the notes."""
    r = ratios(report)
    lines = []
    for p, e in report.get("planes", {}).items():
        lines.append(f"{p}: " + ", ".join(
            f"{MEASURE_NAMES[m]} {e[m]:.3f} (floor {e[f'{m}_floor']:.3f}, {r[p][m]:.1f}x)"
            for m in MEASURES))
    return lines + list(report.get("notes", []))


def self_check_lines(report: Mapping) -> list[str]:
    """The report for a terminal (``micro3d sample``): what was compared with what, the
    per-plane table indented, and the verdict last."""
    head = ([f"self-check against {report.get('reference') or 'the micrographs'} "
             "(relative error; floor: the same for real crops of the micrographs):"]
            if report.get("planes") else [])
    return (head + [f"  {line}" for line in self_check_table(report)] + [report["verdict"]]
            + second_pass_lines(report))


def second_pass_lines(report: Mapping) -> list[str]:
    """What a second pass did (see ``checked_sample.sample_checked``), for a person; none
    when there was none."""
    again = report.get("second_pass")
    if not again:
        return []
    first, second = (again["worst_ratio"][k] for k in ("first", "second"))
    found, how, short = SECOND_PASS_WORDS[again.get("fault", BROKEN_UP)]
    which = (f"the second pass's volumes, {short}" if again["kept"] == "second"
             else "the first pass's volumes")
    second = "not measured" if second is None else f"{second:.1f}x"
    return [f"The first volumes' self-check {found}, so they were sampled again with {how}; "
            f"kept {which}, nearer the floor (worst ratio {first:.1f}x first, {second} "
            "second)."]

"""The micrographs' own floor: how far real images of a plane differ from the plane's other
images, the yardstick both the training monitor (:mod:`.fidelity`) and the self-check of
sampled volumes (:mod:`.selfcheck`) measure their errors against.

A plane's images are split into two disjoint halves (:func:`halves`): half B gives the
reference curves, random crops of half A (:func:`random_crops`) measured against them give
the floor. Errors are relative errors of S2 or lineal-path curves (METHOD.md Sec. 4), the
mean over phases and both image axes, as :mod:`.compare` reports them. Images are label
arrays ``[H, W]`` in METHOD.md's orientation; sizes and ``max_r`` in pixels. No torch.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .correlation import lineal_path_images, relative_error, s2_images

#: The measures: name -> curves of label images (``fn(images, phase, max_r)``).
MEASURES = {"s2": s2_images, "lineal_path": lineal_path_images}

#: ``{phase: (along_rows, along_cols)}``: a plane's reference curves of one measure.
ReferenceCurves = Mapping[int, tuple[np.ndarray, np.ndarray]]


def halves(images: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two disjoint halves (A, B) of a plane's images: alternate images, or for a single
    image its two halves across its longer side (top and bottom, or left and right for an
    image wider than tall), so that each half holds a training crop (core.crop)."""
    ims = [np.asarray(im) for im in images]
    if len(ims) >= 2:
        return ims[0::2], ims[1::2]
    h, w = ims[0].shape[:2]
    if w > h:
        return [ims[0][:, :w // 2]], [ims[0][:, w // 2:]]
    return [ims[0][:h // 2]], [ims[0][h // 2:]]


def fits(images: Sequence[np.ndarray], shape: tuple[int, int]) -> bool:
    """Whether a ``shape = (rows, cols)`` window fits inside at least one of ``images``."""
    return any(im.shape[0] >= shape[0] and im.shape[1] >= shape[1] for im in images)


def random_crops(images: Sequence[np.ndarray], count: int, shape: int | tuple[int, int],
                 rng: np.random.Generator) -> np.ndarray:
    """``count`` windows of ``shape`` (rows, cols; an int: a square) cut at random places
    (``rng``) from the images it fits in -> ``[count, rows, cols]``."""
    h, w = (shape, shape) if isinstance(shape, (int, np.integer)) else shape
    ims = [im for im in images if im.shape[0] >= h and im.shape[1] >= w]
    if not ims:
        raise ValueError(f"no image holds a {h} x {w} px crop")
    out = []
    for _ in range(count):
        im = ims[int(rng.integers(len(ims)))]
        r = int(rng.integers(im.shape[0] - h + 1))
        c = int(rng.integers(im.shape[1] - w + 1))
        out.append(im[r:r + h, c:c + w])
    return np.stack(out)


def reference_curves(images: Sequence[np.ndarray], measure: str, num_phases: int,
                     max_r: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{phase: (along_rows, along_cols)}`` of ``measure`` (a :data:`MEASURES` name) over
    ``images`` pooled, ``r = 0..max_r``."""
    fn = MEASURES[measure]
    out = {}
    for k in range(num_phases):
        c = fn(images, k, max_r)
        out[k] = (c.along_rows, c.along_cols)
    return out


def plane_floor(images: Sequence[np.ndarray], shape: int | tuple[int, int], count: int,
                draws: int, num_phases: int, max_r: int, rng: np.random.Generator
                ) -> tuple[dict[str, ReferenceCurves], dict[str, float]]:
    """A plane's reference curves and floor, per measure: the images split into
    :func:`halves`, half B's curves (:func:`reference_curves`), and the mean over ``draws``
    of the error of ``count`` random crops of ``shape`` from half A against them (the same
    crops for both measures) -> ``({measure: curves}, {measure: floor})``."""
    half_a, half_b = halves(images)
    curves = {m: reference_curves(half_b, m, num_phases, max_r) for m in MEASURES}
    floors = {m: [] for m in MEASURES}
    for _ in range(draws):
        crops = random_crops(half_a, count, shape, rng)
        for m in MEASURES:
            floors[m].append(curve_error(crops, curves[m], m, num_phases, max_r))
    return curves, {m: float(np.mean(f)) for m, f in floors.items()}


def curve_error(images: np.ndarray | Sequence[np.ndarray], reference: ReferenceCurves,
                measure: str, num_phases: int, max_r: int) -> float:
    """Relative error of ``measure`` of label images (pooled) against ``reference`` curves:
    the mean over phases and both image axes."""
    return compare_curves(images, reference, measure, num_phases, max_r)[0]


def compare_curves(images: np.ndarray | Sequence[np.ndarray], reference: ReferenceCurves,
                   measure: str, num_phases: int, max_r: int) -> tuple[float, float]:
    """``(error, shift)`` of ``measure`` of label images (pooled) against ``reference``
    curves, each the mean over phases and both image axes: the relative error
    ``sum|f - g| / sum|g|`` (:func:`~.correlation.relative_error`) and its signed
    counterpart ``sum(f - g) / sum|g|`` (for the lineal path, negative: shorter runs than
    the reference, phases more broken up; positive: longer runs)."""
    fn = MEASURES[measure]
    errors, shifts = [], []
    for k in range(num_phases):
        g = fn(images, k, max_r)
        for f, ref in zip((g.along_rows, g.along_cols), reference[k]):
            errors.append(relative_error(f, ref))
            norm = np.abs(ref).sum()
            if norm > 0:
                shifts.append(float((f - ref).sum() / norm))
    return float(np.mean(errors)), float(np.mean(shifts)) if shifts else 0.0

"""A generated volume against the reference micrographs, plane by plane (METHOD.md Sec. 4)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..core.planes import (PLANES, check_plane, label_volume_to_images,
                           volume_plane_images)
from .correlation import (Curves, default_max_r, lineal_path_images, relative_error,
                          s2_images)
from .fractions import volume_fractions


def random_sub_volumes(volume: np.ndarray, edge: int, count: int,
                       seed: int = 0) -> list[np.ndarray]:
    """``count`` cubes of ``edge`` voxels cut at random places (seeded) from ``volume``
    ``[Z, Y, X]``: real sub-volumes whose errors against the whole are the floor a generated
    volume of that size is measured against."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        z, y, x = (int(rng.integers(0, s - edge + 1)) for s in volume.shape)
        out.append(volume[z:z + edge, y:y + edge, x:x + edge])
    return out


def corner_cubes(volume: np.ndarray, edge: int) -> list[np.ndarray]:
    """The two cubes of ``edge`` voxels at opposite corners of ``volume`` ``[Z, Y, X]``
    (the whole volume where it is no larger): a large generated box judged as two volumes
    of a small one, far enough apart to be nearly independent."""
    if all(s <= edge for s in volume.shape):
        return [volume]
    return [volume[:edge, :edge, :edge], volume[-edge:, -edge:, -edge:]]


def _curve_error(gen: Curves, ref: Curves) -> float:
    return float(np.mean([relative_error(gen.along_rows, ref.along_rows),
                          relative_error(gen.along_cols, ref.along_cols)]))


def compare_planes(volume: np.ndarray,
                   reference: Mapping[str, Sequence[np.ndarray]] | np.ndarray,
                   num_phases: int, max_r: int | None = None, *,
                   periodic: bool = False) -> dict:
    """S2, lineal path and volume fractions of ``volume`` against reference images per plane.

    ``volume``: generated label volume ``[Z, Y, X]`` (phases ``0..num_phases-1``).
    ``reference``: ``{plane: [label images [H, W]]}`` in METHOD.md orientation (planes
    without images are skipped), or a reference label volume ``[Z, Y, X]`` (all its slices).
    ``max_r`` (pixels): curves run over ``r = 0..max_r``; default a quarter of the smallest
    image or slice side, at most 32. ``periodic``: the generated volume wraps around (S2 by
    plain FFT); the reference micrographs are always treated as non-periodic.

    Returns plain data: ``s2_relative_error`` and ``lineal_path_relative_error``
    ``{plane: float}`` (sum|f-g|/sum|g|, mean over phases and both image axes);
    ``volume_fraction`` ``{phase (str): float}`` of the volume;
    ``reference_volume_fraction`` likewise of the reference images pooled; ``max_r``;
    ``curves``: ``{"s2" | "lineal_path": {plane: {phase (str): {"generated": {...},
    "reference": {...}}}}}`` with lists ``along_rows``, ``along_cols`` (and ``radial`` for S2).
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"expected a [z, y, x] label volume, got shape {vol.shape}")
    if isinstance(reference, np.ndarray):
        if reference.ndim != 3:
            raise ValueError(f"a reference volume must be [z, y, x], got {reference.shape}")
        ref = volume_plane_images(reference)
    else:
        ref = {check_plane(p): [np.asarray(im) for im in ims]
               for p, ims in reference.items() if len(ims)}
    planes = [p for p in PLANES if p in ref]
    if not planes:
        raise ValueError("no reference images in any plane")
    generated = {p: label_volume_to_images(vol, p) for p in planes}
    if max_r is None:
        shapes = [im.shape for p in planes for im in ref[p]]
        shapes += [generated[p].shape[1:] for p in planes]
        max_r = default_max_r(shapes)

    report = {"s2_relative_error": {}, "lineal_path_relative_error": {},
              "volume_fraction": {}, "reference_volume_fraction": {}, "max_r": int(max_r),
              "curves": {"s2": {}, "lineal_path": {}}}
    for name, stat, gen_kw in (("s2", s2_images, {"periodic": periodic}),
                               ("lineal_path", lineal_path_images, {})):
        key = f"{name}_relative_error"
        for p in planes:
            errors, per_phase = [], {}
            for k in range(num_phases):
                g = stat(generated[p], k, max_r, **gen_kw)
                r = stat(ref[p], k, max_r)
                errors.append(_curve_error(g, r))
                per_phase[str(k)] = {"generated": g.to_dict(), "reference": r.to_dict()}
            report[key][p] = float(np.mean(errors))
            report["curves"][name][p] = per_phase
    vf = volume_fractions(vol, num_phases)
    rf = volume_fractions([im for p in planes for im in ref[p]], num_phases)
    report["volume_fraction"] = {str(k): float(v) for k, v in enumerate(vf)}
    report["reference_volume_fraction"] = {str(k): float(v) for k, v in enumerate(rf)}
    return report


def slice_s2_errors(volume: np.ndarray, reference: np.ndarray, plane: str, num_phases: int,
                    max_r: int | None = None) -> np.ndarray:
    """S2 relative error of every single slice of ``volume`` ``[Z, Y, X]`` in ``plane``
    against all of ``reference``'s slices in that plane (mean over phases and both image
    axes): ``[S]``. A kept section's neighbours should be no worse than the volume's own
    average (docs/experiments/2026-12-02-conditioned-sampling.md)."""
    gen = label_volume_to_images(np.asarray(volume), check_plane(plane))
    ref = label_volume_to_images(np.asarray(reference), plane)
    if max_r is None:
        max_r = default_max_r([gen.shape[1:], ref.shape[1:]])
    refs = [s2_images(ref, k, max_r) for k in range(num_phases)]
    return np.array([np.mean([_curve_error(s2_images(im, k, max_r), refs[k])
                              for k in range(num_phases)]) for im in gen])

"""Grey micrographs -> phase labels, with one set of thresholds shared by all planes.

Methods (:class:`SegmentationConfig`):

- ``labelled``: the images are already segmented; their distinct grey levels, in increasing
  order, are phases ``0..K-1`` (:mod:`micro3d_gui.preprocess.labels`).
- ``otsu`` (2 phases) / ``multiotsu`` (K phases): Otsu's thresholds computed on the pixels of
  all planes pooled together, so a phase is the same grey range in every plane.
- ``manual``: given thresholds ``t_1 < ... < t_{K-1}``.

A pixel of grey value ``v`` is in phase ``k`` when ``t_k < v <= t_{k+1}`` (``t_0 = -inf``,
``t_K = +inf``), i.e. phase ``k`` = the number of thresholds strictly below ``v``, which
matches scikit-image's ``image > threshold`` for the foreground.

A 3D material has one volume fraction per phase, so the planes' phase fractions should
agree; :func:`segment_planes` warns when they differ by more than ``tolerance``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SegmentationError
from .labels import MAX_LABEL_LEVELS, grey_levels, to_labels
from ..metrics.fractions import volume_fractions

METHODS = ("labelled", "otsu", "multiotsu", "manual")
#: multi-Otsu's cost grows as nbins^(K-1): 5 phases take seconds, 6 take minutes.
MAX_OTSU_PHASES = 5
#: Otsu works on a histogram; beyond this many pooled pixels a regular subsample is used.
MAX_POOLED_PIXELS = 1 << 24


@dataclass(frozen=True)
class SegmentationConfig:
    """How to turn grey images into phases.

    ``method``: ``"labelled" | "otsu" | "multiotsu" | "manual"``. ``phases``: number of
    phases K for ``otsu`` (must be 2) and ``multiotsu`` (2..5); ``labelled`` takes K from the
    grey levels found and ``manual`` from its thresholds (``phases`` is then unused).
    ``thresholds``: grey values (same units as the images) for ``manual``, increasing.
    """

    method: str = "labelled"
    phases: int = 2
    thresholds: tuple[float, ...] = ()

    def __post_init__(self):
        if self.method not in METHODS:
            raise SegmentationError(
                f"unknown segmentation method {self.method!r}; choose one of "
                f"{', '.join(METHODS)}"
            )
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        if self.method in ("otsu", "multiotsu") and self.phases < 2:
            raise SegmentationError(f"{self.phases} phases: a material needs at least 2")
        if self.method == "otsu" and self.phases != 2:
            raise SegmentationError(
                f"Otsu's method splits into 2 phases, not {self.phases}; use multiotsu "
                f"for {self.phases} phases"
            )
        if self.method == "multiotsu" and self.phases > MAX_OTSU_PHASES:
            raise SegmentationError(
                f"multi-Otsu handles at most {MAX_OTSU_PHASES} phases (its cost grows "
                f"steeply), not {self.phases}; give manual thresholds instead"
            )
        if self.method == "manual":
            t = self.thresholds
            if not t:
                raise SegmentationError(
                    "manual segmentation needs thresholds: K-1 increasing grey values "
                    "for K phases"
                )
            if any(b <= a for a, b in zip(t, t[1:])):
                raise SegmentationError(
                    f"thresholds {list(t)} must be strictly increasing; sort them"
                )
            if not all(np.isfinite(t)):
                raise SegmentationError(f"thresholds {list(t)} must be finite numbers")
            if len(t) + 1 > 255:
                raise SegmentationError(f"{len(t)} thresholds: at most 254 are supported")
        elif self.thresholds:
            raise SegmentationError(
                f"thresholds are only used by the manual method, not {self.method}; "
                "drop them or choose manual"
            )

    @property
    def num_phases(self) -> int | None:
        """K when the config fixes it (None for ``labelled``: the images decide)."""
        if self.method == "labelled":
            return None
        if self.method == "manual":
            return len(self.thresholds) + 1
        return self.phases


@dataclass
class Segmentation:
    """Result of :func:`segment_planes`.

    ``labels[plane]``: uint8 ``[H, W]`` phase images (same order as the input);
    ``thresholds``: grey thresholds used by all planes (for ``labelled``: the grey levels that
    became phases 0..K-1); ``fractions[plane]``: phase fractions ``[K]`` of the plane's pixels
    pooled; ``warnings``: sentences for the user (planes' fractions disagree, ...).
    """

    labels: dict[str, list[np.ndarray]]
    num_phases: int
    thresholds: list[float]
    fractions: dict[str, list[float]]
    warnings: list[str] = field(default_factory=list)
    method: str = "labelled"

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Segment one more grey image ``[H, W]`` exactly as the planes were -> uint8."""
        if self.method == "labelled":
            return to_labels(np.asarray(image), np.asarray(self.thresholds))
        return apply_thresholds(image, self.thresholds)


def apply_thresholds(image: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Grey ``[H, W]`` -> uint8 phases: the number of thresholds strictly below each value."""
    t = np.asarray(thresholds, dtype=np.float64)
    return np.searchsorted(t, np.asarray(image), side="left").astype(np.uint8)


def _pooled(images: Sequence[np.ndarray]) -> np.ndarray:
    total = sum(im.size for im in images)
    stride = max(1, -(-total // MAX_POOLED_PIXELS))
    pooled = np.concatenate([np.asarray(im).ravel()[::stride] for im in images])
    return pooled.astype(np.uint8) if pooled.dtype == bool else pooled


def otsu_thresholds(images: Sequence[np.ndarray], phases: int = 2) -> list[float]:
    """Otsu (``phases == 2``) or multi-Otsu thresholds of the pixels of ``images`` pooled.

    ``images``: grey ``[H, W]`` arrays (any sizes). Returns ``phases - 1`` increasing grey
    values. :class:`SegmentationError` when the images hold fewer grey levels than phases.
    """
    from skimage.filters import threshold_multiotsu, threshold_otsu

    if not images:
        raise SegmentationError("no images to threshold")
    pooled = _pooled(images)
    lo, hi = pooled.min(), pooled.max()
    if lo == hi:
        raise SegmentationError(
            f"every pixel has the grey value {lo}; such images cannot be split into phases: "
            "check that the right files were chosen"
        )
    try:
        if phases == 2:
            t = [float(threshold_otsu(pooled))]
        elif pooled.dtype.kind in "iu" and int(hi) - int(lo) < 256:
            t = [float(v) for v in threshold_multiotsu(pooled, classes=phases)]
        else:
            # skimage bins integers one value per bin; 16-bit ranges would make multi-Otsu
            # (cost ~ bins^(K-1)) take minutes, so use 256 bins as for float images.
            counts, edges = np.histogram(pooled, bins=256, range=(float(lo), float(hi)))
            centers = (edges[:-1] + edges[1:]) / 2
            t = [float(v) for v in threshold_multiotsu(classes=phases, hist=(counts, centers))]
    except ValueError as exc:  # too few grey levels (after skimage's 256-bin histogram)
        raise SegmentationError(
            f"multi-Otsu cannot split these images into {phases} phases ({exc}); "
            "use fewer phases or manual thresholds"
        ) from None
    return t


def _names(images_by_plane, origins) -> dict[str, list]:
    if origins is None:
        return {p: [f"{p} image {i + 1}" for i in range(len(ims))]
                for p, ims in images_by_plane.items()}
    names = {}
    for p, ims in images_by_plane.items():
        names[p] = list(origins.get(p, ()))
        if len(names[p]) != len(ims):
            raise ValueError(f"plane {p}: {len(ims)} images but {len(names[p])} origins")
    return names


def _fraction_warning(fractions: Mapping[str, Sequence[float]], tolerance: float) -> str | None:
    if len(fractions) < 2:
        return None
    f = np.array(list(fractions.values()))
    spread = f.max(axis=0) - f.min(axis=0)
    if spread.max() <= tolerance:
        return None
    worst = int(spread.argmax())
    detail = ", ".join(f"{p} {v[worst]:.3f}" for p, v in fractions.items())
    return (
        f"phase {worst} takes different fractions of the planes' pixels ({detail}: "
        f"{spread[worst]:.3f} apart, more than {tolerance:g}); a 3D material has one volume "
        "fraction, so check the segmentation, that each folder holds the right plane, or "
        "that the images are representative"
    )


def segment_planes(images_by_plane: Mapping[str, Sequence[np.ndarray]],
                   config: SegmentationConfig = SegmentationConfig(),
                   origins: Mapping[str, Sequence[Path]] | None = None, *,
                   tolerance: float = 0.03) -> Segmentation:
    """Segment every plane's grey images ``[H, W]`` with one shared set of thresholds.

    ``origins[plane][i]`` names the file of image i, for error messages. Planes without
    images are left out. ``tolerance``: largest absolute difference of a phase's fraction
    between planes before a warning. Raises :class:`~micro3d_gui.errors.InputError`
    subclasses (:class:`SegmentationError`, or :class:`DatasetError` for inconsistent
    labelled images) naming the file and the fix.
    """
    images = {p: [np.asarray(im) for im in ims] for p, ims in images_by_plane.items()
              if len(ims)}
    if not images:
        raise SegmentationError("no images given; choose micrographs for at least one plane")
    names = _names(images, origins)
    for p, ims in images.items():
        for im, name in zip(ims, names[p]):
            if im.ndim != 2:
                raise SegmentationError(f"{name}: has shape {im.shape}, not a 2D grey image")
    warnings = []
    dtypes = sorted({str(im.dtype) for ims in images.values() for im in ims})
    if config.method == "labelled":
        levels = grey_levels(images, names)
        labels = {p: [to_labels(im, levels) for im in ims] for p, ims in images.items()}
        thresholds = levels.tolist()
        k = len(levels)
    else:
        if len(dtypes) > 1:
            warnings.append(
                f"the images mix grey-value types ({', '.join(dtypes)}); thresholds apply to "
                "the raw values, so convert them all to one bit depth first"
            )
        all_images = [im for ims in images.values() for im in ims]
        if config.method == "manual":
            thresholds = list(config.thresholds)
        else:
            thresholds = otsu_thresholds(all_images, config.phases)
        k = len(thresholds) + 1
        labels = {p: [apply_thresholds(im, thresholds) for im in ims]
                  for p, ims in images.items()}
    fractions = {p: volume_fractions(ls, k).tolist() for p, ls in labels.items()}
    overall = volume_fractions([im for ls in labels.values() for im in ls], k)
    empty = np.flatnonzero(overall == 0).tolist()
    if empty and config.method != "labelled":
        lo = min(float(im.min()) for ims in images.values() for im in ims)
        hi = max(float(im.max()) for ims in images.values() for im in ims)
        raise SegmentationError(
            f"thresholds {[round(t, 4) for t in thresholds]} leave phase(s) {empty} without "
            f"any pixel; the images' grey values span {lo:g}..{hi:g}: choose thresholds "
            "inside that range (or fewer phases)"
        )
    message = _fraction_warning(fractions, tolerance)
    if message:
        warnings.append(message)
    if config.method != "labelled":  # grey levels keep their type (e.g. 0 and 255)
        thresholds = [float(t) for t in thresholds]
    return Segmentation(labels, k, thresholds, fractions, warnings, config.method)


def segment_image(image: np.ndarray,
                  config_or_thresholds: SegmentationConfig | Segmentation | Sequence[float]
                  ) -> np.ndarray:
    """One grey image ``[H, W]`` -> uint8 phase labels, for a live preview.

    With a :class:`SegmentationConfig`, Otsu thresholds come from this image alone
    (``segment_planes`` pools all planes); with a :class:`Segmentation` the image is
    segmented exactly as its planes were; a sequence is taken as manual thresholds.
    """
    im = np.asarray(image)
    if im.ndim != 2:
        raise SegmentationError(f"image has shape {im.shape}, not a 2D grey image")
    if isinstance(config_or_thresholds, Segmentation):
        return config_or_thresholds.apply(im)
    if not isinstance(config_or_thresholds, SegmentationConfig):
        return apply_thresholds(im, SegmentationConfig("manual",
                                                       thresholds=config_or_thresholds)
                                .thresholds)
    cfg = config_or_thresholds
    if cfg.method == "labelled":
        levels = np.unique(im)
        if len(levels) > MAX_LABEL_LEVELS:
            raise SegmentationError(
                f"image has {len(levels)} grey levels, so it is not a labelled (segmented) "
                "image; choose otsu, multiotsu or manual thresholds"
            )
        return to_labels(im, levels)
    if cfg.method == "manual":
        return apply_thresholds(im, cfg.thresholds)
    return apply_thresholds(im, otsu_thresholds([im], cfg.phases))

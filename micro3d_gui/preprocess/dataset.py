"""Micrographs per plane (folders or files) -> phase-label images ready for training.

Already-labelled images are used as they are; grey micrographs are segmented with one set of
thresholds for all planes (:mod:`micro3d_gui.preprocess.segment`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .segment import Segmentation, SegmentationConfig, segment_planes
from ..errors import DatasetError, InputError
from ..io.images import read_sources, skipped_text
from .labels import MAX_LABEL_LEVELS, quantised_groups
from .orientation import PlaneOptions, apply_options
from ..io.volume import read_volume

Source = str | os.PathLike


@dataclass
class PlaneImageSet:
    """Label images per plane (``[H, W]`` uint8, phases ``0..num_phases-1``)."""

    images: dict[str, list[np.ndarray]]
    origins: dict[str, list[Path]]
    num_phases: int
    grey_levels: list[float] = field(default_factory=list)
    #: How the labels were made (method, thresholds, per-plane fractions, warnings).
    segmentation: Segmentation | None = None
    #: Per plane, the files of its folders that were skipped as not images.
    skipped: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        skipped = [f"{plane}: skipped {skipped_text(files)}"
                   for plane, files in self.skipped.items() if files]
        shared = shared_planes(self.origins)
        return skipped + ([shared] if shared else []) + (
            list(self.segmentation.warnings) if self.segmentation else [])


def shared_planes(origins: Mapping[str, Sequence[Path]]) -> str | None:
    """A warning when planes were given the very same files (the same folder for xy, xz
    and yz, say): sections of three different planes cannot be the same images unless the
    material looks alike in every direction, which is said with --isotropic / --like."""
    groups: dict[frozenset, list[str]] = {}
    for plane, files in origins.items():
        if files:
            groups.setdefault(frozenset(Path(f).resolve() for f in files), []).append(plane)
    same = next((planes for planes in groups.values() if len(planes) > 1), None)
    if same is None:
        return None
    files = origins[same[0]]
    named = ", ".join(same[:-1]) + f" and {same[-1]}"
    return (f"{named} are given the same {len(files)} file(s) "
            f"({Path(files[0]).parent}); a plane's micrographs are its own sections: give "
            "each plane its own, or, for a material that looks the same in every direction, "
            "one plane's with --isotropic (or --like for two planes alike)")


def _count_levels(images: Mapping[str, Sequence[np.ndarray]]) -> int:
    """Distinct grey values of all images, counted up to MAX_LABEL_LEVELS + 1."""
    levels: set = set()
    for ims in images.values():
        for im in ims:
            levels.update(np.unique(im).tolist())
            if len(levels) > MAX_LABEL_LEVELS:
                return len(levels)
    return len(levels)


def _levels(images: Mapping[str, Sequence[np.ndarray]]) -> list:
    return sorted(set().union(*(np.unique(im).tolist() for ims in images.values()
                                for im in ims)))


def load_labelled_planes(folders: Mapping[str, Source | Sequence[Source] | None],
                         phases: int | None = None,
                         segmentation: SegmentationConfig | None = None,
                         options: Mapping[str, PlaneOptions] | None = None, *,
                         tolerance: float = 0.03) -> PlaneImageSet:
    """Read ``{plane: folder, file or list of them}`` (planes given None are skipped) and
    turn the images into phase labels.

    ``options[plane]`` re-orients that plane's images first (transpose, flips).
    ``segmentation`` None picks the method from the data: images with at most
    ``MAX_LABEL_LEVELS`` grey levels are labelled (``phases``, when given, must equal the
    number of levels); grey micrographs need ``phases`` K and are thresholded with Otsu
    (K = 2) or multi-Otsu (K >= 3) on all planes' pixels together. An explicit
    ``segmentation`` is used as given (with ``phases``, when given, checked against it).
    ``tolerance``: planes' phase fractions further apart than this give a warning.
    """
    images, origins, skipped = {}, {}, {}
    for plane, source in folders.items():
        if source is None or (not isinstance(source, (str, os.PathLike)) and not len(source)):
            continue
        skipped[plane] = []
        images[plane], origins[plane] = read_sources(source, skipped[plane])
    if not images:
        raise DatasetError("no plane folders given; pass at least one of --xy, --xz, --yz")
    _check_bit_depths(images, origins)
    images = apply_options(images, options)
    result = _segment(images, origins, phases, segmentation, tolerance)
    levels = result.thresholds if result.method == "labelled" else []
    return PlaneImageSet(result.labels, origins, result.num_phases, levels, result, skipped)


def _check_bit_depths(images: Mapping[str, Sequence[np.ndarray]],
                      origins: Mapping[str, Sequence[Path]]) -> None:
    """:class:`DatasetError` naming one file of each when integer images of different bit
    depths are mixed (8-bit 0..255 beside 16-bit 0..65535): one set of thresholds, or of
    label grey levels, cannot serve both, and pooled, the 8-bit plane would be all one
    phase. Which range a 16-bit camera image really uses (12 bits?) is not known, so
    they are not rescaled."""
    first: dict[int, Path] = {}
    for plane, ims in images.items():
        for im, origin in zip(ims, origins[plane]):
            if im.dtype.kind in "iu":
                first.setdefault(im.dtype.itemsize * 8, origin)
    if len(first) > 1:
        (low, a), (high, b) = sorted(first.items())[0], sorted(first.items())[-1]
        raise DatasetError(f"{b}: is a {high}-bit image but {a} is {low}-bit; one set of "
                           "thresholds or label levels cannot serve both: save all "
                           f"micrographs at one bit depth (e.g. convert the {high}-bit ones "
                           f"to {low}-bit)")


def _segment(images: Mapping[str, Sequence[np.ndarray]], origins: Mapping[str, Sequence],
             phases: int | None, segmentation: SegmentationConfig | None,
             tolerance: float) -> Segmentation:
    """The method choice and phase-count check of :func:`load_labelled_planes`."""
    if segmentation is None:
        # labels blurred by JPEG in as many groups as --phases: thresholded like grey ones
        if phases is None or (_count_levels(images) <= MAX_LABEL_LEVELS
                              and len(quantised_groups(_levels(images)) or ()) != phases):
            segmentation = SegmentationConfig("labelled")
        else:
            segmentation = SegmentationConfig("otsu" if phases == 2 else "multiotsu", phases)
    result = segment_planes(images, segmentation, origins, tolerance=tolerance)
    if segmentation.method == "labelled" and phases is None:
        _check_plane_levels(images, result.thresholds)
    if phases is not None and phases != result.num_phases:
        if segmentation.method == "labelled":
            raise DatasetError(
                f"the images hold {result.num_phases} grey levels {result.thresholds} but "
                f"--phases is {phases}; drop --phases for labelled images, relabel them, or "
                "threshold them (--segment otsu / multiotsu / manual)"
            )
        raise DatasetError(
            f"the {segmentation.method} segmentation gives {result.num_phases} phases but "
            f"--phases is {phases}; make them agree"
        )
    return result


def _check_plane_levels(images: Mapping[str, Sequence[np.ndarray]], levels: list) -> None:
    """:class:`DatasetError` when whole planes of a labelled set lack grey levels that
    other planes use (e.g. xz labelled 0/127/255, xy and yz 0/255): almost always planes
    labelled by different conventions, which would train a phase that two planes never
    show. A single image may lack phases; a whole plane may only with ``--phases``."""
    if len(images) < 2:
        return
    used = {p: sorted(set().union(*(np.unique(im).tolist() for im in ims)))
            for p, ims in images.items()}
    if all(len(u) == len(levels) for u in used.values()):
        return
    groups: dict[tuple, list[str]] = {}
    for plane, u in used.items():
        groups.setdefault(tuple(u), []).append(plane)
    detail = "; ".join(f"{' and '.join(planes)} use{'s' if len(planes) == 1 else ''} "
                       f"{list(u)}" for u, planes in groups.items())
    missing = [lv for lv in levels if not all(lv in u for u in used.values())]
    raise DatasetError(
        f"the planes are labelled with different grey levels ({detail}), so level(s) "
        f"{missing} would be a phase that some planes never show; label every plane with "
        f"the same grey values, or pass --phases {len(levels)} if those phases are really "
        "absent from those planes")


def load_labelled_volume(path: Source, phases: int | None = None,
                         segmentation: SegmentationConfig | None = None
                         ) -> tuple[np.ndarray, Segmentation]:
    """Read a 3D TIFF stack (e.g. a measured reference volume) and turn it into phase labels
    ``[Z, Y, X]`` uint8 by the rules of :func:`load_labelled_planes` (labelled when it holds
    at most ``MAX_LABEL_LEVELS`` grey levels, else Otsu / multi-Otsu with ``phases``, or the
    given ``segmentation``), all voxels pooled. Returns ``(labels, segmentation)``.
    """
    vol = read_volume(path)
    # One 2D image of all voxels: a slice may lack phases (a section inside one layer),
    # which the per-image checks of labelled sets would take for inconsistent labels.
    flat = {"volume": [vol.reshape(-1, vol.shape[-1])]}
    try:
        result = _segment(flat, {"volume": [Path(path)]}, phases, segmentation, tolerance=1.0)
    except InputError as exc:
        if str(path) in str(exc):
            raise
        raise type(exc)(f"{path}: {exc}") from None
    return result.labels["volume"][0].reshape(vol.shape), result

"""Folders of labelled micrographs, one per plane -> label images ready for training."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DatasetError
from .images import read_folder
from .labels import grey_levels, to_labels


@dataclass
class PlaneImageSet:
    """Label images per plane (``[H, W]`` uint8, phases ``0..num_phases-1``)."""

    images: dict[str, list[np.ndarray]]
    origins: dict[str, list[Path]]
    num_phases: int
    grey_levels: list[float] = field(default_factory=list)

    def check_crop(self, crop: int) -> None:
        """:class:`DatasetError` naming the smallest image when ``crop`` does not fit."""
        for plane, ims in self.images.items():
            for im, origin in zip(ims, self.origins[plane]):
                if min(im.shape) < crop:
                    raise DatasetError(
                        f"{origin}: image is {im.shape[0]}x{im.shape[1]} px, smaller than "
                        f"the {crop} px training crop; use --crop {_fitting_crop(im)} "
                        "or larger images"
                    )


def _fitting_crop(im: np.ndarray, multiple: int = 8) -> int:
    return max(multiple, (min(im.shape) // multiple) * multiple)


def load_labelled_planes(folders: dict[str, str | os.PathLike | None],
                         phases: int | None = None) -> PlaneImageSet:
    """Read ``{plane: folder}`` (planes without a folder are skipped) as labelled images.

    ``phases``, when given, must equal the number of grey levels found.
    """
    images, origins = {}, {}
    for plane, folder in folders.items():
        if folder is None:
            continue
        images[plane], origins[plane] = read_folder(folder)
    if not images:
        raise DatasetError("no plane folders given; pass at least one of --xy, --xz, --yz")
    levels = grey_levels(images, origins)
    if phases is not None and phases != len(levels):
        raise DatasetError(
            f"the images hold {len(levels)} grey levels {levels.tolist()} but --phases is "
            f"{phases}; drop --phases for labelled images or relabel them"
        )
    labelled = {p: [to_labels(im, levels) for im in ims] for p, ims in images.items()}
    return PlaneImageSet(labelled, origins, len(levels), levels.tolist())

"""The square training crop: which side a new run trains with, and whether the micrographs
hold it.

One rule for ``micro3d train``, the app's Train panel and the benchmarks
(:func:`training_crop`, called by :func:`~micro3d_gui.core.training.prepare_trainer`): the
recipe's crop when the micrographs hold it, else the largest multiple of the network's
stride that fits the smallest micrograph and leaves every plane room for
:data:`MIN_PLANE_CROPS` crops, with a note saying why; below :data:`MIN_AUTO_CROP` the images
are refused with the minimum named. A crop the user gives is only checked.

Images are given by their shapes ``(rows, cols)`` in pixels per plane; ``names`` (optional)
gives, per plane, the file each image came from, for the messages. No torch.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError

#: Smallest crop chosen automatically (px): four times the stride of the pixel networks
#: (8), so their coarsest level still sees 4 x 4 of its cells (``lean``'s, on 2x2 patches,
#: 2 x 2).
MIN_AUTO_CROP = 32

#: A plane's micrographs must cover at least this many crops' area: the fidelity floor
#: splits a plane into two halves that must each hold crops (a single image: its top and
#: bottom), and fewer distinct crops are learnt by heart rather than as a texture.
MIN_PLANE_CROPS = 4

#: What the crop messages tell the user to do (``{fit}``: the largest crop that fits).
CLI_CROP_ADVICE = "use --crop {fit} or larger images"
APP_CROP_ADVICE = "set Crop to {fit} or less, or use larger images"

Shapes = Mapping[str, Sequence[tuple[int, int]]]
Names = Mapping[str, Sequence[str | Path]] | None


@dataclass(frozen=True)
class CropChoice:
    """The crop a run trains with (px) and, when it is not the recipe's, why (a note)."""

    crop: int
    note: str | None = None


def image_shapes(images: Mapping[str, Sequence[np.ndarray]]) -> dict[str, list[tuple]]:
    """``{plane: [(rows, cols), ...]}`` of label images ``[H, W]``."""
    return {p: [tuple(np.shape(im)[:2]) for im in ims] for p, ims in images.items()}


def _name(names: Names, plane: str, i: int, short: bool = False) -> str:
    listed = list((names or {}).get(plane, ()))
    if i < len(listed):
        return Path(listed[i]).name if short else str(listed[i])
    return f"{plane} image {i + 1}"


def _round_down(px: float, multiple: int) -> int:
    return int(px // multiple) * multiple


def _area_limit(shapes: Sequence[tuple[int, int]]) -> float:
    """Largest crop side (px, not rounded) for which these images hold MIN_PLANE_CROPS."""
    return math.sqrt(sum(h * w for h, w in shapes) / MIN_PLANE_CROPS)


def _smallest(shapes: Shapes) -> tuple[str, int, tuple[int, int]]:
    """(plane, index, shape) of the image with the shortest side (the first of equals)."""
    return min(((p, i, s) for p, ss in shapes.items() for i, s in enumerate(ss)),
               key=lambda t: min(t[2]))


def check_image_sides(shapes: Shapes, names: Names, crop: int, advice: str,
                      multiple: int) -> None:
    """:class:`DatasetError` naming the first image smaller than ``crop`` px on a side, with
    ``advice`` formatted with the largest multiple of ``multiple`` that fits it."""
    for plane, ss in shapes.items():
        for i, (h, w) in enumerate(ss):
            if min(h, w) < crop:
                fit = max(multiple, _round_down(min(h, w), multiple))
                raise DatasetError(
                    f"{_name(names, plane, i)}: image is {h}x{w} px, smaller than the {crop} px "
                    f"training crop; " + advice.format(fit=fit))


def check_plane_area(shapes: Shapes, crop: int, advice: str, multiple: int) -> None:
    """:class:`DatasetError`, with the numbers, for the first plane whose micrographs
    together cover less than :data:`MIN_PLANE_CROPS` crops of ``crop`` px."""
    for plane, ss in shapes.items():
        area = sum(h * w for h, w in ss)
        if ss and area < MIN_PLANE_CROPS * crop * crop:
            fit = max(multiple, _round_down(_area_limit(ss), multiple))
            side = math.ceil(math.sqrt(MIN_PLANE_CROPS) * crop)
            count = (f"{len(ss)} micrographs cover" if len(ss) != 1 else
                     "1 micrograph covers")
            raise DatasetError(
                f"{plane}: its {count} {area:,} px², room for only "
                f"{area / crop ** 2:.1f} crops of {crop} px; a plane needs at least "
                f"{MIN_PLANE_CROPS} crops' area ({MIN_PLANE_CROPS * crop * crop:,} px², e.g. "
                f"one {side}x{side} px micrograph): add {plane} micrographs, or "
                + advice.format(fit=fit))


def training_crop(shapes: Shapes, recipe_crop: int, multiple: int, crop: int | None = None,
                  names: Names = None, advice: str = CLI_CROP_ADVICE) -> CropChoice:
    """The crop side (px) a new run trains with.

    ``crop`` given: it is checked (every image holds it, every plane holds
    :data:`MIN_PLANE_CROPS` of it) and kept. Else the recipe's ``recipe_crop`` when it fits,
    or the largest multiple of the network's ``multiple`` (its stride) that fits the
    smallest image and every plane's area, with a note naming the image or plane that
    set it; :class:`DatasetError` when that is below :data:`MIN_AUTO_CROP`. ``advice``: the
    wording of the fix in messages (:data:`CLI_CROP_ADVICE` or :data:`APP_CROP_ADVICE`).
    """
    shapes = {p: [tuple(map(int, s)) for s in ss] for p, ss in shapes.items() if len(ss)}
    if not shapes:
        raise DatasetError("no training images in any plane")
    if crop is not None:
        check_image_sides(shapes, names, crop, advice, multiple)
        check_plane_area(shapes, crop, advice, multiple)
        return CropChoice(int(crop))
    plane, i, (h, w) = _smallest(shapes)
    by_side = _round_down(min(h, w), multiple)
    narrow = min(shapes, key=lambda p: _area_limit(shapes[p]))
    by_area = _round_down(_area_limit(shapes[narrow]), multiple)
    chosen = min(recipe_crop, by_side, by_area)
    floor = math.ceil(MIN_AUTO_CROP / multiple) * multiple
    if chosen < floor:
        if by_side < floor:
            why = (f"{_name(names, plane, i)}: image is {h}x{w} px; micrographs must be at "
                   f"least {floor} px on a side (the smallest automatic training crop); use "
                   "larger micrographs")
        else:
            area = sum(a * b for a, b in shapes[narrow])
            why = (f"{narrow}: its micrographs cover {area:,} px², less than the "
                   f"{MIN_PLANE_CROPS * floor * floor:,} px² that {MIN_PLANE_CROPS} crops of "
                   f"{floor} px (the smallest automatic training crop) need; add {narrow} "
                   "micrographs")
        yours = min(by_side, by_area)
        fix = (
            f" (or set a smaller crop yourself: {yours} px fits these)" if yours >= multiple
            else "")
        raise DatasetError(why + fix)
    if chosen == recipe_crop:
        return CropChoice(chosen)
    if chosen == by_side:
        note = (f"crop {chosen} px: the smallest micrograph, {_name(names, plane, i, True)}, "
                f"is {min(h, w)} px")
    else:
        area = sum(a * b for a, b in shapes[narrow])
        note = (f"crop {chosen} px: the {narrow} micrographs cover {area:,} px², room for "
                f"{MIN_PLANE_CROPS} crops of {chosen} px but only "
                f"{area / recipe_crop ** 2:.1f} of the recipe's {recipe_crop} px")
    return CropChoice(chosen, note)

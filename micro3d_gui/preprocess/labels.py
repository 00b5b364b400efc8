"""Already-labelled micrographs: distinct grey levels, in increasing order, are phases.

All planes share one mapping, so a phase keeps its number across planes. An image may lack
some phases (a section through a single layer is uniform), but every image's levels must
be among the levels the whole set uses.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import DatasetError
# More distinct levels than MAX_LABEL_LEVELS in a "labelled" set means raw grey micrographs
# (one bound for grey levels and colours, defined where colour images are read).
from ..io.images import MAX_LABEL_LEVELS


def grey_levels(images_by_plane: Mapping[str, Sequence[np.ndarray]],
                origins: Mapping[str, Sequence[Path]]) -> np.ndarray:
    """The sorted grey levels of a labelled set; :class:`DatasetError` when they disagree."""
    level_sets = {}
    for plane, ims in images_by_plane.items():
        for im, origin in zip(ims, origins[plane]):
            level_sets.setdefault(str(origin), set()).update(np.unique(im).tolist())
    if not level_sets:
        raise DatasetError("no images given; point each plane at a folder of micrographs")
    levels = sorted(set().union(*level_sets.values()))
    if len(levels) > MAX_LABEL_LEVELS:
        worst = max(level_sets, key=lambda k: len(level_sets[k]))
        raise DatasetError(
            f"{worst}: has {len(level_sets[worst])} grey levels, so it is not a labelled "
            "(segmented) image; segment the micrographs first (e.g. pass --phases K to "
            "threshold them)"
        )
    for name, s in level_sets.items():  # one file's own levels: not planes that disagree
        groups = quantised_groups(s)
        if groups is not None:
            raise DatasetError(quantised_message(name, sorted(s), groups))
    if len(levels) < 2:
        first = next(iter(level_sets))
        raise DatasetError(
            f"{first}: this and every other image use the single grey level {levels[0]}; a "
            "material needs at least two phases: check that the right files were chosen"
        )
    # The most common set of levels among files that show the most phases is the reference.
    widest = max(len(s) for s in level_sets.values())
    ref_file = next(k for k, s in level_sets.items() if len(s) == widest)
    ref = level_sets[ref_file]
    for name, s in level_sets.items():
        if not s <= ref:
            raise DatasetError(
                f"{name}: uses grey levels {sorted(s)}, but {ref_file} uses {sorted(ref)}; "
                "label every image with the same grey values (e.g. 0 and 255 for two phases)"
            )
    return np.array(levels)


def quantised_groups(levels: Sequence[float]) -> list[list[float]] | None:
    """The groups of the sorted grey ``levels`` when they are labels blurred by lossy
    (JPEG) compression, else None: a few tight groups far apart (0, 1, 254, 255 is 0 and
    255 with noise at the edges), at least one holding several levels. A group ends
    where the next level is more than a quarter of the whole range away, and spans at
    most a sixteenth of it; evenly spaced labels (0..K-1, or 0/85/170/255) are one level
    per group and so are never taken for noise."""
    levels = sorted(float(v) for v in levels)
    if len(levels) < 3:
        return None
    span = levels[-1] - levels[0]
    groups = [[levels[0]]]
    for v in levels[1:]:
        if v - groups[-1][-1] > span / 4:
            groups.append([v])
        else:
            groups[-1].append(v)
    if len(groups) < 2 or len(groups) == len(levels) \
            or any(g[-1] - g[0] > span / 16 for g in groups):
        return None
    return groups


def quantised_message(name, levels: Sequence[float], groups: list[list[float]]) -> str:
    """What to tell about the file ``name`` whose labels lossy compression blurred."""
    shown = ", ".join(f"{v:g}" for v in levels[:8]) + (", ..." if len(levels) > 8 else "")
    ranges = ", ".join(f"{g[0]:g}-{g[-1]:g}" if len(g) > 1 else f"{g[0]:g}" for g in groups)
    n = len(groups)
    return (f"{name}: its grey levels {shown} lie in {n} tight groups ({ranges}): "
            "labels saved with lossy (JPEG) compression, whose edge noise would train as "
            f"phases of its own; save the labels losslessly (PNG or TIFF), or threshold "
            f"them into {n} phases with --phases {n}")


def to_labels(image: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Grey image -> uint8 phase labels via the sorted ``levels``."""
    return np.searchsorted(levels, image).astype(np.uint8)


def read_section_labels(path: str | Path, num_phases: int) -> np.ndarray:
    """A labelled section image (a measured slice to keep in a volume) -> uint8 labels
    ``[rows, cols]`` in 0..K-1.

    Labels 0..K-1 are taken as they are; otherwise exactly K grey levels (e.g. 0 and 255,
    or 0/127/255) are phases in increasing order, and fewer levels are read as the evenly
    spaced 0..255 levels (a section that lacks a phase). Anything else is refused, naming
    the file.
    """
    from ..io.images import read_images

    p = Path(path)
    image = read_images(p)[0]
    levels = np.unique(image)
    if levels.min() >= 0 and levels.max() < num_phases and np.all(levels == np.round(levels)):
        return image.astype(np.uint8)
    if len(levels) == num_phases:
        return to_labels(image, levels)
    spaced = np.round(np.linspace(0, 255, num_phases))  # 0/255, 0/128/255, ...
    nearest = np.abs(image[..., None].astype(float) - spaced).argmin(axis=-1)
    if np.all(np.abs(levels[:, None].astype(float) - spaced).min(axis=1) <= 1):
        return nearest.astype(np.uint8)  # a section that lacks a phase, as 0/255 levels
    raise DatasetError(
        f"{p}: has {len(levels)} grey levels ({', '.join(f'{v:g}' for v in levels[:6])}"
        f"{', ...' if len(levels) > 6 else ''}) but the model has {num_phases} phases; save "
        f"the section as labels 0..{num_phases - 1} or with exactly {num_phases} grey levels")

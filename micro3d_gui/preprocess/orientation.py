"""Orientation of each plane's micrographs: transpose and flips per plane (the three sets cut
from a 3D stack are :func:`micro3d_gui.core.planes.volume_plane_images`).

Images must follow METHOD.md Sec. 1 (``xy``: rows y, columns x; ``xz``: rows z, columns x;
``yz``: rows z, columns y). Micrographs that come another way round are fixed per plane
with :class:`PlaneOptions` (never by rotating inside training, which would mix planes).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..core.planes import check_plane


@dataclass(frozen=True)
class PlaneOptions:
    """How to turn a plane's images into METHOD.md's orientation.

    ``transpose`` swaps rows and columns (applied first); then ``flip_rows`` reverses the
    row order (upside down, image axis 0) and ``flip_cols`` the column order (mirror,
    image axis 1).
    """

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False

    @property
    def identity(self) -> bool:
        return not (self.transpose or self.flip_rows or self.flip_cols)


def apply_plane_options(image: np.ndarray, options: PlaneOptions) -> np.ndarray:
    """``[H, W]`` image -> oriented image (``[W, H]`` when transposed): transpose, then flips.

    Returns a contiguous copy (or the image itself when the options change nothing).
    """
    if options.identity:
        return image
    out = np.asarray(image)
    if options.transpose:
        out = out.T
    if options.flip_rows:
        out = out[::-1, :]
    if options.flip_cols:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def apply_options(images_by_plane: Mapping[str, Sequence[np.ndarray]],
                  options: Mapping[str, PlaneOptions] | None) -> dict[str, list[np.ndarray]]:
    """:func:`apply_plane_options` to every image of each plane (planes without options kept)."""
    options = options or {}
    for plane in options:
        check_plane(plane)
    return {plane: [apply_plane_options(im, options.get(plane, PlaneOptions())) for im in ims]
            for plane, ims in images_by_plane.items()}


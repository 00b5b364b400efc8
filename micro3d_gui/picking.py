"""Which section of a box a view ray meets: the 3D view's drop target (no Qt, no VTK).

World coordinates are the 3D view's: x, y, z = the volume's columns, rows, slices, one voxel
a cube of edge ``spacing`` with the box's corner at the origin, so a volume ``[Z, Y, X]``
fills ``[0, X d] x [0, Y d] x [0, Z d]``. A section is named as everywhere in the app: the
plane (``xy`` normal to z, ``xz`` normal to y, ``yz`` normal to x) and its voxel index along
that normal.
"""
from __future__ import annotations

import numpy as np

#: World axis (0 x, 1 y, 2 z) -> the plane normal to it.
NORMAL_PLANE = {0: "yz", 1: "xz", 2: "xy"}


def _box_entry(origin, direction, size):
    """(t, axis, from_low_side) where the ray enters the box ``[0, size]``, or None."""
    t_near, t_far, entry = -np.inf, np.inf, None
    for a in range(3):
        if direction[a] == 0:
            if not 0 <= origin[a] <= size[a]:
                return None
            continue
        t1, t2 = (0 - origin[a]) / direction[a], (size[a] - origin[a]) / direction[a]
        lo, hi = min(t1, t2), max(t1, t2)
        if lo > t_near:
            t_near, entry = lo, (a, direction[a] > 0)
        t_far = min(t_far, hi)
    if entry is None or t_near > t_far or t_far < 0:
        return None
    return t_near, entry[0], entry[1]


def section_under_ray(origin, direction, shape, spacing: float = 1.0,
                      slabs: dict[str, int] | None = None) -> tuple[str, int] | None:
    """The section a ray from ``origin`` along ``direction`` (world x, y, z) meets first.

    ``shape``: the volume's ``[Z, Y, X]``. ``slabs``: the one-voxel slabs drawn inside the
    box (the slices view) as sections, ``{"xy": index, "xz": index, "yz": index}``; the
    nearest one the ray crosses inside the box wins. Otherwise (or with no slabs) it is the box face the ray
    enters by: index 0 on the low side of that axis, the last index on the high side.
    Returns ``(plane, index)``, or None when the ray misses the box.
    """
    o = np.asarray(origin, float)
    d = np.asarray(direction, float)
    n = np.array(shape[::-1])  # voxels along x, y, z
    size = n * spacing
    entry = _box_entry(o, d, size)
    if entry is None:
        return None
    t_enter, axis, from_low = entry
    hits = []
    for a, plane in NORMAL_PLANE.items():
        if slabs is None or plane not in slabs or d[a] == 0:
            continue
        index = int(slabs[plane])
        t = ((index + 0.5) * spacing - o[a]) / d[a]  # the slab's mid-plane
        p = o + t * d
        others = [b for b in range(3) if b != a]
        if t >= t_enter and all(0 <= p[b] <= size[b] for b in others):
            hits.append((t, a, index))
    if hits:
        _, a, index = min(hits)
        return NORMAL_PLANE[a], index
    return NORMAL_PLANE[axis], 0 if from_low else int(n[axis]) - 1

"""The section a view ray meets (the 3D view's drop target), against rays worked by hand."""
import numpy as np
import pytest

from micro3d_gui.picking import section_under_ray

SHAPE = (12, 16, 20)  # [Z, Y, X]: the box spans x 0..20, y 0..16, z 0..12 (spacing 1)


@pytest.mark.parametrize("origin, direction, expected", [
    ((-5, 8, 6), (1, 0, 0), ("yz", 0)),      # enters by the face x = 0
    ((30, 8, 6), (-1, 0, 0), ("yz", 19)),    # by x = 20: the last yz section
    ((10, -1, 6), (0, 1, 0), ("xz", 0)),
    ((10, 8, 50), (0, 0, -2), ("xy", 11)),   # the direction's length does not matter
    ((10, 8, -50), (0, 0, 1), ("xy", 0)),
    # oblique, from below-left: reaches the plane z = 0 at (4, 4), inside the box
    ((0, 0, -4), (1, 1, 1), ("xy", 0)),
    # oblique, reaching the plane x = 0 at y = 7.5, z = 5: the yz face
    ((-2, 6, 3), (1, 0.75, 1), ("yz", 0)),
])
def test_the_face_a_ray_enters_by(origin, direction, expected):
    assert section_under_ray(origin, direction, SHAPE) == expected


def test_a_ray_off_the_box_or_pointing_away_meets_nothing():
    assert section_under_ray((-5, 20, 6), (1, 0, 0), SHAPE) is None  # passes above y = 16
    assert section_under_ray((-5, 8, 6), (-1, 0, 0), SHAPE) is None  # the box is behind it
    # over the top: at x = 0 it is at z = 16, and it left z = 12 before
    assert section_under_ray((-5, 8, 6), (1, 0, 2), SHAPE) is None


def test_the_nearest_slab_inside_the_box_wins_over_the_face():
    slabs = {"xy": 5, "xz": 3, "yz": 4}
    assert section_under_ray((10, 8, 50), (0, 0, -1), SHAPE, slabs=slabs) == ("xy", 5)
    assert section_under_ray((30, 8, 6), (-1, 0, 0), SHAPE, slabs=slabs) == ("yz", 4)
    # from +y the xz slab at y = 3 is on the box's far side: still the first slab met
    assert section_under_ray((10, 30, 6), (0, -1, 0), SHAPE, slabs=slabs) == ("xz", 3)
    # a ray down z at x = 4.5 runs inside the yz slab, the xy slab at z = 5.5 is met first
    assert section_under_ray((4.5, 8, 50), (0, 0, -1), SHAPE, slabs=slabs) == ("xy", 5)
    # oblique from the face x = 20: it crosses the yz slab's mid-plane x = 4.5 at t = 15.5
    # (z = 6.0), the xy slab's z = 5.5 only at t = 18 (x = 2): the yz slab is nearer
    assert section_under_ray((20, 8, 9.1), (-1, 0, -0.2), SHAPE, slabs=slabs) == ("yz", 4)


def test_voxel_size_scales_the_box():
    # spacing 0.5: the box spans 10 x 8 x 6 world units, the z slab 2 is z 1.0..1.5
    assert section_under_ray((7.25, 4, 50), (0, 0, -1), SHAPE, 0.5, {"yz": 14, "xy": 2}) \
        == ("xy", 2)
    assert section_under_ray((7.25, 4, 50), (0, 0, -1), SHAPE, 0.5, {"yz": 14}) == ("xy", 11)
    assert section_under_ray((7.25, 4, 50), (0, 0, -1), SHAPE, 0.5, {"yz": 14}) \
        == section_under_ray(np.array([7.25, 4, 50]), np.array([0, 0, -3.0]), SHAPE, 0.5)

"""Synthetic anisotropic materials: determinism, fractions, anisotropy, periodicity."""
import math
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage
from scipy.stats import multivariate_normal, norm

from micro3d_gui.core.planes import PLANES, label_volume_to_images
from micro3d_gui.preprocess.synthetic import (
                                              MATERIALS, electrode, fibre_composite, gaussian_random_field, separator,
                                              )
from micro3d_gui.preprocess.dataset import load_labelled_planes
from micro3d_gui.metrics.anisotropy import transition_rate

AXES = "zyx"
DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"


def seam_and_interior(volume, axis):
    """Phase-change rate across the periodic wrap of ``axis`` and in each interior plane pair."""
    v = np.moveaxis(volume, axis, 0)
    interior = (v[1:] != v[:-1]).reshape(v.shape[0] - 1, -1).mean(axis=1)
    return float((v[-1] != v[0]).mean()), interior


# ---------------------------------------------------------------- all materials

@pytest.mark.parametrize("name", sorted(MATERIALS))
def test_same_seed_same_volume_other_seed_other_volume(name):
    m = MATERIALS[name]
    a = m.make((20, 24, 28), seed=0)
    np.testing.assert_array_equal(a, m.make((20, 24, 28), seed=0))
    assert (a != m.make((20, 24, 28), seed=1)).mean() > 0.05


@pytest.mark.parametrize("shape", [(17, 23, 31), (40, 24, 16), (16, 16, 16), (9, 64, 20)])
@pytest.mark.parametrize("name", sorted(MATERIALS))
def test_any_shape_gives_all_phases_as_uint8_labels(name, shape):
    m = MATERIALS[name]
    vol = m.make(shape, seed=2)
    assert vol.shape == shape and vol.dtype == np.uint8
    assert set(np.unique(vol).tolist()) == set(range(m.num_phases))
    assert len(m.phase_names) == m.num_phases and m.description


def test_registry_names_the_three_materials():
    assert set(MATERIALS) == {"fibres", "separator", "electrode"}
    assert {k: m.num_phases for k, m in MATERIALS.items()} == {
        "fibres": 2, "separator": 2, "electrode": 3}


# ---------------------------------------------------------------- fibres

def fibre_discs(section, radius):
    """Areas of the fibre discs of a periodic 2D section, each fibre counted once.

    The section is tiled 3x3 and only components whose centroid lies in the middle tile are
    kept, so a disc cut by the box edge counts whole when (and only when) its other part
    wraps around to the opposite edge.
    """
    h, w = section.shape
    tiled = np.tile(section, (3, 3))
    lab, n = ndimage.label(tiled)
    idx = np.arange(1, n + 1)
    areas = ndimage.sum_labels(np.ones_like(lab), lab, idx)
    cy, cx = np.array(ndimage.center_of_mass(tiled, lab, idx)).T
    keep = (cy >= h) & (cy < 2 * h) & (cx >= w) & (cx < 2 * w)
    return areas[keep]


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.55])
def test_fibre_fraction_and_disc_count(fraction):
    shape, radius = (16, 48, 56), 3.0
    vol = fibre_composite(shape, fraction=fraction, radius=radius, axis=0, min_gap=1.2,
                          misalignment_deg=0.0, seed=4)
    area = shape[1] * shape[2]
    n = round(fraction * area / (math.pi * radius ** 2))
    # With a gap over 1 voxel no two discs touch: each section shows exactly n whole discs.
    discs = fibre_discs(vol[5], radius)
    assert len(discs) == n
    assert np.all(np.abs(discs - math.pi * radius ** 2) < 0.25 * math.pi * radius ** 2)
    assert abs(vol.mean() - fraction) <= 0.5 * math.pi * radius ** 2 / area + 0.01


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_fibres_run_along_the_chosen_axis(axis):
    vol = fibre_composite((32, 36, 40), axis=axis, misalignment_deg=3.0, seed=1)
    rate = transition_rate(vol)
    along = rate[AXES[axis]]
    across = [rate[a] for i, a in enumerate(AXES) if i != axis]
    assert along < 0.1 * min(across)
    assert min(across) > 0.1


def test_straight_fibres_give_identical_sections_along_the_axis():
    vol = fibre_composite((20, 24, 28), axis=1, misalignment_deg=0.0, seed=3)
    assert transition_rate(vol)["y"] == 0.0
    assert 0.3 < vol.mean() < 0.7


def test_misalignment_makes_the_fibres_cross_sections_along_the_axis():
    straight = transition_rate(fibre_composite((48, 48, 64), misalignment_deg=0.0, seed=5))
    wavy = transition_rate(fibre_composite((48, 48, 64), misalignment_deg=8.0, seed=5))
    assert straight["x"] == 0.0 < wavy["x"]


def test_fibre_composite_tiles_without_a_seam():
    shape, radius = (24, 40, 48), 3.0
    vol = fibre_composite(shape, fraction=0.45, radius=radius, axis=2, min_gap=1.5,
                          misalignment_deg=6.0, seed=7)
    # Across the fibres: every section's discs are whole when the box wraps around.
    for x in (0, 20, 47):
        discs = fibre_discs(vol[:, :, x], radius)
        assert np.all(np.abs(discs - math.pi * radius ** 2) < 0.25 * math.pi * radius ** 2)
    # Along the fibres: the wrap changes no more voxels than a step inside the box does.
    seam, interior = seam_and_interior(vol, 2)
    assert interior.max() > 0
    assert seam <= interior.max()


def test_seam_checks_catch_a_volume_that_does_not_tile():
    """The same checks on a crop, which does not tile, must fail (the test can fail)."""
    radius = 3.0
    big = fibre_composite((24, 56, 72), fraction=0.45, radius=radius, axis=2, min_gap=1.5,
                          misalignment_deg=6.0, seed=7)
    crop = big[:, 5:45, 7:55]
    discs = fibre_discs(crop[:, :, 0], radius)
    assert np.any(np.abs(discs - math.pi * radius ** 2) >= 0.25 * math.pi * radius ** 2)
    seam, interior = seam_and_interior(crop, 2)
    assert seam > interior.max()


def test_fibre_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="narrower"):
        fibre_composite((5, 5, 32), radius=3.0, axis=2)
    with pytest.raises(ValueError, match="could not pack"):
        fibre_composite((8, 32, 32), fraction=0.85, radius=3.0, axis=0, min_gap=1.0)
    with pytest.raises(ValueError, match="axis"):
        fibre_composite((8, 32, 32), axis=3)


# ---------------------------------------------------------------- separator

@pytest.mark.parametrize("porosity", [0.1, 0.45, 0.8])
def test_separator_porosity_is_exact(porosity):
    vol = separator((19, 24, 33), porosity=porosity, seed=0)
    assert vol.sum() == round(porosity * vol.size)


def expected_rate(porosity, sigma, n):
    """Closed form: chance that two neighbours straddle the threshold of the field.

    White noise smoothed by a Gaussian of std sigma has a covariance exp(-r^2 / 4 sigma^2);
    the box is periodic, so it wraps (sum over images m n). Two unit-variance normals with
    correlation rho fall on opposite sides of the p quantile q with probability
    2 (p - Phi2(q, q; rho)).
    """
    m = np.arange(-3, 4) * n
    rho = np.exp(-(1 + m) ** 2 / (4 * sigma ** 2)).sum() / np.exp(-m ** 2 / (4 * sigma ** 2)).sum()
    q = norm.ppf(porosity)
    both_below = multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([q, q])
    return 2 * (porosity - both_below)


@pytest.mark.parametrize("lengths", [(2.0, 4.0, 12.0), (10.0, 2.0, 5.0)])
def test_separator_pore_lengths_follow_the_correlation_lengths(lengths):
    shape, porosity = (40, 44, 48), 0.45
    rates = [transition_rate(separator(shape, porosity, lengths, seed=s)) for s in range(10)]
    for axis, name in enumerate(AXES):
        # A mean over 10 volumes still wanders by about 5 % (few pore lengths per box).
        measured = np.mean([r[name] for r in rates])
        assert measured == pytest.approx(expected_rate(porosity, lengths[axis], shape[axis]),
                                         rel=0.12)
    # Pores are longest (fewest phase changes) along the longest correlation length.
    mean_rate = {a: np.mean([r[a] for r in rates]) for a in AXES}
    order = sorted(AXES, key=mean_rate.get)
    assert order == [AXES[i] for i in np.argsort(lengths)[::-1]]


def test_gaussian_field_is_periodic_and_smooth():
    f = gaussian_random_field((16, 20, 24), (1.5, 2.0, 3.0), seed=0)
    assert f.shape == (16, 20, 24)
    for axis in range(3):
        wrap = np.abs(np.take(f, 0, axis) - np.take(f, -1, axis)).mean()
        inner = np.abs(np.diff(f, axis=axis)).mean()
        assert wrap < 1.5 * inner


def test_separator_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="porosity"):
        separator((8, 8, 8), porosity=1.2)
    with pytest.raises(ValueError, match="correlation_lengths"):
        separator((8, 8, 8), correlation_lengths=(1.0, 0.0, 2.0))


# ---------------------------------------------------------------- electrode

def test_electrode_fractions():
    shape, fractions, radius = (32, 40, 48), (0.35, 0.45, 0.20), 5.0
    vol = electrode(shape, fractions, particle_radius=radius, seed=0)
    counts = np.bincount(vol.ravel(), minlength=3)
    # Binder is exact; active is within half of the largest particle's volume.
    assert counts[2] == round(0.20 * vol.size)
    largest = 4 / 3 * math.pi * (radius * 1.2) ** 3 * 1.6 / vol.size
    assert abs(counts[1] / vol.size - 0.45) <= 0.5 * largest
    assert abs(counts[0] / vol.size - 0.35) <= 0.5 * largest


def test_binder_is_a_film_touching_the_particles():
    vol = electrode((24, 28, 32), (0.4, 0.4, 0.2), particle_radius=4.0, seed=3)
    active, binder = vol == 1, vol == 2
    # Label binder + active in a 3x3x3 tiling (the volume is periodic); every binder
    # voxel of the middle copy must belong to a component that holds active material.
    lab, _ = ndimage.label(np.tile(active | binder, (3, 3, 3)))
    with_active = np.unique(lab[np.tile(active, (3, 3, 3))])
    middle = tuple(slice(n, 2 * n) for n in vol.shape)
    assert np.isin(lab[middle][binder], with_active).all()
    # A film: most binder voxels are face neighbours of a particle.
    near = np.zeros_like(active)
    for axis in range(3):
        for shift in (1, -1):
            near |= np.roll(active, shift, axis)
    assert (near & binder).sum() > 0.6 * binder.sum()


@pytest.mark.parametrize("long_axis", [0, 2])
def test_electrode_particles_are_longest_along_the_elongated_axis(long_axis):
    elongation = [1.0, 1.0, 1.0]
    elongation[long_axis] = 1.8
    vol = electrode((40, 40, 40), particle_radius=4.0, elongation=tuple(elongation), seed=2)
    rate = transition_rate(vol == 1)
    along = rate[AXES[long_axis]]
    assert all(along < 0.8 * rate[a] for i, a in enumerate(AXES) if i != long_axis)


def test_electrode_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="summing to 1"):
        electrode((8, 8, 8), fractions=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="positive"):
        electrode((8, 8, 8), particle_radius=0)


# ---------------------------------------------------------------- bundled demo

@pytest.mark.parametrize("name", sorted(MATERIALS))
def test_bundled_demo_micrographs_are_slices_of_their_truth(name):
    """resources/demo (made by resources/make_demo.py) loads as a labelled plane set."""
    folder = DEMO / name
    truth = tifffile.imread(folder / "truth.tif")
    num_phases = MATERIALS[name].num_phases
    assert truth.dtype == np.uint8 and truth.max() == num_phases - 1
    assert min(truth.shape) > 64  # bigger than the default training crop
    data = load_labelled_planes({p: folder / p for p in PLANES})
    assert data.num_phases == num_phases
    for plane in PLANES:
        slices = label_volume_to_images(truth, plane)
        files = data.origins[plane]
        assert len(files) >= 20
        for path, image in zip(files, data.images[plane]):
            k = int(path.stem.rsplit("_", 1)[1])
            np.testing.assert_array_equal(image, slices[k])

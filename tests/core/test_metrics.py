"""S2, lineal path, fractions and plane comparison against brute force and closed forms."""
import numpy as np
import pytest
from scipy import ndimage

from micro3d_gui.preprocess.synthetic import lamellae
from micro3d_gui.core.planes import volume_plane_images
from micro3d_gui.metrics.compare import compare_planes
from micro3d_gui.metrics.correlation import (cluster_images, lineal_path_images,
                                             lineal_path_volume, relative_error, s2_images,
                                             s2_volume)
from micro3d_gui.metrics.fractions import fraction_summary, volume_fractions


def brute_s2(images, phase, dy, dx, periodic):
    """P(both pixels in phase) over every pair (i, j), (i + dy, j + dx) that exists."""
    both = pairs = 0
    for im in images:
        h, w = im.shape
        for i in range(h):
            for j in range(w):
                i2, j2 = i + dy, j + dx
                if periodic:
                    i2, j2 = i2 % h, j2 % w
                elif not (0 <= i2 < h and 0 <= j2 < w):
                    continue
                pairs += 1
                both += im[i, j] == phase and im[i2, j2] == phase
    return both / pairs


def brute_lineal(images, phase, r, axis):
    """P(r + 1 consecutive pixels from (i, j) along ``axis`` all in phase)."""
    hits = starts = 0
    for im in images:
        a = im if axis == 1 else im.T
        for i in range(a.shape[0]):
            for j in range(a.shape[1] - r):
                starts += 1
                hits += all(a[i, j + k] == phase for k in range(r + 1))
    return hits / starts


@pytest.fixture
def mixed_images():
    rng = np.random.default_rng(3)
    # different sizes, 3 phases, some structure so that curves are not flat
    ims = [ndimage.zoom(rng.integers(0, 3, (4, 5)), 2, order=0)[:7, :9] for _ in range(2)]
    return ims + [rng.integers(0, 3, (6, 8))]


@pytest.mark.parametrize("periodic", [False, True])
def test_s2_matches_brute_force(mixed_images, periodic):
    max_r = 4
    for phase in (0, 2):
        c = s2_images(mixed_images, phase, max_r, periodic=periodic)
        rows = [brute_s2(mixed_images, phase, r, 0, periodic) for r in range(max_r + 1)]
        cols = [brute_s2(mixed_images, phase, 0, r, periodic) for r in range(max_r + 1)]
        np.testing.assert_allclose(c.along_rows, rows, atol=1e-12)
        np.testing.assert_allclose(c.along_cols, cols, atol=1e-12)
        # radial: mean over every displacement vector whose rounded length is r
        radial = []
        for r in range(max_r + 1):
            vals = [brute_s2(mixed_images, phase, dy, dx, periodic)
                    for dy in range(-max_r, max_r + 1) for dx in range(-max_r, max_r + 1)
                    if round(np.hypot(dy, dx)) == r]
            radial.append(np.mean(vals))
        np.testing.assert_allclose(c.radial, radial, atol=1e-12)


def test_s2_of_bernoulli_noise():
    p = 0.3
    ims = (np.random.default_rng(0).random((4, 96, 96)) < p).astype(np.uint8)
    c = s2_images(ims, 1, 10)
    assert c.along_rows[0] == c.along_cols[0] == c.radial[0] == pytest.approx(ims.mean())
    for curve in (c.along_rows, c.along_cols, c.radial):
        np.testing.assert_allclose(curve[1:], p * p, atol=0.01)


def test_s2_of_stripes_and_checkerboard():
    j = np.arange(32)
    stripes = np.broadcast_to((j % 4 < 2).astype(np.uint8), (16, 32))  # vertical stripes
    c = s2_images(stripes, 1, 8, periodic=True)
    np.testing.assert_allclose(c.along_rows, 0.5)  # down a stripe nothing changes
    np.testing.assert_allclose(c.along_cols, [0.5, 0.25, 0, 0.25, 0.5, 0.25, 0, 0.25, 0.5])
    c = s2_images(stripes, 1, 8)  # non-periodic: down the image is exact as well
    np.testing.assert_allclose(c.along_rows, 0.5)
    i, j = np.indices((20, 20))
    board = ((i + j) % 2).astype(np.uint8)
    for periodic in (False, True):
        c = s2_images(board, 0, 6, periodic=periodic)
        expected = [0.5 if r % 2 == 0 else 0.0 for r in range(7)]
        np.testing.assert_allclose(c.along_rows, expected, atol=1e-12)
        np.testing.assert_allclose(c.along_cols, expected, atol=1e-12)


def test_radial_average_of_an_isotropic_structure():
    rng = np.random.default_rng(1)
    field = ndimage.gaussian_filter(rng.normal(size=(4, 160, 160)), sigma=(0, 3, 3))
    ims = (field > 0).astype(np.uint8)
    c = s2_images(ims, 1, 12)
    # isotropic: the two axes and the radial average agree; S2 decays from f towards f^2
    np.testing.assert_allclose(c.along_rows, c.radial, atol=0.02)
    np.testing.assert_allclose(c.along_cols, c.radial, atol=0.02)
    f = ims.mean()
    assert c.radial[0] == pytest.approx(f) and abs(c.radial[-1] - f * f) < 0.03
    assert np.all(np.diff(c.radial[:8]) < 0)


def test_lineal_path_matches_brute_force_and_closed_forms(mixed_images):
    max_r = 5
    for phase in (0, 1):
        c = lineal_path_images(mixed_images, phase, max_r)
        assert c.radial is None
        np.testing.assert_allclose(
            c.along_rows, [brute_lineal(mixed_images, phase, r, 0) for r in range(max_r + 1)])
        np.testing.assert_allclose(
            c.along_cols, [brute_lineal(mixed_images, phase, r, 1) for r in range(max_r + 1)])
        assert c.along_rows[0] == pytest.approx(s2_images(mixed_images, phase, 1).along_rows[0])
    # Bernoulli noise: L(r) = p^(r+1)
    p = 0.6
    ims = (np.random.default_rng(2).random((4, 100, 100)) < p).astype(np.uint8)
    c = lineal_path_images(ims, 1, 6)
    np.testing.assert_allclose(c.along_cols, p ** np.arange(1, 8), atol=0.01)
    np.testing.assert_allclose(c.along_rows, p ** np.arange(1, 8), atol=0.01)
    # horizontal stripes two rows thick, period 4, H = 16: whole rows lie in the phase
    stripes = np.repeat((np.arange(16) % 4 < 2)[:, None], 10, axis=1).astype(np.uint8)
    c = lineal_path_images(stripes, 1, 3)
    np.testing.assert_allclose(c.along_cols, 0.5)
    # down the image: r = 1 needs rows i, i+1 in a stripe (i % 4 == 0, 4 of the 15 starts)
    np.testing.assert_allclose(c.along_rows, [0.5, 4 / 15, 0, 0])


def brute_cluster(images, phase, r, axis):
    """P(pixels r apart along ``axis`` in one 4-connected cluster), pair by pair."""
    same = total = 0
    for im in images:
        lab, _ = ndimage.label(im == phase)  # scipy's default structure: 4-connected
        a = np.moveaxis(lab, axis, 0)
        same += np.count_nonzero((a[:a.shape[0] - r] == a[r:]) & (a[r:] > 0))
        total += a[r:].size
    return same / total


def test_cluster_function_matches_brute_force_and_closed_forms(mixed_images):
    max_r = 5
    for phase in (0, 1):
        c = cluster_images(mixed_images, phase, max_r)
        np.testing.assert_allclose(
            c.along_rows, [brute_cluster(mixed_images, phase, r, 0) for r in range(max_r + 1)])
        np.testing.assert_allclose(
            c.along_cols, [brute_cluster(mixed_images, phase, r, 1) for r in range(max_r + 1)])
        # L <= C2 <= S2, equal at r = 0 (the area fraction)
        s2, lp = s2_images(mixed_images, phase, max_r), lineal_path_images(mixed_images, phase,
                                                                           max_r)
        for a in ("along_rows", "along_cols"):
            assert np.all(getattr(lp, a) <= getattr(c, a) + 1e-12)
            assert np.all(getattr(c, a) <= getattr(s2, a) + 1e-12)
            assert getattr(c, a)[0] == pytest.approx(getattr(s2, a)[0])
    # one connected phase (a comb: a bar with teeth): every pair in it is in one cluster,
    # C2 = S2; disjoint rectangles: two pixels on a line are in one cluster exactly when the
    # segment between them is in the phase, C2 = L
    comb = np.zeros((20, 24), np.uint8)
    comb[:3] = 1
    comb[:, ::4] = 1
    np.testing.assert_allclose(cluster_images(comb, 1, 8).along_cols,
                               s2_images(comb, 1, 8).along_cols)
    np.testing.assert_allclose(cluster_images(comb, 1, 8).along_rows,
                               s2_images(comb, 1, 8).along_rows)
    blocks = np.zeros((20, 24), np.uint8)
    blocks[2:7, 3:9] = blocks[10:18, 12:15] = blocks[1:4, 17:23] = 1
    for a in ("along_rows", "along_cols"):
        np.testing.assert_allclose(getattr(cluster_images(blocks, 1, 8), a),
                                   getattr(lineal_path_images(blocks, 1, 8), a))
    # images are labelled apart: a stack of two copies gives the curves of one
    np.testing.assert_allclose(cluster_images(np.stack([comb, comb]), 1, 8).along_rows,
                               cluster_images(comb, 1, 8).along_rows)


def test_volume_curves_follow_the_plane_convention():
    vol = lamellae((12, 14, 16), axis=2, mean_thickness=3, seed=4)  # layers normal to x
    s2 = s2_volume(vol, 1, 5)
    lp = lineal_path_volume(vol, 1, 5)
    f = vol.mean()
    # independent slicing: xy = vol[k], xz = vol[:, k, :], yz = vol[:, :, k]
    direct = {"xy": [vol[k] for k in range(12)], "xz": [vol[:, k, :] for k in range(14)],
              "yz": [vol[:, :, k] for k in range(16)]}
    for plane, ims in direct.items():
        ref = s2_images(ims, 1, 5)
        np.testing.assert_allclose(s2[plane].along_rows, ref.along_rows)
        np.testing.assert_allclose(s2[plane].along_cols, ref.along_cols)
    # y and z see no change: constant S2 = f along them; x (xy, xz columns) decays
    np.testing.assert_allclose(s2["xy"].along_rows, f)
    np.testing.assert_allclose(s2["xz"].along_rows, f)
    np.testing.assert_allclose(s2["yz"].along_rows, f)
    np.testing.assert_allclose(s2["yz"].along_cols, f)
    assert s2["xy"].along_cols[3] < f - 0.05 and s2["xz"].along_cols[3] < f - 0.05
    np.testing.assert_allclose(lp["yz"].along_cols, f)
    assert lp["xz"].along_cols[4] < lp["xz"].along_rows[4]


def test_max_r_is_checked_and_defaults():
    ims = np.zeros((2, 10, 12), np.uint8)
    with pytest.raises(ValueError, match="max_r must be in 0..9"):
        s2_images(ims, 0, 10)
    assert len(s2_images(ims, 0, None).along_rows) == 10 // 4 + 1
    with pytest.raises(ValueError, match="2D label images"):
        lineal_path_images([np.zeros((2, 3, 4))], 0, 1)


def test_relative_error_and_fractions():
    assert relative_error([1, 2, 3], [1, 1, 1]) == pytest.approx(3 / 3)
    assert relative_error([0.5, 0.25], [0.5, 0.5]) == pytest.approx(0.25)
    assert relative_error([0, 0], [0, 0]) == 0.0 and relative_error([1, 0], [0, 0]) == np.inf
    with pytest.raises(ValueError, match="differ in length"):
        relative_error([1, 2], [1, 2, 3])
    vol = np.zeros((2, 3, 4), np.uint8)
    vol[0, 0, :3] = 2
    np.testing.assert_allclose(volume_fractions(vol, 3), [21 / 24, 0, 3 / 24])
    # a list of images of different sizes is pooled pixel by pixel
    np.testing.assert_allclose(volume_fractions([np.ones((2, 2), int), np.zeros((1, 4), int)],
                                                2), [0.5, 0.5])
    with pytest.raises(ValueError, match="labels must be integers 0..1"):
        volume_fractions(vol, 2)
    vols = [np.full((2, 2, 2), v, np.uint8) for v in (0, 1, 1)]
    s = fraction_summary(vols, 2)
    assert s["1"]["median"] == 1.0 and s["1"]["min"] == 0.0 and s["0"]["max"] == 1.0
    assert s["1"]["mean"] == pytest.approx(2 / 3)


def test_compare_planes():
    truth = lamellae((24, 24, 24), axis=2, mean_thickness=3, seed=5)
    same = compare_planes(truth, truth, 2)
    assert same["max_r"] == 6
    for key in ("s2_relative_error", "lineal_path_relative_error"):
        assert same[key] == {"xy": 0.0, "xz": 0.0, "yz": 0.0}
    assert same["volume_fraction"] == pytest.approx({"0": 1 - truth.mean(), "1": truth.mean()})
    curves = same["curves"]["s2"]["xz"]["1"]
    assert set(curves) == {"generated", "reference"}
    assert len(curves["generated"]["along_rows"]) == 7 and "radial" in curves["reference"]
    assert "radial" not in same["curves"]["lineal_path"]["xy"]["0"]["generated"]
    # the same layers turned to be normal to y: every plane sees the wrong anisotropy
    turned = np.ascontiguousarray(truth.transpose(0, 2, 1))
    ref = volume_plane_images(truth, step=2)
    res = compare_planes(turned, ref, 2, max_r=5)
    for plane in ("xy", "xz", "yz"):
        assert res["s2_relative_error"][plane] > 0.2
        assert res["lineal_path_relative_error"][plane] > 0.2
    # a reference given for one plane only is compared on that plane only
    only = compare_planes(truth, {"xz": ref["xz"], "yz": []}, 2, max_r=5)
    assert set(only["s2_relative_error"]) == {"xz"} and only["s2_relative_error"]["xz"] < 0.05
    assert only["reference_volume_fraction"]["1"] == pytest.approx(
        np.mean(ref["xz"]), abs=1e-12)

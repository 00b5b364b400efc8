"""Segmentation of grey micrographs into phases, shared by all planes."""
import numpy as np
import pytest
from scipy import ndimage
from skimage.filters import threshold_multiotsu, threshold_otsu

from micro3d_gui.preprocess.segment import (Segmentation, SegmentationConfig, apply_thresholds,
                                            otsu_thresholds, segment_image, segment_planes)
from micro3d_gui.errors import DatasetError, InputError, SegmentationError


def blobs(shape, fraction, seed, sigma=2.0):
    """Smooth random two-phase labels with about ``fraction`` of phase 1."""
    field = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=shape), sigma)
    return (field > np.quantile(field, 1 - fraction)).astype(np.uint8)


def grey(labels, means, noise, seed, dtype=np.uint8):
    """Micrograph-like grey image: each phase's mean grey value plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    im = np.asarray(means, float)[labels] + rng.normal(0, noise, labels.shape)
    return im.clip(0, np.iinfo(dtype).max).astype(dtype)


def test_otsu_recovers_two_phases_with_thresholds_from_all_planes():
    truth = {"xy": [blobs((40, 48), 0.3, 0), blobs((40, 40), 0.35, 1)],
             "xz": [blobs((32, 48), 0.4, 2)]}
    images = {p: [grey(lab, (60, 170), 12, i) for i, lab in enumerate(ls)]
              for p, ls in truth.items()}
    seg = segment_planes(images, SegmentationConfig("otsu"))
    assert seg.num_phases == 2 and seg.method == "otsu" and len(seg.thresholds) == 1
    pooled = np.concatenate([im.ravel() for ims in images.values() for im in ims])
    assert seg.thresholds[0] == pytest.approx(threshold_otsu(pooled))
    assert 60 < seg.thresholds[0] < 170
    for p in truth:
        for lab, out in zip(truth[p], seg.labels[p]):
            assert out.dtype == np.uint8 and (out == lab).mean() > 0.999
    # fractions per plane, pooled over the plane's pixels
    xy_frac = np.mean(np.concatenate([ls.ravel() for ls in seg.labels["xy"]]))
    assert seg.fractions["xy"][1] == pytest.approx(xy_frac)
    assert sum(seg.fractions["xz"]) == pytest.approx(1.0)


def test_shared_thresholds_keep_phases_consistent_between_planes():
    # xy is mostly dark phase, xz mostly bright: Otsu per plane would move the threshold;
    # pooled, the same grey value is the same phase in both planes.
    xy = grey(blobs((48, 48), 0.1, 3), (50, 200), 25, 0)
    xz = grey(blobs((48, 48), 0.9, 4), (50, 200), 25, 1)
    seg = segment_planes({"xy": [xy], "xz": [xz]}, SegmentationConfig("otsu"))
    t = seg.thresholds
    np.testing.assert_array_equal(seg.labels["xz"][0], xz > t[0])
    np.testing.assert_array_equal(seg.labels["xy"][0], xy > t[0])
    assert t[0] == pytest.approx(threshold_otsu(np.concatenate([xy.ravel(), xz.ravel()])))
    assert seg.warnings and "phase" in seg.warnings[0]  # 0.1 vs 0.9: planes disagree


def test_multiotsu_recovers_three_phases():
    rng = np.random.default_rng(5)
    field = ndimage.gaussian_filter(rng.normal(size=(2, 64, 64)), (0, 2, 2))
    labels = np.stack([np.digitize(f, np.quantile(f, [0.3, 0.7])) for f in field])
    images = {"xy": [grey(labels[0], (40, 120, 210), 8, 0)],
              "yz": [grey(labels[1], (40, 120, 210), 8, 1)]}
    seg = segment_planes(images, SegmentationConfig("multiotsu", phases=3))
    assert seg.num_phases == 3 and len(seg.thresholds) == 2
    pooled = np.concatenate([images["xy"][0].ravel(), images["yz"][0].ravel()])
    np.testing.assert_allclose(seg.thresholds, threshold_multiotsu(pooled, classes=3))
    assert 40 < seg.thresholds[0] < 120 < seg.thresholds[1] < 210
    assert (seg.labels["xy"][0] == labels[0]).mean() > 0.995
    assert (seg.labels["yz"][0] == labels[1]).mean() > 0.995
    assert not seg.warnings


def test_manual_thresholds_follow_the_greater_than_rule():
    im = np.array([[0, 50, 51], [150, 151, 255]], np.uint8)
    seg = segment_planes({"xy": [im], "xz": [im.T.copy()]},
                         SegmentationConfig("manual", thresholds=(50, 150)))
    assert seg.num_phases == 3 and seg.thresholds == [50.0, 150.0]
    np.testing.assert_array_equal(seg.labels["xy"][0], [[0, 0, 1], [1, 2, 2]])
    assert seg.fractions["xy"] == pytest.approx([2 / 6, 2 / 6, 2 / 6])
    np.testing.assert_array_equal(segment_image(im, [50, 150]), seg.labels["xy"][0])
    np.testing.assert_array_equal(seg.apply(im), seg.labels["xy"][0])
    # 16-bit and float images are thresholded on their own scale
    np.testing.assert_array_equal(apply_thresholds(np.array([[0.2, 0.7]]), [0.5]), [[0, 1]])
    im16 = np.array([[1000, 40000]], np.uint16)
    np.testing.assert_array_equal(segment_image(im16, [30000.0]), [[0, 1]])


def test_labelled_images_map_grey_levels_in_order():
    im = np.array([[0, 128], [255, 128]], np.uint8)
    seg = segment_planes({"xy": [im], "yz": [np.full((2, 2), 255, np.uint8)]})
    assert seg.method == "labelled" and seg.num_phases == 3 and seg.thresholds == [0, 128, 255]
    np.testing.assert_array_equal(seg.labels["xy"][0], [[0, 1], [2, 1]])
    np.testing.assert_array_equal(seg.labels["yz"][0], 2)
    np.testing.assert_array_equal(seg.apply(np.array([[255, 0]])), [[2, 0]])
    np.testing.assert_array_equal(segment_image(im, SegmentationConfig()), [[0, 1], [2, 1]])
    with pytest.raises(SegmentationError, match="not a labelled"):
        segment_image(np.arange(400).reshape(20, 20), SegmentationConfig())
    with pytest.raises(DatasetError, match="xy image 1: has 2500 grey levels"):
        segment_planes({"xy": [np.arange(2500).reshape(50, 50)]})


def test_fraction_disagreement_warning_and_tolerance():
    a = np.zeros((10, 10), np.uint8)
    a[:3] = 1  # 0.30 of phase 1
    b = np.zeros((10, 10), np.uint8)
    b[:4] = 1  # 0.40
    c = np.zeros((10, 10), np.uint8)
    c[:3] = c[3, :2] = 1  # 0.32 is within 0.03 of 0.30
    planes = {"xy": [a], "xz": [b]}
    seg = segment_planes(planes, SegmentationConfig("manual", thresholds=(0.5,)))
    assert seg.fractions == {"xy": [0.7, 0.3], "xz": [0.6, 0.4]}
    assert len(seg.warnings) == 1
    assert "xy 0.300" in seg.warnings[0] or "xy 0.700" in seg.warnings[0]
    assert "0.1" in seg.warnings[0] and "more than 0.03" in seg.warnings[0]
    assert not segment_planes(planes, SegmentationConfig("labelled"), tolerance=0.15).warnings
    assert not segment_planes({"xy": [a], "xz": [c]}).warnings
    assert not segment_planes({"xy": [b]}).warnings  # one plane: nothing to compare


def test_segment_image_preview_uses_the_image_alone():
    lab = blobs((40, 40), 0.5, 7)
    im = grey(lab, (30, 220), 10, 3)
    np.testing.assert_array_equal(segment_image(im, SegmentationConfig("otsu")),
                                  im > threshold_otsu(im))
    assert otsu_thresholds([im], 2) == [pytest.approx(threshold_otsu(im))]
    seg = segment_planes({"xy": [im]}, SegmentationConfig("otsu"))
    assert isinstance(seg, Segmentation)
    np.testing.assert_array_equal(segment_image(im, seg), seg.labels["xy"][0])


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "kmeans"}, "unknown segmentation method 'kmeans'"),
    ({"method": "otsu", "phases": 3}, "use multiotsu for 3 phases"),
    ({"method": "multiotsu", "phases": 1}, "at least 2"),
    ({"method": "multiotsu", "phases": 6}, "at most 5 phases"),
    ({"method": "manual"}, "needs thresholds"),
    ({"method": "manual", "thresholds": (100, 50)}, "strictly increasing"),
    ({"method": "otsu", "thresholds": (100,)}, "only used by the manual method"),
])
def test_bad_configs_are_input_errors(kwargs, message):
    with pytest.raises(SegmentationError, match=message) as info:
        SegmentationConfig(**kwargs)
    assert isinstance(info.value, InputError)


def test_images_that_cannot_be_segmented_are_named():
    flat = np.full((8, 8), 7, np.uint8)
    with pytest.raises(SegmentationError, match="single|every pixel"):
        segment_planes({"xy": [flat]}, SegmentationConfig("otsu"))
    two = np.zeros((8, 8), np.uint8)
    two[:4] = 200
    with pytest.raises(SegmentationError, match="cannot split these images into 3 phases"):
        segment_planes({"xy": [two]}, SegmentationConfig("multiotsu", phases=3))
    with pytest.raises(SegmentationError, match=r"leave phase\(s\) \[2\].*span 0..200"):
        segment_planes({"xy": [two]}, SegmentationConfig("manual", thresholds=(100, 250)))
    with pytest.raises(SegmentationError, match="xz image 1: has shape"):
        segment_planes({"xz": [np.zeros((4, 4, 2))]}, SegmentationConfig("otsu"))
    with pytest.raises(SegmentationError, match="no images given"):
        segment_planes({"xy": []})
    mixed = {"xy": [two], "xz": [two.astype(np.uint16) * 257]}
    seg = segment_planes(mixed, SegmentationConfig("manual", thresholds=(100,)))
    assert any("mix grey-value types" in w for w in seg.warnings)

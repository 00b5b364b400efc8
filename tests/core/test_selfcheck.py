"""The self-check of sampled volumes, on real computations: real sub-volumes of the fibre
demo's 3D truth against its micrographs (every 4th slice of each plane, as bundled) are at
the floor; the same volumes with their axes swapped, or speckled, are flagged."""
import numpy as np
import pytest

from micro3d_gui.core.planes import volume_plane_images
from micro3d_gui.core.reference import reference_images
from micro3d_gui.io.volume import read_volume
from micro3d_gui.metrics.compare import random_sub_volumes
from micro3d_gui.metrics.selfcheck import (BROKEN_ADVICE, FAR_RATIO, SelfCheckSettings,
                                           advice, describe_self_check, floor_crop_count, level,
                                           ratios, self_check, self_check_table)
from micro3d_gui.paths import demo_dir


@pytest.fixture(scope="module")
def fibres():
    """(truth [z, y, x], its micrographs as the checkpoint keeps them, 4 real 32^3
    sub-volumes). Fibres run along x: yz sections show discs, xy and xz stripes."""
    truth = read_volume(demo_dir("fibres") / "truth.tif")
    micrographs = reference_images(volume_plane_images(truth, step=4))
    return truth, micrographs, np.stack(random_sub_volumes(truth, 32, 4, seed=0))


def test_real_sub_volumes_are_at_the_floor(fibres):
    _, micrographs, real = fibres
    report = self_check(real, micrographs, 2)
    assert set(report["planes"]) == {"xy", "xz", "yz"}
    assert report["at_floor"], self_check_table(report)
    assert level(report) == "at_floor"
    assert all(r <= report["margin"] for plane in ratios(report).values()
               for r in plane.values())
    assert report["verdict"].startswith("Self-check against the micrographs: at the floor")
    assert report["verdict"] == describe_self_check(report)
    # a fibre crosses every yz slice at the same place: those slices are worth far fewer
    # independent images than the xy ones, and the floor pools fewer crops for them
    yz, xy = report["planes"]["yz"], report["planes"]["xy"]
    assert yz["correlation_length"] > 3 * xy["correlation_length"]
    assert yz["crops"] < xy["crops"] <= SelfCheckSettings().max_crops


def test_a_volume_with_its_axes_swapped_is_far_from_the_floor(fibres):
    _, micrographs, real = fibres
    swapped = np.ascontiguousarray(real.transpose(0, 3, 2, 1))  # z <-> x: fibres along z
    report = self_check(swapped, micrographs, 2)
    assert not report["at_floor"] and level(report) == "far"
    assert report["worst"]["ratio"] > FAR_RATIO
    worst = report["worst"]
    shift = report["planes"][worst["plane"]][f"{worst['measure']}_shift"]
    assert report["verdict"].startswith("Self-check: ")
    assert report["verdict"].endswith(advice(worst["measure"], shift))
    assert f"the floor on {worst['plane']}" in report["verdict"]


def test_a_speckled_volume_is_flagged_for_its_lineal_path(fibres):
    _, micrographs, real = fibres
    rng = np.random.default_rng(1)
    speckled = np.where(rng.random(real.shape) < 0.2, 1 - real, real).astype(np.uint8)
    report = self_check(speckled, micrographs, 2)
    assert not report["at_floor"]
    assert report["worst"]["measure"] == "lineal_path"
    r = ratios(report)
    for plane, entry in report["planes"].items():
        # flipped voxels cut runs short everywhere: the lineal path suffers most
        assert r[plane]["lineal_path"] > r[plane]["s2"], plane
        assert entry["lineal_path_shift"] < 0, plane
    assert "lineal path" in report["verdict"]
    assert "more broken up than the micrographs'" in report["verdict"]
    assert report["verdict"].endswith(BROKEN_ADVICE)  # the recipe that keeps runs whole


def test_slices_larger_than_the_micrographs_are_compared_as_the_square_that_fits(fibres):
    truth, _, real = fibres
    small = {p: [im[:24, :20] for im in ims]
             for p, ims in volume_plane_images(truth, step=8).items()}
    report = self_check(real[:1], small, 2)
    for plane, entry in report["planes"].items():
        assert entry["slice_shape"] == [32, 32] and entry["compared_shape"] == [20, 20]
    assert len(report["notes"]) == 3 and "central 20 x 20 px" in report["notes"][0]


def test_self_check_refuses_labels_outside_the_phases(fibres):
    _, micrographs, real = fibres
    with pytest.raises(ValueError, match="not phase labels 0..1"):
        self_check(real * 2, micrographs, 2)
    with pytest.raises(ValueError, match="no reference images"):
        self_check(real, {"xy": []}, 2)


def test_floor_crop_count_counts_independent_slices_within_bounds():
    assert floor_crop_count(32, 4, 64) == 64  # every slice independent: capped
    assert floor_crop_count(32, 4, 64, correlation_length=8.0) == 16
    assert floor_crop_count(32, 1, 64, correlation_length=32.0) == 1
    assert floor_crop_count(3, 1, 64, correlation_length=100.0) == 1  # at least one


def test_reference_images_are_a_bounded_ordered_subset():
    rng = np.random.default_rng(0)
    images = {"xy": [np.full((16, 16), i % 3, np.int64) for i in range(40)],
              "xz": [rng.integers(0, 2, (20, 10)) for _ in range(3)],
              "yz": []}
    kept = reference_images(images, max_pixels=16 * 16 * 10)
    assert set(kept) == {"xy", "xz"}  # a plane without images is left out
    xy = kept["xy"]
    assert sum(im.size for im in xy) <= 16 * 16 * 10 and len(xy) >= 5
    assert all(im.dtype == np.uint8 for ims in kept.values() for im in ims)
    # every n-th image, in order, spread over the whole set
    values = [int(im[0, 0]) for im in xy]
    assert values == [i % 3 for i in range(0, 40, 40 // len(xy))][:len(xy)]
    assert len(kept["xz"]) == 3  # under the cap: all of them, unchanged
    for a, b in zip(kept["xz"], images["xz"]):
        np.testing.assert_array_equal(a, b)

    big = np.arange(100 * 60).reshape(100, 60) % 2
    (crop,) = reference_images({"yz": [big, big]}, max_pixels=1000)["yz"]
    assert crop.size <= 1000 and crop.shape[0] > crop.shape[1]  # its aspect kept
    r0, c0 = (100 - crop.shape[0]) // 2, (60 - crop.shape[1]) // 2
    np.testing.assert_array_equal(crop, big[r0:r0 + crop.shape[0], c0:c0 + crop.shape[1]])
    with pytest.raises(ValueError, match="phases 0..255"):
        reference_images({"xy": [np.full((4, 4), 300)]})


def test_planes_too_thin_for_a_curve_are_left_out_and_said(fibres):
    _, micrographs, real = fibres
    report = self_check(real[:, :1], micrographs, 2)  # one xy slice: xz, yz are 1 px tall
    assert set(report["planes"]) == {"xy"}
    assert any(n.startswith("xz: the 1 x 32 px slices") for n in report["notes"])
    report = self_check(real[:, :1, :1], {"xz": micrographs["xz"]}, 2)
    assert report["planes"] == {} and report["at_floor"] is None and level(report) == "none"
    assert report["verdict"].startswith("Self-check: not made: xz: the 1 x 32 px slices")


def test_sampled_volumes_are_checked_against_the_project_else_the_model(tmp_path):
    """The app and ``micro3d sample`` share :func:`check_sampled`: the project's
    micrographs when they have the model's phases, else the model's own, else none."""
    from micro3d_gui.core.checkpoint import load_checkpoint, reference_micrographs
    from micro3d_gui.core.diffusion.unet import preset_config
    from micro3d_gui.core.plane_dataset import PlaneDataset
    from micro3d_gui.core.train_config import TrainConfig
    from micro3d_gui.core.training import Trainer
    from micro3d_gui.metrics.checked_sample import (MODEL_MICROGRAPHS, PROJECT_MICROGRAPHS,
                                                    check_sampled)
    from micro3d_gui.metrics.selfcheck import NO_REFERENCE
    from micro3d_gui.preprocess.synthetic import lamellae

    trained_on = volume_plane_images(lamellae((16, 16, 32), axis=2, seed=0), step=2)
    Trainer(PlaneDataset(trained_on, 2), preset_config("tiny", 1),
            TrainConfig(steps=1, crop=16)).save(tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt")
    volumes = lamellae((16, 16, 32), axis=2, seed=3)[None]
    project = volume_plane_images(lamellae((16, 16, 32), axis=2, seed=4), step=2)

    def numbers(report):
        return {p: {k: e[k] for k in ("s2", "s2_floor", "lineal_path", "lineal_path_floor")}
                for p, e in report["planes"].items()}

    own = check_sampled(volumes, ckpt)
    assert own["reference"] == MODEL_MICROGRAPHS
    assert numbers(own) == numbers(self_check(volumes, reference_micrographs(ckpt), 2))
    theirs = check_sampled(volumes, ckpt, project, 2)
    assert theirs["reference"] == PROJECT_MICROGRAPHS
    assert numbers(theirs) == numbers(self_check(volumes, reference_images(project), 2))
    assert numbers(theirs) != numbers(own)
    other = check_sampled(volumes, ckpt, project, 3)  # segmented into other phases
    assert other["reference"] == MODEL_MICROGRAPHS and numbers(other) == numbers(own)
    assert other["notes"][0].startswith("the project's micrographs have 3 phases but the "
                                        "model 2")
    old = {k: v for k, v in ckpt.items() if k != "reference"}  # before the self-check
    none = check_sampled(volumes, old)
    assert none["planes"] == {} and none["verdict"] == NO_REFERENCE
    assert none["reference"] is None and level(none) == "none"

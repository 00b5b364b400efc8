import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from micro3d_gui.preprocess.dataset import load_labelled_planes
from micro3d_gui.errors import DatasetError, ImageReadError
from micro3d_gui.io.images import list_images, read_folder, read_images
from micro3d_gui.io.volume import read_volume, write_tiff


def check_training_crop(image_set, crop: int) -> None:
    """The check of training input (prepare_trainer's) of a ``crop`` on these micrographs."""
    from micro3d_gui.core.plane_dataset import PlaneDataset
    from micro3d_gui.core.training import prepare_trainer

    prepare_trainer(PlaneDataset(image_set.images, image_set.num_phases), "tiny", "cpu",
                    steps=1, crop=crop, origins=image_set.origins)


def test_natural_order_and_formats(tmp_path):
    rng = np.random.default_rng(0)
    a = (rng.random((12, 10)) > 0.5).astype(np.uint8)
    Image.fromarray(a * 255).save(tmp_path / "img10.png")
    Image.fromarray(a * 255).save(tmp_path / "img2.bmp")
    Image.fromarray(a * 255).convert("RGB").save(tmp_path / "img1.png")
    tifffile.imwrite(tmp_path / "img3.tif", a.astype(np.uint16) * 65535)
    tifffile.imwrite(tmp_path / "img4.tiff", np.stack([a, 1 - a]).astype(np.float32))  # 2 pages
    (tmp_path / "notes.txt").write_text("ignored")
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["img1.png", "img2.bmp", "img3.tif", "img4.tiff", "img10.png"]
    images, origins = read_folder(tmp_path)
    assert len(images) == 6 and [o.name for o in origins].count("img4.tiff") == 2
    assert all(im.shape == (12, 10) and im.ndim == 2 for im in images)
    np.testing.assert_array_equal(images[0], a * 255)  # grey stored as RGB keeps its levels
    np.testing.assert_array_equal(images[2], a.astype(np.uint16) * 65535)
    np.testing.assert_array_equal(images[4], 1 - a)


def test_unknown_type_and_tiny_image_are_named(tmp_path):
    (tmp_path / "scan.xyz").write_text("?")
    with pytest.raises(ImageReadError, match=r"scan.xyz: unknown file type '.xyz'"):
        read_images(tmp_path / "scan.xyz")
    Image.fromarray(np.zeros((1, 40), np.uint8)).save(tmp_path / "line.png")
    with pytest.raises(ImageReadError, match=r"line.png: image is only 1x40 pixels"):
        read_images(tmp_path / "line.png")


def test_truncated_tiff_is_named(tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint16))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ImageReadError, match="cut.tif: cannot be read"):
        read_images(path)


def test_labelled_planes_share_one_mapping(tmp_path):
    for plane, levels in (("xy", (0, 128, 255)), ("xz", (0, 255)), ("yz", (128,))):
        d = tmp_path / plane
        d.mkdir()
        im = np.full((8, 8), levels[0], np.uint8)
        for k, v in enumerate(levels):
            im[k::len(levels)] = v
        Image.fromarray(im).save(d / "a.png")
    folders = {p: tmp_path / p for p in ("xy", "xz", "yz")}
    # Whole planes without a level: refused, naming planes and levels, unless phases given.
    with pytest.raises(DatasetError, match=r"xy uses \[0, 128, 255\]; xz uses \[0, 255\]; "
                                           r"yz uses \[128\]"):
        load_labelled_planes(folders)
    s = load_labelled_planes(folders, phases=3)
    assert s.num_phases == 3 and s.grey_levels == [0, 128, 255]
    assert set(np.unique(s.images["xz"][0])) == {0, 2}
    assert set(np.unique(s.images["yz"][0])) == {1}
    with pytest.raises(DatasetError, match="smaller than the 16 px training crop"):
        check_training_crop(s, 16)


def test_planes_with_disagreeing_labels_are_refused(tmp_path):
    for plane, hi in (("xy", 255), ("xz", 1)):
        d = tmp_path / plane
        d.mkdir()
        im = np.zeros((8, 8), np.uint8)
        im[:4] = hi
        Image.fromarray(im).save(d / f"{plane}.png")
    with pytest.raises(DatasetError, match="xz.png: uses grey levels"):
        load_labelled_planes({"xy": tmp_path / "xy", "xz": tmp_path / "xz"})


def test_volume_tiff_round_trip(tmp_path):
    vol = np.random.default_rng(1).integers(0, 3, (5, 6, 7)).astype(np.uint8)
    write_tiff(vol, tmp_path / "v.tif")
    np.testing.assert_array_equal(read_volume(tmp_path / "v.tif"), vol)
    with tifffile.TiffFile(tmp_path / "v.tif") as tif:
        assert tif.is_imagej and tif.series[0].axes == "ZYX"


# --- sources, formats, orientation, volumes -------------------------------------------------

from micro3d_gui.preprocess.segment import SegmentationConfig, segment_planes  # noqa: E402
from micro3d_gui.preprocess.synthetic import lamellae  # noqa: E402
from micro3d_gui.io.images import read_sources  # noqa: E402
from micro3d_gui.core.planes import volume_plane_images  # noqa: E402
from micro3d_gui.preprocess.orientation import (PlaneOptions, apply_options,  # noqa: E402
                                             apply_plane_options)


def test_read_sources_takes_files_and_folders(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    for i in (10, 2):
        Image.fromarray(np.full((4, 5), i, np.uint8)).save(d / f"a{i}.png")
    tifffile.imwrite(tmp_path / "b.tif", np.full((4, 5), 99, np.uint8))
    images, origins = read_sources([tmp_path / "b.tif", d, str(d / "a2.png")])
    assert [o.name for o in origins] == ["b.tif", "a2.png", "a10.png"]  # a2 read once
    assert [int(im[0, 0]) for im in images] == [99, 2, 10]
    assert [o.name for o in read_sources(d)[1]] == ["a2.png", "a10.png"]  # one path is fine
    with pytest.raises(ImageReadError, match="no images given"):
        read_sources([])


def test_more_image_kinds_become_grey(tmp_path):
    a = (np.indices((12, 10)).sum(0) % 3 == 0).astype(np.uint8)
    # 16-bit PNG keeps its values
    Image.fromarray(a.astype(np.uint16) * 40000).save(tmp_path / "deep.png")
    np.testing.assert_array_equal(read_images(tmp_path / "deep.png")[0],
                                  a.astype(np.uint16) * 40000)
    # palette and 1-bit PNGs give two grey levels in the same places
    pal = Image.fromarray(a * 255).convert("P")
    pal.save(tmp_path / "pal.png")
    Image.fromarray(a.astype(bool)).save(tmp_path / "bits.png")
    for name in ("pal.png", "bits.png"):
        im = read_images(tmp_path / name)[0]
        assert im.shape == (12, 10) and len(np.unique(im)) == 2
        np.testing.assert_array_equal(im == im.max(), a.astype(bool))
    # colour (RGBA, grey+alpha, planar RGB TIFF) -> luminance, same shape
    rgba = np.zeros((12, 10, 4), np.uint8)
    rgba[..., 0] = a * 255
    rgba[..., 3] = 255
    Image.fromarray(rgba).save(tmp_path / "red.png")
    la = Image.fromarray(a * 200).convert("LA")
    la.save(tmp_path / "la.png")
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(rgba[..., :3], -1, 0),
                     photometric="rgb", planarconfig="separate")
    red = read_images(tmp_path / "red.png")[0]
    planar = read_images(tmp_path / "planar.tif")[0]
    assert red.shape == planar.shape == (12, 10)
    np.testing.assert_allclose(planar, red)
    assert red[a == 1].min() > red[a == 0].max()
    np.testing.assert_array_equal(read_images(tmp_path / "la.png")[0], a * 200)
    # JPEG (lossy): grey, right shape, levels near the originals
    Image.fromarray(np.kron(a, np.ones((4, 4), np.uint8)) * 255).save(tmp_path / "j.jpg",
                                                                       quality=95)
    j = read_images(tmp_path / "j.jpg")[0]
    assert j.shape == (48, 40) and j.dtype == np.uint8


def test_colour_odd_and_stray_inputs_are_read_as_a_scientist_expects(tmp_path):
    lab = np.repeat(np.arange(3), 4)[None].repeat(10, 0)  # 10 x 12, phases in columns
    colours = np.array([[255, 0, 0], [0, 0, 255], [0, 255, 0]], np.uint8)  # lum 54, 18, 182
    d = tmp_path / "xy"
    d.mkdir()
    Image.fromarray(colours[lab]).save(d / "a_rgb.png")
    pal = Image.fromarray(lab.astype(np.uint8), "P")
    pal.putpalette(colours.ravel().tolist())
    pal.save(d / "b_palette.png")  # the same colours through a palette
    Image.fromarray(np.dstack([colours[lab], np.full(lab.shape, 255, np.uint8)])).save(
        d / "c_rgba.png")  # fully opaque alpha: read as the RGB
    for name in ("notes.txt", ".DS_Store", "Thumbs.db", "._a_rgb.png"):
        (d / name).write_bytes(b"\0\1")
    s = load_labelled_planes({"xy": d})
    assert s.num_phases == 3 and [Path(o).name for o in s.origins["xy"]] == [
        "a_rgb.png", "b_palette.png", "c_rgba.png"]
    for labels in s.images["xy"]:  # darkest first: blue 0, red 1, green 2
        np.testing.assert_array_equal(labels, np.array([1, 0, 2])[lab])
    assert s.warnings[0] == ("xy: skipped 4 files that are not images (._a_rgb.png, "
                             ".DS_Store, notes.txt, Thumbs.db)")
    # grey-looking RGB (a JPEG's tint of 1-3 levels) is grey in its own levels
    grey = np.where(lab == 1, 200, 20).astype(np.uint8)
    tinted = np.dstack([grey, grey + 2, grey - 1])
    Image.fromarray(tinted).save(tmp_path / "tinted.png")
    got = read_images(tmp_path / "tinted.png")[0]
    assert got.dtype == np.uint8 and np.abs(got.astype(int) - grey).max() <= 2
    # 16-bit and float TIFFs keep their values
    tifffile.imwrite(tmp_path / "deep.tif", lab.astype(np.uint16) * 30000)
    tifffile.imwrite(tmp_path / "f.tif", lab.astype(np.float32) / 2)
    np.testing.assert_array_equal(read_images(tmp_path / "deep.tif")[0], lab * 30000)
    assert read_images(tmp_path / "f.tif")[0].dtype == np.float32
    # a JPEG stored sideways with EXIF orientation 6 (rotate 90° clockwise) reads upright
    upright = np.zeros((48, 32), np.uint8)
    upright[:16] = 255  # the top third white
    im = Image.fromarray(np.rot90(upright))  # as a camera stores it: 32 x 48
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    got = read_images(tmp_path / "phone.jpg")[0]
    assert got.shape == (48, 32) and got[:16].mean() > 200 and got[16:].mean() < 50


def test_plane_options_transpose_then_flip():
    a = np.arange(6).reshape(2, 3)
    assert apply_plane_options(a, PlaneOptions()) is a
    np.testing.assert_array_equal(apply_plane_options(a, PlaneOptions(transpose=True)), a.T)
    np.testing.assert_array_equal(apply_plane_options(a, PlaneOptions(flip_rows=True)), a[::-1])
    np.testing.assert_array_equal(apply_plane_options(a, PlaneOptions(flip_cols=True)),
                                  a[:, ::-1])
    both = apply_plane_options(a, PlaneOptions(True, True, False))
    np.testing.assert_array_equal(both, [[2, 5], [1, 4], [0, 3]])  # transpose, then flip
    with pytest.raises(ValueError, match="unknown plane 'zz'"):
        apply_options({"xy": [a]}, {"zz": PlaneOptions(transpose=True)})


def test_volume_plane_images_follow_the_convention():
    vol = np.arange(3 * 4 * 5).reshape(3, 4, 5)
    sets = volume_plane_images(vol)
    assert [len(sets[p]) for p in ("xy", "xz", "yz")] == [3, 4, 5]
    np.testing.assert_array_equal(sets["xy"][2], vol[2])
    np.testing.assert_array_equal(sets["xz"][1], vol[:, 1, :])
    np.testing.assert_array_equal(sets["yz"][4], vol[:, :, 4])
    assert all(im.flags.c_contiguous for ims in sets.values() for im in ims)
    every2 = volume_plane_images(vol, step=2)
    np.testing.assert_array_equal(every2["yz"][1], vol[:, :, 2])
    with pytest.raises(ValueError, match="z, y, x"):
        volume_plane_images(vol[0])


def test_misoriented_plane_is_fixed_on_load(tmp_path):
    truth = lamellae((8, 12, 16), axis=2, mean_thickness=3, seed=2)
    sets = volume_plane_images(truth)
    dirs = {}
    for plane, ims in sets.items():
        d = dirs[plane] = tmp_path / plane
        d.mkdir()
        for i, im in enumerate(ims):
            if plane == "xz":  # delivered x down and z across, upside down
                im = im.T[::-1, :]
            Image.fromarray(im * 255).save(d / f"{i}.png")
    wrong = load_labelled_planes(dirs)
    assert wrong.images["xz"][0].shape == (16, 8)
    fixed = load_labelled_planes(dirs, options={"xz": PlaneOptions(transpose=True,
                                                                   flip_cols=True)})
    for plane in sets:
        for got, want in zip(fixed.images[plane], sets[plane]):
            np.testing.assert_array_equal(got, want)


def test_volume_stack_import(tmp_path):
    vol = np.random.default_rng(0).integers(0, 2, (4, 5, 6)).astype(np.uint8)
    rgb = np.repeat(vol[..., None] * 255, 3, axis=-1)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    np.testing.assert_array_equal(read_volume(tmp_path / "rgb.tif"), vol * 255)
    # a grey tomography stack -> three plane sets -> the same phases in every plane
    tifffile.imwrite(tmp_path / "grey.tif", (vol * 150 + 50).astype(np.uint8),
                     photometric="minisblack")
    seg = segment_planes(volume_plane_images(read_volume(tmp_path / "grey.tif")),
                         SegmentationConfig("otsu"))
    np.testing.assert_array_equal(seg.labels["yz"][2], vol[:, :, 2])
    assert 50 <= seg.thresholds[0] < 200
    tifffile.imwrite(tmp_path / "flat.tif", vol[0])
    with pytest.raises(ImageReadError, match="flat.tif: has shape .* not a 3D"):
        read_volume(tmp_path / "flat.tif")
    Image.fromarray(vol[0]).save(tmp_path / "v.png")
    with pytest.raises(ImageReadError, match="v.png: a volume must be a TIFF stack"):
        read_volume(tmp_path / "v.png")


def write_grey_planes(root, truth, means, dtype=np.uint8, suffix=".png", noise=10.0):
    """Raw micrographs of a label volume's planes: grey = phase mean + Gaussian noise."""
    rng = np.random.default_rng(0)
    dirs = {}
    for plane, ims in volume_plane_images(truth, step=2).items():
        d = dirs[plane] = root / plane
        d.mkdir(parents=True)
        for i, im in enumerate(ims):
            g = np.asarray(means, float)[im] + rng.normal(0, noise, im.shape)
            g = g.clip(0, np.iinfo(dtype).max).astype(dtype)
            if suffix == ".png":
                Image.fromarray(g).save(d / f"{plane}_{i}.png")
            else:
                tifffile.imwrite(d / f"{plane}_{i}.tif", g)
    return dirs


def test_grey_micrographs_are_segmented_on_load(tmp_path):
    truth = lamellae((16, 16, 24), axis=2, mean_thickness=3, seed=0)
    dirs = write_grey_planes(tmp_path / "a", truth, (50, 180))
    s = load_labelled_planes(dirs, phases=2)  # > 16 grey levels + --phases: Otsu
    assert s.num_phases == 2 and s.segmentation.method == "otsu" and s.grey_levels == []
    for plane, ims in volume_plane_images(truth, step=2).items():
        for got, want in zip(s.images[plane], ims):
            np.testing.assert_array_equal(got, want)
    # three phases, 16-bit TIFFs: multi-Otsu
    three = truth + (np.indices(truth.shape)[0] >= 8).astype(np.uint8)  # 0, 1, 2
    dirs = write_grey_planes(tmp_path / "b", three, (5000, 30000, 60000), np.uint16, ".tif",
                             noise=1500)
    s = load_labelled_planes(dirs, phases=3)
    assert s.segmentation.method == "multiotsu" and s.num_phases == 3
    np.testing.assert_array_equal(s.images["xy"][0], three[0])
    # an explicit manual segmentation
    s = load_labelled_planes(dirs, segmentation=SegmentationConfig("manual",
                                                                   thresholds=(15000, 45000)))
    np.testing.assert_array_equal(s.images["xz"][3], three[:, 6, :])


def test_atomic_writes_get_the_mode_of_a_plain_open(tmp_path):
    import os
    import stat

    from micro3d_gui.io.atomic import atomic_path

    with atomic_path(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"x")
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")
    mode = stat.S_IMODE(os.stat(tmp_path / "a.bin").st_mode)
    assert mode == stat.S_IMODE(os.stat(plain).st_mode) and mode & stat.S_IRGRP


def test_tiff_stack_is_written_page_by_page_from_a_memmap(tmp_path):
    # a volume on disk, of another dtype: written without a whole in-memory uint8 copy
    vol = np.lib.format.open_memmap(tmp_path / "labels.npy", mode="w+", dtype=np.int16,
                                    shape=(5, 7, 6))
    vol[:] = np.random.default_rng(0).integers(0, 3, size=vol.shape)
    write_tiff(vol, tmp_path / "v.tif", voxel_size=(2.0, 1.0, 0.5))
    with tifffile.TiffFile(tmp_path / "v.tif") as tif:
        assert len(tif.pages) == 5 and tif.is_imagej
        assert tif.imagej_metadata["spacing"] == 2.0
        np.testing.assert_array_equal(tif.asarray(), np.asarray(vol))


def test_same_file_sees_through_relative_paths_symlinks_and_hard_links(tmp_path, monkeypatch):
    from micro3d_gui.io.run_files import same_file

    (tmp_path / "d").mkdir()
    real = tmp_path / "d" / "a.tif"
    real.write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "d")
    os.link(real, tmp_path / "hard.tif")
    monkeypatch.chdir(tmp_path / "d")
    for alias in ("a.tif", "./a.tif", "../link/a.tif", tmp_path / "hard.tif"):
        assert same_file(alias, real), alias
    # an output not yet written is compared by its resolved path
    assert same_file("../link/new.json", tmp_path / "d" / "new.json")
    assert not same_file("b.tif", real) and not same_file(tmp_path / "new.json", real)

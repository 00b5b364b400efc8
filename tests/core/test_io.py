import numpy as np
import pytest
import tifffile
from PIL import Image

from micro3d_gui.io.dataset import load_labelled_planes
from micro3d_gui.io.errors import DatasetError, ImageReadError
from micro3d_gui.io.images import list_images, read_folder, read_images
from micro3d_gui.io.volume import read_volume, write_tiff


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
    s = load_labelled_planes({p: tmp_path / p for p in ("xy", "xz", "yz")})
    assert s.num_phases == 3 and s.grey_levels == [0, 128, 255]
    assert set(np.unique(s.images["xz"][0])) == {0, 2}
    assert set(np.unique(s.images["yz"][0])) == {1}
    with pytest.raises(DatasetError, match="smaller than the 16 px training crop"):
        s.check_crop(16)


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

"""Every bad micrograph input gets our exception, naming the file and the fix."""
import numpy as np
import pytest
import tifffile
from PIL import Image

from micro3d_gui.core.crop import CLI_CROP_ADVICE, check_image_sides, image_shapes
from micro3d_gui.core.diffusion.unet import preset_config
from micro3d_gui.errors import DatasetError, ImageReadError, InputError, SegmentationError
from micro3d_gui.preprocess.dataset import load_labelled_planes
from micro3d_gui.preprocess.segment import SegmentationConfig
from test_io import check_training_crop


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path)
    return path


def _labelled(path, hi=255, shape=(16, 16)):
    im = np.zeros(shape, np.uint8)
    im[: shape[0] // 2] = hi
    return _png(path, im)


def case_corrupt(tmp):
    p = tmp / "xy" / "broken.png"
    p.parent.mkdir()
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00garbage")
    return lambda: load_labelled_planes({"xy": p.parent})


def case_truncated_png(tmp):
    p = _labelled(tmp / "xy" / "cut.png", shape=(64, 64))
    p.write_bytes(p.read_bytes()[:60])
    return lambda: load_labelled_planes({"xy": p.parent})


def case_truncated_tiff(tmp):
    p = tmp / "xy" / "cut.tif"
    p.parent.mkdir()
    tifffile.imwrite(p, np.zeros((64, 64), np.uint16))
    p.write_bytes(p.read_bytes()[:100])
    return lambda: load_labelled_planes({"xy": [p]})


def case_unknown_type(tmp):
    p = tmp / "scan.xyz"
    p.write_text("?")
    return lambda: load_labelled_planes({"xy": [p]})


def case_empty_folder(tmp):
    (tmp / "emptyfolder").mkdir()
    return lambda: load_labelled_planes({"xy": tmp / "emptyfolder"})


def case_missing_path(tmp):
    return lambda: load_labelled_planes({"xy": tmp / "nothere"})


def case_mixed_phase_counts(tmp):
    _labelled(tmp / "xz" / "xz_0.png", hi=255)
    _labelled(tmp / "xz" / "xz_1.png", hi=1)  # labelled 0/1 among 0/255 images
    return lambda: load_labelled_planes({"xz": tmp / "xz"})


def case_one_pixel(tmp):
    _labelled(tmp / "yz" / "a.png")
    _png(tmp / "yz" / "dot.png", [[255]])
    return lambda: load_labelled_planes({"yz": tmp / "yz"})


def case_smaller_than_crop(tmp):
    _labelled(tmp / "xy" / "big.png", shape=(32, 32))
    _labelled(tmp / "xy" / "small.png", shape=(12, 20))
    return lambda: check_training_crop(load_labelled_planes({"xy": tmp / "xy"}), 16)


def case_nan(tmp):
    im = np.zeros((8, 8), np.float32)
    im[2, 3] = np.nan
    (tmp / "xy").mkdir()
    tifffile.imwrite(tmp / "xy" / "nan.tif", im)
    return lambda: load_labelled_planes({"xy": tmp / "xy"})


def case_transparent(tmp):
    rgba = np.full((16, 16, 4), 255, np.uint8)
    rgba[:4, :4, 3] = 0  # a transparent corner: its phase is unknown
    _png(tmp / "xy" / "cut_out.png", rgba)
    return lambda: load_labelled_planes({"xy": tmp / "xy"})


def case_equally_bright_colours(tmp):
    im = np.zeros((16, 16, 3), np.uint8)
    im[:8] = (0, 0, 123)  # the same luminance (8.87 of 255) as the colour below
    im[8:] = (35, 2, 0)
    _png(tmp / "xy" / "paint.png", im)
    return lambda: load_labelled_planes({"xy": tmp / "xy"})


def case_only_stray_files(tmp):
    (tmp / "xy").mkdir()
    (tmp / "xy" / "notes.txt").write_text("no images here")
    (tmp / "xy" / "Thumbs.db").write_bytes(b"\0")
    return lambda: load_labelled_planes({"xy": tmp / "xy"})


def case_grey_without_phases(tmp):
    rng = np.random.default_rng(0)
    _png(tmp / "xy" / "raw.png", rng.integers(0, 255, (16, 16)))
    return lambda: load_labelled_planes({"xy": tmp / "xy"})


def case_uniform_images(tmp):
    _png(tmp / "xy" / "blank.png", np.full((8, 8), 7))
    return lambda: load_labelled_planes({"xy": tmp / "xy"}, phases=2)


def case_wrong_phase_count(tmp):
    _labelled(tmp / "xy" / "two.png")
    return lambda: load_labelled_planes({"xy": tmp / "xy"}, phases=3)


def case_bad_thresholds(tmp):
    _labelled(tmp / "xy" / "two.png", hi=200)
    cfg = SegmentationConfig("manual", thresholds=(100, 220))
    return lambda: load_labelled_planes({"xy": tmp / "xy"}, segmentation=cfg)


def case_too_few_levels_for_multiotsu(tmp):
    _labelled(tmp / "xy" / "two.png", hi=200)
    cfg = SegmentationConfig("multiotsu", phases=3)
    return lambda: load_labelled_planes({"xy": tmp / "xy"}, segmentation=cfg)


BAD_INPUTS = [
    # (case, exception, text naming the file or option, text telling the fix)
    (case_corrupt, ImageReadError, "broken.png: cannot be read as an image", "export it again"),
    (case_truncated_png, ImageReadError, "cut.png: cannot be read as an image", "truncated"),
    (case_truncated_tiff, ImageReadError, "cut.tif: cannot be read as an image", "truncated"),
    (case_unknown_type, ImageReadError, "scan.xyz: unknown file type '.xyz'", "use PNG, JPEG"),
    (case_empty_folder, ImageReadError, "emptyfolder: no images found", "put PNG"),
    (case_missing_path, ImageReadError, "nothere: no such file or folder", "check the path"),
    (case_mixed_phase_counts, DatasetError, "xz_1.png: uses grey levels [0, 1]",
     "same grey values"),
    (case_one_pixel, ImageReadError, "dot.png: image is only 1x1 pixels", "at least as large"),
    (case_smaller_than_crop, DatasetError, "small.png: image is 12x20 px, smaller than the 16",
     "use --crop"),
    (case_nan, ImageReadError, "nan.tif: holds 1 NaN or infinite grey values (the first at "
     "row 2, column 3)", "replace them"),
    (case_transparent, ImageReadError, "cut_out.png: 16 of 256 pixels are (partly) transparent",
     "flatten the image"),
    (case_equally_bright_colours, ImageReadError,
     "paint.png: the colours (0, 0, 123) and (35, 2, 0) are equally bright", "recolour one"),
    (case_only_stray_files, ImageReadError, "xy: no images found (only 2 files that are not "
     "images (notes.txt, Thumbs.db))", "put PNG"),
    (case_grey_without_phases, DatasetError, "raw.png: has", "pass --phases K"),
    (case_uniform_images, DatasetError, "blank.png: this and every other image use the single",
     "check that the right files"),
    (case_wrong_phase_count, DatasetError, "--phases is 3", "--segment"),
    (case_bad_thresholds, SegmentationError, "thresholds [100.0, 220.0] leave phase(s) [2]",
     "choose thresholds inside"),
    (case_too_few_levels_for_multiotsu, SegmentationError, "into 3 phases", "fewer phases"),
]


@pytest.mark.parametrize("case, error, names, fix", BAD_INPUTS,
                         ids=[c[0].__name__[5:] for c in BAD_INPUTS])
def test_every_bad_input_is_named_with_a_fix(tmp_path, case, error, names, fix):
    call = case(tmp_path)
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert isinstance(info.value, InputError)
    assert names in message and fix in message, message
    assert "\n" not in message


def test_check_crop_works_on_plain_mappings(tmp_path):
    ims = {"xy": [np.zeros((20, 20)), np.zeros((9, 30))]}
    names = {"xy": [tmp_path / "a.png", tmp_path / "b.png"]}
    multiple = preset_config("tiny", 1).size_multiple  # 8: the advice rounds to it
    check_image_sides(image_shapes(ims), names, 8, CLI_CROP_ADVICE, multiple)
    with pytest.raises(DatasetError, match="b.png: image is 9x30 px.*use --crop 8"):
        check_image_sides(image_shapes(ims), names, 16, CLI_CROP_ADVICE, multiple)

"""A corpus of bad inputs to ``micro3d``: every one exits with code 2, prints no traceback,
names the file or the option at fault, and leaves the files already there untouched.

Each case runs in a fresh folder holding micrographs, a copy of the bundled fibres model and
earlier outputs (``old.pt``, ``old.tif``, ``old.json``); the whole folder is fingerprinted
before and after the run.
"""
import hashlib
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from micro3d_gui.cli import main
from micro3d_gui.preprocess.synthetic import lamellae
from micro3d_gui.paths import demo_model

SAMPLE = ["--shape", "8", "8", "8", "--sampling-steps", "2", "--harmonize", "0",
          "--device", "cpu"]
# argparse keeps the last value of a repeated option: cases append the one they break.


@pytest.fixture
def base(tmp_path, plane_writer):
    """A case folder: micrographs, a copy of a model and earlier outputs."""
    root = tmp_path / "case"
    plane_writer(root, lamellae((16, 16, 32), axis=2, seed=0))
    shutil.copy(demo_model("fibres"), root / "model.pt")
    (root / "old.pt").write_bytes(b"an earlier model")
    tifffile.imwrite(root / "old.tif", np.zeros((4, 4, 4), np.uint8))
    (root / "old.json").write_text("{}")
    np.save(root / "vol.npy", lamellae((8, 8, 8), axis=2, seed=0))
    (root / "a_folder").mkdir()
    (root / "a_file").write_text("not a folder")
    return root


def fingerprint(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns,
                                         hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def planes(d):
    return ["--xy", str(d / "xy"), "--xz", str(d / "xz"), "--yz", str(d / "yz")]


def train(d, *extra, out="old.pt"):
    return ["train", *planes(d), "--out", str(d / out), "--preset", "tiny", "--crop", "16",
            "--batch", "2", "--steps", "2", "--device", "cpu", *extra]


def sample(d, *extra, out="old.tif", model="model.pt"):
    return ["sample", str(d / model), *SAMPLE, "--out", str(d / out), *extra]


def evaluate(d, *volumes, out="old.json", extra=()):
    return ["evaluate", *(str(d / v) for v in volumes or ("vol.npy",)), "--json",
            str(d / out), *extra]


# -- inputs that need preparing: each takes the case folder ----------------------------------

def bomb_tiff(d):
    """A 16x16 zlib TIFF whose header is rewritten to declare 30000 x 30000 pixels."""
    path = d / "xy" / "xy_bomb.tif"
    tifffile.imwrite(path, np.zeros((16, 16), np.uint8), compression="zlib")
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(30000)
        tif.pages[0].tags["ImageLength"].overwrite(30000)
    return path


def bomb_png(d):
    """A valid PNG of 30000 x 30000 grey pixels, zlib-compressed to a few hundred kB."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    w = h = 30000
    raw = zlib.compressobj(9)
    row = b"\0" * (w + 1)
    body = b"".join(raw.compress(row) for _ in range(200)) + raw.flush()  # truncated data
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    path = d / "xz" / "xz_bomb.png"
    path.write_bytes(png)
    return path


def edit_model(d, change):
    ckpt = torch.load(d / "model.pt", weights_only=True)
    change(ckpt)
    torch.save(ckpt, d / "edited.pt")
    return d / "edited.pt"


def three_levels_in_xz(d):
    for f in (d / "xz").glob("*.png"):
        im = np.array(Image.open(f))
        im[:, :2] = 127  # a third grey level in every xz image only
        Image.fromarray(im).save(f)


def transparent_xy(d):
    rgba = np.full((16, 32, 4), 255, np.uint8)
    rgba[:2, :2, 3] = 0  # a transparent corner
    Image.fromarray(rgba).save(d / "xy" / "xy_0.png")


def equally_bright_colours(d):
    im = np.zeros((16, 32, 3), np.uint8)
    im[:8], im[8:] = (0, 0, 123), (35, 2, 0)  # luminance 8.87 of 255 both
    Image.fromarray(im).save(d / "xz" / "xz_paint.png")


def nan_tiff(d):
    im = np.zeros((16, 32), np.float32)
    im[5, 7] = np.nan
    tifffile.imwrite(d / "yz" / "yz_nan.tif", im)


def one_small_yz(d):
    (d / "small_yz").mkdir()
    Image.fromarray(np.eye(16, 20, dtype=np.uint8) * 255).save(d / "small_yz" / "only.png")


def train_auto_crop(d):
    """``train`` with no --crop: the crop is fitted to the micrographs."""
    return ["train", *planes(d), "--out", str(d / "old.pt"), "--preset", "tiny", "--batch",
            "2", "--steps", "2", "--device", "cpu"]


def write_grey_npy(d):
    np.save(d / "grey.npy", np.random.default_rng(0).random((8, 8, 8)))


def write_object_npy(d):
    np.save(d / "obj.npy", np.array([{"a": 1}] * 8, dtype=object), allow_pickle=True)


def write_materials(d):
    (d / "mat.json").write_text('{"0": {"E": 3.5, "nu": 0.35, "cte": 6e-5}, '
                                '"1": {"E": 230, "nu": 0.2, "cte": -5e-7}}')


def write_keep_tif(d):
    """A labelled 8x8 section (the xy plane of the 8^3 test volumes) -> its path."""
    tifffile.imwrite(d / "keep.tif", lamellae((8, 8, 8), axis=2, seed=0)[0] * 255)
    return d / "keep.tif"


def write_crossing_keep_tifs(d):
    """The xy section at z 0 and, as xz at y 0, its inverse: they cross on the line z 0,
    y 0 and disagree on all of it."""
    xy = lamellae((8, 8, 8), axis=2, seed=0)[0]
    tifffile.imwrite(d / "keep.tif", xy * 255)
    tifffile.imwrite(d / "keep_xz.tif", (1 - xy) * 255)


def mkdir(name):
    return lambda d: (d / name).mkdir()


def no_op(d):
    return None


# (id, prepare(d), argv(d), expected substrings of the one-line error, env)
CASES = [
    # -- output paths: refused before any work ------------------------------------------------
    ("train-out-is-folder", no_op, lambda d: train(d, out="a_folder"),
     ["--out", "a_folder: is a folder"]),
    ("train-out-unwritable", no_op, lambda d: train(d, "--out", "/proc/m.pt"),
     ["--out /proc/m.pt", "cannot write in the folder /proc"]),
    ("train-out-under-file", no_op, lambda d: train(d, out="a_file/m.pt"),
     ["a_file/m.pt", "a_file is a file, not a folder"]),
    ("sample-out-is-folder", no_op, lambda d: sample(d, out="a_folder"),
     ["--out", "a_folder: is a folder"]),
    ("sample-out-unwritable", no_op, lambda d: sample(d, "--out", "/proc/v.tif"),
     ["--out /proc/v.tif", "cannot write in the folder /proc"]),
    ("sample-out-under-file", no_op, lambda d: sample(d, out="a_file/v.tif"),
     ["a_file is a file, not a folder"]),
    ("sample-out-suffix", no_op, lambda d: sample(d, out="v.xyz"),
     ["v.xyz", "end --out in one of .vti, .tif, .tiff, .npy"]),
    ("sample-count-path-is-folder", mkdir("v_001.tif"),
     lambda d: sample(d, "--count", "2", out="v.tif"), ["v_001.tif: is a folder"]),
    ("sample-json-is-folder", no_op, lambda d: sample(d, "--json", str(d / "a_folder")),
     ["--json", "a_folder: is a folder"]),
    ("sample-json-is-the-volume", no_op, lambda d: sample(d, "--json", str(d / "old.tif")),
     ["--json", "old.tif: is also the path of --out"]),
    # -- an output that is an input or another output: refused, whatever its spelling ----------
    ("train-out-is-a-micrograph", no_op, lambda d: train(d, out="xy/xy_0.png"),
     ["--out", "xy_0.png: is the --xy micrograph", "give --out another path"]),
    ("train-out-is-a-micrograph-by-symlink",
     lambda d: (d / "link.png").symlink_to(d / "xz" / "xz_1.png"),
     lambda d: train(d, out="link.png"), ["link.png: is the --xz micrograph", "xz_1.png"]),
    ("train-out-is-a-micrograph-by-dotdot", no_op, lambda d: train(d, out="yz/../yz/yz_0.png"),
     ["yz_0.png: is the --yz micrograph"]),
    ("evaluate-json-is-the-volume", no_op, lambda d: evaluate(d, out="vol.npy"),
     ["--json", "vol.npy: is the volume", "give --json another path"]),
    ("evaluate-csv-is-the-json", no_op,
     lambda d: evaluate(d, extra=("--csv", str(d / "old.json"))),
     ["--csv", "old.json: is also the path of --json"]),
    ("evaluate-json-is-the-materials", write_materials,
     lambda d: evaluate(d, out="mat.json", extra=("--materials", str(d / "mat.json"))),
     ["--json", "mat.json: is the --materials file"]),
    ("evaluate-json-is-a-micrograph", no_op,
     lambda d: evaluate(d, out="xy/xy_1.png", extra=planes(d)),
     ["--json", "xy_1.png: is the --xy micrograph"]),
    ("sample-out-is-a-keep-image", write_keep_tif,
     lambda d: sample(d, "--keep", "xy", "0", str(d / "keep.tif"), out="keep.tif"),
     ["--out", "keep.tif: is the --keep xy 0 image"]),
    ("sample-out-is-a-keep-image-by-hard-link", lambda d: os.link(write_keep_tif(d),
                                                                  d / "alias.tif"),
     lambda d: sample(d, "--keep", "xy", "0", str(d / "keep.tif"), out="alias.tif"),
     ["--out", "alias.tif: is the --keep xy 0 image", "keep.tif"]),
    ("sample-unit-with-a-newline", no_op,
     lambda d: sample(d, "--voxel-size", "1", "1", "1", "--unit", "u\nm"),
     ["--unit 'u\\nm'", "give a plain unit"]),
    ("sample-keep-sections-that-disagree", write_crossing_keep_tifs,
     lambda d: sample(d, "--keep", "xy", "0", str(d / "keep.tif"), "--keep", "xz", "0",
                      str(d / "keep_xz.tif")),
     ["kept sections xy 0 and xz 0", "line z = 0, y = 0", "disagree on 8 of its 8"]),
    ("sample-out-is-the-model", lambda d: shutil.copy(d / "model.pt", d / "model.tif"),
     lambda d: sample(d, model="model.tif", out="model.tif"),
     ["--out", "model.tif: is the model"]),
    ("sample-json-is-the-npy-sidecar", no_op,
     lambda d: sample(d, "--voxel-size", "1", "1", "1", "--json", str(d / "v.npy.json"),
                      out="v.npy"),
     ["--json", "v.npy.json: is also the path of the --out sidecar"]),
    ("sample-count-json-is-a-volume", no_op,
     lambda d: sample(d, "--count", "2", "--json", str(d / "v_001.tif"), out="v.tif"),
     ["--json", "v_001.tif: is also the path of --out"]),
    ("evaluate-json-is-folder", no_op, lambda d: evaluate(d, out="a_folder"),
     ["--json", "a_folder: is a folder"]),
    ("evaluate-json-unwritable", no_op,
     lambda d: evaluate(d, extra=("--json", "/proc/r.json")),
     ["--json /proc/r.json", "cannot write"]),
    ("evaluate-csv-under-file", no_op,
     lambda d: evaluate(d, extra=("--csv", str(d / "a_file" / "r.csv"))),
     ["--csv", "a_file is a file, not a folder"]),
    # -- bounded inputs ------------------------------------------------------------------------
    ("tiff-bomb", bomb_tiff, lambda d: train(d),
     ["xy_bomb.tif: declares 30000x30000 = 900,000,000 pixels", "MICRO3D_MAX_IMAGE_PIXELS"]),
    ("png-bomb", bomb_png, lambda d: train(d), ["xz_bomb.png", "decompression-bomb"]),
    ("image-limit-from-env", no_op, lambda d: train(d),
     ["xy_0.png: declares 16x32 = 512 pixels, more than the limit of 100",
      "MICRO3D_MAX_IMAGE_PIXELS=512"], {"MICRO3D_MAX_IMAGE_PIXELS": "100"}),
    ("image-limit-env-invalid", no_op, lambda d: train(d),
     ["MICRO3D_MAX_IMAGE_PIXELS=lots"], {"MICRO3D_MAX_IMAGE_PIXELS": "lots"}),
    ("volume-limit-from-env", no_op, lambda d: evaluate(d),
     ["vol.npy: declares 8x8x8 = 512 voxels", "MICRO3D_MAX_VOLUME_VOXELS"],
     {"MICRO3D_MAX_VOLUME_VOXELS": "100"}),
    ("model-base-channels-999", no_op,
     lambda d: sample(d, model=edit_model(d, lambda c: c["model_config"].update(
         base_channels=999)).name), ["edited.pt", "base_channels = 999", "outside the range"]),
    ("model-patch-0", no_op,
     lambda d: sample(d, model=edit_model(d, lambda c: c["model_config"].update(
         patch=0)).name), ["edited.pt", "patch = 0", "outside the range"]),
    ("model-fraction-flag-not-bool", no_op,
     lambda d: sample(d, model=edit_model(d, lambda c: c["model_config"].update(
         fraction_conditioning="yes")).name),
     ["edited.pt: model_config fraction_conditioning 'yes' is not true or false"]),
    ("model-spread-wrong-length", no_op,
     lambda d: sample(d, model=edit_model(d, lambda c: c["data_summary"]["xy"].update(
         crop_mean_spread=[0.2, 0.1])).name),
     ["edited.pt: data_summary xy crop_mean_spread [0.2, 0.1] is not 1 number(s) from 0 to 2"]),
    ("model-reference-label-above-phases", no_op,
     lambda d: sample(d, model=edit_model(d, lambda c: c["reference"]["yz"][3].fill_(7)).name),
     ["edited.pt: its self-check micrographs ('reference') are damaged or edited",
      "yz image 3 holds label 7, but the model has 2 phases"]),
    ("model-missing-config", no_op,
     lambda d: sample(d, model=edit_model(d, lambda c: c.pop("model_config")).name),
     ["edited.pt: lacks model_config"]),
    ("model-missing-weights", no_op,
     lambda d: sample(d, model=edit_model(d, lambda c: c["ema"].pop("out.2.weight")).name),
     ["edited.pt", "'ema' weights do not fit", "out.2.weight"]),
    ("model-weight-shape", no_op,
     lambda d: sample(d, model=edit_model(d, lambda c: c["model"].update(
         {"input_conv.weight": torch.zeros(3, 1, 3, 3)})).name),
     ["edited.pt: weight model.input_conv.weight has shape (3, 1, 3, 3)"]),
    ("model-unknown-setting", no_op,
     lambda d: sample(d, model=edit_model(d, lambda c: c["model_config"].update(
         warp=9)).name), ["edited.pt: model_config has unknown settings ['warp']"]),
    ("model-one-phase", no_op,
     lambda d: sample(d, model=edit_model(d, lambda c: c.update(num_phases=1)).name),
     ["edited.pt: num_phases 1"]),
    ("model-channels-vs-phases", no_op,
     lambda d: sample(d, model=edit_model(d, lambda c: c.update(num_phases=3)).name),
     ["edited.pt: the network has 1 channels but 3 phases need 3"]),
    ("model-bad-schedule", no_op,
     lambda d: sample(d, model=edit_model(d, lambda c: c["schedule_config"].update(
         num_steps=-5)).name), ["edited.pt: schedule_config"]),
    ("model-unknown-prediction", no_op,
     lambda d: sample(d, model=edit_model(d, lambda c: c["schedule_config"].update(
         prediction="x0")).name), ["edited.pt: schedule_config", "prediction eps or v"]),
    ("model-not-a-model", lambda d: (d / "text.pt").write_text("hello"),
     lambda d: sample(d, model="text.pt"), ["text.pt: not a readable Micro3D model"]),
    ("model-missing", no_op, lambda d: sample(d, model="none.pt"),
     ["none.pt: no such model file"]),
    ("resume-without-training-state", no_op,
     lambda d: train(d, "--resume", str(edit_model(d, lambda c: c.pop("optimizer")))),
     ["edited.pt: lacks optimizer", "cannot be resumed"]),
    ("info-not-a-model", lambda d: (d / "text.pt").write_text("hello"),
     lambda d: ["info", str(d / "text.pt")], ["text.pt: not a readable Micro3D model"]),
    # -- numeric options, named --------------------------------------------------------------
    ("guidance-nan", no_op, lambda d: sample(d, "--guidance", "nan"),
     ["argument --guidance", "finite"]),
    ("guidance-inf", no_op, lambda d: sample(d, "--guidance", "inf"),
     ["argument --guidance", "finite"]),
    ("fraction-guidance-negative", no_op, lambda d: sample(d, "--fraction-guidance", "-1"),
     ["argument --fraction-guidance", "0 or more"]),
    ("gamma-above-one", no_op, lambda d: sample(d, "--gamma", "1.5"),
     ["argument --gamma", "between 0 and 1"]),
    ("gamma-nan", no_op, lambda d: sample(d, "--gamma", "nan"), ["argument --gamma"]),
    ("harmonize-negative", no_op, lambda d: sample(d, "--harmonize", "-1"),
     ["argument --harmonize"]),
    ("sampling-steps-above-T", no_op, lambda d: sample(d, "--sampling-steps", "5000"),
     ["sampling steps 5000: must be at most 1000"]),
    ("voxel-size-zero", no_op, lambda d: sample(d, "--voxel-size", "0", "1", "1"),
     ["argument --voxel-size", "positive"]),
    ("voxel-size-nan", no_op, lambda d: sample(d, "--voxel-size", "nan", "1", "1"),
     ["argument --voxel-size"]),
    ("voxel-size-1e-300-in-a-tiff", no_op,
     lambda d: sample(d, "--voxel-size", "1e-300", "1e-300", "1e-300"),
     ["--voxel-size 1e-300 1e-300 1e-300", "a .tif file cannot store this voxel size",
      "--unit"]),
    ("voxel-size-1e10-in-a-tiff", no_op, lambda d: sample(d, "--voxel-size", "1", "1e10", "1"),
     ["--voxel-size 1 1e+10 1", "read back as 1 inf 1"]),
    ("unit-the-vti-cannot-store", no_op,
     lambda d: sample(d, "--voxel-size", "1", "1", "1", "--unit", "\u00b5m", out="v.vti"),
     ["--unit '\u00b5m': a .vti file cannot store it", "um or nm"]),
    ("unit-without-voxel-size", no_op, lambda d: sample(d, "--unit", "nm"),
     ["--unit nm", "add --voxel-size"]),
    ("lr-negative", no_op, lambda d: train(d, "--lr", "-1"), ["argument --lr", "positive"]),
    ("lr-nan", no_op, lambda d: train(d, "--lr", "nan"), ["argument --lr", "finite"]),
    ("lr-text", no_op, lambda d: train(d, "--lr", "fast"), ["argument --lr", "'fast'"]),
    ("steps-zero", no_op, lambda d: train(d, "--steps", "0"), ["argument --steps"]),
    ("thresholds-nan", no_op, lambda d: train(d, "--thresholds", "nan"),
     ["argument --thresholds", "finite"]),
    ("max-r-too-large", no_op, lambda d: evaluate(d, extra=("--max-r", "8")),
     ["--max-r 8", "smallest side, 8 voxels"]),
    ("device-unknown", no_op, lambda d: sample(d, "--device", "warp9"),
     ["--device warp9"]),
    # -- micrographs and volumes ---------------------------------------------------------------
    ("planes-with-different-grey-levels", three_levels_in_xz, lambda d: train(d),
     ["planes are labelled with different grey levels", "xz uses [0, 127, 255]",
      "xy and yz use [0, 255]", "--phases 3"]),
    ("micrograph-folder-missing", no_op,
     lambda d: train(d)[:2] + [str(d / "nope")] + train(d)[3:], ["nope: no such file"]),
    ("micrograph-folder-empty", mkdir("empty"),
     lambda d: train(d)[:2] + [str(d / "empty")] + train(d)[3:], ["empty: no images found"]),
    ("micrograph-corrupt", lambda d: (d / "xy" / "xy_9.png").write_bytes(b"\x89PNG\r\n\x1a\n"),
     lambda d: train(d), ["xy_9.png: cannot be read as an image", "corrupt"]),
    ("micrograph-is-folder-with-suffix", mkdir("xy/inner.png"), lambda d: train(d)[:2] + [
        str(d / "xy" / "inner.png")] + train(d)[3:], ["inner.png"]),
    ("crop-larger-than-images", no_op, lambda d: train(d, "--crop", "24"),
     ["smaller than the 24 px training crop", "--crop 16"]),
    ("micrograph-transparent", transparent_xy, lambda d: train(d),
     ["xy_0.png: 4 of 512 pixels are (partly) transparent", "flatten the image"]),
    ("micrograph-colours-equally-bright", equally_bright_colours, lambda d: train(d),
     ["xz_paint.png: the colours (0, 0, 123) and (35, 2, 0) are equally bright",
      "recolour one"]),
    ("micrograph-nan", nan_tiff, lambda d: train(d),
     ["yz_nan.tif: holds 1 NaN or infinite grey values (the first at row 5, column 7)",
      "replace them"]),
    ("plane-area-too-small-for-crop", one_small_yz,
     lambda d: train(d, "--yz", str(d / "small_yz")),
     ["yz: its 1 micrograph covers 320 px², room for only 1.2 crops of 16 px",
      "at least 4 crops' area", "add yz micrographs", "--crop 8"]),
    ("micrographs-below-the-smallest-auto-crop", no_op, train_auto_crop,
     ["xy_0.png: image is 16x32 px", "at least 32 px on a side", "16 px fits these"]),
    ("flip-without-plane", no_op,
     lambda d: ["train", "--xy", str(d / "xy"), "--out", str(d / "old.pt"),
                "--flip-rows", "yz"], ["--flip-rows yz: no yz images given"]),
    ("volume-suffix", lambda d: (d / "v.xyz").write_text("x"), lambda d: evaluate(d, "v.xyz"),
     ["v.xyz: a volume must be", ".vti", ".npy"]),
    ("volume-missing", no_op, lambda d: evaluate(d, "gone.tif"), ["gone.tif: no such file"]),
    ("volume-npy-corrupt", lambda d: (d / "bad.npy").write_bytes(b"\x93NUMPY garbage"),
     lambda d: evaluate(d, "bad.npy"), ["bad.npy: cannot be read as a NumPy array"]),
    ("volume-npy-pickle", write_object_npy, lambda d: evaluate(d, "obj.npy"),
     ["obj.npy: cannot be read as a NumPy array"]),
    ("volume-npy-grey", write_grey_npy, lambda d: evaluate(d, "grey.npy"),
     ["grey.npy: holds float64 values", "not phase labels"]),
    ("volume-vti-garbage", lambda d: (d / "bad.vti").write_text("<xml/>"),
     lambda d: evaluate(d, "bad.vti"), ["bad.vti: not a VTK XML image"]),
    ("volume-tif-truncated", lambda d: (d / "cut.tif").write_bytes(
        (d / "old.tif").read_bytes()[:40]), lambda d: evaluate(d, "cut.tif"),
     ["cut.tif: cannot be read as a TIFF stack"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_naming_the_culprit_and_keeps_files(case, base, capsys,
                                                              monkeypatch):
    name, prepare, argv, expected, *env = case
    d = base
    for key, value in (env[0] if env else {}).items():
        monkeypatch.setenv(key, value)
    prepare(d)
    assert_refused(d, argv(d), expected, capsys)


def assert_refused(d: Path, args: list[str], expected, capsys) -> str:
    """``micro3d args`` exits 2 with one ``error:`` line holding every text of ``expected``,
    no traceback, and every file under ``d`` as it was -> that line."""
    before = fingerprint(d)
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse's refusal of an option value
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    message = [line for line in err.splitlines() if "error:" in line]
    assert len(message) == 1, err
    for text in expected:
        assert text in message[0], message[0]
    assert fingerprint(d) == before, "an existing file was changed or a new one written"
    return message[0]


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_micrograph_says_permission_denied(base, capsys):
    d = base
    (d / "xy" / "xy_0.png").chmod(0)
    assert main(train(d)) == 2
    assert "xy_0.png: permission denied" in capsys.readouterr().err

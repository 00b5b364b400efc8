"""The second round of hostile inputs (issue 28): numbers beyond what the machine holds,
model files that unpack to gigabytes or carry damaged fields, deeply nested JSON. Each
case runs as the corpus of ``test_bad_inputs`` does: exit 2, one line naming the file or
option and the fix, no traceback, every file already there unchanged. Where memory is at
stake the command runs in a child process whose peak memory is measured.
"""
import os
import pickle
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from micro3d_gui.cli import main
from micro3d_gui.preprocess.dataset import load_labelled_planes
from test_bad_inputs import (  # noqa: F401
    assert_refused, base, edit_model, fingerprint, sample, train,
)

GiB = 1 << 30
ROOT = Path(__file__).resolve().parents[2]


def raw_zip(records) -> bytes:
    """A zip archive of ``(name, method, crc, size, payload)`` records, written by hand so
    that a payload can be deflate data made elsewhere (zipfile would compress it itself)."""
    out, central = bytearray(), bytearray()
    for name, method, crc, size, payload in records:
        n = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(payload),
                           size, len(n), 0) + n + payload
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc,
                               len(payload), size, len(n), 0, 0, 0, 0, 0, offset) + n
    return bytes(out + central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(records),
                                            len(records), len(central), len(out), 0))


def zip_bomb(d):
    """The model's archive with its data.pkl replaced by 2.5 GiB of zeros deflated into
    about 2.6 MB (a full flush makes every MiB compress to the same bytes, so the bomb
    takes no time to build); torch's reader inflates data.pkl whole."""
    with zipfile.ZipFile(d / "model.pt") as z:
        infos = z.infolist()
        small = [(i.filename, 0, i.CRC, i.file_size, z.read(i)) for i in infos
                 if "/data/" not in i.filename and not i.filename.endswith("data.pkl")]
    prefix = infos[0].filename.split("/")[0]
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    mib = 2560
    bomb = raw_zip([(f"{prefix}/data.pkl", zipfile.ZIP_DEFLATED, 0, mib << 20,
                     block * mib + c.flush())] + small)
    (d / "bomb.pt").write_bytes(bomb)
    return d / "bomb.pt"


def oversized_records(d):
    """A stored archive whose central directory declares more than the file holds."""
    data = bytearray((d / "model.pt").read_bytes())
    with zipfile.ZipFile(d / "model.pt") as z:
        first = z.infolist()[0]
    cd = data.find(b"PK\x01\x02")  # the first central directory entry: data.pkl's
    struct.pack_into("<II", data, cd + 20, 1 << 31, 1 << 31)  # compressed, uncompressed
    (d / "big.pt").write_bytes(bytes(data))
    assert first.filename.endswith("data.pkl")
    return d / "big.pt"


def deep_materials(d):
    (d / "deep.json").write_text('{"0": ' + "[" * 100_000 + "]" * 100_000 + "}")


def sliced_volume(d):
    """A label volume to evaluate: 8^3, two phases."""
    tifffile.imwrite(d / "v.tif", (np.indices((8, 8, 8)).sum(0) % 2).astype(np.uint8))


def jpeg_labels(d, planes=("xy", "xz", "yz")):
    """The micrographs' 0/255 labels saved as JPEG (quality 95: levels 0, 1, 254, 255)."""
    for plane in planes:
        for f in sorted((d / plane).glob("*.png")):
            Image.open(f).save(f.with_suffix(".jpg"), quality=95)
            f.unlink()


def sixteen_bit_xz(d):
    for f in (d / "xz").glob("*.png"):
        im = np.array(Image.open(f)).astype(np.uint16) * 257  # 0/255 -> 0/65535
        Image.fromarray(im).save(f)


def pickle_npy(d):
    (d / "pick.npy").write_bytes(pickle.dumps({"volume": [1, 2, 3]}))


def no_op(d):
    return None


def edited(change):
    return lambda d: str(edit_model(d, change))


def info(model):
    return lambda d: ["info", model(d)]


def resume(model):
    return lambda d: train(d, "--resume", model(d), "--steps", "99999")


HUGE = "99999999999999999999999"

# (id, prepare(d), argv(d), expected substrings of the one-line error)
CASES = [
    # -- numbers beyond what the machine holds -----------------------------------------------
    ("sample-memory-budget-beyond-free", no_op, lambda d: sample(d, "--memory-budget", "100000"),
     ["--memory-budget 100000: this machine has", "GiB free; give at most that"]),
    ("train-batch-beyond-memory", no_op, lambda d: train(d, "--batch", "1000000000"),
     ["--batch 1000000000", "GiB to train", "choose a batch of"]),
    ("resume-batch-beyond-memory", no_op,
     resume(edited(lambda c: (c.update(crop=16),
                              c["train_config"].update(batch_size=10 ** 9, crop=16)))),
     ["edited.pt: a batch of 1000000000 crops of 16 px needs about", "choose a batch of"]),
    ("train-nproc-beyond-cores", no_op, lambda d: train(d, "--nproc", "100000"),
     ["--nproc 100000: this machine has", "choose --nproc"]),
    ("demo-size-beyond-memory", no_op,
     lambda d: ["demo", "--size", "100000", "--out", str(d / "demo"), "--device", "cpu"],
     ["--size 100000", "GiB to sample"]),
    ("train-seed-huge", no_op, lambda d: train(d, "--seed", HUGE),
     ["argument --seed", "the random generator's range"]),
    ("sample-seed-huge", no_op, lambda d: sample(d, "--seed", HUGE),
     ["argument --seed", "the random generator's range"]),
    # -- model files: unpacked only when they are what torch.save writes ----------------------
    ("model-records-larger-than-file", oversized_records, lambda d: ["info", str(d / "big.pt")],
     ["big.pt: its records declare", "damaged or edited"]),
    # -- damaged fields that passed the check and failed later -------------------------------
    ("model-losses-text", no_op, info(edited(lambda c: c.update(losses="abc"))),
     ["edited.pt: losses 'abc' is not a list of numbers"]),
    ("model-train-seconds-nan", no_op,
     info(edited(lambda c: c.update(train_seconds=float("nan")))),
     ["edited.pt: train_seconds nan is not a number of seconds"]),
    ("model-plane-image-count", no_op,
     info(edited(lambda c: c["data_summary"]["xy"].update(images="many"))),
     ["edited.pt: data_summary xy images 'many' is not a count of images"]),
    ("model-plane-shapes", no_op,
     info(edited(lambda c: c["data_summary"]["yz"].update(shapes=[[64]]))),
     ["edited.pt: data_summary yz shapes [[64]] is not a list of [height, width] pairs"]),
    ("model-fidelity", no_op, info(edited(lambda c: c.update(fidelity=[{"step": "x"}]))),
     ["edited.pt: fidelity report 0"]),
    ("model-train-config-seed", no_op,
     info(edited(lambda c: c["train_config"].update(seed=1 << 70))),
     ["edited.pt: train_config seed", "in the random generator's range"]),
    ("model-train-config-batch", no_op,
     info(edited(lambda c: c["train_config"].update(batch_size=-4))),
     ["edited.pt: train_config: batch_size must be a positive whole number, got -4"]),
    ("resume-optimizer-moment-shape", no_op,
     resume(edited(lambda c: c["optimizer"]["state"][3].update(exp_avg=torch.zeros(2)))),
     ["edited.pt: optimizer exp_avg of weight 3 has shape (2,)", "cannot be resumed"]),
    ("resume-optimizer-empty", no_op, resume(edited(lambda c: c.update(optimizer={}))),
     ["edited.pt: its optimizer state does not fit the network's", "cannot be resumed"]),
    ("resume-rng-state", no_op,
     resume(edited(lambda c: c.update(rng_state=torch.zeros(10, dtype=torch.uint8)))),
     ["edited.pt: rng_state is torch.uint8 (10,)", "cannot be resumed"]),
    # -- unclear or silently wrong -----------------------------------------------------------
    ("micrographs-jpeg-labels", jpeg_labels, lambda d: train(d),
     [".jpg: its grey levels 0, 1, ", "255 lie in 2 tight groups (0-",
      "lossy (JPEG) compression", "losslessly (PNG or TIFF)", "--phases 2"]),
    ("micrographs-mixed-bit-depths", sixteen_bit_xz, lambda d: train(d),
     ["is a 16-bit image but", "is 8-bit", "save all micrographs at one bit depth"]),
    ("volume-npy-pickle-text", pickle_npy, lambda d: ["evaluate", str(d / "pick.npy"),
                                                      "--json", str(d / "old.json")],
     ["pick.npy: cannot be read as a NumPy array: it is not a .npy file of numbers"]),
    # -- JSON ---------------------------------------------------------------------------------
    ("materials-deeply-nested", lambda d: (deep_materials(d), sliced_volume(d)),
     lambda d: ["evaluate", str(d / "v.tif"), "--json", str(d / "old.json"), "--elastic",
                "--materials", str(d / "deep.json"), "--device", "cpu"],
     ["deep.json: nests 100001 levels deep"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_exits_2_naming_the_culprit_and_keeps_files(case, base, capsys):
    name, prepare, argv, expected = case
    d = base
    prepare(d)
    message = assert_refused(d, argv(d), expected, capsys)
    assert "--phases 4" not in message and "allow_pickle" not in message


PEAK = """import resource, subprocess, sys
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(run.stderr)
print(run.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)"""


def peak_run(args) -> tuple[int, int, str]:
    """Run ``micro3d ARGS`` in a fresh child: (exit code, its peak resident bytes, its
    stderr); the measuring process has no other child."""
    out = subprocess.run([sys.executable, "-c", PEAK, sys.executable, "-m", "micro3d_gui.cli",
                          *args], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=ROOT)
    rc, peak = map(int, out.stdout.split())
    return rc, peak, out.stderr


# (id, prepare(d) -> argv, expected substrings of the one-line error)
MEMORY_CASES = [
    ("sample-count-beyond-memory", lambda d: sample(d, "--count", "1000000000"),
     ["--count 1000000000", "1000000000 volumes of 8^3 need about", "GiB free"]),
    ("model-zip-bomb", lambda d: sample(d, model=zip_bomb(d).name),
     ["bomb.pt: record", "data.pkl' is compressed", "refused unopened"]),
]


@pytest.mark.parametrize("case", MEMORY_CASES, ids=[c[0] for c in MEMORY_CASES])
def test_refusals_that_guard_memory_stay_under_2_gib(base, case):
    """Refused before anything big exists: on 1a7ae76 the count grew to 8 GB listing its
    output paths, and the bomb took 5 GB as torch inflated it."""
    name, argv, expected = case
    d = base
    args = argv(d)
    before = fingerprint(d)
    rc, peak, err = peak_run(args)
    assert rc == 2, err
    assert peak < 2 * GiB, f"peak {peak / GiB:.1f} GiB"
    assert "Traceback" not in err
    message = [line for line in err.splitlines() if "error:" in line]
    assert len(message) == 1, err
    for text in expected:
        assert text in message[0], message[0]
    assert fingerprint(d) == before


def test_one_slice_per_network_call_samples_what_larger_calls_do(base, capsys):
    """The deepest map of a side of 8 is 1x1: one slice per call (a flat box, --max-batch 1,
    a tiny memory budget) used to fail in the network's GroupNorm; now every batching gives
    the same volume."""
    d = base
    volumes = []
    for name, extra in (("default", ()), ("one", ("--max-batch", "1")),
                        ("budget", ("--memory-budget", "0.0001"))):
        assert main(sample(d, "--seed", "3", *extra, out=f"{name}.npy")) == 0, \
            capsys.readouterr().err
        volumes.append(np.load(d / f"{name}.npy"))
    assert "--memory-budget 0.0001: this box needs at least" in capsys.readouterr().err
    np.testing.assert_array_equal(volumes[0], volumes[1])
    np.testing.assert_array_equal(volumes[0], volumes[2])
    assert main(sample(d, "--shape", "1", "8", "8", out="flat.npy")) == 0
    assert np.load(d / "flat.npy").shape == (1, 8, 8)


def test_demo_samples_a_one_voxel_box(tmp_path, capsys):
    assert main(["demo", "--size", "1", "--out", str(tmp_path), "--device", "cpu"]) == 0
    assert tifffile.imread(tmp_path / "volume.tif").size == 1


def test_jpeg_labels_threshold_into_their_groups_with_phases(base):
    """--phases 2, as the message advises, gives the labels the lossless images hold."""
    d = base
    folders = {p: d / p for p in ("xy", "xz", "yz")}
    lossless = load_labelled_planes(folders)
    jpeg_labels(d)
    got = load_labelled_planes(folders, phases=2)
    assert got.num_phases == 2
    for plane, ims in lossless.images.items():
        for a, b in zip(ims, got.images[plane]):
            np.testing.assert_array_equal(a, b)


def test_the_same_folder_for_every_plane_is_warned_about(base):
    d = base
    same = load_labelled_planes({p: d / "xy" for p in ("xy", "xz", "yz")})
    assert any("xy, xz and yz are given the same 8 file(s)" in w and "--isotropic" in w
               for w in same.warnings), same.warnings
    own = load_labelled_planes({p: d / p for p in ("xy", "xz", "yz")})
    assert not any("the same" in w for w in own.warnings)

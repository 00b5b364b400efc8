"""``micro3d train`` on the inputs scientists have (issue 26): one large micrograph per plane,
small micrographs with no crop option, colour label images, folders with other files."""
import numpy as np
import tifffile
import torch
from PIL import Image
from scipy import ndimage

from micro3d_gui.cli import main

PLANES = ("xy", "xz", "yz")


def blobs(shape, seed, sigma=3.0):
    """A two-phase texture ``[H, W]`` of 0 / 255 (smoothed noise, thresholded at its mean)."""
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), sigma)
    return ((noise > noise.mean()) * 255).astype(np.uint8)


def planes_args(root):
    return [a for p in PLANES if (root / p).exists() for a in (f"--{p}", str(root / p))]


def test_one_large_micrograph_per_plane_trains_and_samples(tmp_path, capsys):
    for i, plane in enumerate(PLANES):
        (tmp_path / plane).mkdir()
        Image.fromarray(blobs((512, 512), i)).save(tmp_path / plane / "sem.png")
    model, vol = tmp_path / "m.pt", tmp_path / "v.tif"
    assert main(["train", *planes_args(tmp_path), "--out", str(model), "--preset", "tiny",
                 "--steps", "2", "--batch", "4", "--device", "cpu", "--no-fidelity"]) == 0
    ckpt = torch.load(model, weights_only=True)
    assert ckpt["step"] == 2 and ckpt["crop"] == 64  # the recipe's crop, cut from the one image
    for plane in PLANES:
        assert ckpt["data_summary"][plane]["images"] == 1
        assert ckpt["data_summary"][plane]["shapes"] == [[512, 512]]
    assert main(["sample", str(model), "--shape", "16", "16", "16", "--out", str(vol),
                 "--sampling-steps", "2", "--harmonize", "0", "--device", "cpu"]) == 0
    assert tifffile.imread(vol).shape == (16, 16, 16)


def test_one_wide_micrograph_per_plane_trains_with_its_fidelity_floor(tmp_path, capsys):
    # 100 x 1024 px: the floor's halves of a single image are its left and right halves
    # (top and bottom ones, 50 px high, would not hold a 64 px crop)
    for i, plane in enumerate(PLANES):
        (tmp_path / plane).mkdir()
        Image.fromarray(blobs((100, 1024), i)).save(tmp_path / plane / "strip.png")
    model = tmp_path / "m.pt"
    assert main(["train", *planes_args(tmp_path), "--out", str(model), "--preset", "tiny",
                 "--steps", "2", "--batch", "2", "--device", "cpu"]) == 0
    ckpt = torch.load(model, weights_only=True)
    assert ckpt["crop"] == 64 and ckpt["fidelity"][-1]["step"] == 2
    assert "floor" in capsys.readouterr().out


def test_62_px_micrographs_train_with_no_option_and_a_note(tmp_path, capsys):
    for i, plane in enumerate(PLANES):
        (tmp_path / plane).mkdir()
        for j in range(4):
            Image.fromarray(blobs((62, 62), 10 * i + j, 1.5)).save(
                tmp_path / plane / f"{plane}_{j}.png")
    model = tmp_path / "m.pt"
    assert main(["train", *planes_args(tmp_path), "--out", str(model), "--preset", "tiny",
                 "--steps", "1", "--batch", "2", "--device", "cpu", "--no-fidelity"]) == 0
    captured = capsys.readouterr()
    assert "note: crop 56 px: the smallest micrograph, xy_0.png, is 62 px" in captured.err
    assert "crop 56" in captured.out
    assert torch.load(model, weights_only=True)["crop"] == 56


def test_colour_labels_and_stray_files_train(tmp_path, capsys):
    # phases painted red (dark), blue (darkest) and green (bright) in RGB PNGs: three phases,
    # darkest first; each folder also holds a note, a .DS_Store and a Thumbs.db
    colours = np.array([[255, 0, 0], [0, 0, 255], [0, 255, 0]], np.uint8)
    for i, plane in enumerate(PLANES):
        d = tmp_path / plane
        d.mkdir()
        for j in range(2):
            labels = np.random.default_rng(10 * i + j).integers(0, 3, (8, 8))
            Image.fromarray(colours[np.kron(labels, np.ones((8, 8), int))]).save(d / f"{j}.png")
        (d / "notes.txt").write_text("SEM, 5 kV")
        (d / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
        (d / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    model = tmp_path / "m.pt"
    assert main(["train", *planes_args(tmp_path), "--out", str(model), "--preset", "tiny",
                 "--crop", "16", "--steps", "1", "--batch", "2", "--device", "cpu",
                 "--no-fidelity"]) == 0
    captured = capsys.readouterr()
    assert "3 phases" in captured.out
    assert ("warning: xy: skipped 3 files that are not images (.DS_Store, notes.txt, "
            "Thumbs.db)") in captured.err
    ckpt = torch.load(model, weights_only=True)
    assert ckpt["num_phases"] == 3
    # blue (luminance 18) is phase 0, red (54) phase 1, green (182) phase 2
    first = np.asarray(Image.open(tmp_path / "xy" / "0.png"))
    kept = ckpt["reference"]["xy"][0].numpy()
    for phase, colour in enumerate(colours[[1, 0, 2]]):
        assert (kept[(first == colour).all(-1)] == phase).all()

"""Make the bundled demo micrographs in resources/demo (deterministic).

For each synthetic material of :data:`micro3d_gui.preprocess.synthetic.MATERIALS` this writes a
128^3 truth volume and label images cut from it:

    demo/<material>/truth.tif             uint8 phase labels [z, y, x], zlib-compressed
    demo/<material>/{xy,xz,yz}/<plane>_NNN.png   every 4th slice, NNN = slice index

Image grey levels are spread evenly over 0..255 (0/255 for two phases, 0/127/255 for three),
so the app reads them as already-labelled images. Run from anywhere:

    python3 resources/make_demo.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from micro3d_gui.core.planes import volume_plane_images
from micro3d_gui.preprocess.synthetic import MATERIALS

SIZE = 128
STRIDE = 4
SEED = 2024


def grey_levels(num_phases: int) -> np.ndarray:
    """Grey level of each phase, evenly spread: 0/255 for two phases, 0/127/255 for three."""
    return (np.arange(num_phases) * 255 // (num_phases - 1)).astype(np.uint8)


def write_material(name: str, root: Path, size: int = SIZE, stride: int = STRIDE,
                   seed: int = SEED) -> np.ndarray:
    material = MATERIALS[name]
    truth = material.make((size, size, size), seed=seed)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(folder / "truth.tif", truth, compression="zlib",
                     metadata={"axes": "ZYX"})
    levels = grey_levels(material.num_phases)
    for plane, images in volume_plane_images(truth, step=1).items():
        out = folder / plane
        out.mkdir(exist_ok=True)
        for old in out.glob("*.png"):  # a rerun with another stride leaves no strays
            old.unlink()
        for k in range(0, len(images), stride):
            Image.fromarray(levels[images[k]]).save(
                out / f"{plane}_{k:03d}.png", optimize=True)
    return truth


def main(root: Path | None = None) -> None:
    root = Path(__file__).resolve().parent / "demo" if root is None else root
    for name in MATERIALS:
        truth = write_material(name, root)
        fractions = np.bincount(truth.ravel(), minlength=MATERIALS[name].num_phases) / truth.size
        print(f"{name}: {truth.shape} phase fractions {np.round(fractions, 4).tolist()}")


if __name__ == "__main__":
    main()

"""Connectivity of generated volumes against a 3D truth, where S2 and lineal path say little.

    python benchmarks/connectivity.py --material electrode3 --models DIR [--recipes fast connected]
        [--set NAME=VALUE ...] [--count 2] [--size 64] [--volumes A.npy B.tif ...]

For each set of volumes (sampled from ``DIR/<material>.pt`` with each recipe, or saved label
volumes ``[N, Z, Y, X]`` / ``[Z, Y, X]`` given by ``--volumes``), against the material's truth
(``time_to_quality.material``), per phase:

- C2: the two-point cluster function (P(two pixels r apart lie in one 4-connected cluster of
  the phase), ``metrics.correlation.cluster_images``) of the volumes' slices, as a relative
  error per plane over the ratio to the floor (the same error of pairs of real sub-volumes),
  and its signed shift per phase (mean over planes; + : larger clusters than the truth's);
- the area-weighted mean cluster size (sum s^2 / sum s, as a fraction of the slice or box) in
  2D slices and in 3D (6-connected), for the volumes, real sub-volumes and, with a model, the
  network's own 2D samples (``FidelityMonitor.sample``, 24 per plane): where a phase's
  clusters grow (the model, or the multi-plane chain).

A phase over-connected in 3D (relative diffusivity above the real sub-volumes') shows here
in 2D already. Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage

from machine import describe
from time_to_quality import DEVDATA, material, setting

from micro3d_gui.core.checkpoint import (load_checkpoint, model_from_checkpoint,
                                         schedule_from_checkpoint)
from micro3d_gui.core.planes import PLANES, label_volume_to_images
from micro3d_gui.core.recipe import get_recipe, sample
from micro3d_gui.io.volume import read_volume
from micro3d_gui.metrics.compare import random_sub_volumes
from micro3d_gui.metrics.correlation import cluster_images, relative_error
from micro3d_gui.metrics.fidelity import FidelityMonitor, FidelitySettings
from micro3d_gui.metrics.floor import random_crops

MAX_R = 32


def cluster_size(images, k: int) -> list[float]:
    """Per phase, the area-weighted mean size of its connected clusters (4-connected in 2D,
    6-connected in 3D) as a fraction of each image or box, averaged over ``images``."""
    out = []
    for phase in range(k):
        sizes = []
        for im in images:
            labels, n = ndimage.label(np.asarray(im) == phase)
            if n:
                s = np.bincount(labels.ravel())[1:].astype(float)
                sizes.append((s ** 2).sum() / s.sum() / labels.size)
        out.append(float(np.mean(sizes)) if sizes else 0.0)
    return out


def slices(volumes, step: int = 4) -> list[np.ndarray]:
    """Every ``step``-th slice of every volume in every plane."""
    return [im for v in volumes for p in PLANES for im in label_volume_to_images(v, p)[::step]]


class Reference:
    """C2 curves of the truth's slices, cut to the generated box's side, per plane."""

    def __init__(self, truth: np.ndarray, k: int, size: int):
        rng = np.random.default_rng(1)
        self.k = k
        self.curves = {}
        for p in PLANES:
            crops = random_crops(list(label_volume_to_images(truth, p)), 256, size, rng)
            self.curves[p] = [cluster_images(crops, ph, MAX_R) for ph in range(k)]

    def errors(self, volumes) -> tuple[dict[str, float], list[float]]:
        """(relative error per plane, mean over phases and axes; signed shift per phase,
        mean over planes and axes)."""
        errors, shifts = {}, np.zeros(self.k)
        for p in PLANES:
            ims = np.concatenate([label_volume_to_images(v, p) for v in volumes])
            e = []
            for ph in range(self.k):
                c, ref = cluster_images(ims, ph, MAX_R), self.curves[p][ph]
                for a in ("along_rows", "along_cols"):
                    g, f = getattr(c, a), getattr(ref, a)
                    e.append(relative_error(g, f))
                    shifts[ph] += (g - f).sum() / np.abs(f).sum() / (2 * len(PLANES))
            errors[p] = float(np.mean(e))
        return errors, shifts.tolist()


def row(name: str, what: str, volumes, ref: Reference, floor: dict, k: int,
        samples2d=None) -> str:
    errors, shifts = ref.errors(volumes)
    ratio = " / ".join(f"{errors[p] / floor[p]:.1f}" for p in PLANES)
    shift = " / ".join(f"{s:+.2f}" for s in shifts)
    two_d = " / ".join(f"{s:.3f}" for s in cluster_size(slices(volumes), k))
    three_d = " / ".join(f"{s:.3f}" for s in cluster_size(volumes, k))
    model = ("-" if samples2d is None else
             " / ".join(f"{s:.3f}" for s in cluster_size(samples2d, k)))
    return f"| {name} | {what} | {ratio} | {shift} | {two_d} | {model} | {three_d} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--material", required=True)
    ap.add_argument("--models", type=Path, default=None, help="folder of <material>.pt")
    ap.add_argument("--recipes", nargs="+", default=["fast"])
    ap.add_argument("--set", type=setting, nargs="+", default=[], metavar="NAME=VALUE")
    ap.add_argument("--volumes", type=Path, nargs="+", default=[])
    ap.add_argument("--count", type=int, default=2)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--devdata", type=Path, default=DEVDATA)
    a = ap.parse_args()
    print(describe("cpu") + "\n")
    images, k, truth = material(a.material, a.devdata)
    ref = Reference(truth, k, a.size)
    subs = random_sub_volumes(truth, a.size, 8, seed=5)
    pairs = [ref.errors(subs[i:i + 2])[0] for i in range(0, 8, 2)]
    floor = {p: float(np.mean([e[p] for e in pairs])) for p in PLANES}
    print("| material | volumes | C2 x floor xy / xz / yz | C2 shift per phase | 2D cluster "
          "size per phase (slices) | the network's 2D samples | 3D cluster size |")
    print("|---|---|---|---|---|---|---|")
    micrographs = [im for p in PLANES for im in random_crops(images[p], 32, a.size,
                                                             np.random.default_rng(0))]
    print(f"| {a.material} | micrographs ({a.size} px crops) | - | - | "
          + " / ".join(f"{s:.3f}" for s in cluster_size(micrographs, k)) + " | - | - |")
    print(row(a.material, "2 real sub-volumes", subs[:2], ref, floor, k), flush=True)
    for path in a.volumes:
        v = np.load(path) if path.suffix == ".npy" else read_volume(path)
        print(row(a.material, path.name, v if v.ndim == 4 else v[None], ref, floor, k),
              flush=True)
    if a.models is not None:
        ckpt = load_checkpoint(a.models / f"{a.material}.pt")
        monitor = FidelityMonitor(images, k, schedule_from_checkpoint(ckpt), a.size,
                                  FidelitySettings(slices=24, sampling_steps=50))
        samples2d = [im for ims in monitor.sample(model_from_checkpoint(ckpt, "cpu")).values()
                     for im in ims]
        for name in a.recipes:
            recipe = get_recipe(name).replace(**dict(a.set))
            vols = sample(ckpt, recipe, (a.size,) * 3, a.count, seed=0).numpy()
            print(row(a.material, f"{name} {' '.join(f'{n}={v}' for n, v in a.set)}".strip(),
                      vols, ref, floor, k, samples2d), flush=True)


if __name__ == "__main__":
    main()

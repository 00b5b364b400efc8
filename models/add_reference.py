"""Add the self-check's micrographs to the bundled demo models, which were trained before
checkpoints kept them.

Each ``models/<material>.pt`` gets ``reference``: the label images the trainer keeps today
(:func:`micro3d_gui.core.reference.reference_images`) of the micrographs it was trained on,
``resources/demo/<material>/{xy,xz,yz}``, read and labelled as ``micro3d train`` reads them
(models/train_models.sh). Nothing else in the file changes; it is rewritten atomically.
A model trained by train_models.sh today has the field already. Usage:

    python models/add_reference.py [material ...]     (default: fibres separator electrode)
"""
from __future__ import annotations

import sys

import torch

from micro3d_gui.core.checkpoint import load_checkpoint, save_checkpoint
from micro3d_gui.core.planes import PLANES
from micro3d_gui.core.reference import reference_images
from micro3d_gui.paths import demo_dir, demo_model
from micro3d_gui.preprocess.dataset import load_labelled_planes


def add_reference(material: str) -> str:
    path = demo_model(material)
    ckpt = load_checkpoint(path)  # checked; its keys are written back as they were read
    planes = load_labelled_planes({p: [demo_dir(material) / p] for p in PLANES})
    if planes.num_phases != ckpt["num_phases"]:
        raise SystemExit(f"{path}: has {ckpt['num_phases']} phases but its micrographs "
                         f"{planes.num_phases}")
    ckpt["reference"] = {p: [torch.tensor(im) for im in ims]
                         for p, ims in reference_images(planes.images).items()}
    save_checkpoint(ckpt, path)
    load_checkpoint(path)  # and it opens again, field checked
    kept = ", ".join(f"{p} {len(ims)}" for p, ims in ckpt["reference"].items())
    return f"{path}: reference images {kept}"


if __name__ == "__main__":
    for name in sys.argv[1:] or ["fibres", "separator", "electrode"]:
        print(add_reference(name))

"""``micro3d demo``: sample a bundled demo model, or train one on synthetic lamellae."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..paths import DEMO_MATERIAL, demo_materials
from .options import add_device_option, device_option, positive
from .progress import sampling_progress

#: The recipe ``demo --train`` trains with (:func:`~micro3d_gui.core.training.prepare_trainer`'s
#: options): the tiny network on 32 px crops of the 64 x 64 px sections, 16 crops a step.
DEMO_TRAINING = dict(preset="tiny", crop=32, batch_size=16)


def add_arguments(sub) -> argparse.ArgumentParser:
    """The ``demo`` subcommand and its options, on the subparsers ``sub``."""
    de = sub.add_parser("demo", help="sample the bundled demo model of a synthetic material "
                                     "(or, with --train, train one on synthetic lamellae)")
    de.add_argument("--material", default=DEMO_MATERIAL, choices=demo_materials() or None,
                    help=f"bundled material (default {DEMO_MATERIAL})")
    de.add_argument("--out", default="micro3d-demo", metavar="DIR")
    de.add_argument("--size", type=positive, default=32, help="edge of the sampled cube")
    de.add_argument("--train", action="store_true",
                    help="train a tiny model on synthetic lamellae first (a few minutes) "
                         "instead of using the bundled model")
    de.add_argument("--steps", type=positive, default=1500,
                    help="training steps with --train (default 1500)")
    add_device_option(de)
    return de


def run(args) -> int:
    from ..core.checkpoint import load_checkpoint
    from ..core.memory import VolumeTooLarge
    from ..core.recipe import DEFAULT_RECIPE, get_recipe, sample
    from ..io.volume import read_volume, write_tiff
    from ..metrics.anisotropy import transition_rate
    from ..metrics.fractions import volume_fractions
    from ..paths import demo_dir, demo_model

    out = Path(args.out)
    if args.train:
        rc, model, truth = _train_lamellae_demo(out, args.steps, device_option(args.device))
        if rc:
            return rc
    else:
        model, truth = demo_model(args.material), demo_dir(args.material) / "truth.tif"
        if not model.is_file():
            raise InputError(f"{model}: no bundled model; make it with 'bash "
                             "models/train_models.sh', or run 'micro3d demo --train'")
        truth = read_volume(truth)
    volume = out / "volume.tif"
    ckpt = load_checkpoint(model)
    recipe = get_recipe(DEFAULT_RECIPE)
    shape = (args.size,) * 3
    recipe.check(ckpt, shape)
    device = device_option(args.device)
    bar, progress = sampling_progress(recipe, ckpt)
    try:
        vol = sample(ckpt, recipe, shape, seed=0, device=device, callback=progress)[0].numpy()
    except VolumeTooLarge as exc:  # checked before anything of the box's size exists
        raise InputError(f"--size {args.size}: {exc}") from None
    bar.close()
    write_tiff(vol, volume)
    print(f"wrote {volume} (recipe {DEFAULT_RECIPE}, {recipe.network_calls(ckpt)} network "
          "calls per slice batch)")
    k = int(max(vol.max(), truth.max())) + 1
    for name, v in (("generated", vol), ("truth", truth)):
        rates = transition_rate(v)
        print(f"{name:9s}: phase fractions {np.round(volume_fractions(v, k), 3).tolist()}; "
              "phase changes per voxel step " +
              ", ".join(f"{a} {r:.3f}" for a, r in rates.items()))
    return 0


def _train_lamellae_demo(out: Path, steps: int, device):
    """Synthetic lamellae normal to x -> micrographs -> a tiny model, trained as ``micro3d
    train`` trains (:data:`DEMO_TRAINING`).

    Returns (the training's exit code, model path, truth volume)."""
    from PIL import Image

    from ..core.plane_dataset import PlaneDataset
    from ..core.planes import volume_plane_images
    from ..core.training import prepare_trainer
    from ..metrics.fidelity import FidelityMonitor
    from ..preprocess.synthetic import lamellae
    from .train import train_to_file

    truth = lamellae((64, 64, 64), axis=2, mean_thickness=4, seed=1)
    labels = volume_plane_images(truth, step=2)
    for plane, ims in labels.items():
        folder = out / "micrographs" / plane
        folder.mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(ims):
            Image.fromarray(im * 255).save(folder / f"{plane}_{i:03d}.png")
    print(f"synthetic lamellae normal to x: micrographs in {out / 'micrographs'}")
    model = out / "model.pt"
    recipe = dict(DEMO_TRAINING, steps=steps)
    trainer, _ = prepare_trainer(PlaneDataset.declared(labels, 2), device=device, **recipe)
    cfg = trainer.config
    print(f"training the {recipe['preset']} network on {device}: {cfg.steps} steps, batch "
          f"{cfg.batch_size}, crop {cfg.crop}, lr {cfg.lr:g}")
    return train_to_file(trainer, str(model), FidelityMonitor.for_trainer(trainer)), model, truth

"""The Train panel's job without Qt: its settings as plain data, the recipe and crop a start
would use, and the worker body, all on :func:`~micro3d_gui.core.training.prepare_trainer`
(what ``micro3d train`` runs).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from ..core.crop import APP_CROP_ADVICE, CropChoice
from ..core.device import DEFAULT_DEVICE
from ..core.symmetry import APP_WORDS, Symmetry
from ..core.train_config import (DEFAULT_PRESET, DEFAULT_TIME_BUDGET_S, TrainConfig,
                                 resolve_preset)
from ..errors import InputError


def recipe_for(preset: str, device: str = DEFAULT_DEVICE) -> TrainConfig:
    """The training recipe the panel shows for a preset (``auto``: the device's; a
    CPU's when the device is not on this machine)."""
    from ..core.device import resolve_device

    try:
        resolved = resolve_device(device)
    except ValueError:
        resolved = "cpu"
    return TrainConfig.for_preset(resolve_preset(preset, resolved))


@dataclass(frozen=True)
class TrainSettings:
    """The panel's fields (plain data for projects). Defaults: the ``auto`` preset's recipe
    on a CPU, trained for the default time, as ``micro3d train`` with no options.

    ``steps`` 0 trains for ``minutes``; a positive ``steps`` trains exactly that many.
    ``crop`` 0 (auto): the recipe's, or the largest the micrographs hold
    (:func:`~micro3d_gui.core.crop.training_crop`).
    """

    preset: str = DEFAULT_PRESET
    minutes: float = DEFAULT_TIME_BUDGET_S / 60
    steps: int = 0
    batch: int = recipe_for(DEFAULT_PRESET, "cpu").batch_size
    crop: int = 0
    device: str = DEFAULT_DEVICE
    seed: int = TrainConfig.seed
    checkpoint_every: int = TrainConfig.checkpoint_every
    stop_at_floor: bool = TrainConfig.stop_at_floor
    model_path: str = ""

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSettings":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def overrides(self) -> dict:
        """The recipe options these fields give (the same names as ``micro3d train``'s)."""
        return {"steps": self.steps or None,
                "time_budget_s": None if self.steps else 60.0 * self.minutes,
                "batch_size": self.batch, "crop": self.crop or None, "seed": self.seed,
                "checkpoint_every": self.checkpoint_every,
                "stop_at_floor": self.stop_at_floor}


@dataclass
class TrainHistory:
    """The loss and fidelity history a resumed model brings (first report of a resumed run),
    and the recipe options the resume ignored, the model's own kept
    (:func:`~micro3d_gui.core.training.prepare_trainer`'s names, e.g. ``batch_size``)."""

    losses: list[float]
    fidelity: list[dict]
    ignored: list[str] = field(default_factory=list)


def crop_choice(labels: Mapping[str, Sequence[np.ndarray]], settings: TrainSettings, device,
                origins: Mapping[str, Sequence] | None = None) -> CropChoice:
    """The crop a new run of ``settings`` trains with on ``labels`` (the core's rule, as
    ``micro3d train``: :func:`~micro3d_gui.core.training.new_run_crop`); InputError when
    the images cannot hold it (a DatasetError, naming the image)."""
    from ..core.training import new_run_crop

    try:
        return new_run_crop(labels, resolve_preset(settings.preset, device),
                            settings.crop or None, origins, APP_CROP_ADVICE)
    except ValueError as exc:  # (the images' own errors are InputErrors already)
        raise InputError(str(exc)) from None


def train_job(segmentation, settings: TrainSettings, device, resume: bool,
              origins: Mapping[str, Sequence] | None = None, symmetry: Symmetry = Symmetry(),
              *, report: Callable[[object], None], should_stop: Callable[[], bool]) -> dict:
    """Worker body (no Qt): build the dataset and trainer as ``micro3d train`` does, train,
    return a summary.

    ``segmentation`` has ``labels`` (plane -> label images) and ``num_phases``; ``origins``
    the file of each image (for messages); ``symmetry`` the declared one (the Data
    panel's, :mod:`~micro3d_gui.core.symmetry`; resuming with none declared keeps the
    model's). ``report`` gets a :class:`TrainHistory` first
    when resuming, then every ``TrainProgress``. The summary's ``ignored``: the settings a
    resume ignored (its :class:`TrainHistory`'s).
    """
    from ..core.checkpoint import load_checkpoint, resumed_symmetry
    from ..core.plane_dataset import PlaneDataset
    from ..core.training import prepare_trainer
    from ..metrics.fidelity import FidelityMonitor

    path = settings.model_path
    ckpt = load_checkpoint(path) if resume else None
    data = PlaneDataset.declared(segmentation.labels, segmentation.num_phases,
                                 resumed_symmetry(symmetry, ckpt), APP_WORDS)
    try:
        trainer, ignored = prepare_trainer(data, settings.preset, device, ckpt,
                                           origins=origins, crop_advice=APP_CROP_ADVICE,
                                           **settings.overrides())
    except ValueError as exc:
        raise InputError(f"{path}: {exc}" if resume else str(exc)) from None
    if resume:
        report(TrainHistory(list(trainer.losses), list(trainer.fidelity), ignored))
        if trainer.step >= trainer.config.steps:
            # Its run is complete: training would do nothing but rewrite the file.
            return {"nothing_left": True, "step": trainer.step, "path": path,
                    "train_seconds": trainer.elapsed_s, "ignored": ignored}

    def callback(progress):
        report(progress)
        return should_stop()

    finished = trainer.train(callback, checkpoint_path=path,
                             monitor=FidelityMonitor.for_trainer(trainer))
    return {"finished": finished, "step": trainer.step, "total": trainer.config.steps,
            "path": path, "num_phases": data.num_phases, "ignored": ignored,
            "fidelity": trainer.fidelity[-1] if trainer.fidelity else None}

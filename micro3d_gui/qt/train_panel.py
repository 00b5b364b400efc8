"""Train panel: network preset and training options, Start / Cancel / Resume, live loss.

It mirrors ``micro3d train``: the labelled images come from the Data panel's segmentation
(:class:`~micro3d_gui.core.training.PlaneDataset`), the model from
:func:`~micro3d_gui.core.diffusion.unet.preset_config`, the run from
:class:`~micro3d_gui.core.training.Trainer` in a worker thread. The trainer writes the model
atomically to the chosen file every ``checkpoint_every`` steps and when it stops; Cancel stops
it after the current step (the model is saved), Resume continues that file's run.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QSpinBox, QVBoxLayout,
                               QWidget)

from ..core.training import TrainConfig
from ..io.errors import InputError
from . import dialogs
from .jobs import Job, JobPanel, throttled
from .plot_widget import PlotWidget

PRESETS = ("tiny", "small", "paper")
DEVICES = ("auto", "cpu", "cuda", "mps")
CROP_STEP = 8  # every preset's size multiple (4 levels): crops must be multiples of it


@dataclass(frozen=True)
class TrainSettings:
    """The panel's fields (plain data for projects). Defaults as ``micro3d train``."""

    preset: str = "small"
    steps: int = TrainConfig.steps
    batch: int = TrainConfig.batch_size
    crop: int = TrainConfig.crop
    device: str = "auto"
    seed: int = TrainConfig.seed
    checkpoint_every: int = TrainConfig.checkpoint_every
    model_path: str = ""

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSettings":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainHistory:
    """The loss history a resumed model brings (the first report of a resumed run)."""

    losses: list[float]


def check_crop(labels: Mapping[str, Sequence[np.ndarray]], crop: int,
               origins: Mapping[str, Sequence] | None = None) -> None:
    """InputError naming the first image (its file when ``origins`` has it) smaller than
    ``crop`` px on its short side: every training image must hold a crop."""
    for plane, images in labels.items():
        names = list((origins or {}).get(plane, ()))
        for i, im in enumerate(images):
            if min(im.shape) < crop:
                name = str(names[i]) if i < len(names) else f"{plane} image {i + 1}"
                fit = max(CROP_STEP, min(im.shape) // CROP_STEP * CROP_STEP)
                raise InputError(f"{name}: image is {im.shape[0]}x{im.shape[1]} px, smaller "
                                 f"than the {crop} px training crop; set Crop to {fit} or "
                                 "less, or use larger images")


def train_job(segmentation, settings: TrainSettings, device, resume: bool,
              origins: Mapping[str, Sequence] | None = None, *,
              report: Callable[[object], None], should_stop: Callable[[], bool]) -> dict:
    """Worker body (no Qt): build the dataset and trainer, train, return a summary.

    ``segmentation`` has ``labels`` (plane -> label images) and ``num_phases``; ``origins``
    the file of each image (for messages). ``report`` gets a :class:`TrainHistory` first
    when resuming, then every ``TrainProgress``.
    """
    from ..core.checkpoint import load_checkpoint
    from ..core.diffusion.unet import preset_config
    from ..core.encoding import num_channels
    from ..core.training import PlaneDataset, Trainer

    path = settings.model_path
    data = PlaneDataset(segmentation.labels, segmentation.num_phases)
    if resume:
        ckpt = load_checkpoint(path)
        check_crop(segmentation.labels, int(ckpt["crop"]), origins)
        if settings.steps <= int(ckpt["step"]):
            raise InputError(f"{path}: the model has already trained {int(ckpt['step'])} "
                             f"steps; set Steps above that to continue its training")
        try:
            trainer = Trainer.resume(ckpt, data, steps=settings.steps, device=device)
        except ValueError as exc:
            raise InputError(f"{path}: {exc}") from None
        report(TrainHistory(list(trainer.losses)))
    else:
        model_cfg = preset_config(settings.preset, num_channels(data.num_phases))
        cfg = TrainConfig(steps=settings.steps, batch_size=settings.batch, crop=settings.crop,
                          seed=settings.seed, checkpoint_every=settings.checkpoint_every)
        trainer = Trainer(data, model_cfg, cfg, device=device)

    def callback(progress):
        report(progress)
        return should_stop()

    finished = trainer.train(callback, checkpoint_path=path)
    return {"finished": finished, "step": trainer.step, "total": trainer.config.steps,
            "path": path, "num_phases": data.num_phases}


class LossPlot(PlotWidget):
    """Training loss per step (light) and its running mean, redrawn at most twice a second."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, name="training_loss", figsize=(4.0, 2.4))
        self.canvas.setMinimumHeight(140)
        self.losses: list[float] = []
        self.draw_count = 0
        self._schedule = throttled(self.redraw, 500, self)  # <= 2 redraws a second
        self.redraw()

    def set_losses(self, losses: list[float]) -> None:
        self.losses = [float(v) for v in losses]
        self.redraw()

    def append(self, loss: float) -> None:
        self.losses.append(float(loss))
        self._schedule()

    def redraw(self) -> None:
        self.figure.clear()
        ax = self.figure.add_subplot()
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        if self.losses:
            y = np.asarray(self.losses)
            x = np.arange(1, len(y) + 1)
            ax.plot(x, y, color="#9bb7d4", lw=0.8, label="loss")
            w = max(1, min(50, len(y) // 10))
            mean = np.convolve(y, np.ones(w) / w, mode="valid")
            ax.plot(x[w - 1:], mean, color="#1f4e8c", lw=1.5, label=f"mean of {w}")
            if y.min() > 0:
                ax.set_yscale("log")
            ax.legend(loc="upper right", fontsize="small")
        else:
            ax.text(0.5, 0.5, "no training yet", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
        self.draw()
        self.draw_count += 1


class TrainPanel(JobPanel):
    """Signals: ``model_saved(path)`` when a run ends with the model written, ``busy(bool)``.

    ``data_source()`` returns the Data panel's segmentation (``labels``, ``num_phases``,
    per-image ``origins`` optional) or None; the main window sets it.
    """

    model_saved = Signal(str)
    load_requested = Signal()

    def __init__(self, parent: QWidget | None = None,
                 data_source: Callable[[], object] | None = None):
        super().__init__(parent)
        self.data_source = data_source
        #: Per plane, the file each image came from (for messages naming a too-small image).
        self.origins_source: Callable[[str], list[Path]] | None = None
        #: Folder proposed for a new model file (the project's, when one is open).
        self.default_dir: Path | None = None

        self.preset_combo = QComboBox()
        self.preset_combo.addItems(PRESETS)
        self.preset_combo.setToolTip("Network size: tiny and small train on a CPU; "
                                     "paper (Table 1) needs a GPU")
        self.steps_spin = spin_box(1, 10_000_000, "Total training steps (the paper: 60000)")
        self.batch_spin = spin_box(1, 4096, "Crops per training step")
        self.crop_spin = spin_box(CROP_STEP, 4096, "Side of the square training crops in pixels "
                               f"(a multiple of {CROP_STEP})")
        self.crop_spin.setSingleStep(CROP_STEP)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setToolTip("auto: a CUDA or Apple MPS GPU when present, else the CPU")
        self.seed_spin = spin_box(0, 2**31 - 1, "Seed of the weights and of every random draw")
        self.checkpoint_spin = spin_box(1, 10_000_000, "Save the model every N steps")
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("model file (.pt)")
        self.save_as_button = QPushButton("Save as...")
        self.save_as_button.clicked.connect(self._ask_model_path)
        self.load_button = QPushButton("Load model...")
        self.load_button.setToolTip("Open a trained model (to sample from or to resume)")
        self.load_button.clicked.connect(self.load_requested)
        model_buttons = QHBoxLayout()
        model_buttons.addWidget(self.save_as_button)
        model_buttons.addWidget(self.load_button)

        form = QFormLayout()
        form.addRow("Preset", self.preset_combo)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Batch", self.batch_spin)
        form.addRow("Crop (px)", self.crop_spin)
        form.addRow("Device", self.device_combo)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Save every", self.checkpoint_spin)
        form.addRow("Model", self.model_edit)
        form.addRow("", model_buttons)

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Train a new model (replaces the model file)")
        self.start_button.clicked.connect(lambda: self.start(resume=False))
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue training the model file up to Steps")
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current step; the model is saved")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.resume_button, self.cancel_button):
            buttons.addWidget(b)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.status_label = QLabel("Not trained yet")
        self.status_label.setWordWrap(True)
        self.loss_plot = LossPlot()

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.loss_plot, 1)
        self.set_settings(TrainSettings())
        self._sync()

    # -- settings -------------------------------------------------------------------------
    def settings(self) -> TrainSettings:
        return TrainSettings(
            preset=self.preset_combo.currentText(), steps=self.steps_spin.value(),
            batch=self.batch_spin.value(), crop=self.crop_spin.value(),
            device=self.device_combo.currentText(), seed=self.seed_spin.value(),
            checkpoint_every=self.checkpoint_spin.value(),
            model_path=self.model_edit.text().strip(),
        )

    def set_settings(self, s: TrainSettings | dict) -> None:
        if isinstance(s, dict):
            s = TrainSettings.from_dict(s)
        self.preset_combo.setCurrentText(s.preset)
        self.steps_spin.setValue(s.steps)
        self.batch_spin.setValue(s.batch)
        self.crop_spin.setValue(s.crop)
        self.device_combo.setCurrentText(s.device)
        self.seed_spin.setValue(s.seed)
        self.checkpoint_spin.setValue(s.checkpoint_every)
        self.model_edit.setText(s.model_path)

    def set_model_path(self, path: str | os.PathLike) -> None:
        self.model_edit.setText(str(path))

    # -- running --------------------------------------------------------------------------
    def start(self, resume: bool = False) -> bool:
        """Check the inputs, then train in a worker. False (with a message) if not started."""
        if self.is_running():
            return False
        try:
            job_args = self._prepare(resume)
        except (InputError, ValueError) as exc:
            dialogs.show_error(self, "Cannot train", dialogs.error_text(exc))
            return False
        if job_args is None:
            return False
        segmentation, settings, device, origins = job_args
        self.loss_plot.set_losses([])
        self.progress_bar.setValue(0)
        self.status_label.setText(f"{'Resuming' if resume else 'Starting'} on {device}...")
        job = Job(train_job, segmentation, settings, device, resume, origins, name="Training",
                  progress_of=lambda p: (p.step, p.total) if hasattr(p, "step") else None,
                  error_parent=self, parent=self)
        return self._launch(job, self._on_report)

    def cancel(self) -> None:
        self._cancel("Stopping after the current step...")

    def _prepare(self, resume: bool):
        from ..core.device import resolve_device
        from ..core.diffusion.unet import preset_config

        s = self.settings()
        if not s.model_path:
            if not self._ask_model_path():
                return None
            s = self.settings()
        path = Path(s.model_path)
        if resume and not path.is_file():
            raise InputError(f"{path}: no such model file to resume; train one with Start")
        if not resume and path.exists():
            if not dialogs.ask(self, "Replace model?",
                               f"{path} exists. Train a new model and replace it?\n"
                               "(Resume continues its training instead.)"):
                return None
        seg = self.data_source() if self.data_source is not None else None
        if seg is None:
            raise InputError("no training images: add labelled or segmented micrographs of "
                             "at least one plane in the Data panel")
        origins = ({p: self.origins_source(p) for p in seg.labels}
                   if self.origins_source is not None else None)
        if not resume:  # (a resumed run's crop is the model's: checked in the worker)
            multiple = preset_config(s.preset, 1).size_multiple
            if s.crop % multiple:
                raise InputError(f"crop {s.crop} px: must be a multiple of {multiple} for "
                                 f"the {s.preset} preset")
            check_crop(seg.labels, s.crop, origins)
        return seg, s, resolve_device(s.device), origins

    def _on_report(self, item) -> None:
        if isinstance(item, TrainHistory):
            self.loss_plot.set_losses(item.losses)
        else:
            self.loss_plot.append(item.loss)

    def _progress_text(self, text: str) -> str:
        loss = self.loss_plot.losses[-1] if self.loss_plot.losses else float("nan")
        return f"{text} · loss {loss:.4f}"

    def _on_done(self, result: dict) -> None:
        path = result["path"]
        if result["finished"]:
            n = result["step"]
            self.status_label.setText(f"Trained {n} step{'' if n == 1 else 's'}; model saved "
                                      f"to {path}")
        else:
            self.status_label.setText(f"Stopped at step {result['step']} of {result['total']}; "
                                      f"model saved to {path}. Resume continues it.")
        self.model_saved.emit(str(path))

    def _job_ended(self, status: str) -> None:
        self.loss_plot.redraw()

    def _sync(self) -> None:
        running = self.is_running()
        for w in (self.start_button, self.resume_button, self.save_as_button, self.load_button,
                  self.preset_combo, self.steps_spin, self.batch_spin, self.crop_spin,
                  self.device_combo, self.seed_spin, self.checkpoint_spin, self.model_edit):
            w.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _ask_model_path(self) -> bool:
        start = self.model_edit.text() or str((self.default_dir or Path.cwd()) / "model.pt")
        name, _ = QFileDialog.getSaveFileName(self, "Save model as", start,
                                              "Micro3D model (*.pt)")
        if not name:
            return False
        path = Path(name)
        if path.suffix != ".pt":
            path = path.with_name(path.name + ".pt")
        self.model_edit.setText(str(path))
        return True


def spin_box(lo: int, hi: int, tip: str) -> QSpinBox:
    """An integer spin box with a range and a tooltip."""
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setToolTip(tip)
    s.setAccelerated(True)
    return s

"""Train panel: network preset, training time and options, Start / Cancel / Resume, live loss
and fidelity.

It runs what ``micro3d train`` runs, in a worker thread
(:func:`~micro3d_gui.session.training.train_job`, no Qt): the labelled images come from the
Data panel's segmentation (:class:`~micro3d_gui.core.plane_dataset.PlaneDataset`), the
trainer from :func:`~micro3d_gui.core.training.prepare_trainer` (the one training recipe and
check), the fidelity reports from :class:`~micro3d_gui.metrics.fidelity.FidelityMonitor`. The
trainer writes the model atomically to the chosen file every ``checkpoint_every`` steps and
when it stops; Cancel stops it after the current step (the model is saved), Resume continues
that file's run.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar,
                               QPushButton, QVBoxLayout, QWidget)

from ..core.crop import CropChoice
from ..core.device import DEVICES
from ..core.symmetry import APP_WORDS, Symmetry
from ..core.train_config import CROP_MULTIPLE, DEFAULT_PRESET, PRESET_HELP, PRESET_NAMES
from ..errors import InputError
from ..session.training import TrainHistory, TrainSettings, crop_choice, recipe_for, train_job
from . import dialogs
from .fidelity_plot import LossPlot, fidelity_text
from .jobs import Job, JobPanel
from .widgets import spin_box

#: The field of each recipe option a resume may ignore (prepare_trainer's names).
FIELD_LABELS = {"preset": "Preset", "time_budget_s": "Training time", "batch_size": "Batch",
                "crop": "Crop", "seed": "Seed", "checkpoint_every": "Save every",
                "stop_at_floor": "Stop when at the floor"}


def ignored_text(ignored: list[str]) -> str:
    """What a resume says of the fields it ignored ("" when none)."""
    if not ignored:
        return ""
    return ("Resume kept the model's own " +
            ", ".join(FIELD_LABELS.get(name, name) for name in ignored))


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
        #: The material's declared symmetry (the Data panel's; none declared without it).
        self.symmetry_source: Callable[[], Symmetry] | None = None
        #: Folder proposed for a new model file (the project's, when one is open).
        self.default_dir: Path | None = None

        self.preset_combo = QComboBox()
        self.preset_combo.addItems(PRESET_NAMES)
        self.preset_combo.setToolTip(PRESET_HELP[0].upper() + PRESET_HELP[1:])
        self.preset_combo.currentTextChanged.connect(self._show_recipe)
        self.minutes_spin = QDoubleSpinBox()
        self.minutes_spin.setRange(0.1, 100_000)
        self.minutes_spin.setDecimals(1)
        self.minutes_spin.setSuffix(" min")
        self.minutes_spin.setToolTip("How long to train: the learning-rate schedule and the "
                                     "weight averaging are fitted to the steps this allows")
        self.steps_spin = spin_box(0, 10_000_000, "Train exactly this many steps instead of "
                                   "for the training time (0: by time)")
        self.steps_spin.setSpecialValueText("by time")
        self.steps_spin.valueChanged.connect(
            lambda v: self.minutes_spin.setEnabled(v == 0 and not self.is_running()))
        self.batch_spin = spin_box(1, 4096, "Crops per training step")
        self.crop_spin = spin_box(0, 4096, "Side of the square training crops in pixels "
                               f"(a multiple of {CROP_MULTIPLE} suits every preset); auto: "
                               "the recipe's, or the largest the micrographs hold")
        self.crop_spin.setSingleStep(CROP_MULTIPLE)
        self.crop_spin.setSpecialValueText("auto")
        #: The crop a run will train with, and why (or why the images cannot train).
        self.crop_note = QLabel("")
        self.crop_note.setWordWrap(True)
        self._crop_data = None  # the micrographs the note is about (see show_crop)
        self._ignored = ""  # the fields the running resume ignored (ignored_text)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setToolTip("auto: a CUDA or Apple MPS GPU when present, else the CPU")
        self.seed_spin = spin_box(0, 2**31 - 1, "Seed of the weights and of every random draw")
        self.checkpoint_spin = spin_box(1, 10_000_000, "Save the model every N steps")
        self.floor_check = QCheckBox("Stop when at the floor")
        self.floor_check.setToolTip("Stop early once the model's 2D samples differ from the "
                                    "micrographs no more than the micrographs among themselves")
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
        form.addRow("Training time", self.minutes_spin)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Batch", self.batch_spin)
        form.addRow("Crop (px)", self.crop_spin)
        form.addRow("", self.crop_note)
        form.addRow("Device", self.device_combo)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Save every", self.checkpoint_spin)
        form.addRow("", self.floor_check)
        form.addRow("Model", self.model_edit)
        form.addRow("", model_buttons)

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Train a new model (replaces the model file)")
        self.start_button.clicked.connect(lambda: self.start(resume=False))
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue training the model file (up to Steps when "
                                      "given, else to its own end)")
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
        self.fidelity_label = QLabel("")
        self.fidelity_label.setWordWrap(True)
        self.fidelity_label.setToolTip("S2 and lineal-path errors of the model's 2D samples "
                                       "against the micrographs per plane, next to the floor: "
                                       "the error between two halves of the same plane's "
                                       "micrographs")
        self.loss_plot = LossPlot()

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.fidelity_label)
        layout.addWidget(self.loss_plot, 1)
        self.set_settings(TrainSettings())
        self._sync()
        self.crop_spin.valueChanged.connect(self._update_crop_note)

    # -- settings -------------------------------------------------------------------------
    def settings(self) -> TrainSettings:
        return TrainSettings(
            preset=self.preset_combo.currentText(), minutes=self.minutes_spin.value(),
            steps=self.steps_spin.value(), batch=self.batch_spin.value(),
            crop=self.crop_spin.value(), device=self.device_combo.currentText(),
            seed=self.seed_spin.value(), checkpoint_every=self.checkpoint_spin.value(),
            stop_at_floor=self.floor_check.isChecked(),
            model_path=self.model_edit.text().strip(),
        )

    def set_settings(self, s: TrainSettings | dict) -> None:
        if isinstance(s, dict):
            s = TrainSettings.from_dict(s)
        self.preset_combo.blockSignals(True)  # the fields below are the settings' own
        self.preset_combo.setCurrentText(s.preset)
        self.preset_combo.blockSignals(False)
        self.minutes_spin.setValue(s.minutes)
        self.steps_spin.setValue(s.steps)
        self.batch_spin.setValue(s.batch)
        self.crop_spin.setValue(s.crop)
        self.device_combo.setCurrentText(s.device)
        self.seed_spin.setValue(s.seed)
        self.checkpoint_spin.setValue(s.checkpoint_every)
        self.floor_check.setChecked(s.stop_at_floor)
        self.model_edit.setText(s.model_path)

    def reset(self) -> None:
        """A new project: default fields, no model, no curves, no messages."""
        self.set_settings(TrainSettings())
        self.loss_plot.set_history([], [])
        self.progress_bar.setValue(0)
        self.status_label.setText("Not trained yet")
        self.fidelity_label.setText("")
        self.crop_note.setText("")
        self._crop_data = None

    def _show_recipe(self, preset: str) -> None:
        """A preset brings its recipe's batch, and the crop goes back to auto (the user can
        still change them)."""
        recipe = recipe_for(preset, self.device_combo.currentText())
        self.batch_spin.setValue(recipe.batch_size)
        self.crop_spin.setValue(0)
        self._update_crop_note()

    def set_model_path(self, path: str | os.PathLike) -> None:
        self.model_edit.setText(str(path))

    def show_model(self, info: dict, bundled: bool = False) -> None:
        """Show a loaded model's recipe (preset, batch, crop, length) in the fields.

        The Model field (where training writes) becomes the model's file, so that Resume
        continues it, unless it is ``bundled`` with the app: that one is never written to;
        the field then keeps its own path, or a new file in :attr:`default_dir`. Ignored
        while a training run is going: the fields and the plot are that run's.
        """
        if self.is_running():  # e.g. the summary of the previous run's model arrives late
            return
        cfg = info.get("train_config") or {}
        self.preset_combo.blockSignals(True)
        self.preset_combo.setCurrentText(info.get("preset", DEFAULT_PRESET))
        self.preset_combo.blockSignals(False)
        self.batch_spin.setValue(int(cfg.get("batch_size", self.batch_spin.value())))
        self.crop_spin.setValue(int(info.get("crop") or self.crop_spin.value()))
        if bundled:
            if not self.model_edit.text() or Path(self.model_edit.text()) == Path(info["path"]):
                self.model_edit.setText(str(self.new_model_path()))
        else:
            self.model_edit.setText(str(info["path"]))
        steps = info.get("step", 0)
        minutes = info.get("train_seconds", 0) / 60
        self.status_label.setText(
            f"Loaded model: {info.get('preset', 'custom')} network, trained {steps} "
            f"step{'s' if steps != 1 else ''}" + (f" in {minutes:.0f} min" if minutes else "")
            + f" (batch {cfg.get('batch_size', '?')}, crop {info.get('crop', '?')} px)")
        self.loss_plot.set_history(info.get("losses", []), info.get("fidelity", []))

    def new_model_path(self) -> Path:
        """A model file that does not exist yet, in :attr:`default_dir` (or the home
        folder): ``model.pt``, ``model_2.pt``, ..."""
        folder = self.default_dir or Path.home()
        path, n = folder / "model.pt", 1
        while path.exists():
            n += 1
            path = folder / f"model_{n}.pt"
        return path

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
        segmentation, settings, device, origins, symmetry = job_args
        self._ignored = ""
        self.loss_plot.set_losses([])
        self.progress_bar.setValue(0)
        self.status_label.setText(f"{'Resuming' if resume else 'Starting'} on {device}...")
        job = Job(train_job, segmentation, settings, device, resume, origins, symmetry,
                  name="Training",
                  progress_of=lambda p: (p.step, p.total) if hasattr(p, "step") else None,
                  error_parent=self, parent=self)
        return self._launch(job, self._on_report)

    def cancel(self) -> None:
        self._cancel("Stopping after the current step...")

    def _prepare(self, resume: bool):
        from ..core.device import resolve_device

        s = self.settings()
        if not s.model_path:
            if not self._ask_model_path():
                return None
            s = self.settings()
        path = Path(s.model_path)
        if resume and not path.is_file():
            raise InputError(f"{path}: no such model file to resume; train one with Start")
        seg = self.data_source() if self.data_source is not None else None
        if seg is None:
            raise InputError("no training images: add labelled or segmented micrographs of "
                             "at least one plane in the Data panel")
        symmetry = self.symmetry_source() if self.symmetry_source is not None else Symmetry()
        if not resume:  # (a resumed run may keep the model's own: checked in the worker)
            # a plane with neither micrographs nor a declared stand-in: refused before a start
            symmetry.resolve(seg.labels, APP_WORDS)
        if not resume and path.exists():
            if not dialogs.ask(self, "Replace model?",
                               f"{path} exists. Train a new model and replace it?\n"
                               "(Resume continues its training instead.)"):
                return None
        origins = ({p: self.origins_source(p) for p in seg.labels}
                   if self.origins_source is not None else None)
        device = resolve_device(s.device)
        if not resume:  # (a resumed run's crop is the model's: checked in the worker)
            self._show_crop_choice(crop_choice(seg.labels, s, device, origins))
        return seg, s, device, origins, symmetry

    def show_crop(self) -> None:
        """Take the Data panel's micrographs (call it when the Data panel has segmented them:
        they are then at hand, not computed here) and say in :attr:`crop_note` which crop
        Start would train with and why, or why they cannot train with it."""
        try:
            self._crop_data = self.data_source() if self.data_source is not None else None
        except InputError:  # (the Data panel shows why)
            self._crop_data = None
        self._update_crop_note()

    def _update_crop_note(self) -> None:
        """:attr:`crop_note` for the micrographs :meth:`show_crop` took and the fields now."""
        from ..core.device import resolve_device

        seg = self._crop_data
        if seg is None:
            self.crop_note.setText("")
            return
        origins = ({p: self.origins_source(p) for p in seg.labels}
                   if self.origins_source is not None else None)
        try:
            s = self.settings()
            self._show_crop_choice(crop_choice(seg.labels, s, resolve_device(s.device),
                                               origins))
        except (InputError, ValueError) as exc:
            self.crop_note.setText(dialogs.error_text(exc))

    def _show_crop_choice(self, choice: CropChoice) -> None:
        auto = self.crop_spin.value() == 0
        self.crop_note.setText(("" if not auto else choice.note or
                                f"crop {choice.crop} px: the recipe's"))

    def _on_report(self, item) -> None:
        if isinstance(item, TrainHistory):
            self.loss_plot.set_history(item.losses, item.fidelity)
            self._ignored = ignored_text(item.ignored)
        else:
            self.loss_plot.append(item.loss, item.fidelity)
            if item.fidelity is not None:
                self.fidelity_label.setText(fidelity_text(item.fidelity))

    def _progress_text(self, text: str) -> str:
        loss = self.loss_plot.losses[-1] if self.loss_plot.losses else float("nan")
        return f"{text} · loss {loss:.4f}" + (f" · {self._ignored}" if self._ignored else "")

    def _on_done(self, result: dict) -> None:
        path = result["path"]
        ignored = ignored_text(result.get("ignored", []))
        ignored = f" ({ignored})" if ignored else ""
        if result.get("nothing_left"):
            n = result["step"]
            self.progress_bar.setValue(1000)
            self.status_label.setText(f"Nothing to resume: {Path(path).name} has trained "
                                      f"all {n} steps of its run; the file is unchanged"
                                      + ignored)
            # after this run has ended (the next one may start from the question)
            QTimer.singleShot(0, lambda: self._offer_more_time(result))
            return
        if result["finished"]:
            n = result["step"]
            self.status_label.setText(f"Trained {n} step{'' if n == 1 else 's'}; model saved "
                                      f"to {path}" + ignored)
        else:
            self.status_label.setText(f"Stopped at step {result['step']} of {result['total']}; "
                                      f"model saved to {path}{ignored}. Resume continues it.")
        self.model_saved.emit(str(path))

    def _offer_more_time(self, result: dict) -> None:
        """Resume found nothing left to train: offer the Training time field's minutes
        more, as steps at the model's own pace."""
        from ..core.training import steps_for_more_time

        minutes = self.minutes_spin.value()
        more = steps_for_more_time(result["step"], result["train_seconds"], 60 * minutes)
        if not dialogs.ask(self, "Train longer?",
                           f"{Path(result['path']).name} has trained all {result['step']} "
                           "steps of its run, so Resume has nothing to do (nothing was "
                           f"trained or written).\n\nTrain {more} more steps (about "
                           f"{minutes:g} min at its pace so far)?"):
            return
        self.steps_spin.setValue(result["step"] + more)
        self.start(resume=True)

    def _job_ended(self, status: str) -> None:
        self.loss_plot.redraw()

    def _sync(self) -> None:
        running = self.is_running()
        for w in (self.start_button, self.resume_button, self.save_as_button, self.load_button,
                  self.preset_combo, self.steps_spin, self.batch_spin, self.crop_spin,
                  self.device_combo, self.seed_spin, self.checkpoint_spin, self.floor_check,
                  self.model_edit):
            w.setEnabled(not running)
        self.minutes_spin.setEnabled(not running and self.steps_spin.value() == 0)
        self.cancel_button.setEnabled(running)

    def _ask_model_path(self) -> bool:
        start = self.model_edit.text() or str(self.new_model_path())
        name, _ = QFileDialog.getSaveFileName(self, "Save model as", start,
                                              "Micro3D model (*.pt)")
        if not name:
            return False
        path = Path(name)
        if path.suffix != ".pt":
            path = path.with_name(path.name + ".pt")
        self.model_edit.setText(str(path))
        return True


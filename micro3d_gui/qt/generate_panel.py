"""Generate panel: a model, a box, sampler settings; Generate / Cancel; live preview; Analyse.

It mirrors ``micro3d sample``; the logic is the Qt-free session layer's
(:mod:`micro3d_gui.session.generation`): the fields are a :mod:`~micro3d_gui.core.recipe`
recipe with overrides (:meth:`GenerateSettings.to_recipe`; each field's range and tooltip
are the recipe field's), and its :func:`sample_job` runs in a worker thread and yields a
:class:`SamplePreview` per reverse step: volume 0's current x0 estimate as labels.
Only the latest estimate matters, so the panel forwards at most one every
``preview_interval_ms`` (250 ms: <= 4 viewport updates a second; 0: every one; superqt's
``qthrottled``) and drops the rest. The worker then self-checks the volumes against the
micrographs (:func:`~micro3d_gui.metrics.checked_sample.sample_checked`, as ``micro3d
sample`` does), so the panel hands on the volumes and their report together.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from ..core.device import DEVICES
from ..core.recipe import RECIPES, get_recipe, sampling_settings
from ..errors import InputError
from ..session.generation import (PANEL_FIELDS, GenerateSettings, SamplePreview,
                                  check_kept_sections, parse_fractions, parse_keep, sample_job)
from . import dialogs
from .drops import local_paths
from .jobs import Job, JobPanel, throttled
from .widgets import spin_box as _spin

RANDOM_SEED = -1  # the seed spin box's "random" value
ALL_STEPS = 0  # the sampling-steps spin box's "all (T)" value (None in the settings)


def _setting_spin(name: str) -> QSpinBox | QDoubleSpinBox:
    """A spin box for recipe field ``name``: its range, step and help from the field's
    :class:`~micro3d_gui.core.diffusion.settings.Setting` (the one definition)."""
    spec = sampling_settings()[name]
    low, high = spec.panel or (spec.low, spec.high)
    box = _spin(int(low), int(high), "") if spec.kind is int else QDoubleSpinBox()
    if spec.kind is float:
        box.setRange(low, high)
        box.setSingleStep(spec.step)
    box.setToolTip(spec.help[0].upper() + spec.help[1:])
    return box


class GeneratePanel(JobPanel):
    """Signals: ``preview(labels, num_phases)`` (throttled), ``volumes_ready(list, k)``,
    then ``self_checked(report)`` (the volumes' self-check, :mod:`~micro3d_gui.metrics.
    selfcheck`), ``analyse_requested(properties: bool)``, ``busy(bool)``.

    ``reference_source()`` (set by the main window) returns the project's segmented
    micrographs (``labels``, ``num_phases``) or None: the self-check's reference when
    there are some, else the model's own.
    """

    preview = Signal(object, int)
    volumes_ready = Signal(list, int)
    self_checked = Signal(object)
    analyse_requested = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.reference_source: Callable[[], object] | None = None
        #: Previews received from the worker / forwarded to the viewport (tests read them).
        self.previews_received = 0
        self.previews_shown = 0
        self.preview_interval_ms = 250

        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("trained model (.pt)")
        self.browse_button = QPushButton("Browse...")
        self.browse_button.clicked.connect(self._ask_model)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_edit, 1)
        model_row.addWidget(self.browse_button)
        self.model_info = QLabel("")
        self.model_info.setWordWrap(True)

        self.shape_spins = []
        box_row = QHBoxLayout()
        for axis in ("Z", "Y", "X"):
            s = _spin(1, 4096, f"Voxels along {axis.lower()}")
            box_row.addWidget(QLabel(axis))
            box_row.addWidget(s, 1)
            self.shape_spins.append(s)
        self.count_spin = _spin(1, 1000, "Number of volumes sampled together")
        self.recipe_combo = QComboBox()
        self.recipe_combo.addItems(list(RECIPES))
        self.recipe_combo.setToolTip("Named sampling recipe; choosing one sets the fields "
                                     "below, which then override it")
        self.recipe_combo.textActivated.connect(self._apply_recipe)
        self.steps_spin = _setting_spin("sampling_steps")
        self.steps_spin.setMinimum(ALL_STEPS)
        self.steps_spin.setSpecialValueText("all (T)")
        self.harmonize_spin = _setting_spin("harmonize")
        self.gamma_spin = _setting_spin("gamma")
        self.guidance_spin = _setting_spin("guidance")
        self.fraction_guidance_spin = _setting_spin("fraction_guidance")
        #: The spin box of each recipe field the panel shows.
        self.recipe_spins = dict(zip(PANEL_FIELDS, (
            self.steps_spin, self.harmonize_spin, self.gamma_spin, self.guidance_spin,
            self.fraction_guidance_spin)))
        self.periodic_check = QCheckBox("Periodic (tileable) volume")
        self.seed_spin = _spin(RANDOM_SEED, 2**31 - 1, "Seed of the initial noise")
        self.seed_spin.setSpecialValueText("random")
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setToolTip("auto: a CUDA or Apple MPS GPU when present, else the CPU")
        self.fractions_edit = QLineEdit()
        self.fractions_edit.setPlaceholderText("the micrographs'")
        self.fractions_edit.setToolTip("Target phase fractions of phases 0, 1, ... (sum 1), "
                                       "e.g. 0.6 0.4; empty: the micrographs'")
        self.keep_edit = QLineEdit()
        self.keep_edit.setPlaceholderText("none")
        self.keep_edit.setToolTip("Measured sections each volume holds exactly: PLANE INDEX "
                                  "IMAGE, separated by ';' (e.g. xy 0 face.png); drop an "
                                  "image here to add it at xy 0")
        self.keep_edit.setAcceptDrops(True)
        self.keep_edit.dragEnterEvent = self._keep_drag_enter
        self.keep_edit.dropEvent = self._keep_drop

        form = QFormLayout()
        for label, field in (("Model", model_row), ("", self.model_info),
                             ("Box (voxels)", box_row), ("Volumes", self.count_spin),
                             ("Recipe", self.recipe_combo),
                             ("Sampling steps", self.steps_spin), ("n_h", self.harmonize_spin),
                             ("gamma", self.gamma_spin), ("Guidance w", self.guidance_spin),
                             ("Fraction guidance", self.fraction_guidance_spin),
                             ("", self.periodic_check), ("Seed", self.seed_spin),
                             ("Device", self.device_combo), ("Fractions", self.fractions_edit),
                             ("Keep sections", self.keep_edit)):
            form.addRow(label, field)

        self.start_button = QPushButton("Generate")
        self.start_button.setToolTip("Sample the volumes with this model; the 3D view shows "
                                     "volume 0 forming (Ctrl+G)")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)

        self.properties_check = QCheckBox("with properties")
        self.properties_check.setToolTip("Also diffusivity and elastic / thermal constants "
                                         "(slower)")
        self.analyse_button = QPushButton("Analyse")
        self.analyse_button.setToolTip("Compare the generated volumes with the micrographs "
                                       "(Analysis panel)")
        self.analyse_button.clicked.connect(
            lambda: self.analyse_requested.emit(self.properties_check.isChecked()))
        analyse_row = QHBoxLayout()
        analyse_row.addWidget(self.analyse_button)
        analyse_row.addWidget(self.properties_check)
        analyse_row.addStretch(1)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addLayout(analyse_row)
        layout.addStretch(1)
        self.set_settings(GenerateSettings())
        self.set_has_volumes(False)
        self._sync()

    # -- settings -------------------------------------------------------------------------
    def settings(self) -> GenerateSettings:
        """The fields as plain data; InputError when the fractions or kept sections do not
        parse."""
        seed = self.seed_spin.value()
        recipe = {n: spin.value() for n, spin in self.recipe_spins.items()}
        if recipe["sampling_steps"] == ALL_STEPS:
            recipe["sampling_steps"] = None
        return GenerateSettings(
            model_path=self._model_file(),
            shape=tuple(s.value() for s in self.shape_spins),
            count=self.count_spin.value(), recipe=self.recipe_combo.currentText(), **recipe,
            periodic=self.periodic_check.isChecked(),
            seed=None if seed == RANDOM_SEED else seed, device=self.device_combo.currentText(),
            fractions=parse_fractions(self.fractions_edit.text()),
            keep=parse_keep(self.keep_edit.text()),
        )

    def set_settings(self, s: GenerateSettings | dict) -> None:
        s = GenerateSettings.from_dict(s) if isinstance(s, dict) else s
        self._model_path = self._model_display = s.model_path
        self.model_edit.setText(s.model_path)
        for spin, n in zip(self.shape_spins, s.shape):
            spin.setValue(int(n))
        self.recipe_combo.setCurrentText(s.recipe)
        self.count_spin.setValue(s.count)
        self._set_recipe_fields(s)
        self.periodic_check.setChecked(s.periodic)
        self.seed_spin.setValue(RANDOM_SEED if s.seed is None else s.seed)
        self.device_combo.setCurrentText(s.device)
        self.fractions_edit.setText("" if s.fractions is None else
                                    " ".join(f"{f:g}" for f in s.fractions))
        self.keep_edit.setText("; ".join(f"{p} {i} {path}" for p, i, path in s.keep))

    def reset(self) -> None:
        """A new project: default fields, no model, no messages."""
        self.set_settings(GenerateSettings())
        self.set_model("", "")
        self.model_edit.setToolTip("")
        self.progress_bar.setValue(0)
        self.status_label.setText("")
        self.set_has_volumes(False)

    def _apply_recipe(self, name: str) -> None:
        """Set the sampler fields to recipe ``name``'s."""
        self._set_recipe_fields(GenerateSettings.from_recipe(name))

    def _set_recipe_fields(self, s: GenerateSettings) -> None:
        """The recipe fields' spin boxes to ``s``'s values (steps None: "all (T)")."""
        self._show_harmonized_part(s.recipe)
        for name, spin in self.recipe_spins.items():
            value = getattr(s, name)
            spin.setValue(ALL_STEPS if value is None else value)

    def _show_harmonized_part(self, name: str) -> None:
        """Say beside n_h which of the steps harmonize, when the recipe harmonizes only
        some, and when its rounds take the planes in turn (the fields are otherwise
        ``fast``'s for ``connected``); beside the steps, how many are put to the planes'
        vote (``separated``)."""
        sampler = get_recipe(name).sampler
        part = sampler.harmonize_fraction
        where = "last" if sampler.harmonize_late else "first"
        suffix = "" if part == 1.0 else f"  on the {where} {part * 100:.0f} %"
        if sampler.harmonize_planes == "cycle":
            suffix += ", planes in turn"
        self.harmonize_spin.setSuffix(suffix)
        self.steps_spin.setSuffix(
            f", the first {sampler.vote_steps} voted" if sampler.vote_steps else "")

    def _keep_drag_enter(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def _keep_drop(self, event) -> None:
        for path in local_paths(event.mimeData()):
            self.add_kept_section("xy", 0, str(path))
        event.acceptProposedAction()

    def add_kept_section(self, plane: str, index: int, path: str) -> bool:
        """Append ``PLANE INDEX PATH`` to the kept sections (a section at a plane and index
        already listed is replaced: a volume holds one image there). A file that is not a
        readable image is refused at once, with a message naming it; returns whether kept."""
        from ..io.images import read_images

        try:
            read_images(Path(path))
        except InputError as exc:
            dialogs.show_error(self, "Cannot keep this section", dialogs.error_text(exc))
            return False
        entries = [t.strip() for t in self.keep_edit.text().split(";") if t.strip()]
        entries = [e for e in entries if e.split()[:2] != [plane, str(index)]]
        self.keep_edit.setText("; ".join(entries + [f"{plane} {index} {path}"]))
        return True

    @property
    def preview_interval_ms(self) -> int:
        return self._preview_interval_ms

    @preview_interval_ms.setter
    def preview_interval_ms(self, ms: int) -> None:
        self._preview_interval_ms = int(ms)
        self._show_preview = throttled(self._emit_preview, self._preview_interval_ms, self)

    def set_model(self, path: str | os.PathLike, info: str = "", display: str | None = None
                  ) -> None:
        """Use this model file (the one just trained or loaded); ``info`` describes it;
        ``display``: how the field names it (a path relative to the project, the bundled
        model's name), the full path then in its tooltip."""
        self._model_path, self._model_display = str(path), display or str(path)
        self.model_edit.setText(self._model_display)
        self.model_edit.setCursorPosition(0)  # the start of a long name shows
        self.model_edit.setToolTip(f"Trained model file: {path}")
        self.model_info.setText(info)

    def _model_file(self) -> str:
        """The model path behind the field (its display name stands for the full path)."""
        text = self.model_edit.text().strip()
        return self._model_path if text and text == self._model_display else text

    def set_has_volumes(self, has: bool) -> None:
        self.analyse_button.setEnabled(has)

    # -- running --------------------------------------------------------------------------
    def start(self) -> bool:
        from ..core.device import resolve_device

        if self.is_running():
            return False
        try:
            s = self.settings()
            s.to_recipe()
            if not s.model_path:
                raise InputError("no model: train one in the Train panel or choose a model "
                                 "file (.pt) with Browse...")
            if not Path(s.model_path).is_file():
                raise InputError(f"{s.model_path}: no such model file; train one or choose "
                                 "another with Browse...")
            if s.keep:  # read the sections now: a bad one is refused before any work
                check_kept_sections(s)
            device = resolve_device(s.device)
        except (InputError, ValueError) as exc:
            dialogs.show_error(self, "Cannot generate", dialogs.error_text(exc))
            return False
        self.previews_received = self.previews_shown = 0
        self.progress_bar.setValue(0)
        z, y, x = s.shape
        self.status_label.setText(f"Sampling {s.count} volume(s) of {z} x {y} x {x} on "
                                  f"{device}...")
        seg = self._micrographs()
        # progress in network calls: a harmonized step costs n_h + 1 plain ones
        job = Job(sample_job, s, device, None if seg is None else seg.labels,
                  None if seg is None else seg.num_phases, name="Generation",
                  unit="network call",
                  progress_of=lambda p: (p.calls, p.total_calls), error_parent=self,
                  threads_apart=True, parent=self)  # as micro3d sample
        return self._launch(job, self._on_preview)

    def _micrographs(self):
        """The project's segmented micrographs for the self-check, or None (none, or they
        do not segment with the current settings: the model's own are used then)."""
        if self.reference_source is None:
            return None
        try:
            return self.reference_source()
        except InputError:
            return None

    def cancel(self) -> None:
        self._cancel("Cancelling...")

    def _on_preview(self, item: SamplePreview) -> None:
        self.previews_received += 1
        # The first estimate shows at once, later ones at most every interval (the latest).
        self._show_preview(item)

    def _emit_preview(self, item: SamplePreview) -> None:
        self.previews_shown += 1
        self.preview.emit(item.labels, item.num_phases)

    def _on_done(self, result) -> None:
        volumes, k, report = result
        self._show_preview.cancel()  # the final volumes replace any estimate not yet shown
        vols = [np.ascontiguousarray(v) for v in volumes]
        self.status_label.setText(f"Generated {len(vols)} volume{'' if len(vols) == 1 else 's'}")
        self.volumes_ready.emit(vols, k)
        self.self_checked.emit(report)

    def _job_ended(self, status: str) -> None:
        self._show_preview.cancel()

    def _sync(self) -> None:
        running = self.is_running()
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.browse_button.setEnabled(not running)

    def _ask_model(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Choose a model", self._model_file(),
                                              "Micro3D model (*.pt);;All files (*)")
        if name:
            self.set_model(name)


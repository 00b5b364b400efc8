"""Generate panel: a model, a box, sampler settings; Generate / Cancel; live preview; Analyse.

It mirrors ``micro3d sample``: the fields are a :mod:`~micro3d_gui.core.recipe` recipe with
overrides (:meth:`GenerateSettings.to_recipe`), and
:func:`~micro3d_gui.core.recipe.sample_progressive` runs in a worker thread and yields a :class:`~micro3d_gui.core.diffusion.sampler.SampleStep` per
reverse step; the worker decodes volume 0's current x0 estimate to labels and hands it on.
Only the latest estimate matters, so the panel forwards at most one every
``preview_interval_ms`` (250 ms: <= 4 viewport updates a second; 0: every one; superqt's
``qthrottled``) and drops the rest. The worker then self-checks the volumes against the
micrographs (:func:`~micro3d_gui.metrics.checked_sample.sample_checked`, as ``micro3d
sample`` does), so the panel hands on the volumes and their report together.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from ..core.recipe import DEFAULT_RECIPE, RECIPES, Recipe, get_recipe
from ..errors import InputError
from . import dialogs
from .drops import local_paths
from .jobs import Job, JobPanel, throttled
from .train_panel import DEVICES, spin_box as _spin

RANDOM_SEED = -1  # the seed spin box's "random" value


@dataclass(frozen=True)
class GenerateSettings:
    """The panel's fields (plain data for projects). Box is ``(Z, Y, X)`` voxels.

    ``recipe`` names a :mod:`~micro3d_gui.core.recipe` recipe; the sampler fields default
    to the default recipe's (``fast``) and override it (:meth:`to_recipe`), as the flags of
    ``micro3d sample`` do. ``sampling_steps`` 0 = all T of the model. ``fractions``: target
    phase fractions (None: the micrographs'); ``keep``: measured sections
    ``(plane, index, image path)`` that each volume holds.
    """

    model_path: str = ""
    shape: tuple[int, int, int] = (64, 64, 64)
    count: int = 1
    recipe: str = DEFAULT_RECIPE
    sampling_steps: int = get_recipe(DEFAULT_RECIPE).sampling_steps or 0
    harmonize: int = get_recipe(DEFAULT_RECIPE).sampler.harmonize
    gamma: float = get_recipe(DEFAULT_RECIPE).sampler.gamma
    guidance: float = get_recipe(DEFAULT_RECIPE).sampler.guidance
    fraction_guidance: float = get_recipe(DEFAULT_RECIPE).sampler.fraction_guidance
    periodic: bool = False
    seed: int | None = None
    device: str = "auto"
    fractions: tuple[float, ...] | None = None
    keep: tuple[tuple[str, int, str], ...] = ()

    @classmethod
    def from_dict(cls, d: dict) -> "GenerateSettings":
        names = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        if "shape" in d:
            d["shape"] = tuple(int(v) for v in d["shape"])
        if d.get("fractions") is not None:
            d["fractions"] = tuple(float(v) for v in d["fractions"])
        if "keep" in d:
            d["keep"] = tuple((str(p), int(i), str(path)) for p, i, path in d["keep"])
        return cls(**d)

    @classmethod
    def from_recipe(cls, name: str, **others) -> "GenerateSettings":
        """The panel's fields for recipe ``name`` (``others``: the non-sampler fields)."""
        r = get_recipe(name)
        return cls(recipe=name, sampling_steps=r.sampling_steps or 0,
                   harmonize=r.sampler.harmonize, gamma=r.sampler.gamma,
                   guidance=r.sampler.guidance,
                   fraction_guidance=r.sampler.fraction_guidance, **others)

    def to_recipe(self) -> Recipe:
        """The named recipe with this panel's fields over it (InputError if bad)."""
        r = get_recipe(self.recipe).replace(harmonize=self.harmonize, gamma=self.gamma,
                                            guidance=self.guidance,
                                            fraction_guidance=self.fraction_guidance)
        return replace(r, sampling_steps=self.sampling_steps or None)


@dataclass
class SamplePreview:
    """One reverse step's estimate of volume 0, decoded: ``labels [Z, Y, X]`` uint8;
    ``calls`` of ``total_calls`` network calls done (what the progress counts)."""

    step: int
    total: int
    plane: str
    labels: np.ndarray
    num_phases: int
    calls: int
    total_calls: int


def kept_sections(settings: GenerateSettings, num_phases: int):
    """The settings' ``keep`` entries, their images read -> KeptSection list."""
    from ..core.diffusion.sampler import KeptSection
    from ..preprocess.labels import read_section_labels

    return [KeptSection(plane, int(index), read_section_labels(path, num_phases))
            for plane, index, path in settings.keep]


def check_kept_sections(settings: GenerateSettings) -> None:
    """Read the kept sections' images and check them against the model and the box
    (InputError naming the file or section and the fix), as the sampler would."""
    from ..core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(settings.model_path)
    sections = kept_sections(settings, int(ckpt["num_phases"]))
    settings.to_recipe().check(ckpt, settings.shape, settings.fractions, sections)


def sample_job(settings: GenerateSettings, device,
               micrographs: Mapping[str, Sequence[np.ndarray]] | None = None,
               micrograph_phases: int | None = None, *, should_stop: Callable[[], bool]):
    """Worker body (no Qt): yields a :class:`SamplePreview` per step, then self-checks the
    volumes against ``micrographs`` (labels per plane with ``micrograph_phases`` phases:
    the project's, segmented as for training), else the micrographs the model keeps
    (:func:`~micro3d_gui.metrics.checked_sample.sample_checked`, as ``micro3d sample``).
    Returns ``(volumes [N, Z, Y, X] uint8, num_phases, self-check report)``."""
    from ..core.checkpoint import load_checkpoint
    from ..core.encoding import decode_preview
    from ..metrics.checked_sample import sample_checked

    recipe = settings.to_recipe()
    ckpt = load_checkpoint(settings.model_path)
    k = int(ckpt["num_phases"])
    steps = sample_checked(ckpt, recipe, settings.shape, settings.count,
                           micrographs=micrographs, micrograph_phases=micrograph_phases,
                           fractions=settings.fractions, keep=kept_sections(settings, k),
                           periodic=settings.periodic, seed=settings.seed, device=device,
                           should_stop=should_stop)
    while True:
        try:
            step = next(steps)
        except StopIteration as stop:
            result = stop.value
            return result.volumes, result.num_phases, result.self_check
        # Only volume 0 is shown while sampling, coarser for large boxes: decode just that.
        preview = decode_preview(step.x0, k).cpu().numpy()
        yield SamplePreview(step.step, step.total, step.plane, preview, k, step.calls,
                            step.total_calls)


def parse_fractions(text: str) -> tuple[float, ...] | None:
    """'0.6 0.4' (or comma separated) -> (0.6, 0.4); empty -> None; InputError otherwise.
    Whether they fit the model is :meth:`Recipe.check`'s job."""
    parts = text.replace(",", " ").split()
    if not parts:
        return None
    try:
        return tuple(float(p) for p in parts)
    except ValueError:
        raise InputError(f"fractions {text!r}: give numbers, one per phase, e.g. 0.6 0.4") \
            from None


def parse_keep(text: str) -> tuple[tuple[str, int, str], ...]:
    """'xy 0 a.png; xz 5 b.png' -> (('xy', 0, 'a.png'), ('xz', 5, 'b.png'))."""
    out = []
    for entry in (e.strip() for e in text.split(";")):
        if not entry:
            continue
        parts = entry.split(maxsplit=2)
        if len(parts) != 3 or not parts[1].lstrip("-").isdigit():
            raise InputError(f"kept section {entry!r}: write PLANE INDEX IMAGE, e.g. "
                             "xy 0 face.png")
        out.append((parts[0], int(parts[1]), parts[2]))
    return tuple(out)


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
        self.steps_spin = _spin(0, 100_000, "Reverse steps (respaced; the paper: all 1000)")
        self.steps_spin.setSpecialValueText("all (T)")
        self.harmonize_spin = _spin(0, 100, "Harmonizing steps n_h per reverse step "
                                    "(the paper: 4; each costs one more network call)")
        self.gamma_spin = QDoubleSpinBox()
        self.gamma_spin.setRange(0.0, 1.0)
        self.gamma_spin.setSingleStep(0.05)
        self.gamma_spin.setToolTip("Blend of harmonized and plain slices (Eq. 17; paper 0.5)")
        self.guidance_spin = QDoubleSpinBox()
        self.guidance_spin.setRange(0.0, 20.0)
        self.guidance_spin.setSingleStep(0.1)
        self.guidance_spin.setToolTip("Classifier-free guidance w (1 = conditional only)")
        self.fraction_guidance_spin = QDoubleSpinBox()
        self.fraction_guidance_spin.setRange(0.0, 20.0)
        self.fraction_guidance_spin.setSingleStep(0.5)
        self.fraction_guidance_spin.setToolTip(
            "Guidance on the phase fractions w_f (1 = off): holds the volume at the target "
            "fractions by the model itself; each denoising costs one more network call")
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
        return GenerateSettings(
            model_path=self._model_file(),
            shape=tuple(s.value() for s in self.shape_spins),
            count=self.count_spin.value(), recipe=self.recipe_combo.currentText(),
            sampling_steps=self.steps_spin.value(),
            harmonize=self.harmonize_spin.value(), gamma=self.gamma_spin.value(),
            guidance=self.guidance_spin.value(),
            fraction_guidance=self.fraction_guidance_spin.value(),
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
        self._show_harmonized_part(s.recipe)
        for spin, value in ((self.count_spin, s.count), (self.steps_spin, s.sampling_steps),
                            (self.harmonize_spin, s.harmonize), (self.gamma_spin, s.gamma),
                            (self.guidance_spin, s.guidance),
                            (self.fraction_guidance_spin, s.fraction_guidance)):
            spin.setValue(value)
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
        r = GenerateSettings.from_recipe(name)
        self._show_harmonized_part(name)
        self.steps_spin.setValue(r.sampling_steps)
        self.harmonize_spin.setValue(r.harmonize)
        self.gamma_spin.setValue(r.gamma)
        self.guidance_spin.setValue(r.guidance)
        self.fraction_guidance_spin.setValue(r.fraction_guidance)

    def _show_harmonized_part(self, name: str) -> None:
        """Say beside n_h which of the steps harmonize, when the recipe harmonizes only
        some."""
        sampler = get_recipe(name).sampler
        part = sampler.harmonize_fraction
        where = "last" if sampler.harmonize_late else "first"
        self.harmonize_spin.setSuffix("" if part == 1.0 else
                                      f"  on the {where} {part * 100:.0f} %")

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
                  parent=self)
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


"""Generation as a session: the Generate panel's settings, their parsing, the kept sections
and the sampling job, with no Qt (the panel and ``micro3d sample`` call these).

:class:`GenerateSettings` is a :mod:`~micro3d_gui.core.recipe` recipe with the panel's
fields over it (:meth:`GenerateSettings.to_recipe`); :func:`sample_job` runs
:func:`~micro3d_gui.core.recipe.sample_progressive` (through the self-check,
:func:`~micro3d_gui.metrics.checked_sample.sample_checked`) and yields a
:class:`SamplePreview` per reverse step.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from ..core.device import DEFAULT_DEVICE
from ..core.planes import PLANES
from ..core.recipe import DEFAULT_RECIPE, Recipe, get_recipe
from ..errors import InputError

#: The recipe fields the Generate panel shows; the others are the named recipe's.
PANEL_FIELDS = ("sampling_steps", "harmonize", "gamma", "guidance", "fraction_guidance")
_DEFAULT = get_recipe(DEFAULT_RECIPE)


@dataclass(frozen=True)
class GenerateSettings:
    """The panel's fields (plain data for projects). Box is ``(Z, Y, X)`` voxels.

    ``recipe`` names a :mod:`~micro3d_gui.core.recipe` recipe; the :data:`PANEL_FIELDS`
    default to the default recipe's (``fast``) and override it (:meth:`to_recipe`), as the
    flags of ``micro3d sample`` do; ``sampling_steps`` None = all T of the model, as in
    the recipe. ``fractions``: target phase fractions (None: the micrographs'); ``keep``:
    measured sections ``(plane, index, image path)`` that each volume holds.
    """

    model_path: str = ""
    shape: tuple[int, int, int] = (64, 64, 64)
    count: int = 1
    recipe: str = DEFAULT_RECIPE
    sampling_steps: int | None = _DEFAULT.value("sampling_steps")
    harmonize: int = _DEFAULT.value("harmonize")
    gamma: float = _DEFAULT.value("gamma")
    guidance: float = _DEFAULT.value("guidance")
    fraction_guidance: float = _DEFAULT.value("fraction_guidance")
    periodic: bool = False
    seed: int | None = None
    device: str = DEFAULT_DEVICE
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
        if d.get("sampling_steps") == 0:  # project files that wrote 0 for all T still load
            d["sampling_steps"] = None
        return cls(**d)

    @classmethod
    def from_recipe(cls, name: str, **others) -> "GenerateSettings":
        """The panel's fields for recipe ``name`` (``others``: the non-sampler fields)."""
        r = get_recipe(name)
        return cls(recipe=name, **{n: r.value(n) for n in PANEL_FIELDS}, **others)

    def to_recipe(self) -> Recipe:
        """The named recipe with this panel's fields over it (InputError if bad)."""
        values = {n: getattr(self, n) for n in PANEL_FIELDS}
        # Recipe.replace keeps the recipe's value for None; here None is all T.
        return replace(get_recipe(self.recipe).replace(**values),
                       sampling_steps=values["sampling_steps"])


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


def kept_sections(keep: Iterable[tuple[str, int | str, str]], num_phases: int,
                  name: str = "kept section"):
    """``(plane, index, image path)`` triples -> KeptSection list, the images read as
    labels of ``num_phases`` phases. InputError naming the section (as ``name``, e.g. the
    CLI's ``--keep``) for a plane that is none of xy, xz, yz, an index that is not a whole
    number, or an image that cannot be read."""
    from ..core.diffusion.sampler import KeptSection
    from ..preprocess.labels import read_section_labels

    sections = []
    for plane, index, image in keep:
        if plane not in PLANES:
            raise InputError(f"{name} {plane} {index} {image}: the plane must be one of "
                             f"{', '.join(PLANES)}")
        try:
            k = int(index)
        except ValueError:
            raise InputError(f"{name} {plane} {index} {image}: the index must be a whole "
                             "number (the slice along the plane's fixed axis)") from None
        sections.append(KeptSection(plane, k, read_section_labels(image, num_phases)))
    return sections


def check_kept_sections(settings: GenerateSettings) -> None:
    """Read the kept sections' images and check them against the model and the box
    (InputError naming the file or section and the fix), as the sampler would."""
    from ..core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(settings.model_path)
    sections = kept_sections(settings.keep, int(ckpt["num_phases"]))
    settings.to_recipe().check(ckpt, settings.shape, settings.fractions, sections)


def sample_job(settings: GenerateSettings, device,
               micrographs: Mapping[str, Sequence[np.ndarray]] | None = None,
               micrograph_phases: int | None = None, *, should_stop: Callable[[], bool]):
    """Worker body (no Qt): yields a :class:`SamplePreview` per step, then self-checks the
    volumes against ``micrographs`` (labels per plane with ``micrograph_phases`` phases:
    the project's, segmented as for training), else the micrographs the model keeps
    (:func:`~micro3d_gui.metrics.checked_sample.sample_checked`, as ``micro3d sample``),
    and where it finds the phases broken up, or running long, samples again
    (:func:`~micro3d_gui.metrics.checked_sample.second_pass_recipes`), keeping the nearer
    volumes.
    Returns ``(volumes [N, Z, Y, X] uint8, num_phases, self-check report)``."""
    from ..core.checkpoint import load_checkpoint
    from ..core.encoding import decode_preview
    from ..metrics.checked_sample import sample_checked, second_pass_recipes

    recipe = settings.to_recipe()
    ckpt = load_checkpoint(settings.model_path)
    k = int(ckpt["num_phases"])
    steps = sample_checked(ckpt, recipe, settings.shape, settings.count,
                           micrographs=micrographs, micrograph_phases=micrograph_phases,
                           retry=second_pass_recipes(recipe),
                           fractions=settings.fractions, keep=kept_sections(settings.keep, k),
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

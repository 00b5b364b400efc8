"""Sampling recipes: the ONE definition of how the app, ``micro3d sample``, ``micro3d demo``,
the benchmarks and the self-test sample (in the spirit of improved-diffusion's
``model_and_diffusion_defaults()``).

A :class:`Recipe` is the number of respaced reverse steps and a
:class:`~.diffusion.settings.SamplerSettings`; the defaults of both are the ``fast``
recipe's. :data:`RECIPES` names the tested ones; :data:`DEFAULT_RECIPE` is the default
everywhere. :func:`sampling_settings` gives every field's range and help (the CLI's flags,
the Generate panel's fields, the README's table). :meth:`Recipe.replace` overrides fields
by name (the CLI's flags, the Generate panel's fields); :meth:`Recipe.check` refuses what a
checkpoint cannot do, as an :class:`~micro3d_gui.errors.InputError` that names the fix;
:func:`sample_progressive` / :func:`sample` turn a checkpoint and a recipe into volumes
(the layers under them: :mod:`.pipeline`, then the chain in :mod:`.diffusion.sampler`).

    from micro3d_gui.core.recipe import get_recipe, sample
    recipe = get_recipe("fast").replace(harmonize=2)
    labels = sample(ckpt, recipe, (64, 64, 64), count=2, fractions=[0.6, 0.4], seed=0)
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from ..errors import InputError
from .distributed import SINGLE, Distributed
from .diffusion.sampler import KeptSection, SampleStep, run_to_end
from .diffusion.settings import SamplerSettings, Setting, check_settings, setting, settings_of
from .pipeline import pipeline_progressive, uses_fraction_condition
from .planes import PLANES, slice_shape, num_slices


@dataclass(frozen=True)
class Recipe:
    """How to sample: ``sampling_steps`` respaced reverse steps (None: all T of the model)
    and the sampler's settings. The defaults are the ``fast`` recipe, the app's: 12
    respaced steps, the last 60 % of them (7) harmonized with n_h = 8 and no blend
    (gamma 1), and the corrections (x0 projection, anchors; without a blend there is no
    variance to match): 68 network calls. In a chain respaced to a few dozen steps each
    harmonizing round draws a large step of fresh noise, so the Eq. 17 blend mixes two
    different samples and, without its variance matching, fades the latent; fewer, more
    harmonized steps without the blend keep the structure in the model's own chain
    (docs/benchmarks.md, Recipes)."""

    sampling_steps: int | None = setting(
        12, "respaced reverse steps (unset: all T of the model, as the paper's 1000)", low=1,
        flag="--sampling-steps", metavar="S", panel=(1, 100_000), unset="T")
    sampler: SamplerSettings = field(default_factory=SamplerSettings)

    def __post_init__(self):
        check_settings(self)

    def replace(self, **overrides) -> "Recipe":
        """A copy with fields overridden by name: ``sampling_steps`` or any
        :class:`SamplerSettings` field; a value of None keeps the recipe's. An unknown name
        or a bad value raises :class:`InputError`."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        ours = {k: overrides.pop(k) for k in list(overrides) if k == "sampling_steps"}
        unknown = set(overrides) - set(settings_of(SamplerSettings))
        if unknown:
            raise InputError(f"unknown sampling setting(s): {', '.join(sorted(unknown))}")
        try:
            return replace(self, sampler=replace(self.sampler, **overrides), **ours)
        except ValueError as exc:
            raise InputError(str(exc)) from None

    def value(self, name: str):
        """The value of field ``name``: ``sampling_steps`` or a :class:`SamplerSettings`
        field (see :func:`sampling_settings`)."""
        return self.sampling_steps if name == "sampling_steps" else getattr(self.sampler, name)

    def steps_for(self, ckpt: dict) -> int:
        """Reverse steps this recipe takes with ``ckpt`` (its T when ``sampling_steps`` is
        None)."""
        return self.sampling_steps or int(ckpt["schedule_config"]["num_steps"])

    def network_calls(self, ckpt: dict, fractions: Sequence[float] | None = None) -> int:
        """Network evaluations per slice batch of a whole run with ``ckpt`` (and target
        ``fractions``; with none, the micrographs': without either, the fraction guidance
        has nothing to guide)."""
        return self.sampler.network_calls(self.steps_for(ckpt),
                                          uses_fraction_condition(ckpt, fractions))

    def check(self, ckpt: dict, shape: Sequence[int] | None = None,
              fractions: Sequence[float] | None = None,
              keep: Sequence[KeptSection] = ()) -> None:
        """Refuse, before any work, what ``ckpt`` cannot sample: more steps than its T, a
        box side below 1, target ``fractions`` that are not K values >= 0 summing to 1, a
        kept section of the wrong plane, index, size or labels. Raises InputError."""
        total = int(ckpt["schedule_config"]["num_steps"])
        if self.sampling_steps is not None and self.sampling_steps > total:
            raise InputError(f"sampling steps {self.sampling_steps}: must be at most {total}, "
                             "the model's T")
        k = int(ckpt["num_phases"])
        if shape is not None and (len(shape) != 3 or any(int(s) < 1 for s in shape)):
            raise InputError(f"box {tuple(shape)}: needs three positive sides (z, y, x)")
        if fractions is not None:
            f = np.asarray(fractions, dtype=float)
            if f.shape != (k,) or not np.isfinite(f).all() or (f < 0).any() \
                    or abs(f.sum() - 1) > 1e-3:
                raise InputError(f"fractions {' '.join(f'{v:g}' for v in f.ravel())}: give "
                                 f"{k} phase fractions (phases 0..{k - 1}), each >= 0, "
                                 "summing to 1")
        for section in keep:
            _check_section(section, shape, k)
        if shape is not None:
            _check_crossings(keep)


def _check_section(section: KeptSection, shape, k: int) -> None:
    where = f"kept section {section.plane} {section.index}"
    if section.plane not in PLANES:
        raise InputError(f"{where}: the plane must be one of {', '.join(PLANES)}")
    labels = np.asarray(section.labels)
    if labels.ndim != 2:
        raise InputError(f"{where}: needs a 2D label image, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise InputError(f"{where}: holds labels {labels.min()}..{labels.max()}, but the "
                         f"model has {k} phases (0..{k - 1}); segment the image like the "
                         "micrographs")
    if shape is None:
        return
    box = tuple(int(s) for s in shape)
    n = num_slices(section.plane, box)
    if not 0 <= section.index < n:
        raise InputError(f"{where}: the box has {section.plane} slices 0..{n - 1}")
    want = slice_shape(section.plane, box)
    if labels.shape != want:
        rows, cols = ("y", "x") if section.plane == "xy" else (("z", "x") if section.plane == "xz"
                                                               else ("z", "y"))
        raise InputError(f"{where}: the image is {labels.shape[0]}x{labels.shape[1]} but a "
                         f"{section.plane} slice of this box is {want[0]}x{want[1]} "
                         f"({rows} rows, {cols} columns); crop the image or change the box")


def _crossing(a: KeptSection, b: KeptSection):
    """The voxels two sections of a box share, as ``(a's line, b's line, where)``: a line
    of each image (METHOD.md's plane table: xy [y, x], xz [z, x], yz [z, y]); None when
    they share none (parallel planes)."""
    if a.plane == b.plane:
        return (a.labels, b.labels, "the whole slice") if a.index == b.index else None
    if (a.plane, b.plane) in (("xz", "xy"), ("yz", "xy"), ("yz", "xz")):
        crossed = _crossing(b, a)
        return crossed[1], crossed[0], crossed[2]
    la, lb, i, j = np.asarray(a.labels), np.asarray(b.labels), a.index, b.index
    if (a.plane, b.plane) == ("xy", "xz"):  # z = i, y = j: along x
        return la[j, :], lb[i, :], f"the line z = {i}, y = {j}"
    if (a.plane, b.plane) == ("xy", "yz"):  # z = i, x = j: along y
        return la[:, j], lb[i, :], f"the line z = {i}, x = {j}"
    return la[:, j], lb[:, i], f"the line y = {i}, x = {j}"  # xz, yz: along z


def _check_crossings(keep: Sequence[KeptSection]) -> None:
    """Refuse two kept sections that disagree where they cross: no volume holds both."""
    for n, a in enumerate(keep):
        for b in keep[n + 1:]:
            crossed = _crossing(a, b)
            if crossed is None:
                continue
            line_a, line_b, where = crossed
            differ = int(np.count_nonzero(np.asarray(line_a) != np.asarray(line_b)))
            if differ:
                raise InputError(
                    f"kept sections {a.plane} {a.index} and {b.plane} {b.index}: they cross "
                    f"at {where} and disagree on {differ} of its {np.asarray(line_a).size} "
                    "voxels, so no volume can hold both; check their indices and images")


def sampling_settings() -> dict[str, Setting]:
    """Every field of a recipe, ``sampling_steps`` then the :class:`SamplerSettings`
    fields, with its :class:`~.diffusion.settings.Setting` (range and help): what the CLI's
    flags, the Generate panel's fields and the README's table are built from."""
    return {**settings_of(Recipe), **settings_of(SamplerSettings)}


#: Harmonize at every step, as the paper (the ``fast`` default harmonizes the last 60 %).
_EVERY_STEP = dict(harmonize_fraction=1.0, harmonize_late=False)
#: The paper's sampler exactly: T steps, n_h = 4, gamma = 0.5, the plain Eq. 17 blend, no
#: x0 correction and no anchor (METHOD.md Sec. 3).
PAPER = Recipe(None, SamplerSettings(harmonize=4, gamma=0.5, x0_projection="none",
                                     match_variance=False, anchor_fractions=False,
                                     anchor_decoded=False, **_EVERY_STEP))
FAST = Recipe()
#: 70 network calls: 25 steps, n_h = 3 on the last 60 %, the Eq. 17 blend at gamma 0.5
#: (variance-matched). Not the default: without the corrections the blend loses an
#: anisotropic volume's minority phase (docs/benchmarks.md, Recipes).
BLEND = Recipe(25, SamplerSettings(harmonize=3, gamma=0.5, harmonize_fraction=0.6,
                                   harmonize_late=True))
#: 100 network calls: 50 steps, n_h = 1 at every step: more, smaller steps, for low S2
#: errors on near-isotropic materials (docs/benchmarks.md, Recipes).
FINE = Recipe(50, SamplerSettings(harmonize=1, gamma=0.5, **_EVERY_STEP))
#: 68 network calls: ``fast`` with its harmonizing rounds taking the three planes in turn.
#: Eight rounds in one plane at low noise (``fast``) rebuild that plane's slices each on
#: its own and cut what runs across them; in turn, no plane is alone that long. It mends
#: the fibres' lineal path and the matrix's diffusivity across the fibres on every seed
#: measured, and the devdata electrode's minority phase, but smooths the separator and the
#: synthetic electrode past their lineal-path floor (docs/benchmarks.md, Recipes): what
#: the self-check suggests for phases more broken up than the micrographs', not the
#: default.
CONNECTED = Recipe(sampler=SamplerSettings(harmonize_planes="cycle"))
#: The sampler settings of ``separated`` (with its 20 steps): the first 14 steps (the
#: noisy ones) put to the three planes' vote, n_h = 4 on the last 30 % (6 steps): 72
#: network calls.
_VOTE = dict(harmonize=4, harmonize_fraction=0.3, harmonize_late=True, vote_steps=14)
#: Two planes outvote the third where a feature placed by one plane alone would run on
#: across its slices. It cut the synthetic electrode's joined particles back into its
#: diffusivity band on two sampling seeds of five (``fast``: none), but erased minority
#: phases that one plane sees edge-on (tf500, the devdata electrode): what the self-check
#: suggests for phases running longer than the micrographs', not the default
#: (docs/experiments/2026-12-07-plane-vote.md).
SEPARATED = Recipe(20, SamplerSettings(**_VOTE))
#: 50 network calls: 25 steps, n_h = 1 at every step: the cheapest recipe near the floor,
#: for previews and large boxes (docs/benchmarks.md, Recipes).
QUICK = Recipe(25, SamplerSettings(harmonize=1, gamma=0.5, **_EVERY_STEP))
RECIPES: dict[str, Recipe] = {"fast": FAST, "blend": BLEND, "quick": QUICK, "fine": FINE,
                              "connected": CONNECTED, "separated": SEPARATED,
                              "paper": PAPER}
DEFAULT_RECIPE = "fast"


def get_recipe(name: str = DEFAULT_RECIPE) -> Recipe:
    """The named recipe; InputError naming the known ones otherwise."""
    try:
        return RECIPES[name]
    except KeyError:
        raise InputError(f"unknown recipe {name!r}; choose one of "
                         f"{', '.join(RECIPES)}") from None


def with_planes_in_turn(recipe: Recipe) -> Recipe | None:
    """The recipe to sample again with where the self-check finds the phases more broken
    up than the micrographs': ``recipe`` with its harmonizing rounds in the three planes in
    turn (``connected`` for ``fast``). None where its rounds already take the planes in
    turn or it does not harmonize. In turn, the rounds kept the fibres' runs whole where
    ``fast`` broke them, and smoothed the materials whose volumes ``fast`` got right; the
    self-check told the two apart as the 3D truth did (docs/benchmarks.md, Recipes)."""
    s = recipe.sampler
    if s.harmonize_planes == "cycle" or not _harmonizes(recipe):
        return None
    return recipe.replace(harmonize_planes="cycle")


def with_plane_vote(recipe: Recipe) -> Recipe | None:
    """The recipe to sample again with where the self-check finds the phases running
    longer than the micrographs': ``recipe`` with the steps, harmonizing and vote of
    ``separated`` (its other settings kept). None where it already votes or does not
    harmonize."""
    if recipe.sampler.vote_steps or not _harmonizes(recipe):
        return None
    return recipe.replace(sampling_steps=SEPARATED.sampling_steps, harmonize_planes="own",
                          **_VOTE)


def _harmonizes(recipe: Recipe) -> bool:
    s = recipe.sampler
    return s.harmonize > 0 and s.harmonize_fraction > 0


def recipe_to_dict(recipe: Recipe) -> dict:
    """Plain data (for projects and reports)."""
    return asdict(recipe)


def sample_progressive(
    ckpt: dict,
    recipe: Recipe,
    shape: Sequence[int],
    count: int = 1,
    *,
    fractions: Sequence[float] | None = None,
    keep: Sequence[KeptSection] = (),
    periodic: bool = False,
    seed: int | None = None,
    device: torch.device | str = "cpu",
    should_stop: Callable[[], bool] | None = None,
    memory_budget: int | None = None,
    compile_network: bool = False,
    dist: Distributed = SINGLE,
    start: tuple[np.ndarray, int] | None = None,
) -> Iterator[SampleStep]:
    """Check the inputs (:meth:`Recipe.check`), then yield a :class:`SampleStep` per reverse
    step for ``count`` volumes of ``shape = (Z, Y, X)``. ``fractions`` ``[K]``: target phase
    fractions (None: the training micrographs'); ``keep``: measured sections each volume
    holds exactly; ``memory_budget`` (bytes), ``compile_network``, ``dist`` and ``start``
    as in :func:`~.pipeline.pipeline_progressive`."""
    recipe.check(ckpt, shape, fractions, keep)
    return pipeline_progressive(
        ckpt, tuple(int(s) for s in shape), count, recipe.sampling_steps,
        resolved_sampler(recipe, fractions),
        periodic=periodic, seed=seed, device=device, should_stop=should_stop,
        fractions=None if fractions is None else [float(f) for f in fractions], keep=keep,
        memory_budget=memory_budget, compile_network=compile_network, dist=dist, start=start)


def resolved_sampler(recipe: Recipe, fractions: Sequence[float] | None) -> SamplerSettings:
    """The recipe's sampler settings with "auto" decided: the decoded anchor (None) holds
    the decoded fractions exactly for target ``fractions`` the user gave, and is off for
    the micrographs' own (None)."""
    s = recipe.sampler
    if s.anchor_decoded is None:
        s = replace(s, anchor_decoded=fractions is not None)
    return s


def sample(ckpt: dict, recipe: Recipe, shape: Sequence[int], count: int = 1, *,
           callback: Callable[[SampleStep], object] | None = None, **kwargs) -> torch.Tensor:
    """:func:`sample_progressive` to the end: labels ``[N, Z, Y, X]`` uint8 (CPU).
    ``callback(step)`` after every step; a truthy return cancels
    (:class:`~.diffusion.sampler.SamplingCancelled`)."""
    return run_to_end(sample_progressive(ckpt, recipe, shape, count, **kwargs),
                      callback).labels().cpu()

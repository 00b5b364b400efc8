"""The sampler's settings: :class:`SamplerSettings` and, on each of its fields, its
:class:`Setting` (range and help), the one definition that the checks, ``micro3d sample``'s
flags, the Generate panel's fields and the README's table of sampler options read.

The defaults are the ``fast`` recipe's, the default everywhere (:mod:`..recipe` names the
recipes and says why); ``x0_projection="none", match_variance=False,
anchor_fractions=False`` is the paper's sampler exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields


X0_PROJECTIONS = ("none", "clip", "rms")
#: Reverse steps: the paper's ancestral step (sigma^2 = beta), DDIM with noise ``eta``
#: (eta = 1: the posterior variance; 0: deterministic), DPM-Solver++(2M) (second order,
#: deterministic; its history is the previous step's x0 estimate of the whole volume, so it
#: fits the plane rotation: the volume is re-cut in the current plane).
SOLVERS = ("ancestral", "ddim", "dpm2m")
#: Which plane each harmonizing round of a step denoises in (see ``harmonize_planes``).
HARMONIZE_PLANES = ("own", "cycle")


@dataclass(frozen=True)
class Setting:
    """One sampling setting's range and help (a field's ``metadata["setting"]``).

    ``kind``: int, float, bool or str; ``low`` / ``high``: the valid range, both ends
    included (None: unbounded; a float must also be finite); ``choices``: the valid
    strings; ``symbol``: the paper's name (n_h, gamma, ...); ``flag``: the CLI flag;
    ``metavar``: the flag's argument; ``panel``: the Generate panel's spin-box range where
    the valid one is unbounded (a spin box needs two ends), and ``step`` its step;
    ``unset``: what None means, in words (a field that may be None).
    """

    help: str
    kind: type
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    symbol: str = ""
    flag: str = ""
    metavar: str | None = None
    panel: tuple[float, float] | None = None
    step: float = 1.0
    unset: str = ""

    def text(self, value) -> str:
        """A value in words: ``unset`` for None, on / off for a flag, else the value."""
        if value is None:
            return self.unset
        return ("on" if value else "off") if self.kind is bool else f"{value}"

    def range_text(self) -> str:
        """The valid values in words: '0 to 1', '>= 1', 'rms, clip, none', 'on / off'."""
        if self.choices:
            return ", ".join(self.choices)
        if self.kind is bool:
            return "on / off"
        if self.low is not None and self.high is not None:
            return f"{self.low:g} to {self.high:g}"
        if self.low is not None:
            return f">= {self.low:g}"
        return "any number" if self.high is None else f"<= {self.high:g}"

    def check(self, name: str, value) -> None:
        """ValueError naming the field (and its symbol) when ``value`` is outside the
        range; None passes (a field's "auto" or "all")."""
        if value is None:
            return
        what = f"{name.replace('_', ' ')}{f' ({self.symbol})' if self.symbol else ''}"
        if self.choices and value not in self.choices:
            raise ValueError(f"{what} must be one of {', '.join(self.choices)}")
        if self.kind is float and not math.isfinite(value):
            raise ValueError(f"{what} must be a finite number")
        low, high = self.low, self.high
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = (f"between {low:g} and {high:g}" if low is not None and high is not None
                      else self.range_text())
            raise ValueError(f"{what} must be {bounds}, got {value}")


def setting(default, help: str, kind: type | None = None, **spec):
    """A dataclass field with its :class:`Setting` (``kind``: the default's type unless
    given; ``spec``: the Setting's other fields)."""
    return field(default=default, metadata={
        "setting": Setting(help, kind or type(default), **spec)})


def settings_of(cls) -> dict:
    """``{field name: Setting}`` of a dataclass's fields that have one, in field order."""
    return {f.name: f.metadata["setting"] for f in fields(cls) if "setting" in f.metadata}


def check_settings(obj) -> None:
    """Check every field of ``obj`` that has a :class:`Setting` (ValueError)."""
    for name, spec in settings_of(type(obj)).items():
        spec.check(name, getattr(obj, name))


@dataclass(frozen=True)
class SamplerSettings:
    """How to sample, beyond the number of steps (:class:`~..recipe.Recipe`). The defaults
    are the ``fast`` recipe's: n_h = 8 on the last 60 % of the steps, no blend (gamma 1),
    w 1, and the three corrections (x0 projection, anchor, variance-matched blend) on.
    The paper's sampler is n_h 4, gamma 0.5 at every step with the corrections off
    (``core.recipe.PAPER``)."""

    harmonize: int = setting(
        8, "harmonizing steps n_h per harmonized reverse step (each costs one more network "
        "call; the paper: 4)", low=0, symbol="n_h", flag="--harmonize", metavar="NH",
        panel=(0, 100))
    gamma: float = setting(
        1.0, "blend of harmonized and plain slices, Eq. 17 (1 = no blend; the paper: 0.5)",
        low=0.0, high=1.0, flag="--gamma", step=0.05)
    guidance: float = setting(
        1.0, "classifier-free guidance w on the plane (1 = conditional only)", symbol="w",
        flag="--guidance", metavar="W", panel=(0.0, 20.0), step=0.1)
    #: Classifier-free guidance on the fraction condition, w_f (1 = off): each denoising
    #: also asks the network with the slices' fractions unknown (training drops them as it
    #: drops the plane label) and steps away from that answer, as w does for the plane
    #: (see :class:`~.sampler._Eps`). A no-op, at no cost, for a network without the fraction
    #: condition.
    fraction_guidance: float = setting(
        1.0, "classifier-free guidance w_f on the phase-fraction condition (1 = off): the "
        "model itself holds the target fractions; each denoising costs one more network "
        "call", low=0.0, symbol="w_f", flag="--fraction-guidance", metavar="WF",
        panel=(0.0, 20.0), step=0.5)
    #: Most slices in one network call (memory cap); divided internally by the branches
    #: that guidance asks for (:meth:`calls_per_denoise`).
    max_batch: int = setting(256, "most slices per network call (lower it to save memory)",
                             low=1, flag="--max-batch", metavar="SLICES")
    #: Correction of each x0 estimate before the reverse step: see :func:`~.sampler.project_x0`.
    x0_projection: str = setting("rms", "correction of each x0 estimate (none = the paper's)",
                                 choices=X0_PROJECTIONS, flag="--x0-projection")
    #: Rescale the blend of Eq. 17 to the RMS of the unharmonized slices (see :func:`~.sampler._blend`).
    match_variance: bool = setting(
        True, "restore the variance of the Eq. 17 blend (off: the paper's plain blend)",
        flag="--match-variance")
    #: Hold each volume's mean x0 at the training data's (see :func:`~.sampler._anchor_mean`); the pipeline
    #: supplies the target from the checkpoint (``chain_progressive(target_mean=...)``).
    anchor_fractions: bool = setting(
        True, "hold the volume fractions at the target (the micrographs' by default)",
        flag="--anchor")
    #: Also hold the DECODED phase fractions (sign / argmax of x0) at the target, by one
    #: offset per volume and channel (see :func:`~.sampler._anchor_decoded`); needs target fractions.
    #: None (auto): only for target fractions the user gave (the recipe decides, see
    #: ``core.recipe.resolved_sampler``): forcing a box to the micrographs' exact mean
    #: speckles materials whose boxes hold few features (docs/benchmarks.md, Quality per
    #: material).
    anchor_decoded: bool | None = setting(
        None, "hold the decoded (sign / argmax) fractions at the target exactly (auto: "
        "for target fractions given, --fractions)", kind=bool, flag="--decoded-anchor",
        unset="auto")
    #: Reverse step: one of :data:`SOLVERS`.
    solver: str = setting("ancestral", "reverse step", choices=SOLVERS, flag="--solver")
    #: DDIM's noise scale (solver "ddim" only).
    eta: float = setting(1.0, "DDIM noise scale (--solver ddim)", low=0.0, high=1.0,
                         flag="--eta")
    #: Harmonize only in this leading fraction of the reverse steps (the noisy part,
    #: where the planes disagree most); 1 = every step, as the paper.
    harmonize_fraction: float = setting(
        0.6, "harmonize only in this fraction of the steps: the first, noisy ones, or with "
        "--harmonize-late the last", low=0.0, high=1.0, flag="--harmonize-fraction",
        metavar="F")
    #: Take that fraction at the end of the reverse steps (the low-noise part, where the
    #: planes' fine structure is reconciled) instead of at the start.
    harmonize_late: bool = setting(
        True, "take --harmonize-fraction at the end (low noise) instead",
        flag="--harmonize-late")
    #: The last ``consensus_steps`` reverse steps estimate x0 in all three planes from the
    #: same latent and step from their mean (2 more denoisings each): a single plane's last
    #: word decides each voxel slice by slice, with nothing to keep neighbouring slices'
    #: fine structure together across them.
    consensus_steps: int = setting(
        0, "the last N steps step from the mean x0 estimate of all three planes (2 more "
        "network calls each)", low=0, flag="--consensus-steps", metavar="N")
    #: The first ``vote_steps`` reverse steps also estimate x0 in the other two planes
    #: from the same latent (2 more denoisings each); where those two agree on a voxel's
    #: phase and the step's plane does not, the voxel takes their mean estimate. Early on
    #: each plane lays out the coarse structure slice by slice, and what only the stepping
    #: plane places runs on across its slices (the synthetic electrode's particles joined
    #: into worms); two planes against one cut it back, where the mean of all three, or
    #: their product, thinned the phases that one plane sees edge-on
    #: (docs/experiments/2026-12-07-plane-vote.md).
    vote_steps: int = setting(
        0, "the first N steps: a voxel takes the other two planes' x0 estimate where they "
        "agree on its phase against the step's plane (2 more network calls each)", low=0,
        flag="--vote-steps", metavar="N")

    #: ``own``: every harmonizing round of a step denoises in the step's plane (Eq. 16).
    #: ``cycle``: the rounds take the planes in turn, timed so that the last two rounds
    #: are the other two planes and the step's own plane has the last word: n_h rounds in one
    #: plane at low noise rebuild each of its slices on its own and lose the structure
    #: across them (docs/experiments/2026-12-07-harmonize-cycle.md). Same calls.
    harmonize_planes: str = setting(
        "own", "the plane of each harmonizing round: the step's own (the paper's) or the "
        "three in turn, the step's own last", choices=HARMONIZE_PLANES,
        flag="--harmonize-planes")

    def __post_init__(self):
        check_settings(self)

    def harmonize_plane(self, k: int, r: int, nh: int) -> int:
        """The plane index (into ``PLANES``, mod 3) of harmonizing round ``r`` of ``nh``
        in reverse step ``k``, whose own plane is ``k % 3``."""
        if self.harmonize_planes == "own":
            return k % 3
        return (k + r - nh) % 3

    def calls_per_denoise(self, fraction_condition: bool = True) -> int:
        """Network evaluations per denoising of a slice batch: guidance w != 1 adds the
        one without the plane label, w_f != 1 (with a ``fraction_condition``) the one
        without the fractions."""
        return (1 + (self.guidance != 1.0)
                + (fraction_condition and self.fraction_guidance != 1.0))

    def calls_per_step(self, fraction_condition: bool = True) -> int:
        """Network evaluations per slice batch in a harmonized reverse step."""
        return (self.harmonize + 1) * self.calls_per_denoise(fraction_condition)

    def harmonized_steps(self, steps: int) -> int:
        """How many of ``steps`` reverse steps harmonize (the first ones; the last ones
        with ``harmonize_late``)."""
        return int(round(self.harmonize_fraction * steps)) if self.harmonize else 0

    def harmonizes(self, k: int, steps: int) -> bool:
        """Whether reverse step ``k`` (0 = the noisiest) of ``steps`` harmonizes."""
        n = self.harmonized_steps(steps)
        return k >= steps - n if self.harmonize_late else k < n

    @property
    def extra_volume_copies(self) -> int:
        """Full-size latent copies a step holds beyond the memory plan's usual ones: a
        consensus step keeps the volume, the running mean and one other plane's slices
        and estimate; a voting step the volume, the three estimates and one plane's
        slices."""
        return 5 if self.vote_steps else 4 if self.consensus_steps else 0

    def consensus(self, k: int, steps: int) -> bool:
        """Whether reverse step ``k`` of ``steps`` steps from all three planes' x0."""
        return k >= steps - self.consensus_steps

    def votes(self, k: int) -> bool:
        """Whether reverse step ``k`` (0 = the noisiest) puts its x0 to the planes' vote."""
        return k < self.vote_steps

    def step_calls(self, k: int, steps: int, fraction_condition: bool = True) -> int:
        """Network evaluations per slice batch in reverse step ``k`` of ``steps``."""
        return self.calls_per_denoise(fraction_condition) * (
            1 + (self.harmonize if self.harmonizes(k, steps) else 0)
            + 2 * (self.consensus(k, steps) or self.votes(k)))

    def network_calls(self, steps: int, fraction_condition: bool = True) -> int:
        """Network evaluations per slice batch for a whole run of ``steps`` reverse steps
        (``fraction_condition``: whether the network has one, see ``fraction_guidance``)."""
        return sum(self.step_calls(k, steps, fraction_condition) for k in range(steps))


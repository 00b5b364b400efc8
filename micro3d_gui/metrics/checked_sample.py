"""Sample, then self-check: what ``micro3d sample`` and the app's Generate panel both run.

:func:`sample_checked` samples volumes with a recipe (:mod:`micro3d_gui.core.recipe`),
yielding each reverse step for progress and previews, hands the finished volumes to
``on_sampled`` (the CLI writes them there, so they are saved whatever the check does), and
then checks them (:mod:`.selfcheck`) against the project's micrographs when given (the
app's Data panel, segmented as for training), else the micrographs the model keeps
(:func:`~micro3d_gui.core.checkpoint.reference_micrographs`). A model from before the
self-check, with no micrographs given, gets a report that says so. Volumes are
``[N, Z, Y, X]`` uint8 phase labels.
"""
from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..core.checkpoint import checkpoint_symmetry, reference_micrographs
from ..core.diffusion.sampler import SampleStep, SamplingCancelled
from ..core.distributed import SINGLE
from ..core.recipe import (Recipe, recipe_to_dict, sample_progressive, with_plane_vote,
                           with_planes_in_turn)
from ..core.reference import reference_images
from ..core.symmetry import fill_stand_ins
from .selfcheck import (BROKEN_UP, RUNS_LONG, SelfCheckSettings, connectivity_fault,
                        describe_self_check, nearer_floor, no_reference_report, self_check)

#: Where the self-check's reference came from, as the report's ``reference`` says it.
PROJECT_MICROGRAPHS = "the project's micrographs"
MODEL_MICROGRAPHS = "the model's training micrographs"


@dataclass
class CheckedSample:
    """Sampled volumes ``[N, Z, Y, X]`` uint8 and their self-check report (None when the
    check was not asked for)."""

    volumes: np.ndarray
    num_phases: int
    self_check: dict | None


def second_pass_recipes(recipe: Recipe) -> dict[str, Recipe]:
    """``{connectivity fault: recipe}``: what :func:`sample_checked` samples again with
    where the self-check (:func:`~.selfcheck.connectivity_fault`) finds the phases broken
    up (:func:`~micro3d_gui.core.recipe.with_planes_in_turn`) or running long
    (:func:`~micro3d_gui.core.recipe.with_plane_vote`); faults that ``recipe`` already
    answers are left out. What ``micro3d sample``, the app's Generate and the benchmarks
    pass as its ``retry``."""
    found = {BROKEN_UP: with_planes_in_turn(recipe), RUNS_LONG: with_plane_vote(recipe)}
    return {fault: again for fault, again in found.items() if again is not None}


def check_sampled(volumes: np.ndarray | Sequence[np.ndarray], ckpt: dict,
                  micrographs: Mapping[str, Sequence[np.ndarray]] | None = None,
                  micrograph_phases: int | None = None,
                  settings: SelfCheckSettings = SelfCheckSettings()) -> dict:
    """The self-check report of volumes sampled from ``ckpt``.

    Against ``micrographs`` (``{plane: [label images [H, W]]}`` with ``micrograph_phases``
    phases: the project's, segmented as for training) when given and of the model's phase
    count, bounded as a checkpoint keeps them (:func:`~micro3d_gui.core.reference.
    reference_images`); else against the checkpoint's own micrographs; else a report with
    no planes saying that there is no reference. A plane the model declares like another
    (:mod:`~micro3d_gui.core.symmetry`) and without micrographs of its own is checked
    against that plane's. The report's ``reference`` names the
    source; its ``notes`` say why given micrographs were passed over.
    """
    k = int(ckpt["num_phases"])
    notes = []
    reference, source = None, None
    if micrographs and any(len(ims) for ims in micrographs.values()):
        phases = k if micrograph_phases is None else int(micrograph_phases)
        if phases == k:
            # a plane declared like another (the model's symmetry) is checked against it
            reference = fill_stand_ins(reference_images(micrographs),
                                       checkpoint_symmetry(ckpt))
            source = PROJECT_MICROGRAPHS
        else:
            notes.append(f"the project's micrographs have {phases} phases but the model "
                         f"{k}; checked against {MODEL_MICROGRAPHS} instead")
    if reference is None:
        reference, source = reference_micrographs(ckpt), MODEL_MICROGRAPHS
    if reference is None:
        report, source = no_reference_report(settings), None
    else:
        report = self_check(volumes, reference, k, settings)
    report["reference"] = source
    report["notes"] = notes + report["notes"]
    return report


def sample_checked(ckpt: dict, recipe: Recipe, shape: Sequence[int], count: int = 1, *,
                   check: bool = True,
                   micrographs: Mapping[str, Sequence[np.ndarray]] | None = None,
                   micrograph_phases: int | None = None,
                   on_sampled: Callable[[np.ndarray], object] | None = None,
                   settings: SelfCheckSettings = SelfCheckSettings(),
                   retry: Mapping[str, Recipe] | None = None,
                   on_retry: Callable[[dict], object] | None = None,
                   **sample_kwargs) -> Generator[SampleStep, None, CheckedSample]:
    """Yield a :class:`SampleStep` per reverse step of
    :func:`~micro3d_gui.core.recipe.sample_progressive` (``sample_kwargs``: its keyword
    arguments), then call ``on_sampled(volumes)`` and, with ``check``, run
    :func:`check_sampled`; returns a :class:`CheckedSample`.

    ``retry``: ``{fault: recipe}``, the recipe to sample again with (the same seed) where
    the check finds that connectivity fault (:func:`~.selfcheck.connectivity_fault`: the
    phases more broken up than the micrographs', or running longer; what
    :func:`second_pass_recipes` gives);
    ``on_retry(report)`` is called first with the first check's report. The second pass's
    steps count their calls on from the first's (its ``total_calls`` the two runs'), its
    volumes go to ``on_sampled`` only if kept, and the volumes whose check is nearer the
    floor are kept; the kept report's ``second_pass`` says what happened. Over several
    processes (``dist``) the ranks agree on the second pass.
    """
    def checked(volumes):
        return (check_sampled(volumes, ckpt, micrographs, micrograph_phases, settings)
                if check else None)

    k = int(ckpt["num_phases"])
    first = yield from _sampled(ckpt, recipe, shape, count, sample_kwargs, offset=0)
    volumes = first.labels().cpu().numpy()
    if on_sampled is not None:
        on_sampled(volumes)
    report = checked(volumes)
    dist = sample_kwargs.get("dist", SINGLE)
    fault = None if report is None else connectivity_fault(report)
    # over several processes only one rank checks: the ranks agree on its finding
    fault = next((f for f in retry or {}
                  if dist.any(fault == f, sample_kwargs.get("device", "cpu"))), None)
    if fault is None:
        return CheckedSample(volumes, k, report)
    if on_retry is not None and report is not None:
        on_retry(report)
    second = yield from _sampled(ckpt, retry[fault], shape, count, sample_kwargs,
                                 offset=first.total_calls)
    again = second.labels().cpu().numpy()
    if report is None:  # a rank that does not check: the volumes are not its to write
        return CheckedSample(again, k, None)
    again_report = checked(again)
    better = nearer_floor(again_report, report)
    if better and on_sampled is not None:
        on_sampled(again)
    kept = dict(again_report if better else report)  # on_retry's report stays as it was
    kept["second_pass"] = {
        "reason": report["verdict"], "fault": fault, "recipe": recipe_to_dict(retry[fault]),
        "kept": "second" if better else "first",
        "worst_ratio": {"first": report["worst"]["ratio"],
                        "second": (again_report.get("worst") or {}).get("ratio")},
    }
    kept["verdict"] = describe_self_check(kept)
    return CheckedSample(again if better else volumes, k, kept)


def _sampled(ckpt, recipe, shape, count, sample_kwargs,
             offset: int) -> Generator[SampleStep, None, SampleStep]:
    """Sample, yielding each step with its calls counted on from ``offset``; returns the
    last step as the sampler made it (its ``x0``: the sample)."""
    last = None
    for last in sample_progressive(ckpt, recipe, shape, count, **sample_kwargs):
        yield (last if not offset else
               replace(last, calls=last.calls + offset, total_calls=last.total_calls + offset))
    return last


def run_checked(steps: Iterator[SampleStep],
                callback: Callable[[SampleStep], object] | None = None) -> CheckedSample:
    """Consume :func:`sample_checked` to its result; ``callback(step)`` after every step,
    a truthy return cancels (:class:`SamplingCancelled`), as ``run_to_end``."""
    while True:
        try:
            step = next(steps)
        except StopIteration as stop:
            return stop.value
        if callback is not None and callback(step):
            raise SamplingCancelled()

"""Checks of a checkpoint's training record and training state, so that a damaged or
edited field is refused when the file is opened, with a sentence naming the file and the
field, not a TypeError later in ``micro3d info``, the app's loss plot or a resumed run.

:func:`check_training_record`: the optional fields any checkpoint may carry (step, training
seconds, losses, fidelity reports, the training recipe, per-plane image counts and shapes).
:func:`check_training_state`: what resuming needs on top (the optimizer's state for every
weight, the random generator's state).
"""
from __future__ import annotations

import dataclasses
import math
import os

import torch

from ..errors import CheckpointError, InputError
from ..io.json_file import SchemaMismatch, check_value
from .bounds import check_seed
from .diffusion.unet import UNet, UNetConfig
from .train_config import TrainConfig


def _is_int(v, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _is_number(v, low: float = 0.0) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and v >= low)


def _damaged(where: str, field: str, value, want: str) -> CheckpointError:
    text = (f"(a {value.dtype} tensor of shape {tuple(value.shape)})"
            if isinstance(value, torch.Tensor) else repr(value).replace("\n", " "))
    if len(text) > 60:
        text = text[:57] + "..."
    return CheckpointError(f"{where}: {field} {text} is not {want}; the file is damaged or "
                           "edited: train or copy the model again")


def check_training_record(ckpt: dict, where: str) -> None:
    """:class:`CheckpointError` naming ``where`` and the field when an optional training
    field of ``ckpt`` has the wrong type or range."""
    if "step" in ckpt and not _is_int(ckpt["step"]):
        raise _damaged(where, "step", ckpt["step"], "a whole number >= 0")
    seconds = ckpt.get("train_seconds")
    if seconds is not None and not _is_number(seconds):
        raise _damaged(where, "train_seconds", seconds, "a number of seconds >= 0")
    losses = ckpt.get("losses")
    if losses is not None:
        ok = (isinstance(losses, torch.Tensor) and losses.ndim == 1
              and losses.dtype.is_floating_point) or (
            isinstance(losses, (list, tuple))
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in losses))
        if not ok:
            raise _damaged(where, "losses", losses, "a list of numbers")
    fidelity = ckpt.get("fidelity")
    if fidelity is not None:
        if not isinstance(fidelity, (list, tuple)):
            raise _damaged(where, "fidelity", fidelity, "a list of reports")
        for i, report in enumerate(fidelity):
            errors = report.get("errors") if isinstance(report, dict) else None
            if not (isinstance(report, dict) and _is_int(report.get("step"))
                    and isinstance(errors, dict)
                    and all(_is_number(v) for v in errors.values())):
                raise _damaged(where, f"fidelity report {i}", report,
                               "a report with a step and errors per plane")
    config = ckpt.get("train_config")
    if config is not None:
        _check_train_config(config, where)
    if "crop" in ckpt and not _is_int(ckpt["crop"], 1):
        raise _damaged(where, "crop", ckpt["crop"], "a positive whole number")
    for plane, entry in (ckpt.get("data_summary") or {}).items():
        if not isinstance(entry, dict):
            continue  # an older summary: fractions only (checked with the summary)
        if "images" in entry and not _is_int(entry["images"]):
            raise _damaged(where, f"data_summary {plane} images", entry["images"],
                           "a count of images")
        shapes = entry.get("shapes")
        if shapes is not None and not (
                isinstance(shapes, (list, tuple))
                and all(isinstance(s, (list, tuple)) and len(s) == 2
                        and all(_is_int(n, 1) for n in s) for s in shapes)):
            raise _damaged(where, f"data_summary {plane} shapes", shapes,
                           "a list of [height, width] pairs")


def _check_train_config(config, where: str) -> None:
    """The recipe's fields have TrainConfig's types (its hints) and pass its own checks;
    the seed is in the generator's range. Unknown fields (a newer Micro3D) are left for
    :func:`~.checkpoint.require_training_state` to refuse when resuming."""
    if not isinstance(config, dict):
        raise _damaged(where, "train_config", config, "a table of settings")
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    known = {k: v for k, v in config.items() if k in names}
    try:
        check_value(known, TrainConfig)
    except SchemaMismatch as exc:
        raise _damaged(where, f"train_config {exc.field}", exc.value, exc.want) from None
    seed = known.get("seed", 0)
    try:
        check_seed(seed, "train_config seed")
    except InputError:
        raise _damaged(where, "train_config seed", seed,
                       "in the random generator's range") from None
    try:
        TrainConfig(**known)
    except ValueError as exc:
        raise CheckpointError(f"{where}: train_config: {exc}; the file is damaged or edited: "
                              "train or copy the model again") from None


def check_training_state(ckpt: dict, where: str | os.PathLike) -> None:
    """:class:`CheckpointError` naming ``where`` unless the optimizer state holds Adam's
    moments for every weight of the network of the (validated) ``model_config``, in their
    shapes, and
    ``rng_state`` is a state torch's generator takes."""
    where = str(where)
    with torch.device("meta"):  # Adam's state follows model.parameters(), in their order
        weights = list(UNet(UNetConfig.from_dict(ckpt["model_config"])).parameters())
    opt = ckpt["optimizer"]
    groups = opt.get("param_groups") if isinstance(opt, dict) else None
    state = opt.get("state") if isinstance(opt, dict) else None
    params = [i for g in groups or () if isinstance(g, dict) for i in g.get("params", ())] \
        if isinstance(groups, list) else None
    if not isinstance(state, dict) or params != list(range(len(weights))):
        raise CheckpointError(f"{where}: its optimizer state does not fit the network's "
                              f"{len(weights)} weights; the file is damaged or edited, so its "
                              "training cannot be resumed: train a new model instead")
    for index, moments in state.items():
        if not (_is_int(index) and index < len(weights) and isinstance(moments, dict)):
            raise _damaged(where, f"optimizer state {index!r}", moments, "Adam's moments")
        shape = weights[index].shape
        for key in ("exp_avg", "exp_avg_sq"):
            m = moments.get(key)
            if not (isinstance(m, torch.Tensor) and m.shape == shape):
                got = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
                raise CheckpointError(f"{where}: optimizer {key} of weight {index} has shape "
                                      f"{got}, not {tuple(shape)}; the file is damaged or "
                                      "edited, so its training cannot be resumed")
        step = moments.get("step")
        if not (isinstance(step, torch.Tensor) and step.numel() == 1
                or _is_number(step)):
            raise _damaged(where, f"optimizer step of weight {index}", step, "a step count")
    rng = ckpt["rng_state"]
    want = torch.Generator().get_state()
    if not (isinstance(rng, torch.Tensor) and rng.dtype == want.dtype
            and rng.shape == want.shape):
        got = (f"{rng.dtype} {tuple(rng.shape)}" if isinstance(rng, torch.Tensor)
               else type(rng).__name__)
        raise CheckpointError(f"{where}: rng_state is {got}, not the random generator's "
                              f"state ({want.numel()} bytes); the file is damaged or edited, "
                              "so its training cannot be resumed")

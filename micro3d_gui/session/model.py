"""What a model file holds, as both faces show it (no Qt).

:func:`describe_model` is ``micro3d info``'s picture of a model file (the checkpoint's own
description, :func:`~micro3d_gui.core.checkpoint.describe_checkpoint`, with the file);
:func:`model_summary` is the app's (File > Load model..., read in a worker): the same
picture plus what the panels need on top of it.
"""
from __future__ import annotations

import os

from ..core.checkpoint import describe_checkpoint, load_checkpoint
from ..core.device import DEFAULT_DEVICE, resolve_device
from ..estimate import probe_speed


def describe_model(path: str | os.PathLike, ckpt: dict | None = None) -> dict:
    """Plain data about the model file ``path``: ``file`` and the fields of
    :func:`~micro3d_gui.core.checkpoint.describe_checkpoint`. ``ckpt``: the file already
    read (default: read and validated here; CheckpointError naming the file if unusable)."""
    if ckpt is None:
        ckpt = load_checkpoint(path)
    return {"file": str(path), **describe_checkpoint(ckpt)}


def model_summary(path: str | os.PathLike, device: str = DEFAULT_DEVICE) -> dict:
    """The app's picture of the model file ``path``: :func:`describe_model`'s fields, plus

    - ``network_speed``: seconds per slice pixel per slice side, network calls timed on
      ``device`` (the Generate time estimate, :func:`micro3d_gui.estimate.probe_speed`);
      None when there is no such device here;
    - the checkpoint's ``schedule_config`` and ``data_summary``, so that
      :meth:`~micro3d_gui.core.recipe.Recipe.steps_for` and ``network_calls`` take the
      summary as they take a checkpoint (its T; whether it has a fraction condition);
    - the Train panel's fields: ``path``, ``step``, ``crop`` (px, 0 unknown),
      ``train_seconds``, ``train_config`` and the history it plots (``losses``,
      ``fidelity``).
    """
    ckpt = load_checkpoint(path)
    info = describe_model(path, ckpt)
    try:
        speed = probe_speed(ckpt, resolve_device(device))
    except (ValueError, RuntimeError):  # no such device here: no estimate, still usable
        speed = None
    train = info["training"]
    losses = ckpt.get("losses")
    return {**info, "network_speed": speed,
            "schedule_config": info["schedule"], "data_summary": ckpt.get("data_summary"),
            "path": info["file"], "step": train["step"], "crop": int(train["crop"] or 0),
            "train_seconds": train["seconds"] or 0.0,
            "train_config": dict(ckpt.get("train_config", {})),
            "losses": [] if losses is None else [float(v) for v in losses],
            "fidelity": list(ckpt.get("fidelity", []))}

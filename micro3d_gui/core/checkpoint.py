"""Model checkpoints: plain data that ``torch.load(path, weights_only=True)`` opens.

A checkpoint holds everything needed to sample (model config and EMA weights, schedule,
number of phases) and to resume training (raw weights, optimizer, step, RNG state), and,
since the self-check, a bounded subset of the training micrographs (``reference``,
:func:`reference_micrographs`) that sampled volumes are checked against.
:func:`load_checkpoint` checks all of it (keys, the model config against the presets'
ranges, every weight's shape against the network that config builds, on the meta device)
before anything is allocated, so a damaged or foreign file gives one sentence, not a
KeyError or gigabytes of allocation.
"""
from __future__ import annotations

import math
import os
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from ..io.archive import stored_zip_bytes
from ..io.atomic import atomic_path
from ..errors import CheckpointError
from .diffusion.schedule import PREDICTIONS, Schedule, ScheduleConfig
from .diffusion.unet import PRESETS, UNet, UNetConfig
from .checkpoint_fields import check_training_record, check_training_state
from .encoding import num_channels
from .memory import free_bytes
from .planes import PLANES
from .symmetry import Symmetry, fill_stand_ins
from .train_config import TrainConfig

FORMAT = "micro3d-checkpoint"
VERSION = 1


def save_checkpoint(data: dict, path: str | os.PathLike) -> None:
    """Write ``data`` atomically (temp file + ``os.replace``)."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **data}, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint with ``weights_only=True``; :class:`CheckpointError` if unusable:
    a file whose zip records are compressed or declare more than the file (or the free
    memory) holds is refused before anything is unpacked (:mod:`..io.archive`)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such model file; train one with 'micro3d train' first")
    unpacked = stored_zip_bytes(p)  # refuses a zip bomb before anything is decompressed
    available = free_bytes("cpu")
    if unpacked > available:
        raise CheckpointError(f"{p}: unpacks to {unpacked / (1 << 30):.1f} GiB; this machine "
                              f"has {available / (1 << 30):.1f} GiB free; open it on a machine "
                              "with more memory")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(
            f"{p}: not a readable Micro3D model ({type(exc).__name__}); "
            "it may be truncated or from another program"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a Micro3D model file")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"{p}: made by a newer Micro3D; update Micro3D to open it")
    validate_checkpoint(ckpt, p)
    return ckpt


#: Keys a checkpoint needs to sample, and the further keys it needs to resume training.
SAMPLING_KEYS = ("model_config", "schedule_config", "num_phases", "model")
TRAINING_KEYS = ("train_config", "step", "optimizer", "rng_state", "ema")
#: Most phases a checkpoint may declare (labels are stored as uint8).
MAX_PHASES = 255


def _preset_range(name: str) -> tuple[int, int]:
    """Sizes a model config may take: 1 up to twice the largest preset's (the paper's
    network is the largest; twice it is already far beyond one GPU's sampling budget)."""
    values = [v for cfg in PRESETS.values() for v in (
        getattr(cfg, name) if isinstance(getattr(cfg, name), tuple) else (getattr(cfg, name),))]
    return 1, 2 * max(values)


def _check_model_config(d, where: str) -> UNetConfig:
    if not isinstance(d, dict):
        raise CheckpointError(f"{where}: model_config is not a table of settings")
    known = {f.name for f in fields(UNetConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise CheckpointError(f"{where}: model_config has unknown settings {unknown}; it "
                              "may come from a newer Micro3D: update Micro3D to open it")
    try:
        cfg = UNetConfig.from_dict({**UNetConfig().to_dict(), **d})
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{where}: model_config is malformed ({exc})") from None
    for name in ("base_channels", "num_res_blocks", "num_heads", "head_dim", "cond_dim",
                 "channel_mults", "patch"):
        lo, hi = _preset_range(name)
        values = getattr(cfg, name)
        for v in values if isinstance(values, tuple) else (values,):
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise CheckpointError(f"{where}: model_config {name} = {values!r} is outside "
                                      f"the range of Micro3D's networks ({lo} to {hi}); the "
                                      "file is damaged or not a Micro3D model")
    if not 1 <= cfg.levels <= 6 or len(cfg.attention_levels) != cfg.levels:
        raise CheckpointError(f"{where}: model_config has {cfg.levels} levels and "
                              f"{len(cfg.attention_levels)} attention flags; the file is "
                              "damaged or not a Micro3D model")
    for name in ("scale_shift_norm", "fraction_conditioning", "self_condition"):
        if not isinstance(getattr(cfg, name), bool):
            raise CheckpointError(f"{where}: model_config {name} "
                                  f"{getattr(cfg, name)!r} is not true or false")
    if not (isinstance(cfg.dropout, (int, float)) and 0 <= cfg.dropout < 1):
        raise CheckpointError(f"{where}: model_config dropout {cfg.dropout!r} is not in [0, 1)")
    return cfg


def _check_weights(state, expected: dict[str, torch.Size], key: str, where: str) -> None:
    if not isinstance(state, dict):
        raise CheckpointError(f"{where}: '{key}' holds no weights; the file is damaged")
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        detail = (f"missing {missing[:3]}{' ...' if len(missing) > 3 else ''}" if missing
                  else f"unexpected {extra[:3]}{' ...' if len(extra) > 3 else ''}")
        raise CheckpointError(f"{where}: the '{key}' weights do not fit the network its "
                              f"model_config describes ({detail}); the file is damaged or "
                              "from another program")
    for name, shape in expected.items():
        w = state[name]
        if not isinstance(w, torch.Tensor) or w.shape != shape:
            got = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise CheckpointError(f"{where}: weight {key}.{name} has shape {got}, but the "
                                  f"model_config needs {tuple(shape)}; the file is damaged")


def _numbers(values, count: int, low: float, high: float) -> bool:
    return (isinstance(values, (list, tuple)) and len(values) == count
            and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                    and math.isfinite(v) and low <= v <= high for v in values))


def _check_data_summary(summary, k: int, channels: int, where: str) -> None:
    """The per-plane numbers sampling reads from the data summary: ``volume_fractions`` (the
    default target, ``[K]`` in [0, 1]) and ``crop_mean_spread`` (the fraction condition's
    prior, ``[C]`` in [0, 2]: the std of a mean of +-1 codes)."""
    if not summary:
        return
    if not isinstance(summary, dict):
        raise CheckpointError(f"{where}: data_summary is not a table of planes; the file is "
                              "damaged or edited")
    for plane, entry in summary.items():
        for key, count, high in (("volume_fractions", k, 1.0),
                                 ("crop_mean_spread", channels, 2.0)):
            if isinstance(entry, dict) and key not in entry:
                continue
            values = entry.get(key) if isinstance(entry, dict) else entry
            if not _numbers(values, count, 0.0, high):
                raise CheckpointError(
                    f"{where}: data_summary {plane} {key} {values!r} is not {count} "
                    f"number(s) from 0 to {high:g}; the file is damaged or edited")


def _check_reference(reference, k: int, where: str) -> None:
    """The micrographs kept for the self-check (``reference``, optional): ``{plane: [2D
    uint8 tensors of labels 0..K-1]}``."""
    if reference is None:
        return
    damaged = f"{where}: its self-check micrographs ('reference') are damaged or edited"
    if not isinstance(reference, dict) or set(reference) - set(PLANES):
        raise CheckpointError(f"{damaged}: expected a table of the planes "
                              f"{', '.join(PLANES)}")
    for plane, images in reference.items():
        if not isinstance(images, (list, tuple)) or not images:
            raise CheckpointError(f"{damaged}: {plane} holds no list of images")
        for i, im in enumerate(images):
            if not (isinstance(im, torch.Tensor) and im.dtype == torch.uint8 and im.ndim == 2
                    and im.numel() > 0):
                got = (f"{im.dtype} {tuple(im.shape)}" if isinstance(im, torch.Tensor)
                       else type(im).__name__)
                raise CheckpointError(f"{damaged}: {plane} image {i} is {got}, not a 2D "
                                      "uint8 label image")
            if int(im.max()) >= k:
                raise CheckpointError(f"{damaged}: {plane} image {i} holds label "
                                      f"{int(im.max())}, but the model has {k} phases "
                                      f"(0..{k - 1})")


def reference_micrographs(ckpt: dict) -> dict[str, list[np.ndarray]] | None:
    """The label images ``{plane: [[H, W] uint8]}`` a (validated) checkpoint keeps for the
    self-check of its volumes, a plane declared like another given that plane's
    (:func:`checkpoint_symmetry`); None for a model trained before the self-check."""
    reference = ckpt.get("reference")
    if not reference:
        return None
    return fill_stand_ins({p: [im.numpy() for im in reference[p]] for p in PLANES
                           if p in reference}, checkpoint_symmetry(ckpt))


def checkpoint_symmetry(ckpt: dict) -> Symmetry:
    """The symmetry a (validated) checkpoint was trained with (:mod:`.symmetry`); none
    declared for a model from before declarations: every plane its own label."""
    return Symmetry.from_dict(ckpt.get("symmetry"))


def resumed_symmetry(declared: Symmetry, ckpt: dict | None) -> Symmetry:
    """The declaration a run trains with: ``declared``, or for a resumed run (``ckpt``)
    with none declared, the checkpoint's own (a differing one is refused on resuming)."""
    return checkpoint_symmetry(ckpt) if ckpt is not None and not declared.declared \
        else declared


def untrained_planes(ckpt: dict) -> list[str]:
    """Planes whose sections a checkpoint samples with a label it never trained: those
    whose stand-in has no training data (only a model from before absent planes were
    refused); empty when the checkpoint has no data summary to tell."""
    summary = ckpt.get("data_summary")
    if not summary:
        return []
    return [p for p, s in checkpoint_symmetry(ckpt).sources().items() if s not in summary]


def validate_checkpoint(ckpt: dict, path: str | os.PathLike = "the model") -> None:
    """:class:`CheckpointError` naming ``path`` unless ``ckpt`` can sample: required keys,
    phases, schedule, model config within the presets' ranges, the optional data summary
    and self-check micrographs, and weights whose names and shapes are those of the network
    that config builds (built on the meta device, so nothing is allocated), and the
    training record's fields (:func:`.checkpoint_fields.check_training_record`)."""
    where = str(path)
    missing = [k for k in SAMPLING_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{where}: lacks {', '.join(missing)}; the file is damaged or "
                              "not a Micro3D model")
    k = ckpt["num_phases"]
    if not isinstance(k, int) or isinstance(k, bool) or not 2 <= k <= MAX_PHASES:
        raise CheckpointError(f"{where}: num_phases {k!r} is not 2 to {MAX_PHASES}")
    sched = ckpt["schedule_config"]
    try:
        sc = ScheduleConfig(**sched)
        ok = (isinstance(sc.num_steps, int) and 1 <= sc.num_steps <= 100_000
              and all(isinstance(b, (int, float)) and math.isfinite(b) and 0 < b <= 1
                      for b in (sc.beta_start, sc.beta_end)))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise CheckpointError(f"{where}: schedule_config {sched!r} is not a diffusion "
                              "schedule (1 to 100000 steps, betas in (0, 1], prediction "
                              f"{' or '.join(PREDICTIONS)})")
    cfg = _check_model_config(ckpt["model_config"], where)
    if cfg.in_channels != num_channels(k):
        raise CheckpointError(f"{where}: the network has {cfg.in_channels} channels but "
                              f"{k} phases need {num_channels(k)}; the file is damaged")
    _check_data_summary(ckpt.get("data_summary"), k, cfg.in_channels, where)
    _check_reference(ckpt.get("reference"), k, where)
    check_training_record(ckpt, where)
    try:
        Symmetry.from_dict(ckpt.get("symmetry"))
    except ValueError:
        raise CheckpointError(f"{where}: its plane symmetry {ckpt.get('symmetry')!r} is "
                              "damaged or edited") from None
    with torch.device("meta"):
        expected = {n: t.shape for n, t in UNet(cfg).state_dict().items()}
    for key in ("model", "ema"):
        if key in ckpt:
            _check_weights(ckpt[key], expected, key, where)


def require_training_state(ckpt: dict, path: str | os.PathLike) -> dict:
    """``ckpt`` if it can resume training, else :class:`CheckpointError` naming ``path``
    and what is missing (e.g. a model exported for sampling only)."""
    missing = [k for k in TRAINING_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: lacks {', '.join(missing)}, so its training cannot "
                              "be resumed; train a new model instead of --resume")
    config = ckpt["train_config"]
    known = {f.name for f in fields(TrainConfig)}
    if not isinstance(config, dict) or set(config) - known or not {
            "crop", "batch_size", "lr", "checkpoint_every", "seed"} <= set(config):
        raise CheckpointError(f"{path}: its train_config is not Micro3D's; the training "
                              "cannot be resumed")
    check_training_state(ckpt, path)
    return ckpt


def describe_checkpoint(ckpt: dict) -> dict:
    """Plain data about a (validated) checkpoint, for ``micro3d info``: preset, phases,
    parameters, schedule, training (steps, seconds, crop, batch, lr, final loss), the
    stored summary of the training data per plane, the declared symmetry, the planes
    sampled with an untrained label and the number of images per plane kept for the
    self-check."""
    cfg = UNetConfig.from_dict({**UNetConfig().to_dict(), **ckpt["model_config"]})
    weights = ckpt.get("ema") or ckpt["model"]
    train = ckpt.get("train_config") or {}
    losses = ckpt.get("losses")
    losses = [] if losses is None else [float(v) for v in losses]
    tail = losses[-50:]
    seconds = ckpt.get("train_seconds")
    return {
        "format_version": ckpt.get("version"),
        "preset": cfg.preset,
        "num_phases": ckpt["num_phases"],
        "channels": cfg.in_channels,
        "parameters": int(sum(t.numel() for t in weights.values())),
        "size_multiple": cfg.size_multiple,
        "model_config": cfg.to_dict(),
        "schedule": dict(ckpt["schedule_config"]),
        "training": {
            "step": int(ckpt.get("step", 0)),
            "steps": train.get("steps"),
            "seconds": None if seconds is None else float(seconds),
            "crop": ckpt.get("crop", train.get("crop")),
            "batch_size": train.get("batch_size"),
            "lr": train.get("lr"),
            "checkpoint_every": train.get("checkpoint_every"),
            "seed": train.get("seed"),
            "final_loss": sum(tail) / len(tail) if tail else None,
        },
        "data": ckpt.get("data_summary") or {},
        "symmetry": checkpoint_symmetry(ckpt).to_dict(),
        # planes sampled with a label never trained (a model from before the refusal)
        "untrained_planes": untrained_planes(ckpt),
        # images per plane kept for the self-check (none: trained before it)
        "self_check_images": {p: len(ims) for p, ims in (ckpt.get("reference") or {}).items()},
    }


def model_from_checkpoint(ckpt: dict, device: torch.device | str = "cpu",
                          ema: bool = True) -> UNet:
    """The U-Net of a checkpoint in eval mode, with EMA weights unless ``ema=False``."""
    model = UNet(UNetConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["ema"] if ema and "ema" in ckpt else ckpt["model"])
    return model.to(device).eval()


def schedule_from_checkpoint(ckpt: dict) -> Schedule:
    return Schedule.from_config(ScheduleConfig(**ckpt["schedule_config"]))

"""Fidelity while training: how close 2D samples of the network are to the micrographs.

Every so often the trainer asks a :class:`FidelityMonitor` for a report: it samples a few
slices per plane from the (EMA) network with a short respaced schedule, conditioned on
that plane, and measures the S2 and the lineal-path relative errors of those slices against
the plane's micrographs (mean over phases and both image axes, as :mod:`.compare`). Beside
each stands the plane's **floor**: the same error for as many real crops of the same size,
drawn from one half of the plane's images and compared with the other half
(:mod:`.floor`, which the self-check of sampled volumes shares). A model at its floor on
both makes slices that differ from the micrographs no more than the micrographs differ
among themselves; loss alone says little about that.

A plane declared like another (:mod:`micro3d_gui.core.symmetry`) has no label and no
micrographs of its own: its 2D samples would be those of the plane that stands for it, so
the report covers the trained planes only.

Slices are ``[H, W]`` in METHOD.md's orientation; sizes in pixels.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..core.diffusion.fraction_condition import crop_mean_spread, slice_condition
from ..core.diffusion.respace import respace
from ..core.diffusion.schedule import Schedule
from ..core.encoding import decode, encode, encoded_mean
from ..core.planes import PLANE_LABELS, PLANES
from .correlation import default_max_r
from .floor import MEASURES, curve_error, plane_floor
from .fractions import volume_fractions


@dataclass(frozen=True)
class FidelitySettings:
    #: Generated slices (and real crops for the floor) per plane and report.
    slices: int = 8
    #: Reverse steps of the short respaced 2D schedule.
    sampling_steps: int = 25
    #: Draws of real crops averaged into the floor (it is itself noisy).
    floor_draws: int = 4
    #: A plane is at its floor when its S2 and lineal-path errors are each at most
    #: ``floor * margin``.
    margin: float = 1.0
    seed: int = 0


class FidelityMonitor:
    """``monitor(model)`` -> a report of the network's 2D samples against the micrographs.

    ``images``: ``{plane: [label images [H, W]]}`` (the training micrographs); ``size``: side
    of the sampled slices and of the floor's crops (the training crop); ``schedule``: the
    model's training schedule (respaced here). The report is plain data:
    ``{"errors": {plane: float}, "floor": {plane: float}, "lineal_path": {plane: float},
    "lineal_path_floor": {plane: float}, "fractions": {plane: [K]}, "at_floor": bool}``
    (``errors`` / ``floor``: S2; ``at_floor``: both measures within ``margin`` x their
    floors on every plane).
    """

    def __init__(self, images: Mapping[str, Sequence[np.ndarray]], num_phases: int,
                 schedule: Schedule, size: int,
                 settings: FidelitySettings = FidelitySettings(),
                 device: torch.device | str = "cpu"):
        self.num_phases = int(num_phases)
        self.size = int(size)
        self.settings = settings
        self.device = torch.device(device)
        self.schedule = respace(schedule, min(settings.sampling_steps, schedule.num_steps))
        self.planes = [p for p in PLANES if len(images.get(p, ()))]
        self.max_r = default_max_r([(self.size, self.size)])
        rng = np.random.default_rng(settings.seed)
        #: Per measure ("s2", "lineal_path"): the reference curves ``{plane: {phase: (rows,
        #: cols)}}`` (half B of the plane's images) and the floor ``{plane: float}``.
        self.curves = {m: {} for m in MEASURES}
        self.floors = {m: {} for m in MEASURES}
        #: The fraction condition per plane (model space): the plane's micrographs' mean
        #: and the spread of its size-px crops' means (see ``slice_condition``).
        self.means = {p: torch.tensor(encoded_mean(volume_fractions(list(images[p]),
                                                                    self.num_phases)))
                      for p in self.planes}
        self.spread = {p: crop_mean_spread([encode(im, self.num_phases) for im in images[p]],
                                           self.size) for p in self.planes}
        for p in self.planes:
            curves, floors = plane_floor(images[p], self.size, settings.slices,
                                         settings.floor_draws, self.num_phases, self.max_r,
                                         rng)
            for m in MEASURES:
                self.curves[m][p], self.floors[m][p] = curves[m], floors[m]

    @classmethod
    def for_trainer(cls, trainer, settings: FidelitySettings = FidelitySettings()
                    ) -> "FidelityMonitor":
        """The monitor of a :class:`~micro3d_gui.core.training.Trainer`'s data and crop."""
        return cls(trainer.data.images, trainer.data.num_phases, trainer.schedule,
                   trainer.config.crop, settings, trainer.device)

    @torch.inference_mode()
    def sample(self, model: torch.nn.Module) -> dict[str, np.ndarray]:
        """``slices`` label images ``[N, size, size]`` per plane, all planes in one batch,
        from the same seeded noise at every call (so reports differ by the model only)."""
        n, s = self.settings.slices, self.size
        gen = torch.Generator(device=self.device).manual_seed(self.settings.seed)
        labels = torch.tensor([PLANE_LABELS[p] for p in self.planes for _ in range(n)],
                              device=self.device)
        channels = model.config.in_channels
        x = torch.randn((len(labels), channels, s, s), generator=gen, device=self.device)
        sched = self.schedule
        for i in range(sched.num_steps - 1, -1, -1):
            t = torch.full((len(labels),), int(sched.timestep_map[i]), device=self.device,
                           dtype=torch.long)
            abar = float(sched.alphas_cumprod[i])
            means = torch.cat([slice_condition(x[j * n:(j + 1) * n], abar, self.means[p],
                                               self.spread[p])
                               for j, p in enumerate(self.planes)])
            x0 = sched.x0_from_output(x, i, model(x, t, labels, means)).clamp(-1, 1)
            noise = torch.randn(x.shape, generator=gen, device=self.device)
            x = sched.p_step_from_x0(x, i, x0, noise)
        out = decode(x, self.num_phases).cpu().numpy()
        return {p: out[j * n:(j + 1) * n] for j, p in enumerate(self.planes)}

    def __call__(self, model: torch.nn.Module) -> dict:
        was_training = model.training
        model.eval()
        slices = self.sample(model)
        model.train(was_training)
        errors = {m: {p: curve_error(slices[p], self.curves[m][p], m, self.num_phases,
                                     self.max_r) for p in self.planes} for m in MEASURES}
        fractions = {p: volume_fractions(slices[p], self.num_phases).round(4).tolist()
                     for p in self.planes}
        at_floor = all(errors[m][p] <= self.floors[m][p] * self.settings.margin
                       for m in MEASURES for p in self.planes)
        return {"errors": errors["s2"], "floor": dict(self.floors["s2"]),
                "lineal_path": errors["lineal_path"],
                "lineal_path_floor": dict(self.floors["lineal_path"]),
                "fractions": fractions, "at_floor": bool(at_floor)}


def _ratios(errors: Mapping, floors: Mapping) -> str:
    return ", ".join(f"{p} {e:.3f} (floor {floors[p]:.3f}, {e / max(floors[p], 1e-12):.1f}x)"
                     for p, e in errors.items())


def describe(report: Mapping) -> str:
    """One line for a person: per plane and measure the error, its floor and their ratio
    (a report from before the lineal path shows S2 alone)."""
    text = "S2 error of 2D samples: " + _ratios(report["errors"], report["floor"])
    if "lineal_path" in report:
        text += "; lineal path: " + _ratios(report["lineal_path"],
                                            report["lineal_path_floor"])
    return text + ("; at the floor" if report.get("at_floor") else "")

"""Data-parallel training over processes started by ``torchrun`` (torch.distributed + DDP).

``torchrun --nproc-per-node N -m micro3d_gui.cli train ...`` starts N copies of the command;
each reads its rank from the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK) and
joins one process group: NCCL when the device is CUDA (one GPU per process, by LOCAL_RANK),
gloo on CPU. No process engine of our own.

The draws: every rank holds the same seeded generator and draws the same *global* batch
from it (``--batch`` is the global batch), then keeps its own share, rows
``rank * B .. (rank + 1) * B`` with ``B = batch / world size``. So the ranks' crops together
are exactly the crops of a one-process run with the same batch, DDP's gradient average over
the ranks is that run's gradient, and the generator state in a checkpoint is every rank's:
a run can be resumed on another number of processes. Rank 0 alone writes checkpoints, of
the plain (unwrapped) model, so they load on one device with no ``module.`` prefix.

Sampling (``micro3d sample --nproc N``) shares out the network, not the draws: every rank
holds the whole latent and the same seeded generator, so every random draw and every
whole-volume step is the same everywhere; only the slice batch of each network call is
cut into contiguous shares (:meth:`Distributed.share`), one per rank, and gathered back
(:meth:`Distributed.gather_rows`). The volume is then the one-process volume.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Distributed:
    """Where this process stands in a run: ``rank`` of ``world_size`` (1 without torchrun);
    ``local_size``: the processes on this machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        """The process that writes checkpoints and prints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def device(self, device: torch.device) -> torch.device:
        """This rank's device: its own GPU (by LOCAL_RANK) when ``device`` is CUDA."""
        if self.active and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def per_rank(self, batch: int) -> int:
        if batch % self.world_size:
            raise ValueError(f"the batch ({batch}) must be a multiple of the number of "
                             f"processes ({self.world_size})")
        return batch // self.world_size

    def shard(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """This rank's rows of global-batch tensors ``[B_global, ...]``."""
        if not self.active:
            return tensors
        b = self.per_rank(tensors[0].shape[0])
        return tuple(t[self.rank * b:(self.rank + 1) * b] for t in tensors)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model to train with: DDP around it in a distributed run (gradients averaged
        over the ranks in backward), else the model itself."""
        if not self.active:
            return model
        p = next(model.parameters())
        ids = [p.device.index] if p.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def mean(self, value: torch.Tensor) -> float:
        """The mean of a scalar over the ranks (the global batch's loss)."""
        if self.active:
            value = value.detach().clone()
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            value /= self.world_size
        return float(value.detach())

    def any(self, flag: bool, device: torch.device | str = "cpu") -> bool:
        """True on every rank when it is True on one (a stop request, a time budget spent),
        so all ranks leave the loop at the same step."""
        if not self.active:
            return bool(flag)
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def smallest(self, value: int, device: torch.device | str = "cpu") -> int:
        """The smallest of an integer over the ranks, on every rank (a choice each rank
        measures, such as the slices per call, that every rank must share: the ranks
        meet at every call)."""
        if not self.active:
            return int(value)
        t = torch.tensor([int(value)], dtype=torch.int64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return int(t.item())

    def share(self, rows: int) -> slice:
        """This rank's contiguous share of ``rows`` rows: ``ceil(rows / world size)`` each,
        the last ranks' shorter or empty."""
        per = -(-rows // self.world_size)
        return slice(min(rows, self.rank * per), min(rows, (self.rank + 1) * per))

    def gather_rows(self, part: torch.Tensor, rows: int) -> torch.Tensor:
        """Every rank's share ``[share, ...]`` of :meth:`share` (``rows``) -> ``[rows, ...]``
        on every rank, in rank order."""
        if not self.active:
            return part
        per = -(-rows // self.world_size)
        padded = part.new_zeros((per, *part.shape[1:]))  # all_gather needs equal sizes
        padded[:part.shape[0]] = part
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat(parts)[:rows]

    def agreed_seed(self, seed: int | None, device: torch.device | str = "cpu") -> int | None:
        """``seed``, or for None one drawn by rank 0 and used by every rank (a seed drawn
        on each rank would give each rank its own noise)."""
        if not self.active or seed is not None:
            return seed
        t = torch.tensor([torch.seed() % (1 << 62)], dtype=torch.int64, device=device)
        dist.broadcast(t, src=0)
        return int(t.item())

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


SINGLE = Distributed()


def from_environment(device: torch.device) -> Distributed:
    """Join the process group torchrun describes in the environment (NCCL for CUDA, gloo
    otherwise); the single-process :data:`SINGLE` when there is none."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    ctx = Distributed(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")),
                      int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    if device.type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return ctx


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """The command that runs ``micro3d <argv>`` in ``nproc`` processes on this machine."""
    import sys  # noqa: PLC0415

    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "micro3d_gui.cli", *argv]

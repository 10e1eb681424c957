"""Multi-process training through ``torchrun`` and DistributedDataParallel.

``python -m bench run`` started by ``torchrun --nproc-per-node N`` (one node or
several) finds ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` in its environment and
joins the process group: NCCL on CUDA, gloo on CPU.  Every rank trains; only
rank 0 prepares data, evaluates, times and writes files, the others wait at
barriers.  A plain ``python -m bench run`` is world size 1 and needs none of it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from relight_base.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank (any picklable object); ``value`` itself for one process."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto`` (CUDA if available), ``cpu``, ``cuda`` or ``cuda:N``; CUDA without a GPU is a clear error."""
    if preference == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if preference == "cpu":
        return torch.device("cpu")
    if preference.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device: {preference!r} was asked for, but this machine has no usable CUDA GPU; use auto or cpu")
        return torch.device(preference if ":" in preference else f"cuda:{local_rank}")
    raise ConfigError(f"train.device: expected auto, cpu, cuda or cuda:N, got {preference!r}")


def init_distributed(device_preference: str = "auto") -> DistContext:
    """Join the process group when launched by torchrun; otherwise a single-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_preference, local_rank)
    if world_size <= 1:
        return DistContext(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        log.info("joined %s process group: rank %d of %d", backend, dist.get_rank(), world_size)
    return DistContext(rank=dist.get_rank(), world_size=world_size, local_rank=local_rank, device=device)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (no-op for a single process)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()

"""One process or many: the few collective operations the loop needs, behind one small object.

Under ``torchrun`` (RANK / WORLD_SIZE in the environment) the process group is NCCL on GPUs and
gloo on CPUs; alone, every collective is the identity. Design concession: data-parallel only (DDP),
no sharding, which suits the small models this tool fine-tunes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist
from torch import nn


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def bf16(self) -> bool:
        return self.device.type == "cuda"

    def wrap(self, model: nn.Module) -> nn.Module:
        if self.world == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def no_sync(self, wrapped: nn.Module) -> contextlib.AbstractContextManager[Any]:
        return wrapped.no_sync() if self.world > 1 else contextlib.nullcontext()

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            value = value.clone()
            tdist.all_reduce(value)
        return value

    def any(self, flag: bool) -> bool:
        """True on every rank when any rank says so (all ranks stop at the same step)."""
        if self.world == 1:
            return flag
        return bool(self.sum(torch.tensor(float(flag), device=self.device)) > 0)

    def barrier(self) -> None:
        if self.world > 1:
            tdist.barrier()


def setup(environ: dict[str, str] | Any = None) -> Dist:
    """Read torchrun's environment; pick the device (CUDA when present, else CPU)."""
    env = os.environ if environ is None else environ
    world = int(env.get("WORLD_SIZE", "1"))
    rank = int(env.get("RANK", "0"))
    local = int(env.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not tdist.is_initialized():
        tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank=rank, world=world, local_rank=local, device=device)


@contextlib.contextmanager
def session(environ: dict[str, str] | Any = None) -> Iterator[Dist]:
    dist = setup(environ)
    try:
        yield dist
    finally:
        if dist.world > 1 and tdist.is_initialized():
            tdist.destroy_process_group()

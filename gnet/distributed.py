"""Several training processes as one run: ``torch.distributed`` under ``torchrun``, or a world of one.

    torchrun --standalone --nproc-per-node=8 -m gnet.train --data-dir DIR --batch-size 256 ...   # one machine
    torchrun --nnodes=2 --nproc-per-node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29400 -m gnet.train ...

``torchrun`` starts one process per device and tells each who it is through the environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``). :func:`join` reads it and joins the process group:
``nccl`` on CUDA (one GPU per local rank), ``gloo`` on CPU. Without those variables (a plain ``python -m
gnet.train``) it returns :data:`SINGLE`, a world of one, and nothing in the training loop changes.

What the rest of gnet asks of a :class:`World`:

* :meth:`World.sum` adds a few numbers over all ranks (the step's loss and accuracy tallies, a stop request, the
  evaluation sums), so every rank takes the same decisions at the same step;
* :meth:`World.share` gives a rank its part of each global batch, so the ranks' parts of step ``k`` together
  are exactly the batch a single process would take at step ``k``;
* :meth:`World.broadcast` sends rank 0's object (a checkpoint, or the error that stops the run) to the others.

A rank that stops answering fails the others' next collective after ``timeout`` seconds (and ``torchrun`` ends
the job when any of its processes exits with an error), so a dead rank never leaves the others hanging.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from gnet.device import DeviceError, resolve_device

__all__ = [
    "SINGLE",
    "DistributedError",
    "World",
    "broadcast_buffers",
    "check_batch",
    "describe",
    "is_peer_failure",
    "join",
    "leave",
    "short_reason",
]

T = TypeVar("T")


class DistributedError(RuntimeError):
    """The process group cannot be joined, or another rank of the job failed."""


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` of ``size`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, metrics and logs, and shows progress."""
        return self.rank == 0

    def sum(self, values: Sequence[float]) -> list[float]:
        """``values`` added element-wise over all ranks (float64, so counts stay exact)."""
        if not self.distributed:
            return [float(v) for v in values]
        tensor = torch.tensor(values, dtype=torch.float64, device=self._device())
        dist.all_reduce(tensor)
        return tensor.tolist()

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (pickled: for checkpoints and messages, not for every step)."""
        if not self.distributed:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self._device())
        return box[0]  # type: ignore[return-value]

    def share(self, global_batch: Sequence[int]) -> list[int]:
        """This rank's contiguous part of one global batch (whose length the world size divides)."""
        part = len(global_batch) // self.size
        return list(global_batch[self.rank * part : (self.rank + 1) * part])

    def _device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl" else torch.device("cpu")


SINGLE = World()


def _env_int(name: str) -> int:
    value = os.environ.get(name, "")
    try:
        number = int(value)
    except ValueError:
        raise DistributedError(f"${name} must be an integer, got {value!r} (torchrun sets it)") from None
    if number < 0:
        raise DistributedError(f"${name} must be >= 0, got {number}")
    return number


def join(device_request: str = "auto", timeout_s: float = 120.0) -> tuple[World, torch.device]:
    """This process's :class:`World` and training device; joins the process group when ``WORLD_SIZE`` > 1."""
    if os.environ.get("WORLD_SIZE", "1") in ("", "1") or _env_int("WORLD_SIZE") <= 1:
        return SINGLE, resolve_device(device_request)
    size, rank, local_rank = _env_int("WORLD_SIZE"), _env_int("RANK"), _env_int("LOCAL_RANK")
    if rank >= size:
        raise DistributedError(f"$RANK {rank} is not below $WORLD_SIZE {size}")
    device = resolve_device(device_request)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DeviceError(f"local rank {local_rank} has no GPU: this machine has {torch.cuda.device_count()}")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise DeviceError(f"torch.distributed has no backend for {device.type}: pass --device cpu or cuda")
    try:
        dist.init_process_group(backend, timeout=dt.timedelta(seconds=timeout_s))
    except (ValueError, RuntimeError) as error:  # a missing MASTER_ADDR, an unreachable endpoint
        raise DistributedError(f"cannot join the process group ({backend}): {str(error).splitlines()[0]}") from None
    return World(rank, size, local_rank, backend), device


def leave(world: World) -> None:
    """Leave the process group (a no-op for a world of one)."""
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def is_peer_failure(error: BaseException) -> bool:
    """Whether ``error`` is a collective that failed because another rank died or stopped answering.

    NCCL and newer gloo raise ``torch.distributed.DistError``; gloo's TCP transport raises a plain RuntimeError
    whose message names its source file ("gloo/transport/tcp/pair.cc: ... Connection reset by peer").
    """
    if os.environ.get("WORLD_SIZE", "1") in ("", "0", "1"):  # not a torchrun job (the group may be gone by now)
        return False
    return isinstance(error, dist.DistError) or any(word in str(error) for word in ("gloo", "NCCL", "Timed out"))


def short_reason(error: BaseException) -> str:
    """The useful part of a backend's message: "Read error [127.0.0.1]:25508: Connection reset by peer"."""
    lines = str(error).strip().splitlines()
    text = re.sub(r"^\[[^\]]*\]\s*", "", lines[0]) if lines else type(error).__name__  # gloo's "[file.cc:545]"
    return text.split(". This is typically")[0]


def broadcast_buffers(model: torch.nn.Module, world: World) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank: what a checkpoint of rank 0 holds."""
    if world.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def describe(world: World, batch_size: int) -> str:
    """'global batch 128 = 2 ranks × 64 (gloo)', for the run's first line."""
    if not world.distributed:
        return f"batch {batch_size}"
    return f"global batch {batch_size} = {world.size} ranks × {batch_size // world.size} ({world.backend})"


def check_batch(world: World, batch_size: int) -> None:
    """``--batch-size`` is the global batch: every rank must get the same share of it."""
    if batch_size % world.size:
        raise ValueError(
            f"--batch-size {batch_size} is the global batch and must split evenly over {world.size} ranks "
            f"(try {batch_size - batch_size % world.size or world.size})"
        )

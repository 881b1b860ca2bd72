"""Several processes training one model: DistributedDataParallel over gloo (CPU) or NCCL (CUDA).

``torchrun`` (or ``selfattention train --nproc N``, which runs the same launcher) starts the
processes and tells each who it is through the environment: ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``. Without them there is one process and nothing
here talks to anyone.

Every process holds the whole batch list of an epoch (it depends on the seed and the epoch alone).
One optimiser step takes ``accumulate × world_size`` consecutive batches; process ``r`` takes
every ``world_size``-th of them from the ``r``-th. Gradients are summed over processes (a DDP
communication hook that adds and does not average) and divided by the target tokens of all those
batches, so the step is the step one process would take with ``accumulate × world_size``.
"""

# No `from __future__ import annotations`: DDP reads the comm hook's annotations at run time.
import inspect
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
# Other processes wait while the first validates and writes; a long validation must not time them out.
TIMEOUT = timedelta(hours=2)


class DistributedError(RuntimeError):
    """The processes cannot be set up as asked (a missing GPU, a broken environment)."""


@dataclass(frozen=True)
class Distributed:
    """This process's place among the training processes (rank 0 of 1 when alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes every file and draws the progress bar; the others only compute."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the processes (in float64)."""
        if not self.enabled:
            return list(values)
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return [float(value) for value in tensor.tolist()]

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds in any process (so that all stop together)."""
        return bool(self.sum([1.0 if flag else 0.0])[0] > 0) if self.enabled else flag

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value``, in every process (any picklable object)."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def choose_device(request: str, local_rank: int = 0) -> torch.device:
    """``auto``: this process's GPU when there is one, else the CPU."""
    if request not in DEVICES:
        raise DistributedError(f"unknown device {request!r} (choose from {', '.join(DEVICES)})")
    if request == "cpu" or (request == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DistributedError("--device cuda was asked for, but PyTorch sees no CUDA device")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise DistributedError(f"process {local_rank} on this machine has no GPU of its own ({count} visible)")
    return torch.device("cuda", local_rank)


def setup_distributed(device: str = "auto") -> Distributed:
    """Join the process group the launcher described in the environment (or stay alone)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(device=choose_device(device))
    try:
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError) as error:
        raise DistributedError(f"WORLD_SIZE is {world_size} but RANK is missing or invalid ({error})") from None
    chosen = choose_device(device, local_rank)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo", timeout=TIMEOUT)
    log.info("process %d of %d on %s (backend %s)", rank, world_size, chosen, dist.get_backend())
    return Distributed(rank=rank, world_size=world_size, local_rank=local_rank, device=chosen)


def wrap_model(model: nn.Module, context: Distributed) -> nn.Module:
    """``model`` in DistributedDataParallel, its gradients summed over processes (not averaged)."""
    if not context.enabled:
        return model
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    # The buffers (position tables) are constant: no need to send them before every forward pass.
    ddp = nn.parallel.DistributedDataParallel
    quiet = (
        "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(ddp).parameters else "broadcast_buffers"
    )
    options: dict[str, Any] = {quiet: False}
    wrapped = ddp(model, device_ids=device_ids, **options)
    wrapped.register_comm_hook(None, _sum_hook)
    return wrapped


def _sum_hook(state: object, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP's all-reduce without its division by the world size: the loss is already divided by all tokens."""
    work = dist.all_reduce(bucket.buffer(), async_op=True)
    assert work is not None
    return work.get_future().then(lambda future: future.value()[0])


def step_seed(seed: int, step: int, rank: int) -> int:
    """The random seed of one process for one step (dropout), so that a resumed run draws the same masks."""
    return (seed * 1_000_003 + step) * 1_009 + rank


def launch(nproc: int, worker_args: Sequence[str]) -> None:
    """Run ``python -m selfattention WORKER_ARGS`` in ``nproc`` processes on this machine, as torchrun does.

    Raises ``ChildFailedError`` (from torch.distributed.elastic) when a process fails.
    """
    from torch.distributed.run import parse_args, run

    run(parse_args(["--standalone", f"--nproc-per-node={nproc}", "--module", "selfattention", *worker_args]))

"""Data-parallel training on the loop (`salplug.train.fit`) through torch.distributed.

`torchrun` starts one process per rank (``salplug train NAME --nproc N`` does it for one
machine). Each global batch of `batch_size` samples is the single-process batch, cut into
`world` contiguous shards; every rank runs the trainer's `loss` on its shard, and the loop replaces each rank's
gradient by the weighted sum over ranks before the step, so every rank takes the step one
process would have taken on the whole batch. Rank 0 alone
writes checkpoints, run state and logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from salplug.errors import SalplugError

RENDEZVOUS = ("RANK", "MASTER_ADDR", "MASTER_PORT")
"""What torchrun sets beside WORLD_SIZE and joining the group reads."""


@dataclass(frozen=True)
class Group:
    """This process's place in the job: `rank` of `world` processes."""

    rank: int = 0
    world: int = 1

    @property
    def leader(self) -> bool:
        """Rank 0: the one process that writes files and prints progress."""
        return self.rank == 0


SINGLE = Group()


class LaunchError(SalplugError, RuntimeError):
    """An environment that names several processes without saying how they meet."""


def launched_by_torchrun() -> bool:
    """Whether this process is one of several ranks torchrun started (WORLD_SIZE above 1).

    A WORLD_SIZE left in a shell without the variables torchrun sets beside it is a
    `LaunchError` naming them, before any work.
    """
    text = os.environ.get("WORLD_SIZE", "").strip()
    if not text:
        return False
    try:
        world = int(text)
    except ValueError:
        raise LaunchError(f"WORLD_SIZE: expected the number of processes torchrun started, got {text!r}") from None
    if world <= 1:
        return False
    missing = [name for name in RENDEZVOUS if not os.environ.get(name, "").strip()]
    if missing:
        names = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        raise LaunchError(f"WORLD_SIZE={text} says this is one of {world} torchrun processes, but {names} "
                          f"{'is' if len(missing) == 1 else 'are'} not set; unset WORLD_SIZE to train in one "
                          "process, or start the processes with torchrun or --nproc")
    return True


def start(device: str) -> Group:
    """Join the process group torchrun describes in the environment (gloo on CPU, nccl on CUDA)."""
    if dist.is_initialized():
        return current()
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    return current()


def finish(*, wait: bool = True) -> None:
    """Leave the process group, so torchrun's processes exit cleanly.

    With `wait` every rank first meets the others at a barrier: rank 0 still writes the
    checkpoint after the last collective, and a rank that tore the gloo group down and
    exited meanwhile aborted once in CI ("terminate called without an active
    exception"). After a failure there is no wait, since the other ranks may never arrive.
    """
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def current() -> Group:
    """The running process group, or `SINGLE` when training in one process."""
    if dist.is_available() and dist.is_initialized():
        return Group(dist.get_rank(), dist.get_world_size())
    return SINGLE


def gather(value: object) -> list[object]:
    """`value` from every rank, in rank order: trainer state a step changed on each rank's shard."""
    values: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def shard(global_size: int, group: Group) -> tuple[int, int]:
    """This rank's ``[start, stop)`` of a global batch: contiguous parts whose sizes differ by at most one."""
    base, extra = divmod(global_size, group.world)
    start = group.rank * base + min(group.rank, extra)
    return start, start + base + (group.rank < extra)


def same_start(model: nn.Module) -> None:
    """Every rank starts from rank 0's weights and buffers."""
    for tensor in model.state_dict().values():
        dist.broadcast(tensor.data, src=0)


def over_ranks(values: list[float], op: dist.ReduceOp.RedOpType = dist.ReduceOp.SUM) -> list[float]:
    """A few numbers (losses, flags) reduced element-wise over ranks in float64: summed, or with `op`.

    MAX makes a stop or save flag raised by any rank hold for all.
    """
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor, op=op)
    return tensor.tolist()


def sum_gradients(params: list[nn.Parameter], weight: float) -> None:
    """Each rank's gradient times `weight` (its share of the batch), summed over ranks, before clipping and the step.

    A trainer's loss is the mean of its shard, so the weighted sum is the gradient of the
    global batch's mean loss. Gradients travel as one flat tensor per dtype and device; a
    parameter without a gradient on every rank keeps none.
    """
    if not params:
        return
    present = torch.tensor([p.grad is not None for p in params], dtype=torch.int32)
    dist.all_reduce(present, op=dist.ReduceOp.MAX)
    used = [p for p, flag in zip(params, present.tolist()) if flag]
    buckets: dict[tuple[torch.dtype, torch.device], list[nn.Parameter]] = {}
    for p in used:
        buckets.setdefault((p.dtype, p.device), []).append(p)
    for members in buckets.values():
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in members])
        flat.mul_(weight)
        dist.all_reduce(flat)
        offset = 0
        for p in members:
            p.grad = flat[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()

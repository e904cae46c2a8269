"""Agreeing on the loss across ranks, so that every rank makes the same decision."""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "mean_across_ranks"]


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _collective_device(value: float | torch.Tensor) -> torch.device:
    if isinstance(value, torch.Tensor):
        return value.device
    # NCCL only reduces CUDA tensors; gloo and the others take CPU tensors.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def mean_across_ranks(value: float | torch.Tensor) -> float | torch.Tensor:
    """The mean of ``value`` over all ranks; ``value`` itself outside a process group.

    One all-reduce on the value's device (SUM then divide: gloo has no AVG). Must be
    called on every rank, as every collective. A float comes back as a float, a
    tensor as a tensor on its own device, without a host read.
    """
    if not is_distributed():
        return value
    world = dist.get_world_size()
    if isinstance(value, torch.Tensor):
        buffer = value.detach().reshape(()).float().clone()
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
        return buffer / world
    buffer = torch.tensor(float(value), dtype=torch.float64, device=_collective_device(value))
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    return buffer.item() / world

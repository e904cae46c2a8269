"""Agreeing on the loss across ranks, so that every rank makes the same decision.

In data-parallel training each rank sees its own micro-batches, so each rank has its
own loss. DDP keeps the *gradients* in agreement, but a loss-driven scheduler fed the
rank-local loss decides on each rank alone: the learning rates drift apart and the
replicas silently stop being replicas. :class:`greedylr.GreedyLR` therefore averages
the loss over the default process group before every decision (``sync_ranks=True``,
the default), with :func:`mean_across_ranks`: one all-reduce of one scalar per
optimizer step.

The contract of every collective applies: each rank must make the call, the same
number of times, in the same order. ``GreedyLR.step`` de-duplicates repeated calls
*before* the collective, from the count of optimizer steps, which is the same on
every rank; never call it from code that only some ranks run (``if rank == 0:``).
"""

from __future__ import annotations

from typing import overload

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "mean_across_ranks"]

# Accumulate in at least single precision: a bf16 or fp16 sum of many ranks' losses
# would round visibly; a float64 loss keeps its precision.
_REDUCE_DTYPES = (torch.float32, torch.float64)


# asked once: it is a property of the torch build, and the scheduler asks every step
_AVAILABLE = dist.is_available()
# dist.is_initialized() reaches the default group through two properties (a class
# property on a metaclass), about 6% of a float-mode GreedyLR step: read the attribute
# they end at where this torch has it (tests/test_distributed.py checks both states)
_WORLD = getattr(dist.distributed_c10d, "_world", None) if _AVAILABLE else None
_WORLD_HAS_PG = _WORLD is not None and hasattr(_WORLD, "_default_pg")


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    if _WORLD_HAS_PG:
        initialized = _WORLD._default_pg is not None  # type: ignore[union-attr]
    else:
        initialized = _AVAILABLE and dist.is_initialized()
    return initialized and dist.get_world_size() > 1


def _backend_needs_cuda() -> bool:
    # NCCL reduces CUDA tensors only; gloo and mixed "cpu:gloo,cuda:nccl" take CPU ones.
    return dist.get_backend() == "nccl"


def _collective_device(value: float | torch.Tensor) -> torch.device:
    if isinstance(value, torch.Tensor) and not (
        value.device.type == "cpu" and _backend_needs_cuda()
    ):
        return value.device
    if _backend_needs_cuda():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@overload
def mean_across_ranks(value: float) -> float: ...


@overload
def mean_across_ranks(value: torch.Tensor) -> torch.Tensor: ...


def mean_across_ranks(value: float | torch.Tensor) -> float | torch.Tensor:
    """The mean of ``value`` over all ranks; ``value`` itself outside a process group.

    One all-reduce on the value's device: SUM, then a division by the world size,
    because gloo has no ``ReduceOp.AVG``. A non-finite value on any rank makes the
    mean non-finite on every rank, so that every rank still decides the same way.

    Must be called on every rank, as every collective.

    Args:
        value: this rank's loss: a Python number, or a one-element tensor.

    Returns:
        A float for a float (computed in float64); a 0-d tensor for a tensor, on the
        tensor's device and without a host read (in float32, or float64 if it was).

    Examples:
        >>> mean_across_ranks(2.5)  # no process group: the value itself
        2.5
    """
    if not is_distributed():
        return value
    world = dist.get_world_size()
    device = _collective_device(value)
    if isinstance(value, torch.Tensor):
        dtype = value.dtype if value.dtype in _REDUCE_DTYPES else torch.float32
        buffer = value.detach().reshape(()).to(device=device, dtype=dtype, copy=True)
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
        return (buffer / world).to(value.device)
    buffer = torch.tensor(float(value), dtype=torch.float64, device=device)
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    return buffer.item() / world

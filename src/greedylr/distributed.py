"""Agreeing on the loss across ranks, so that every rank makes the same decision.

In data-parallel training each rank sees its own micro-batches, so each rank has its
own loss. DDP keeps the *gradients* in agreement, but a loss-driven scheduler fed the
rank-local loss decides on each rank alone: the learning rates drift apart and the
replicas silently stop being replicas. :class:`greedylr.GreedyLR` therefore averages
the loss over the default process group before every decision (``sync_ranks=True``,
the default), with :func:`mean_across_ranks`: one all-reduce of one scalar per
optimizer step.

The held-out value of :meth:`GreedyLR.observe_eval` is averaged the same way: a value
computed on each rank's shard of the evaluation set, or logged without ``sync_dist``,
differs between ranks, and so would the LR cut it decides.

The contract of every collective applies: each rank must make the call, the same
number of times, in the same order. ``GreedyLR.step`` de-duplicates repeated calls
*before* the collective, from the count of optimizer steps, which is the same on
every rank; never call it, or ``observe_eval``, from code that only some ranks run
(``if rank == 0:``). Where that happens anyway the ranks notice (:func:`agreed_mean`):
each call's all-reduce carries which call it is and whether the rank had a value, so
that a ``step`` met by another rank's ``observe_eval``, or a rank with no loss to give,
raises on every rank instead of mixing a held-out value into a loss or leaving the
others waiting in the collective (in device mode, where reading the verdict back would
be a host sync, the ranks that do have a value decide on NaN, a skipped step, and the
rank at fault raises).
"""

from __future__ import annotations

from typing import Any, overload

import torch
import torch.distributed as dist

__all__ = ["EVAL", "STEP", "RanksDisagree", "agreed_mean", "agreed_mean_on_device",
           "is_distributed", "mean_across_ranks", "mean_where_given"]

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


#: Which call an all-reduce of :func:`agreed_mean` serves: a step's loss, a held-out value.
STEP, EVAL = "step", "observe_eval"
_CODES = {STEP: 0.0, EVAL: 1.0}


class RanksDisagree(RuntimeError):
    """The ranks were not all in the same GreedyLR call, or not all had a value for it."""


def _agreement(buffer: torch.Tensor, value: Any, call: str) -> torch.Tensor:
    """Fill ``buffer`` (3 elements) with this rank's part: its value (0 for none),
    whether it has none, and which call this is."""
    if value is None:
        buffer[1] = 1.0
    else:
        buffer[0] = value
    buffer[2] = _CODES[call]
    return buffer


def agreed_mean(value: float | None, call: str) -> float:
    """The mean of ``value`` over all ranks, in float64, where every rank is in the same
    ``call`` (``STEP`` or ``EVAL``) with a value; ``value`` itself outside a
    process group.

    One all-reduce of three numbers, where :func:`mean_across_ranks` reduces one: the
    value, a count of ranks without one (``value=None``: a rank that could not compute
    its value takes part all the same, so that no rank waits forever), and a code of the
    call, whose sum tells whether some ranks met another call's collective.

    Raises:
        RanksDisagree: on every rank, where a rank had no value or was in another call.
    """
    if not is_distributed():
        if value is None:
            raise RanksDisagree(f"GreedyLR.{call}: no value")
        return value
    world = dist.get_world_size()
    buffer = torch.zeros(3, dtype=torch.float64, device=_collective_device(0.0))
    dist.all_reduce(_agreement(buffer, value, call), op=dist.ReduceOp.SUM)
    total, missing, codes = buffer.tolist()
    in_eval = round(codes)
    if in_eval != round(_CODES[call] * world):
        raise RanksDisagree(
            f"GreedyLR.{call}: {in_eval} of {world} ranks were in observe_eval, the others in "
            "step: both are collectives (the value is averaged across ranks); call each on "
            "every rank, the same number of times (never under `if rank == 0:`)")
    if missing:
        raise RanksDisagree(
            f"GreedyLR.{call}: {round(missing)} of {world} ranks had no value to give (see "
            "the error on those ranks); no decision was made")
    return total / world


def agreed_mean_on_device(value: torch.Tensor | None, call: str,
                          like: torch.Tensor) -> torch.Tensor:
    """:func:`agreed_mean` without a host read: a ``[1]`` tensor like ``like`` (its dtype
    and device; a float64 state sums as float mode does), NaN where the ranks disagree
    (which the rule skips as a non-finite loss; the rank at fault raises itself).

    Args:
        value: this rank's value, a one-element tensor, or None for none.
        call: ``STEP`` or ``EVAL``.
        like: a tensor of the dtype and device to reduce in and return on.
    """
    if not is_distributed():
        assert value is not None
        return value.reshape(1).to(dtype=like.dtype)
    world = dist.get_world_size()
    device = _collective_device(like)
    buffer = torch.zeros(3, dtype=like.dtype, device=device)
    if value is not None:
        value = value.detach().reshape(()).to(device=device, dtype=like.dtype)
    dist.all_reduce(_agreement(buffer, value, call), op=dist.ReduceOp.SUM)
    agreed = (buffer[1] == 0) & (buffer[2] == _CODES[call] * world)
    mean = torch.where(agreed, buffer[0] / world, torch.nan)
    return mean.reshape(1).to(like.device)


def mean_where_given(value: float | None) -> float | None:
    """The mean of ``value`` over the ranks that have one (``None`` where none has);
    ``value`` itself outside a process group. One all-reduce of two numbers, on every
    rank: for a metric that only some ranks hold (logged with ``rank_zero_only=True``),
    so that every rank then makes the same :meth:`GreedyLR.observe_eval` call."""
    if not is_distributed():
        return value
    buffer = torch.tensor([0.0 if value is None else float(value), float(value is not None)],
                          dtype=torch.float64, device=_collective_device(0.0))
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    total, count = buffer.tolist()
    return None if not count else total / count

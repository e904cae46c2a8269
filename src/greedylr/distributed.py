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

The same all-reduce checks that every rank's GreedyLR is built alike (``Digest``):
a configuration or base LRs that differ between ranks (a ``total_steps`` taken from a
rank-local dataloader length, a knob read from a per-rank file) would give each rank its
own LR from the same mean loss, the replicas drifting apart without a word. Each rank
adds small integer digests of its configuration and base LRs, and their squares; the
ranks agree exactly where every sum of squares is the world size times the square of the
mean (see ``_disagreeing``), and otherwise every rank raises :class:`RanksDisagree`
naming what differs (device mode: see :func:`agreed_mean_on_device`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, overload

import numpy as np
import torch
import torch.distributed as dist

from greedylr.config import GreedyConfig

__all__ = ["BUILD", "EVAL", "STEP", "Digest", "RanksDisagree", "agreed_mean",
           "agreed_mean_on_device", "is_distributed", "mean_across_ranks", "mean_where_given"]

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


#: Which call an all-reduce of :func:`agreed_mean` serves: a step's loss, a held-out value,
#: the check a device-mode GreedyLR makes when it is built (its digest only).
STEP, EVAL, BUILD = "step", "observe_eval", "__init__"
# BUILD's code is above any world size: a sum of codes then tells how many ranks were in
# each call (observe_eval's count below it, __init__'s its multiple), and it equals the
# caller's code times the world size only where every rank was in the caller's call
_BUILD_CODE = float(2**21)
_CODES = {STEP: 0.0, EVAL: 1.0, BUILD: _BUILD_CODE}


class RanksDisagree(RuntimeError):
    """The ranks were not all in the same GreedyLR call, not all had a value for it, or
    their GreedyLR configurations or base LRs differ."""


# What a Digest digests, one pair of sums (d, d*d) each: the number of parameter groups,
# the base LRs (twice, 32 bits in all), the whole configuration (twice), which decide;
# then each knob once, which only name the knob that differs.
_KNOBS = tuple(f.name for f in fields(GreedyConfig))
_GROUPS, _BASE_LRS, _CONFIG = 0, (1, 2), (3, 4)
_DECIDING = 5  # the pairs that decide whether the ranks agree
_PAIRS = _DECIDING + len(_KNOBS)
_HEAD = 3  # the value, the count of ranks without one, the call's code
_SIZE = _HEAD + 2 * _PAIRS


def _hash16(text: str, salt: bytes, parts: int) -> list[int]:
    """``parts`` 16-bit integers digesting ``text``: the same in every process (no
    ``hash()`` randomisation)."""
    raw = hashlib.blake2b(text.encode(), digest_size=2 * parts, salt=salt).digest()
    return [int.from_bytes(raw[2 * i:2 * i + 2], "big") for i in range(parts)]


class Digest:
    """What must be the same on every rank for every rank to apply the same LR: the
    GreedyLR configuration (``GreedyConfig.to_dict()``) and the base LRs, as small
    integers that :func:`agreed_mean` adds, with their squares, to its all-reduce.

    Args:
        config: the configuration as ``GreedyConfig.to_dict()`` gives it; None (with no
            ``base_lrs``) for a rank that has nothing to check, which agrees with any
            other such rank.
        base_lrs: each parameter group's base LR, as floats.
    """

    __slots__ = ("_expected", "_on", "_template", "values")

    def __init__(self, config: Mapping[str, Any] | None = None,
                 base_lrs: Sequence[float] = ()) -> None:
        values = [0] * _PAIRS
        if config is not None:
            values[_GROUPS] = len(base_lrs) & 0xFFFF
            values[1:3] = _hash16(repr([float(b) for b in base_lrs]), b"base_lrs", 2)
            values[3:5] = _hash16(repr(sorted(config.items())), b"config", 2)
            for i, knob in enumerate(_KNOBS, start=_DECIDING):
                values[i] = _hash16(repr(config.get(knob)), knob.encode()[:16], 1)[0]
        self.values = tuple(values)
        self._on: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}
        self._template: np.ndarray | None = None
        self._expected: tuple[int, list[float]] | None = None

    def parts(self, dtype: torch.dtype = torch.float64) -> list[float]:
        """``d, d*d`` for each digest ``d``. In float64 16-bit digests, whose sums are
        exact integers up to 2**21 ranks; in a narrower dtype (MPS has no float64) 8-bit
        ones, exact up to 256 ranks."""
        mask = 0xFFFF if dtype == torch.float64 else 0xFF
        out: list[float] = []
        for value in self.values:
            d = value & mask
            out += (float(d), float(d * d))
        return out

    def buffer(self) -> np.ndarray:
        """A float64 buffer for :func:`agreed_mean`: zeros where the value, the count and
        the code go, then :meth:`parts`; a fresh copy each time, of a template made once
        (a NumPy copy and ``torch.from_numpy`` cost less than filling a tensor)."""
        if self._template is None:
            self._template = np.array([0.0] * _HEAD + self.parts(), dtype=np.float64)
        return self._template.copy()

    def expected(self, world: int) -> list[float]:
        """The deciding pairs' sums where every rank has this digest: ``world`` times
        :meth:`parts`. A rank that finds them agrees with every other, exactly (a sum of
        squares equal to ``world`` times the squared mean: every d is the mean), and a
        rank that does not, with none: every rank reaches the same verdict."""
        if self._expected is None or self._expected[0] != world:
            parts = self.parts()[:2 * _DECIDING]
            self._expected = (world, [world * p for p in parts])
        return self._expected[1]

    def on(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """:meth:`parts` as a tensor on ``device``, made once per device and dtype (the
        copy to the device is made here, not at every step)."""
        key = (device, dtype)
        tensor = self._on.get(key)
        if tensor is None:
            tensor = self._on[key] = torch.tensor(self.parts(dtype), dtype=dtype, device=device)
        return tensor


_NO_DIGEST = Digest()


def _disagreeing(sums: Sequence[float], world: int, pairs: Sequence[int]) -> list[int]:
    """The pairs of ``pairs`` whose digests are not the same on every rank, from their
    sums over the ranks (``sums[2 * i]``: of d, ``sums[2 * i + 1]``: of d*d).

    Every rank's d is the same exactly where the sum of d is ``world * m`` for an integer
    ``m`` and the sum of squares is ``world * m * m`` (the sum of squares is larger
    otherwise: Cauchy-Schwarz), in integers, exact."""
    bad = []
    for i in pairs:
        mean, rest = divmod(round(sums[2 * i]), world)
        if rest or round(sums[2 * i + 1]) != world * mean * mean:
            bad.append(i)
    return bad


def _alike_on_device(sums: torch.Tensor, world: int) -> torch.Tensor:
    """:func:`_disagreeing` on the device, for every pair of ``sums`` at once: a 0-d bool
    tensor, True where no pair differs, read nowhere. Exact in float64 (the sums, and
    ``world * mean * mean`` where the mean is an integer, are integers below 2**53; a mean
    that is not an integer is at least ``1 / world`` from one, far above float64's
    resolution at 2**16), and in float32 for the 8-bit digests of :meth:`Digest.parts`."""
    pairs = sums.reshape(-1, 2)
    mean = pairs[:, 0] / world
    return ((mean == mean.floor()) & (pairs[:, 1] == world * mean * mean)).all()


def _differ_message(call: str, sums: Sequence[float], world: int, bad: list[int],
                    digest: Digest) -> str:
    """What :class:`RanksDisagree` says where the digests differ: what differs, as far as
    the digests tell."""
    what = []
    if _GROUPS in bad:
        what.append("the number of parameter groups")
    elif any(i in bad for i in _BASE_LRS):
        what.append("the base LRs (each parameter group's initial lr)")
    if any(i in bad for i in _CONFIG):
        knobs = [_KNOBS[i - _DECIDING] for i in _disagreeing(sums, world,
                                                             range(_DECIDING, _PAIRS))]
        named = ", ".join(knobs) if knobs else "which knob, the digests cannot tell"
        what.append(f"the configuration ({named})")
    differ = " and ".join(what) or "which, the digests cannot tell"
    return (
        f"GreedyLR.{call}: the GreedyLR configuration or base LRs differ across ranks: "
        f"{differ}. Every rank applies the same LR only if every rank's GreedyLR "
        "is built alike: the same knobs (not a total_steps from a rank-local dataloader "
        "length, nor a knob read per rank) and the same parameter groups and LRs; compare "
        "sched.config.to_dict() and sched.base_lrs across ranks (this rank's digest: "
        f"{digest.values[1]:04x}{digest.values[2]:04x}/{digest.values[3]:04x}"
        f"{digest.values[4]:04x}). No decision was made")


def _fill_head(buffer: Any, value: Any, call: str) -> None:
    """Write this rank's head into ``buffer`` (a tensor or a NumPy array, zeros there):
    its value (0 for none), whether it has none, which call this is."""
    if value is None:
        buffer[1] = 1.0
    else:
        buffer[0] = value
    buffer[2] = _CODES[call]


def _agreement(buffer: torch.Tensor, value: Any, call: str, digest: Digest) -> torch.Tensor:
    """Fill ``buffer`` (``_SIZE`` zeros, on the device) with this rank's part: its head
    (:func:`_fill_head`) and its :class:`Digest`."""
    _fill_head(buffer, value, call)
    buffer[_HEAD:] = digest.on(buffer.device, buffer.dtype)
    return buffer


def agreed_mean(value: float | None, call: str, digest: Digest = _NO_DIGEST) -> float:
    """The mean of ``value`` over all ranks, in float64, where every rank is in the same
    ``call`` (``STEP``, ``EVAL``, or ``BUILD`` for the digest alone) with a value and the
    same ``digest``; ``value`` itself outside a process group.

    One all-reduce of a few dozen numbers, where :func:`mean_across_ranks` reduces one:
    the value, a count of ranks without one (``value=None``: a rank that could not
    compute its value takes part all the same, so that no rank waits forever), a code of
    the call, whose sum tells whether some ranks met another call's collective, and the
    ``Digest`` of the rank's GreedyLR.

    Raises:
        RanksDisagree: on every rank, where a rank had no value, was in another call, or
            had another digest (naming what differs).
    """
    if not is_distributed():
        if value is None:
            raise RanksDisagree(f"GreedyLR.{call}: no value")
        return value
    world = dist.get_world_size()
    values = digest.buffer()  # the digest's parts in place already
    _fill_head(values, value, call)
    buffer = torch.from_numpy(values)
    device = _collective_device(0.0)
    if device.type != "cpu":
        buffer = buffer.to(device)
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    total, missing, codes, *sums = buffer.tolist()
    if round(codes) != round(_CODES[call] * world):
        raise RanksDisagree(_out_of_step(call, round(codes), world))
    if sums[:2 * _DECIDING] != digest.expected(world):
        bad = _disagreeing(sums, world, range(_DECIDING))
        raise RanksDisagree(_differ_message(call, sums, world, bad, digest))
    if missing:
        raise RanksDisagree(
            f"GreedyLR.{call}: {round(missing)} of {world} ranks had no value to give (see "
            "the error on those ranks); no decision was made")
    return total / world


def _out_of_step(call: str, codes: int, world: int) -> str:
    """What :class:`RanksDisagree` says where the ranks were not all in ``call``."""
    building, in_eval = divmod(codes, round(_BUILD_CODE))
    if not building:
        return (
            f"GreedyLR.{call}: {in_eval} of {world} ranks were in observe_eval, the others in "
            "step: both are collectives (the value is averaged across ranks); call each on "
            "every rank, the same number of times (never under `if rank == 0:`)")
    return (
        f"GreedyLR.{call}: of {world} ranks, {building} were building a device-mode "
        f"GreedyLR (which checks that every rank's is the same), {in_eval} in observe_eval "
        f"and {world - building - in_eval} in step: build it on every rank, in the same "
        "mode, and call step and observe_eval on every rank")


def agreed_mean_on_device(value: torch.Tensor | None, call: str, like: torch.Tensor,
                          digest: Digest = _NO_DIGEST, *, verify: bool = False) -> torch.Tensor:
    """:func:`agreed_mean` without a host read: a ``[1]`` tensor like ``like`` (its dtype
    and device; a float64 state sums as float mode does), NaN where the ranks disagree
    (which the rule skips as a non-finite loss; the rank at fault raises itself).

    Ranks whose digests differ have no rank at fault: with ``verify`` the verdict on the
    digests is read back (a host sync: GreedyLR asks for it at the first step after its
    configuration or base LRs changed since it was built) and every rank that reads it
    raises.

    Args:
        value: this rank's value, a one-element tensor, or None for none.
        call: ``STEP`` or ``EVAL``.
        like: a tensor of the dtype and device to reduce in and return on.
        digest: this rank's ``Digest``.
        verify: read the digests' verdict back, and raise where they differ.

    Raises:
        RanksDisagree: with ``verify``, where the digests differ (naming what differs).
    """
    if not is_distributed():
        assert value is not None
        return value.reshape(1).to(dtype=like.dtype)
    world = dist.get_world_size()
    device = _collective_device(like)
    buffer = torch.zeros(_SIZE, dtype=like.dtype, device=device)
    if value is not None:
        value = value.detach().reshape(()).to(device=device, dtype=like.dtype)
    dist.all_reduce(_agreement(buffer, value, call, digest), op=dist.ReduceOp.SUM)
    if verify:
        sums = buffer[_HEAD:].tolist()
        bad = _disagreeing(sums, world, range(_DECIDING))
        if bad:
            raise RanksDisagree(_differ_message(call, sums, world, bad, digest))
    alike = _alike_on_device(buffer[_HEAD:_HEAD + 2 * _DECIDING], world)
    agreed = (buffer[1] == 0) & (buffer[2] == _CODES[call] * world) & alike
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

"""The tensor rule's state: :class:`TensorState`, built, converted and sliced.

Apart from :mod:`greedylr.tensor_rule` (the update) because making a state (validating
knobs on the host, once) and converting it to and from the float rule's
:class:`~greedylr.rule.RuleState` (checkpoints have one format for both modes) are a
different job from advancing it without host reads. Re-exported by
:mod:`greedylr.tensor_rule`.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from greedylr.config import BLOWUP_SQUARINGS
from greedylr.rule import GreedyConfig, RuleState

__all__ = ["TensorState", "check_config", "from_rule_state", "init", "select", "to_rule_state"]

logger = logging.getLogger("greedylr")

# Longest EMA bias-correction table (float64 entries: 8 MiB).
_MAX_EMA_TABLE = 1 << 20

_INT = torch.int64


class TensorState(NamedTuple):
    """Everything the rule remembers, as tensors. ``B`` is the batch shape (may be ``()``).

    The fields mirror :class:`greedylr.rule.RuleState`; ``smoothed`` and ``first`` are
    NaN before the first finite observation (the float rule's ``None``), and the window
    is a ring buffer of fixed width whose first ``window_count`` slots are in use.
    """

    base_lrs: Tensor  # [*B, G]
    min_lrs: Tensor  # [*B, G]
    max_lrs: Tensor  # [*B, G]
    lrs: Tensor  # [*B, G]
    step: Tensor  # [*B] int64
    reference: Tensor  # [*B]
    num_good: Tensor  # [*B] int64
    num_bad: Tensor  # [*B] int64
    hold: Tensor  # [*B] int64
    floor_hits: Tensor  # [*B] int64
    smoothed: Tensor  # [*B]
    window_values: Tensor  # [*B, window] ("window" smoothing) or [*B, 0]
    window_count: Tensor  # [*B] int64
    window_pos: Tensor  # [*B] int64
    window_sum: Tensor  # [*B]
    ema: Tensor  # [*B]
    ema_count: Tensor  # [*B] int64
    noise_var: Tensor  # [*B]
    noise_count: Tensor  # [*B] int64
    annealing: Tensor  # [*B] bool: the final cooldown has started
    anneal_from: Tensor  # [*B, G]: the LRs where it started (0 before)
    payoff_left: Tensor  # [*B] int64
    payoff_ref: Tensor  # [*B]
    penalty: Tensor  # [*B] int64
    eval_best: Tensor  # [*B]: NaN before the first held-out value
    eval_bad: Tensor  # [*B] int64
    eval_block: Tensor  # [*B] bool
    eval_train: Tensor  # [*B]: the smoothed loss at the last held-out value (eval_pace; NaN: none)
    eval_worse_cuts: Tensor  # [*B] int64: compounding held-out cuts (eval_compound_margin)
    first: Tensor  # [*B]: the first smoothed value with a guard on (NaN: none)
    blowup_cuts: Tensor  # [*B] int64: decreases in the current blow-up so far
    spike_steps: Tensor  # [*B] int64: spike steps in a row up to now (spike_ratio)
    anneal_to_zero: Tensor  # [*B] bool: the final cooldown ends at 0 (rule.RuleState's)
    rule_lrs: Tensor  # [*B, G]: the rule's own LRs with a decaying base schedule, else [*B, 0]
    factor: Tensor  # [*B]
    threshold: Tensor  # [*B]
    eps: Tensor  # [*B]
    patience: Tensor  # [*B] int64
    up_patience: Tensor  # [*B] int64
    cooldown: Tensor  # [*B] int64
    hold_after_increase: Tensor  # [*B] int64
    blowup_factors: Tensor  # [*B, K]: GreedyConfig.blowup_table of each run ([*B, 0]: off)
    ema_denominators: Tensor  # [L]: 1 - beta**n for n = 1..L, shared by the batch
    anneal_table: Tensor  # [A + 1]: the cooldown's shape (GreedyConfig.anneal_table), shared
    base_table: Tensor  # [S]: the base schedule's factors (GreedyConfig.base_table), shared

    @property
    def batch_shape(self) -> torch.Size:
        return self.step.shape



def check_config(config: GreedyConfig) -> None:
    """Raise if ``config`` needs a host read per step.

    Raises:
        ValueError: for ``on_nonfinite="raise"``: raising needs the host to look at the
            loss. Use ``"skip"`` or ``"decrease"`` and watch the ``NONFINITE`` flag.
    """
    if config.on_nonfinite == "raise":
        raise ValueError(
            "on_nonfinite='raise' needs a host read of every loss, which the device-"
            "resident rule avoids; use 'skip' or 'decrease' and check the 'nonfinite' "
            "events"
        )


def _ema_denominators(config: GreedyConfig, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``1 - beta**n`` for n = 1, 2, ... as Python computes it, until it rounds to 1.0."""
    if config.smoothing != "ema":
        return torch.ones(1, dtype=dtype, device=device)
    beta = 1.0 - 2.0 / (config.window + 1)
    values = []
    n = 1
    while n <= _MAX_EMA_TABLE:
        value = 1.0 - beta**n
        values.append(value)
        if value == 1.0:
            break
        n += 1
    else:
        logger.info(
            "EMA span %d: bias correction beyond step %d uses torch.pow, which may "
            "differ from the float rule in the last place", config.window, _MAX_EMA_TABLE,
        )
    return torch.tensor(values, dtype=dtype, device=device)


def _warn_if_coarser(tensor: Tensor, dtype: torch.dtype, name: str, stacklevel: int) -> None:
    """Warn where a floating ``tensor``, less precise than the state's ``dtype``, holds a
    value that is not the decimal it reads as (0.9 in float32 is 0.8999999761581421): the
    run would not decide as the float rule on that decimal."""
    if not (tensor.is_floating_point() and dtype.is_floating_point
            and torch.finfo(tensor.dtype).eps > torch.finfo(dtype).eps):
        return
    rounded = []
    for value in dict.fromkeys(tensor.detach().reshape(-1).double().tolist()):
        if not math.isfinite(value):
            continue
        for digits in range(1, 18):  # the shortest decimal that reads back as the value
            text = f"{value:.{digits}g}"
            if torch.tensor(float(text), dtype=tensor.dtype).item() == value:
                break
        if float(text) != value:
            rounded.append(f"{text} is {value!r}")
            if len(rounded) == 3:
                break
    if rounded:
        warnings.warn(
            f"{name} is a {tensor.dtype} tensor, less precise than the state's {dtype}: "
            f"its values are taken as they are ({', '.join(rounded)}), not as the decimals "
            f"they read as. Pass Python floats, or a {dtype} tensor, for the float rule's "
            f"values to the last bit",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


def _knob(
    value: float | int | Tensor | None,
    default: float | int,
    batch: torch.Size,
    dtype: torch.dtype,
    device: torch.device | None,
    name: str,
    ok: Any,
    what: str,
    state_dtype: torch.dtype | None = None,
) -> Tensor:
    """A per-run knob as a tensor of the batch shape, validated on the host (once); a
    floating tensor less precise than ``state_dtype`` is warned about."""
    value = default if value is None else value
    if isinstance(value, Tensor):
        if state_dtype is not None:  # called by _knobs, called by init
            _warn_if_coarser(value, state_dtype, name, stacklevel=4)
        tensor = value.detach().to("cpu")
    else:
        # through float64, so that a Python float keeps every bit
        tensor = torch.tensor(value, dtype=torch.float64 if dtype != _INT else None)
    if tensor.is_floating_point() and dtype == _INT:
        if not bool(torch.all(tensor == tensor.round())):
            raise ValueError(f"{name} must be {what}, got {tensor.tolist()!r}")
    tensor = tensor.to(dtype)
    try:
        tensor = torch.broadcast_to(tensor, batch).clone()
    except RuntimeError as exc:
        raise ValueError(
            f"{name} of shape {tuple(tensor.shape)} does not broadcast to the batch "
            f"shape {tuple(batch)}"
        ) from exc
    if not bool(torch.all(ok(tensor))):
        raise ValueError(f"{name} must be {what}, got {tensor.tolist()!r}")
    return tensor.to(device)


def _first(*values: Any) -> Any:
    """The first value that is not None (None if all are)."""
    return next((v for v in values if v is not None), None)


def _group_bound(
    absolute: Any, ratio: float | None, base: Tensor, fallback: float, name: str
) -> Tensor:
    groups = base.shape[-1]
    if absolute is not None:
        values = [float(absolute)] * groups if isinstance(absolute, (int, float)) else [
            float(v) for v in absolute
        ]
        if len(values) != groups:
            raise ValueError(f"{name} has {len(values)} values for {groups} parameter groups")
        return torch.tensor(values, dtype=base.dtype).expand_as(base).clone()
    if ratio is None:
        return torch.full_like(base, fallback)
    return base * ratio


def init(
    config: GreedyConfig,
    base_lrs: Tensor | Sequence[float] | Sequence[Sequence[float]],
    *,
    factor: float | Tensor | None = None,
    threshold: float | Tensor | None = None,
    eps: float | Tensor | None = None,
    patience: int | Tensor | None = None,
    increase_patience: int | Tensor | None = None,
    cooldown: int | Tensor | None = None,
    hold_after_increase: int | Tensor | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> TensorState:
    """The state before the first observation, for one run or a batch of runs.

    Validation reads the host (once, here); :func:`greedylr.tensor_rule.update` never does.

    Args:
        config: the shared configuration; per-run knobs given here override its values.
        base_lrs: the base LR of every group, shape ``[G]`` for one run or ``[*B, G]``.
            A tensor is taken at its own precision: ``torch.full(shape, 3e-4)`` is
            float32 and holds ``3.0000001e-4`` (warned about where less precise than
            ``dtype``); pass Python floats, or a float64 tensor, for the float rule's
            base LR to the last bit.
        factor: per-run factor, a number or a tensor broadcastable to ``B`` (a tensor
            at its own precision, as ``base_lrs``: a float32 0.9 is 0.8999999761581421;
            warned about where less precise than ``dtype``).
        threshold: per-run threshold.
        eps: per-run minimum change.
        patience: per-run patience for decreases.
        increase_patience: per-run patience for increases (default: the config's).
        cooldown: per-run hold after a decrease.
        hold_after_increase: per-run hold after an increase.
        device: where the state lives (default: ``base_lrs``' device, else the CPU).
        dtype: floating dtype of the state; float64 gives bit-exact parity with
            :mod:`greedylr.rule`.

    Returns:
        The state; ``state.lrs`` are the LRs to apply now.

    Raises:
        ValueError: for a bad base LR, bound or knob, with the value in the message.
    """
    check_config(config)
    if device is None:
        device = base_lrs.device if isinstance(base_lrs, Tensor) else torch.device("cpu")
    device = torch.device(device)
    if isinstance(base_lrs, Tensor):
        _warn_if_coarser(base_lrs, dtype, "base_lrs", stacklevel=2)
    base, lows, highs = _base_and_bounds(config, base_lrs)
    batch = base.shape[:-1]
    lrs = base * config.warmup_start_factor if config.warmup > 0 else base.clone()
    overrides = {"factor": factor, "threshold": threshold, "eps": eps, "patience": patience,
                 "up_patience": _first(increase_patience, config.increase_patience, patience),
                 "cooldown": cooldown, "hold_after_increase": hold_after_increase}

    def floats(value: float) -> Tensor:
        return torch.full(batch, value, dtype=dtype, device=device)

    def ints() -> Tensor:
        return torch.zeros(batch, dtype=_INT, device=device)

    width = config.window if config.smoothing == "window" else 0
    return TensorState(
        base_lrs=base.to(device, dtype),
        min_lrs=lows.to(device, dtype),
        max_lrs=highs.to(device, dtype),
        lrs=lrs.to(device, dtype),
        reference=floats(config.initial_reference),
        window_values=torch.zeros(*batch, width, dtype=dtype, device=device),
        window_count=ints(),
        annealing=torch.zeros(batch, dtype=torch.bool, device=device),
        anneal_from=torch.zeros_like(lrs, dtype=dtype, device=device),
        rule_lrs=_own(config, lrs).to(device, dtype),
        **{name: ints() for name in _COUNTS},
        **{name: floats(math.nan) for name in _OPTIONAL},
        **{name: floats(0.0) for name in _NUMBERS if name not in ("reference", *_OPTIONAL)},
        **{name: torch.zeros(batch, dtype=torch.bool, device=device) for name in _FLAGS},
        **_knobs(config, batch, device, dtype, overrides),
        **_tables(config, device, dtype),
    )


def _base_and_bounds(
    config: GreedyConfig, base_lrs: Tensor | Sequence[float] | Sequence[Sequence[float]]
) -> tuple[Tensor, Tensor, Tensor]:
    """The base LRs and their bounds in float64 on the host, validated."""
    if isinstance(base_lrs, Tensor):
        base = base_lrs.detach().to("cpu", torch.float64)
    else:
        base = torch.tensor(base_lrs, dtype=torch.float64)
    if base.ndim == 0 or base.shape[-1] == 0:
        raise ValueError("at least one parameter group is needed: base_lrs is [*B, G]")
    if not bool(torch.all(torch.isfinite(base) & (base >= 0))):
        raise ValueError(f"initial lrs must be finite and >= 0, got {base.tolist()!r}")
    lows = _group_bound(config.min_lr, config.min_lr_ratio, base, 0.0, "min_lr")
    highs = _group_bound(config.max_lr, config.max_lr_ratio, base, math.inf, "max_lr")
    if bool(torch.any(lows > highs)):
        raise ValueError(f"min_lr {lows.tolist()!r} is above max_lr {highs.tolist()!r}")
    if config.check_bounds and not bool(torch.all((lows <= base) & (base <= highs))):
        raise ValueError(
            f"initial lrs {base.tolist()!r} are outside their bounds "
            f"[{lows.tolist()!r}, {highs.tolist()!r}]"
        )
    return base, lows, highs


def _knobs(
    config: GreedyConfig,
    batch: torch.Size,
    device: torch.device,
    dtype: torch.dtype,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Tensor]:
    """The per-run knobs: the config's, or the ``overrides`` given, validated."""
    given = overrides or {}
    f64 = torch.float64
    relative = config.threshold_mode != "abs"
    # on the host first: the blow-up guard's factors are computed from its values there
    factor = _knob(given.get("factor"), config.factor, batch, f64, torch.device("cpu"),
                   "factor", lambda t: (t > 0) & (t < 1), "in (0, 1)", dtype)
    knobs = {
        "factor": factor.to(device),
        "blowup_factors": _blowup_factors(config, factor).to(device),
        # a fraction of the reference with "rel" and "rel_product", as GreedyConfig requires
        "threshold": _knob(given.get("threshold"), config.threshold, batch, f64, device,
                           "threshold", lambda t: (t >= 0) & ((t < 1) | (not relative)),
                           f"in [0, 1) with threshold_mode={config.threshold_mode!r}"
                           if relative else ">= 0",
                           dtype),
        "eps": _knob(given.get("eps"), config.eps, batch, f64, device, "eps",
                     lambda t: t >= 0, ">= 0", dtype),
    }
    for name, default, label in (
        ("patience", config.patience, "patience"),
        ("up_patience", config.up_patience, "increase_patience"),
        ("cooldown", config.cooldown, "cooldown"),
        ("hold_after_increase", config.hold_after_increase, "hold_after_increase"),
    ):
        knobs[name] = _knob(given.get(name), default, batch, _INT, device, label,
                            lambda t: t >= 0, "an int >= 0")
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in knobs.items()}


def _blowup_factors(config: GreedyConfig, factor: Tensor) -> Tensor:
    """The blow-up guard's decrease factors of every run (``factor``, ``[*B]`` on the
    host): :meth:`GreedyConfig.blowup_table` of its factor, in Python floats as the float
    rule computes them, ``[*B, BLOWUP_SQUARINGS + 1]``; ``[*B, 0]`` with the guard off."""
    if config.blowup_ratio is None:
        return factor.unsqueeze(-1)[..., :0].clone()
    rows = [config.blowup_table(f) for f in factor.reshape(-1).tolist()]
    return torch.tensor(rows, dtype=torch.float64).reshape(*factor.shape, BLOWUP_SQUARINGS + 1)


def _own(config: GreedyConfig, lrs: Tensor) -> Tensor:
    """The rule's own LRs for ``rule_lrs``: ``lrs`` with a decaying base schedule (the
    factor is 1 before the first observation), none (``[*B, 0]``) with ``"constant"``."""
    return lrs.clone() if config.base_schedule != "constant" else lrs[..., :0].clone()


def _tables(config: GreedyConfig, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
    """The lookup tables shared by the batch: EMA bias correction, the cooldown's shape,
    the base schedule's factors."""
    return {
        "ema_denominators": _ema_denominators(config, device, dtype),
        # the final cooldown's multipliers as the float rule computes them (one if off)
        "anneal_table": torch.tensor(config.anneal_table() or [1.0], dtype=dtype,
                                     device=device),
        "base_table": torch.tensor(config.base_table() or [1.0], dtype=dtype, device=device),
    }


# RuleState fields held as int64 counters, as floats (None <-> NaN where optional), and
# as bools
_COUNTS = ("step", "num_good", "num_bad", "hold", "floor_hits", "window_pos", "ema_count",
           "noise_count", "payoff_left", "penalty", "eval_bad", "blowup_cuts",
           "eval_worse_cuts", "spike_steps")
_NUMBERS = ("reference", "smoothed", "window_sum", "ema", "noise_var", "payoff_ref",
            "eval_best", "eval_train", "first")
_OPTIONAL = ("smoothed", "eval_best", "eval_train", "first")
_FLAGS = ("eval_block", "anneal_to_zero")
_VECTORS = ("base_lrs", "min_lrs", "max_lrs", "lrs")


def from_rule_state(
    config: GreedyConfig,
    state: RuleState,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
) -> TensorState:
    """The tensor state (batch shape ``()``) equal to a float rule state.

    Checkpoints therefore have one format for both modes: :class:`greedylr.GreedyLR`
    saves :func:`to_rule_state` and loads through this function.
    """
    check_config(config)
    device = torch.device(device)
    groups = len(state.lrs)

    def vec(values: Sequence[float]) -> Tensor:
        return torch.tensor([float(v) for v in values], dtype=dtype, device=device)

    def num(value: float | None) -> Tensor:
        return torch.tensor(math.nan if value is None else float(value), dtype=dtype,
                            device=device)

    width = config.window if config.smoothing == "window" else 0
    window = torch.zeros(width, dtype=dtype, device=device)
    if width:
        if len(state.window_values) > width:
            raise ValueError(
                f"window of {len(state.window_values)} values for a window of {width}"
            )
        window[: len(state.window_values)] = vec(state.window_values)
    if len(state.base_lrs) != groups or len(state.min_lrs) != groups:
        raise ValueError("inconsistent number of parameter groups in the rule state")
    return TensorState(
        window_values=window,
        window_count=torch.tensor(len(state.window_values), dtype=_INT, device=device),
        annealing=torch.tensor(bool(state.anneal_from), device=device),
        anneal_from=vec(state.anneal_from or [0.0] * groups),
        # a state saved without them (0.2's format) starts them from the LRs it applied
        rule_lrs=_own(config, vec(state.rule_lrs or state.lrs)),
        **{name: vec(getattr(state, name)) for name in _VECTORS},
        **{name: torch.tensor(int(getattr(state, name)), dtype=_INT, device=device)
           for name in _COUNTS},
        **{name: num(getattr(state, name)) for name in _NUMBERS},
        **{name: torch.tensor(bool(getattr(state, name)), device=device) for name in _FLAGS},
        **_knobs(config, torch.Size(), device, dtype),
        **_tables(config, device, dtype),
    )


def to_rule_state(state: TensorState) -> RuleState:
    """The float rule state equal to an unbatched tensor state (reads the host).

    Raises:
        ValueError: for a batched state; pick one run first with :func:`select`.
    """
    if state.step.ndim != 0:
        raise ValueError(f"to_rule_state takes one run, got batch shape {tuple(state.step.shape)}")
    host = TensorState(*(t.detach().to("cpu") for t in state))
    values: dict[str, Any] = {name: float(getattr(host, name)) for name in _NUMBERS}
    for name in _OPTIONAL:
        if math.isnan(values[name]):
            values[name] = None
    values.update({name: int(getattr(host, name)) for name in _COUNTS})
    values.update({name: getattr(host, name).tolist() for name in _VECTORS})
    values.update({name: bool(getattr(host, name)) for name in _FLAGS})
    return RuleState(
        window_values=host.window_values[: int(host.window_count)].tolist(),
        anneal_from=host.anneal_from.tolist() if bool(host.annealing) else [],
        rule_lrs=host.rule_lrs.tolist(),
        **values,
    )


def select(state: TensorState, index: Any) -> TensorState:
    """The runs ``index`` of a batched state (the shared tables are kept whole)."""
    fields = {
        name: value if name in _SHARED else value[index]
        for name, value in state._asdict().items()
    }
    return TensorState(**fields)


_SHARED = ("ema_denominators", "anneal_table", "base_table")

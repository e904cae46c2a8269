"""GreedyLR for JAX: an optax transformation driven by the loss, decided on the device.

:func:`greedy_lr` is :mod:`greedylr.rule` written in ``jnp`` operations, as an
:class:`optax.GradientTransformationExtraArgs` that takes the loss as ``value=``, like
``optax.contrib.reduce_on_plateau``. Every decision is a ``jnp.where``, the state is a
:class:`GreedyLRState` of arrays, and nothing is read back to the host, so the update
runs inside ``jax.jit``, ``lax.scan``, ``optax.chain``, ``optax.MultiSteps``,
``jax.pmap`` and ``jax.shard_map``.

It scales the updates of the transformations before it by ``lr / learning_rate``, as
``reduce_on_plateau`` does. The port copies the rule's arithmetic only; the events'
bits and names come from :mod:`greedylr.events`. What it scales, in which order the
loss and the LR meet, and how close it stays to the float rule: the optax guide
(``docs/frameworks/optax.md``).

Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> from greedylr.integrations.optax import greedy_lr
    >>> opt = optax.chain(optax.sgd(0.1), greedy_lr(0.1, factor=0.5, patience=0,
    ...                   smoothing="none"))
    >>> params = jnp.zeros(2)
    >>> state = opt.init(params)
    >>> grads = jnp.ones(2)
    >>> for loss in (1.0, 0.5):   # two improvements: lr 0.1 -> 0.2 -> 0.4
    ...     updates, state = opt.update(grads, state, params, value=loss)
    >>> round(float(state[1].lr), 6)
    0.4
    >>> event_kinds(int(state[1].events))
    ('increase',)
"""

from __future__ import annotations

import logging
import numbers
import operator
from typing import Any, NamedTuple

import numpy as np

from greedylr._extras import requires_extra
from greedylr.config import BLOWUP_RECOVERED, BLOWUP_SQUARINGS, SPIKE_CUT
from greedylr.events import (
    ANNEAL,
    BLOWUP,
    CLIPPED,
    DECREASE,
    EVAL_CLIPPED,
    EVAL_DECREASE,
    HOLD,
    INCREASE,
    NONFINITE,
    RESET,
    SPIKE,
    STALLED,
    UNDO,
    WARMUP_END,
    kinds_of,
)
from greedylr.rule import GreedyConfig

with requires_extra("jax", "greedylr.integrations.optax"):
    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax

__all__ = [
    "ANNEAL",
    "BLOWUP",
    "CLIPPED",
    "DECREASE",
    "EVAL_CLIPPED",
    "EVAL_DECREASE",
    "HOLD",
    "INCREASE",
    "NONFINITE",
    "RESET",
    "SPIKE",
    "STALLED",
    "UNDO",
    "WARMUP_END",
    "GreedyLRState",
    "event_kinds",
    "greedy_lr",
]

logger = logging.getLogger("greedylr")

# Longest EMA bias-correction table: 64k entries cover spans up to about 3,600 exactly
# in float64; beyond its end the correction falls back to XLA's pow.
_MAX_EMA_TABLE = 1 << 16


class GreedyLRState(NamedTuple):
    """The state of :func:`greedy_lr`: the rule's :class:`~greedylr.rule.RuleState` as arrays.

    Floats have JAX's default float dtype when ``init`` runs (float32, or float64 under
    ``jax.enable_x64``); counters are int32. ``optax.tree.get(state, "lr")`` finds the
    fields inside a chain.

    Attributes:
        lr: the learning rate for the next step, in the units of ``learning_rate``;
            with a decaying ``base_schedule``, the rule's own LR, before the decay.
        scale: the factor applied to the next step's updates: ``lr / learning_rate``,
            times :meth:`~greedylr.GreedyConfig.base_factor` with a decaying
            ``base_schedule``.
        step: observations so far.
        reference: the smoothed value that the next one must beat (best or previous).
        num_good: consecutive improving observations.
        num_bad: consecutive non-improving observations.
        hold: observations still to ignore after a change (cooldown or hold after
            an increase).
        floor_hits: decreases that found the LR at its lower bound (for the reset).
        smoothed: the last smoothed loss; NaN before the first finite one.
        events: bit flags of what the last observation did (:data:`INCREASE`,
            :data:`DECREASE`, ...); :func:`event_kinds` names them. :data:`BLOWUP` is
            not a kind but a modifier: the decrease, or the final cooldown that starts,
            is the blow-up guard's (``blowup_ratio``); :data:`SPIKE` is the spike guard's
            cut (``spike_ratio``), a ``decrease`` of its own after the step's other
            events (an increase and a spike cut on one step are two events);
            :data:`STALLED` a modifier: the final cooldown starts with increases blocked
            (``stalled_anneals_to_zero``); :data:`EVAL_CLIPPED`: the held-out decrease
            given as ``eval_value`` was blocked (a ``clipped`` event).
        window_values: the ring buffer of the window mean (empty unless
            ``smoothing="window"``); only the first ``window_count`` entries count,
            the others (all of them just after a reset) are never read.
        window_pos: the oldest entry of a full window.
        window_count: how many entries the window holds.
        window_sum: the running sum of the window.
        ema: the EMA before bias correction.
        ema_count: observations in the EMA.
        noise_var: the EMA of the squared one-step prediction error (``noise_threshold``).
        noise_count: observations in it.
        annealing: the final cooldown has started.
        anneal_from: the LR where it started.
        payoff_left: observations until the pending increase is checked (0: none).
        payoff_ref: the smoothed loss when that increase was made.
        penalty: undone increases not yet paid back (the streak an increase needs grows).
        eval_best: the best held-out value so far (NaN: none yet).
        eval_bad: held-out values in a row not better than the best.
        eval_block: increases are blocked until the held-out value improves.
        eval_train: the smoothed loss at the last held-out value (``eval_pace``; NaN: none).
        eval_worse_cuts: compounding held-out cuts since the last value that counted as
            better (``eval_compound_margin``; each squares the cut's factor).
        first: the first smoothed value with the blow-up guard (``blowup_ratio``) or
            the spike guard (``spike_ratio``) on, what a blow-up and a spike are measured
            against; NaN before it, and with both guards off.
        blowup_cuts: decreases in the current blow-up so far (each squares the factor).
        spike_steps: spike steps in a row up to the last observation (``spike_ratio``).
        anneal_to_zero: the final cooldown ends at 0: ``anneal_to_zero``, or it started
            in a blow-up, at the lower bound (``floor_anneals_to_zero``) or with
            increases blocked (``stalled_anneals_to_zero``).
    """

    lr: jax.Array
    scale: jax.Array
    step: jax.Array
    reference: jax.Array
    num_good: jax.Array
    num_bad: jax.Array
    hold: jax.Array
    floor_hits: jax.Array
    smoothed: jax.Array
    events: jax.Array
    window_values: jax.Array
    window_pos: jax.Array
    window_count: jax.Array
    window_sum: jax.Array
    ema: jax.Array
    ema_count: jax.Array
    noise_var: jax.Array
    noise_count: jax.Array
    annealing: jax.Array
    anneal_from: jax.Array
    payoff_left: jax.Array
    payoff_ref: jax.Array
    penalty: jax.Array
    eval_best: jax.Array
    eval_bad: jax.Array
    eval_block: jax.Array
    eval_train: jax.Array
    eval_worse_cuts: jax.Array
    first: jax.Array
    blowup_cuts: jax.Array
    spike_steps: jax.Array
    anneal_to_zero: jax.Array


class _Static(NamedTuple):
    """What decides which operations run (and the shape of the state)."""

    smoothing: str
    window: int
    ema_table: np.ndarray | None  # 1 - beta**n for n = 1, 2, ..., as Python computes it
    ema_table_complete: bool  # the table ends where 1 - beta**n rounds to 1.0
    anneal_table: tuple[float, ...]  # GreedyConfig.anneal_table(); empty: no final cooldown
    anneal_start: int  # the observation where it starts (unused when the table is empty)
    base_table: tuple[float, ...]  # GreedyConfig.base_table(); empty: "constant"


class _Knobs(NamedTuple):
    """The numeric knobs: scalars, or arrays with a batch axis (the tests vmap over them)."""

    factor: Any
    threshold: Any
    eps: Any
    base_lr: Any
    min_lr: Any
    max_lr: Any
    warmup_start: Any
    patience: Any
    up_patience: Any
    warmup: Any
    cooldown: Any
    hold_after_increase: Any
    reset_patience: Any  # 0: never reset
    relative: Any
    product: Any  # threshold_mode="rel_product": the product bar whatever the sign
    maximize: Any
    compare_previous: Any
    compare_recent_best: Any
    decrease_on_nonfinite: Any
    noise_threshold: Any
    noise_n: Any  # the standard error's divisor: window, or 1 without smoothing
    payoff_patience: Any  # 0: off
    eval_factor: Any
    eval_patience: Any
    eval_maximize: Any
    eval_pace: Any
    eval_compound_margin: Any  # -1: off
    eval_compound_factors: Any  # GreedyConfig.eval_compound_table() (ones when off)
    initial_reference: Any  # +inf (min) or -inf (max): GreedyConfig.initial_reference
    blowup_ratio: Any  # 0: off
    blowup_factors: Any  # GreedyConfig.blowup_table(): a decrease's factor by cuts so far
    blowup_raw_check: Any  # a blow-up step with the raw value back at half the first: neutral
    floor_anneals_to_zero: Any  # a final cooldown started at the lower bound ends at 0
    spike_ratio: Any  # 0: off
    anneal_to_zero: Any  # every final cooldown ends at 0
    stalled_anneals_to_zero: Any  # a final cooldown started with increases blocked ends at 0


_FLOAT_KNOBS = ("factor", "threshold", "eps", "base_lr", "min_lr", "max_lr", "warmup_start",
                "noise_threshold", "noise_n", "eval_factor", "eval_pace", "eval_compound_margin",
                "eval_compound_factors", "initial_reference",
                "blowup_ratio", "blowup_factors", "spike_ratio")
_INT_KNOBS = (
    "payoff_patience",
    "eval_patience",
    "patience",
    "up_patience",
    "warmup",
    "cooldown",
    "hold_after_increase",
    "reset_patience",
)


def _ema_table(window: int) -> tuple[np.ndarray, bool]:
    # XLA's pow differs from C's pow (which Python uses) in the last place for some n;
    # a table of Python's values keeps the bias correction exact.
    beta = 1.0 - 2.0 / (window + 1)
    values = []
    for n in range(1, _MAX_EMA_TABLE + 1):
        values.append(1.0 - beta**n)
        if values[-1] == 1.0:
            return np.asarray(values, dtype=np.float64), True
    logger.info(
        "EMA span %d: bias correction beyond step %d uses XLA's pow, which may "
        "differ from the float rule in the last place",
        window,
        _MAX_EMA_TABLE,
    )
    return np.asarray(values, dtype=np.float64), False


def _resolve(config: GreedyConfig, learning_rate: float) -> tuple[_Static, _Knobs]:
    """Static structure and numeric knobs of ``config`` for one LR group."""
    if config.on_nonfinite == "raise":
        raise ValueError(
            "on_nonfinite='raise' needs a host read of every loss, which a jit-compiled "
            "update cannot do; use 'skip' or 'decrease' and watch the NONFINITE flag in "
            "state.events (or jax.debug / checkify to stop on NaN)"
        )
    lows, highs = config.bounds([learning_rate])  # validates the bounds against the LR
    table, complete = (None, True)
    if config.smoothing == "ema":
        table, complete = _ema_table(config.window)
    static = _Static(config.smoothing, config.window, table, complete,
                     tuple(config.anneal_table()), config.anneal_start or 0,
                     tuple(config.base_table()))
    knobs = _Knobs(
        factor=float(config.factor),
        threshold=float(config.threshold),
        eps=float(config.eps),
        base_lr=float(learning_rate),
        min_lr=lows[0],
        max_lr=highs[0],
        warmup_start=float(config.warmup_start_factor),
        patience=config.patience,
        up_patience=config.up_patience,
        warmup=config.warmup,
        cooldown=config.cooldown,
        hold_after_increase=config.hold_after_increase,
        reset_patience=0 if config.reset_patience is None else config.reset_patience,
        relative=config.threshold_mode != "abs",
        product=config.threshold_mode == "rel_product",
        maximize=config.mode == "max",
        compare_previous=config.compare == "previous",
        compare_recent_best=config.compare == "recent_best",
        decrease_on_nonfinite=config.on_nonfinite == "decrease",
        noise_threshold=float(config.noise_threshold),
        noise_n=1.0 if config.smoothing == "none" else float(config.window),
        payoff_patience=config.payoff_patience or 0,
        eval_factor=float(config.eval_factor),
        eval_patience=-1 if config.eval_patience is None else config.eval_patience,
        eval_maximize=config.eval_mode == "max",
        eval_pace=float(config.eval_pace),
        eval_compound_margin=(-1.0 if config.eval_compound_margin is None
                              else float(config.eval_compound_margin)),
        eval_compound_factors=tuple(config.eval_compound_table()
                                    or [1.0] * (BLOWUP_SQUARINGS + 1)),
        initial_reference=config.initial_reference,
        blowup_ratio=config.blowup_ratio or 0.0,
        blowup_factors=tuple(config.blowup_table()),
        blowup_raw_check=config.blowup_raw_check,
        floor_anneals_to_zero=config.floor_anneals_to_zero,
        spike_ratio=config.spike_ratio or 0.0,
        anneal_to_zero=config.anneal_to_zero,
        stalled_anneals_to_zero=config.stalled_anneals_to_zero,
    )
    return static, knobs


def _as_arrays(knobs: _Knobs, dtype: Any) -> _Knobs:
    def convert(name: str, value: Any) -> jax.Array:
        if name in _FLOAT_KNOBS:
            return jnp.asarray(value, dtype)
        if name in _INT_KNOBS:
            return jnp.asarray(value, jnp.int32)
        return jnp.asarray(value, jnp.bool_)

    pairs = zip(_Knobs._fields, knobs, strict=True)
    return _Knobs(*(convert(name, value) for name, value in pairs))


def _init(static: _Static, knobs: _Knobs, dtype: Any) -> GreedyLRState:
    k = _as_arrays(knobs, dtype)
    # the ramp at step 0 is base * start, as rule.init sets it
    lr = jnp.where(k.warmup > 0, k.base_lr * k.warmup_start, k.base_lr)
    # a fresh array per field: leaves sharing one buffer cannot be donated to jax.jit
    # ("Attempt to donate the same buffer twice")
    zero = lambda: jnp.zeros_like(k.patience)  # noqa: E731
    size = static.window if static.smoothing == "window" else 0
    return GreedyLRState(
        lr=lr,
        scale=lr / k.base_lr,
        step=zero(),
        reference=k.initial_reference,
        num_good=zero(),
        num_bad=zero(),
        hold=zero(),
        floor_hits=zero(),
        smoothed=jnp.full_like(lr, jnp.nan),
        events=zero(),
        window_values=jnp.zeros((*lr.shape, size), dtype),
        window_pos=zero(),
        window_count=zero(),
        window_sum=jnp.zeros_like(lr),
        ema=jnp.zeros_like(lr),
        ema_count=zero(),
        noise_var=jnp.zeros_like(lr),
        noise_count=zero(),
        annealing=jnp.zeros_like(k.maximize),
        anneal_from=jnp.zeros_like(lr),
        payoff_left=zero(),
        payoff_ref=jnp.zeros_like(lr),
        penalty=zero(),
        eval_best=jnp.full_like(lr, jnp.nan),
        eval_bad=zero(),
        eval_block=jnp.zeros_like(k.maximize),
        eval_train=jnp.full_like(lr, jnp.nan),
        eval_worse_cuts=zero(),
        first=jnp.full_like(lr, jnp.nan),
        blowup_cuts=zero(),
        spike_steps=zero(),
        anneal_to_zero=jnp.zeros_like(k.maximize),
    )


def _smooth(
    static: _Static, state: GreedyLRState, value: jax.Array, finite: jax.Array
) -> tuple[dict, jax.Array]:
    """The smoother's fields and the smoothed value after ``value``, with the rule's
    operations in the rule's order; every field keeps its old value unless ``finite``."""
    keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
    if static.smoothing == "window":
        count, pos = state.window_count, state.window_pos
        full = count >= static.window
        slot = jnp.where(full, pos, count)
        # add the new value first, then take the oldest out: the rule's order
        total = state.window_sum + value
        at_slot = lax.dynamic_index_in_dim(state.window_values, slot, axis=-1, keepdims=False)
        total = jnp.where(full, total - at_slot, total)
        new_count = jnp.where(full, count, count + 1)
        # Always write the slot (a non-finite value writes back what was there): one
        # in-place dynamic-update-slice, where selecting between two buffers would copy.
        values = lax.dynamic_update_index_in_dim(
            state.window_values, keep(value, at_slot), slot, axis=-1
        )
        fields = {
            "window_values": values,
            "window_pos": keep(jnp.where(full, (pos + 1) % static.window, pos), pos),
            "window_count": keep(new_count, count),
            "window_sum": keep(total, state.window_sum),
        }
        return fields, total / new_count.astype(total.dtype)
    if static.smoothing == "ema":
        beta = 1.0 - 2.0 / (static.window + 1)
        ema = beta * state.ema + (1.0 - beta) * value
        count = state.ema_count + 1
        table = jnp.asarray(static.ema_table, ema.dtype)
        size = table.shape[0]
        denominator = table[jnp.minimum(count, size) - 1]
        if not static.ema_table_complete:
            power = lax.pow(jnp.asarray(beta, ema.dtype), count.astype(ema.dtype))
            denominator = jnp.where(count <= size, denominator, 1.0 - power)
        fields = {"ema": keep(ema, state.ema), "ema_count": keep(count, state.ema_count)}
        return fields, ema / denominator
    return {}, value


def _is_better(k: _Knobs, value: jax.Array, reference: jax.Array) -> jax.Array:
    """Better than ``reference`` by the threshold (rule._decide's test): ``rel`` scales
    it by ``|reference|``, as the product the float rule takes by its sign;
    ``rel_product`` takes the product whatever the sign (torch's and transformers')."""
    t = k.threshold
    # rel_product: the branch of a nonnegative reference, its sign or not
    nonnegative = (reference >= 0.0) | k.product
    shrunk, grown = reference * (1.0 - t), reference * (1.0 + t)
    below = value < jnp.where(k.relative, jnp.where(nonnegative, shrunk, grown), reference - t)
    above = value > jnp.where(k.relative, jnp.where(nonnegative, grown, shrunk), reference + t)
    return jnp.where(k.maximize, above, below)


def _blown(k: _Knobs, first: jax.Array, smoothed: jax.Array, cuts: jax.Array) -> jax.Array:
    """Where ``smoothed`` is a blow-up (rule._blown): the guard on, beyond
    ``blowup_ratio`` times a positive first value, or beyond the first value itself once
    a decrease was taken in the blow-up (``cuts``). NaN (no value yet) never is."""
    r = jnp.where(cuts > 0, 1.0, k.blowup_ratio).astype(first.dtype)
    beyond = jnp.where(k.maximize, smoothed * r < first, smoothed > r * first)
    return (k.blowup_ratio > 0) & (first > 0) & beyond


def _flag(condition: jax.Array, flag: int) -> jax.Array:
    return jnp.where(condition, flag, 0).astype(jnp.int32)


def _observe(
    static: _Static, knobs: _Knobs, state: GreedyLRState, value: jax.Array
) -> GreedyLRState:
    """One observation: :func:`greedylr.rule.update` with every branch a ``jnp.where``."""
    dtype = state.lr.dtype
    k = _as_arrays(knobs, dtype)
    value = value.astype(dtype)
    step = optax.safe_increment(state.step)
    finite = jnp.isfinite(value)
    in_warmup = step <= k.warmup

    # A non-finite value never reaches the statistics: the smoother computes with a
    # harmless stand-in and keeps its old fields.
    fed = jnp.where(finite, value, 0.0)
    smoother, fed_smoothed = _smooth(static, state, fed, finite)
    smoother.update(_noise(static, k, state, fed, finite))
    new = {"step": step, "smoothed": jnp.where(finite, fed_smoothed, state.smoothed)}
    # the guards' yardstick: the first smoothed value, kept from then on
    first_seen = jnp.isnan(state.first) & finite & ((k.blowup_ratio > 0) | (k.spike_ratio > 0))
    new["first"] = jnp.where(first_seen, new["smoothed"], state.first)
    annealing, anneal_start, anneal_blown, anneal_stalled, annealed = _final_cooldown(
        static, k, state, new, in_warmup)
    after_warmup = ~in_warmup & ~annealing

    # After warmup a finite value is either counted or, during a hold, ignored; first,
    # a pending increase may be undone (payoff_patience).
    undo = _payoff(k, state, new, finite & after_warmup)
    # A non-finite value after warmup may decrease at once, even during a hold.
    nonfinite_decrease = ~finite & after_warmup & k.decrease_on_nonfinite
    up, down, blowup = _compare(k, state, new, value, finite & after_warmup & ~undo, undo,
                                smoother["noise_var"], nonfinite_decrease)
    changed, clipped = _change(k, state, new, up, down | undo, blowup)
    reset = _reset(k, state, new, up, down, changed)

    progress = jnp.minimum(step, k.warmup).astype(dtype) / jnp.maximum(k.warmup, 1).astype(dtype)
    ramp = k.base_lr * (k.warmup_start + (1.0 - k.warmup_start) * progress)
    lr = jnp.where(in_warmup, ramp, jnp.where(annealing, annealed,
                                              jnp.where(reset, k.base_lr, changed)))
    spiked, lr = _spike(k, state, new, value, finite, ~in_warmup & ~new["annealing"], lr)
    # the hold is armed after a reset too, as in the rule
    new["hold"] = jnp.where(down | undo, k.cooldown,
                            jnp.where(up, k.hold_after_increase, new["hold"]))
    # A reset clears every statistic. The window's entries need no clearing: with its
    # count back at 0, each slot is written again before it is read.
    cleared = _init(static, knobs, dtype)
    smoother = {
        name: kept if name == "window_values" else jnp.where(reset, getattr(cleared, name), kept)
        for name, kept in smoother.items()
    }
    events = (
        _flag(up, INCREASE)
        | _flag(down, DECREASE)
        | _flag(clipped, CLIPPED)
        | _flag((up & (k.hold_after_increase > 0)) | ((down | undo) & (k.cooldown > 0)), HOLD)
        | _flag(finite & (step == k.warmup), WARMUP_END)
        | _flag(reset, RESET)
        | _flag(~finite, NONFINITE)
        | _flag(anneal_start, ANNEAL)
        | _flag(undo, UNDO)
        | _flag(blowup | anneal_blown, BLOWUP)
        | _flag(spiked, SPIKE)
        | _flag(anneal_stalled, STALLED)
    )
    return state._replace(lr=lr, scale=_scale(static.base_table, k, lr, step), events=events,
                          **new, **smoother)


def _spike(
    k: _Knobs, state: GreedyLRState, new: dict, value: jax.Array, finite: jax.Array,
    outside: jax.Array, lr: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Count spike steps (``spike_ratio``; rule.update and rule._spike_cut) and cut by
    ``SPIKE_CUT`` on the second in a row and after, over the step's own decision (``lr``),
    where ``outside`` the warmup ramp and the final cooldown: where the LR moved, and the
    LR after it."""
    first = new["first"]
    known = (k.spike_ratio > 0) & (first > 0)  # False while NaN (none yet)
    spiking = ~finite | jnp.where(k.maximize, value * k.spike_ratio < first,
                                  value > k.spike_ratio * first)
    steps = jnp.where(known, jnp.where(spiking, state.spike_steps + 1, 0), state.spike_steps)
    cutting = known & (steps >= 2) & outside
    new.update(spike_steps=steps, num_good=jnp.where(cutting, 0, new["num_good"]),
               num_bad=jnp.where(cutting, 0, new["num_bad"]))
    return _lower(k, lr, SPIKE_CUT, cutting)


def _lower(k: _Knobs, lr: jax.Array, factor: Any, where: jax.Array) -> tuple[jax.Array,
                                                                            jax.Array]:
    """``lr`` times ``factor``, not below the lower bound, where ``where`` and that moves it
    by more than ``eps`` (rule._lower): where it moved, and the LR."""
    lowered = jnp.maximum(lr * factor, k.min_lr)
    moved = where & (lr - lowered > k.eps)
    return moved, jnp.where(moved, lowered, lr)


def _scale(base_table: tuple[float, ...], k: _Knobs, lr: jax.Array, step: jax.Array) -> jax.Array:
    """What the updates are multiplied by: the rule's LR over ``learning_rate``, times the
    base schedule's factor at ``step`` (the rule's LR is ``state.lr`` either way)."""
    if not base_table:
        return lr / k.base_lr
    table = jnp.asarray(base_table, lr.dtype)
    return lr * table[jnp.clip(step, 0, table.shape[0] - 1)] / k.base_lr


def _final_cooldown(
    static: _Static, k: _Knobs, state: GreedyLRState, new: dict, in_warmup: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    """Where the final cooldown runs, where it starts, where it starts in a blow-up, where
    it starts with increases blocked (``stalled_anneals_to_zero``), and its LR: from its
    first observation the LR follows the shape only, towards the lower bound, or towards
    0 with ``anneal_to_zero`` or where it started in a blow-up, (``floor_anneals_to_zero``)
    at the lower bound or (``stalled_anneals_to_zero``) with increases blocked."""
    if not static.anneal_table:
        off = jnp.zeros_like(in_warmup)
        new.update(annealing=state.annealing, anneal_from=state.anneal_from,
                   anneal_to_zero=state.anneal_to_zero)
        return off, off, off, off, state.lr
    step = new["step"]
    annealing = ~in_warmup & (step >= static.anneal_start)
    anneal_start = annealing & ~state.annealing
    anneal_from = jnp.where(anneal_start, state.lr, state.anneal_from)
    blown = _blown(k, new["first"], new["smoothed"], state.blowup_cuts)
    at_floor = k.floor_anneals_to_zero & (state.lr <= k.min_lr)
    stalled = k.stalled_anneals_to_zero & state.eval_block
    to_zero = jnp.where(anneal_start, k.anneal_to_zero | blown | at_floor | stalled,
                        state.anneal_to_zero)
    end = jnp.where(to_zero, 0.0, k.min_lr)
    table = jnp.asarray(static.anneal_table, state.lr.dtype)
    at = jnp.clip(step - static.anneal_start, 0, table.shape[0] - 1)
    new.update(annealing=state.annealing | annealing, anneal_from=anneal_from,
               anneal_to_zero=to_zero)
    return (annealing, anneal_start, anneal_start & blown, anneal_start & stalled,
            end + (anneal_from - end) * table[at])


def _payoff(k: _Knobs, state: GreedyLRState, new: dict, active: jax.Array) -> jax.Array:
    """Where a pending increase is checked and did not pay off (to undo); the counters."""
    smoothed = new["smoothed"]
    counting = active & (state.payoff_left > 0) & (k.payoff_patience > 0)
    payoff_left = jnp.where(counting, state.payoff_left - 1, state.payoff_left)
    check = counting & (payoff_left == 0)
    worse = jnp.where(k.maximize, smoothed < state.payoff_ref, smoothed > state.payoff_ref)
    undo = check & worse
    new["penalty"] = jnp.where(undo, state.penalty + 1,
                               jnp.where(check, jnp.maximum(state.penalty - 1, 0), state.penalty))
    new["payoff_left"] = payoff_left
    return undo


def _compare(
    k: _Knobs, state: GreedyLRState, new: dict, value: jax.Array, active: jax.Array,
    undo: jax.Array, noise_var: jax.Array, nonfinite_decrease: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Count the streaks, compare with the reference (``value``: the raw one): where to
    increase, to decrease, and where that decrease is in a blow-up (``blowup_ratio``)."""
    smoothed = new["smoothed"]
    holding = active & (state.hold > 0)
    comparing = active & (state.hold <= 0)
    # noise_threshold: better by more than that many standard errors of the smoothed loss
    margin = k.noise_threshold * jnp.sqrt(noise_var / k.noise_n)
    shifted = jnp.where(k.maximize, smoothed - margin, smoothed + margin)
    better = _is_better(k, jnp.where(k.noise_threshold > 0, shifted, smoothed), state.reference)
    # in a blow-up, worse than the untrained model: nothing it does is progress
    blown = comparing & _blown(k, new["first"], smoothed, state.blowup_cuts)
    better = better & ~blown
    # blowup_raw_check: the raw value back at half the first one: neither progress nor worse
    back = jnp.where(k.maximize, value * BLOWUP_RECOVERED >= new["first"],
                     value <= BLOWUP_RECOVERED * new["first"])
    counted = comparing & ~(k.blowup_raw_check & blown & back)
    reference = jnp.where(counted & (better | k.compare_previous), smoothed, state.reference)
    num_good = jnp.where(comparing, jnp.where(better, state.num_good + 1, 0), state.num_good)
    num_bad = jnp.where(counted, jnp.where(better, 0, state.num_bad + 1), state.num_bad)
    num_good = jnp.where(holding, 0, num_good)
    num_bad = jnp.where(holding, 0, num_bad)

    up_patience = (k.up_patience + 1) * (new["penalty"] + 1) - 1
    ready = comparing & (num_good > up_patience)
    up = ready & ~state.eval_block  # a worse held-out value blocks increases
    decided_down = comparing & ~ready & (num_bad > k.patience)
    # recent_best: a new baseline at each decrease decision (a reset clears it)
    reference = jnp.where((decided_down | undo) & k.compare_recent_best, smoothed, reference)
    down = decided_down | nonfinite_decrease
    # a comparison out of a blow-up ends it; each decrease in one squares the factor more
    blowup = decided_down & blown
    cuts = jnp.where(comparing & ~blown, 0, state.blowup_cuts)
    new.update(
        reference=reference,
        num_good=jnp.where(ready | nonfinite_decrease | undo, 0, num_good),
        num_bad=jnp.where(down | undo, 0, num_bad),
        hold=jnp.where(holding, state.hold - 1, state.hold),
        blowup_cuts=jnp.where(blowup, jnp.minimum(cuts + 1, BLOWUP_SQUARINGS), cuts),
    )
    return up, down, blowup


def _change(
    k: _Knobs, state: GreedyLRState, new: dict, up: jax.Array, down: jax.Array,
    blowup: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """The LR after the increase (``up``) or decrease (``down``, an undo included), and
    where it was blocked at a bound; a changed increase arms the pay-off check. A
    decrease in a blow-up (``blowup``) takes the factor for the decreases in it so far."""
    lr = state.lr
    squared = k.blowup_factors[jnp.minimum(state.blowup_cuts, BLOWUP_SQUARINGS)]
    lowered = jnp.maximum(lr * jnp.where(blowup, squared, k.factor), k.min_lr)
    raised = jnp.minimum(lr / k.factor, k.max_lr)
    lowered_ok = lr - lowered > k.eps
    raised_ok = raised - lr > k.eps
    changed = jnp.where(down & lowered_ok, lowered, jnp.where(up & raised_ok, raised, lr))
    armed = up & raised_ok & (k.payoff_patience > 0)
    new["payoff_left"] = jnp.where(armed, k.payoff_patience, new["payoff_left"])
    new["payoff_ref"] = jnp.where(armed, new["smoothed"], state.payoff_ref)
    return changed, (up & ~raised_ok) | (down & ~lowered_ok)


def _reset(
    k: _Knobs, state: GreedyLRState, new: dict, up: jax.Array, down: jax.Array,
    changed: jax.Array,
) -> jax.Array:
    """Where a decrease found the LR at its floor ``reset_patience`` times (the counters
    and the reference start again there)."""
    floor_hits = jnp.where(up, 0, state.floor_hits)
    at_floor = down & (k.reset_patience > 0) & (changed <= k.min_lr)
    floor_hits = jnp.where(at_floor, floor_hits + 1, floor_hits)
    reset = at_floor & (floor_hits >= k.reset_patience)
    new.update(
        floor_hits=jnp.where(reset, 0, floor_hits),
        payoff_left=jnp.where(reset, 0, new["payoff_left"]),
        reference=jnp.where(reset, k.initial_reference, new["reference"]),
        num_good=jnp.where(reset, 0, new["num_good"]),
        num_bad=jnp.where(reset, 0, new["num_bad"]),
        # the first value stays: the untrained model's loss
        blowup_cuts=jnp.where(reset, 0, new["blowup_cuts"]),
    )
    return reset


def _observe_eval(static: _Static, knobs: _Knobs, state: GreedyLRState,
                  value: jax.Array) -> GreedyLRState:
    """A held-out value: :func:`greedylr.rule.observe_eval` with ``jnp.where``; NaN: none."""
    k = _as_arrays(knobs, state.lr.dtype)
    value = value.astype(state.lr.dtype)
    seen = jnp.isfinite(value) & ~state.annealing & (k.eval_patience >= 0)  # -1: off
    best = state.eval_best
    # eval_pace: beat the best by the pace times the smoothed loss's relative gain since
    # the last held-out value
    last, now = state.eval_train, state.smoothed
    paced = seen & (k.eval_pace > 0)
    gain = jnp.where(k.maximize, now - last, last - now) / jnp.abs(last)
    usable = paced & ~jnp.isnan(best) & ~jnp.isnan(last) & ~jnp.isnan(now) & (last != 0)
    needed = jnp.where(usable, k.eval_pace * jnp.maximum(gain, 0.0) * jnp.abs(best), 0.0)
    shifted = jnp.where(k.eval_maximize, value - needed, value + needed)
    improved = seen & (jnp.isnan(best) | jnp.where(k.eval_maximize, best < shifted,
                                                   best > shifted))
    worsened = seen & ~improved
    # better than the best, but not by the pace: still the best
    beaten = worsened & jnp.where(k.eval_maximize, best < value, best > value)
    # the ramp sets the LR up to its last update, undoing any cut: a worse value does not count
    worsened = worsened & (state.step >= k.warmup)
    eval_bad = jnp.where(improved, 0, jnp.where(worsened, state.eval_bad + 1, state.eval_bad))
    act = worsened & (eval_bad > k.eval_patience)
    cut, lr = _lower(k, state.lr, k.eval_factor, act)
    # a cut on a clearly worse value compounds (eval_compound_margin; -1: off)
    worse_cuts = jnp.where(improved, 0, state.eval_worse_cuts)
    margin = k.eval_compound_margin * jnp.abs(best)
    clearly = jnp.where(k.eval_maximize, value + margin < best, value - margin > best)
    compound = cut & clearly & (k.eval_compound_margin >= 0)
    again = jnp.maximum(lr * k.eval_compound_factors[jnp.minimum(worse_cuts, BLOWUP_SQUARINGS)],
                        k.min_lr)
    lr = jnp.where(compound & (lr - again > k.eps), again, lr)
    worse_cuts = jnp.where(compound, jnp.minimum(worse_cuts + 1, BLOWUP_SQUARINGS), worse_cuts)
    rebase = act & k.compare_recent_best & ~jnp.isnan(state.smoothed)
    return state._replace(
        lr=lr,
        scale=_scale(static.base_table, k, lr, state.step),
        reference=jnp.where(rebase, state.smoothed, state.reference),
        num_good=jnp.where(act, 0, state.num_good),
        num_bad=jnp.where(act, 0, state.num_bad),
        # a blocked cut as EVAL_CLIPPED, not EVAL_DECREASE | CLIPPED: ORed into the next
        # update's code, CLIPPED would read as that update's change blocked
        events=_flag(cut, EVAL_DECREASE) | _flag(act & ~cut, EVAL_CLIPPED),
        eval_best=jnp.where(improved | beaten, value, best),
        eval_bad=jnp.where(act, 0, eval_bad),
        eval_train=jnp.where(paced, now, last),
        eval_worse_cuts=worse_cuts,
        eval_block=jnp.where(improved, False, state.eval_block | worsened),
    )


def _noise(
    static: _Static, k: _Knobs, state: GreedyLRState, value: jax.Array, finite: jax.Array
) -> dict:
    """The EMA of the squared one-step prediction error (``noise_threshold`` only), at
    most the dtype's largest float (rule._track_noise)."""
    error = value - state.smoothed
    square = error * error
    beta = 1.0 - 2.0 / (static.window + 1)
    blended = beta * state.noise_var + (1.0 - beta) * square
    var = jnp.where(state.noise_count == 0, square, blended)
    var = jnp.minimum(var, jnp.finfo(var.dtype).max)
    seen = finite & ~jnp.isnan(state.smoothed) & (k.noise_threshold > 0)
    return {
        "noise_var": jnp.where(seen, var, state.noise_var),
        "noise_count": jnp.where(seen, state.noise_count + 1, state.noise_count),
    }


def event_kinds(events: int | np.integer | np.ndarray | jax.Array) -> tuple[str, ...]:
    """Name the flags of ``GreedyLRState.events``, as the rule's event kinds, in its order.

    Args:
        events: one step's flags, on the host when you want to log: ``state.events``
            itself (a 0-d integer ``jax.Array``), it read back with ``jax.device_get``
            (a NumPy integer or 0-d array), or ``int(state.events)``. Not inside a
            jitted function (use ``jax.debug.callback`` there), and not the events of
            a vmapped or stacked state (index one step or one replica first).

    Returns:
        The kinds of the :class:`greedylr.rule.Event` objects that
        :func:`greedylr.rule.update` (after :func:`greedylr.rule.observe_eval`, for an
        ``eval_value``) returned for the same observation.

    Raises:
        ValueError: for an array that is not 0-d (a vmapped state's ``events``, say).
        TypeError: for anything but an integer (a float, or a tracer under jit).

    Examples:
        >>> event_kinds(NONFINITE | DECREASE | HOLD)
        ('nonfinite', 'decrease', 'hold')
        >>> event_kinds(jnp.asarray(INCREASE, jnp.int32))
        ('increase',)
    """
    shape = np.shape(events)
    if shape != ():
        raise ValueError(
            f"event_kinds names the flags of one observation; got events of shape {shape} "
            "(a vmapped or stacked state?): index it, event_kinds(state.events[i]), "
            "or loop over its elements"
        )
    try:
        code = operator.index(events)  # a jax or NumPy integer, 0-d or scalar, or an int
    except TypeError as err:
        raise TypeError(
            "event_kinds needs an integer: state.events, it read back with "
            f"jax.device_get, or int(state.events), on the host; got {type(events).__name__}"
        ) from err
    return kinds_of(code)


def greedy_lr(
    learning_rate: float = 1.0,
    *,
    config: GreedyConfig | None = None,
    axis_name: str | None = None,
    **kwargs: Any,
) -> optax.GradientTransformationExtraArgs:
    """GreedyLR as an optax transformation that scales the updates by the rule's LR.

    Chain it after an optimizer and pass the loss of each step as ``value=``. The
    rule's knobs are those of :class:`~greedylr.GreedyConfig`, given either as keywords
    or as a ``config`` (to share one with a torch :class:`~greedylr.GreedyLR`).

    Args:
        learning_rate: the base LR, that of the optimizer chained before: the rule
            starts there, ``min_lr``/``max_lr`` are in its units, and the updates are
            multiplied by ``lr / learning_rate``. Keep ``1.0`` to think in multipliers
            of that optimizer's LR. Must be finite and > 0.
        config: a ready :class:`~greedylr.GreedyConfig`; give this or keywords.
        axis_name: under ``jax.pmap`` or ``jax.shard_map``, the mapped axis: the loss
            and the held-out value are averaged over it with ``lax.pmean`` before the
            rule sees them, so every device holds the same state. With ``jax.jit`` on
            sharded arrays the loss is already global: leave it ``None``.
        **kwargs: :class:`~greedylr.GreedyConfig` fields (``factor``, ``patience``,
            ``smoothing``, ``window``, ``warmup``, ...), validated by it.

    Returns:
        An :class:`optax.GradientTransformationExtraArgs` whose ``update`` takes
        ``value=`` (a scalar loss; the keyword is required) and, after an evaluation,
        ``eval_value=`` (the held-out value, applied before this step's update; NaN or
        omitted: none; :data:`EVAL_DECREASE` is then set in ``state.events``, or,
        where no LR could go lower, :data:`EVAL_CLIPPED` (:func:`event_kinds`: the
        rule's ``clipped``); before a step of the warmup ramp it only records the
        best, as :func:`greedylr.rule.observe_eval`), and whose state is a
        :class:`GreedyLRState`.

    Raises:
        ValueError: for a bad knob (with the value), ``on_nonfinite="raise"``, a
            non-positive ``learning_rate``, or both ``config`` and keywords.

    Under ``optax.MultiSteps`` the update runs on every micro-step but its state is
    kept only on the micro-step that emits, so the rule sees one value per emitted
    step: the ``value`` passed with the last micro-batch. To decide on the mean over
    the accumulated micro-batches, pass that mean as ``value`` on the last one; pass
    ``eval_value`` with the last micro-batch too (given with another, it is dropped
    with that micro-step's state).

    Non-finite steps: chain it after ``optax.apply_if_finite(optimizer, ...)``, not
    inside it. ``apply_if_finite`` skips its whole inner update when the gradients are
    not finite, so a ``greedy_lr`` inside it never sees that step's loss (no
    ``on_nonfinite="decrease"``, no :data:`NONFINITE` flag, and ``state.step`` leaves
    the step out); likewise ``optax.MultiSteps(..., should_skip_update_fn=
    optax.skip_not_finite)`` hides a skipped micro-batch from it. The optax guide
    (``docs/frameworks/optax.md``) has both placements.

    Examples:
        >>> import jax.numpy as jnp, optax
        >>> opt = optax.chain(optax.adam(3e-4), greedy_lr(3e-4, min_lr=1e-6, warmup=100))
        >>> params = {"w": jnp.zeros(3)}
        >>> state = opt.init(params)
        >>> updates, state = opt.update({"w": jnp.ones(3)}, state, params, value=2.5)
        >>> round(float(optax.tree.get(state, "scale")), 6)  # ramp from 0: 1 step of 100
        0.01
    """
    if config is not None and kwargs:
        raise ValueError(f"give config or keyword knobs, not both; got config and {sorted(kwargs)}")
    if config is None:
        config = GreedyConfig(**kwargs)
    if not (isinstance(learning_rate, numbers.Real)
            and 0.0 < float(learning_rate) < float("inf")):
        raise ValueError(f"learning_rate must be finite and > 0, got {learning_rate!r}")
    static, knobs = _resolve(config, float(learning_rate))
    # One compiled program instead of ~100 op-by-op dispatches when called eagerly;
    # inlined when the caller's step is jitted already.
    observe = jax.jit(lambda state, value: _observe(static, knobs, state, value))
    observe_eval = jax.jit(
        lambda state, value: _observe_eval(static, knobs, state, value))

    def init_fn(params: optax.Params) -> GreedyLRState:
        del params
        # JAX's default float: float64 under enable_x64, else float32. The loss
        # statistics never take the (possibly bfloat16) dtype of the parameters.
        return _init(static, knobs, jnp.result_type(float))

    def update_fn(
        updates: optax.Updates,
        state: GreedyLRState,
        params: optax.Params | None = None,
        *,
        value: jax.typing.ArrayLike,
        eval_value: jax.typing.ArrayLike | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, GreedyLRState]:
        del params, extra_args
        value = jnp.asarray(value)
        if value.ndim != 0:
            raise ValueError(f"value must be a scalar loss, got shape {value.shape}")
        value = value.astype(state.lr.dtype)
        if axis_name is not None:
            value = lax.pmean(value, axis_name)
        flagged: Any = 0
        if eval_value is not None:
            held_out = jnp.asarray(eval_value)
            if held_out.ndim != 0:
                raise ValueError(f"eval_value must be a scalar, got shape {held_out.shape}")
            if axis_name is not None:
                held_out = lax.pmean(held_out.astype(state.lr.dtype), axis_name)
            # measured after the previous update, so it decides this step's LR, as
            # GreedyLR.observe_eval between two torch steps does
            state = observe_eval(state, held_out)
            flagged = state.events  # EVAL_DECREASE, or EVAL_CLIPPED for a blocked cut
        # this step's updates take the LR decided by the earlier losses (torch order)
        updates = jax.tree.map(lambda g: g * state.scale.astype(g.dtype), updates)
        state = observe(state, value)
        return updates, state._replace(events=state.events | flagged)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)

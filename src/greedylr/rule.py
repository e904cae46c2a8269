"""The GreedyLR rule: its state and one update, on Python floats. Standard library only.

An observation is a loss value; :func:`update` returns the new learning rate of every
parameter group and the events that explain it. This is the reference: the torch
scheduler runs it, and the device twins (:mod:`greedylr.tensor_rule`,
``greedylr.integrations.optax``) copy its arithmetic and are tested against it. The
knobs are in ``greedylr.config``, the events' kinds and wording in
:mod:`greedylr.events` (both re-exported here). The rule itself, step by step: the
rule guide (``docs/guides/rule.md``).

Examples:
    >>> cfg = GreedyConfig(factor=0.5, patience=0, smoothing="none",
    ...                    min_lr_ratio=None, max_lr_ratio=None)
    >>> state = init(cfg, [0.1])
    >>> update(cfg, state, 1.0).lrs  # first value always beats the initial +inf
    (0.2,)
    >>> update(cfg, state, 2.0).lrs
    (0.1,)
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from greedylr import events as ev
from greedylr.config import ANNEAL_SHAPES as ANNEAL_SHAPES
from greedylr.config import (
    BLOWUP_RECOVERED,
    BLOWUP_SQUARINGS,
    SPIKE_CUT,
    GreedyConfig,
    _anneal_shape,
)
from greedylr.config import KNOBS_OFF as KNOBS_OFF
from greedylr.config import Bound as Bound
from greedylr.events import COMPARE_NAMES as COMPARE_NAMES
from greedylr.events import EVENT_BITS as EVENT_BITS
from greedylr.events import Event, describe
from greedylr.events import EventKind as EventKind

__all__ = [
    "Decision",
    "Event",
    "GreedyConfig",
    "RuleState",
    "add_group",
    "init",
    "observe_eval",
    "update",
]

@dataclass(slots=True)
class Decision:
    """What one observation produced: the LRs to apply and the events behind them."""

    lrs: tuple[float, ...]
    smoothed: float | None
    events: tuple[Event, ...] = ()


@dataclass
class RuleState:
    """Everything the rule remembers. Mutated in place by :func:`update`.

    The smoothing window is a ring buffer with a running sum: each observation costs
    O(1) whatever the window. In place, because copying the window every step would
    make the update O(window).
    """

    base_lrs: list[float]
    min_lrs: list[float]
    max_lrs: list[float]
    lrs: list[float]
    step: int = 0
    reference: float = math.inf
    num_good: int = 0
    num_bad: int = 0
    hold: int = 0
    floor_hits: int = 0
    smoothed: float | None = None
    window_values: list[float] = field(default_factory=list)
    window_pos: int = 0
    window_sum: float = 0.0
    ema: float = 0.0
    ema_count: int = 0
    noise_var: float = 0.0
    noise_count: int = 0
    anneal_from: list[float] = field(default_factory=list)
    payoff_left: int = 0
    payoff_ref: float = 0.0
    penalty: int = 0
    eval_best: float | None = None
    eval_bad: int = 0
    eval_block: bool = False
    #: with ``eval_pace``: the smoothed loss at the last held-out value (None: none yet)
    eval_train: float | None = None
    #: with ``eval_compound_margin``: compounding held-out cuts since the last held-out
    #: value that counted as better (each squares the cut's factor)
    eval_worse_cuts: int = 0
    #: the first smoothed value with the blow-up guard or the spike guard on: their
    #: yardstick (``blowup_ratio``, ``spike_ratio``)
    first: float | None = None
    #: decreases in the current blow-up so far (each squares the factor)
    blowup_cuts: int = 0
    #: with ``spike_ratio``: spike steps in a row up to this one (0: the last was none)
    spike_steps: int = 0
    #: the final cooldown ends at 0: ``anneal_to_zero``, or it started in a blow-up, with
    #: every group at its lower bound (``floor_anneals_to_zero``) or with increases
    #: blocked by the held-out rule (``stalled_anneals_to_zero``)
    anneal_to_zero: bool = False
    #: with a decaying ``base_schedule``: the rule's own LRs; ``lrs`` are them times
    #: :meth:`GreedyConfig.base_factor` (empty with ``"constant"``)
    rule_lrs: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuleState:
        """The state of ``to_dict``; a 0.1 state (without 0.2's fields) loads too."""
        values: dict[str, Any] = {
            k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in data.items()
        }
        return cls(**values)



def _ramp_lrs(config: GreedyConfig, state: RuleState, step: int) -> list[float]:
    start = config.warmup_start_factor
    progress = min(step, config.warmup) / config.warmup
    return [b * (start + (1.0 - start) * progress) for b in state.base_lrs]


def init(config: GreedyConfig, base_lrs: Sequence[float]) -> RuleState:
    """The state before the first observation. ``state.lrs`` are the LRs to apply now."""
    base = [float(b) for b in base_lrs]
    if not base:
        raise ValueError("at least one parameter group is needed")
    for i, b in enumerate(base):
        if not (math.isfinite(b) and b >= 0):
            raise ValueError(f"group {i}: initial lr must be finite and >= 0, got {b!r}")
    lows, highs = config.bounds(base)
    state = RuleState(base_lrs=base, min_lrs=lows, max_lrs=highs, lrs=list(base))
    state.reference = config.initial_reference
    if config.warmup > 0:
        state.lrs = _ramp_lrs(config, state, 0)
    if config.base_schedule != "constant":
        state.rule_lrs = list(state.lrs)  # the factor is 1 before the first observation
    return state


def add_group(config: GreedyConfig, state: RuleState, base_lr: float) -> None:
    """Add one parameter group to ``state`` in place (``optimizer.add_param_group``).

    The group is scheduled from its own LR: its bounds are resolved against ``base_lr``
    (``min_lr_ratio``/``max_lr_ratio``), during the warmup ramp it starts at the ramp's
    fraction of ``base_lr``, and during the final cooldown at the cooldown's point, as if
    the cooldown had started from ``base_lr``. The statistics are shared by every group.

    Raises:
        ValueError: for an LR that is not finite and >= 0, per-group bounds with no value
            for the new group, or an LR outside its bounds (``check_bounds``).
    """
    b = float(base_lr)
    if not (math.isfinite(b) and b >= 0):
        raise ValueError(f"group {len(state.base_lrs)}: initial lr must be finite and >= 0, "
                         f"got {b!r}")
    lows, highs = config.bounds([*state.base_lrs, b])
    state.base_lrs.append(b)
    state.min_lrs.append(lows[-1])
    state.max_lrs.append(highs[-1])
    in_ramp = config.warmup > 0 and state.step < config.warmup
    lr = _ramp_lrs(config, state, state.step)[-1] if in_ramp else b
    if config.base_schedule != "constant":
        _own_lrs(state).append(lr)
        lr *= config.base_factor(state.step)
    elif state.anneal_from:  # in the final cooldown: the group joins it where the others are
        state.anneal_from.append(lr)
        lr = _annealed(config, state)[-1]
    state.lrs.append(lr)


def _smooth(config: GreedyConfig, state: RuleState, value: float) -> float:
    """The window mean, or the value itself (the EMA, the default, is inline in
    :func:`update`)."""
    if config.smoothing == "window":
        # Same operations, in the same order, as transformers' StreamingAverage, so
        # that the preset reproduces its trajectory bit for bit.
        state.window_sum += value
        if len(state.window_values) < config.window:
            state.window_values.append(value)
        else:
            state.window_sum -= state.window_values[state.window_pos]
            state.window_values[state.window_pos] = value
            state.window_pos = (state.window_pos + 1) % config.window
        return state.window_sum / len(state.window_values)
    return value


def _lower(state: RuleState, factor: float, eps: float) -> bool:
    """Every LR times ``factor``, not below its bound, where that moves it by more than
    ``eps``; whether any moved. A new list: the caller's copy of the old one stays."""
    lrs = list(state.lrs)
    moved = False
    for i, old in enumerate(lrs):
        new = max(old * factor, state.min_lrs[i])
        if old - new > eps:
            lrs[i] = new
            moved = True
    state.lrs = lrs
    return moved


def _raise(config: GreedyConfig, state: RuleState) -> bool:
    """Every LR divided by ``factor``, not above its bound (as :func:`_lower`)."""
    lrs = list(state.lrs)
    moved = False
    for i, old in enumerate(lrs):
        new = min(old / config.factor, state.max_lrs[i])
        if new - old > config.eps:
            lrs[i] = new
            moved = True
    state.lrs = lrs
    return moved


def _at_floor(state: RuleState) -> bool:
    """Whether every group's LR stands at its lower bound (a reset's count, and a final
    cooldown that ends at 0 with ``floor_anneals_to_zero``)."""
    return all(lr <= lo for lr, lo in zip(state.lrs, state.min_lrs))


def _reset(config: GreedyConfig, state: RuleState) -> None:
    state.lrs = list(state.base_lrs)
    state.reference = config.initial_reference
    state.num_good = state.num_bad = state.hold = state.floor_hits = 0
    state.window_values, state.window_pos, state.window_sum = [], 0, 0.0
    state.ema, state.ema_count = 0.0, 0
    state.noise_var, state.noise_count, state.payoff_left = 0.0, 0, 0
    state.blowup_cuts = 0  # the first value stays: the untrained model's loss


def _noise_margin(config: GreedyConfig, state: RuleState) -> float:
    """``noise_threshold`` standard errors of the smoothed loss (0 when off)."""
    n = 1 if config.smoothing == "none" else config.window
    return config.noise_threshold * math.sqrt(state.noise_var / n)


def _track_noise(config: GreedyConfig, state: RuleState, value: float) -> None:
    """The EMA of the squared one-step prediction error, started at its first value; at
    most the largest float (an error above 1e154 squares to inf, which no later value
    would bring down: the margin would block every improvement for good)."""
    if config.noise_threshold == 0.0 or state.smoothed is None:
        return
    error = value - state.smoothed
    square = error * error
    if state.noise_count == 0:
        var = square
    else:
        beta = 1.0 - 2.0 / (config.window + 1)
        var = beta * state.noise_var + (1.0 - beta) * square
    state.noise_var = min(var, _LARGEST)  # NaN (an inf smoothed value) stays NaN
    state.noise_count += 1


_LARGEST = sys.float_info.max


def _effective_up_patience(config: GreedyConfig, state: RuleState) -> int:
    return (config.up_patience + 1) * (state.penalty + 1) - 1



# What one observation did: its event code, the reference its reasons quote, and the
# LRs after its change, before a reset (None: no change).
_Outcome = tuple[int, float | None, tuple[float, ...] | None]
_NOTHING: _Outcome = (0, None, None)


def _change(config: GreedyConfig, state: RuleState, attempt: int,
            factor: float | None = None) -> tuple[int, tuple[float, ...]]:
    """Apply an increase, a decrease or an undo (``attempt``) with its hold and reset.

    Returns its code (``CLIPPED`` added where no group moved) and the LRs after the
    change, before a reset. An undo takes back an increase: it does not count towards
    the reset. ``factor``: a decrease's, when not ``config.factor`` (a blow-up's).
    """
    if attempt == ev.INCREASE:
        moved = _raise(config, state)
        state.floor_hits = 0
        hold = config.hold_after_increase
        if moved and config.payoff_patience is not None:
            assert state.smoothed is not None  # increases come from comparisons
            state.payoff_left, state.payoff_ref = config.payoff_patience, state.smoothed
    else:
        moved = _lower(state, config.factor if factor is None else factor, config.eps)
        hold = config.cooldown
    code = attempt if moved else attempt | ev.CLIPPED
    changed = tuple(state.lrs)
    if attempt == ev.DECREASE and config.reset_patience is not None:
        if _at_floor(state):
            state.floor_hits += 1
            if state.floor_hits >= config.reset_patience:
                _reset(config, state)
                code |= ev.RESET
    # armed after a reset too, as transformers does
    state.hold = hold
    return (code | ev.HOLD if hold else code), changed


def _worse(mode: str, value: float, reference: float) -> bool:
    return value > reference if mode == "min" else value < reference


def _blown(config: GreedyConfig, state: RuleState, smoothed: float | None) -> bool:
    """Whether ``smoothed`` is a blow-up (``blowup_ratio``; False with the guard off):
    beyond ``blowup_ratio`` times the first value to enter one; once a decrease was taken
    in it (``blowup_cuts``), until back below the first value itself. (``_decide`` has it
    inline.)"""
    ratio, first = config.blowup_ratio, state.first
    if ratio is None or first is None or not first > 0 or smoothed is None:
        return False
    if state.blowup_cuts:
        ratio = 1.0
    return smoothed > ratio * first if config.mode == "min" else smoothed * ratio < first


def _anneal(config: GreedyConfig, state: RuleState) -> int:
    """One observation of the final cooldown: the LR follows the shape, nothing else.
    Towards the lower bounds, or towards 0 with ``anneal_to_zero`` or where it started in
    a blow-up, (with ``floor_anneals_to_zero``) with every group at its lower bound or
    (with ``stalled_anneals_to_zero``) with increases blocked by the held-out rule."""
    code = 0
    if not state.anneal_from:
        state.anneal_from = list(state.lrs)
        blown = _blown(config, state, state.smoothed)
        stalled = config.stalled_anneals_to_zero and state.eval_block
        state.anneal_to_zero = (config.anneal_to_zero or blown or stalled
                                or (config.floor_anneals_to_zero and _at_floor(state)))
        code = ev.ANNEAL | ev.BLOWUP if blown else ev.ANNEAL
        if stalled:
            code |= ev.STALLED
    state.lrs = _annealed(config, state)
    return code


def _annealed(config: GreedyConfig, state: RuleState) -> list[float]:
    """Each group's LR in the final cooldown at ``state.step``, from ``anneal_from``."""
    start = config.anneal_start
    assert start is not None
    k = min(state.step - start, config.anneal_steps)
    shape = _anneal_shape(config.anneal_shape, k / config.anneal_steps)
    ends = [0.0] * len(state.anneal_from) if state.anneal_to_zero else state.min_lrs
    return [lo + (a - lo) * shape for a, lo in zip(state.anneal_from, ends, strict=True)]


def _explained(config: GreedyConfig, state: RuleState, value: float, outcome: _Outcome,
               before: Sequence[float]) -> Decision:
    """The decision, with the events that :func:`greedylr.events.describe` words."""
    code, reference, changed = outcome
    lrs = tuple(state.lrs)
    if not code:
        return Decision(lrs, state.smoothed)
    events = describe(
        config, step=state.step, code=code, loss=value, smoothed=state.smoothed,
        reference=reference, lrs_before=before, lrs_changed=lrs if changed is None else changed,
        lrs_after=lrs,
        min_lrs=state.min_lrs, max_lrs=state.max_lrs, penalty=state.penalty,
        first=state.first,
    )
    return Decision(lrs, state.smoothed, tuple(events))


def update(config: GreedyConfig, state: RuleState, loss: float) -> Decision:
    """Observe one loss value; update ``state`` in place; return the new LRs and events.

    Args:
        config: the rule's configuration.
        state: the state from :func:`init`, or from earlier updates.
        loss: the observed value (a Python number).

    Returns:
        The LRs to apply from now on, the smoothed value used, and the events.

    Raises:
        FloatingPointError: for a non-finite loss when ``on_nonfinite="raise"``, with
            ``state`` left as it was: the refused loss is no step, and a retry with
            another loss is the step it was meant to be.
    """
    finite = math.isfinite(loss)
    if not finite and config.on_nonfinite == "raise":  # before anything changes
        raise FloatingPointError(f"non-finite loss {loss!r} at step {state.step + 1}")
    state.step += 1
    if finite:
        if config.noise_threshold:  # tested here: a call per step costs more than the test
            _track_noise(config, state, float(loss))
        if config.smoothing == "ema":  # the default, inline: a call per step was measurable
            beta = 1.0 - 2.0 / (config.window + 1)
            state.ema = beta * state.ema + (1.0 - beta) * float(loss)
            state.ema_count += 1
            state.smoothed = state.ema / (1.0 - beta**state.ema_count)
        else:
            state.smoothed = _smooth(config, state, float(loss))
        if state.first is None and config.keeps_first:
            state.first = state.smoothed
    # inline, not a wrapper: a call per step was measurable (benchmarks/overhead.py)
    based = config.base_schedule != "constant"
    if based:
        state.lrs = _own_lrs(state)  # the rule moves its own LRs; the factor comes last
    before = state.lrs  # kept: the update replaces the list, never changes it
    reference = state.reference  # what a spike cut's event quotes, as a decrease's
    outcome = _decide(config, state, finite, loss)
    ratio, first = config.spike_ratio, state.first
    if ratio is not None and first is not None and first > 0:
        # the spike count inline, the cut (rare) a call: a call per step was measurable
        spiking = not finite or (loss > ratio * first if config.mode == "min"
                                 else loss * ratio < first)
        state.spike_steps = state.spike_steps + 1 if spiking else 0
        cut_from = state.lrs  # _lower replaces the list
        if state.spike_steps >= 2 and _spike_cut(config, state):
            # an event of its own, after the step's decision: on this step describe takes
            # the LRs before the cut for lrs_changed (the decision's own follow from them)
            code, quoted, _ = outcome
            outcome = (code | ev.SPIKE, reference if quoted is None else quoted,
                       tuple(cut_from))
    decision = (Decision(tuple(state.lrs), state.smoothed) if outcome is _NOTHING  # most steps
                else _explained(config, state, loss, outcome, before))
    return _applied(config, state, decision) if based else decision


def _spike_cut(config: GreedyConfig, state: RuleState) -> bool:
    """The spike guard's cut (``spike_ratio``; :func:`update` counts the spike steps), on
    the second spike step in a row and after: every LR times ``SPIKE_CUT`` at once, over
    the step's own decision, outside the warmup ramp and the final cooldown, the streaks
    restarted; whether an LR moved."""
    if state.step <= config.warmup or state.anneal_from:
        return False
    state.num_good = state.num_bad = 0
    return _lower(state, SPIKE_CUT, config.eps)


def _own_lrs(state: RuleState) -> list[float]:
    """The rule's own LRs with a decaying base schedule (``state.rule_lrs``); a state
    saved without them (0.2's format) starts them from the LRs it applied."""
    if not state.rule_lrs:
        state.rule_lrs = list(state.lrs)
    return state.rule_lrs


def _applied(config: GreedyConfig, state: RuleState, decision: Decision) -> Decision:
    """After a decision made on the rule's own LRs (``state.lrs`` set to ``rule_lrs``):
    keep them, and apply them times the base schedule's factor at ``state.step``. The
    decision's events quote the rule's own LRs."""
    state.rule_lrs = list(state.lrs)
    factor = config.base_factor(state.step)
    state.lrs = [lr * factor for lr in state.rule_lrs]
    return Decision(tuple(state.lrs), decision.smoothed, decision.events)


def _decide(config: GreedyConfig, state: RuleState, finite: bool, loss: float) -> _Outcome:
    """What the observation ``loss`` does once counted (the smoother has seen a finite one).

    One function for the common path (compare, count, maybe change): update runs every
    optimizer step, and a call per phase was measurable in ``benchmarks/overhead.py``.
    """
    step = state.step
    # the property only with a budget: this runs every step, and without one it is None
    start = None if config.total_steps is None else config.anneal_start
    if step <= config.warmup:
        state.lrs = _ramp_lrs(config, state, step)
        if finite:
            return (ev.WARMUP_END, None, None) if step == config.warmup else _NOTHING
        return ev.NONFINITE, None, None
    if start is not None and step >= start:
        return (0 if finite else ev.NONFINITE) | _anneal(config, state), None, None
    if not finite:
        if config.on_nonfinite != "decrease":
            return ev.NONFINITE, None, None
        state.num_good = state.num_bad = 0
        code, changed = _change(config, state, ev.DECREASE)
        return ev.NONFINITE | code, None, changed
    if state.payoff_left > 0:  # tested here: most steps have no pending increase
        undone = _payoff(config, state)
        if undone is not None:
            return undone
    if state.hold > 0:
        state.hold -= 1
        state.num_good = state.num_bad = 0
        return _NOTHING
    # the comparison: increase or decrease on a streak
    smoothed = state.smoothed
    assert smoothed is not None
    reference = state.reference
    # _blown inline: a call per step was measurable (benchmarks/overhead.py); the first
    # value is None with both guards off
    minimize = config.mode == "min"
    first, blown, ratio = state.first, False, config.blowup_ratio
    if first is not None and first > 0 and ratio is not None:
        if state.blowup_cuts:
            ratio = 1.0
        blown = smoothed > ratio * first if minimize else smoothed * ratio < first
    if blown:
        assert first is not None
        if config.blowup_raw_check and (loss <= BLOWUP_RECOVERED * first if minimize
                                        else loss * BLOWUP_RECOVERED >= first):
            # the loss itself is back: neither progress nor a reason to decrease
            state.num_good = 0
            return _NOTHING
        better = False  # worse than the untrained model: nothing it does is progress
    else:
        value = smoothed
        if config.noise_threshold:
            # better by more than the margin; a margin >= 0 only makes "better" harder
            margin = _noise_margin(config, state)
            value = smoothed + margin if minimize else smoothed - margin
        # better than the reference by the threshold (inline: a call per step was measurable)
        t = config.threshold
        mode = config.threshold_mode
        if mode == "abs":
            bar = reference - t if minimize else reference + t
        elif mode == "rel_product":
            # torch's and transformers' "rel", whatever the reference's sign: below 0 a
            # slightly worse value passes (``from_transformers`` reproduces it)
            bar = reference * (1.0 - t) if minimize else reference * (1.0 + t)
        elif (reference >= 0.0) == minimize:
            # ``reference -+ t * |reference|``, as a product: a negative reference (a
            # negative log-likelihood) must be beaten downwards (min) or upwards (max) too
            bar = reference * (1.0 - t)
        else:
            bar = reference * (1.0 + t)
        better = value < bar if minimize else value > bar
    if state.blowup_cuts and not blown:
        state.blowup_cuts = 0
    if better or config.compare == "previous":
        state.reference = smoothed
    if better:
        state.num_good += 1
        state.num_bad = 0
    else:
        state.num_bad += 1
        state.num_good = 0
    # without a penalty (most runs) the effective patience is the configured one
    if state.penalty:
        up_patience = _effective_up_patience(config, state)
    elif config.increase_patience is None:  # config.up_patience written out: a property
        up_patience = config.patience      # call per step was measurable
    else:
        up_patience = config.increase_patience
    if state.num_good > up_patience and state.eval_block:
        state.num_good = 0  # the held-out metric got worse: no increase until it recovers
    elif state.num_good > up_patience:
        # the streak may exceed up_patience + 1 when a paid-off increase lowered it
        state.num_good = 0
        code, changed = _change(config, state, ev.INCREASE)
        return code, reference, changed
    elif state.num_bad > config.patience:
        state.num_bad = 0
        if config.compare == "recent_best":
            # a new baseline (unless a reset clears it): "better" now means better than now
            state.reference = smoothed
        if blown:
            factor = config.blowup_factor(state.blowup_cuts)
            state.blowup_cuts = min(state.blowup_cuts + 1, BLOWUP_SQUARINGS)
            code, changed = _change(config, state, ev.DECREASE, factor)
            return code | ev.BLOWUP, reference, changed
        code, changed = _change(config, state, ev.DECREASE)
        return code, reference, changed
    return _NOTHING


def _payoff(config: GreedyConfig, state: RuleState) -> _Outcome | None:
    """Count down a pending increase (``payoff_left > 0``); undo it if it did not pay."""
    state.payoff_left -= 1
    smoothed = state.smoothed
    assert smoothed is not None
    if state.payoff_left > 0:
        return None
    if not _worse(config.mode, smoothed, state.payoff_ref):
        state.penalty = max(state.penalty - 1, 0)
        return None
    state.penalty += 1
    state.num_good = state.num_bad = 0
    if config.compare == "recent_best":
        state.reference = smoothed
    code, changed = _change(config, state, ev.UNDO)
    return code, state.payoff_ref, changed


def observe_eval(config: GreedyConfig, state: RuleState, value: float) -> Decision:
    """Observe a held-out value (after an evaluation); update ``state`` in place.

    A value better than the best so far (by ``eval_mode``; with ``eval_pace``, better
    by enough) clears the block on increases. A worse one blocks increases until the
    held-out value improves again; after more than ``eval_patience`` worse values in a
    row it also multiplies every LR by ``eval_factor`` (not below the lower bound), the
    early-stopping signal a rule fed only the training loss cannot see. With
    ``eval_compound_margin``, a cut on a value worse than the best by more than that
    margin compounds: the k-th such cut since the last value that counted as better
    takes ``eval_factor ** (2 ** k)`` in all. Ignored with ``eval_patience=None``,
    during the final cooldown and for a non-finite value. During the warmup ramp
    (``state.step < config.warmup``: the next :func:`update` still sets the ramp's LR) the
    first value, or one better than the best, becomes the best (with ``eval_pace``, the
    smoothed loss is recorded too), and that is all: the ramp is fixed, so no value counts
    as worse, blocks increases or cuts. Does not advance ``state.step``.

    Args:
        config: the rule's configuration.
        state: the rule's state.
        value: the held-out metric (a Python number).

    Returns:
        The LRs to apply from now on and the events (an ``eval_decrease`` or a
        ``clipped`` one when the LR came down, or tried to).
    """
    if config.base_schedule == "constant" or config.eval_patience is None:
        return _observed_eval(config, state, value)
    state.lrs = _own_lrs(state)
    return _applied(config, state, _observed_eval(config, state, value))


def _pace(config: GreedyConfig, state: RuleState, best: float | None) -> float:
    """How much a held-out value must beat ``best`` by (``eval_pace``): the pace times
    the smoothed loss's relative improvement since the last held-out value, times
    ``|best|``; records the smoothed loss for the next one."""
    last, now = state.eval_train, state.smoothed
    state.eval_train = now
    if best is None or last is None or now is None or last == 0.0:
        return 0.0
    gain = (last - now if config.mode == "min" else now - last) / abs(last)
    return config.eval_pace * max(gain, 0.0) * abs(best)


def _observed_eval(config: GreedyConfig, state: RuleState, value: float) -> Decision:
    lrs = tuple(state.lrs)
    if config.eval_patience is None or not math.isfinite(value) or state.anneal_from:
        return Decision(lrs, state.smoothed)
    best = state.eval_best
    needed = _pace(config, state, best) if config.eval_pace else 0.0
    if best is None or _worse(config.eval_mode, best,
                              value + needed if config.eval_mode == "min" else value - needed):
        state.eval_best, state.eval_bad, state.eval_block = value, 0, False
        state.eval_worse_cuts = 0
        return Decision(lrs, state.smoothed)
    if _worse(config.eval_mode, best, value):  # better, but not by the pace: still the best
        state.eval_best = value
    if state.step < config.warmup:
        # the ramp sets the LR up to its last update, undoing any cut: a worse value does not count
        return Decision(lrs, state.smoothed)
    state.eval_bad += 1
    state.eval_block = True
    if state.eval_bad <= config.eval_patience:
        return Decision(lrs, state.smoothed)
    state.eval_bad = 0
    state.num_good = state.num_bad = 0
    if config.compare == "recent_best" and state.smoothed is not None:
        state.reference = state.smoothed
    moved = _lower(state, config.eval_factor, config.eps)
    if moved and config.clearly_worse(value, best):
        cuts = min(state.eval_worse_cuts, BLOWUP_SQUARINGS)
        _lower(state, config.eval_compound_table()[cuts], config.eps)
        state.eval_worse_cuts = min(cuts + 1, BLOWUP_SQUARINGS)
    code = ev.EVAL_DECREASE if moved else ev.EVAL_DECREASE | ev.CLIPPED
    return _explained(config, state, value, (code, best, None), lrs)

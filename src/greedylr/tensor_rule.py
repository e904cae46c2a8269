"""The GreedyLR rule in torch tensor ops: branch-free, no host reads, batched.

:mod:`greedylr.rule`'s arithmetic a second time, for callers that cannot afford a Python
float per step: :class:`greedylr.GreedyLR` in device mode (``step(loss)`` must not
synchronise the host with the device) and studies that step many runs at once (every
tensor has an optional leading batch shape ``B``). Every decision is a ``torch.where``,
so the update runs inside ``torch.compile`` and under
``torch.cuda.set_sync_debug_mode("error")``; in float64 the results are the float
rule's bit for bit (tested). A step's events come back as a code of
:class:`greedylr.events.EventFlag` bits, which :func:`decode_events`
(:func:`greedylr.events.describe`) turns into the float rule's events, reasons included.
The state is built and converted in ``greedylr.tensor_state`` (re-exported here).
How exactness is kept (operation order, lookup tables, float32, inductor) and which
knobs may differ per run: the device-mode guide (``docs/frameworks/device-mode.md``).

Examples:
    >>> import torch
    >>> from greedylr.rule import GreedyConfig
    >>> cfg = GreedyConfig(factor=0.5, patience=0, smoothing="none",
    ...                    min_lr_ratio=None, max_lr_ratio=None)
    >>> state = init(cfg, [[0.1], [0.2]])      # two runs, one group each
    >>> state, decision = update(cfg, state, torch.tensor([1.0, 1.0]))
    >>> decision.lrs.squeeze(-1).tolist()
    [0.2, 0.4]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from greedylr.config import BLOWUP_RECOVERED, BLOWUP_SQUARINGS, SPIKE_CUT
from greedylr.events import (
    ANNEAL,
    BLOWUP,
    CLIPPED,
    DECREASE,
    EVAL_DECREASE,
    HOLD,
    INCREASE,
    NONFINITE,
    RESET,
    SPIKE,
    STALLED,
    UNDO,
    WARMUP_END,
)
from greedylr.events import describe as decode_events
from greedylr.rule import GreedyConfig
from greedylr.tensor_state import (
    _MAX_EMA_TABLE,
    TensorState,
    from_rule_state,
    init,
    select,
    to_rule_state,
)
from greedylr.tensor_state import check_config as check_config

__all__ = [
    "ANNEAL",
    "BLOWUP",
    "CLIPPED",
    "DECREASE",
    "EVAL_DECREASE",
    "HOLD",
    "INCREASE",
    "NONFINITE",
    "RESET",
    "SPIKE",
    "STALLED",
    "UNDO",
    "WARMUP_END",
    "TensorDecision",
    "TensorState",
    "compile_step",
    "decode_events",
    "from_rule_state",
    "init",
    "observe_eval",
    "select",
    "step_",
    "to_rule_state",
    "update",
]

_INT = torch.int64


class TensorDecision(NamedTuple):
    """What one observation produced, per run; enough to rebuild the float rule's events.

    Attributes:
        lrs: the LRs to apply from now on, ``[*B, G]``.
        smoothed: the state's smoothed loss after this observation (NaN if none yet).
        code: bit flags of what happened (``INCREASE | CLIPPED | ...``), int64 ``[*B]``.
        reference: the value the smoothed loss was compared with (before this step).
        lrs_before: the LRs before this observation.
        lrs_changed: the LRs after the increase or decrease, before a reset; where
            :data:`SPIKE` is in ``code``, the LRs just before the spike cut (after the
            step's own change and reset), as :func:`decode_events` reads them.
        penalty: the increase penalty after this observation (``payoff_patience``).
        rule_lrs: the rule's own LRs after this observation, which the events quote:
            ``lrs`` before a decaying ``base_schedule`` multiplies them (``lrs`` itself
            with ``"constant"``). ``lrs_before`` and ``lrs_changed`` are the rule's own.
        first: the first smoothed value, which a blow-up (:data:`BLOWUP` in ``code``) and
            a spike (:data:`SPIKE`) are measured against (NaN before it, and with both
            guards off).
    """

    lrs: Tensor
    smoothed: Tensor
    code: Tensor
    reference: Tensor
    lrs_before: Tensor
    lrs_changed: Tensor
    penalty: Tensor
    rule_lrs: Tensor
    first: Tensor


def _lookup(table: Tensor, index: Tensor) -> Tensor:
    """``table[index]`` elementwise, for an index tensor of any shape already within the
    table: by index_select, not ``table[i]`` (indexing with a 0-d tensor reads the index
    on the host) nor ``take()`` (which inductor decomposes into that very indexing)."""
    return table.index_select(0, index.reshape(-1)).reshape(index.shape)


def _ramp(config: GreedyConfig, state: TensorState, step: Tensor) -> Tensor:
    start = config.warmup_start_factor
    dtype = state.lrs.dtype
    # the length as a tensor, not a constant: on GPUs inductor turns a division by a
    # constant into a multiplication by its reciprocal, not the float rule's quotient
    length = torch.clamp(step, min=config.warmup, max=config.warmup).to(dtype)
    progress = torch.clamp(step, max=config.warmup).to(dtype) / length
    return state.base_lrs * (start + (1.0 - start) * progress).unsqueeze(-1)


def _smooth(
    config: GreedyConfig, state: TensorState, value: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """The smoothed value and the smoother's new fields (committed by the caller)."""
    if config.smoothing == "window":
        width = config.window
        full = state.window_count >= width
        # while filling, the next free slot; once full, the oldest value (window_pos)
        index = torch.where(full, state.window_pos, state.window_count).unsqueeze(-1)
        oldest = state.window_values.gather(-1, index).squeeze(-1)
        total = state.window_sum + value
        total = torch.where(full, total - oldest, total)
        count = torch.where(full, state.window_count, state.window_count + 1)
        return total / count, {
            "window_values": state.window_values.scatter(-1, index, value.unsqueeze(-1)),
            "window_count": count,
            "window_pos": torch.where(full, (state.window_pos + 1) % width, state.window_pos),
            "window_sum": total,
        }
    if config.smoothing == "ema":
        beta = 1.0 - 2.0 / (config.window + 1)
        ema = beta * state.ema + (1.0 - beta) * value
        count = state.ema_count + 1
        table = state.ema_denominators
        size = table.shape[0]
        denominator = _lookup(table, torch.clamp(count, max=size) - 1)
        if size >= _MAX_EMA_TABLE:
            # the table stopped before 1 - beta**n reached 1.0: past it, torch.pow
            power = torch.pow(torch.full_like(ema, beta), count.to(ema.dtype))
            denominator = torch.where(count > size, 1.0 - power, denominator)
        return ema / denominator, {"ema": ema, "ema_count": count}
    return value, {}


def _noise(config: GreedyConfig, state: TensorState, value: Tensor) -> dict[str, Tensor]:
    """The EMA of the squared one-step prediction error (rule._track_noise), at most the
    dtype's largest float (NaN stays NaN, as there)."""
    error = value - state.smoothed
    square = error * error
    beta = 1.0 - 2.0 / (config.window + 1)
    blended = beta * state.noise_var + (1.0 - beta) * square
    var = torch.where(state.noise_count == 0, square, blended)
    var = torch.clamp(var, max=torch.finfo(var.dtype).max)
    # nothing before the first smoothed value (NaN there); the caller masks non-finite
    seen = ~torch.isnan(state.smoothed)
    return {"noise_var": torch.where(seen, var, state.noise_var),
            "noise_count": torch.where(seen, state.noise_count + 1, state.noise_count)}


def _worse(mode: str, value: Tensor, reference: Tensor) -> Tensor:
    return value > reference if mode == "min" else value < reference


def _blown(config: GreedyConfig, first: Tensor, smoothed: Tensor, cuts: Tensor) -> Tensor:
    """Where ``smoothed`` is a blow-up (rule._blown; the guard is on): beyond
    ``blowup_ratio`` times a positive first value, or beyond the first value itself once
    a decrease was taken in the blow-up (``cuts``). NaN (no value yet) never is."""
    r = config.blowup_ratio
    assert r is not None
    # the ratio as a Python float in each product (computed in the state's dtype): a
    # where() of the two ratios would make a float32 tensor of them, and 1.2 in float32
    # is not 1.2 in float64 (the float rule's test at the line itself would differ)
    if config.mode == "min":
        beyond = torch.where(cuts > 0, smoothed > first, smoothed > r * first)
    else:
        beyond = torch.where(cuts > 0, smoothed < first, smoothed * r < first)
    return (first > 0) & beyond


def _is_better(config: GreedyConfig, value: Tensor, reference: Tensor, t: Tensor) -> Tensor:
    """Better than ``reference`` by the threshold ``t`` (rule._decide's test): ``rel``
    scales it by ``|reference|``, as the product the float rule takes by its sign;
    ``rel_product`` takes the product whatever the sign (torch's and transformers')."""
    minimize = config.mode == "min"
    if config.threshold_mode == "abs":
        bar = reference - t if minimize else reference + t
    elif config.threshold_mode == "rel_product":
        bar = reference * (1.0 - t) if minimize else reference * (1.0 + t)
    else:
        shrink = reference >= 0.0 if minimize else ~(reference >= 0.0)
        bar = torch.where(shrink, reference * (1.0 - t), reference * (1.0 + t))
    return value < bar if minimize else value > bar


def _observed(state: TensorState, loss: Tensor | float) -> Tensor:
    """The loss as a tensor of the state's batch shape, dtype and device."""
    dtype, device = state.lrs.dtype, state.lrs.device
    batch = state.step.shape
    if isinstance(loss, Tensor):
        x = loss.detach().to(device=device, dtype=dtype)
        if x.shape != batch:
            x = x.reshape(batch) if x.numel() == math.prod(batch) else x.expand(batch)
        return x
    return torch.full(batch, float(loss), dtype=dtype, device=device)


def update(
    config: GreedyConfig, state: TensorState, loss: Tensor | float
) -> tuple[TensorState, TensorDecision]:
    """Observe one loss per run; return the new state and the decision. No host read.

    Args:
        config: the shared configuration (the one given to :func:`init`).
        state: the state from :func:`init` or from the previous update.
        loss: the observed value of every run: a tensor broadcastable to the batch
            shape (a 0-d tensor or a one-element tensor for one run), or a number.

    Returns:
        ``(new_state, decision)``; the input state is not modified.
    """
    if config.base_schedule == "constant":
        return _update(config, state, loss)
    return _applied(state, *_update(config, state._replace(lrs=state.rule_lrs), loss))


def _applied(
    state: TensorState, new: TensorState, decision: TensorDecision
) -> tuple[TensorState, TensorDecision]:
    """A decision made on the rule's own LRs (``rule_lrs``), and the LRs applied: those
    times the base schedule's factor at the new step (the float rule's ``_applied``)."""
    table = state.base_table
    factor = _lookup(table, torch.clamp(new.step, max=table.shape[0] - 1)).unsqueeze(-1)
    lrs = new.lrs * factor
    return (new._replace(lrs=lrs, rule_lrs=new.lrs),
            decision._replace(lrs=lrs, rule_lrs=new.lrs))


def _update(
    config: GreedyConfig, state: TensorState, loss: Tensor | float
) -> tuple[TensorState, TensorDecision]:
    """:func:`update` on the LRs the state applies (the rule's own, with ``"constant"``)."""
    x = _observed(state, loss)
    finite = torch.isfinite(x)
    fields = _smoothed(config, state, x, finite)
    smoothed = fields["smoothed"]
    lrs, phase = _phase(config, state, fields, finite)
    active = finite & phase["after_warmup"]
    undo = _payoff(config, state, fields, active)
    do_increase, do_decrease, blowup = _compare(config, state, fields, x, active & ~undo, undo)
    nonfinite = ~finite
    if config.on_nonfinite == "decrease":
        nonfinite_decrease = nonfinite & phase["after_warmup"]
        do_decrease = do_decrease | nonfinite_decrease
        zero = torch.zeros_like(state.num_good)
        fields["num_good"] = torch.where(nonfinite_decrease, zero, fields["num_good"])
        fields["num_bad"] = torch.where(nonfinite_decrease, zero, fields["num_bad"])
    changed, clipped = _change(config, state, fields, lrs, do_increase, do_decrease | undo,
                               blowup)
    reset, lrs_after = _reset(config, state, fields, changed, do_decrease)
    # armed after a reset too, as the float rule (and transformers) does
    hold = torch.where(do_increase, state.hold_after_increase,
                       torch.where(do_decrease | undo, state.cooldown, fields["hold"]))
    if "annealed" in phase:
        lrs_after = torch.where(phase["annealing"].unsqueeze(-1), phase["annealed"], lrs_after)
    spiked = None
    if config.spike_ratio is not None:
        cut_from = lrs_after
        spiked, lrs_after = _spike(config, state, fields, x, finite, lrs_after)
        # a step with a spike cut reports it as an event of its own: lrs_changed are the
        # LRs before it there (describe reads the decision's own change from them)
        changed = torch.where(spiked.unsqueeze(-1), cut_from, changed)

    # one bit per flag, in the order of the flags (INCREASE = 1 << 0, ...): five
    # kernels instead of one where() per flag
    flags = torch.stack([do_increase, do_decrease, clipped,
                         (do_increase | do_decrease | undo) & (hold > 0), phase["warmup_end"],
                         reset, nonfinite, phase["anneal_start"], undo], dim=-1)
    shifts = torch.arange(flags.shape[-1], device=flags.device)
    code = (flags.to(_INT) << shifts).sum(-1)
    if blowup is not None:
        # the modifier: a decrease in a blow-up, or a final cooldown that starts in one
        code = code | (blowup | phase["anneal_blown"]).to(_INT) * BLOWUP
    if spiked is not None:
        code = code | spiked.to(_INT) * SPIKE
    if config.stalled_anneals_to_zero:
        # the modifier: a final cooldown that starts with increases blocked
        code = code | phase["anneal_stalled"].to(_INT) * STALLED
    fields.update(lrs=lrs_after, hold=hold)
    decision = TensorDecision(
        lrs=lrs_after,
        smoothed=smoothed,
        code=code,
        reference=torch.where(undo, state.payoff_ref, state.reference),
        lrs_before=state.lrs,
        lrs_changed=changed,
        penalty=fields["penalty"],
        rule_lrs=lrs_after,
        first=fields.get("first", state.first),
    )
    return state._replace(**fields), decision


def _smoothed(
    config: GreedyConfig, state: TensorState, x: Tensor, finite: Tensor
) -> dict[str, Tensor]:
    """The new step, smoother fields and smoothed value (kept where ``x`` is not finite)."""
    # non-finite values never reach the statistics; zero keeps the discarded lanes clean
    value = torch.where(finite, x, torch.zeros_like(x))
    smoothed_new, smoother = _smooth(config, state, value)
    if config.noise_threshold:
        smoother.update(_noise(config, state, value))
    fields: dict[str, Tensor] = {"step": state.step + 1}
    for name, new in smoother.items():
        old = getattr(state, name)
        mask = finite.reshape(finite.shape + (1,) * (new.ndim - finite.ndim))
        fields[name] = torch.where(mask, new, old)
    fields["smoothed"] = torch.where(finite, smoothed_new, state.smoothed)
    if config.keeps_first:
        # the guards' yardstick: the first smoothed value, kept from then on
        fields["first"] = torch.where(torch.isnan(state.first) & finite, fields["smoothed"],
                                      state.first)
    return fields


def _phase(
    config: GreedyConfig, state: TensorState, fields: dict[str, Tensor], finite: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """The LRs after the warmup ramp, and where the run is: warmup, final cooldown."""
    step = fields["step"]
    lrs = state.lrs
    if config.warmup > 0:
        in_warmup = step <= config.warmup
        lrs = torch.where(in_warmup.unsqueeze(-1), _ramp(config, state, step), lrs)
        warmup_end = finite & (step == config.warmup)
    else:
        in_warmup = torch.zeros_like(finite)
        warmup_end = in_warmup
    phase = {"warmup_end": warmup_end, "after_warmup": ~in_warmup}
    start = config.anneal_start
    if start is None:
        phase["annealing"] = phase["anneal_start"] = torch.zeros_like(finite)
        phase["anneal_blown"] = phase["anneal_stalled"] = phase["annealing"]
        return lrs, phase
    # the final cooldown: from its first observation the LR follows the shape only
    annealing = ~in_warmup & (step >= start)
    anneal_start = annealing & ~state.annealing
    anneal_from = torch.where(anneal_start.unsqueeze(-1), lrs, state.anneal_from)
    k = torch.clamp(step - start, min=0, max=config.anneal_steps)
    shape = _lookup(state.anneal_table, k).unsqueeze(-1)
    end = state.min_lrs
    zero_from: Tensor | None = None  # where a cooldown starting now would end at 0
    phase["anneal_blown"] = torch.zeros_like(finite)
    if config.blowup_ratio is not None:
        # started in a blow-up: towards 0 instead of the lower bounds
        zero_from = _blown(config, fields["first"], fields["smoothed"], state.blowup_cuts)
        phase["anneal_blown"] = anneal_start & zero_from
    if config.floor_anneals_to_zero:
        # started with every group at its lower bound: towards 0 as well
        at_floor = (lrs <= state.min_lrs).all(-1)
        zero_from = at_floor if zero_from is None else zero_from | at_floor
    if config.stalled_anneals_to_zero:
        # started with increases blocked by the held-out rule: towards 0 as well
        phase["anneal_stalled"] = anneal_start & state.eval_block
        zero_from = state.eval_block if zero_from is None else zero_from | state.eval_block
    if config.anneal_to_zero:
        # every cooldown towards 0
        zero_from = torch.ones_like(anneal_start)
    if zero_from is not None:
        to_zero = torch.where(anneal_start, zero_from, state.anneal_to_zero)
        end = torch.where(to_zero.unsqueeze(-1), torch.zeros_like(end), end)
        fields["anneal_to_zero"] = to_zero
    phase["annealed"] = end + (anneal_from - end) * shape
    fields.update(annealing=state.annealing | annealing, anneal_from=anneal_from)
    phase.update(annealing=annealing, anneal_start=anneal_start,
                 after_warmup=~in_warmup & ~annealing)
    return lrs, phase


def _spike(
    config: GreedyConfig, state: TensorState, fields: dict[str, Tensor], x: Tensor,
    finite: Tensor, lrs: Tensor,
) -> tuple[Tensor, Tensor]:
    """Count spike steps (``spike_ratio``; rule.update and rule._spike_cut) and cut by
    ``SPIKE_CUT`` on the second in a row and after, over the step's own decision
    (``lrs``), outside the warmup ramp and the final cooldown: where an LR moved, and the
    LRs after it."""
    r = config.spike_ratio
    assert r is not None
    first = fields["first"]
    known = first > 0  # False while NaN (none yet)
    spiking = ~finite | (x > r * first if config.mode == "min" else x * r < first)
    zero = torch.zeros_like(state.spike_steps)
    steps = torch.where(known, torch.where(spiking, state.spike_steps + 1, zero),
                        state.spike_steps)
    fields["spike_steps"] = steps
    cutting = known & (steps >= 2) & (fields["step"] > config.warmup)
    if "annealing" in fields:
        cutting = cutting & ~fields["annealing"]
    fields["num_good"] = torch.where(cutting, zero, fields["num_good"])
    fields["num_bad"] = torch.where(cutting, zero, fields["num_bad"])
    moved, lrs = _lower(state, lrs, SPIKE_CUT, cutting)
    return moved.any(-1), lrs


def _lower(state: TensorState, lrs: Tensor, factor: Any, where: Tensor) -> tuple[Tensor, Tensor]:
    """``lrs`` times ``factor``, not below the lower bounds, in the runs ``where`` and the
    groups it moves by more than ``eps`` (rule._lower): those groups, and the LRs."""
    lowered = torch.maximum(lrs * factor, state.min_lrs)
    moved = where.unsqueeze(-1) & (lrs - lowered > state.eps.unsqueeze(-1))
    return moved, torch.where(moved, lowered, lrs)


def _payoff(
    config: GreedyConfig, state: TensorState, fields: dict[str, Tensor], active: Tensor
) -> Tensor:
    """Where a pending increase is checked and did not pay off (to undo); the counters."""
    if config.payoff_patience is None:
        fields.update(payoff_left=state.payoff_left, penalty=state.penalty)
        return torch.zeros_like(active)
    # an increase must pay off: checked payoff_patience observations after it
    counting = active & (state.payoff_left > 0)
    payoff_left = torch.where(counting, state.payoff_left - 1, state.payoff_left)
    check = counting & (payoff_left == 0)
    undo = check & _worse(config.mode, fields["smoothed"], state.payoff_ref)
    penalty = state.penalty
    fields["penalty"] = torch.where(
        undo, penalty + 1, torch.where(check, torch.clamp(penalty - 1, min=0), penalty))
    fields["payoff_left"] = payoff_left
    return undo


def _compare(
    config: GreedyConfig, state: TensorState, fields: dict[str, Tensor], x: Tensor,
    active: Tensor, undo: Tensor,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Count the streaks, compare with the reference (``x``: the raw values): where to
    increase, to decrease, and (with the blow-up guard, else None) where the decrease is
    in a blow-up."""
    smoothed = fields["smoothed"]
    holding = active & (state.hold > 0)
    comparing = active & (state.hold <= 0)
    counted = comparing  # where the comparison counts towards a streak
    if config.noise_threshold:
        # better by more than noise_threshold standard errors of the smoothed loss
        n = 1 if config.smoothing == "none" else config.window
        margin = config.noise_threshold * torch.sqrt(fields["noise_var"] / n)
        shifted = smoothed + margin if config.mode == "min" else smoothed - margin
        better = _is_better(config, shifted, state.reference, state.threshold)
    else:
        better = _is_better(config, smoothed, state.reference, state.threshold)
    if config.blowup_ratio is not None:
        # worse than the untrained model: nothing it does is progress
        blown = comparing & _blown(config, fields["first"], smoothed, state.blowup_cuts)
        better = better & ~blown
        if config.blowup_raw_check:
            # the raw value back at half the first one: neither progress nor worse
            first = fields["first"]
            back = (x <= BLOWUP_RECOVERED * first if config.mode == "min"
                    else x * BLOWUP_RECOVERED >= first)
            counted = comparing & ~(blown & back)
    if config.compare == "previous":
        reference = torch.where(counted, smoothed, state.reference)
    else:
        reference = torch.where(comparing & better, smoothed, state.reference)
    zero = torch.zeros_like(state.num_good)
    num_good = torch.where(comparing & better, state.num_good + 1, state.num_good)
    num_bad = torch.where(counted & ~better, state.num_bad + 1, state.num_bad)
    num_good = torch.where((comparing & ~better) | holding, zero, num_good)
    num_bad = torch.where((comparing & better) | holding, zero, num_bad)

    up_patience = (state.up_patience + 1) * (fields["penalty"] + 1) - 1
    ready = comparing & (num_good > up_patience)
    # a worse held-out value blocks increases until it recovers
    do_increase = ready & ~state.eval_block
    do_decrease = comparing & ~ready & (num_bad > state.patience)
    if config.compare == "recent_best":
        # a new baseline at each decrease decision (a reset below clears it)
        reference = torch.where(do_decrease | undo, smoothed, reference)
    fields.update(
        reference=reference,
        num_good=torch.where(ready | undo, zero, num_good),
        num_bad=torch.where(do_decrease | undo, zero, num_bad),
        hold=torch.where(holding, state.hold - 1, state.hold),
    )
    if config.blowup_ratio is None:
        return do_increase, do_decrease, None
    # a comparison out of a blow-up ends it; each decrease in one squares the factor more
    blowup = do_decrease & blown
    cuts = torch.where(comparing & ~blown, zero, state.blowup_cuts)
    fields["blowup_cuts"] = torch.where(blowup, torch.clamp(cuts + 1, max=BLOWUP_SQUARINGS),
                                        cuts)
    return do_increase, do_decrease, blowup


def _change(
    config: GreedyConfig, state: TensorState, fields: dict[str, Tensor], lrs: Tensor,
    up: Tensor, down: Tensor, blowup: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The LRs after the increase (``up``) or decrease (``down``) each run decided, and
    where it was blocked; computed everywhere, applied by mask. Where ``blowup``, the
    decrease takes the blow-up guard's factor for the decreases in the blow-up so far."""
    factor = state.factor.unsqueeze(-1)
    eps = state.eps.unsqueeze(-1)
    down_factor = factor
    if blowup is not None:
        cuts = torch.clamp(state.blowup_cuts, max=BLOWUP_SQUARINGS).unsqueeze(-1)
        squared = state.blowup_factors.gather(-1, cuts)
        down_factor = torch.where(blowup.unsqueeze(-1), squared, factor)
    lowered = torch.maximum(lrs * down_factor, state.min_lrs)
    raised = torch.minimum(lrs / factor, state.max_lrs)
    apply_down = down.unsqueeze(-1) & (lrs - lowered > eps)
    apply_up = up.unsqueeze(-1) & (raised - lrs > eps)
    changed = torch.where(apply_down, lowered, torch.where(apply_up, raised, lrs))
    clipped = (up | down) & ~(apply_down | apply_up).any(-1)
    fields["floor_hits"] = torch.where(up, torch.zeros_like(state.floor_hits), state.floor_hits)
    fields["payoff_ref"] = state.payoff_ref
    if config.payoff_patience is not None:
        armed = up & apply_up.any(-1)
        fields["payoff_left"] = torch.where(armed, config.payoff_patience, fields["payoff_left"])
        fields["payoff_ref"] = torch.where(armed, fields["smoothed"], state.payoff_ref)
    return changed, clipped


_STATISTICS = ("window_values", "window_count", "window_pos", "window_sum", "ema",
               "ema_count", "noise_var", "noise_count")


def _reset(
    config: GreedyConfig, state: TensorState, fields: dict[str, Tensor], changed: Tensor,
    do_decrease: Tensor,
) -> tuple[Tensor, Tensor]:
    """Where a decrease found every group at its floor ``reset_patience`` times: back to
    the base LRs with fresh statistics. Returns that mask and the LRs after it."""
    if config.reset_patience is None:
        return torch.zeros_like(do_decrease), changed
    zero = torch.zeros_like(state.num_good)
    at_floor = (changed <= state.min_lrs).all(-1)
    floor_hits = fields["floor_hits"]
    floor_hits = torch.where(do_decrease & at_floor, floor_hits + 1, floor_hits)
    reset = do_decrease & at_floor & (floor_hits >= config.reset_patience)
    reference = fields["reference"]
    fields.update(
        reference=torch.where(reset, torch.full_like(reference, config.initial_reference),
                              reference),
        num_good=torch.where(reset, zero, fields["num_good"]),
        num_bad=torch.where(reset, zero, fields["num_bad"]),
        floor_hits=torch.where(reset, zero, floor_hits),
        payoff_left=torch.where(reset, zero, fields["payoff_left"]),
    )
    if "blowup_cuts" in fields:  # the first value stays: the untrained model's loss
        fields["blowup_cuts"] = torch.where(reset, zero, fields["blowup_cuts"])
    for name in _STATISTICS:
        current = fields.get(name, getattr(state, name))
        mask = reset.reshape(reset.shape + (1,) * (current.ndim - reset.ndim))
        fields[name] = torch.where(mask, torch.zeros_like(current), current)
    return reset, torch.where(reset.unsqueeze(-1), state.base_lrs, changed)


def observe_eval(
    config: GreedyConfig, state: TensorState, value: Tensor | float
) -> tuple[TensorState, TensorDecision]:
    """A held-out value per run: :func:`greedylr.rule.observe_eval` in tensor ops.

    The decision's ``code`` holds :data:`EVAL_DECREASE` (with :data:`CLIPPED` when no
    group could go lower) and its ``reference`` the best held-out value before this one.
    As there, a value given during the warmup ramp (``step < warmup``) only becomes the
    best if it is better.
    """
    if config.base_schedule == "constant" or config.eval_patience is None:
        return _observe_eval(config, state, value)
    return _applied(state, *_observe_eval(config, state._replace(lrs=state.rule_lrs), value))


def _observe_eval(
    config: GreedyConfig, state: TensorState, value: Tensor | float
) -> tuple[TensorState, TensorDecision]:
    """:func:`observe_eval` on the LRs the state applies (as :func:`_update`)."""
    x = _observed(state, value)
    if config.eval_patience is None:
        seen = torch.zeros_like(state.annealing)
    else:
        seen = torch.isfinite(x) & ~state.annealing
    best = state.eval_best
    eval_train = state.eval_train
    needed = torch.zeros_like(x)
    if config.eval_pace:
        last, now = state.eval_train, state.smoothed
        eval_train = torch.where(seen, now, last)
        gain = (last - now if config.mode == "min" else now - last) / last.abs()
        usable = ~torch.isnan(best) & ~torch.isnan(last) & ~torch.isnan(now) & (last != 0)
        needed = torch.where(usable, config.eval_pace * gain.clamp(min=0.0) * best.abs(),
                             needed)
    shifted = x + needed if config.eval_mode == "min" else x - needed
    improved = seen & (torch.isnan(best) | _worse(config.eval_mode, best, shifted))
    worsened = seen & ~improved
    # better than the best, but not by the pace: still the best (eval_pace)
    beaten = worsened & _worse(config.eval_mode, best, x)
    if config.warmup > 0:
        # the ramp sets the LR up to its last update, undoing any cut: a worse value does not count
        worsened = worsened & (state.step >= config.warmup)
    zero = torch.zeros_like(state.eval_bad)
    eval_bad = torch.where(improved, zero, torch.where(worsened, state.eval_bad + 1,
                                                         state.eval_bad))
    act = worsened & (eval_bad > (config.eval_patience or 0))
    eval_bad = torch.where(act, zero, eval_bad)
    apply, lrs = _lower(state, state.lrs, config.eval_factor, act)
    worse_cuts = torch.where(improved, zero, state.eval_worse_cuts)
    if config.eval_compound_margin is not None:  # a cut on a clearly worse value compounds
        table = config.eval_compound_table()
        margin = config.eval_compound_margin * best.abs()
        clearly = _worse(config.eval_mode, x - margin if config.eval_mode == "min"
                         else x + margin, best)
        compound = act & apply.any(-1) & clearly
        factor = torch.full_like(x, table[-1])
        for k in range(len(table) - 2, -1, -1):  # Python's floats, looked up by count
            factor = torch.where(worse_cuts == k, table[k], factor)
        again = torch.maximum(lrs * factor.unsqueeze(-1), state.min_lrs)
        lrs = torch.where(compound.unsqueeze(-1) & (lrs - again > state.eps.unsqueeze(-1)),
                          again, lrs)
        worse_cuts = torch.where(compound, torch.clamp(worse_cuts + 1, max=BLOWUP_SQUARINGS),
                                 worse_cuts)
    reference = state.reference
    if config.compare == "recent_best":
        reference = torch.where(act & ~torch.isnan(state.smoothed), state.smoothed, reference)
    code = (act.to(_INT) * EVAL_DECREASE) | ((act & ~apply.any(-1)).to(_INT) * CLIPPED)
    new_state = state._replace(
        lrs=lrs,
        reference=reference,
        num_good=torch.where(act, zero, state.num_good),
        num_bad=torch.where(act, zero, state.num_bad),
        eval_best=torch.where(improved | beaten, x, best),
        eval_bad=eval_bad,
        eval_train=eval_train,
        eval_block=torch.where(improved, False, state.eval_block | worsened),
        eval_worse_cuts=worse_cuts,
    )
    decision = TensorDecision(
        lrs=lrs, smoothed=state.smoothed, code=code, reference=best, lrs_before=state.lrs,
        lrs_changed=lrs, penalty=state.penalty, rule_lrs=lrs, first=state.first,
    )
    return new_state, decision


def step_(
    config: GreedyConfig,
    state: TensorState,
    loss: Tensor | float,
    lr_tensors: Sequence[Tensor] = (),
    *,
    with_row: bool = True,
) -> tuple[Tensor | None, tuple[Tensor, ...]]:
    """:func:`update`, committed in place: the state's own tensors receive the new values.

    Every tensor keeps its storage from step to step, so that a CUDA graph captured
    around this call replays the rule (and advances it) without Python, and so that,
    under ``torch.compile``, the copies are fused into the rule's kernels: one
    :func:`compile_step` call is a handful of kernels instead of about a hundred.

    Args:
        config: the shared configuration.
        state: the state to advance; its tensors are overwritten.
        loss: the observed value of every run, as for :func:`update`.
        lr_tensors: for a state of one run only (batch shape ``()`` or ``(1,)``): the
            optimizer's LR tensors, one per group, filled in place with the new LRs
            (rounded to their dtype).
        with_row: build the trace row (``False``: ``None``, and eight ops fewer eager).

    Returns:
        ``(row, lr_copies)``. ``row`` (``[*B, 3 + 3 * G]``, the state's dtype) is what
        the trace keeps of the step, laid out as :meth:`greedylr.trace.Trace.record_row`
        reads it: the loss, the smoothed loss, the ``G`` LRs, the event code, then the
        decoder's values: the reference and the ``G`` LRs before and the ``G`` LRs
        after the change (before a reset), i.e. the fields of :class:`TensorDecision`,
        the penalty, with a decaying ``base_schedule`` the ``G`` rule's own LRs, and
        with the blow-up guard (``blowup_ratio``) or the spike guard (``spike_ratio``)
        the first smoothed value.
        ``lr_copies`` are copies of ``lr_tensors`` after the fill.
    """
    x = _observed(state, loss)
    new_state, decision = update(config, state, x)
    # built before the commit: decision.reference and lrs_before are the old tensors
    row = torch.cat([
        x.unsqueeze(-1), decision.smoothed.unsqueeze(-1), decision.lrs,
        decision.code.to(x.dtype).unsqueeze(-1), decision.reference.unsqueeze(-1),
        decision.lrs_before, decision.lrs_changed,
        decision.penalty.to(x.dtype).unsqueeze(-1),
        *((decision.rule_lrs,) if config.base_schedule != "constant" else ()),
        *((decision.first.unsqueeze(-1),) if config.keeps_first else ()),
    ], dim=-1) if with_row else None
    pairs = [(old, new) for old, new in zip(state, new_state, strict=True) if new is not old]
    if torch.compiler.is_compiling():
        # one copy_ each, fused by inductor into the rule's kernels; _foreach_copy_ would
        # let the row above read the new values (inductor, torch 2.13)
        for old, new in pairs:
            old.copy_(new)
    else:
        # eager: one op (one or a few kernels on a GPU) instead of one per field
        torch._foreach_copy_([old for old, _ in pairs], [new for _, new in pairs])
    if lr_tensors:
        for lr, value in zip(lr_tensors, decision.lrs.reshape(-1).unbind(), strict=True):
            # through a 1-element view: inductor drops an in-place write to a 0-d float64
            # CPU input (torch 2.13), and the optimizer's LR then never moved
            lr.view(-1).copy_(value.reshape(1))
    return row, tuple(lr.clone() for lr in lr_tensors)


def compile_step(backend: str = "inductor") -> Any:
    """:func:`step_` through ``torch.compile``: one graph for a run, whatever the values.

    The configuration is a constant of the graph (a frozen dataclass); every value
    that changes is a tensor, updated in place, so the LR moving never recompiles.

    Args:
        backend: the ``torch.compile`` backend.

    Returns:
        A function with the signature of :func:`step_`.
    """
    # Triton would contract a multiply and an add into one fused multiply-add (one
    # rounding fewer than the float rule); emulate_precision_casts turns that off
    options: dict[str, Any] | None = (
        {"emulate_precision_casts": True} if backend == "inductor" else None)
    return torch.compile(step_, backend=backend, fullgraph=True, dynamic=False,
                         options=options)

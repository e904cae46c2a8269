"""The rule's knobs: :class:`GreedyConfig`, validated at construction. Standard library only.

Kept apart from :mod:`greedylr.rule` (the state and the update) because every adapter
and study builds a config without running the rule; :mod:`greedylr.rule` re-exports
everything here. What each knob does and why it exists: the rule guide
(``docs/guides/rule.md``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

__all__ = [
    "ABSENT_MEANS", "ANNEAL_SHAPES", "BASE_SCHEDULES", "BLOWUP_RECOVERED", "BLOWUP_SQUARINGS",
    "KNOBS_OFF", "SPIKE_CUT", "Bound",
    "GreedyConfig", "budget_after_warmup", "cosine_mode",
]

Bound = float | Sequence[float] | None

#: The 0.2 knobs switched off: the 0.1 rule (a checkpoint of 0.1 ran with these).
KNOBS_OFF: dict[str, Any] = {
    "total_steps": None,
    "anneal_fraction": 0.0,
    "noise_threshold": 0.0,
    "payoff_patience": None,
    "eval_patience": None,
    "blowup_ratio": None,
    "blowup_raw_check": False,
    "floor_anneals_to_zero": False,
    "spike_ratio": None,
    "anneal_to_zero": False,
    "stalled_anneals_to_zero": False,
}

#: Knobs whose default is not what a config saved before them ran: a saved config that
#: lacks one ran this (0.4's had no blow-up guard, 0.5's guard no raw-loss check, 0.6's
#: cooldown ended at the lower bound wherever it started, 0.7's held-out values needed no
#: pace, 0.8's held-out cuts never compounded, 0.9's had no spike guard, and 0.10's
#: cooldown ended at 0 only from the lower bound or a blow-up, whatever the held-out
#: rule).
ABSENT_MEANS: dict[str, Any] = {"blowup_ratio": None, "blowup_raw_check": False,
                                "floor_anneals_to_zero": False, "eval_pace": 0.0,
                                "eval_compound_margin": None, "spike_ratio": None,
                                "anneal_to_zero": False, "stalled_anneals_to_zero": False}

#: How many times the blow-up guard squares the factor at most (0.95 -> 0.44).
BLOWUP_SQUARINGS = 4

#: With ``blowup_raw_check``: a raw loss at or below this fraction of the first value
#: (for ``mode="max"``: at or above the first value over it) reads as recovered. Not 1: a
#: model that collapsed to a constant prediction sits just below its first loss.
BLOWUP_RECOVERED = 0.5

#: With ``spike_ratio``: what each spike cut multiplies every LR by (not below its bound).
SPIKE_CUT = 0.5

#: The final cooldown's shapes: the multiplier of ``lr_at_start - floor`` at progress p.
ANNEAL_SHAPES = ("linear", "cosine", "1-sqrt")
BASE_SCHEDULES = ("constant", "cosine")


def _anneal_shape(shape: str, p: float) -> float:
    if shape == "linear":
        return 1.0 - p
    if shape == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    return 1.0 - math.sqrt(p)


def _plain(value: Any) -> Any:
    """A NumPy scalar or 0-d tensor as the Python number it holds; a 1-d array as a list.

    So that ``factor=np.float32(0.5)`` is the number 0.5 (and is validated as one), and
    the config holds plain values that a ``weights_only`` checkpoint can load.
    """
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    ndim = getattr(value, "ndim", None)
    if ndim == 0 and hasattr(value, "item"):
        return value.item()
    if ndim == 1 and hasattr(value, "tolist"):
        return value.tolist()
    return value


def _anneal_steps(total_steps: int, anneal_fraction: float, base_schedule: str) -> int:
    """Length of the final cooldown of a run of ``total_steps`` (0 under a decaying base
    schedule, which has none)."""
    return int(anneal_fraction * total_steps) if base_schedule == "constant" else 0


def _warmup_runs_into_cooldown(warmup: int, total_steps: int, anneal_fraction: float,
                               base_schedule: str) -> bool:
    """Whether a warmup of ``warmup`` steps ends after the final cooldown of a run of
    ``total_steps`` starts: inside it (the cooldown would begin late, with a jump), or at
    or after the budget's end (the cooldown would never run inside the budget, and the LR
    would fall to its end point at once after the ramp)."""
    anneal = _anneal_steps(total_steps, anneal_fraction, base_schedule)
    return anneal > 0 and total_steps - anneal < warmup


def budget_after_warmup(total_steps: int, warmup: int, anneal_fraction: float,
                        base_schedule: str) -> int | None:
    """The budget a framework supplies (the HF Trainer's ``max_steps``, Lightning's
    ``estimated_stepping_batches``), or ``None`` with a warning where the warmup would run
    into its final cooldown: such a run gets no budget, so no final cooldown, rather than
    an error at its start."""
    if not _warmup_runs_into_cooldown(warmup, total_steps, anneal_fraction, base_schedule):
        return total_steps
    logging.getLogger("greedylr").warning(
        "GreedyLR: the warmup (%d steps) runs into the final cooldown of this %d-step run "
        "(anneal_fraction=%s): no final cooldown", warmup, total_steps, anneal_fraction)
    return None


def check_budget_change(config: GreedyConfig, step: int, annealing: bool,
                        previous: GreedyConfig | None = None) -> None:
    """Refuse to continue a run that has made ``step`` steps with ``config``'s new budget
    where the LR would jump: once the final cooldown has started (``annealing``), where
    the new budget's cooldown would have started at a step already made, or, under a
    decaying base schedule, where the new budget has been used up already (its decay would
    drop the LR to 0 at once). Under a decaying base schedule any other change of a run
    past its warmup moves the decay, and so the LR, at once: logged as a warning with the
    size of the jump, when ``previous`` (the run's configuration so far) is given."""
    if annealing:
        raise ValueError("the final cooldown has started: total_steps can no longer change")
    start = config.anneal_start
    if start is not None and start < step:
        raise ValueError(
            f"total_steps={config.total_steps}: its final cooldown starts at step {start}, and "
            f"this run has made {step} steps already (the LR would jump); give a larger "
            "budget, or anneal_fraction=0 for none"
        )
    if config.base_schedule == "constant" or config.total_steps is None:
        return
    if step and config.total_steps <= step:
        raise ValueError(
            f"total_steps={config.total_steps}: this run has made {step} steps already, and "
            f"base_schedule={config.base_schedule!r} decays to 0 at the end of its budget "
            "(the LR would drop to 0 at once); give a budget beyond the steps made"
        )
    if previous is not None:
        # the factor of the next step, which the change applies from
        before, after = previous.base_factor(step + 1), config.base_factor(step + 1)
        if before != after:
            logging.getLogger("greedylr").warning(
                "GreedyLR: total_steps %s -> %s at step %d moves the decay of base_schedule=%r: "
                "the LR jumps from %.4g to %.4g times the rule's", previous.total_steps,
                config.total_steps, step, config.base_schedule, before, after)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """An int or a float, not a bool (``eps=True`` is a mistake, not 1.0)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _per_group(value: Bound, n: int, name: str) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return [float(value)] * n
    values = [float(v) for v in value]
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} values for {n} parameter groups")
    return values


@dataclass(frozen=True)
class GreedyConfig:
    """Every knob of the rule, validated at construction.

    Args:
        factor: F in (0, 1). Improvement divides the LR by F, worsening multiplies it by F.
        patience: non-improving observations tolerated before a decrease (acts on the
            ``patience + 1``-th, as torch's ``ReduceLROnPlateau``).
        increase_patience: the same for increases; ``None`` means ``patience``.
        compare: ``"recent_best"`` (default) compares with the best smoothed value since
            the last decrease decision, so that a disturbance cannot leave the run
            chasing a best it can no longer reach; ``"best"`` with the best so far
            (transformers, torch: after a loss spike it keeps cutting the LR until the
            pre-spike best is beaten); ``"previous"`` with the previous smoothed value
            (paper, Algorithm 1).
        threshold: how much better counts as better; see ``threshold_mode``.
        threshold_mode: ``"rel"``: better than ``ref - threshold * |ref|`` (min mode; a
            negative loss too); ``"abs"``: better than ``ref - threshold``;
            ``"rel_product"``: torch's ``ReduceLROnPlateau``'s and transformers' ``rel``:
            the product, better than ``ref * (1 - threshold)`` (min mode; ``ref * (1 +
            threshold)`` in max mode), a lenient bar below zero (there a slightly worse
            value counts as better). :meth:`GreedyLR.from_transformers
            <greedylr.GreedyLR.from_transformers>` maps transformers' ``"rel"`` to it.
        mode: ``"min"`` for a loss, ``"max"`` for a reward or an accuracy.
        smoothing: ``"ema"`` (default: exponential moving average of span ``window``,
            bias-corrected, so the first values are not pulled towards 0), ``"window"``
            (mean of the last ``window`` values, O(1) per step; transformers' and the
            paper's smoothing) or ``"none"``. The EMA won the defaults study
            (``results/defaults/DECISION.md``): it weighs the recent steps most and so
            reacts sooner than a window mean of the same span.
        window: the EMA span, or the window of the window mean, in observations.
        warmup: steps of a linear LR ramp from ``warmup_start_factor * base_lr`` to the
            base LR. Observations during the ramp feed the smoother only. The ramp is
            fixed, as the final cooldown is: a non-finite loss does not decrease the LR
            there (``on_nonfinite="decrease"``), and a held-out value given before its
            last step (:func:`greedylr.rule.observe_eval` with ``step < warmup``, where
            the next step still sets the ramp's LR) only becomes the best so far if it is
            better: a worse one never counts, blocks increases or cuts the LR. From the
            ramp's last step on, held-out values count as usual. With a budget
            (``total_steps``) and a final cooldown, the ramp must end by the cooldown's
            start: the cooldown would otherwise begin late or never, and the LR jump.
            (A decaying ``base_schedule`` takes a ramp as long as the budget, as
            transformers' cosine schedule does: the ramp, then 0.)
        warmup_start_factor: where the ramp starts, as a fraction of the base LR.
        cooldown: observations ignored after a decrease (no counting, no comparison).
        hold_after_increase: observations ignored after an increase (transformers
            calls this ``warmup``; it is a hold, not a ramp).
        min_lr: absolute lower bound, one value or one per group.
        min_lr_ratio: lower bound relative to each group's base LR (used when
            ``min_lr`` is None; ``None`` means no lower bound).
        max_lr: absolute upper bound, one value or one per group.
        max_lr_ratio: upper bound relative to each group's base LR (used when
            ``max_lr`` is None; ``None`` means no upper bound).
        reset_patience: after this many decreases that find every group at its lower
            bound, go back to the base LRs with fresh statistics. ``None`` disables it.
        eps: a change smaller than this is not applied (torch's ``eps``).
        on_nonfinite: a NaN or infinite loss is never fed to the statistics.
            ``"skip"`` ignores it, ``"decrease"`` decreases the LR at once (and starts
            the cooldown) except during the warmup ramp and the final cooldown, which are
            fixed (there it is skipped, its ``nonfinite`` event emitted), ``"raise"``
            raises ``FloatingPointError``.
        check_bounds: raise if a base LR lies outside its bounds.
        total_steps: the run's length in observations, when known (the HF Trainer's
            ``max_steps``, Lightning's ``estimated_stepping_batches``); only the final
            cooldown uses it. ``None``: unknown, the rule is anytime.
        anneal_fraction: the final fraction of ``total_steps`` that anneals, in [0, 1]
            (0: never). The cooldown starts at observation
            ``total_steps - int(anneal_fraction * total_steps)``; from there the rule
            stops deciding and the LR goes from where it stands to its lower bound. A
            budget too short for one step of it (``anneal_fraction * total_steps < 1``,
            e.g. 4 steps at 0.2) has none.
        anneal_shape: ``"1-sqrt"`` (Hägele et al. 2024, arXiv 2405.18392), ``"linear"``
            or ``"cosine"``.
        noise_threshold: k >= 0: an observation counts as better only if the smoothed
            loss beats the reference by more than k standard errors of the smoothed
            loss, estimated as ``sqrt(v / n)`` where v is an EMA (span ``window``) of the
            squared one-step prediction error ``loss - previous smoothed`` and n is
            ``window`` (1 without smoothing). 0: off (0.1 behaviour).
        payoff_patience: after an increase that changed the LR, the observation at which
            the smoothed loss must be no worse than when the increase was made; if it
            is worse, the increase is undone (the LR times ``factor``, cooldown armed)
            and every later increase needs ``penalty + 1`` times the improving streak
            (a paid-off increase takes one penalty back). ``None``: off.
        eval_mode: direction of the held-out value given to :func:`greedylr.rule.observe_eval`:
            ``"min"`` (lower is better: a held-out loss) or ``"max"`` (an accuracy, a
            reward). Not derived from ``mode``: a run that maximises a training metric may
            be judged on a held-out loss. So ``mode="max"`` keeps the default ``"min"``,
            which cuts the LR at each improvement of a held-out accuracy;
            :meth:`GreedyLR.observe_eval <greedylr.GreedyLR.observe_eval>` warns once for
            that combination.
        eval_factor: what a worsening held-out value multiplies the LR by, in (0, 1).
            0.7 (0.4; 0.5 before): a gentler decrease won round 13 of the defaults study,
            where halving on a noisy held-out curve had sent the LR to its floor.
        eval_patience: worsening held-out values tolerated before that decrease
            (increases are blocked from the first one until the held-out value improves).
            ``None``: held-out values are ignored (0.1 behaviour). 0 (default) and the
            20% cooldown won the 0.2 defaults study (``results/defaults/DECISION.md``).
        eval_pace: p >= 0: a held-out value counts as better only if it beats the best
            so far by ``p`` times the relative fall of the smoothed training loss since
            the previous held-out value (a held-out loss that lags the training loss is
            the start of overfitting); one that lags is handled as a worse one (increases
            blocked, the LR cut by ``eval_factor`` after ``eval_patience``), and is still
            the best so far. 0: better by any amount (0.7 behaviour). 0.5 (0.8) passed
            round 20 of the defaults study: it cuts the LR of a model that starts to
            overfit while its held-out value still improves a little.
        eval_compound_margin: m >= 0: a held-out cut on a value worse than the best so
            far by more than ``m`` times the best's magnitude compounds: the k-th such
            cut since the last held-out value that counted as better (kept pace)
            multiplies the LR by ``eval_factor ** (2 ** k)`` in all (0.7, 0.49, 0.24,
            0.058, then 0.0033 each time, as the blow-up guard squares its factor), not
            below the lower bound; a cut on a smaller rise, or on a value that improves
            but lags (``eval_pace``), stays ``eval_factor`` and leaves k. A clearly worse
            held-out value is what marks a too-large LR: on the defaults study's LR
            grids, runs started at 3.16x and 10x the right LR cut on a worse value about
            twice a run, four times as often as runs at 0.1x, and their values rise a
            median 10% above the best where those at 0.1x rise 1.8% (the held-out
            set's noise, which the margin leaves to ``eval_factor``). ``None``:
            every held-out cut is ``eval_factor`` (0.8 behaviour). 0.03 (0.9) passed
            round 30 of the defaults study.
        base_schedule: ``"constant"`` (default): the rule's LRs are the LRs applied.
            ``"cosine"`` (0.3, needs ``total_steps``): the rule's own LRs move as without
            a budget and are multiplied by cosine's decay over the budget after the warmup
            (:meth:`base_factor`; the final cooldown is off, the decay replaces it): at a
            well-tuned LR the run follows cosine, and the rule's moves correct a badly
            chosen one. The bounds, resets and events concern the rule's own LRs
            (``RuleState.rule_lrs``). Measured with ``eval_patience=None`` (rounds 8, 9
            and 12 of the defaults study) and, on runs longer than ~300 steps, best with
            ``patience`` about ``total_steps // 30`` (rounds 11 and 12):
            :func:`cosine_mode` gives those knobs.
        blowup_ratio: r > 1: a smoothed loss more than r times its first value (for
            ``mode="max"``: less than 1/r of it) starts a blow-up, worse than the
            untrained model by that much. While it lasts every observation counts as
            worse (no increase), and each decrease squares the factor of the one before
            (0.95, 0.9025, 0.81, 0.66, then 0.44 each time): a short transient costs one
            decrease, a lasting blow-up brings the LR to its lower bound within a few
            patience windows. Once a decrease was taken in it, a blow-up lasts until the
            smoothed loss is back below its first value: the recovery from the height
            is not progress. A final cooldown that starts in a blow-up ends at 0
            instead of the lower bound. Off while the first smoothed value is not
            positive, and with ``None`` (0.4 behaviour). The default, 100, was adopted
            in round 15 of the defaults study: at the LR a workload comes with, losses
            came back by themselves from excursions of up to 45x their first value;
            those that did not had gone from 600x to 10^9x.
        blowup_raw_check: with the blow-up guard on, a step of a blow-up whose raw loss
            is back at or below half the first value (``BLOWUP_RECOVERED``; for
            ``mode="max"``: at or above twice it) counts neither as better nor as worse:
            no increase, no count towards a decrease. A loss that spiked for a step or two
            and came straight back (the model undamaged) keeps an EMA of span 50 in a
            blow-up for a hundred steps or more, which 0.5's guard (``False``) reads as a
            long blow-up and answers with squared decreases. A blow-up whose raw loss
            stays above half the first value (a damaged model, or one collapsed to a
            constant prediction, just below its first loss) is cut as before. No effect
            with ``blowup_ratio=None``. The default since 0.6 (round 16 of the defaults
            study); ``False`` is 0.5's guard.
        floor_anneals_to_zero: a final cooldown that starts with every group at its
            lower bound ends at 0 instead of at the bound. The bound (10% of the initial
            LR by default) was binding: the rule had cut a too-large initial LR as far as
            it may, and at 10x the right LR that bound is the right LR itself, where the
            run would end; cosine's ends at 0. Any other cooldown ends at the lower
            bound (unless ``anneal_to_zero``). No effect without a final cooldown. The
            default since 0.7 (round 18 of the defaults study); ``False`` is 0.6's
            cooldown.
        anneal_to_zero: every final cooldown ends at 0, wherever it starts, as cosine's
            and WSD's do; the lower bound still holds before it. ``False`` (0.10
            behaviour): it ends at the lower bound, unless it starts at the bound
            (``floor_anneals_to_zero``) or in a blow-up. No effect without a final
            cooldown.
        stalled_anneals_to_zero: a final cooldown that starts while the held-out rule
            blocks increases (the last held-out value given to
            :func:`greedylr.rule.observe_eval` was worse than the best so far, or lagged
            the training loss's pace: ``RuleState.eval_block``) ends at 0 instead of at
            the lower bound: the held-out value had stopped keeping up with the training
            loss, and the rest of the run anneals as cosine's does. On a model still
            learning whose held-out value lags, that can cost a little (round 40). Any
            other cooldown ends where it would without it. No effect without a final
            cooldown or without held-out values. The default since 0.11 (round 40 of
            the defaults study, declared on the fourteenth probe split after round 37's
            pilot); ``False`` is 0.10's cooldown.
        spike_ratio: r > 1: a raw loss more than r times the first smoothed value (the
            untrained model's loss; for ``mode="max"``: less than 1/r of it), or a
            non-finite one, is a spike step; on the second spike step in a row, and on
            each one after it, every LR is multiplied by ``SPIKE_CUT`` (0.5) at once,
            not below its lower bound, and the streaks restart (no hold, no count towards
            a reset). Not during the warmup ramp or the final cooldown; off while the
            first value is not positive. A too-large LR does its damage in the first
            steps, before the smoothed loss (the blow-up guard's) or a held-out value can
            say so: on the defaults study's LR grids cosine's raw loss passes 10x its
            first value within nine steps on 42% of the runs at 10x the right LR and 6%
            at the LR a workload comes with, and a model that comes back from it is
            damaged for good. A single spike step that the next one undoes (a transient)
            cuts nothing. ``None``: off (0.9 behaviour).
    """

    factor: float = 0.95
    patience: int = 10
    increase_patience: int | None = None
    compare: Literal["best", "recent_best", "previous"] = "recent_best"
    threshold: float = 0.0
    threshold_mode: Literal["rel", "abs", "rel_product"] = "rel"
    mode: Literal["min", "max"] = "min"
    smoothing: Literal["window", "ema", "none"] = "ema"
    window: int = 50
    warmup: int = 0
    warmup_start_factor: float = 0.0
    cooldown: int = 0
    hold_after_increase: int = 0
    min_lr: Bound = None
    min_lr_ratio: float | None = 0.1
    max_lr: Bound = None
    max_lr_ratio: float | None = 10.0
    reset_patience: int | None = None
    eps: float = 0.0
    on_nonfinite: Literal["skip", "decrease", "raise"] = "skip"
    check_bounds: bool = True
    total_steps: int | None = None
    anneal_fraction: float = 0.2
    anneal_shape: Literal["linear", "cosine", "1-sqrt"] = "1-sqrt"
    noise_threshold: float = 0.0
    payoff_patience: int | None = None
    eval_mode: Literal["min", "max"] = "min"
    eval_factor: float = 0.7
    eval_patience: int | None = 0
    eval_pace: float = 0.5
    eval_compound_margin: float | None = 0.03
    base_schedule: Literal["constant", "cosine"] = "constant"
    blowup_ratio: float | None = 100.0
    blowup_raw_check: bool = True
    floor_anneals_to_zero: bool = True
    spike_ratio: float | None = None
    anneal_to_zero: bool = False
    stalled_anneals_to_zero: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            plain = _plain(value)
            if plain is not value:
                object.__setattr__(self, f.name, plain)
        self._check_counts()
        self._check_number_types()
        self._check_numbers()
        self._check_bounds()
        overrun = self.total_steps is not None and _warmup_runs_into_cooldown(
            self.warmup, self.total_steps, self.anneal_fraction, self.base_schedule)
        whole = self.total_steps is not None and self.warmup >= self.total_steps
        _check(
            not overrun or whole,
            f"the warmup ({self.warmup} steps) runs into the final cooldown, which starts at "
            f"step {self.anneal_start} of total_steps={self.total_steps} (anneal_fraction="
            f"{self.anneal_fraction}): the cooldown would begin late, with a jump; shorten "
            "the warmup or anneal_fraction, or give more steps",
        )
        _check(
            not overrun,
            f"the warmup ({self.warmup} steps) lasts the whole budget, total_steps="
            f"{self.total_steps}: the final cooldown (from step {self.anneal_start}, "
            f"anneal_fraction={self.anneal_fraction}) would never run inside it, and the LR "
            "would fall at once after the ramp to where the cooldown ends; shorten the "
            "warmup, give more steps, or anneal_fraction=0 (or no total_steps) for no "
            "cooldown",
        )
        _check(
            self.base_schedule == "constant" or self.total_steps is not None,
            f"base_schedule={self.base_schedule!r} decays over the run's budget: give "
            "total_steps (greedylr.integrations.transformers.attach and greedylr compare "
            "pass it; in Lightning, self.trainer.estimated_stepping_batches)",
        )

    def _check_counts(self) -> None:
        for name in ("patience", "window", "warmup", "cooldown", "hold_after_increase"):
            value = getattr(self, name)
            _check(_is_int(value) and value >= 0, f"{name} must be an int >= 0, got {value!r}")
        _check(self.window >= 1, f"window must be an int >= 1, got {self.window!r}")
        for name, minimum in (("increase_patience", 0), ("reset_patience", 1),
                              ("total_steps", 1), ("payoff_patience", 1), ("eval_patience", 0)):
            value = getattr(self, name)
            _check(
                value is None or (_is_int(value) and value >= minimum),
                f"{name} must be an int >= {minimum} or None, got {value!r}",
            )

    def _check_number_types(self) -> None:
        """A knob that takes a number given something else is said to be of the wrong type,
        not out of its range (``factor="0.5"`` is no number in (0, 1))."""
        for f in fields(self):
            optional = str(f.type) == "float | None"
            if str(f.type) != "float" and not optional:
                continue
            value = getattr(self, f.name)
            _check((optional and value is None) or _is_number(value),
                   f"{f.name} must be a number (an int or a float)"
                   f"{' or None' if optional else ''}, got {value!r} of type "
                   f"{type(value).__name__}")

    def _check_numbers(self) -> None:
        _check(
            _is_number(self.factor) and 0.0 < self.factor < 1.0,
            f"factor must be in (0, 1), got {self.factor!r}",
        )
        _check(
            _is_number(self.anneal_fraction) and 0.0 <= self.anneal_fraction <= 1.0,
            f"anneal_fraction must be in [0, 1], got {self.anneal_fraction!r}",
        )
        _check(
            _is_number(self.noise_threshold) and 0.0 <= self.noise_threshold
            < math.inf,
            f"noise_threshold must be finite and >= 0, got {self.noise_threshold!r}",
        )
        _check(
            self.blowup_ratio is None or (_is_number(self.blowup_ratio)
                                          and 1.0 < self.blowup_ratio < math.inf),
            f"blowup_ratio must be finite and > 1, or None, got {self.blowup_ratio!r}",
        )
        _check(
            self.spike_ratio is None or (_is_number(self.spike_ratio)
                                         and 1.0 < self.spike_ratio < math.inf),
            f"spike_ratio must be finite and > 1, or None, got {self.spike_ratio!r}",
        )
        for name in ("blowup_raw_check", "floor_anneals_to_zero", "anneal_to_zero",
                     "stalled_anneals_to_zero", "check_bounds"):
            value = getattr(self, name)
            _check(isinstance(value, bool), f"{name} must be a bool, got {value!r}")
        _check(
            _is_number(self.eval_factor) and 0.0 < self.eval_factor < 1.0,
            f"eval_factor must be in (0, 1), got {self.eval_factor!r}",
        )
        _check(
            _is_number(self.eval_pace) and 0.0 <= self.eval_pace < math.inf,
            f"eval_pace must be finite and >= 0, got {self.eval_pace!r}",
        )
        _check(
            self.eval_compound_margin is None
            or (_is_number(self.eval_compound_margin)
                and 0.0 <= self.eval_compound_margin < math.inf),
            f"eval_compound_margin must be finite and >= 0, or None, got "
            f"{self.eval_compound_margin!r}",
        )
        for name, allowed in (
            ("anneal_shape", ANNEAL_SHAPES),
            ("base_schedule", BASE_SCHEDULES),
            ("eval_mode", ("min", "max")),
            ("compare", ("best", "recent_best", "previous")),
            ("threshold_mode", ("rel", "abs", "rel_product")),
            ("mode", ("min", "max")),
            ("smoothing", ("window", "ema", "none")),
            ("on_nonfinite", ("skip", "decrease", "raise")),
        ):
            value = getattr(self, name)
            _check(value in allowed, f"{name} must be one of {allowed}, got {value!r}")
        _check(
            _is_number(self.threshold) and self.threshold >= 0,
            f"threshold must be >= 0, got {self.threshold!r}",
        )
        _check(
            self.threshold_mode == "abs" or self.threshold < 1,
            f"threshold must be < 1 with threshold_mode={self.threshold_mode!r} (a fraction "
            f"of the reference; 1 or more makes no loss an improvement), got "
            f"{self.threshold!r}; "
            "use threshold_mode='abs' for an absolute margin",
        )
        _check(
            math.isfinite(self.threshold),
            f"threshold must be finite, got {self.threshold!r} (no loss could be better)",
        )
        _check(
            _is_number(self.eps) and 0 <= self.eps < math.inf,
            f"eps must be finite and >= 0, got {self.eps!r}",
        )
        _check(
            _is_number(self.warmup_start_factor) and 0.0 <= self.warmup_start_factor <= 1.0,
            f"warmup_start_factor must be a number in [0, 1], got {self.warmup_start_factor!r}",
        )

    def _check_bounds(self) -> None:
        for name in ("min_lr_ratio", "max_lr_ratio"):
            value = getattr(self, name)
            _check(
                value is None or (_is_number(value) and value >= 0),
                f"{name} must be >= 0 or None, got {value!r}",
            )
        _check(self.min_lr_ratio is None or math.isfinite(self.min_lr_ratio),
               f"min_lr_ratio must be finite, got {self.min_lr_ratio!r}")
        for name in ("min_lr", "max_lr"):
            value = getattr(self, name)
            if value is None:
                continue
            scalar = not isinstance(value, (list, tuple))
            values: list[Any] = [value] if scalar else list(value)
            _check(all(_is_number(v) for v in values),
                   f"{name} must be a number (an int or a float), a list of one per param "
                   f"group, or None, got {value!r}")
            _check(all(v >= 0 for v in values), f"{name} must be >= 0, got {value!r}")
            _check(
                name == "max_lr" or all(math.isfinite(v) for v in values),
                f"{name} must be finite, got {value!r}",
            )
            if not isinstance(value, (int, float)):
                # a frozen dataclass keeps a tuple so that the config stays hashable
                object.__setattr__(self, name, tuple(float(v) for v in values))
        if (
            self.min_lr_ratio is not None
            and self.max_lr_ratio is not None
            and self.min_lr is None
            and self.max_lr is None
        ):
            _check(
                self.min_lr_ratio <= self.max_lr_ratio,
                f"min_lr_ratio ({self.min_lr_ratio}) is above max_lr_ratio ({self.max_lr_ratio})",
            )

    @property
    def up_patience(self) -> int:
        return self.patience if self.increase_patience is None else self.increase_patience

    @property
    def keeps_first(self) -> bool:
        """Whether the rule keeps the first smoothed value: the yardstick of the blow-up
        guard (``blowup_ratio``) and of the spike guard (``spike_ratio``)."""
        return self.blowup_ratio is not None or self.spike_ratio is not None

    @property
    def initial_reference(self) -> float:
        """The reference before any observation (and after a reset): every value beats it."""
        return math.inf if self.mode == "min" else -math.inf

    def blowup_factor(self, cuts: int, factor: float | None = None) -> float:
        """What the decrease after ``cuts`` decreases in the same blow-up multiplies the LR
        by: ``factor`` squared ``cuts`` times, at most ``BLOWUP_SQUARINGS`` times.
        ``factor``: a run's own (the tensor rule's per-run knob), when not ``self.factor``."""
        base = self.factor if factor is None else factor
        return float(base ** (2 ** min(cuts, BLOWUP_SQUARINGS)))

    def blowup_table(self, factor: float | None = None) -> list[float]:
        """:meth:`blowup_factor` for ``cuts`` = 0..``BLOWUP_SQUARINGS`` (more cuts
        square no further).

        The tensor rule and the optax port look these values up, so that all three
        implementations decrease in a blow-up with the same bits (Python's ``**`` here).
        """
        return [self.blowup_factor(cuts, factor) for cuts in range(BLOWUP_SQUARINGS + 1)]

    def clearly_worse(self, value: float, best: float) -> bool:
        """Whether a held-out ``value`` is worse than ``best`` by more than
        ``eval_compound_margin`` times its magnitude: its cut compounds (never, with the
        margin ``None``)."""
        if self.eval_compound_margin is None:
            return False
        margin = self.eval_compound_margin * abs(best)
        if self.eval_mode == "min":
            return value - margin > best
        return value + margin < best

    def eval_compound_table(self) -> list[float]:
        """What a compounding held-out cut multiplies the LR by after ``eval_factor``,
        by the number k of such cuts before it (0..``BLOWUP_SQUARINGS``; more square no
        further): ``eval_factor ** (2 ** k - 1)``, so that the cut takes
        ``eval_factor ** (2 ** k)`` in all. Empty with ``eval_compound_margin=None``.

        Looked up by all three implementations, so that they cut with the same bits.
        """
        if self.eval_compound_margin is None:
            return []
        return [float(self.eval_factor ** (2 ** k - 1)) for k in range(BLOWUP_SQUARINGS + 1)]

    @property
    def anneal_steps(self) -> int:
        """Length of the final cooldown in observations (0: none, no budget, or a base
        schedule that decays)."""
        if self.total_steps is None:
            return 0
        return _anneal_steps(self.total_steps, self.anneal_fraction, self.base_schedule)

    @property
    def anneal_start(self) -> int | None:
        """The observation at which the final cooldown starts (``None``: never)."""
        if self.total_steps is None or self.anneal_steps == 0:
            return None
        return self.total_steps - self.anneal_steps

    def anneal_table(self) -> list[float]:
        """The shape's multiplier after ``k`` observations of the cooldown, k = 0..length.

        The tensor rule and the optax port look these values up, so that all three
        implementations anneal with the same bits (``math.cos`` and ``math.sqrt`` here).
        """
        n = self.anneal_steps
        return [_anneal_shape(self.anneal_shape, k / n) for k in range(n + 1)] if n else []

    def base_factor(self, step: int) -> float:
        """The base schedule's multiplier of the rule's LRs after ``step`` observations:
        1 for ``"constant"`` and through the warmup, then cosine's decay from 1 to 0 over
        the rest of ``total_steps`` (at least one observation), 0 after it."""
        if self.base_schedule == "constant" or step <= self.warmup:
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - self.warmup) / self._span)))

    @property
    def _span(self) -> int:
        """The observations over which the base schedule decays, after the warmup."""
        assert self.total_steps is not None  # validated with the config
        return max(1, self.total_steps - self.warmup)

    def base_table(self) -> list[float]:
        """:meth:`base_factor` for every step until it stays 0 (empty for ``"constant"``).

        The tensor rule and the optax port look these values up, with the index clamped
        to the last one, so that all three implementations apply the same bits.
        """
        if self.base_schedule == "constant":
            return []
        return [self.base_factor(s) for s in range(self.warmup + self._span + 1)]

    def bounds(self, base_lrs: Sequence[float]) -> tuple[list[float], list[float]]:
        """The lower and upper LR bound of every group, resolved against its base LR."""
        n = len(base_lrs)
        lows = _per_group(self.min_lr, n, "min_lr")
        if lows is None:
            ratio = self.min_lr_ratio
            lows = [0.0 if ratio is None else b * ratio for b in base_lrs]
        highs = _per_group(self.max_lr, n, "max_lr")
        if highs is None:
            ratio = self.max_lr_ratio
            highs = [math.inf if ratio is None else b * ratio for b in base_lrs]
        for i, (lo, hi, b) in enumerate(zip(lows, highs, base_lrs)):
            if lo > hi:
                raise ValueError(f"group {i}: min_lr {lo!r} is above max_lr {hi!r}")
            if self.check_bounds and not lo <= b <= hi:
                raise ValueError(
                    f"group {i}: initial lr {b!r} is outside its bounds [{lo!r}, {hi!r}]"
                )
        return lows, highs

    def to_dict(self) -> dict[str, Any]:
        """Plain values only, so that a checkpoint loads with ``weights_only=True``."""
        out = asdict(self)
        for name in ("min_lr", "max_lr"):
            if isinstance(out[name], tuple):
                out[name] = list(out[name])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GreedyConfig:
        """The config of :meth:`to_dict`, also one saved by an older version: a key it
        lacks is what that version ran (``ABSENT_MEANS``), or else the default."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown GreedyConfig keys: {sorted(unknown)}")
        return cls(**{**ABSENT_MEANS, **data})


def cosine_mode(total_steps: int) -> dict[str, Any]:
    """The knobs of the opt-in cosine mode as it was measured: cosine's decay over
    ``total_steps`` with the rule's moves on top, without the held-out rule, and with the
    rule's patience grown with the budget (``max(10, total_steps // 30)``: as many
    possible moves per run as the default patience on the 300-step runs it was first
    measured on; rounds 8-12 of the defaults study, the rule guide).

    For any implementation that takes the config's keywords, other knobs added or
    overridden after it::

        GreedyLR(optimizer, **cosine_mode(1000))
        GreedyLR(optimizer, **{**cosine_mode(1000), "warmup": 100})
        greedylr.integrations.optax.greedy_lr(3e-4, **cosine_mode(1000))

    Raises:
        ValueError: for a budget that is not a positive integer.
    """
    total_steps = _plain(total_steps)  # a NumPy or 0-d tensor count, as GreedyConfig takes it
    _check(_is_int(total_steps) and total_steps >= 1,
           f"total_steps must be an integer >= 1, got {total_steps!r}")
    return {"total_steps": total_steps, "base_schedule": "cosine", "eval_patience": None,
            "patience": max(10, total_steps // 30)}

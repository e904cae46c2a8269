"""The GreedyLR rule: configuration, state and one update. Standard library only.

An observation is a loss value; the update returns the new learning rate of every
parameter group and the events that explain it. Everything else in the package
(the torch scheduler, the device-resident variant, the optax port, the studies)
is an adapter over this file, and the tests check each of them against it.

The rule, once warmup is over and no hold period is running::

    improved  = smoothed loss better than the reference (best since the last decrease,
                best so far, or previous: see ``compare``)
    good, bad = consecutive improving / non-improving observations
    good > increase_patience  ->  lr = min(lr / factor, max_lr), hold for hold_after_increase
    bad  > patience           ->  lr = max(lr * factor, min_lr), hold for cooldown

Patience follows torch's ``ReduceLROnPlateau`` convention: the LR changes on the
observation that makes the streak *exceed* the patience, so ``patience=10`` acts on
the 11th consecutive observation (Keras acts on the 10th, optax's
``reduce_on_plateau`` on the 10th as well).

The knobs of 0.2, each off unless ``results/defaults/DECISION.md`` made it a default:

* ``total_steps`` with ``anneal_fraction``: the last ``anneal_fraction`` of a known
  budget anneals from wherever the rule stands to its lower bound (``anneal_shape``
  1-sqrt, linear or cosine), an ``anneal`` event at its start; without a budget
  nothing changes: the rule stays anytime;
* ``noise_threshold``: "better" must beat the reference by that many standard errors
  of the smoothed loss (measured from the loss's own scatter), so that progress drowned
  in noise counts as none and the LR comes down, with no step count;
* ``payoff_patience``: an increase must pay off: if, that many observations later, the
  smoothed loss is worse than when it was made, it is undone (an ``undo`` event) and
  the next increase needs a longer improving streak;
* ``eval_patience`` with :func:`observe_eval`: a held-out value worse than the best so
  far blocks increases until one is better, and lowers the LR by ``eval_factor`` (an
  ``eval_decrease`` event): the overfitting a training loss cannot show.

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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

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

EventKind = Literal[
    "increase", "decrease", "clipped", "hold", "warmup_end", "reset", "nonfinite",
    "anneal", "undo", "eval_decrease",
]
Bound = float | Sequence[float] | None

#: One bit per event kind: how the tensor rule, the optax port and the trace's event
#: column encode "what this observation did" without building Event objects.
EVENT_BITS: dict[str, int] = {
    "increase": 1,
    "decrease": 2,
    "clipped": 4,
    "hold": 8,
    "warmup_end": 16,
    "reset": 32,
    "nonfinite": 64,
    "anneal": 128,
    "undo": 256,
    "eval_decrease": 512,
}

#: The 0.2 knobs switched off: the 0.1 rule (a checkpoint of 0.1 ran with these).
KNOBS_OFF: dict[str, Any] = {
    "total_steps": None,
    "anneal_fraction": 0.0,
    "noise_threshold": 0.0,
    "payoff_patience": None,
    "eval_patience": None,
}

#: The final cooldown's shapes: the multiplier of ``lr_at_start - floor`` at progress p.
ANNEAL_SHAPES = ("linear", "cosine", "1-sqrt")


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
        threshold_mode: ``"rel"``: better than ``ref * (1 - threshold)`` (min mode);
            ``"abs"``: better than ``ref - threshold``.
        mode: ``"min"`` for a loss, ``"max"`` for a reward or an accuracy.
        smoothing: ``"ema"`` (default: exponential moving average of span ``window``,
            bias-corrected, so the first values are not pulled towards 0), ``"window"``
            (mean of the last ``window`` values, O(1) per step; transformers' and the
            paper's smoothing) or ``"none"``. The EMA won the defaults study
            (``results/defaults/DECISION.md``): it weighs the recent steps most and so
            reacts sooner than a window mean of the same span.
        window: the EMA span, or the window of the window mean, in observations.
        warmup: steps of a linear LR ramp from ``warmup_start_factor * base_lr`` to the
            base LR. Observations during the ramp feed the smoother only.
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
            the cooldown), ``"raise"`` raises ``FloatingPointError``.
        check_bounds: raise if a base LR lies outside its bounds.
        total_steps: the run's length in observations, when known (the HF Trainer's
            ``max_steps``, Lightning's ``estimated_stepping_batches``); only the final
            cooldown uses it. ``None``: unknown, the rule is anytime.
        anneal_fraction: the final fraction of ``total_steps`` that anneals, in [0, 1]
            (0: never). The cooldown starts at observation
            ``total_steps - int(anneal_fraction * total_steps)``; from there the rule
            stops deciding and the LR goes from where it stands to its lower bound.
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
        eval_mode: direction of the held-out value given to :func:`observe_eval`.
        eval_factor: what a worsening held-out value multiplies the LR by, in (0, 1).
        eval_patience: worsening held-out values tolerated before that decrease
            (increases are blocked from the first one until the held-out value improves).
            ``None``: held-out values are ignored (0.1 behaviour). 0 (default) and the
            20% cooldown won the 0.2 defaults study (``results/defaults/DECISION.md``).
    """

    factor: float = 0.95
    patience: int = 10
    increase_patience: int | None = None
    compare: Literal["best", "recent_best", "previous"] = "recent_best"
    threshold: float = 0.0
    threshold_mode: Literal["rel", "abs"] = "rel"
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
    eval_factor: float = 0.5
    eval_patience: int | None = 0

    def __post_init__(self) -> None:
        def check(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        for f in fields(self):
            value = getattr(self, f.name)
            plain = _plain(value)
            if plain is not value:
                object.__setattr__(self, f.name, plain)

        check(
            isinstance(self.factor, (int, float)) and 0.0 < self.factor < 1.0,
            f"factor must be in (0, 1), got {self.factor!r}",
        )
        for name in ("patience", "window", "warmup", "cooldown", "hold_after_increase"):
            value = getattr(self, name)
            check(is_int(value) and value >= 0, f"{name} must be an int >= 0, got {value!r}")
        check(self.window >= 1, f"window must be an int >= 1, got {self.window!r}")
        if self.increase_patience is not None:
            check(
                is_int(self.increase_patience) and self.increase_patience >= 0,
                f"increase_patience must be an int >= 0 or None, got {self.increase_patience!r}",
            )
        if self.reset_patience is not None:
            check(
                is_int(self.reset_patience) and self.reset_patience >= 1,
                f"reset_patience must be an int >= 1 or None, got {self.reset_patience!r}",
            )
        for name, minimum in (("total_steps", 1), ("payoff_patience", 1), ("eval_patience", 0)):
            value = getattr(self, name)
            check(
                value is None or (is_int(value) and value >= minimum),
                f"{name} must be an int >= {minimum} or None, got {value!r}",
            )
        check(
            isinstance(self.anneal_fraction, (int, float)) and 0.0 <= self.anneal_fraction <= 1.0,
            f"anneal_fraction must be in [0, 1], got {self.anneal_fraction!r}",
        )
        check(
            isinstance(self.noise_threshold, (int, float)) and 0.0 <= self.noise_threshold
            < math.inf,
            f"noise_threshold must be finite and >= 0, got {self.noise_threshold!r}",
        )
        check(
            isinstance(self.eval_factor, (int, float)) and 0.0 < self.eval_factor < 1.0,
            f"eval_factor must be in (0, 1), got {self.eval_factor!r}",
        )
        for name, allowed in (
            ("anneal_shape", ANNEAL_SHAPES),
            ("eval_mode", ("min", "max")),
            ("compare", ("best", "recent_best", "previous")),
            ("threshold_mode", ("rel", "abs")),
            ("mode", ("min", "max")),
            ("smoothing", ("window", "ema", "none")),
            ("on_nonfinite", ("skip", "decrease", "raise")),
        ):
            value = getattr(self, name)
            check(value in allowed, f"{name} must be one of {allowed}, got {value!r}")
        check(
            isinstance(self.threshold, (int, float)) and self.threshold >= 0,
            f"threshold must be >= 0, got {self.threshold!r}",
        )
        check(
            self.threshold_mode != "rel" or self.threshold < 1,
            f"threshold must be < 1 with threshold_mode='rel' (a fraction of the reference; "
            f"1 or more makes no loss an improvement), got {self.threshold!r}; "
            "use threshold_mode='abs' for an absolute margin",
        )
        check(
            isinstance(self.eps, (int, float)) and self.eps >= 0,
            f"eps must be >= 0, got {self.eps!r}",
        )
        check(
            0.0 <= self.warmup_start_factor <= 1.0,
            f"warmup_start_factor must be in [0, 1], got {self.warmup_start_factor!r}",
        )
        for name in ("min_lr_ratio", "max_lr_ratio"):
            value = getattr(self, name)
            check(
                value is None or (isinstance(value, (int, float)) and value >= 0),
                f"{name} must be >= 0 or None, got {value!r}",
            )
        for name in ("min_lr", "max_lr"):
            value = getattr(self, name)
            if value is None:
                continue
            values = [value] if isinstance(value, (int, float)) else list(value)
            check(
                all(isinstance(v, (int, float)) and v >= 0 for v in values),
                f"{name} must be >= 0, got {value!r}",
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
            check(
                self.min_lr_ratio <= self.max_lr_ratio,
                f"min_lr_ratio ({self.min_lr_ratio}) is above max_lr_ratio ({self.max_lr_ratio})",
            )

    @property
    def up_patience(self) -> int:
        return self.patience if self.increase_patience is None else self.increase_patience

    @property
    def anneal_steps(self) -> int:
        """Length of the final cooldown in observations (0: none, or no budget)."""
        if self.total_steps is None:
            return 0
        return int(self.anneal_fraction * self.total_steps)

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
        """The config of :meth:`to_dict`; keys added since (0.2's knobs) take their defaults."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown GreedyConfig keys: {sorted(unknown)}")
        return cls(**data)


@dataclass(slots=True)
class Event:
    """One decision worth explaining: what happened, at which step, and why."""

    step: int
    kind: EventKind
    reason: str
    loss: float
    smoothed: float | None
    reference: float | None
    lrs_before: tuple[float, ...]
    lrs_after: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuleState:
        """The state of ``to_dict``; a 0.1 state (without 0.2's fields) loads too."""
        values: dict[str, Any] = {
            k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in data.items()
        }
        return cls(**values)


#: How an event reason names the reference, by ``compare`` mode (shared with the adapters).
COMPARE_NAMES = {
    "best": "best",
    "recent_best": "best since the last decrease",
    "previous": "previous",
}


def _initial_reference(config: GreedyConfig) -> float:
    return math.inf if config.mode == "min" else -math.inf


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
    state.reference = _initial_reference(config)
    if config.warmup > 0:
        state.lrs = _ramp_lrs(config, state, 0)
    return state


def add_group(config: GreedyConfig, state: RuleState, base_lr: float) -> None:
    """Add one parameter group to ``state`` in place (``optimizer.add_param_group``).

    The group is scheduled from its own LR: its bounds are resolved against ``base_lr``
    (``min_lr_ratio``/``max_lr_ratio``), and during the warmup ramp it starts at the
    ramp's fraction of ``base_lr``. The statistics are shared by every group.

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
    state.lrs.append(_ramp_lrs(config, state, state.step)[-1] if in_ramp else b)


def _smooth(config: GreedyConfig, state: RuleState, value: float) -> float:
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
    if config.smoothing == "ema":
        beta = 1.0 - 2.0 / (config.window + 1)
        state.ema = beta * state.ema + (1.0 - beta) * value
        state.ema_count += 1
        return state.ema / (1.0 - beta**state.ema_count)
    return value


def _is_better(config: GreedyConfig, value: float, reference: float) -> bool:
    t = config.threshold
    if config.mode == "min":
        return value < (reference * (1.0 - t) if config.threshold_mode == "rel" else reference - t)
    return value > (reference * (1.0 + t) if config.threshold_mode == "rel" else reference + t)


def _fmt(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.4g}" for v in values)


def _decrease(config: GreedyConfig, state: RuleState) -> list[int]:
    changed = []
    for i, old in enumerate(state.lrs):
        new = max(old * config.factor, state.min_lrs[i])
        if old - new > config.eps:
            state.lrs[i] = new
            changed.append(i)
    return changed


def _increase(config: GreedyConfig, state: RuleState) -> list[int]:
    changed = []
    for i, old in enumerate(state.lrs):
        new = min(old / config.factor, state.max_lrs[i])
        if new - old > config.eps:
            state.lrs[i] = new
            changed.append(i)
    return changed


def _reset(config: GreedyConfig, state: RuleState) -> None:
    state.lrs = list(state.base_lrs)
    state.reference = _initial_reference(config)
    state.num_good = state.num_bad = state.hold = state.floor_hits = 0
    state.window_values, state.window_pos, state.window_sum = [], 0, 0.0
    state.ema, state.ema_count = 0.0, 0
    state.noise_var, state.noise_count, state.payoff_left = 0.0, 0, 0


def _noise_margin(config: GreedyConfig, state: RuleState) -> float:
    """``noise_threshold`` standard errors of the smoothed loss (0 when off)."""
    n = 1 if config.smoothing == "none" else config.window
    return config.noise_threshold * math.sqrt(state.noise_var / n)


def _track_noise(config: GreedyConfig, state: RuleState, value: float) -> None:
    """The EMA of the squared one-step prediction error, started at its first value."""
    if config.noise_threshold == 0.0 or state.smoothed is None:
        return
    error = value - state.smoothed
    square = error * error
    if state.noise_count == 0:
        state.noise_var = square
    else:
        beta = 1.0 - 2.0 / (config.window + 1)
        state.noise_var = beta * state.noise_var + (1.0 - beta) * square
    state.noise_count += 1


def _effective_up_patience(config: GreedyConfig, state: RuleState) -> int:
    return (config.up_patience + 1) * (state.penalty + 1) - 1


def _change(
    config: GreedyConfig,
    state: RuleState,
    direction: Literal["increase", "decrease"],
    why: str,
    loss: float,
    smoothed: float | None,
    reference: float | None,
    kind: Literal["increase", "decrease", "undo"] | None = None,
) -> list[Event]:
    """Apply one increase or decrease with its hold, reset check and events.

    ``kind="undo"`` is a decrease that takes back an increase: its own event kind, and
    it does not count towards the reset.
    """
    before = tuple(state.lrs)
    step = state.step
    kind = kind or direction
    if direction == "decrease":
        changed = _decrease(config, state)
        hold, hold_name = config.cooldown, "cooldown"
        bound, bounds = "lower", state.min_lrs
    else:
        changed = _increase(config, state)
        hold, hold_name = config.hold_after_increase, "hold after increase"
        bound, bounds = "upper", state.max_lrs
        state.floor_hits = 0
    after = tuple(state.lrs)
    if changed:
        at_bound = [i for i in changed if state.lrs[i] == bounds[i]]
        clip = f"; group(s) {at_bound} reached the {bound} bound" if at_bound else ""
        events = [
            Event(step, kind, f"{kind} at step {step}: {why}; "
                  f"lr {_fmt(before)} -> {_fmt(after)}{clip}",
                  loss, smoothed, reference, before, after)
        ]
        if direction == "increase" and config.payoff_patience is not None:
            assert smoothed is not None  # increases come from comparisons
            state.payoff_left, state.payoff_ref = config.payoff_patience, smoothed
    else:
        events = [
            Event(step, "clipped", f"{kind} blocked at step {step}: {why}, but every "
                  f"group is at its {bound} bound ({_fmt(bounds)})",
                  loss, smoothed, reference, before, after)
        ]
    if kind == "decrease" and config.reset_patience is not None:
        if all(lr <= lo for lr, lo in zip(state.lrs, state.min_lrs)):
            state.floor_hits += 1
            if state.floor_hits >= config.reset_patience:
                _reset(config, state)
                events.append(
                    Event(step, "reset", f"reset at step {step}: {config.reset_patience} "
                          f"decrease(s) found every group at its lower bound; lr back to "
                          f"{_fmt(state.lrs)}, statistics cleared",
                          loss, smoothed, reference, after, tuple(state.lrs))
                )
    # armed after a reset too, as transformers does
    state.hold = hold
    if hold:
        events.append(
            Event(step, "hold", f"{hold_name}: the next {hold} observations are not counted",
                  loss, smoothed, reference, tuple(state.lrs), tuple(state.lrs))
        )
    return events


def _worse(mode: str, value: float, reference: float) -> bool:
    return value > reference if mode == "min" else value < reference


def _anneal(
    config: GreedyConfig, state: RuleState, loss: float, smoothed: float | None
) -> list[Event]:
    """One observation of the final cooldown: the LR follows the shape, nothing else."""
    start = config.anneal_start
    assert start is not None
    step = state.step
    events = []
    if not state.anneal_from:
        state.anneal_from = list(state.lrs)
        lrs = tuple(state.lrs)
        events.append(Event(
            step, "anneal", f"final cooldown from step {step}: the last "
            f"{config.anneal_steps} of {config.total_steps} steps anneal ({config.anneal_shape}) "
            f"from lr {_fmt(lrs)} towards the lower bound {_fmt(state.min_lrs)}",
            loss, smoothed, None, lrs, lrs))
    k = min(step - start, config.anneal_steps)
    shape = _anneal_shape(config.anneal_shape, k / config.anneal_steps)
    state.lrs = [lo + (a - lo) * shape for a, lo in zip(state.anneal_from, state.min_lrs)]
    return events


def update(config: GreedyConfig, state: RuleState, loss: float) -> Decision:
    """Observe one loss value; update ``state`` in place; return the new LRs and events.

    Args:
        config: the rule's configuration.
        state: the state from :func:`init`, or from earlier updates.
        loss: the observed value (a Python number).

    Returns:
        The LRs to apply from now on, the smoothed value used, and the events.

    Raises:
        FloatingPointError: for a non-finite loss when ``on_nonfinite="raise"``.
    """
    state.step += 1
    step = state.step
    # the property only with a budget: update runs every step, and without one it is None
    start = None if config.total_steps is None else config.anneal_start
    annealing = start is not None and step >= start and step > config.warmup
    if not math.isfinite(loss):
        if config.on_nonfinite == "raise":
            raise FloatingPointError(f"non-finite loss {loss!r} at step {step}")
        lrs = tuple(state.lrs)
        skipped = [Event(step, "nonfinite", f"non-finite loss {loss!r} at step {step}: "
                         "not fed to the statistics", loss, state.smoothed, None, lrs, lrs)]
        in_warmup = step <= config.warmup
        if in_warmup:
            state.lrs = _ramp_lrs(config, state, step)
        elif annealing:
            skipped += _anneal(config, state, loss, state.smoothed)
        elif config.on_nonfinite == "decrease":
            state.num_good = state.num_bad = 0
            skipped += _change(config, state, "decrease", "non-finite loss",
                               loss, state.smoothed, None)
        return Decision(tuple(state.lrs), state.smoothed, tuple(skipped))

    if config.noise_threshold:  # tested here: a call per step costs more than the test
        _track_noise(config, state, float(loss))
    smoothed = _smooth(config, state, float(loss))
    state.smoothed = smoothed

    if step <= config.warmup:
        state.lrs = _ramp_lrs(config, state, step)
        if step < config.warmup:
            return Decision(tuple(state.lrs), smoothed)
        lrs = tuple(state.lrs)
        return Decision(lrs, smoothed, (Event(
            step, "warmup_end", f"warmup ramp of {config.warmup} steps ended at step {step}; "
            f"lr {_fmt(lrs)}", loss, smoothed, None, lrs, lrs),))

    if annealing:
        annealed = _anneal(config, state, loss, smoothed)  # before reading state.lrs
        return Decision(tuple(state.lrs), smoothed, tuple(annealed))

    if state.payoff_left > 0:
        state.payoff_left -= 1
        if state.payoff_left == 0:
            if _worse(config.mode, smoothed, state.payoff_ref):
                state.penalty += 1
                state.num_good = state.num_bad = 0
                if config.compare == "recent_best":
                    state.reference = smoothed
                why = (f"smoothed loss {smoothed:.4g} is worse than {state.payoff_ref:.4g} "
                       f"at the increase {config.payoff_patience} steps ago; the next "
                       f"increase needs {_effective_up_patience(config, state) + 1} "
                       "improving steps")
                undone = _change(config, state, "decrease", why, loss, smoothed,
                                 state.payoff_ref, kind="undo")
                return Decision(tuple(state.lrs), smoothed, tuple(undone))
            state.penalty = max(state.penalty - 1, 0)

    if state.hold > 0:
        state.hold -= 1
        state.num_good = state.num_bad = 0
        return Decision(tuple(state.lrs), smoothed)

    reference = state.reference
    if config.noise_threshold:
        # better by more than the margin; a margin >= 0 only makes "better" harder
        margin = _noise_margin(config, state)
        shifted = smoothed + margin if config.mode == "min" else smoothed - margin
        better = _is_better(config, shifted, reference)
    else:
        better = _is_better(config, smoothed, reference)
    if better or config.compare == "previous":
        state.reference = smoothed
    if better:
        state.num_good += 1
        state.num_bad = 0
    else:
        state.num_bad += 1
        state.num_good = 0

    events: list[Event] = []
    versus = COMPARE_NAMES[config.compare]
    up_patience = _effective_up_patience(config, state)
    if state.num_good > up_patience and state.eval_block:
        state.num_good = 0  # the held-out metric got worse: no increase until it recovers
    elif state.num_good > up_patience:
        # the streak may exceed up_patience + 1 when a paid-off increase lowered it
        why = (f"{up_patience + 1} improving steps > patience {up_patience}; "
               f"smoothed loss {smoothed:.4g} vs {versus} {reference:.4g}")
        state.num_good = 0
        events = _change(config, state, "increase", why, loss, smoothed, reference)
    elif state.num_bad > config.patience:
        why = (f"{state.num_bad} non-improving steps > patience {config.patience}; "
               f"smoothed loss {smoothed:.4g} vs {versus} {reference:.4g}")
        state.num_bad = 0
        if config.compare == "recent_best":
            # a new baseline (unless a reset clears it): "better" now means better than now
            state.reference = smoothed
        events = _change(config, state, "decrease", why, loss, smoothed, reference)
    return Decision(tuple(state.lrs), smoothed, tuple(events))


def observe_eval(config: GreedyConfig, state: RuleState, value: float) -> Decision:
    """Observe a held-out value (after an evaluation); update ``state`` in place.

    A value better than the best so far (by ``eval_mode``) clears the block on
    increases. A worse one blocks increases until the held-out value improves again;
    after more than ``eval_patience`` worse values in a row it also multiplies every
    LR by ``eval_factor`` (not below the lower bound), the early-stopping signal a
    rule fed only the training loss cannot see. Ignored with ``eval_patience=None``,
    during the final cooldown and for a non-finite value. Does not advance ``state.step``.

    Args:
        config: the rule's configuration.
        state: the rule's state.
        value: the held-out metric (a Python number).

    Returns:
        The LRs to apply from now on and the events (an ``eval_decrease`` or a
        ``clipped`` one when the LR came down, or tried to).
    """
    lrs = tuple(state.lrs)
    if config.eval_patience is None or not math.isfinite(value) or state.anneal_from:
        return Decision(lrs, state.smoothed)
    best = state.eval_best
    if best is None or _worse(config.eval_mode, best, value):
        state.eval_best, state.eval_bad, state.eval_block = value, 0, False
        return Decision(lrs, state.smoothed)
    state.eval_bad += 1
    state.eval_block = True
    if state.eval_bad <= config.eval_patience:
        return Decision(lrs, state.smoothed)
    state.eval_bad = 0
    state.num_good = state.num_bad = 0
    if config.compare == "recent_best" and state.smoothed is not None:
        state.reference = state.smoothed
    changed = []
    for i, old in enumerate(state.lrs):
        new = max(old * config.eval_factor, state.min_lrs[i])
        if old - new > config.eps:
            state.lrs[i] = new
            changed.append(i)
    after = tuple(state.lrs)
    step = state.step
    why = (f"held-out value {value:.4g} is not better than the best {best:.4g} "
           f"({config.eval_patience + 1} time(s) in a row)")
    if changed:
        at_bound = [i for i in changed if state.lrs[i] == state.min_lrs[i]]
        clip = f"; group(s) {at_bound} reached the lower bound" if at_bound else ""
        event = Event(step, "eval_decrease", f"eval_decrease at step {step}: {why}; lr "
                      f"{_fmt(lrs)} -> {_fmt(after)}{clip}", value, state.smoothed, best,
                      lrs, after)
    else:
        event = Event(step, "clipped", f"eval_decrease blocked at step {step}: {why}, but "
                      f"every group is at its lower bound ({_fmt(state.min_lrs)})",
                      value, state.smoothed, best, lrs, after)
    return Decision(after, state.smoothed, (event,))

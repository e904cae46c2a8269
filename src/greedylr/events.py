"""What the rule's decisions mean: the event kinds, their bits, and their wording.

Three implementations decide (:mod:`greedylr.rule` on Python floats,
:mod:`greedylr.tensor_rule` in torch, ``greedylr.integrations.optax`` in JAX); the two
twins cannot build strings on a device, so every decision is first a code of
:class:`EventFlag` bits and a few numbers, and :func:`describe` turns those into
:class:`Event` objects with their reasons. The reference rule goes through the same
function, so a new kind or a reworded reason is one edit, here. Standard library only.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from greedylr.config import SPIKE_CUT

if TYPE_CHECKING:
    from greedylr.rule import GreedyConfig

__all__ = [
    "ANNEAL",
    "BLOWUP",
    "CLIPPED",
    "COMPARE_NAMES",
    "DECREASE",
    "EVAL_CLIPPED",
    "EVAL_DECREASE",
    "EVENT_BITS",
    "HOLD",
    "INCREASE",
    "NONFINITE",
    "RESET",
    "SPIKE",
    "STALLED",
    "UNDO",
    "WARMUP_END",
    "Event",
    "EventFlag",
    "EventKind",
    "describe",
    "format_lrs",
    "kinds_of",
    "tag_changes",
]

EventKind = Literal[
    "increase", "decrease", "clipped", "hold", "warmup_end", "reset", "nonfinite",
    "anneal", "undo", "eval_decrease",
]


class EventFlag(enum.IntFlag):
    """One bit per event kind, ORed into the code of one observation.

    The values are those stored in traces and returned by the twins: never renumber.
    In a decision's code ``INCREASE``, ``DECREASE``, ``UNDO`` and ``EVAL_DECREASE`` say
    which change was attempted and ``CLIPPED`` with one of them that it changed no
    group; a trace stores the bits of the kinds of its events, a blocked change as
    ``CLIPPED`` alone. :func:`kinds_of` reads both.
    """

    INCREASE = 1
    DECREASE = 2
    CLIPPED = 4
    HOLD = 8
    WARMUP_END = 16
    RESET = 32
    NONFINITE = 64
    ANNEAL = 128
    UNDO = 256
    EVAL_DECREASE = 512

    @property
    def kind(self) -> EventKind:
        """The ``Event.kind`` this bit stands for (``"warmup_end"`` for WARMUP_END)."""
        return cast(EventKind, str(self.name).lower())


# The flags as plain ints, for the code that ORs and tests them on every step: an
# operation on an IntFlag member builds a new member, several times slower.
INCREASE = EventFlag.INCREASE.value
DECREASE = EventFlag.DECREASE.value
CLIPPED = EventFlag.CLIPPED.value
HOLD = EventFlag.HOLD.value
WARMUP_END = EventFlag.WARMUP_END.value
RESET = EventFlag.RESET.value
NONFINITE = EventFlag.NONFINITE.value
ANNEAL = EventFlag.ANNEAL.value
UNDO = EventFlag.UNDO.value
EVAL_DECREASE = EventFlag.EVAL_DECREASE.value

#: Not a kind: a modifier of a ``DECREASE`` (or its ``CLIPPED``) or an ``ANNEAL``, set
#: where the blow-up guard (``GreedyConfig.blowup_ratio``) made it: the decrease squared
#: the factor, the cooldown ends at 0. Only the reasons read it.
BLOWUP = 1024

#: The spike guard's cut (``GreedyConfig.spike_ratio``): every LR times ``SPIKE_CUT`` at
#: once, after the step's own decision. Not a kind of its own but a ``decrease`` event of
#: its own, the step's last: a step may hold two decisions (an increase and a spike cut,
#: say), each reported with its own LRs. On a step with it, the decision's
#: ``lrs_changed`` are the LRs just before the cut (see :func:`describe`).
SPIKE = 2048

#: Not a kind either: a modifier of an ``ANNEAL``, set where the final cooldown started
#: while the held-out rule blocked increases (``GreedyConfig.stalled_anneals_to_zero``):
#: it ends at 0. Only the reasons read it.
STALLED = 4096

#: Not a kind either: a held-out decrease that no group could take (its event is
#: ``clipped``), in a code that also holds an update's decision: the optax port's
#: ``GreedyLRState.events``, where ``CLIPPED`` is then the update's. A held-out decision
#: on its own (:func:`greedylr.rule.observe_eval`, the tensor rule's) is
#: ``EVAL_DECREASE | CLIPPED``.
EVAL_CLIPPED = 8192

#: One bit per event kind, by kind: how the tensor rule, the optax port and the trace's
#: event column encode "what this observation did" without building Event objects.
EVENT_BITS: dict[str, int] = {flag.kind: int(flag) for flag in EventFlag}

#: How an event reason names the reference, by ``compare`` mode.
COMPARE_NAMES = {
    "best": "best",
    "recent_best": "best since the last decrease",
    "previous": "previous",
}

_CHANGES = INCREASE | DECREASE | UNDO


class Event:
    """One decision worth explaining: what happened, at which step, and why.

    The rule makes an event at every LR change, often one step in ten: its :attr:`reason`
    is worded when first read, not when the event is made (the wording costs more than
    a whole quiet step). Equality, ``repr``, :meth:`to_dict`, copies and pickles see the
    worded reason.

    Attributes:
        step: the rule's step number.
        kind: what happened.
        loss: the observed loss (the held-out value for ``eval_decrease``).
        smoothed: the smoothed loss, or None.
        reference: the value the smoothed loss was compared with, or None.
        lrs_before: the LRs before the event.
        lrs_after: the LRs after it.
    """

    step: int
    kind: EventKind
    loss: float
    smoothed: float | None
    reference: float | None
    lrs_before: tuple[float, ...]
    lrs_after: tuple[float, ...]

    __slots__ = ("_reason", "kind", "loss", "lrs_after", "lrs_before", "reference", "smoothed",
                 "step")
    # the fields, in the constructor's order (to_dict, repr, pattern matching)
    __match_args__ = ("step", "kind", "reason", "loss", "smoothed", "reference", "lrs_before",
                      "lrs_after")

    def __init__(self, step: int, kind: EventKind, reason: str, loss: float,
                 smoothed: float | None, reference: float | None,
                 lrs_before: tuple[float, ...], lrs_after: tuple[float, ...]) -> None:
        self.step = step
        self.kind = kind
        self._reason: str | Callable[[], str] = reason
        self.loss = loss
        self.smoothed = smoothed
        self.reference = reference
        self.lrs_before = lrs_before
        self.lrs_after = lrs_after

    @classmethod
    def _worded_later(cls, step: int, kind: EventKind, wording: Callable[[], str], loss: float,
                      smoothed: float | None, reference: float | None,
                      lrs_before: tuple[float, ...], lrs_after: tuple[float, ...]) -> Event:
        """An event whose reason is ``wording()``, called when the reason is first read."""
        return cls(step, kind, wording, loss, smoothed, reference,  # type: ignore[arg-type]
                   lrs_before, lrs_after)

    @property
    def reason(self) -> str:
        """Why: the numbers the rule compared and what it did, in one sentence."""
        reason = self._reason
        if not isinstance(reason, str):
            reason = self._reason = reason()
        return reason

    def _values(self) -> tuple[Any, ...]:
        return (self.step, self.kind, self.reason, self.loss, self.smoothed, self.reference,
                self.lrs_before, self.lrs_after)

    def to_dict(self) -> dict[str, Any]:
        """The fields by name, the reason worded: what a trace file stores."""
        return dict(zip(self.__match_args__, self._values(), strict=True))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Event)
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}"
                           for name, value in zip(self.__match_args__, self._values(), strict=True))
        return f"Event({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, self._values()


def format_lrs(values: Sequence[float]) -> str:
    """LRs as the reasons print them: four significant digits, comma separated."""
    return ", ".join(f"{v:.4g}" for v in values)


@functools.cache  # a few dozen codes occur; this runs at every event
def kinds_of(code: int) -> tuple[EventKind, ...]:
    """The kinds of the events that ``code`` stands for, in the order the rule emits them.

    A held-out decrease comes first (``observe_eval`` runs before the next update, and
    the optax port ORs both into one code, a blocked one as :data:`EVAL_CLIPPED`);
    ``CLIPPED`` names the attempted change it blocked: the update's if there is one,
    else the held-out one. A spike cut (:data:`SPIKE`) comes last.

    Examples:
        >>> kinds_of(NONFINITE | DECREASE | HOLD)
        ('nonfinite', 'decrease', 'hold')
        >>> kinds_of(INCREASE | CLIPPED)
        ('clipped',)
        >>> kinds_of(INCREASE | SPIKE)
        ('increase', 'decrease')
    """
    return tuple(kind for kind, _ in _parts(code))


# What an event of a code is, beside its kind: which wording and which LRs it takes.
_Role = Literal["warmup_end", "nonfinite", "anneal", "change", "clipped", "reset", "hold",
                "spike"]


# the events a step may hold before its change and after it (their kinds are their roles)
_BEFORE_CHANGE: tuple[tuple[int, EventKind, _Role], ...] = (
    (WARMUP_END, "warmup_end", "warmup_end"), (NONFINITE, "nonfinite", "nonfinite"),
    (ANNEAL, "anneal", "anneal"))
_AFTER_CHANGE: tuple[tuple[int, EventKind, _Role], ...] = (
    (RESET, "reset", "reset"), (HOLD, "hold", "hold"))


@functools.cache
def _parts(code: int) -> tuple[tuple[EventKind, _Role], ...]:
    """The ``(kind, role)`` of each event of ``code``, in order (:func:`kinds_of`)."""
    parts: list[tuple[EventKind, _Role]] = []
    change = code & _CHANGES
    if code & EVAL_DECREASE:
        parts.append(("clipped", "clipped") if code & CLIPPED and not change
                     else ("eval_decrease", "change"))
    elif code & EVAL_CLIPPED:
        parts.append(("clipped", "clipped"))
    parts += [(kind, role) for flag, kind, role in _BEFORE_CHANGE if code & flag]
    if change or (code & CLIPPED and not code & EVAL_DECREASE):
        parts.append(("clipped", "clipped") if code & CLIPPED else (_change_kind(code), "change"))
    parts += [(kind, role) for flag, kind, role in _AFTER_CHANGE if code & flag]
    if code & SPIKE:
        parts.append(("decrease", "spike"))
    return tuple(parts)


def _change_kind(code: int) -> EventKind:
    if code & INCREASE:
        return "increase"
    return "undo" if code & UNDO else "decrease"


def tag_changes(tags: Sequence[str | None]) -> list[tuple[int, str, str]]:
    """``(index, old, new)`` wherever a logged tag differs from the last one logged.

    The data events of a trace (a new data source, a new curriculum stage), against
    which its stress episodes and plots are read. ``None`` means not logged there.
    """
    changes = []
    last: str | None = None
    for i, tag in enumerate(tags):
        if tag is None:
            continue
        if last is not None and tag != last:
            changes.append((i, last, tag))
        last = tag
    return changes


@dataclass(slots=True)
class _Facts:
    """The numbers of one decision that its reasons quote (``config`` None: not known)."""

    config: GreedyConfig | None
    step: int
    code: int
    loss: float
    smoothed: float | None
    reference: float | None
    before: tuple[float, ...]
    changed: tuple[float, ...]  # after the step's own change, before a reset
    cut_from: tuple[float, ...]  # after the step's own decision, before a spike cut
    after: tuple[float, ...]
    min_lrs: tuple[float, ...] | None
    max_lrs: tuple[float, ...] | None
    patience: int
    up_patience: int  # the streak an increase needs, minus one (penalty included)
    hold: int
    first: float | None  # the first smoothed value (the blow-up and spike guards' yardstick)
    eps: float | None  # the smallest change that counts (None: not known)


def describe(
    config: GreedyConfig | None,
    *,
    step: int,
    code: int,
    loss: float,
    smoothed: float | None,
    reference: float | None,
    lrs_before: Sequence[float],
    lrs_changed: Sequence[float],
    lrs_after: Sequence[float],
    min_lrs: Sequence[float] | None = None,
    max_lrs: Sequence[float] | None = None,
    patience: int | None = None,
    up_patience: int | None = None,
    cooldown: int | None = None,
    hold_after_increase: int | None = None,
    penalty: int = 0,
    first: float | None = None,
    eps: float | None = None,
) -> list[Event]:
    """The events of one observation, reasons included, from its code and numbers.

    Every implementation of the rule calls this, the reference rule included, so that
    the same decision reads the same whoever made it. Without a ``config`` (a trace
    read back with no rule at hand) the reasons leave out what only the config knows.

    Args:
        config: the rule's configuration, or None.
        step: the step number (the state's ``step`` after the update).
        code: the :class:`EventFlag` bits of the observation.
        loss: the observed loss (the held-out value for ``EVAL_DECREASE``).
        smoothed: the smoothed loss after it (None or NaN: none yet).
        reference: the value the smoothed loss was compared with (for an undo, the
            smoothed loss at the increase; for a held-out decrease, the best held-out
            value); ignored for a non-finite loss.
        lrs_before: the LRs before this observation.
        lrs_changed: the LRs after the increase or decrease, before a reset; on a step
            with a spike cut (:data:`SPIKE`), the LRs just before that cut (after the
            step's own change and reset: the change's own result is then read from
            ``lrs_before`` and ``min_lrs``, since a reset follows only a decrease that
            left every group at its lower bound).
        lrs_after: the LRs to apply from now on.
        min_lrs: the lower bounds (needed with a config).
        max_lrs: the upper bounds (needed with a config).
        patience: the run's patience (default: the config's).
        up_patience: the run's increase patience (default: the config's).
        cooldown: the run's cooldown (default: the config's).
        hold_after_increase: the run's hold after an increase (default: the config's).
        penalty: undone increases not yet paid back (the streak an increase needs grows).
        first: the first smoothed value, which a blow-up (``BLOWUP``) and a spike
            (``SPIKE``) are measured against.
        eps: the run's smallest change that counts (default: the config's), which a
            ``clipped`` reason names where it blocked the change.

    Returns:
        The events, in the rule's order; none for a code of 0.
    """
    if not code:
        return []
    if code & INCREASE:
        hold = _knob(config, hold_after_increase, "hold_after_increase")
    else:
        hold = _knob(config, cooldown, "cooldown")
    up = _knob(config, up_patience, "up_patience")
    lows = None if min_lrs is None else tuple(min_lrs)
    changed = cut_from = tuple(lrs_changed)
    after = tuple(lrs_after)
    if not code & SPIKE:
        cut_from = after
    elif code & RESET and lows is not None:
        # the decrease before the reset left every group at its lower bound: those above
        # it moved to it, the others (below it, check_bounds=False) stayed
        changed = tuple(min(lr, lo) for lr, lo in zip(lrs_before, lows, strict=True))
    facts = _Facts(
        config, step, code, loss,
        None if smoothed is None or math.isnan(smoothed) else smoothed,
        None if code & NONFINITE else reference,
        tuple(lrs_before), changed, cut_from, after, lows,
        None if max_lrs is None else tuple(max_lrs),
        _knob(config, patience, "patience"), (up + 1) * (penalty + 1) - 1, hold,
        None if first is None or math.isnan(first) else first,
        eps if eps is not None or config is None else float(config.eps),
    )
    events = []
    for kind, role in _parts(code):
        quotes, before, later = _QUOTED[role]
        events.append(Event._worded_later(
            step, kind, functools.partial(_WORDING[role], facts), loss, facts.smoothed,
            facts.reference if quotes else None, getattr(facts, before), getattr(facts, later)))
    return events


def _knob(config: GreedyConfig | None, value: int | None, name: str) -> int:
    """A per-run knob given to :func:`describe`, else the config's (0 without one)."""
    if value is not None:
        return value
    return 0 if config is None else int(getattr(config, name))


def _warmup_end(f: _Facts) -> str:
    ramp = "" if f.config is None else f" of {f.config.warmup} steps"
    return f"warmup ramp{ramp} ended at step {f.step}; lr {format_lrs(f.after)}"


def _nonfinite(f: _Facts) -> str:
    return f"non-finite loss {f.loss!r} at step {f.step}: not fed to the statistics"


def _anneal(f: _Facts) -> str:
    if f.config is None or f.min_lrs is None:
        span, floor = "the LR anneals", ""
    else:
        c = f.config
        span = f"the last {c.anneal_steps} of {c.total_steps} steps anneal ({c.anneal_shape})"
        floor = f" {format_lrs(f.min_lrs)}"
    end = f"the lower bound{floor}"
    if f.code & BLOWUP:
        end = f"0, not the lower bound: {_blowup(f)}"
    elif f.config is not None and f.config.anneal_to_zero:
        end = f"0, not the lower bound{floor} (anneal_to_zero)"
    elif (f.config is not None and f.config.floor_anneals_to_zero and f.min_lrs is not None
          and all(lr <= lo for lr, lo in zip(f.before, f.min_lrs))):
        end = (f"0, not the lower bound{floor}: every group stands at it (the rule cut the "
               f"initial LR as far as it may)")
    elif f.code & STALLED:
        end = (f"0, not the lower bound{floor}: the held-out rule was blocking increases "
               f"(the last held-out value was worse than the best, or lagged the training "
               f"loss; stalled_anneals_to_zero)")
    return (f"final cooldown from step {f.step}: {span} from lr {format_lrs(f.before)} "
            f"towards {end}")


def _blowup(f: _Facts) -> str:
    """Why the blow-up guard acted: the smoothed loss against its first value."""
    if f.config is None or f.config.blowup_ratio is None or f.smoothed is None \
            or f.first is None:
        return "the smoothed loss is blown up"
    r = f.config.blowup_ratio
    start, back = (f"above {r:.4g}x", "below") if f.config.mode == "min" else \
        (f"below {1 / r:.4g}x", "above")
    return (f"the smoothed loss {f.smoothed:.4g} is {f.smoothed / f.first:.4g}x its first "
            f"value {f.first:.4g}, a blow-up (one starts {start} and lasts until the loss "
            f"is back {back} its first value)")


def _spike(f: _Facts) -> str:
    """Why the spike guard cut: the raw loss against the first value, twice in a row."""
    if f.config is None or f.config.spike_ratio is None or f.first is None \
            or not math.isfinite(f.loss):
        return "the raw loss spiked on a second step in a row: the LR halved at once"
    r = f.config.spike_ratio
    beyond = f"above {r:.4g}x" if f.config.mode == "min" else f"below {1 / r:.4g}x"
    return (f"the raw loss {f.loss:.4g} is {f.loss / f.first:.4g}x its first value "
            f"{f.first:.4g}, {beyond} (spike_ratio) on a second step in a row or more: the "
            f"LR times {SPIKE_CUT:g} at once")


def _why(f: _Facts, kind: str) -> str:
    """Why the change of ``kind`` was decided: the numbers when the config is known."""
    c = f.config
    if f.code & NONFINITE:
        return "non-finite loss"
    if kind == "eval_decrease":
        best = "" if f.reference is None else f" {f.reference:.4g}"
        times = "" if c is None else f" ({(c.eval_patience or 0) + 1} time(s) in a row)"
        if c is not None and c.eval_pace and f.reference is not None and (
                f.loss < f.reference if c.eval_mode == "min" else f.loss > f.reference):
            return (f"held-out value {f.loss:.4g} beats the best {f.reference:.4g} by less "
                    f"than eval_pace {c.eval_pace:g} times the smoothed loss's relative gain "
                    f"since the last held-out value{times}")
        if (c is not None and f.reference is not None and not f.code & CLIPPED
                and c.clearly_worse(f.loss, f.reference)):
            taken = min(a / b for a, b in zip(f.after, f.before) if b > 0)
            return (f"held-out value {f.loss:.4g} is worse than the best {f.reference:.4g} by "
                    f"more than eval_compound_margin {c.eval_compound_margin:g} of it{times}: "
                    f"the LR times {taken:.4g} (cuts on such values compound, each squaring "
                    f"the last one's factor, until a held-out value counts as better)")
        return f"held-out value {f.loss:.4g} is not better than the best{best}{times}"
    if c is None:
        return {"increase": "the smoothed loss kept improving",
                "decrease": "the smoothed loss stopped improving",
                "undo": "the increase did not pay off"}.get(kind, "a change was due")
    versus = f"smoothed loss {f.smoothed:.4g} vs {COMPARE_NAMES[c.compare]} {f.reference:.4g}"
    if kind == "undo":
        return (f"smoothed loss {f.smoothed:.4g} is worse than {f.reference:.4g} "
                f"at the increase {c.payoff_patience} steps ago; the next "
                f"increase needs {f.up_patience + 1} improving steps")
    if kind == "increase":
        return f"{f.up_patience + 1} improving steps > patience {f.up_patience}; {versus}"
    if f.code & BLOWUP:
        return (f"{f.patience + 1} steps > patience {f.patience} in a blow-up: "
                f"{_blowup(f)}; each decrease in it squares the factor of the one before")
    return f"{f.patience + 1} non-improving steps > patience {f.patience}; {versus}"


def _attempt(f: _Facts) -> tuple[str, str, tuple[float, ...] | None]:
    """The change this observation attempted, the bound it runs into, and that bound."""
    if f.code & (EVAL_DECREASE | EVAL_CLIPPED) and not f.code & _CHANGES:
        return "eval_decrease", "lower ", f.min_lrs
    if f.code & INCREASE:
        return "increase", "upper ", f.max_lrs
    if f.code & (DECREASE | UNDO):
        return ("undo" if f.code & UNDO else "decrease"), "lower ", f.min_lrs
    return "change", "", None  # a trace's stored CLIPPED bit alone


def _moved(f: _Facts, kind: str, why: str, before: tuple[float, ...],
           after: tuple[float, ...], bound: str, bounds: tuple[float, ...] | None) -> str:
    at_bound = [] if bounds is None else [
        i for i, (old, new) in enumerate(zip(before, after, strict=True))
        if old != new and new == bounds[i]
    ]
    clip = f"; group(s) {at_bound} reached the {bound}bound" if at_bound else ""
    return (f"{kind} at step {f.step}: {why}; "
            f"lr {format_lrs(before)} -> {format_lrs(after)}{clip}")


def _change(f: _Facts) -> str:
    kind, bound, bounds = _attempt(f)
    return _moved(f, kind, _why(f, kind), f.before, f.changed, bound, bounds)


def _spike_cut(f: _Facts) -> str:
    return _moved(f, "decrease", _spike(f), f.cut_from, f.after, "lower ", f.min_lrs)


def _clipped(f: _Facts) -> str:
    kind, bound, bounds = _attempt(f)
    blocked = f"{kind} blocked at step {f.step}: {_why(f, kind)}, but "
    if bounds is None:  # a stored CLIPPED bit, or no bounds given: the cause is not known
        return (blocked + f"no group moved (lr {format_lrs(f.changed)}): each is at its "
                "bound or would move by no more than eps")
    upper = bound == "upper "
    at = [i for i, (lr, b) in enumerate(zip(f.before, bounds, strict=True))
          if (lr >= b if upper else lr <= b)]
    if len(at) == len(bounds):
        return blocked + f"every group is at its {bound}bound ({format_lrs(bounds)})"
    eps = "eps" if f.eps is None else f"eps {f.eps:g}"
    values = f" (lr {format_lrs(f.before)}; the {bound}bound {format_lrs(bounds)})"
    if not at:
        return blocked + f"no group would move by more than {eps}{values}"
    return (blocked + f"group(s) {at} are at their {bound}bound and the others would move "
            f"by no more than {eps}{values}")


def _reset(f: _Facts) -> str:
    count = "decreases" if f.config is None else f"{f.config.reset_patience} decrease(s)"
    return (f"reset at step {f.step}: {count} found every group at its lower bound; "
            f"lr back to {format_lrs(f.cut_from)}, statistics cleared")


def _hold(f: _Facts) -> str:
    if f.code & INCREASE:
        name = "hold after increase"
    else:
        name = "cooldown" if f.code & (DECREASE | UNDO) else "hold"
    count = "" if f.config is None else f" {f.hold}"
    return f"{name}: the next{count} observations are not counted"


#: Each role's reason (:func:`_parts`), worded from the facts of its decision.
_WORDING: dict[str, Callable[[_Facts], str]] = {
    "warmup_end": _warmup_end,
    "nonfinite": _nonfinite,
    "anneal": _anneal,
    "change": _change,
    "clipped": _clipped,
    "reset": _reset,
    "hold": _hold,
    "spike": _spike_cut,
}

#: Each role's other fields: whether it quotes the reference, and which of the facts'
#: LRs are its ``lrs_before`` and ``lrs_after``: in the order the step made them, the
#: change, the reset, the hold it arms, then the spike cut.
_QUOTED: dict[str, tuple[bool, str, str]] = {
    "warmup_end": (False, "after", "after"),
    "nonfinite": (False, "before", "before"),
    "anneal": (False, "before", "before"),
    "change": (True, "before", "changed"),
    "clipped": (True, "before", "changed"),
    "reset": (True, "changed", "cut_from"),
    "hold": (True, "cut_from", "cut_from"),
    "spike": (True, "cut_from", "after"),
}

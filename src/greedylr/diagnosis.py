"""Stress episodes: :func:`diagnose` turns a trace into loss spikes, contraction streaks,
stagnation at the LR floor, resets and non-finite losses, with their severity, recovery
time and, when a data-source tag was logged, whether the loss moved for data reasons.

A run of a rule with ``mode="max"`` (a metric to maximise: an accuracy, a reward) is read
in its own direction: a "loss spike" is then a drop of the metric, and recovery a return
to at or above its level. A parameter group added during the run reads NaN in its LR
column before it existed: the LR episodes look only at the groups present.

How the episodes are found and how the defaults were calibrated: docs/guides/pulse.md.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from greedylr.events import format_lrs, tag_changes
from greedylr.rule import EVENT_BITS
from greedylr.trace.files import load_trace
from greedylr.trace.recorder import Trace
from greedylr.trace.rows import Rows

__all__ = ["Diagnosis", "Episode", "diagnose"]

_MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


@dataclass
class Episode:
    """One stretch of stress in a run.

    Attributes:
        kind: ``"loss_spike"`` (the raw loss rose well above its recent level; with
            ``mode="max"``, the metric fell well below it),
            ``"contraction"`` (a streak of LR decreases without an increase),
            ``"floor"`` (the LR stuck at its lower bound), ``"reset"`` or ``"nonfinite"``.
        start: first step of the episode.
        end: last step of the episode.
        severity: how bad, in ``severity_unit``: for a loss spike, the peak excess of the
            loss (median of a few steps) over its pre-episode level (with ``mode="max"``,
            the deepest drop of the metric under it) in units of the pre-episode noise
            (robust sigma); for a contraction, the factor the LR was divided by (infinite
            for a cut to 0: None in :meth:`to_dict`); for the floor, steps at the floor;
            for resets and non-finite losses, how many.
        severity_unit: ``"sigma"``, ``"x lr cut"``, ``"steps"`` or ``"count"``.
        recovery_steps: steps from ``start`` until the smoothed loss (in a trace without
            it, the mean of the last ``short`` raw losses) is back at or under its level
            just before the episode (at or above it with ``mode="max"``); None if it never
            is within the trace.
        detail: what happened, in words and numbers.
        cause: ``"data"`` when the start coincides with a change of a logged tag signal
            (the loss moved for data reasons), ``"training"`` when tags were logged and
            none changed near the start, None when no tag was logged.
        notes: further observations (the tag change, other signals' behaviour).
    """

    kind: str
    start: int
    end: int
    severity: float
    severity_unit: str
    recovery_steps: int | None
    detail: str
    cause: str | None = None
    notes: list[str] = field(default_factory=list)

    def covers(self, start: int, end: int) -> bool:
        """Whether the episode's range contains the steps ``start..end``."""
        return self.start <= start and end <= self.end

    def to_dict(self) -> dict[str, Any]:
        """The episode as JSON-ready values; a non-finite severity is None (JSON has no
        NaN or infinity)."""
        return {
            "kind": self.kind, "start": self.start, "end": self.end,
            "severity": _finite_or_none(self.severity), "severity_unit": self.severity_unit,
            "recovery_steps": self.recovery_steps, "detail": self.detail,
            "cause": self.cause, "notes": list(self.notes),
        }


@dataclass
class Diagnosis:
    """The episodes of a run, in start order, and a short plain-language summary."""

    episodes: list[Episode]
    summary: str
    steps: int

    def __iter__(self) -> Iterator[Episode]:
        return iter(self.episodes)

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, index: int) -> Episode:
        return self.episodes[index]

    def __str__(self) -> str:
        lines = [self.summary]
        for e in self.episodes:
            rec = ("not recovered" if e.recovery_steps is None
                   else f"recovered in {e.recovery_steps}")
            lines.append(f"  {e.kind:<11} steps {e.start}-{e.end}  severity "
                         f"{e.severity:.3g} {e.severity_unit}  {rec}: {e.detail}")
            lines.extend(f"      {note}" for note in e.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "steps": self.steps,
                "episodes": [e.to_dict() for e in self.episodes]}


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _rolling(statistic: Callable[..., np.ndarray], x: np.ndarray, width: int) -> np.ndarray:
    """``statistic`` (``np.nanmedian``, ``np.nanmean``) of ``x[t-width+1 .. t]`` (NaN
    ignored; NaN where fewer than one value)."""
    padded = np.concatenate([np.full(width - 1, np.nan), x])
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    with np.errstate(all="ignore"), _quiet_nan_warnings():
        return statistic(windows, axis=1)


class _quiet_nan_warnings:
    """nanmedian warns on all-NaN windows, which are expected at the start of a run."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)


def _baseline(x: np.ndarray, window: int, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robust level and noise of ``x`` over the ``window`` steps before each anchor.

    Computed every ``stride`` steps (a million-step trace costs ``window/stride`` medians
    per step, not ``window``); returns, per step t, the median, the robust sigma (MAD) and
    the count of finite values of ``x[a-window : a]`` with ``a`` the anchor at or before t.
    """
    n = len(x)
    anchors = np.arange(0, n, stride)
    level = np.full(len(anchors), np.nan)
    sigma = np.full(len(anchors), np.nan)
    count = np.zeros(len(anchors), dtype=np.int64)
    padded = np.concatenate([np.full(window, np.nan), x])
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)[anchors]
    with np.errstate(all="ignore"), _quiet_nan_warnings():
        count = np.sum(np.isfinite(windows), axis=1)
        level = np.nanmedian(windows, axis=1)
        sigma = _MAD_TO_SIGMA * np.nanmedian(np.abs(windows - level[:, None]), axis=1)
    which = np.arange(n) // stride
    return level[which], sigma[which], count[which]


def _first_at_or_below(values: np.ndarray, start: int, level: float) -> int | None:
    hits = np.flatnonzero(values[start:] <= level)
    return None if not len(hits) else start + int(hits[0])


def _check_int(name: str, value: Any, low: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def _check_arguments(window: int | None, threshold: float, short: int, min_decreases: int,
                     max_lr_cut: float, max_gap: int | None, min_floor_blocks: int,
                     coincide: int | None) -> None:
    """Raise ValueError for a bad :func:`diagnose` argument, naming it."""
    if window is not None:
        _check_int("window", window, 4)
    _check_int("short", short, 1)
    _check_int("min_decreases", min_decreases, 1)
    _check_int("min_floor_blocks", min_floor_blocks, 1)
    if max_gap is not None:
        _check_int("max_gap", max_gap, 1)
    if coincide is not None:
        _check_int("coincide", coincide, 0)
    if not (isinstance(threshold, (int, float)) and threshold > 0):
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    if not (isinstance(max_lr_cut, (int, float)) and 0 < max_lr_cut <= 1):
        raise ValueError(f"max_lr_cut must be in (0, 1], got {max_lr_cut!r}")


def diagnose(
    trace: Trace | str | os.PathLike[str],
    *,
    window: int | None = None,
    threshold: float = 8.0,
    short: int = 5,
    min_decreases: int = 4,
    max_lr_cut: float = 0.5,
    max_gap: int | None = None,
    min_floor_blocks: int = 2,
    coincide: int | None = None,
) -> Diagnosis:
    """Find the stress episodes of a run, and whether the loss told the truth.

    Loss spikes: the median of the last ``short`` raw losses against the robust level
    (median and MAD) of the ``window`` steps before them, above ``threshold`` sigma; when
    the trace's configuration says ``mode="max"`` (a metric to maximise), below it. LR
    contractions, stagnation at the floor, resets and non-finite losses come from the
    event column. How it decides, and how the defaults were calibrated: docs/guides/pulse.md.

    When the trace holds a tag signal (for example ``trace.log(source="shard-7")``), an
    episode that starts within ``coincide`` steps of a change of that tag is marked
    ``cause="data"``: the loss moved because the data changed. Numeric signals (a gradient
    norm) are summarised for each episode as their peak over their pre-episode median.
    A parameter group added during the run (NaN in its LR column before) counts from
    the step it was added. After a rollback (``load_state_dict`` of an earlier step in
    the same process: the trace then holds the steps after it twice), each continuation
    is diagnosed on its own, after the steps before it that it continues. An episode that
    starts in rows a later continuation shares is reported as that continuation (the run
    that went on) saw it; one that reaches into steps a later rollback went back over says
    so in its notes.

    Args:
        trace: a :class:`Trace` or the path of a saved one.
        window: steps of history for the pre-episode level (default: a tenth of the run,
            within 20..200).
        threshold: sigma above the pre-episode level that opens a loss episode.
        short: steps in the median that must exceed it (one bad batch is not an episode).
        min_decreases: decreases that make a contraction streak.
        max_lr_cut: a streak counts if it leaves the LR at most this fraction of its value.
        max_gap: most steps between two decreases of a streak (default: twice the rule's
            patience + cooldown + 1 when the trace has the configuration, else 25).
        min_floor_blocks: blocked decreases at the lower bound that make a floor episode.
        coincide: most steps between a tag change and an episode's start (default
            ``short``).

    Returns:
        The :class:`Diagnosis`: episodes in start order and a summary.
    """
    if not isinstance(trace, Trace):
        trace = load_trace(trace)
    _check_arguments(window, threshold, short, min_decreases, max_lr_cut, max_gap,
                     min_floor_blocks, coincide)

    rows = trace.rows()
    n = len(rows)
    if n == 0:
        return Diagnosis([], "empty trace: nothing to diagnose", 0)
    config = trace.meta.get("config") or {}
    # a metric to maximise is analysed sign-flipped: worse is then always higher
    maximize = config.get("mode") == "max"
    sign = -1.0 if maximize else 1.0
    if max_gap is None:
        patience = config.get("patience")
        max_gap = 2 * (patience + config.get("cooldown", 0) + 1) if patience is not None else 25
    coincide = short if coincide is None else coincide
    window = window or min(200, max(20, n // 10))

    runs = _continuations(rows.step)
    episodes = []
    # an episode is known by its kind and the row it starts at: a later continuation that
    # holds that row saw the same beginning, and its copy is the one of the run that went on
    later_starts: set[tuple[str, int]] = set()
    for k in reversed(range(len(runs))):
        index = runs[k][0]
        found = _episodes(_take(rows, index), trace.meta, window, threshold, short, sign,
                          min_decreases, max_lr_cut, max_gap, min_floor_blocks, coincide)
        starts = [(e.kind, int(index[np.searchsorted(rows.step[index], e.start)]))
                  for e in found]
        for e, key in zip(found, starts, strict=True):
            if key in later_starts:
                continue
            back = [later for _, later in runs[k + 1:] if later <= e.end]
            if back:
                e.notes.append(f"reaches into steps a rollback went back over: the run went "
                               f"on again from step {min(back) - 1}")
            episodes.append(e)
        later_starts.update(starts)
    episodes.sort(key=lambda e: (e.start, e.end))
    return Diagnosis(episodes, _summary(episodes, n, rows.step, maximize, len(runs) - 1), n)


def _continuations(steps: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """The rows of each continuation of the run, in the order recorded, and its first step.

    A continuation starts where the step falls (a rollback); its rows are those of the run
    it continues before its first step, then its own: the steps never fall along them.
    """
    starts = np.flatnonzero(np.diff(steps) < 0) + 1
    runs = []
    history = np.empty(0, dtype=np.int64)
    for a, b in itertools.pairwise([0, *starts.tolist(), len(steps)]):
        first = int(steps[a])
        history = np.concatenate([history[steps[history] < first], np.arange(a, b)])
        runs.append((history, first))
    return runs


def _take(rows: Rows, index: np.ndarray) -> Rows:
    """The rows at ``index`` (steps that never fall), each with the LRs of the one before it (the
    first: those before the trace's first row)."""
    if len(index) == len(rows):  # every row: a trace without a rollback
        return rows
    lrs = rows.lrs[index]
    return Rows(step=rows.step[index], loss=rows.loss[index], smoothed=rows.smoothed[index],
                lrs=lrs, lrs_before=np.concatenate([rows.lrs_before[:1], lrs[:-1]]),
                code=rows.code[index],
                signals={name: values[index] if isinstance(values, np.ndarray)
                         else [values[i] for i in index.tolist()]
                         for name, values in rows.signals.items()})


def _episodes(rows: Rows, meta: Mapping[str, Any], window: int, threshold: float, short: int,
              sign: float, min_decreases: int, max_lr_cut: float, max_gap: int,
              min_floor_blocks: int, coincide: int) -> list[Episode]:
    """The episodes of rows whose steps never fall (one continuation of the run)."""
    steps = rows.step
    loss = sign * np.where(np.isfinite(rows.loss), rows.loss, np.nan)
    recent = _rolling(np.nanmedian, loss, short)
    # the smoothed loss the rule used; where it has none, the mean of the last ``short``
    # raw losses: their median would not see a jump until it filled half the window, and
    # a lasting jump would read as recovered the step after it began
    smoothed = np.where(np.isfinite(rows.smoothed), sign * rows.smoothed,
                        _rolling(np.nanmean, loss, short))

    episodes = _loss_episodes(steps, loss, recent, smoothed, window, threshold, short, sign)
    episodes += _event_episodes(rows, smoothed, meta, min_decreases, max_lr_cut,
                                max_gap, min_floor_blocks)
    episodes.sort(key=lambda e: (e.start, e.end))
    _share_recovery(episodes)
    # the rule reacts to a change of data up to patience + cooldown steps late
    _attach_signals(episodes, rows, coincide, coincide + max_gap // 2)
    return episodes


def _pre_level(smoothed: np.ndarray, i: int) -> float:
    before = smoothed[max(0, i - 3):i]
    before = before[np.isfinite(before)]
    return float(before[-1]) if len(before) else math.nan


def _recovery(steps: np.ndarray, smoothed: np.ndarray, i: int) -> tuple[int | None, float]:
    level = _pre_level(smoothed, i)
    if math.isnan(level):
        return None, level
    # the smoothed loss often dips at the first bad step only through rounding: look
    # from the step after the start
    hit = _first_at_or_below(smoothed, i + 1, level)
    return (None if hit is None else int(steps[hit] - steps[i])), level


def _loss_episodes(steps: np.ndarray, loss: np.ndarray, recent: np.ndarray,
                   smoothed: np.ndarray, window: int, threshold: float,
                   short: int, sign: float) -> list[Episode]:
    """Loss spikes, on the series as the rule's direction makes it: ``sign`` -1 for a
    metric to maximise (``loss`` and the others come sign-flipped, worse is higher)."""
    n = len(loss)
    stride = max(1, window // 4)
    # the baseline of step t ends where t's short window begins, so they never overlap
    shifted = np.concatenate([np.full(short - 1, np.nan), loss])[:n] if short > 1 else loss
    level, sigma, count = _baseline(shifted, window, stride)
    # a flat loss has a MAD of 0: count a relative change of 1e-3 as one sigma at least
    sigma = np.maximum(sigma, 1e-3 * np.abs(level) + 1e-12)
    with np.errstate(invalid="ignore"):
        z = (recent - level) / sigma
        candidate = (z > threshold) & (count >= window // 2)
    episodes = []
    t = 0
    while t < n:
        hits = np.flatnonzero(candidate[t:])
        if not len(hits):
            break
        t0 = t + int(hits[0])
        base, noise = float(level[t0]), float(sigma[t0])
        low = base + 0.5 * threshold * noise
        # extend: the short median stays above the lower level
        end = t0
        while end + 1 < n and (recent[end + 1] > low or not np.isfinite(recent[end + 1])):
            end += 1
        raw_above = np.flatnonzero(loss[max(0, t0 - short + 1):end + 1] > low)
        first = max(0, t0 - short + 1) + int(raw_above[0]) if len(raw_above) else t0
        last = max(0, t0 - short + 1) + int(raw_above[-1]) if len(raw_above) else end
        peak = float(np.nanmax(recent[t0:end + 1]))
        severity = (peak - base) / noise
        recovery, _ = _recovery(steps, smoothed, first)
        # in the metric's own units and direction
        value, before = sign * peak, sign * base
        ratio = f", {value / before:.3g}x" if before > 0 and value > 0 else ""
        moved = "loss rose" if sign > 0 else "maximised metric fell"
        detail = (f"{moved} to {value:.4g} (median of {short} steps) against {before:.4g} "
                  f"before{ratio}, {severity:.1f} sigma, "
                  f"for {int(steps[last] - steps[first]) + 1} steps")
        episodes.append(Episode("loss_spike", int(steps[first]), int(steps[last]),
                                round(severity, 2), "sigma", recovery, detail))
        t = end + 1
    return episodes


def _event_episodes(rows: Rows, smoothed: np.ndarray, meta: Mapping[str, Any],
                    min_decreases: int, max_lr_cut: float, max_gap: int,
                    min_floor_blocks: int) -> list[Episode]:
    """The episodes read from the event column: contractions, floors, resets, non-finite."""
    return [*_contractions(rows, smoothed, min_decreases, max_lr_cut, max_gap),
            *_floors(rows, smoothed, meta, min_floor_blocks),
            *_resets_and_nonfinite(rows, smoothed, max_gap)]


def _format_group_lrs(values: np.ndarray) -> str:
    """LRs as :func:`format_lrs` prints them, a group not added yet (NaN) said so."""
    return ", ".join(format_lrs([v]) if math.isfinite(v) else "not added yet"
                     for v in values.tolist())


def _contractions(rows: Rows, smoothed: np.ndarray, min_decreases: int,
                  max_lr_cut: float, max_gap: int) -> list[Episode]:
    """Streaks of LR decreases with no increase or reset between them, that cut the LR.

    The cut is that of the mean LR of the groups present at both ends of the streak: a
    group added during it (NaN before) neither hides nor makes a cut.
    """
    steps, code = rows.step, rows.code
    episodes: list[Episode] = []
    dec, inc = EVENT_BITS["decrease"], EVENT_BITS["increase"] | EVENT_BITS["reset"]
    streak: list[int] = []

    def close_streak() -> None:
        if len(streak) < min_decreases:
            return
        i, j = streak[0], streak[-1]
        first, last = np.isfinite(rows.lrs_before[i]), np.isfinite(rows.lrs[j])
        common = first & last
        if not np.any(common):
            return
        before = float(rows.lrs_before[i][common].mean())
        after = float(rows.lrs[j][common].mean())
        if before <= 0 or after / before > max_lr_cut:
            return
        cut = before / after if after > 0 else math.inf
        recovery, _ = _recovery(steps, smoothed, i)
        which = ("" if np.array_equal(first, last)
                 else " (mean of the groups present throughout: one was added during it)")
        detail = (f"{len(streak)} LR decreases without an increase over "
                  f"{int(steps[j] - steps[i]) + 1} steps: lr {before:.4g} -> {after:.4g} "
                  f"(/{cut:.3g}){which}")
        episodes.append(Episode("contraction", int(steps[i]), int(steps[j]), round(cut, 3),
                                "x lr cut", recovery, detail))

    for i in np.flatnonzero(code & (dec | inc)):
        if code[i] & inc:
            close_streak()
            streak = []
        if code[i] & dec:
            if streak and steps[i] - steps[streak[-1]] > max_gap:
                close_streak()
                streak = []
            streak.append(int(i))
    close_streak()
    return episodes


def _floors(rows: Rows, smoothed: np.ndarray, meta: Mapping[str, Any],
            min_floor_blocks: int) -> list[Episode]:
    """Stretches with every group at its lower bound and decreases blocked there (a group
    not added yet, NaN, does not keep the others off the floor)."""
    steps, code, lrs = rows.step, rows.code, rows.lrs
    episodes: list[Episode] = []
    present = np.isfinite(lrs)
    floors = meta.get("min_lrs")
    bounds = floors is not None and len(floors) == lrs.shape[1]
    with np.errstate(invalid="ignore"), _quiet_nan_warnings():
        if bounds:
            low = lrs <= np.asarray(floors, dtype=np.float64) * (1 + 1e-9)
        else:
            # without the bounds: the lowest LR of the run, where a change was blocked
            low = np.isclose(lrs, np.nanmin(lrs, axis=0), rtol=1e-9, atol=0)
    at_floor = np.all(low | ~present, axis=1) & np.any(present, axis=1)
    if not bounds and not np.any(at_floor & ((code & EVENT_BITS["clipped"]) > 0)):
        at_floor[:] = False
    blocked = (code & EVENT_BITS["clipped"]) > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], at_floor.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        blocks = int(np.sum(blocked[a:b]))
        if blocks < min_floor_blocks:
            continue
        length = int(steps[b - 1] - steps[a]) + 1
        recovery, _ = _recovery(steps, smoothed, int(a))
        left = "until the end of the trace" if b == len(steps) else f"until step {steps[b]}"
        episodes.append(Episode("floor", int(steps[a]), int(steps[b - 1]), float(length),
                                "steps", recovery,
                                f"LR at its lower bound ({_format_group_lrs(lrs[a])}) for "
                                f"{length} steps "
                                f"{left}; {blocks} decreases blocked"))
    return episodes


def _resets_and_nonfinite(rows: Rows, smoothed: np.ndarray, max_gap: int) -> list[Episode]:
    """One episode per reset; non-finite losses grouped where they come close together."""
    steps, code, lrs = rows.step, rows.code, rows.lrs
    episodes: list[Episode] = []
    for i in np.flatnonzero(code & EVENT_BITS["reset"]):
        recovery, _ = _recovery(steps, smoothed, int(i))
        episodes.append(Episode("reset", int(steps[i]), int(steps[i]), 1.0, "count", recovery,
                                f"reset at step {steps[i]}: lr "
                                f"{_format_group_lrs(rows.lrs_before[i])} -> "
                                f"{_format_group_lrs(lrs[i])} after the LR was stuck at its "
                                "lower bound"))

    bad = np.flatnonzero(code & EVENT_BITS["nonfinite"])
    if len(bad):
        groups = np.split(bad, np.flatnonzero(np.diff(steps[bad]) > max(1, max_gap // 2)) + 1)
        for g in groups:
            first, last = int(g[0]), int(g[-1])
            values = sorted({repr(float(v)) for v in rows.loss[g]})
            recovery, _ = _recovery(steps, smoothed, first)
            episodes.append(Episode("nonfinite", int(steps[first]), int(steps[last]),
                                    float(len(g)), "count", recovery,
                                    f"{len(g)} non-finite loss(es) ({', '.join(values)}) in "
                                    f"{int(steps[last] - steps[first]) + 1} steps"))
    return episodes


def _share_recovery(episodes: list[Episode]) -> None:
    """An LR episode inside a loss spike recovers when the spike does: measured from its
    own start, its pre-episode level would already be the disturbed one."""
    spikes = [e for e in episodes if e.kind == "loss_spike"]
    for e in episodes:
        if e.kind == "loss_spike":
            continue
        for spike in spikes:
            if spike.start <= e.start <= spike.end:
                e.recovery_steps = (None if spike.recovery_steps is None
                                    else max(0, spike.start + spike.recovery_steps - e.start))
                e.notes.append(f"during the loss spike of steps {spike.start}-{spike.end}")
                break


def _attach_signals(episodes: list[Episode], rows: Rows, coincide: int, lag: int) -> None:
    steps = rows.step
    tags = {k: v for k, v in rows.signals.items() if isinstance(v, list)}
    numbers = {k: v for k, v in rows.signals.items() if isinstance(v, np.ndarray)}
    changes = {name: tag_changes(values) for name, values in tags.items()}
    for e in episodes:
        # a loss spike starts with the data; an LR episode may follow it by the rule's lag
        lead = coincide if e.kind in ("loss_spike", "nonfinite") else lag
        near = [(abs(int(steps[i]) - e.start), name, int(steps[i]), old, new)
                for name, found in changes.items() for i, old, new in found
                if -lead <= int(steps[i]) - e.start <= coincide]
        if near:
            _, name, at, old, new = min(near)
            e.cause = "data"
            e.notes.append(f"coincides with a change of {name} {old!r} -> {new!r} at step {at}: "
                           "the loss moved for data reasons")
        elif tags:
            e.cause = "training"
            e.notes.append(f"no change of {', '.join(tags)} near the start: the stress comes "
                           "from training, not from a change of data")
        i = int(np.searchsorted(steps, e.start))
        j = int(np.searchsorted(steps, e.end, side="right"))
        for name, values in numbers.items():
            before = values[max(0, i - 50):i]
            inside = values[i:j]
            before, inside = before[np.isfinite(before)], inside[np.isfinite(inside)]
            if len(before) and len(inside):
                ref = float(np.median(before))
                peak = float(np.max(inside))
                rel = f" ({peak / ref:.3g}x)" if ref > 0 else ""
                e.notes.append(f"{name} peaked at {peak:.4g} against a median of {ref:.4g} "
                               f"before{rel}")


def _summary(episodes: list[Episode], n: int, steps: np.ndarray, maximize: bool,
             rollbacks: int) -> str:
    span = f"{n} steps ({int(steps[0])}-{int(steps[-1])})"
    if rollbacks:
        span = (f"{n} rows (steps {int(steps.min())}-{int(steps.max())}, {rollbacks} "
                "rollback(s): each continuation diagnosed on its own)")
    if not episodes:
        return f"{span}: no stress episode; the loss and the LR behaved as usual."
    counts: dict[str, int] = {}
    for e in episodes:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    listed = ", ".join(f"{c} {k.replace('_', ' ')}{'s' if c > 1 else ''}"
                       for k, c in counts.items())
    worst = max((e for e in episodes if e.kind == "loss_spike"), key=lambda e: e.severity,
                default=None)
    text = f"{span}: {len(episodes)} stress episode(s): {listed}."
    if worst is not None:
        rec = ("never recovered within the trace" if worst.recovery_steps is None
               else f"recovered in {worst.recovery_steps} steps")
        what = "loss spike (a drop of the maximised metric)" if maximize else "loss spike"
        text += (f" Worst {what} at steps {worst.start}-{worst.end} "
                 f"({worst.severity:.1f} sigma), {rec}.")
    data = [e for e in episodes if e.cause == "data"]
    if data:
        text += f" {len(data)} coincide with a change of data source."
    unrecovered = [e for e in episodes if e.recovery_steps is None and e.kind != "loss_spike"]
    if unrecovered:
        text += f" {len(unrecovered)} other episode(s) not recovered by the end."
    return text

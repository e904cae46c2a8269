"""How the runs of the robustness study recover from each perturbation event.

Recovery is measured per event on a fixed held-out probe: the steps after the event until
the probe loss is back near its level before it. The paper's own recovery ratio is here
too, as defined, to show what it measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "RECOVERY_TOLERANCE",
    "RecoveryEvent",
    "damaged",
    "paper_recovery_ratio",
    "recovery_events",
]

RECOVERY_TOLERANCE = 0.05
"""A run has recovered when its probe loss is back within 5% of its pre-event level."""


@dataclass(frozen=True)
class RecoveryEvent:
    """One perturbation event of one run and what it did.

    Attributes:
        run: the run's row.
        start: first perturbed step (for a shard shift: the shift step).
        end: last perturbed step (a shift: ``start``).
        level: the last probe loss recorded before ``start``.
        peak: highest probe loss from ``end`` until the next event (or the end).
        recovery: steps after ``end`` until the probe loss is within 5% of ``level``
            (0: no measurable damage); ``None`` if it never was before the next event
            or the end of training (censored).
        horizon: steps available to recover (until the next event or the end).
    """

    run: int
    start: int
    end: int
    level: float
    peak: float
    recovery: int | None
    horizon: int


def _windows(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of consecutive True steps, as (first, last)."""
    out, start = [], None
    for t, on in enumerate(mask):
        if on and start is None:
            start = t
        elif not on and start is not None:
            out.append((start, t - 1))
            start = None
    if start is not None:
        out.append((start, len(mask) - 1))
    return out


def recovery_events(probe: np.ndarray, corrupt: np.ndarray, shift_steps: Sequence[int | None],
                    tolerance: float = RECOVERY_TOLERANCE) -> list[RecoveryEvent]:
    """Every perturbation event of every run, with its damage and recovery time.

    Args:
        probe: ``[R, T]`` probe losses, NaN where none was recorded.
        corrupt: ``[R, T]`` corrupted steps; consecutive ones form one event.
        shift_steps: per run, the step of its shard shift (``None``: no shift).
        tolerance: relative distance to the pre-event level that counts as recovered.

    Returns:
        The events; runs without a perturbation event have none. An event with no
        probe value before it (at step 0) is skipped: it has no "level before".
    """
    events = []
    steps = probe.shape[1]
    for r in range(probe.shape[0]):
        windows = _windows(corrupt[r])
        shift = shift_steps[r]
        if shift is not None:
            windows = sorted([*windows, (shift, shift)])
        for i, (start, end) in enumerate(windows):
            before = probe[r, :start]
            before = before[np.isfinite(before)]
            if before.size == 0:
                continue
            # the last probe before the event: a mean over a window would sit above it
            # while the loss is falling, and count a damaged run as "recovered"
            level = float(before[-1])
            stop = windows[i + 1][0] if i + 1 < len(windows) else steps
            after_steps = np.arange(end, stop)
            after = probe[r, end:stop]
            seen = np.isfinite(after)
            after, after_steps = after[seen], after_steps[seen]
            if after.size == 0:
                continue
            back = np.nonzero(after <= level * (1.0 + tolerance))[0]
            recovery = int(after_steps[back[0]] - end) if back.size else None
            events.append(RecoveryEvent(r, start, end, level, float(after.max()), recovery,
                                stop - end))
    return events


def paper_recovery_ratio(observed: np.ndarray) -> np.ndarray:
    """The paper's recovery ratio, per run: max of the first half of the observed loss
    over the mean of its last 10 steps (``plotting/create_improved_recovery_plots.py``,
    for 200-step runs: ``max(loss[:100]) / mean(loss[90:100])``)."""
    half = observed.shape[1] // 2
    tail = observed[:, max(0, half - 10):half].mean(axis=1)
    return observed[:, :half].max(axis=1) / np.maximum(tail, 1e-12)


def damaged(events: dict[str, np.ndarray]) -> np.ndarray:
    """Events after which the probe loss rose more than the tolerance above its level:
    the others need no recovery, and would fill the statistics with zeros."""
    return events["peak"] > events["level"] * (1.0 + RECOVERY_TOLERANCE)

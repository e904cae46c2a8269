"""The pulse: a compact per-step record of what GreedyLR saw and did."""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from greedylr.rule import Event

__all__ = ["Trace"]


class Trace:
    """Per-step columns (step, raw loss, smoothed loss, LR per group) and all events.

    Columns are ``array`` buffers: 8 bytes per value, no Python object per step.
    """

    def __init__(self, num_groups: int) -> None:
        self.num_groups = num_groups
        self.steps = array("q")
        self.losses = array("d")
        self.smoothed = array("d")
        self.lrs = [array("d") for _ in range(num_groups)]
        self.events: list[Event] = []

    def __len__(self) -> int:
        return len(self.steps)

    def record(
        self,
        step: int,
        loss: float,
        smoothed: float | None,
        lrs: Sequence[float],
        events: Sequence[Event] = (),
    ) -> None:
        self.steps.append(step)
        self.losses.append(loss)
        self.smoothed.append(float("nan") if smoothed is None else smoothed)
        for column, lr in zip(self.lrs, lrs):
            column.append(lr)
        self.events.extend(events)

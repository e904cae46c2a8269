"""Rows: the per-step record as sinks and decoders receive it, and how it is encoded.

:class:`Rows` is a materialised chunk of the trace (NumPy columns and its events);
:func:`decode_events` turns the event-code column of device-mode rows into events;
``_Signal`` stores one user signal compactly (floats, or tags as small integer codes).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from greedylr.events import describe
from greedylr.rule import Event

_MISSING_TAG = -1


def _is_tensor(value: Any) -> bool:
    # torch is imported by the scheduler anyway, but the trace itself must load without it
    return type(value).__module__.startswith("torch") and hasattr(value, "device")


@dataclass
class Rows:
    """A chunk of materialised rows, as sinks and decoders receive them.

    Attributes:
        step: int64, shape ``(n,)``.
        loss: float64 raw loss, ``(n,)``.
        smoothed: float64 smoothed loss (NaN where the rule had none), ``(n,)``.
        lrs: float64 LR per group after the step, ``(n, num_groups)``.
        lrs_before: float64 LR per group before the step, ``(n, num_groups)``.
        code: int64 OR of :data:`EVENT_BITS`, ``(n,)``.
        events: the events of these rows, in row order.
        event_rows: the index (in this chunk) of the row of each event, int64 ``(len(events),)``;
            None: each event belongs to a row with its step (see :meth:`events_by_row`).
            After a rollback (``load_state_dict`` to an earlier step in the same process)
            a chunk can hold one step number twice: the trace's own chunks always carry it.
        extra: device mode only, while decoding: the ``extra`` values of each row,
            ``(n, k)``; None otherwise.
        signals: per-signal values: a float64 array (NaN where not logged) for a numeric
            signal, a list of ``str | None`` for a tag.
        first: the index of the chunk's first row among every row of its trace (rows
            dropped from memory by ``max_rows`` included): a sink that resumes a chunk it
            passed on in part finds its place by it. None for rows not cut from a trace.
    """

    step: np.ndarray
    loss: np.ndarray
    smoothed: np.ndarray
    lrs: np.ndarray
    lrs_before: np.ndarray
    code: np.ndarray
    events: list[Event] = field(default_factory=list)
    signals: dict[str, np.ndarray | list[str | None]] = field(default_factory=dict)
    extra: np.ndarray | None = None
    event_rows: np.ndarray | None = None
    first: int | None = None

    def __len__(self) -> int:
        return len(self.step)

    def events_by_step(self) -> dict[int, list[Event]]:
        """The events grouped by their step, in order.

        A chunk with a repeated step number (after a rollback) mixes the events of both
        rows of that step here: a writer needs :meth:`events_by_row`.
        """
        by_step: dict[int, list[Event]] = {}
        for event in self.events:
            by_step.setdefault(event.step, []).append(event)
        return by_step

    def events_by_row(self) -> dict[int, list[Event]]:
        """The events grouped by the index of their row in this chunk, in order.

        From ``event_rows`` where the chunk has it (the trace's chunks do); else each event
        goes to the first row with its step at or after the previous event's row.
        """
        positions = (self.event_rows.tolist() if self.event_rows is not None
                     else event_positions(self.step.tolist(), self.events))
        by_row: dict[int, list[Event]] = {}
        for event, row in zip(self.events, positions, strict=True):
            by_row.setdefault(row, []).append(event)
        return by_row

    def dicts(self) -> Iterator[dict[str, Any]]:
        """One plain dict per row: step, loss, smoothed, lrs, events (kinds), signals."""
        by_row = self.events_by_row()
        for i in range(len(self.step)):
            step = int(self.step[i])
            row: dict[str, Any] = {
                "step": step,
                "loss": float(self.loss[i]),
                "smoothed": float(self.smoothed[i]),
                "lrs": [float(v) for v in self.lrs[i]],
                "events": [e.kind for e in by_row.get(i, ())],
            }
            for name, values in self.signals.items():
                value = values[i]
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    continue
                row[name] = value if isinstance(value, str) else float(value)
            yield row


def lrs_before_first(base_lrs: Sequence[float] | None, lrs: Sequence[float]) -> list[float]:
    """The LRs before a trace's first row, whose LRs after the step are ``lrs``: the run's
    base LRs (``meta["base_lrs"]``) for the groups they name, the row's own LR for a group
    they do not (one added after they were written: a streamed file's header keeps the
    base LRs of the groups its first write saw)."""
    known = list(base_lrs or ())[:len(lrs)]
    return [*known, *lrs[len(known):]]


def event_positions(steps: list[int], events: Sequence[Event]) -> list[int]:
    """The row of each event when only their steps are known (Rows without ``event_rows``,
    traces pickled by older versions): the first row with the event's step at or after the
    previous event's row; an event whose step no row has stays at the previous event's
    row (the first row if none). The positions never decrease."""
    positions: list[int] = []
    cursor = 0
    for event in events:
        try:
            cursor = steps.index(event.step, cursor)
        except ValueError:
            pass
        positions.append(cursor)
    return positions


def decode_events(rows: Rows) -> list[Event]:
    """The default decoder: events from the code column, with reasons from the values.

    Used for rows recorded in device mode (with ``code=``) and for CSV files, where the
    rule's own wording is not available. ``reference`` is None: the rule's comparison
    value is not part of the per-step record.
    """
    events: list[Event] = []
    for i in np.flatnonzero(rows.code):
        after = [float(v) for v in rows.lrs[i]]
        events += describe(
            None, step=int(rows.step[i]), code=int(rows.code[i]), loss=float(rows.loss[i]),
            smoothed=float(rows.smoothed[i]), reference=None,
            lrs_before=[float(v) for v in rows.lrs_before[i]], lrs_changed=after,
            lrs_after=after,
        )
    return events


class _Signal:
    """One user signal column: numeric (float64, NaN missing) or a tag (int code, -1)."""

    __slots__ = ("index", "numeric", "values", "vocab")

    def __init__(self, numeric: bool, rows: int) -> None:
        self.numeric = numeric
        self.values: array[Any] = (
            array("d", [math.nan]) * rows if numeric else array("i", [-1]) * rows
        )
        self.vocab: list[str] = []
        self.index: dict[str, int] = {}

    def encode(self, value: Any) -> float | int:
        if value is None:
            return math.nan if self.numeric else _MISSING_TAG
        if self.numeric:
            return float(value)
        code = self.index.get(value)
        if code is None:
            code = self.index[value] = len(self.vocab)
            self.vocab.append(value)
        return code

    def decode(self, start: int = 0, stop: int | None = None) -> np.ndarray | list[str | None]:
        if self.numeric:
            return np.array(self.values[start:stop], dtype=np.float64)
        vocab = self.vocab
        return [None if c < 0 else vocab[c] for c in self.values[start:stop]]

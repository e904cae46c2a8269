"""The recorder: :class:`Trace`, the per-step record of a run.

Host rows go straight into compact ``array`` columns; device-mode rows (tensors) are
buffered on their device and moved to the host in one transfer (the interface is in
docs/api/trace.md). Every ``flush_every`` steps or ``flush_interval`` seconds the new rows
go to the sinks; at interpreter exit every live trace hands its last rows to its sinks,
and so does a trace that is garbage-collected without :meth:`Trace.close`. Each sink has
its own progress: one that fails is retried with its missed rows at the next flush, and
the others never get a row twice.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import math
import os
import time
import weakref
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from greedylr.rule import EVENT_BITS, Event
from greedylr.trace.device import row_tensor, rows_to_host
from greedylr.trace.rows import (
    Rows,
    _is_tensor,
    _Signal,
    decode_events,
    event_positions,
    lrs_before_first,
)
from greedylr.trace.sinks import Sink, _as_sink, _FileSink

logger = logging.getLogger("greedylr")

_DEFAULT_MAX_ROWS = 1_000_000

#: Traces with sinks, flushed at interpreter exit; weak, so that a trace dies with its owner.
_WITH_SINKS: weakref.WeakSet[Trace] = weakref.WeakSet()


#: Set by the exit handler: from then on a trace's finalizer leaves its sinks alone.
_EXITED: list[bool] = []


def _is_number(value: Any) -> bool:
    """Whether ``value`` is a numeric signal's value: a number (not a bool), or a tensor
    of one element."""
    if _is_tensor(value):
        return bool(value.numel() == 1)
    return not isinstance(value, bool) and isinstance(value, (int, float, np.number))


def _read_tensors(signals: Mapping[str, Any]) -> Mapping[str, Any]:
    """``signals`` with each tensor read as a float (the same dict when none is one)."""
    if not any(_is_tensor(v) for v in signals.values()):
        return signals
    return {name: float(v) if _is_tensor(v) else v for name, v in signals.items()}


@dataclass(slots=True)
class _Feed:
    """A sink and its own progress through the trace's rows."""

    sink: Sink
    sent: int  # the rows it has, counted from the first row recorded (dropped included)
    failing: bool = False  # its last write raised (logged once)
    missed: int = 0  # rows trimmed from memory while it failed


@atexit.register
def _flush_at_exit() -> None:
    """Hand the last rows of every live trace to its sinks (a crashed run keeps its end)."""
    _EXITED.append(True)
    for trace in list(_WITH_SINKS):
        trace._finish("flushing a trace at exit failed")


class Trace:
    """Per-step columns (step, raw loss, smoothed loss, LR per group, event code, user
    signals) and every event, with sinks that receive them in chunks.

    Args:
        num_groups: the number of parameter groups (LR columns); None: taken from the
            first recorded step (what :class:`~greedylr.GreedyLR` does with a trace it is
            given).
        sinks: where the rows also go, each a sink, a ``.jsonl``/``.csv`` path, a
            ``SummaryWriter``, a ``logging.Logger`` or a callable (see :meth:`add_sink`).
        flush_every: hand the rows to the sinks, and move device-mode tensors to the host,
            every this many steps; ``0`` or ``None``: only when the trace is read, saved,
            flushed or closed (and at interpreter exit).
        flush_interval: with sinks, also hand them the rows when this many seconds have
            passed since the last time (checked at each recorded step), so that a run that
            crashes loses at most about this much of its streamed trace; ``None``, or
            ``flush_every=0``: off. In device mode each such flush is one host transfer.
        max_rows: keep at most about this many recent rows in memory (the default, one
            million, is about 33 MB with one group; ``None``: all). The sinks still
            receive every row; every event is always kept.
        meta: plain values saved with the trace (the scheduler stores its configuration
            and the LR bounds here; :func:`diagnose` and the plot use them).

    Reading ``steps``, ``losses``, ``smoothed``, ``lrs``, ``codes``, ``events`` or a
    signal returns a copy (NumPy arrays) of what is in memory, flushing buffered device
    rows first.

    A sink that raises does not stop the run: the flushes made while recording log its
    first error (``logging.ERROR`` on the ``greedylr`` logger, with the traceback), keep
    its rows and pass them again at the next flush (each sink has its own progress: the
    others never get a row twice); an explicit :meth:`flush` or :meth:`close` raises the
    first error after every other sink got its rows. A trace garbage-collected without
    :meth:`close` hands its last rows to its sinks and closes them, as at exit.

    A trace with a file sink cannot be copied (``copy.deepcopy``, ``pickle``,
    ``torch.save`` of its scheduler), whether its file is open yet or not: the copy would
    be a second writer of the file (a ``TypeError`` says so; copy the scheduler's
    ``state_dict()``, or the rows with ``Trace().extend(trace.rows())``). A copy of a
    trace with other sinks holds the rows and no sink: the sinks stay the original's,
    which alone delivers each row (:meth:`add_sink` gives the copy its own). In a forked
    child, a flush or close lets go of the file sinks (with a warning): the parent writes
    and unlocks them.
    """

    def __init__(
        self,
        num_groups: int | None = None,
        *,
        sinks: Iterable[Any] = (),
        flush_every: int | None = 1000,
        flush_interval: float | None = 2.0,
        max_rows: int | None = _DEFAULT_MAX_ROWS,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        if num_groups is not None and not (isinstance(num_groups, int) and num_groups >= 1):
            raise ValueError(f"num_groups must be an int >= 1 or None, got {num_groups!r}")
        if flush_every is not None and not (isinstance(flush_every, int) and flush_every >= 0):
            raise ValueError(f"flush_every must be an int >= 0 or None, got {flush_every!r}")
        if max_rows is not None and not (isinstance(max_rows, int) and max_rows >= 1):
            raise ValueError(f"max_rows must be an int >= 1 or None, got {max_rows!r}")
        if flush_interval is not None and not (
            isinstance(flush_interval, (int, float)) and flush_interval > 0
        ):
            raise ValueError(f"flush_interval must be a number > 0 or None, got {flush_interval!r}")
        self.num_groups = num_groups
        self.flush_every = flush_every or 0
        self.flush_interval = flush_interval
        self._flush_time = math.inf  # when record() next flushes by time (with sinks)
        self._owner_pid = os.getpid()
        self.max_rows = max_rows
        self.meta: dict[str, Any] = dict(meta or {})
        # array[Any]: one type for every column, so that they can be handled together
        self._steps: array[Any] = array("q")
        self._losses: array[Any] = array("d")
        self._smoothed: array[Any] = array("d")
        self._lrs: list[array[Any]] = [array("d") for _ in range(num_groups or 0)]
        self._codes: array[Any] = array("H")  # 10 event bits (rule.EVENT_BITS)
        self._events: list[Event] = []
        self._signals: dict[str, _Signal] = {}
        self._pending_signals: dict[str, Any] = {}
        self._dropped = 0  # rows dropped from memory by max_rows (they reached the sinks)
        self._feeds: list[_Feed] = []
        self._sunk = 0  # rows (in memory, counted from index 0) of the last flush
        self._event_rows: array[Any] = array("q")  # the row of each event (dropped included)
        self._resume_step: int | None = None
        self._decoder: Callable[[Rows], Iterable[Event]] = decode_events
        # device mode: concatenated row tensors waiting for one transfer
        self._device_steps: list[int] = []
        self._device_rows: list[Any] = []
        self._device_signals: list[dict[str, Any]] = []
        self._flush_at = math.inf
        self._set_flush_at()
        for sink in sinks:
            self.add_sink(sink)

    # -- recording ------------------------------------------------------------------

    def add_sink(self, sink: Any) -> Sink:
        """Also send the rows to ``sink``: at the next flush every row still in memory
        (and its events), then the new ones.

        Args:
            sink: a :class:`Sink`; a path ending in ``.jsonl`` or ``.csv``; a
                ``SummaryWriter``; a ``logging.Logger``; or a callable, called with one
                plain dict per row.

        Returns:
            The sink, wrapped if needed (keep it to close it yourself).
        """
        if self._owner_pid != os.getpid():  # a forked child takes the trace over
            self._leave_parents_files()
        wrapped = _as_sink(sink, self.num_groups, self.meta)
        if self._resume_step is not None and isinstance(wrapped, _FileSink):
            wrapped.resume(self._resume_step)
        self._feeds.append(_Feed(wrapped, sent=self._dropped))
        _WITH_SINKS.add(self)
        self._owner_pid = os.getpid()
        self._set_flush_at()
        return wrapped

    def _file_sinks(self) -> list[_FileSink]:
        """The sinks that stream to a file (JSONL or CSV)."""
        return [feed.sink for feed in self._feeds if isinstance(feed.sink, _FileSink)]

    def resume(self, step: int) -> None:
        """Note that this run continues an earlier one from its step ``step`` (a checkpoint).

        ``GreedyLR.load_state_dict`` calls it. A file sink that has not written yet and
        finds its file holding a greedylr trace of its format keeps that file's rows up to
        step ``step`` (with their events), drops the rows after it (the abandoned
        continuation of the crashed run) and appends the new rows: the file reads as the
        uninterrupted run. A log line says how many rows were kept and dropped, a warning
        which steps up to ``step`` the file lacks (rows that a killed run never flushed:
        the file has a gap there). Without it, an existing file is started anew (with a
        warning if it held a trace).

        A trace that has recorded rows already is rolled back, not resumed: its files,
        like the trace in memory, then hold the steps after ``step`` twice (the later
        ones are the run that went on); nothing changes here.
        """
        if self._dropped or self._steps or self._device_rows:
            return
        self._resume_step = int(step)
        for sink in self._file_sinks():
            sink.resume(step)

    def add_group(self) -> None:
        """One more LR column, for a parameter group added during the run.

        The rows recorded before read NaN in it. A streaming CSV sink keeps the columns
        of its header (with a warning); JSONL sinks and :meth:`save` keep every group.
        """
        self._materialise()
        if self.num_groups is None:
            return  # the first recorded row sets the count
        self._lrs.append(array("d", [math.nan]) * len(self._steps))
        self.num_groups += 1

    def extend(self, rows: Rows) -> None:
        """Append a chunk of host rows and their events in one go (:func:`load_trace` does).

        ``rows.lrs`` may have more columns than the trace has groups (groups added during
        the run: the earlier rows read NaN in them), not fewer. The codes and events are
        kept as given; ``rows.lrs_before`` and ``rows.extra`` are not read.
        """
        self._materialise()
        base = self._dropped + len(self._steps)
        if len(rows):
            width = rows.lrs.shape[1]
            if self.num_groups is None:
                self.num_groups = width
                self._lrs = [array("d") for _ in range(width)]
            if width < self.num_groups:
                raise ValueError(f"rows have {width} learning rates, the trace {self.num_groups}")
            while self.num_groups < width:
                self.add_group()
        self._steps.extend(rows.step.tolist())
        self._losses.extend(rows.loss.tolist())
        self._smoothed.extend(rows.smoothed.tolist())
        for g, column in enumerate(self._lrs):
            column.extend(rows.lrs[:, g].tolist())
        self._codes.extend(rows.code.tolist())
        self._extend_signals(rows.signals, len(rows))
        positions = (rows.event_rows.tolist() if rows.event_rows is not None
                     else event_positions(rows.step.tolist(), rows.events))
        order = sorted(range(len(positions)), key=positions.__getitem__)
        self._events.extend(rows.events[k] for k in order)
        self._event_rows.extend(base + positions[k] for k in order)
        if len(self._steps) >= self._flush_at:
            self._flush()

    def _extend_signals(self, signals: Mapping[str, Any], count: int) -> None:
        """Append ``count`` rows of signal values; a column not in ``signals`` reads missing."""
        before = len(self._steps) - count
        for name, values in signals.items():
            column = self._signals.get(name)
            if column is None:
                column = self._signals[name] = _Signal(isinstance(values, np.ndarray), before)
            if column.numeric:
                column.values.extend(np.asarray(values, dtype=np.float64).tolist())
            else:
                column.values.extend([column.encode(v) for v in values])
        for name, column in self._signals.items():
            if name not in signals:
                column.values.extend([column.encode(None)] * count)

    def set_decoder(self, decoder: Callable[[Rows], Iterable[Event]]) -> None:
        """Turn device-mode rows (recorded with ``code=``) into events with ``decoder``."""
        if not callable(decoder):
            raise TypeError(f"decoder must be callable, got {decoder!r}")
        self._decoder = decoder

    def log(self, **signals: Any) -> None:
        """Attach signals to the next recorded step: numbers, one-element (0-d) tensors, or
        tags (str).

        Call it before ``sched.step(loss)`` in the same iteration. A signal's type is
        fixed by its first value other than None; a step where it is not logged (or
        logged as None) reads NaN (numeric) or None (tag). An empty tag ``""`` is refused
        (``ValueError``): a CSV file could not tell it from a step where the tag was not
        logged.

        Examples:
            >>> trace = Trace(1)
            >>> trace.log(grad_norm=2.5, source="shard-3")
            >>> trace.record(1, 0.9, 0.9, [0.1])
            >>> trace.signal("grad_norm").tolist(), trace.signal("source")
            ([2.5], ['shard-3'])
        """
        pending = self._pending_signals
        for name, value in signals.items():
            column = self._signals.get(name)
            kind = type(value)
            if column is not None and (
                kind is str and value if not column.numeric else kind is float or kind is int
            ):
                pending[name] = value  # the common case: a known signal, a plain value
                continue
            if name in ("step", "loss", "smoothed", "lrs", "code", "events"):
                raise ValueError(f"signal name {name!r} is reserved")
            numeric = not isinstance(value, str)
            if not numeric and not value:
                raise ValueError(f"signal {name!r}: an empty tag is refused, since a CSV file "
                                 "reads it back as a step where the tag was not logged; log "
                                 "None for that, or a name (such as '-')")
            if numeric and value is not None and not _is_number(value):
                shown = (f"a tensor of shape {tuple(value.shape)}" if _is_tensor(value)
                         else repr(value))
                raise TypeError(f"signal {name!r} must be a number, a one-element tensor or "
                                f"a str, got {shown}")
            if column is not None and value is not None and column.numeric != numeric:
                expected = "numeric" if column.numeric else "a tag (str)"
                raise TypeError(f"signal {name!r} is {expected}, got {value!r}")
            pending[name] = value

    def record(
        self,
        step: int,
        loss: Any,
        smoothed: Any,
        lrs: Any,
        events: Sequence[Event] = (),
        *,
        code: Any = None,
        extra: Any = None,
    ) -> None:
        """Append one step. Floats go straight to the columns; tensors are buffered.

        Args:
            step: the rule's step number.
            loss: the raw loss the rule saw (a float, or a 0-d tensor in device mode).
            smoothed: the smoothed loss, or None.
            lrs: the LR of every group after the step.
            events: the rule's events for this step (host mode).
            code: device mode: a 0-d integer tensor (or int) of :data:`EVENT_BITS`
                flags, decoded into events at flush time (see *Device mode* in the API docs).
            extra: device mode: a 1-d tensor of values for the decoder (``rows.extra``).
        """
        # the host path runs every step of every run: no allocation it can avoid
        signals = self._pending_signals
        if signals:
            self._pending_signals = {}
        if type(loss) is not float and _is_tensor(loss):
            row, count = row_tensor(loss, smoothed, lrs, code, extra)
            self._push_device_row(step, row, count, signals)
            return
        if self._device_rows:
            self._materialise()
        bits = 0
        if events or code:  # most steps have neither
            for event in events:
                bits |= EVENT_BITS[event.kind]
            if code:
                bits |= int(code)
        self._append(step, loss, math.nan if smoothed is None else smoothed, lrs, bits, signals)
        if events:
            self._events.extend(events)
            self._event_rows.extend([self._dropped + len(self._steps) - 1] * len(events))
        elif code:
            self._decode_rows(len(self._steps) - 1, None if extra is None else
                              np.asarray(extra, dtype=np.float64).reshape(1, -1))
        if len(self._steps) >= self._flush_at or (
            self._feeds and time.monotonic() >= self._flush_time
        ):
            self._flush()

    def _append(self, step: int, loss: float, smoothed: float, lrs: Sequence[float], code: int,
                signals: Mapping[str, Any]) -> None:
        groups = self.num_groups
        if len(lrs) != groups:
            if groups is not None:
                raise ValueError(f"expected {groups} learning rates, got {len(lrs)}")
            groups = self.num_groups = len(lrs)
            self._lrs = [array("d") for _ in lrs]
        if signals:  # tensors read before any column grows: one that fails changes none
            signals = _read_tensors(signals)
        # array.append converts (and type-checks) ints, floats and NumPy scalars itself
        try:
            self._steps.append(step)
            self._losses.append(loss)
            self._smoothed.append(smoothed)
            if groups == 1:  # the usual case; a zip costs a third of this call
                self._lrs[0].append(lrs[0])
            else:
                for column, lr in zip(self._lrs, lrs):  # lengths checked above
                    column.append(lr)
            self._codes.append(code)
        except (TypeError, ValueError, OverflowError):
            # a bad value must not leave the columns misaligned
            rows = len(self._codes)
            for column in (self._steps, self._losses, self._smoothed, *self._lrs):
                del column[rows:]
            raise
        if signals or self._signals:
            self._append_signals(signals)

    def _append_signals(self, signals: Mapping[str, Any]) -> None:
        known = 0
        for name, column in self._signals.items():
            value = signals.get(name)
            if value is not None:
                known += 1
            column.values.append(column.encode(value))
        if known < len(signals):  # a signal seen for the first time: a new column
            rows = len(self._steps) - 1
            for name, value in signals.items():
                # None says nothing of the type: the column waits for a real value
                if value is not None and name not in self._signals:
                    column = self._signals[name] = _Signal(not isinstance(value, str), rows)
                    column.values.append(column.encode(value))

    def _decode_rows(self, first: int, extra: np.ndarray | None) -> None:
        """Decode the events of rows ``first..`` (recorded with a code), keep them at their
        rows and make each row's code the OR of its events' kinds.

        Decoded in runs of rising steps: a rollback repeats step numbers, and an event
        finds its row by its step within one run.
        """
        stop = len(self._steps)
        steps = np.asarray(self._steps[first:stop], dtype=np.int64)
        bounds = [0, *(np.flatnonzero(np.diff(steps) <= 0) + 1).tolist(), stop - first]
        for a, b in itertools.pairwise(bounds):
            rows = self._rows(first + a, first + b, events=False)
            if extra is not None:
                rows.extra = extra[a:b]
            events = list(self._decoder(rows))
            where = {step: i for i, step in enumerate(steps[a:b].tolist())}
            placed = sorted((where.get(e.step, b - a - 1), k) for k, e in enumerate(events))
            codes = [0] * (b - a)
            for i, k in placed:
                codes[i] |= EVENT_BITS[events[k].kind]
            for i in range(b - a):
                if self._codes[first + a + i]:
                    self._codes[first + a + i] = codes[i]
            self._events.extend(events[k] for _, k in placed)
            base = self._dropped + first + a
            self._event_rows.extend(base + i for i, _ in placed)

    def record_row(self, step: int, row: Any, num_groups: int) -> None:
        """Device mode: append one step already laid out as one tensor; no kernel, no copy.

        Args:
            step: the rule's step number.
            row: the values that :meth:`record` concatenates from its tensor arguments,
                in one tensor of one row (``[W]`` or ``[1, W]``): the loss, the smoothed
                loss, the ``num_groups`` LRs, the event code, then the decoder's extra
                values. It is kept as it is: the caller must not write to it afterwards.
            num_groups: how many LRs the row holds.
        """
        signals = self._pending_signals
        if signals:
            self._pending_signals = {}
        self._push_device_row(step, row, num_groups, signals)

    def _push_device_row(self, step: int, row: Any, count: int, signals: dict[str, Any]) -> None:
        if self.num_groups is None:
            self.num_groups = count
            self._lrs = [array("d") for _ in range(count)]
        if count != self.num_groups:
            raise ValueError(f"expected {self.num_groups} learning rates, got {count}")
        self._device_rows.append(row)
        self._device_steps.append(int(step))
        self._device_signals.append(signals)
        if (self.flush_every and len(self._device_rows) >= self.flush_every) or (
            self._feeds and time.monotonic() >= self._flush_time
        ):
            self._flush()

    def _materialise(self) -> None:
        """Move the buffered device rows to the host (one transfer) and decode them."""
        if not self._device_rows:
            return
        steps, signal_rows = self._device_steps, self._device_signals
        values = rows_to_host(self._device_rows, signal_rows)
        self._device_rows, self._device_steps, self._device_signals = [], [], []
        assert self.num_groups is not None  # set by the first device row
        width = self.num_groups + 3  # loss, smoothed, lrs, code; then the extra values
        first = len(self._steps)
        for i, step in enumerate(steps):
            row = values[i]
            self._append(step, float(row[0]), float(row[1]), row[2:width - 1].tolist(),
                         int(row[width - 1]), signal_rows[i])
        if np.any(values[:, width - 1]):
            self._decode_rows(first, values[:, width:])

    def flush(self) -> None:
        """Materialise buffered device rows and hand every new row to the sinks.

        Raises:
            Exception: the first error a sink raised, once every other sink got its rows
                (that sink gets them again at the next flush).
        """
        error = self._flush()
        if error is not None:
            raise error

    def _flush(self) -> Exception | None:
        """:meth:`flush` that logs a failing sink (once) instead of raising; the error."""
        self._materialise()
        n = len(self._steps)
        error = None
        if self._feeds:
            if self._owner_pid != os.getpid():
                self._leave_parents_files()
            total = self._dropped + n
            chunks: dict[int, Rows] = {}  # by first row: the sinks in step share one chunk
            for feed in self._feeds:
                start = feed.sent - self._dropped
                if start >= n:
                    continue
                if start < 0:  # rows trimmed while it failed: lost to it (said once)
                    if not feed.missed:
                        logger.error("greedylr: trace sink %r misses rows: they were dropped "
                                     "from memory (max_rows) while it failed", feed.sink)
                    feed.missed -= start
                    feed.sent = self._dropped
                    start = 0
                rows = chunks.get(start)
                if rows is None:
                    rows = chunks[start] = self._rows(start, n)
                try:
                    feed.sink.write(rows)
                except Exception as exc:
                    error = error or exc
                    if not feed.failing:
                        feed.failing = True
                        logger.error("greedylr: trace sink %r failed (%s: %s); the run goes "
                                     "on, and its rows are passed again at the next flush",
                                     feed.sink, type(exc).__name__, exc, exc_info=exc)
                    continue
                if feed.failing:
                    feed.failing = False
                    logger.warning("greedylr: trace sink %r works again: it got the %d rows "
                                   "it had missed; %d dropped from memory meanwhile are lost",
                                   feed.sink, n - start, feed.missed)
                    feed.missed = 0
                feed.sent = total
        self._sunk = n
        self._trim()
        self._set_flush_at()
        return error

    def _set_flush_at(self) -> None:
        """The row count at which :meth:`record` next flushes (sinks, or trimming)."""
        at = math.inf
        if self.flush_every:
            at = self._sunk + self.flush_every
        if self.max_rows is not None:
            at = min(at, self.max_rows + self.max_rows // 4 + 1)
        self._flush_at = at
        if self._feeds and self.flush_every and self.flush_interval is not None:
            self._flush_time = time.monotonic() + self.flush_interval

    def _trim(self) -> None:
        if self.max_rows is None or len(self._steps) <= self.max_rows + self.max_rows // 4:
            return
        # drop in chunks so that trimming stays amortised O(1) per step
        drop = len(self._steps) - self.max_rows
        for column in (self._steps, self._losses, self._smoothed, self._codes, *self._lrs):
            del column[:drop]
        for signal in self._signals.values():
            del signal.values[:drop]
        self._dropped += drop
        self._sunk -= drop

    def close(self) -> None:
        """Flush, then close every sink (files, writers). The trace stays readable, and
        can go on recording: a file sink then appends to its file.

        Raises:
            Exception: the first error of a sink, once the others were flushed and closed.
        """
        error = self._flush()
        error = self._close_sinks() or error
        if error is not None:
            raise error

    def _close_sinks(self) -> Exception | None:
        if self._owner_pid != os.getpid():
            self._leave_parents_files()
        error = None
        for feed in self._feeds:
            try:
                feed.sink.close()
            except Exception as exc:
                logger.error("greedylr: closing trace sink %r failed (%s: %s)", feed.sink,
                             type(exc).__name__, exc)
                error = error or exc
        return error

    def _report_lost(self) -> None:
        """The last word on sinks that still fail (at exit, or when the trace dies)."""
        total = self._dropped + len(self._steps)
        for feed in self._feeds:
            if feed.failing:
                logger.error("greedylr: trace sink %r still fails: %d rows are lost",
                             feed.sink, total - feed.sent + feed.missed)

    def _finish(self, failure: str) -> None:
        """Flush, close the sinks and report those that still fail, logging any error:
        at exit, or for a trace garbage-collected without :meth:`close`. A forked child
        writes nothing of its parent's."""
        try:
            if not self.__dict__.get("_feeds") or self._owner_pid != os.getpid():
                return
            self._flush()  # a failing sink is logged, and the others still get their rows
            self._close_sinks()
            self._report_lost()
        except Exception:  # nothing may escape a finalizer (at shutdown even logging may fail)
            try:
                logger.exception("greedylr: %s", failure)
            except Exception:
                pass

    def __del__(self) -> None:
        # a trace dropped without close() (a run inside a function): its last rows reach
        # its sinks, as at exit (not after it: no file is reopened at shutdown)
        if not _EXITED:
            self._finish("flushing a garbage-collected trace failed")

    def _leave_parents_files(self) -> None:
        """In a forked child: let go of the file sinks, which are the parent's to write
        and unlock (their descriptors and locks are shared with it), with a warning."""
        files = self._file_sinks()
        if not files:
            return
        self._feeds = [feed for feed in self._feeds if not isinstance(feed.sink, _FileSink)]
        for sink in files:
            sink.forget()
        logger.warning("greedylr: a trace in forked process %d (of %d) no longer streams to "
                       "its file sinks: the parent writes and unlocks them", os.getpid(),
                       self._owner_pid)

    def __getstate__(self) -> dict[str, Any]:
        # copy.copy too: no second writer of a file
        for sink in self._file_sinks():
            sink.refuse_copy()
        # a copy holds the rows but none of the sinks: they are the original's to feed
        # (and flush when it dies); sharing them, both would deliver the same rows
        state = self.__dict__.copy()
        state.update(_feeds=[], _flush_time=math.inf)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "_event_rows" not in state:  # pickled by an older version
            self.__dict__.pop("_sunk_events", None)
            steps = list(self._steps)
            positions = event_positions(steps, self._events)
            first = steps[0] if steps else 0
            self._event_rows = array("q", [
                self._dropped - 1 if e.step < first else self._dropped + p
                for e, p in zip(self._events, positions, strict=True)])
            self._resume_step = None
        # a copy has no sinks (an older version's pickle kept them: not any more)
        for older in ("_sinks", "_sent", "_failing", "_missed"):  # before 0.11.8
            self.__dict__.pop(older, None)
        self._feeds = []
        self._flush_time = math.inf
        self._owner_pid = os.getpid()

    def __enter__(self) -> Trace:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # the block's exception is the one to see: a sink's is logged, not raised
            self._flush()
            self._close_sinks()

    # -- reading --------------------------------------------------------------------

    def __len__(self) -> int:
        """Rows in memory plus rows still buffered on a device."""
        return len(self._steps) + len(self._device_rows)

    @property
    def dropped(self) -> int:
        """Rows no longer in memory because of ``max_rows`` (they reached the sinks)."""
        return self._dropped

    @property
    def steps(self) -> np.ndarray:
        self._materialise()
        return np.array(self._steps, dtype=np.int64)

    @property
    def losses(self) -> np.ndarray:
        self._materialise()
        return np.array(self._losses, dtype=np.float64)

    @property
    def smoothed(self) -> np.ndarray:
        self._materialise()
        return np.array(self._smoothed, dtype=np.float64)

    @property
    def lrs(self) -> list[np.ndarray]:
        """One array per parameter group."""
        self._materialise()
        return [np.array(c, dtype=np.float64) for c in self._lrs]

    @property
    def codes(self) -> np.ndarray:
        """The OR of :data:`EVENT_BITS` of each row's events."""
        self._materialise()
        return np.array(self._codes, dtype=np.int64)

    @property
    def events(self) -> list[Event]:
        self._materialise()
        return list(self._events)

    @property
    def signal_names(self) -> list[str]:
        self._materialise()
        return list(self._signals)

    def signal(self, name: str) -> np.ndarray | list[str | None]:
        """A signal's column: float64 with NaN where not logged, or tags with None."""
        self._materialise()
        if name not in self._signals:
            raise KeyError(f"no signal {name!r}; logged: {sorted(self._signals)}")
        return self._signals[name].decode()

    def _rows(self, start: int, stop: int, *, events: bool = True) -> Rows:
        lrs = np.column_stack([np.asarray(c[start:stop], dtype=np.float64) for c in self._lrs]) \
            if stop > start else np.empty((0, self.num_groups or 0))
        before = np.empty_like(lrs)
        if len(lrs):
            before[1:] = lrs[:-1]
            if start > 0:
                before[0] = [c[start - 1] for c in self._lrs]
            elif self._dropped == 0:
                before[0] = lrs_before_first(self.meta.get("base_lrs"), lrs[0])
            else:
                before[0] = lrs[0]
        rows = Rows(
            step=np.asarray(self._steps[start:stop], dtype=np.int64),
            loss=np.asarray(self._losses[start:stop], dtype=np.float64),
            smoothed=np.asarray(self._smoothed[start:stop], dtype=np.float64),
            lrs=lrs,
            lrs_before=before,
            code=np.asarray(self._codes[start:stop], dtype=np.int64),
            signals={name: s.decode(start, stop) for name, s in self._signals.items()},
            first=self._dropped + start,
        )
        if events and len(rows):
            # by row, not by step: after a rollback two rows of a chunk can share a step
            at, positions = self._dropped + start, self._event_rows
            lo, hi = bisect_left(positions, at), bisect_left(positions, self._dropped + stop)
            rows.events = self._events[lo:hi]
            rows.event_rows = np.asarray(positions[lo:hi], dtype=np.int64) - at
        return rows

    def rows(self, start: int = 0, stop: int | None = None) -> Rows:
        """Rows ``start..stop`` of those in memory (default: all) as one :class:`Rows`
        chunk, with their events."""
        self._materialise()
        return self._rows(start, len(self._steps) if stop is None else stop)

    def __repr__(self) -> str:
        return (f"Trace({len(self)} steps, {self.num_groups} group(s), "
                f"{len(self._events)} events, signals={list(self._signals)})")

    # -- files ----------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the trace to ``path``: ``.jsonl`` (full fidelity) or ``.csv``.

        The file is written to a temporary name and renamed, so a reader never sees half
        a file. Rows dropped by ``max_rows`` are not in memory and not saved (a warning
        says how many); stream to a sink to keep them.

        Returns:
            The path written.
        """
        from greedylr.trace.files import save_trace  # files builds traces: import on use

        return save_trace(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trace:
        """Read a trace written by :meth:`save`, a :class:`JSONLSink` or a :class:`CSVSink`."""
        from greedylr.trace.files import load_trace

        return load_trace(path)

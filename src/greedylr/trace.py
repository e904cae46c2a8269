"""The pulse: what GreedyLR saw and did at every step, why, and where the run was stressed.

Three parts, in this order in the file:

* :class:`Trace`, the per-step record: step, raw loss, smoothed loss, the LR of every
  parameter group, an event-code column and any signals the user attaches (gradient norm,
  a validation metric, a data-source tag). Columns are compact ``array`` buffers, 8 bytes
  a value and no Python object per step, so a million steps cost about 33 MB with one
  group. Every :class:`~greedylr.rule.Event` is kept as an object (about 500 bytes with
  its reason; a run stuck at its LR floor logs one every ``patience + 1`` steps).
  ``max_rows`` (default one million, about 33 MB with one group) bounds the rows in
  memory: the oldest rows are dropped from memory (they still reach the sinks), every
  event is always kept.
* Sinks that receive the rows in chunks: JSONL, CSV, TensorBoard, Python ``logging`` and
  any callable, every ``flush_every`` steps or ``flush_interval`` seconds, whichever comes
  first, on :meth:`Trace.close` and at interpreter exit (an uncaught exception included;
  not after a ``SIGKILL``). :meth:`Trace.save` and :func:`load_trace` round-trip the JSONL
  and CSV formats; :func:`load_trace` keeps the rows before a truncated last line.
* :func:`diagnose`, which turns a trace into stress episodes (loss spikes, contraction
  streaks, stagnation at the LR floor, resets, non-finite losses) with their severity,
  recovery time and, when the user logged a data-source tag, whether the loss moved for
  data reasons.

Examples:
    >>> trace = Trace(1)
    >>> for step, loss in enumerate([2.0, 1.5, 1.2], start=1):
    ...     trace.log(source="train-a")
    ...     trace.record(step, loss, loss, [0.1])
    >>> len(trace), trace.losses.tolist()
    (3, [2.0, 1.5, 1.2])
    >>> trace.signal("source")
    ['train-a', 'train-a', 'train-a']

Device mode (the interface the device-resident scheduler uses):
    A scheduler that must not read anything back to the host during ``step`` passes
    tensors instead of numbers, and an event *code* instead of :class:`Event` objects::

        trace.record(step, loss_t, smoothed_t, lrs_t, code=code_t, extra=extra_t)

    * ``step``: a Python int (the host counts steps without a sync).
    * ``loss_t``, ``smoothed_t``: 0-d (or one-element) tensors; ``smoothed_t`` may be None.
    * ``lrs_t``: a 1-d tensor with one LR per group, or a sequence of 0-d tensors.
    * ``code_t``: a 0-d integer tensor of :data:`EVENT_BITS` flags (0 for none), the
      convention of :mod:`greedylr.tensor_rule`: ``CLIPPED`` together with ``INCREASE``
      or ``DECREASE`` means that change was blocked at a bound.
    * ``extra_t`` (optional): a 1-d tensor of further values the decoder needs (the
      rule's reference, the LRs before the change, ...), the same length at every step.
      It reaches the decoder as ``rows.extra`` (shape ``(n, k)``) and is then dropped.

    The trace concatenates them into one small tensor on their device (one kernel, no
    sync, and a copy, so the caller may keep updating its state buffers in place) and
    moves the buffered rows to the host in one transfer when the user reads the trace,
    saves it, or every ``flush_every`` steps. Then the rows with a non-zero code go to
    the decoder, a callable ``decoder(rows: Rows) -> Iterable[Event]`` registered with
    :meth:`Trace.set_decoder`, which returns their events in step order (``rows`` is the
    materialised chunk, with ``rows.lrs_before``, the LRs in force before each row, and
    ``rows.extra``). The default, :func:`decode_events`, writes generic reasons from the
    values. Afterwards the stored code of each row is the OR of the bits of the kinds of
    the events the decoder returned for it, so the ``codes`` column means the same in
    both modes. Signals logged with tensor values are buffered the same way.
"""

from __future__ import annotations

import atexit
import csv
import io
import itertools
import json
import logging
import math
import os
import time
import warnings
import weakref
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from greedylr._extras import requires_extra
from greedylr.events import describe, format_lrs, tag_changes
from greedylr.rule import EVENT_BITS, Event

__all__ = [
    "EVENT_BITS",
    "CSVSink",
    "CallableSink",
    "Diagnosis",
    "Episode",
    "JSONLSink",
    "LoggingSink",
    "Rows",
    "Sink",
    "TensorBoardSink",
    "Trace",
    "decode_events",
    "diagnose",
    "load_trace",
]

logger = logging.getLogger("greedylr")

_FORMAT = "greedylr.trace"
_VERSION = 1
_MISSING_TAG = -1
_SAVE_CHUNK = 50_000
_DEFAULT_MAX_ROWS = 1_000_000

#: Traces with sinks, flushed at interpreter exit; weak, so that a trace dies with its owner.
_WITH_SINKS: weakref.WeakSet[Trace] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """Hand the last rows of every live trace to its sinks (a crashed run keeps its end)."""
    for trace in list(_WITH_SINKS):
        if trace._owner_pid != os.getpid():
            continue  # a forked child: the rows are its parent's to write
        try:
            trace.flush()
            for sink in trace._sinks:
                sink.close()
        except Exception:  # one broken sink must not stop the others
            logger.exception("greedylr: flushing a trace at exit failed")


def _is_tensor(value: Any) -> bool:
    # torch is imported by the scheduler anyway, but the trace itself must load without it
    return type(value).__module__.startswith("torch") and hasattr(value, "device")


# ---------------------------------------------------------------------------------------
# Rows: a materialised chunk, what sinks and decoders receive
# ---------------------------------------------------------------------------------------


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
        events: the events of these rows, in step order.
        extra: device mode only, while decoding: the ``extra`` values of each row,
            ``(n, k)``; None otherwise.
        signals: per-signal values: a float64 array (NaN where not logged) for a numeric
            signal, a list of ``str | None`` for a tag.
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

    def __len__(self) -> int:
        return len(self.step)

    def dicts(self) -> Iterator[dict[str, Any]]:
        """One plain dict per row: step, loss, smoothed, lrs, events (kinds), signals."""
        by_step: dict[int, list[Event]] = {}
        for event in self.events:
            by_step.setdefault(event.step, []).append(event)
        for i in range(len(self.step)):
            step = int(self.step[i])
            row: dict[str, Any] = {
                "step": step,
                "loss": float(self.loss[i]),
                "smoothed": float(self.smoothed[i]),
                "lrs": [float(v) for v in self.lrs[i]],
                "events": [e.kind for e in by_step.get(step, ())],
            }
            for name, values in self.signals.items():
                value = values[i]
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    continue
                row[name] = value if isinstance(value, str) else float(value)
            yield row


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


def _fmt(values: Sequence[float]) -> str:
    return format_lrs(values)


# ---------------------------------------------------------------------------------------
# Sinks
# ---------------------------------------------------------------------------------------


@runtime_checkable
class Sink(Protocol):
    """Receives the trace in chunks of rows, in step order, each row exactly once."""

    def write(self, rows: Rows) -> None:
        """Consume one chunk."""

    def close(self) -> None:
        """Flush and release whatever the sink holds."""


def _json_float(value: float) -> float | str | None:
    # standard JSON has no NaN/Infinity; null and strings keep the file readable by jq,
    # pandas and browsers while the loader restores the exact value
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _json_number(value: float) -> str:
    if value != value:
        return "null"
    if value in (math.inf, -math.inf):
        return '"inf"' if value > 0 else '"-inf"'
    return repr(value)  # a finite float's repr is valid JSON and round-trips exactly


def _from_json_float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _event_json(event: Event) -> dict[str, Any]:
    data = event.to_dict()
    for key in ("loss", "smoothed", "reference"):
        if data[key] is not None:
            data[key] = _json_float(data[key])
    for key in ("lrs_before", "lrs_after"):
        data[key] = [_json_float(v) for v in data[key]]
    return data


def _event_from_json(data: Mapping[str, Any]) -> Event:
    def opt(value: Any) -> float | None:
        return None if value is None else float(value)

    return Event(
        step=int(data["step"]),
        kind=data["kind"],
        reason=data["reason"],
        loss=_from_json_float(data["loss"]),
        smoothed=opt(data["smoothed"]),
        reference=opt(data["reference"]),
        lrs_before=tuple(_from_json_float(v) for v in data["lrs_before"]),
        lrs_after=tuple(_from_json_float(v) for v in data["lrs_after"]),
    )


class _FileSink:
    """A sink that writes a header once, then appends chunks to a text file."""

    def __init__(self, path: str | os.PathLike[str], *, num_groups: int | None = None,
                 meta: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.num_groups = num_groups
        # a reference, not a copy: the scheduler fills the trace's meta after a user
        # attached the sink, and the header is only written with the first chunk
        self.meta = meta if meta is not None else {}
        self._file: io.TextIOBase | None = None

    def _open(self) -> io.TextIOBase:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", newline="", encoding="utf-8")
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict[str, Any]:
        if self._file is not None:
            raise TypeError(
                f"a trace streaming to {self.path} cannot be copied or pickled while the file "
                "is open (two writers would interleave their rows): close the trace first, or "
                "copy GreedyLR's state_dict() instead"
            )
        return self.__dict__.copy()


class JSONLSink(_FileSink):
    """A JSON Lines file: a header line, one line per row, one line per event.

    Full fidelity: :func:`load_trace` restores every value, tag and event (with its
    reason). Non-finite floats are written as ``null`` (NaN) or ``"inf"``/``"-inf"``.
    """

    def write(self, rows: Rows) -> None:
        file = self._open()
        if file.tell() == 0:
            header = {"format": _FORMAT, "version": _VERSION,
                      "num_groups": self.num_groups or rows.lrs.shape[1], "meta": self.meta}
            file.write(json.dumps(header) + "\n")
        by_step: dict[int, list[Event]] = {}
        for event in rows.events:
            by_step.setdefault(event.step, []).append(event)
        # formatted by hand from Python lists: json.dumps of a dict per row is 5x slower
        steps, losses, smoothed = rows.step.tolist(), rows.loss.tolist(), rows.smoothed.tolist()
        lrs, codes = rows.lrs.tolist(), rows.code.tolist()
        columns = {name: v.tolist() if isinstance(v, np.ndarray) else v
                   for name, v in rows.signals.items()}
        lines = []
        for i, step in enumerate(steps):
            line = (f'{{"step": {step}, "loss": {_json_number(losses[i])}, '
                    f'"smoothed": {_json_number(smoothed[i])}, '
                    f'"lrs": [{", ".join(map(_json_number, lrs[i]))}], "code": {codes[i]}')
            if columns:
                signals: dict[str, float | str | None] = {}
                for name, values in columns.items():
                    value = values[i]
                    if isinstance(value, str):
                        signals[name] = value
                    elif value is not None and value == value:  # not NaN
                        signals[name] = _json_float(value)
                if signals:
                    line += f', "signals": {json.dumps(signals)}'
            lines.append(line + "}")
            for event in by_step.get(step, ()):
                lines.append(json.dumps({"event": _event_json(event)}))
        file.write("\n".join(lines) + ("\n" if lines else ""))
        file.flush()


class CSVSink(_FileSink):
    """A CSV file: ``step, loss, smoothed, lr_0..lr_{G-1}, events, reasons`` and signals.

    A first comment line (``# greedylr.trace ...``) holds the metadata. ``events`` lists
    the kinds of a row's events separated by ``|``, ``reasons`` their reasons separated by
    `` | ``; empty cells are missing values. A tag whose every value looks like a number
    is read back as a numeric signal (JSONL keeps the type). The signal columns are fixed
    by the first chunk: log signals from the first step on (a signal that appears later
    is left out of a streaming CSV, with a warning; :meth:`Trace.save` writes them all).
    """

    def __init__(self, path: str | os.PathLike[str], *, num_groups: int | None = None,
                 meta: Mapping[str, Any] | None = None) -> None:
        super().__init__(path, num_groups=num_groups, meta=meta)
        self._signals: list[str] | None = None
        self._groups = 0
        self._warned: set[str] = set()
        self._writer: Any = None

    def write(self, rows: Rows) -> None:
        file = self._open()
        if self._signals is None:
            self._signals = list(rows.signals)
            groups = self._groups = rows.lrs.shape[1] or self.num_groups or 0
            file.write(f"# {_FORMAT} {json.dumps({'version': _VERSION, 'meta': self.meta})}\n")
            self._writer = csv.writer(file, lineterminator="\n")
            self._writer.writerow(["step", "loss", "smoothed",
                                   *[f"lr_{g}" for g in range(groups)],
                                   "events", "reasons", *self._signals])
        if rows.lrs.shape[1] > self._groups and "lr columns" not in self._warned:
            self._warned.add("lr columns")
            logger.warning("CSV sink %s: parameter groups were added after the header; their "
                           "LRs are left out of this file (Trace.save writes every group)",
                           self.path)
        for name in set(rows.signals) - set(self._signals) - self._warned:
            self._warned.add(name)
            logger.warning("CSV sink %s: signal %r appeared after the header; it is left "
                           "out of this file (Trace.save writes every signal)", self.path, name)
        by_step: dict[int, list[Event]] = {}
        for event in rows.events:
            by_step.setdefault(event.step, []).append(event)

        def cell(value: Any) -> str:
            if value is None:
                return ""
            if isinstance(value, str):
                return value
            value = float(value)
            return "" if math.isnan(value) else repr(value)

        for i in range(len(rows)):
            step = int(rows.step[i])
            events = by_step.get(step, [])
            self._writer.writerow([
                step, cell(rows.loss[i]) or "nan", cell(rows.smoothed[i]),
                *[cell(v) for v in rows.lrs[i, :self._groups]],
                "|".join(e.kind for e in events), " | ".join(e.reason for e in events),
                *[cell(rows.signals[name][i]) if name in rows.signals else ""
                  for name in self._signals],
            ])
        file.flush()


class TensorBoardSink:
    """Scalars and event text for TensorBoard, through a ``SummaryWriter``.

    Writes ``{prefix}/loss``, ``{prefix}/smoothed``, ``{prefix}/lr`` (or ``lr/group{g}``
    with several groups), one scalar ``{prefix}/events/{kind}`` = 1 at every step with
    such an event, numeric signals as ``{prefix}/signals/{name}``, and the event reasons
    and tag changes as text under ``{prefix}/events`` and ``{prefix}/signals/{name}``.

    Args:
        writer: a ``torch.utils.tensorboard.SummaryWriter`` (or anything with its
            ``add_scalar``/``add_text``), or a log directory to create one in.
        prefix: the tag prefix.
        every: write the per-step scalars every this many steps (events always).
    """

    def __init__(self, writer: Any, *, prefix: str = "greedylr", every: int = 1) -> None:
        if not (isinstance(every, int) and every >= 1):
            raise ValueError(f"every must be an int >= 1, got {every!r}")
        if isinstance(writer, (str, os.PathLike)):
            with requires_extra("tensorboard", "the TensorBoard sink"):
                from torch.utils.tensorboard import SummaryWriter

            writer, self._owned = SummaryWriter(log_dir=str(writer)), True
        else:
            self._owned = False
        self.writer = writer
        self.prefix = prefix
        self.every = every
        self._last_tags: dict[str, str | None] = {}

    def write(self, rows: Rows) -> None:
        p, add = self.prefix, self.writer.add_scalar
        groups = rows.lrs.shape[1]
        for i in range(len(rows)):
            step = int(rows.step[i])
            if step % self.every == 0:
                add(f"{p}/loss", float(rows.loss[i]), step)
                if not math.isnan(rows.smoothed[i]):
                    add(f"{p}/smoothed", float(rows.smoothed[i]), step)
                for g in range(groups):
                    add(f"{p}/lr" if groups == 1 else f"{p}/lr/group{g}",
                        float(rows.lrs[i, g]), step)
                for name, values in rows.signals.items():
                    value = values[i]
                    if not isinstance(value, str) and value is not None \
                            and not math.isnan(value):
                        add(f"{p}/signals/{name}", float(value), step)
            for name, values in rows.signals.items():
                value = values[i]
                if (value is None or isinstance(value, str)) and value is not None \
                        and value != self._last_tags.get(name):
                    self.writer.add_text(f"{p}/signals/{name}", value, step)
                    self._last_tags[name] = value
        for event in rows.events:
            add(f"{p}/events/{event.kind}", 1.0, event.step)
            self.writer.add_text(f"{p}/events", event.reason, event.step)

    def close(self) -> None:
        self.writer.flush()
        if self._owned:
            self.writer.close()


class LoggingSink:
    """Every event's reason to a Python logger; optionally a one-line row every N steps.

    Args:
        logger: the logger (default: ``logging.getLogger("greedylr")``), or its name.
        level: the level of event records.
        every: also log ``step, loss, smoothed, lr`` every this many steps, at DEBUG
            (0: never).
    """

    def __init__(self, logger: logging.Logger | str | None = None, *, level: int = logging.INFO,
                 every: int = 0) -> None:
        if not (isinstance(every, int) and every >= 0):
            raise ValueError(f"every must be an int >= 0, got {every!r}")
        if logger is None or isinstance(logger, str):
            logger = logging.getLogger(logger or "greedylr")
        self.logger = logger
        self.level = level
        self.every = every

    def write(self, rows: Rows) -> None:
        if self.every:
            for i in np.flatnonzero(rows.step % self.every == 0):
                self.logger.debug("step %d: loss %.6g, smoothed %.6g, lr %s", int(rows.step[i]),
                                  rows.loss[i], rows.smoothed[i], _fmt(rows.lrs[i]))
        for event in rows.events:
            self.logger.log(self.level, "%s", event.reason,
                            extra={"greedylr_event": event.to_dict()})

    def close(self) -> None:
        return None


class CallableSink:
    """Calls ``fn(row)`` once per row with the plain dict of :meth:`Rows.dicts`.

    Examples:
        >>> seen = []
        >>> trace = Trace(1, sinks=[seen.append], flush_every=1)
        >>> trace.record(1, 0.5, 0.5, [0.1])
        >>> seen[0]["loss"], seen[0]["lrs"]
        (0.5, [0.1])
    """

    def __init__(self, fn: Callable[[dict[str, Any]], Any]) -> None:
        if not callable(fn):
            raise TypeError(f"a callable sink must be callable, got {fn!r}")
        self.fn = fn

    def write(self, rows: Rows) -> None:
        for row in rows.dicts():
            self.fn(row)

    def close(self) -> None:
        return None


def _as_sink(sink: Any, num_groups: int | None, meta: Mapping[str, Any]) -> Sink:
    if isinstance(sink, (str, os.PathLike)):
        suffix = Path(sink).suffix.lower()
        if suffix in (".jsonl", ".json"):
            return JSONLSink(sink, num_groups=num_groups, meta=meta)
        if suffix == ".csv":
            return CSVSink(sink, num_groups=num_groups, meta=meta)
        raise ValueError(f"a sink path must end in .jsonl or .csv, got {str(sink)!r}")
    if isinstance(sink, logging.Logger):
        return LoggingSink(sink)
    if hasattr(sink, "add_scalar") and hasattr(sink, "add_text"):
        return TensorBoardSink(sink)
    if isinstance(sink, Sink):
        return sink
    if callable(sink):
        return CallableSink(sink)
    raise TypeError(
        "a sink must be a .jsonl/.csv path, a SummaryWriter, a logging.Logger, an object "
        f"with write(rows)/close(), or a callable; got {sink!r}"
    )


# ---------------------------------------------------------------------------------------
# The trace
# ---------------------------------------------------------------------------------------


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
        self._sinks: list[Sink] = []
        self._sunk = 0  # rows (in memory, counted from index 0) already given to the sinks
        self._sunk_events = 0
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
        """Also send the rows to ``sink`` from now on, including those not yet sent.

        Args:
            sink: a :class:`Sink`; a path ending in ``.jsonl`` or ``.csv``; a
                ``SummaryWriter``; a ``logging.Logger``; or a callable, called with one
                plain dict per row.

        Returns:
            The sink, wrapped if needed (keep it to close it yourself).
        """
        wrapped = _as_sink(sink, self.num_groups, self.meta)
        self._sinks.append(wrapped)
        _WITH_SINKS.add(self)
        self._owner_pid = os.getpid()
        self._set_flush_at()
        return wrapped

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

    def set_decoder(self, decoder: Callable[[Rows], Iterable[Event]]) -> None:
        """Turn device-mode rows (recorded with ``code=``) into events with ``decoder``."""
        if not callable(decoder):
            raise TypeError(f"decoder must be callable, got {decoder!r}")
        self._decoder = decoder

    def log(self, **signals: Any) -> None:
        """Attach signals to the next recorded step: numbers, 0-d tensors, or tags (str).

        Call it before ``sched.step(loss)`` in the same iteration. A signal's type is
        fixed by its first value; a step where it is not logged reads NaN (numeric) or
        None (tag).

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
                kind is str if not column.numeric else kind is float or kind is int
            ):
                pending[name] = value  # the common case: a known signal, a plain value
                continue
            if name in ("step", "loss", "smoothed", "lrs", "code", "events"):
                raise ValueError(f"signal name {name!r} is reserved")
            numeric = not isinstance(value, str)
            if numeric and value is not None and not _is_tensor(value):
                if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                    raise TypeError(
                        f"signal {name!r} must be a number, a 0-d tensor or a str, got {value!r}"
                    )
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
                flags, decoded into events at flush time (see the module docstring).
            extra: device mode: a 1-d tensor of values for the decoder (``rows.extra``).
        """
        # the host path runs every step of every run: no allocation it can avoid
        signals = self._pending_signals
        if signals:
            self._pending_signals = {}
        if type(loss) is not float and _is_tensor(loss):
            self._record_device(step, loss, smoothed, lrs, code, extra, signals)
            return
        if self._device_rows:
            self._materialise()
        bits = 0
        for event in events:
            bits |= EVENT_BITS[event.kind]
        if code:
            bits |= int(code)
        self._append(step, loss, math.nan if smoothed is None else smoothed, lrs, bits, signals)
        if events:
            self._events.extend(events)
        elif code:
            index = len(self._steps) - 1
            rows = self._rows(index, index + 1, events=False)
            if extra is not None:
                rows.extra = np.asarray(extra, dtype=np.float64).reshape(1, -1)
            self._store_decoded(index, list(self._decoder(rows)))
        if len(self._steps) >= self._flush_at or (
            self._sinks and time.monotonic() >= self._flush_time
        ):
            self.flush()

    def _append(self, step: int, loss: float, smoothed: float, lrs: Sequence[float], code: int,
                signals: Mapping[str, Any]) -> None:
        if len(lrs) != self.num_groups:
            if self.num_groups is not None:
                raise ValueError(f"expected {self.num_groups} learning rates, got {len(lrs)}")
            self.num_groups = len(lrs)
            self._lrs = [array("d") for _ in lrs]
        # array.append converts (and type-checks) ints, floats and NumPy scalars itself
        try:
            self._steps.append(step)
            self._losses.append(loss)
            self._smoothed.append(smoothed)
            if self.num_groups == 1:  # the usual case; a zip costs a third of this call
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
                if _is_tensor(value):
                    value = float(value)
            column.values.append(column.encode(value))
        if known < len(signals):  # a signal seen for the first time: a new column
            rows = len(self._steps) - 1
            for name, value in signals.items():
                if name not in self._signals:
                    column = self._signals[name] = _Signal(not isinstance(value, str), rows)
                    column.values.append(column.encode(
                        float(value) if _is_tensor(value) else value))

    def _store_decoded(self, first: int, events: list[Event]) -> None:
        """Keep decoded events; make the code of rows ``first..`` the OR of their kinds."""
        codes: dict[int, int] = {}
        for event in events:
            codes[event.step] = codes.get(event.step, 0) | EVENT_BITS[event.kind]
        for i in range(first, len(self._steps)):
            if self._codes[i]:
                self._codes[i] = codes.get(self._steps[i], 0)
        self._events.extend(events)

    def _record_device(self, step: int, loss: Any, smoothed: Any, lrs: Any, code: Any,
                       extra: Any, signals: dict[str, Any]) -> None:
        import torch

        parts = [loss.reshape(1)]
        parts.append(smoothed.reshape(1) if _is_tensor(smoothed)
                     else torch.full((1,), math.nan if smoothed is None else float(smoothed),
                                     device=loss.device, dtype=loss.dtype))
        count = lrs.numel() if _is_tensor(lrs) else len(lrs)
        if _is_tensor(lrs):
            parts.append(lrs.reshape(-1))
        else:
            parts.extend(v.reshape(1) if _is_tensor(v)
                         else torch.full((1,), float(v), device=loss.device, dtype=loss.dtype)
                         for v in lrs)
        if _is_tensor(code):
            parts.append(code.reshape(1))
        else:
            parts.append(torch.full((1,), int(code or 0), device=loss.device, dtype=loss.dtype))
        if extra is not None:
            parts.append(extra.reshape(-1) if _is_tensor(extra) else torch.as_tensor(
                extra, device=loss.device, dtype=loss.dtype).reshape(-1))
        # one small kernel (cat promotes the dtypes) and a copy: the caller may update
        # its own buffers in place
        self._push_device_row(step, torch.cat(parts), count, signals)

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
            self._sinks and time.monotonic() >= self._flush_time
        ):
            self.flush()

    def _materialise(self) -> None:
        """Move the buffered device rows to the host (one transfer) and decode them."""
        if not self._device_rows:
            return
        import torch

        stacked = torch.stack(self._device_rows).reshape(len(self._device_rows), -1)
        values = stacked.to("cpu", torch.float64).numpy()
        steps, signal_rows = self._device_steps, self._device_signals
        self._device_rows, self._device_steps, self._device_signals = [], [], []
        assert self.num_groups is not None  # set by the first device row
        width = self.num_groups + 3  # loss, smoothed, lrs, code; then the extra values
        # tensor-valued signals: one transfer per signal name
        tensors: dict[str, list[tuple[int, Any]]] = {}
        for i, signals in enumerate(signal_rows):
            for name, value in signals.items():
                if _is_tensor(value):
                    tensors.setdefault(name, []).append((i, value))
        for name, items in tensors.items():
            host = torch.stack([v.reshape(()) for _, v in items]).to("cpu", torch.float64)
            for (i, _), value in zip(items, host.tolist(), strict=True):
                signal_rows[i][name] = value
        first = len(self._steps)
        for i, step in enumerate(steps):
            row = values[i]
            self._append(step, float(row[0]), float(row[1]), row[2:width - 1].tolist(),
                         int(row[width - 1]), signal_rows[i])
        if np.any(values[:, width - 1]):
            rows = self._rows(first, len(self._steps), events=False)
            rows.extra = values[:, width:]
            self._store_decoded(first, list(self._decoder(rows)))

    def flush(self) -> None:
        """Materialise buffered device rows and hand every new row to the sinks."""
        self._materialise()
        if self._sinks and len(self._steps) > self._sunk:
            rows = self._rows(self._sunk, len(self._steps), events=False)
            first = int(rows.step[0])
            new_events = self._events[self._sunk_events:]
            rows.events = [e for e in new_events if e.step >= first]
            for sink in self._sinks:
                sink.write(rows)
            self._sunk_events = len(self._events)
        self._sunk = len(self._steps)
        self._trim()
        self._set_flush_at()

    def _set_flush_at(self) -> None:
        """The row count at which :meth:`record` next flushes (sinks, or trimming)."""
        at = math.inf
        if self.flush_every:
            at = self._sunk + self.flush_every
        if self.max_rows is not None:
            at = min(at, self.max_rows + self.max_rows // 4 + 1)
        self._flush_at = at
        if self._sinks and self.flush_every and self.flush_interval is not None:
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
        """Flush, then close every sink (files, writers). The trace stays readable."""
        self.flush()
        for sink in self._sinks:
            sink.close()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._sinks:
            _WITH_SINKS.add(self)

    def __enter__(self) -> Trace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
                before[0] = self.meta.get("base_lrs") or lrs[0]
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
        )
        if events and len(rows):
            first, last = int(rows.step[0]), int(rows.step[-1])
            rows.events = [e for e in self._events if first <= e.step <= last]
        return rows

    def rows(self) -> Rows:
        """Everything in memory as one :class:`Rows` chunk (with its events)."""
        self._materialise()
        return self._rows(0, len(self._steps))

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
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".jsonl", ".json", ".csv"):
            raise ValueError(f"save path must end in .jsonl or .csv, got {str(path)!r}")
        if self._dropped:
            logger.warning("Trace.save: the first %d rows were dropped by max_rows=%d and are "
                           "not saved", self._dropped, self.max_rows)
        self._materialise()
        tmp = path.with_name(f".{path.name}.tmp")
        sink = (CSVSink if suffix == ".csv" else JSONLSink)(
            tmp, num_groups=self.num_groups, meta=self.meta)
        try:
            rows = len(self._steps)
            if not rows:  # still write the header
                sink.write(self._rows(0, 0))
            # in chunks: a million rows as one list of JSON lines would double the memory
            for start in range(0, rows, _SAVE_CHUNK):
                sink.write(self._rows(start, min(rows, start + _SAVE_CHUNK)))
        finally:
            sink.close()
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trace:
        """Read a trace written by :meth:`save`, a :class:`JSONLSink` or a :class:`CSVSink`."""
        return load_trace(path)


def load_trace(path: str | os.PathLike[str]) -> Trace:
    """Read a ``.jsonl`` or ``.csv`` trace file back into a :class:`Trace`.

    JSONL restores everything. CSV restores the rows, signals, event kinds and reasons;
    an event's ``reference`` is None and ``lrs_before`` is the previous row's LRs.
    A last line cut short (what a killed process leaves) is dropped with a warning that
    names the file and the line; everything before it is kept. Every row is kept in
    memory (no ``max_rows``).

    Raises:
        ValueError: if the file is not a greedylr trace, or a line other than the last
            is malformed; the message names the file (and the line).
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as file:
            first = file.readline()
            if first.startswith(f"# {_FORMAT}"):
                return _load_csv(path, first, file)
            try:
                header = json.loads(first)
            except json.JSONDecodeError:
                header = None
            if not isinstance(header, dict) or header.get("format") != _FORMAT:
                raise ValueError(f"{path} is not a greedylr trace (no {_FORMAT} header)")
            return _load_jsonl(path, header, file)
    except (UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError, IndexError) as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: {type(exc).__name__}: {exc}") from exc


def _cut_short(path: Path, number: int, problem: str, kept: int) -> None:
    warnings.warn(f"{path}: line {number} is cut short ({problem}); it is dropped and the "
                  f"{kept} rows before it are kept", stacklevel=4)


class _Columns:
    """Rows read from a file, gathered in lists and appended to a trace in one go."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.lrs: list[list[float]] = []
        self.codes: list[int] = []
        self.signals: dict[str, list[tuple[int, Any]]] = {}

    def add(self, step: int, loss: float, smoothed: float, lrs: Sequence[float], code: int,
            signals: Mapping[str, Any]) -> None:
        row = len(self.steps)
        self.steps.append(step)
        self.losses.append(loss)
        self.smoothed.append(smoothed)
        self.lrs.append(list(lrs))
        self.codes.append(code)
        for name, value in signals.items():
            self.signals.setdefault(name, []).append((row, value))

    def into(self, trace: Trace) -> Trace:
        n = len(self.steps)
        # parameter groups added during the run: the rows before have fewer LRs
        counts = [len(r) for r in self.lrs]
        if any(b < a for a, b in itertools.pairwise(counts)):
            raise ValueError("rows lose learning rates along the file: "
                             f"from {max(counts)} back to {min(counts)}")
        width = max(counts, default=trace.num_groups or 0)
        if trace.num_groups is not None and width < trace.num_groups and counts:
            raise ValueError(f"rows have {width} learning rates, the trace {trace.num_groups}")
        if counts and trace.num_groups != width:
            trace.num_groups = width
            trace._lrs = [array("d") for _ in range(width)]
        if counts and min(counts) < width:
            self.lrs = [r + [math.nan] * (width - len(r)) for r in self.lrs]
        trace._steps.extend(self.steps)
        trace._losses.extend(self.losses)
        trace._smoothed.extend(self.smoothed)
        for g, column in enumerate(trace._lrs):
            column.extend([r[g] for r in self.lrs])
        trace._codes.extend(self.codes)
        for name, items in self.signals.items():
            signal = trace._signals[name] = _Signal(not isinstance(items[0][1], str), n)
            for row, value in items:
                signal.values[row] = signal.encode(value)
        return trace


def _load_jsonl(path: Path, header: Mapping[str, Any], file: io.TextIOBase) -> Trace:
    if header.get("version") != _VERSION:
        raise ValueError(f"{path}: unsupported trace version {header.get('version')!r}")
    trace = Trace(int(header["num_groups"]) or None, flush_every=0, max_rows=None,
                  meta=header.get("meta") or {})
    columns = _Columns()
    number = _from_json_float
    lines = file.readlines()
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if "event" in data:
                trace._events.append(_event_from_json(data["event"]))
                continue
            signals = data.get("signals") or {}
            if signals:
                signals = {k: (v if isinstance(v, str) else number(v))
                           for k, v in signals.items()}
            columns.add(int(data["step"]), number(data["loss"]), number(data["smoothed"]),
                        [number(v) for v in data["lrs"]], int(data.get("code", 0)), signals)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
            if index == len(lines) - 1 and not line.endswith("\n"):
                _cut_short(path, index + 2, problem, len(columns.steps))
                break
            raise ValueError(f"{path}, line {index + 2}: {problem}") from exc
    return columns.into(trace)


def _load_csv(path: Path, first: str, file: io.TextIOBase) -> Trace:
    info = json.loads(first[len(f"# {_FORMAT}"):])
    if info.get("version") != _VERSION:
        raise ValueError(f"{path}: unsupported trace version {info.get('version')!r}")
    text = file.read()
    complete = text.endswith("\n")
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    groups = [h for h in header if h.startswith("lr_")]
    start = 3 + len(groups) + 2
    names = header[start:]
    table = []
    try:
        for r in reader:
            table.append((reader.line_num + 1, r))
    except csv.Error as exc:  # a quoted cell cut in the middle
        if not complete:
            _cut_short(path, reader.line_num + 1, f"csv: {exc}", len(table))
        else:
            raise ValueError(f"{path}, line {reader.line_num + 1}: csv: {exc}") from exc
        complete = True
    if table and not complete:  # the sink ends every row with a newline
        line, r = table.pop()
        _cut_short(path, line, f"no end of line, {len(r)} of {len(header)} cells", len(table))
    for line, r in table:
        if len(r) != len(header):
            raise ValueError(f"{path}, line {line}: {len(r)} cells, the header has "
                             f"{len(header)}")
    numeric = {}
    for j, name in enumerate(names):
        cells = [r[start + j] for _, r in table if r[start + j] != ""]
        try:
            [float(c) for c in cells]
            numeric[name] = True
        except ValueError:
            numeric[name] = False
    trace = Trace(len(groups) or None, flush_every=0, max_rows=None, meta=info.get("meta") or {})
    columns = _Columns()

    def num(cell: str) -> float:
        return math.nan if cell == "" else float(cell)

    previous: tuple[float, ...] = tuple(trace.meta.get("base_lrs") or ())
    for line, r in table:
        try:
            step, lrs = int(r[0]), [num(c) for c in r[3:3 + len(groups)]]
            loss, smoothed = num(r[1]), num(r[2])
        except ValueError as exc:
            raise ValueError(f"{path}, line {line}: {exc}") from exc
        kinds = [k for k in r[3 + len(groups)].split("|") if k]
        reasons = r[4 + len(groups)].split(" | ") if kinds else []
        signals = {}
        for j, name in enumerate(names):
            cell = r[start + j]
            if cell != "":
                signals[name] = float(cell) if numeric[name] else cell
        code = 0
        for kind in kinds:
            if kind not in EVENT_BITS:
                raise ValueError(f"{path}, line {line}: unknown event kind {kind!r} at step {step}")
            code |= EVENT_BITS[kind]
        columns.add(step, loss, smoothed, lrs, code, signals)
        before = previous or tuple(lrs)
        for kind, reason in zip(kinds, reasons, strict=False):
            trace._events.append(Event(step, kind, reason, loss,  # type: ignore[arg-type]
                                       None if math.isnan(smoothed) else smoothed, None,
                                       before, tuple(lrs)))
        previous = tuple(lrs)
    return columns.into(trace)


# ---------------------------------------------------------------------------------------
# diagnose: stress episodes
# ---------------------------------------------------------------------------------------

_MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


@dataclass
class Episode:
    """One stretch of stress in a run.

    Attributes:
        kind: ``"loss_spike"`` (the raw loss rose well above its recent level),
            ``"contraction"`` (a streak of LR decreases without an increase),
            ``"floor"`` (the LR stuck at its lower bound), ``"reset"`` or ``"nonfinite"``.
        start: first step of the episode.
        end: last step of the episode.
        severity: how bad, in ``severity_unit``: for a loss spike, the peak excess of the
            loss (median of a few steps) over its pre-episode level in units of the
            pre-episode noise (robust sigma); for a contraction, the factor the LR was
            divided by; for the floor, steps at the floor; for resets and non-finite
            losses, how many.
        severity_unit: ``"sigma"``, ``"x lr cut"``, ``"steps"`` or ``"count"``.
        recovery_steps: steps from ``start`` until the smoothed loss is back at or under
            its level just before the episode; None if it never is within the trace.
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
        return {
            "kind": self.kind, "start": self.start, "end": self.end,
            "severity": self.severity, "severity_unit": self.severity_unit,
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


def _rolling_median(x: np.ndarray, width: int) -> np.ndarray:
    """Median of ``x[t-width+1 .. t]`` (NaN ignored; NaN where fewer than one value)."""
    padded = np.concatenate([np.full(width - 1, np.nan), x])
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    with np.errstate(all="ignore"), _quiet_nan_warnings():
        return np.nanmedian(windows, axis=1)


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


def _tag_changes(tags: list[str | None]) -> list[tuple[int, str, str]]:
    """(index, old, new) wherever a tag differs from the last logged one."""
    return tag_changes(tags)


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

    Loss spikes are found on the raw loss with robust statistics: the median of the last
    ``short`` steps is compared with the median of the ``window`` steps before them, in
    units of their robust sigma (1.4826 MAD). An episode opens where that excess passes
    ``threshold`` sigma and stays open while the short median stays above half of it; its
    start and end are then set to the first and last raw step above that level. The level
    before an episode is frozen while it runs, so a long bad stretch does not become the
    new normal. The rest comes from the event column: streaks of at least
    ``min_decreases`` LR decreases, no increase between them and at most ``max_gap`` steps
    apart, that cut the LR to at most ``max_lr_cut`` of its value; stretches at the lower
    LR bound with at least ``min_floor_blocks`` blocked decreases; resets; non-finite
    losses.

    When the trace holds a tag signal (for example ``trace.log(source="shard-7")``), an
    episode that starts within ``coincide`` steps of a change of that tag is marked
    ``cause="data"``: the loss moved because the data changed. Numeric signals (a gradient
    norm) are summarised for each episode as their peak over their pre-episode median.

    Calibration (``examples/pulse_demo.py``: an MLP on scikit-learn's digits, AdamW,
    GreedyLR defaults, 800 steps): over 10 seeds the clean runs reach at most 3.8 sigma
    and an LR cut of 1.51x (8 decreases in a row), so the defaults (8 sigma, a cut to half)
    report nothing; 20 steps of shuffled labels reach 130 to 170 sigma and a 3.6x to 10x
    LR cut (seeds 0-2). ``tests/test_diagnose.py`` checks both on real runs.

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

    rows = trace.rows()
    n = len(rows)
    if n == 0:
        return Diagnosis([], "empty trace: nothing to diagnose", 0)
    config = trace.meta.get("config") or {}
    if max_gap is None:
        patience = config.get("patience")
        max_gap = 2 * (patience + config.get("cooldown", 0) + 1) if patience is not None else 25
    coincide = short if coincide is None else coincide
    window = window or min(200, max(20, n // 10))

    steps = rows.step
    loss = np.where(np.isfinite(rows.loss), rows.loss, np.nan)
    # the smoothed loss the rule used; the short median where it has none
    recent = _rolling_median(loss, short)
    smoothed = np.where(np.isfinite(rows.smoothed), rows.smoothed, recent)
    lr_mean = rows.lrs.mean(axis=1)

    episodes = _loss_episodes(steps, loss, recent, smoothed, window, threshold, short)
    episodes += _event_episodes(rows, lr_mean, smoothed, trace.meta, min_decreases, max_lr_cut,
                                max_gap, min_floor_blocks)
    episodes.sort(key=lambda e: (e.start, e.end))
    _share_recovery(episodes)
    # the rule reacts to a change of data up to patience + cooldown steps late
    _attach_signals(episodes, rows, coincide, coincide + max_gap // 2)
    return Diagnosis(episodes, _summary(episodes, n, steps), n)


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
                   short: int) -> list[Episode]:
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
        ratio = f", {peak / base:.3g}x" if base > 0 else ""
        detail = (f"loss rose to {peak:.4g} (median of {short} steps) against {base:.4g} before"
                  f"{ratio}, {severity:.1f} sigma, for {int(steps[last] - steps[first]) + 1} steps")
        episodes.append(Episode("loss_spike", int(steps[first]), int(steps[last]),
                                round(severity, 2), "sigma", recovery, detail))
        t = end + 1
    return episodes


def _event_episodes(rows: Rows, lr_mean: np.ndarray, smoothed: np.ndarray,
                    meta: Mapping[str, Any], min_decreases: int, max_lr_cut: float,
                    max_gap: int, min_floor_blocks: int) -> list[Episode]:
    steps, code = rows.step, rows.code
    episodes: list[Episode] = []
    dec, inc = EVENT_BITS["decrease"], EVENT_BITS["increase"] | EVENT_BITS["reset"]

    # contraction streaks: consecutive decreases with no increase or reset in between
    streak: list[int] = []

    def close_streak() -> None:
        if len(streak) < min_decreases:
            return
        i, j = streak[0], streak[-1]
        before = float(rows.lrs_before[i].mean())
        after = float(lr_mean[j])
        if before <= 0 or after / before > max_lr_cut:
            return
        cut = before / after
        recovery, _ = _recovery(steps, smoothed, i)
        detail = (f"{len(streak)} LR decreases without an increase over "
                  f"{int(steps[j] - steps[i]) + 1} steps: lr {before:.4g} -> {after:.4g} "
                  f"(/{cut:.3g})")
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

    # floor: every group at its lower bound, with decreases blocked there
    floors = meta.get("min_lrs")
    lrs = rows.lrs
    if floors is not None and len(floors) == lrs.shape[1]:
        at_floor = np.all(lrs <= np.asarray(floors, dtype=np.float64) * (1 + 1e-9), axis=1)
    else:
        # without the bounds: the lowest LR of the run, where a change was blocked
        at_floor = np.all(np.isclose(lrs, lrs.min(axis=0), rtol=1e-9, atol=0), axis=1)
        if not np.any(at_floor & ((code & EVENT_BITS["clipped"]) > 0)):
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
                                f"LR at its lower bound ({_fmt(lrs[a])}) for {length} steps "
                                f"{left}; {blocks} decreases blocked"))

    for i in np.flatnonzero(code & EVENT_BITS["reset"]):
        recovery, _ = _recovery(steps, smoothed, int(i))
        episodes.append(Episode("reset", int(steps[i]), int(steps[i]), 1.0, "count", recovery,
                                f"reset at step {steps[i]}: lr {_fmt(rows.lrs_before[i])} -> "
                                f"{_fmt(lrs[i])} after the LR was stuck at its lower bound"))

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
    changes = {name: _tag_changes(values) for name, values in tags.items()}
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


def _summary(episodes: list[Episode], n: int, steps: np.ndarray) -> str:
    span = f"{n} steps ({int(steps[0])}-{int(steps[-1])})"
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
        text += (f" Worst loss spike at steps {worst.start}-{worst.end} "
                 f"({worst.severity:.1f} sigma), {rec}.")
    data = [e for e in episodes if e.cause == "data"]
    if data:
        text += f" {len(data)} coincide with a change of data source."
    unrecovered = [e for e in episodes if e.recovery_steps is None and e.kind != "loss_spike"]
    if unrecovered:
        text += f" {len(unrecovered)} other episode(s) not recovered by the end."
    return text

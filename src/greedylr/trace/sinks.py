"""Sinks: where the trace's rows go as they are recorded, in chunks and in step order.

JSONL and CSV files (read back by :func:`~greedylr.trace.load_trace`), TensorBoard,
Python ``logging`` and any callable; ``_as_sink`` turns what a user passes into one.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from greedylr._extras import requires_extra
from greedylr.events import format_lrs
from greedylr.trace.fileformat import _FORMAT, _VERSION, _event_json, _json_float, _json_number
from greedylr.trace.rows import Rows

logger = logging.getLogger("greedylr")


@runtime_checkable
class Sink(Protocol):
    """Receives the trace in chunks of rows, in step order, each row exactly once."""

    def write(self, rows: Rows) -> None:
        """Consume one chunk."""

    def close(self) -> None:
        """Flush and release whatever the sink holds."""


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
        by_step = rows.events_by_step()
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
        by_step = rows.events_by_step()

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
                if isinstance(value, str) and value != self._last_tags.get(name):
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
                                  rows.loss[i], rows.smoothed[i], format_lrs(rows.lrs[i]))
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

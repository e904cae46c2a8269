"""Trace files: :func:`save_trace` writes a trace through a sink, :func:`load_trace` reads
a ``.jsonl`` or ``.csv`` file back into a new :class:`~greedylr.trace.Trace` (through its
public :meth:`~greedylr.trace.Trace.extend`).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from greedylr.rule import EVENT_BITS, Event
from greedylr.trace.fileformat import _FORMAT, _VERSION, _event_from_json, _from_json_float
from greedylr.trace.recorder import Trace
from greedylr.trace.rows import Rows, lrs_before_first
from greedylr.trace.sinks import CSVSink, JSONLSink, csv_columns

logger = logging.getLogger("greedylr")

_SAVE_CHUNK = 50_000


def save_trace(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """Write ``trace`` to ``path`` (what :meth:`Trace.save` does).

    In chunks of rows (a million rows as one list of JSON lines would double the memory),
    to a temporary name renamed at the end, so that a reader never sees half a file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".csv"):
        raise ValueError(f"save path must end in .jsonl or .csv, got {str(path)!r}")
    target = path.resolve()
    for sink in trace._file_sinks():
        if sink.path.resolve() == target:
            raise ValueError(
                f"{path} is the file a sink of this trace streams to: saving over it would "
                "replace the streamed file (with only the rows in memory) under the sink, "
                "and the sink would refuse to append to it; save to another path (or "
                "trace.flush() to bring the streamed file up to date)")
    if trace.dropped:
        logger.warning("Trace.save: the first %d rows were dropped by max_rows=%d and are "
                       "not saved", trace.dropped, trace.max_rows)
    tmp = path.with_name(f".{path.name}.tmp")
    sink = (CSVSink if suffix == ".csv" else JSONLSink)(
        tmp, num_groups=trace.num_groups, meta=trace.meta)
    try:
        rows = len(trace)  # device rows included: each becomes one row in memory
        if not rows:  # still write the header
            sink.write(trace.rows())
        for start in range(0, rows, _SAVE_CHUNK):
            sink.write(trace.rows(start, min(rows, start + _SAVE_CHUNK)))
    finally:
        sink.close()
    os.replace(tmp, path)
    return path


def load_trace(path: str | os.PathLike[str]) -> Trace:
    """Read a ``.jsonl`` or ``.csv`` trace file back into a :class:`Trace`.

    JSONL restores everything. CSV restores the rows, signals, event kinds and reasons;
    an event's ``reference`` is None and ``lrs_before`` is the previous row's LRs.
    A last line cut short (what a killed process leaves) is dropped with a warning that
    names the file and the line; everything before it is kept. Every row is kept in
    memory (no ``max_rows``).

    Raises:
        ValueError: if the file is not a greedylr trace, is cut short before its first
            row (in its header), or a line other than the last is malformed; the message
            names the file (and the line).
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as file:
            first = file.readline()
            if first and not first.endswith("\n") and any(
                    first.startswith(mark) or mark.startswith(first) for mark in _MARKS):
                raise ValueError(f"{path}: a greedylr trace cut short in its header line")
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


#: How the first line of a CSV and of a JSONL trace starts (as the sinks write it).
_MARKS = (f"# {_FORMAT}", json.dumps({"format": _FORMAT})[:-1])


def _cut_short(path: Path, number: int, problem: str, kept: int) -> None:
    warnings.warn(f"{path}: line {number} is cut short ({problem}); it is dropped and the "
                  f"{kept} rows before it are kept", stacklevel=4)


class _Columns:
    """Rows read from a file, gathered in lists and handed to a trace in one go."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.lrs: list[list[float]] = []
        self.codes: list[int] = []
        self.signals: dict[str, list[tuple[int, Any]]] = {}
        self.events: list[Event] = []
        self.event_rows: list[int] = []  # the row of each event: the one before it in the file
        self.types: dict[str, str] = {}  # a signal's type ("number"/"tag") where known

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
        """Append the rows and events to ``trace`` with :meth:`Trace.extend`; return it."""
        n = len(self.steps)
        # parameter groups added during the run: the rows before have fewer LRs
        counts = [len(r) for r in self.lrs]
        if any(b < a for a, b in itertools.pairwise(counts)):
            raise ValueError("rows lose learning rates along the file: "
                             f"from {max(counts)} back to {min(counts)}")
        width = max(counts, default=trace.num_groups or 0)
        lrs = np.full((n, width), math.nan)
        for i, values in enumerate(self.lrs):
            lrs[i, :len(values)] = values
        signals: dict[str, np.ndarray | list[str | None]] = {}
        for name, items in self.signals.items():
            column: np.ndarray | list[Any]
            if self._is_tag(name, items):
                column = [None] * n
                for row, value in items:
                    column[row] = value if isinstance(value, str) else _tag(value)
            else:
                column = np.full(n, math.nan)
                for row, value in items:
                    column[row] = float(value)  # "inf"/"-inf" too
            signals[name] = column
        trace.extend(Rows(step=np.array(self.steps, dtype=np.int64),
                          loss=np.array(self.losses, dtype=np.float64),
                          smoothed=np.array(self.smoothed, dtype=np.float64),
                          lrs=lrs, lrs_before=lrs,  # extend() does not read lrs_before
                          code=np.array(self.codes, dtype=np.int64),
                          events=self.events, signals=signals,
                          event_rows=np.array(self.event_rows, dtype=np.int64)))
        return trace

    def _is_tag(self, name: str, items: list[tuple[int, Any]]) -> bool:
        """A signal is a tag where :attr:`types` says so (a file's header, or what the CSV
        loader read from an older file's cells); otherwise (JSONL files of older versions,
        signals that appeared after the header) where a value is a string other than the
        "inf"/"-inf" that stand for a numeric signal's infinities."""
        kind = self.types.get(name)
        if kind is not None:
            return kind == "tag"
        return any(isinstance(v, str) and v not in _INFINITIES for _, v in items)


_INFINITIES = ("inf", "-inf")


def _tag(value: float) -> str:
    # a tag column holds strings; a number there (a hand-edited file) keeps its text
    return repr(value)


def _load_jsonl(path: Path, header: Mapping[str, Any], file: io.TextIOBase) -> Trace:
    if header.get("version") != _VERSION:
        raise ValueError(f"{path}: unsupported trace version {header.get('version')!r}")
    trace = Trace(int(header["num_groups"]) or None, flush_every=0, max_rows=None,
                  meta=header.get("meta") or {})
    columns = _Columns()
    types = header.get("signals")
    if isinstance(types, dict):
        columns.types = {str(k): v for k, v in types.items() if v in ("number", "tag")}
    number = _from_json_float
    lines = file.readlines()
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if "event" in data:
                columns.events.append(_event_from_json(data["event"]))
                columns.event_rows.append(max(len(columns.steps) - 1, 0))
                continue
            signals = data.get("signals") or {}
            if signals:  # "inf"/"-inf" stay strings until the column's type is known
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
    if "\n" not in text:  # the column header is not all there
        raise ValueError(f"{path}: a greedylr trace cut short {'in' if text else 'before'} "
                         "its column header")
    complete = text.endswith("\n")
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    count, names = csv_columns(header)
    groups = header[3:3 + count]
    start = 3 + len(groups) + 2
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
    trace = Trace(len(groups) or None, flush_every=0, max_rows=None, meta=info.get("meta") or {})
    columns = _Columns()
    types = info.get("signals")
    types = types if isinstance(types, dict) else {}
    for j, name in enumerate(names):
        if types.get(name) in ("number", "tag"):
            columns.types[name] = types[name]
            continue
        # an older file: a column whose every cell reads as a number is numeric
        cells = [r[start + j] for _, r in table if r[start + j] != ""]
        try:
            [float(c) for c in cells]
            columns.types[name] = "number"
        except ValueError:
            columns.types[name] = "tag"

    def num(cell: str) -> float:
        return math.nan if cell == "" else float(cell)

    previous: tuple[float, ...] | None = None  # the LRs of the row before
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
                signals[name] = float(cell) if columns.types[name] == "number" else cell
        code = 0
        for kind in kinds:
            if kind not in EVENT_BITS:
                raise ValueError(f"{path}, line {line}: unknown event kind {kind!r} at step {step}")
            code |= EVENT_BITS[kind]
        columns.add(step, loss, smoothed, lrs, code, signals)
        before = (tuple(lrs_before_first(trace.meta.get("base_lrs"), lrs)) if previous is None
                  else previous)
        for kind, reason in zip(kinds, reasons, strict=False):
            columns.events.append(Event(step, kind, reason, loss,  # type: ignore[arg-type]
                                        None if math.isnan(smoothed) else smoothed, None,
                                        before, tuple(lrs)))
            columns.event_rows.append(len(columns.steps) - 1)
        previous = tuple(lrs)
    return columns.into(trace)

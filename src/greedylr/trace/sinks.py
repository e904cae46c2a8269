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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from greedylr._extras import requires_extra
from greedylr.events import format_lrs
from greedylr.trace.fileformat import _FORMAT, _VERSION, _event_json, _json_float, _json_number
from greedylr.trace.rows import Rows

logger = logging.getLogger("greedylr")


@runtime_checkable
class Sink(Protocol):
    """Receives the trace in chunks of rows, in step order, each row exactly once.

    If ``write`` raises, the trace keeps that sink's rows and passes them again, with the
    newer ones, at its next flush (a chunk that starts with the same row, or with the
    first row still in memory; the other sinks are not affected). What a sink had
    delivered of the chunk before raising is its own affair: the file sinks undo a
    partial write and :class:`CallableSink` skips the rows it passed on already (it
    finds them by ``Rows.first``), but :class:`TensorBoardSink` and
    :class:`LoggingSink` write the whole chunk again, so the part written before the
    error appears twice (TensorBoard shows two points at those steps; the log repeats
    those lines).
    """

    def write(self, rows: Rows) -> None:
        """Consume one chunk."""

    def close(self) -> None:
        """Flush and release whatever the sink holds."""


def _lock(fd: int, path: Path) -> None:
    """Take the file's exclusive lock, or refuse a second writer (before truncating)."""
    if fcntl is None:  # Windows: no advisory locks
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        raise RuntimeError(
            f"{path} is being written by another trace sink (another process, e.g. another "
            "rank of a distributed run, or another Trace in this one): two writers would "
            "interleave their rows. Give each writer its own path, e.g. "
            "f'run.rank{rank}.jsonl', or stream from rank 0 only; the file was left as it is"
        ) from exc
    except OSError as exc:  # a file system without flock (some network ones): no check
        logger.debug("greedylr: no lock on %s (%s): a second writer cannot be detected",
                     path, exc)


class _FileSink:
    """A sink that writes a header once, then appends chunks to a file.

    The file is opened at the first write (then the trace's ``meta`` is complete), with
    an exclusive lock (``fcntl.flock``, where there is one) taken before anything in it
    changes: a second writer of the same path is refused with a ``RuntimeError``, for
    good (also once the first writer has closed the file: its rows stay in memory), and
    the first writer's file is left whole. A fresh run then starts the file anew (with a
    warning if it held a greedylr trace with rows); a resumed one (:meth:`resume`) keeps
    its rows up to the step resumed from, if the file is one of the same run. After
    :meth:`close` a later write appends, to the file it left only: one that another
    writer started anew, or that was replaced or changed, is refused (``RuntimeError``).
    Each chunk is written whole or not at all (a failed write is cut off again), so a
    chunk retried after an error (a full disk) is not written twice.
    """

    def __init__(self, path: str | os.PathLike[str], *, num_groups: int | None = None,
                 meta: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.num_groups = num_groups
        # a reference, not a copy: the scheduler fills the trace's meta after a user
        # attached the sink, and the header is only written with the first chunk
        self.meta = meta if meta is not None else {}
        self._file: io.FileIO | None = None
        self._size = 0  # bytes of whole lines in the file: where the next chunk goes
        self._started = False  # the file was started (fresh or resumed): later opens append
        self._header = False  # the header is in the file
        self._resume: int | None = None
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file started
        self._file_header: dict[str, Any] = {}  # what _read_header read (on a resume)
        self._last_row: bytes | None = None  # the last row a resume keeps (_cut_at)
        self._refused: str | None = None  # why another writer holds the file: for good

    def resume(self, step: int) -> None:
        """This run continues a run from its step ``step`` (a checkpoint).

        Before the first write only (later it changes nothing): if the file exists and is
        a greedylr trace of this sink's format written by the same run, its rows up to
        ``step`` (and their events) are kept and the new rows appended after them; the
        rows after ``step`` belong to the continuation that was abandoned and are dropped.
        A log line says how many rows were kept and dropped, a warning which steps up to
        ``step`` the file lacks (rows that a killed run never flushed: the file has a gap
        there). A file of another run (other ``meta`` than this trace's, ``total_steps``
        apart; fewer LR columns than this run has groups; a signal of the other type), or
        one without a row up to ``step``, is started anew, with a warning. The file keeps
        its first header: its ``meta`` is the one of the run that started it (a
        ``total_steps`` changed on resuming is not in it). :meth:`Trace.resume` calls it
        (and ``GreedyLR``'s ``load_state_dict`` calls that).
        """
        if not self._started:
            self._resume = int(step)

    def _open(self, rows: Rows | None = None) -> io.FileIO:
        """The open file, at the end of its whole lines; ``rows``: the first chunk."""
        if self._file is not None:
            return self._file
        if self._refused is not None:  # never later: the other writer's file stays whole
            raise RuntimeError(self._refused)
        flags = os.O_RDWR | getattr(os, "O_BINARY", 0)
        # a reopen: only the file this sink left (any empty one if it wrote nothing yet)
        if self._started and self._size:
            try:
                fd = os.open(self.path, flags)
            except FileNotFoundError:
                raise self._changed("it was removed") from None
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # no O_TRUNC: the file is only changed once its lock is held
            fd = os.open(self.path, flags | os.O_CREAT, 0o666)
        try:
            try:
                _lock(fd, self.path)
            except RuntimeError as exc:
                self._refused = str(exc)
                raise
            stat = os.fstat(fd)
            size = stat.st_size
            if not self._started:
                size = self._start(fd, size, rows)
            elif (stat.st_dev, stat.st_ino) != self._identity and self._size:
                raise self._changed("another file has its name now")
            elif size != self._size:
                raise self._changed(f"it has {size} bytes, this sink left {self._size}")
            os.lseek(fd, size, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        self._file = io.FileIO(fd, "r+")
        self._size, self._started = size, True
        self._identity = (stat.st_dev, stat.st_ino)
        self._header = size > 0
        return self._file

    def _changed(self, why: str) -> RuntimeError:
        return RuntimeError(
            f"{self.path} was changed since this sink closed it ({why}): another writer "
            "started it anew, or it was replaced or edited; this trace's rows are not "
            "appended to it (they stay in memory: Trace.save writes them elsewhere)"
        )

    def _start(self, fd: int, size: int, rows: Rows | None) -> int:
        """The first open: cut the file for a resumed run, else empty it; its new size."""
        if size == 0:
            return 0
        if self._resume is not None:
            try:
                with open(self.path, "rb") as file:
                    kept, dropped, cut = self._cut_at(file, self._resume)
                other = self._other_run(rows) if kept else None
            except (ValueError, OSError, UnicodeDecodeError) as exc:
                logger.warning("greedylr: %s cannot be continued from step %d (%s); it is "
                               "started anew", self.path, self._resume, exc)
            else:
                if not kept:
                    (logger.warning if dropped else logger.info)(
                        "greedylr: resuming %s from step %d: none of its %d rows is up to "
                        "that step; it is started anew", self.path, self._resume, dropped)
                elif other is not None:
                    logger.warning(
                        "greedylr: %s is not continued from step %d: it holds the trace of "
                        "another run (%s); it is started anew, its %d rows dropped (give "
                        "each run its own path)", self.path, self._resume, other,
                        kept + dropped)
                else:
                    self._continue()
                    os.ftruncate(fd, cut)
                    self._log_resume(kept, dropped)
                    return cut
        elif self._holds_rows():
            logger.warning("greedylr: %s held a greedylr trace with rows; it is overwritten "
                           "by this fresh run (a run resumed with GreedyLR.load_state_dict, "
                           "or Trace.resume, keeps it and appends)", self.path)
        os.ftruncate(fd, 0)
        return 0

    def _log_resume(self, kept: int, dropped: int) -> None:
        """Say what a resume kept of the file: a warning where it dropped rows, or where
        the checkpoint's last rows are missing (the run stopped before they reached it)."""
        assert self._resume is not None and self._last_row is not None  # rows were kept
        last = self._row_step(self._last_row)
        assert last is not None  # the last row kept is a row
        text = f"kept its {kept} rows up to that step"
        if dropped:
            text += (f", dropped {dropped} rows after it (the run that was resumed from an "
                     "earlier point went on past it)")
        gap = last < self._resume
        if gap:
            missing = (f"step {self._resume}" if last + 1 == self._resume
                       else f"steps {last + 1}-{self._resume}")
            text += (f"; {missing} never reached it (the run stopped before it wrote them): "
                     "the file has a gap there")
        (logger.warning if dropped or gap else logger.info)(
            "greedylr: resuming %s from step %d: %s", self.path, self._resume, text)

    def _other_run(self, rows: Rows | None) -> str | None:
        """Why the file read by :meth:`_cut_at` is not one this run can continue, or None.

        Its meta must agree with this trace's where both have a key (``total_steps``
        apart: a resumed run may change it; a list may have grown, with parameter groups
        added), this run must have at least the LR columns of its last kept row, and a
        signal both name must have the same type: else the file could not be read back,
        or would read as one run when it is two.
        """
        header = self._file_header
        old = header.get("meta")
        new = json.loads(json.dumps(self.meta))  # as a header holds it
        if isinstance(old, dict):
            for key in sorted(old.keys() & new.keys()):
                a, b = old[key], new[key]
                if key == "config" and isinstance(a, dict) and isinstance(b, dict):
                    a = {k: v for k, v in a.items() if k != "total_steps"}
                    b = {k: v for k, v in b.items() if k != "total_steps"}
                elif isinstance(a, list) and isinstance(b, list) and len(b) > len(a):
                    b = b[:len(a)]  # parameter groups added since
                if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
                    return (f"meta {key!r}: {json.dumps(a, sort_keys=True)[:100]} there, "
                            f"{json.dumps(b, sort_keys=True)[:100]} here")
        width = rows.lrs.shape[1] if rows is not None and rows.lrs.shape[1] else (
            self.num_groups or 0)
        columns = self._file_groups()
        if width < columns:
            return f"{columns} learning rates a row there, {width} here"
        types = header.get("signals")
        if isinstance(types, dict) and rows is not None:
            for name, kind in _signal_types(rows).items():
                if types.get(name, kind) != kind:
                    return f"signal {name!r} is a {types[name]} there, a {kind} here"
        return None

    def _file_groups(self) -> int:  # pragma: no cover - abstract
        """The LR count of the last row a resume keeps."""
        raise NotImplementedError

    def _continue(self) -> None:
        """The file is continued (a resume): take on what its header fixes."""

    def _holds_rows(self) -> bool:
        """Whether the file starts like a greedylr trace of this format with a row."""
        try:
            with open(self.path, "rb") as file:
                self._read_header(file)
                return any(self._row_step(r) is not None for r in self._records(file))
        except (ValueError, OSError, UnicodeDecodeError):
            return False

    def _cut_at(self, file: io.BufferedReader, step: int) -> tuple[int, int, int]:
        """Where a run resumed at ``step`` cuts the file: (rows kept, rows dropped, offset).

        The cut follows the last row of step ``step`` (and its events); with no such row,
        it comes before the first row after ``step``, else at the end of the whole lines.
        ``_last_row`` is then the last row kept.
        """
        offset = self._read_header(file)
        rows = 0
        current: int | None = None  # the step of the row whose lines are being read
        last: bytes | None = None  # that row
        # (rows, offset, last row) after a row of ``step``, and before the first row > step
        at_step: tuple[int, int, bytes | None] | None = None
        after: tuple[int, int, bytes | None] | None = None
        for record in self._records(file):
            if not record.endswith(b"\n"):
                break  # a last line cut short by a killed process
            row = self._row_step(record)
            if row is not None:
                if current == step:
                    at_step = (rows, offset, last)
                if row > step and after is None:
                    after = (rows, offset, last)
                current, last = row, record
                rows += 1
            offset += len(record)
        if current == step:
            at_step = (rows, offset, last)
        kept, cut, self._last_row = at_step or after or (rows, offset, last)
        return kept, rows - kept, cut

    def _records(self, file: io.BufferedReader) -> Iterator[bytes]:
        """The file's records after the header (a JSONL file's lines)."""
        yield from file

    def _read_header(self, file: io.BufferedReader) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _row_step(self, record: bytes) -> int | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _append(self, text: str) -> None:
        """Write ``text`` at the end of the whole lines, all of it or none of it."""
        file = self._open()
        data = memoryview(text.encode("utf-8"))
        done = 0
        try:
            while done < len(data):
                done += file.write(data[done:]) or 0
        except BaseException:
            try:  # cut off the part written: the retried chunk starts on a fresh line
                file.truncate(self._size)
                file.seek(self._size)
            except OSError:
                pass
            raise
        self._size += len(data)

    def forget(self) -> None:
        """Let go of the file without unlocking it: a forked child's copy of this sink
        (the lock is the parent's, shared with the child's descriptor)."""
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            if fcntl is not None:
                try:  # at once, even if a forked child still holds the descriptor
                    fcntl.flock(file.fileno(), fcntl.LOCK_UN)
                except OSError:
                    pass
            file.close()

    def __getstate__(self) -> dict[str, Any]:
        self.refuse_copy()
        return {}  # pragma: no cover - refused above

    def refuse_copy(self) -> None:
        """Raise the ``TypeError`` that a copy of this sink (or of its trace) gets."""
        raise TypeError(
            f"a trace streaming to {self.path} cannot be copied or pickled, whether the file "
            "is open yet or not: the copy would be a second writer of that file (it would "
            "start it anew, or interleave its rows). Copy GreedyLR's state_dict() instead, "
            "or the rows: Trace().extend(trace.rows())"
        )


def _signal_types(rows: Rows) -> dict[str, str]:
    return {name: "number" if isinstance(values, np.ndarray) else "tag"
            for name, values in rows.signals.items()}


class JSONLSink(_FileSink):
    """A JSON Lines file: a header line, one line per row, each row's events after it.

    Full fidelity: :func:`load_trace` restores every value, tag and event (with its
    reason). Non-finite floats are written as ``null`` (NaN) or ``"inf"``/``"-inf"``;
    the header names the type of the signals of the first chunk.
    """

    def write(self, rows: Rows) -> None:
        self._open(rows)
        lines = []
        if not self._header:
            header = {"format": _FORMAT, "version": _VERSION,
                      "num_groups": self.num_groups or rows.lrs.shape[1], "meta": self.meta,
                      "signals": _signal_types(rows)}
            lines.append(json.dumps(header))
        by_row = rows.events_by_row()
        # formatted by hand from Python lists: json.dumps of a dict per row is 5x slower
        steps, losses, smoothed = rows.step.tolist(), rows.loss.tolist(), rows.smoothed.tolist()
        lrs, codes = rows.lrs.tolist(), rows.code.tolist()
        columns = {name: v.tolist() if isinstance(v, np.ndarray) else v
                   for name, v in rows.signals.items()}
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
            for event in by_row.get(i, ()):
                lines.append(json.dumps({"event": _event_json(event)}))
        if lines:
            self._append("\n".join(lines) + "\n")
            self._header = True

    def _read_header(self, file: io.BufferedReader) -> int:
        line = file.readline()
        header = json.loads(line) if line.endswith(b"\n") else None
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise ValueError("not a greedylr JSONL trace")
        if header.get("version") != _VERSION:
            raise ValueError(f"trace version {header.get('version')!r}, not {_VERSION}")
        self._file_header = header
        return len(line)

    def _file_groups(self) -> int:
        if self._last_row is None:
            return int(self._file_header.get("num_groups") or 0)
        lrs = json.loads(self._last_row).get("lrs")
        if not isinstance(lrs, list):
            raise ValueError(f"a row without its learning rates: {self._last_row[:60]!r}")
        return len(lrs)

    def _row_step(self, record: bytes) -> int | None:
        if record.startswith(b'{"step": '):
            return int(record[9:record.index(b",")])
        if record.startswith(b'{"event"') or not record.strip():
            return None
        raise ValueError(f"not a trace line: {record[:40]!r}")


class CSVSink(_FileSink):
    """A CSV file: ``step, loss, smoothed, lr_0..lr_{G-1}, events, reasons`` and signals.

    A first comment line (``# greedylr.trace ...``) holds the metadata and the type of
    each signal column. ``events`` lists the kinds of a row's events separated by ``|``,
    ``reasons`` their reasons separated by `` | ``; empty cells are missing values. The
    signal columns are fixed by the first chunk: log signals from the first step on (a
    signal that appears later is left out of a streaming CSV, with a warning;
    :meth:`Trace.save` writes them all). A resumed run keeps the columns of the file.
    """

    def __init__(self, path: str | os.PathLike[str], *, num_groups: int | None = None,
                 meta: Mapping[str, Any] | None = None) -> None:
        super().__init__(path, num_groups=num_groups, meta=meta)
        self._signals: list[str] | None = None
        self._types: dict[str, str] = {}
        self._groups = 0
        self._file_columns: tuple[int, list[str], dict[str, str]] = (0, [], {})
        self._warned: set[str] = set()

    def write(self, rows: Rows) -> None:
        self._open(rows)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if self._signals is None:
            self._signals = list(rows.signals)
            self._types = _signal_types(rows)
            self._groups = rows.lrs.shape[1] or self.num_groups or 0
        if not self._header:
            info = {"version": _VERSION, "meta": self.meta, "signals": self._types}
            buffer.write(f"# {_FORMAT} {json.dumps(info)}\n")
            writer.writerow(["step", "loss", "smoothed",
                             *[f"lr_{g}" for g in range(self._groups)],
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
        by_row = rows.events_by_row()

        def cell(value: Any) -> str:
            if value is None:
                return ""
            if isinstance(value, str):
                return value
            value = float(value)
            return "" if math.isnan(value) else repr(value)

        for i in range(len(rows)):
            events = by_row.get(i, [])
            writer.writerow([
                int(rows.step[i]), cell(rows.loss[i]) or "nan", cell(rows.smoothed[i]),
                *[cell(v) for v in rows.lrs[i, :self._groups]],
                "|".join(e.kind for e in events), " | ".join(e.reason for e in events),
                *[cell(rows.signals[name][i]) if name in rows.signals else ""
                  for name in self._signals],
            ])
        self._append(buffer.getvalue())
        self._header = True

    def _read_header(self, file: io.BufferedReader) -> int:
        first = file.readline()
        prefix = f"# {_FORMAT}".encode()
        if not (first.startswith(prefix) and first.endswith(b"\n")):
            raise ValueError("not a greedylr CSV trace")
        info = json.loads(first[len(prefix):])
        if info.get("version") != _VERSION:
            raise ValueError(f"trace version {info.get('version')!r}, not {_VERSION}")
        second = file.readline()
        if not second.endswith(b"\n"):
            raise ValueError("no column header")
        groups, names = csv_columns(next(csv.reader([second.decode("utf-8")])))
        types = info.get("signals")
        self._file_columns = (groups, names, dict(types) if isinstance(types, dict) else {})
        self._file_header = info
        return len(first) + len(second)

    def _file_groups(self) -> int:
        return self._file_columns[0]

    def _continue(self) -> None:
        # a resumed run goes on writing the file's columns
        self._groups, self._signals, self._types = self._file_columns

    def _records(self, file: io.BufferedReader) -> Iterator[bytes]:
        # a quoted cell (a tag) may hold a line break: a record ends at a line end
        # outside quotes, where the count of '"' so far is even
        record = b""
        for line in file:
            record += line
            if record.count(b'"') % 2 == 0:
                yield record
                record = b""
        if record:
            yield record

    def _row_step(self, record: bytes) -> int | None:
        if not record.strip():
            return None
        return int(record[:record.index(b",")])


def csv_columns(header: list[str]) -> tuple[int, list[str]]:
    """A CSV trace's LR column count and signal names, by position: the LRs come between
    ``smoothed`` and ``events``, the signals after ``reasons`` (a signal may be named
    ``lr_...``; ``events`` is a reserved signal name, so its first place is the column)."""
    try:
        events = header.index("events", 3)
    except ValueError:
        raise ValueError("the column header has no 'events' column") from None
    if header[:3] != ["step", "loss", "smoothed"] or header[events + 1:events + 2] != [
            "reasons"] or any(not h.startswith("lr_") for h in header[3:events]):
        raise ValueError(f"not a greedylr trace column header: {header[:events + 2]}")
    return events - 3, header[events + 2:]


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
        # after a write that raised: the index (Rows.first) of the first row not passed
        # on yet; the trace passes that chunk again, from where it started or later
        self._next: int | None = None

    def write(self, rows: Rows) -> None:
        first = rows.first if rows.first is not None else 0
        done = 0 if self._next is None else max(self._next - first, 0)  # passed on before
        self._next = None
        try:
            for i, row in enumerate(rows.dicts()):
                if i >= done:
                    self.fn(row)
                    done = i + 1
        except BaseException:
            self._next = first + done
            raise

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

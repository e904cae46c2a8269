"""The results store: one JSON file per trial, written atomically, read back by anyone.

Layout of a study folder::

    <out_dir>/trials/<spec.key>.json     one result per trial (format ``FORMAT``)
    <out_dir>/trials/<key>.json.damaged  a file that could not be read back, kept aside
    <out_dir>/.lock, .lock.owner         held by the run writing into the folder

Each file is written atomically (a temporary file in the same folder, flushed, synced,
then renamed over the final name), so a run killed at any moment leaves only complete
files, and a rerun resumes where it stopped. A result that cannot be written (disk full,
read-only folder) is a ``StoreError``: the study stops, every stored result stays. The
fields of a result: ``greedylr.studies.execution``, which makes them; this module only
stores and reads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from greedylr.studies.trial import TrialSpec

__all__ = [
    "FORMAT",
    "STATUSES",
    "TRIALS_DIR",
    "StoreError",
    "StudyInUse",
    "as_loaded",
    "clean_temporaries",
    "exclusive",
    "json_default",
    "load_results",
    "read_for_rerun",
    "read_result",
    "result_path",
    "write_result",
]

logger = logging.getLogger(__name__)

FORMAT = "greedylr.trial/1"
"""The ``format`` field of every result file; bumped when the layout changes."""

STATUSES = ("ok", "short", "diverged", "failed", "timeout")
"""What became of a trial: finished; returned before the steps asked for; a non-finite
training loss; an exception or a dead worker; stopped at the trial time limit. Only
``ok`` trials are compared; a stored result with another status is read as damaged."""

TRIALS_DIR = "trials"
"""The folder of a study's result files, under the study folder."""


class StoreError(OSError):
    """A trial's result could not be written: the study stops, stored results stay."""


class StudyInUse(RuntimeError):
    """Another process is writing the study folder."""


def result_path(out_dir: str | os.PathLike[str], spec: TrialSpec) -> Path:
    """Where the result of ``spec`` lives under the study folder ``out_dir``."""
    return Path(out_dir) / TRIALS_DIR / f"{spec.key}.json"


def json_default(value: Any) -> Any:
    """How ``json.dump`` writes what JSON has no type for: numpy/torch scalars as numbers,
    sets and tuples as lists, anything else as its ``str``."""
    if hasattr(value, "item"):  # numpy and torch scalars
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write ``result`` to ``path`` atomically: complete or not at all.

    NaN and infinite losses are kept as JSON's ``NaN``/``Infinity`` extensions, which
    Python's json module reads back.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(result, handle, default=json_default, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_result(path: Path) -> dict[str, Any] | None:
    """The result stored at ``path``; None, with a warning naming it, if it is unusable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable result %s: %s", path, exc)
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        logger.warning("ignoring %s: not a %s result", path, FORMAT)
        return None
    if (
        data.get("key") != path.stem
        or data.get("status") not in STATUSES
        or not isinstance(data.get("spec"), dict)
    ):
        logger.warning("ignoring %s: a damaged %s result (key, status or spec)", path, FORMAT)
        return None
    return data


def read_for_rerun(path: Path) -> dict[str, Any] | None:
    """The stored result at ``path`` for a run about to write there: a damaged file is
    moved aside to ``<name>.damaged`` (kept for inspection, never read) and the trial
    runs again."""
    if not path.exists():
        return None
    data = read_result(path)
    if data is None:
        aside = path.with_name(path.name + ".damaged")
        os.replace(path, aside)
        logger.warning("moved %s aside to %s: the trial runs again", path.name, aside.name)
    return data


def load_results(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every trial result stored under ``directory`` (a study folder or a results root).

    Sorted by study, workload, schedule, optimizer, seed, then key, so that reports
    built from them are stable.
    """
    root = Path(directory)
    if not root.exists():
        raise FileNotFoundError(f"no results folder {root}")
    results = []
    for path in sorted(root.rglob(f"{TRIALS_DIR}/*.json")):
        if path.name.startswith("."):
            continue
        data = read_result(path)
        if data is not None:
            results.append(data)

    def order(r: dict[str, Any]) -> tuple[Any, ...]:
        s = r["spec"]
        return (s["study"], s["workload"], s["schedule"], s["optimizer"], s["seed"], r["key"])

    return sorted(results, key=order)


@contextlib.contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` while running: two runs of one study would run trials twice.

    An OS file lock (``filelock``: ``flock`` on POSIX, ``msvcrt`` on Windows), released
    by the OS if the process dies, so a killed run never leaves a stale lock behind.
    Who holds it is written next to it, in ``out/.lock.owner``, for the error message.
    """
    from filelock import FileLock, Timeout

    out.mkdir(parents=True, exist_ok=True)
    owner = out / ".lock.owner"
    lock = FileLock(str(out / ".lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = owner.read_text(encoding="utf-8").strip()
        except OSError:
            holder = ""
        raise StudyInUse(
            f"{out} is being written by {holder or 'another process'}: wait for it, or "
            "stop it (it resumes)"
        ) from None
    try:
        owner.write_text(f"pid {os.getpid()} on {platform.node()}", encoding="utf-8")
        yield
    finally:
        lock.release()


def clean_temporaries(out: Path) -> None:
    """Remove what a killed run left half-written in the study folder ``out``: never read,
    safe to delete."""
    trials_dir = out / TRIALS_DIR
    if trials_dir.is_dir():
        for tmp in trials_dir.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()


def as_loaded(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` exactly as :func:`load_results` would read it back (tuples become lists)."""
    return json.loads(json.dumps(result, default=json_default))

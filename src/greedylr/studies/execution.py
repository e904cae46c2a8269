"""One trial, run here and now, and the result record the store keeps of it.

A result holds the spec, the status (``ok``; ``short``: the training function returned
before the steps the spec asked for, ``steps_done`` says after how many; ``diverged``: a
non-finite training loss, as :meth:`~greedylr.studies.trial.Trial.step` detects it;
``failed``: an exception, with its traceback; ``timeout``: stopped at the time limit), the
per-step training loss and LR, the held-out metrics and which of them is the headline with
its direction (``metric``: ``name``, ``higher_is_better``, and ``guessed: true`` where the
direction was read from the name, :func:`direction_from_name`), the scheduler's
events, the wall time, and the code version and machine that produced it (on Ray, the node
too), so that a stored result says what ran and where without the code that ran it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import importlib
import importlib.metadata
import logging
import math
import os
import platform
import subprocess
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from greedylr._direction import direction_from_name
from greedylr._extras import requires_extra
from greedylr.studies import schedules
from greedylr.studies.store import FORMAT
from greedylr.studies.targets import ResolvedWorkload, resolve_workload
from greedylr.studies.trial import Diverged, Trial, TrialSpec

__all__ = [
    "FEED",
    "code_version",
    "direction_from_name",
    "execute_trial",
    "headline_is_fed",
    "headline_metric",
    "machine",
    "metric_field",
    "timed_out_result",
    "unfinished_result",
    "warn_of_a_guessed_direction",
]

logger = logging.getLogger(__name__)

FEED = "feed"
"""The name :meth:`~greedylr.studies.trial.Trial.report` records the schedule's held-out
value under: a loss (lower is better), and the headline metric only of a function that
reports nothing else."""


# -- provenance ---------------------------------------------------------------------


@functools.cache
def code_version() -> dict[str, Any]:
    """greedylr's version and, when it runs from a git checkout, the commit and dirty flag."""
    import torch

    import greedylr

    out: dict[str, Any] = {
        "greedylr": greedylr.__version__,
        "torch": torch.__version__,
        # the defaults a ``greedy`` trial ran under: a resumed study reruns it if they changed
        "greedy_defaults": schedules.greedy_defaults_digest(),
    }
    for name in ("transformers", "schedulefree", "prodigyopt"):
        # the installed version, without importing them (transformers takes seconds)
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    root = Path(greedylr.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        out["git"] = commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        out["git"] = None  # an installed wheel: the version is all there is
    return out


def machine() -> dict[str, Any]:
    """Where a trial ran: enough to explain a wall-time difference."""
    import torch

    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


# -- one trial ----------------------------------------------------------------------


def _now(offset: float = 0.0) -> str:
    """The UTC time ``offset`` seconds from now, ISO 8601."""
    moment = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=offset)
    return moment.isoformat(timespec="seconds")


def headline_metric(rows: list[dict[str, Any]]) -> str | None:
    """The held-out metric a trial is judged on, of the ``rows`` it reported: the first
    name it reported other than ``step`` and :data:`FEED`, in any row (a function may feed
    the schedule every evaluation and report its metric once, at the end); :data:`FEED`
    where it reported nothing else; ``None`` where it reported nothing."""
    names = [k for row in rows for k in row if k != "step"]
    return next((k for k in names if k != FEED), names[0] if names else None)


def headline_is_fed(name: str | None, rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the headline metric ``name`` is the value the schedule was fed: it is
    :data:`FEED` itself, or equals it (to a relative 1e-6: a float32 and a float64 of one
    loss) at every evaluation of ``rows`` that reported it. A schedule that reacts to the
    fed value (GreedyLR's held-out rule) is then judged on what it was tuned on, a bias
    in its favour that no seed count removes."""
    if name is None or name == FEED:
        return name == FEED
    scored = [row for row in rows if name in row]
    return bool(scored) and all(
        FEED in row and math.isclose(float(row[name]), float(row[FEED]), rel_tol=1e-6)
        for row in scored)


_FED_HEADLINES_WARNED: set[tuple[str, str | None]] = set()


def _warn_if_headline_is_fed(spec: TrialSpec, name: str | None,
                             rows: Sequence[Mapping[str, Any]]) -> None:
    """Log a warning, once per training function and metric in a process, where the
    headline metric is the fed value (:func:`headline_is_fed`): nothing else would say
    that the comparison favours the schedules fed it."""
    key = (spec.workload, name)
    if key in _FED_HEADLINES_WARNED or not headline_is_fed(name, rows):
        return
    _FED_HEADLINES_WARNED.add(key)
    what = ("is the fed value itself (the function reported no other metric)" if name == FEED
            else f"{name!r} equals the fed value at every evaluation")
    logger.warning(
        "%s: the held-out metric %s: a schedule that reacts to it (GreedyLR's held-out "
        "rule) is judged on what it was tuned on, in its favour; %s",
        spec.workload, what, _unfed_headline_hint(name, rows))


def _unfed_headline_hint(name: str | None, rows: Sequence[Mapping[str, Any]]) -> str:
    """How to judge on a value the schedule is not fed: another metric the function
    already reports, made the headline, or one to report."""
    others = sorted({k for row in rows for k in row} - {"step", FEED, name})
    if others:
        return (f"if {others[0]!r} is measured on other data, make it the headline "
                f"(train.metric = {others[0]!r})")
    return ("report a metric on data the feed does not use "
            "(trial.report(test_loss=..., feed=validation_loss))")


_GUESSES_WARNED: set[tuple[str, str | None]] = set()


def warn_of_a_guessed_direction(result: dict[str, Any]) -> None:
    """Log a warning, once per training function and metric in a process, where the
    direction of the held-out metric of ``result`` was read from its name."""
    meta = result.get("metric") or {}
    name = meta.get("name")
    key = (result["spec"]["workload"], name)
    if not meta.get("guessed") or key in _GUESSES_WARNED:
        return
    _GUESSES_WARNED.add(key)
    logger.warning(
        "%s: the held-out metric %r is taken as %s is better, a guess from its name; "
        "state it on the training function (train.higher_is_better = %s)",
        result["spec"]["workload"], name, "higher" if meta.get("higher_is_better") else "lower",
        bool(meta.get("higher_is_better")))


def _metric_of(workload: ResolvedWorkload | None, record: Any) -> dict[str, Any]:
    """The ``metric`` field of a result: the headline metric's name and its direction,
    with ``guessed: True`` where the direction was read from the name. What the workload
    states comes first; :data:`FEED` is a loss."""
    name = workload.metric if workload is not None else None
    higher = workload.higher_is_better if workload is not None else None
    if name is None and record is not None:
        name = headline_metric(record.metrics)
    return metric_field(name, higher)


def metric_field(name: str | None, higher: bool | None) -> dict[str, Any]:
    """The ``metric`` field of a result whose headline metric is ``name``, where the
    training function says its direction is ``higher`` (``None``: it does not say).
    Where it does not, :data:`FEED` is a loss (lower is better) and any other name's
    direction is read from its words (:func:`direction_from_name`), with
    ``guessed: True``; the one rule for a result as it is run and as it is read back
    (:func:`greedylr.studies.metrics.metric_name`)."""
    if name is None or higher is not None:
        return {"name": name, "higher_is_better": higher}
    if name == FEED:
        return {"name": name, "higher_is_better": False}
    return {"name": name, "higher_is_better": direction_from_name(name), "guessed": True}


def _diverged(exc: BaseException) -> Diverged | None:
    """The :class:`~greedylr.studies.trial.Diverged` that ``exc`` is, or was raised from
    or while handling (a framework that wraps the trial's exception); ``None`` if none."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, Diverged):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _preload(schedule: str, optimizer: str) -> None:
    if schedule == "transformers_greedy":
        with requires_extra("hf", "the transformers_greedy schedule"):
            importlib.import_module("transformers")
    elif optimizer == "adafactor":
        with requires_extra("hf", "the adafactor optimizer"):
            importlib.import_module("transformers")
    elif schedule == "schedule_free":
        with requires_extra("bench", "the schedule_free schedule"):
            importlib.import_module("schedulefree")
    elif schedule == "prodigy":
        with requires_extra("bench", "the prodigy schedule"):
            importlib.import_module("prodigyopt")
    elif optimizer == "muon":  # torch's Muon imports dynamo when built (2-5 s)
        importlib.import_module("torch._dynamo")


_UNFED_WARNED: set[tuple[str, str]] = set()


def _warn_if_unfed(spec: TrialSpec, trial: Trial) -> None:
    """Log a warning, once per user function and schedule in a process, when the schedule
    reacts to a held-out value and the function fed it none
    (:func:`~greedylr.studies.schedules.fed_nothing`)."""
    if (spec.workload, spec.schedule) in _UNFED_WARNED:
        return
    if schedules.fed_nothing(spec.workload, spec.schedule, spec.options, trial.record.metrics):
        _UNFED_WARNED.add((spec.workload, spec.schedule))
        logger.warning(
            "%s: schedule %r reacts to a held-out value, but the training function fed it "
            "none (trial.report(..., feed=validation_loss) after each evaluation, on data "
            "the reported metric does not use): it ran without its held-out rule",
            spec.key, spec.schedule)


def execute_trial(spec: TrialSpec, *, threads: int | None = None) -> dict[str, Any]:
    """Run one trial here and now; never raises for the trial's own errors.

    Args:
        spec: the trial.
        threads: set ``torch.set_num_threads`` first (worker processes use 1).

    Returns:
        The result dict that :func:`~greedylr.studies.runner.run_trials` stores (see the
        module docstring).
        An exception in the training function gives ``status="failed"`` with its
        message and traceback, and so does ``sys.exit(code)`` there with a code other
        than 0 (``sys.exit()`` and ``sys.exit(0)`` return); a non-finite loss gives
        ``status="diverged"`` (what :meth:`~greedylr.studies.trial.Trial.step` raises
        for it, :class:`~greedylr.studies.trial.Diverged`, alone: a ``FloatingPointError``
        of the function's own code is ``failed``); a function that returns before
        ``spec.steps`` steps gives ``status="short"``, not comparable with the finished
        trials. ``KeyboardInterrupt`` (Ctrl-C, and SIGTERM in a study) propagates.
    """
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    started_at, started = _now(), time.perf_counter()
    status, error, tb = "ok", None, None
    trial: Trial | None = None
    workload: ResolvedWorkload | None = None
    try:
        workload = resolve_workload(spec.workload, spec.optimizer)
        # imports are not training: pay the schedule's (transformers takes seconds)
        # before the clock starts, so that the first trial of a worker is not slower
        _preload(spec.schedule, spec.optimizer)
        started_at, started = _now(), time.perf_counter()
        lr = spec.lr if spec.lr is not None else (workload.lr or 1e-3)
        trial = Trial(spec, default_lr=lr)
        try:
            workload.train(trial)
        except SystemExit as exc:  # sys.exit(0) or sys.exit(): a return; others fail
            if exc.code not in (None, 0):
                raise RuntimeError(f"the training function called sys.exit({exc.code!r})"
                                   ) from None
        if trial.current_step == 0:
            raise RuntimeError("the training function returned without calling trial.step(loss)")
        if trial.current_step < spec.steps:
            # not a run of the length the others had: compared, it would be a result of
            # another experiment (or of a bug that ended the loop)
            status = "short"
            error = (f"the training function returned after {trial.current_step} of the "
                     f"{spec.steps} steps asked for")
        elif trial.current_step > spec.steps:
            logger.warning("%s: trained %d steps, the spec asked for %d",
                           spec.key, trial.current_step, spec.steps)
        _warn_if_unfed(spec, trial)
    except Exception as exc:
        diverged = _diverged(exc)
        if diverged is not None:
            status, error = "diverged", str(diverged)
        else:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            tb = traceback.format_exc()
    wall = time.perf_counter() - started

    record = trial.record if trial is not None else None
    metric = _metric_of(workload, record)
    if record is not None:
        _warn_if_headline_is_fed(spec, metric["name"], record.metrics)
    events: list[dict[str, Any]] = []
    if trial is not None:
        with contextlib.suppress(Exception):
            events = [e.to_dict() for e in getattr(trial.schedule_object, "events", [])]
    return {
        "format": FORMAT,
        "key": spec.key,
        "spec": spec.to_dict(),
        "status": status,
        "error": error,
        "traceback": tb,
        "lr": trial.lr if trial is not None else spec.lr,
        "optimizer_used": record.optimizer if record else None,
        "range_test": record.range_test if record else None,
        "metric": metric,
        "steps_done": trial.current_step if trial is not None else 0,
        "losses": list(record.losses) if record else [],
        "lrs": list(record.lrs) if record else [],
        "metrics": list(record.metrics) if record else [],
        "events": events,
        "wall_time": wall,
        "started": started_at,
        "finished": _now(),
        "code": code_version(),
        "machine": machine(),
    }


def unfinished_result(
    spec: TrialSpec, status: str, error: str, *, stored: bool, wall_time: float = 0.0
) -> dict[str, Any]:
    """The result of a trial that did not finish in its own process.

    Args:
        spec: the trial.
        status: ``"failed"`` (its process died) or ``"timeout"`` (stopped at the limit).
        error: what happened, one line.
        stored: whether the store keeps it (a died worker's trial is tried again by the
            next run, a timed-out trial is not, under the same limit).
        wall_time: how long it ran before it was stopped.
    """
    logger.error("%s: %s", spec.key, error)
    return {
        "stored": stored,
        "format": FORMAT,
        "key": spec.key,
        "spec": spec.to_dict(),
        "status": status,
        "error": error,
        "traceback": None,
        "lr": spec.lr,
        "metric": {"name": None, "higher_is_better": None},
        "steps_done": 0,
        "losses": [],
        "lrs": [],
        "metrics": [],
        "events": [],
        "wall_time": wall_time,
        "started": _now(-wall_time),
        "finished": _now(),
        "code": code_version(),
        "machine": machine(),
    }


def timed_out_result(spec: TrialSpec, limit: float, wall_time: float) -> dict[str, Any]:
    """The stored result of a trial stopped at the time limit ``limit`` (seconds)."""
    result = unfinished_result(
        spec,
        "timeout",
        f"stopped after {wall_time:.1f} s: over the trial time limit of {limit:g} s",
        stored=True,
        wall_time=wall_time,
    )
    result["trial_timeout"] = limit
    return result

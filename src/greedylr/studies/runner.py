"""Run trials into a resumable results store, on local processes or on Ray.

A study is a list of :class:`~greedylr.studies.trial.TrialSpec`. :func:`run_trials`
runs the ones that have no result yet and writes one JSON file per trial::

    <out_dir>/trials/<spec.key>.json

Each file is written atomically (a temporary file in the same folder, flushed, synced,
then renamed over the final name), so a study that is interrupted at any moment, by
Ctrl-C or by ``kill -9``, leaves only complete files; rerunning it skips every trial
that has a file and runs the rest. Nothing is ever run twice, with one exception: a
``greedy`` trial whose file records other :class:`~greedylr.GreedyConfig` defaults than
the installed ones (a greedylr upgrade changed them) runs again, since its settings
alone no longer say what it ran.

A result file holds the spec, the status (``ok``, ``diverged``: a non-finite training
loss, ``failed``: an exception, with its message and traceback), the per-step training
loss and learning rate, the held-out metrics with their steps, the scheduler's events,
the wall time, and the code version and machine that produced it.

Executors:

- ``local`` (default): ``jobs`` worker processes (``forkserver``), each trial with
  ``torch.set_num_threads(1)``; ``jobs=1`` runs in this process, with torch's threads.
- ``ray``: one Ray task per trial (``num_cpus=1``, one torch thread), on the cluster at
  ``address`` or on a local Ray started with ``jobs`` CPUs. Workers must be able to
  import the workload (an installed module, or a file path they can read).

Example:
    >>> from greedylr.studies.trial import TrialSpec
    >>> specs = [TrialSpec.make(study="demo", workload="my_pkg.train:train",
    ...                         schedule=s, seed=seed, steps=200)
    ...          for s in ("greedy", "cosine") for seed in range(3)]
    >>> results = run_trials(specs, "results/demo", jobs=2)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greedylr.studies import schedules
from greedylr.studies.trial import Trial, TrialSpec

__all__ = [
    "FORMAT",
    "STATUSES",
    "ResolvedWorkload",
    "execute_trial",
    "load_results",
    "make_specs",
    "resolve_workload",
    "result_path",
    "run_trials",
]

logger = logging.getLogger(__name__)

FORMAT = "greedylr.trial/1"
"""The ``format`` field of every result file; bumped when the layout changes."""

STATUSES = ("ok", "diverged", "failed")

TRIALS_DIR = "trials"

# Metric names whose smaller values are better, when the workload does not say.
_LOWER_IS_BETTER = ("loss", "perplexity", "ppl", "error", "mse", "mae", "rmse", "nll", "bpc")

# A worker that dies (segfault, out of memory) takes the trials in flight with it; a
# trial is retried this many times before it is given up (for this run only: no file is
# written, so the next run tries it again).
_MAX_ATTEMPTS = 3
_HINT = (
    " (a script that calls run_trials with jobs > 1 must do it under "
    "`if __name__ == '__main__':`, or every worker re-runs the script)"
)


# -- workloads ----------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedWorkload:
    """What the runner needs of a workload, whether registered or user code.

    Args:
        name: the reference it was resolved from.
        train: the training function ``train(trial) -> None``.
        lr: the default initial LR for the trial's optimizer (``None``: 1e-3).
        metric: the held-out metric's name, if known.
        higher_is_better: its direction, if known.
    """

    name: str
    train: Callable[[Trial], None]
    lr: float | None = None
    metric: str | None = None
    higher_is_better: bool | None = None


def _import_function(ref: str) -> Callable[..., Any]:
    """``module.sub:function`` or ``path/to/file.py:function`` -> the function."""
    target, _, attr = ref.rpartition(":")
    if not target or not attr:
        raise ValueError(f"expected MODULE:FUNCTION or FILE.py:FUNCTION, got {ref!r}")
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        # a stable module name per path, so that two files called train.py do not clash
        name = f"_greedylr_user_{abs(hash(str(path))):x}_{path.stem}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            # the file's own folder, so that it can import its neighbours
            sys.path.insert(0, str(path.parent))
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
    else:
        module = importlib.import_module(target)
    try:
        function = getattr(module, attr)
    except AttributeError:
        raise AttributeError(f"{target} has no attribute {attr!r}") from None
    if not callable(function):
        raise TypeError(f"{ref} is not callable")
    return function


def resolve_workload(ref: str, optimizer: str | None = None) -> ResolvedWorkload:
    """A registered workload by name, or user code as ``module:function`` / ``file.py:function``.

    User functions may carry the facts a registered workload has, as attributes:
    ``train.metric = "accuracy"``, ``train.higher_is_better = True``, ``train.lr = 1e-3``.

    Args:
        ref: the workload reference of a :class:`TrialSpec`.
        optimizer: the trial's optimizer, to pick the workload's LR for it.

    Raises:
        KeyError: no registered workload by that name (and no ``:`` in it).
        ImportError, AttributeError, FileNotFoundError: the user function cannot be found.
    """
    if ":" in ref:
        train = _import_function(ref)
        direction = getattr(train, "higher_is_better", None)
        return ResolvedWorkload(
            name=ref,
            train=train,
            lr=getattr(train, "lr", None),
            metric=getattr(train, "metric", None),
            higher_is_better=None if direction is None else bool(direction),
        )
    from greedylr.studies import workloads

    w = workloads.get(ref)
    return ResolvedWorkload(
        name=w.name,
        train=w.train,
        lr=w.lr_for(optimizer),
        metric=w.metric,
        higher_is_better=w.higher_is_better,
    )


def make_specs(
    study: str,
    workloads: Iterable[str],
    schedules: Iterable[str],
    seeds: Iterable[int],
    *,
    optimizer: str | None = None,
    steps: int | None = None,
    lr: float | None = None,
    warmup: int | None = None,
    eval_every: int | None = None,
    settings: dict[str, Any] | None = None,
) -> list[TrialSpec]:
    """The grid workloads x schedules x seeds, with each registered workload's defaults.

    An argument left as ``None`` takes the workload's default (registered workloads)
    or the :class:`TrialSpec` default (user code). Every schedule of one workload gets
    the same optimizer, LR, warmup and length: only the schedule differs.
    """
    specs = []
    schedules, seeds = list(schedules), list(seeds)
    for ref in workloads:
        defaults: dict[str, Any] = {}
        if ":" not in ref:
            from greedylr.studies import workloads as registry

            w = registry.get(ref)
            defaults = {
                "optimizer": w.optimizer,
                "steps": w.steps,
                "warmup": w.warmup,
                "eval_every": w.eval_every,
            }
        chosen = {
            "optimizer": optimizer,
            "steps": steps,
            "lr": lr,
            "warmup": warmup,
            "eval_every": eval_every,
        }
        fields = {**defaults, **{k: v for k, v in chosen.items() if v is not None}}
        for schedule in schedules:
            for seed in seeds:
                specs.append(
                    TrialSpec.make(
                        study=study,
                        workload=ref,
                        schedule=schedule,
                        seed=seed,
                        settings=settings,
                        **fields,
                    )
                )
    return specs


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


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _guess_direction(metric: str) -> bool:
    return not any(word in metric.lower() for word in _LOWER_IS_BETTER)


def _preload(schedule: str, optimizer: str) -> None:
    if optimizer == "adafactor" or schedule in (
        "constant_warmup",
        "linear",
        "cosine",
        "cosine_restarts",
        "polynomial",
        "transformers_greedy",
    ):
        importlib.import_module("transformers")
    elif schedule == "schedule_free":
        importlib.import_module("schedulefree")


def execute_trial(spec: TrialSpec, *, threads: int | None = None) -> dict[str, Any]:
    """Run one trial here and now; never raises for the trial's own errors.

    Args:
        spec: the trial.
        threads: set ``torch.set_num_threads`` first (worker processes use 1).

    Returns:
        The result dict that :func:`run_trials` stores (see the module docstring).
        An exception in the training function gives ``status="failed"`` with its
        message and traceback; a non-finite loss gives ``status="diverged"``.
        ``KeyboardInterrupt`` and ``SystemExit`` propagate.
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
        workload.train(trial)
        if trial.current_step == 0:
            raise RuntimeError("the training function returned without calling trial.step(loss)")
        if trial.current_step != spec.steps:
            logger.warning(
                "%s: trained %d steps, the spec asked for %d",
                spec.key,
                trial.current_step,
                spec.steps,
            )
    except FloatingPointError as exc:
        status, error = "diverged", str(exc)
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        tb = traceback.format_exc()
    wall = time.perf_counter() - started

    record = trial.record if trial is not None else None
    metric, higher = (workload.metric, workload.higher_is_better) if workload else (None, None)
    if record is not None and record.metrics and metric is None:
        # the first metric the function reported is its headline metric
        metric = next(k for k in record.metrics[0] if k != "step")
    if metric is not None and higher is None:
        higher = _guess_direction(metric)
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
        "metric": {"name": metric, "higher_is_better": higher},
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


def _worker_died(spec: TrialSpec, error: str) -> dict[str, Any]:
    """A failed result for a trial whose process died; not written to the store."""
    logger.error("%s: %s", spec.key, error)
    return {
        "stored": False,
        "format": FORMAT,
        "key": spec.key,
        "spec": spec.to_dict(),
        "status": "failed",
        "error": error,
        "traceback": None,
        "lr": spec.lr,
        "metric": {"name": None, "higher_is_better": None},
        "steps_done": 0,
        "losses": [],
        "lrs": [],
        "metrics": [],
        "events": [],
        "wall_time": 0.0,
        "started": _now(),
        "finished": _now(),
        "code": code_version(),
        "machine": machine(),
    }


# -- the store ----------------------------------------------------------------------


def result_path(out_dir: str | os.PathLike[str], spec: TrialSpec) -> Path:
    """Where the result of ``spec`` lives under the study folder ``out_dir``."""
    return Path(out_dir) / TRIALS_DIR / f"{spec.key}.json"


def _json_default(value: Any) -> Any:
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
            json.dump(result, handle, default=_json_default, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable result %s: %s", path, exc)
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        logger.warning("ignoring %s: not a %s result", path, FORMAT)
        return None
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
        data = _read(path)
        if data is not None:
            results.append(data)

    def order(r: dict[str, Any]) -> tuple[Any, ...]:
        s = r["spec"]
        return (s["study"], s["workload"], s["schedule"], s["optimizer"], s["seed"], r["key"])

    return sorted(results, key=order)


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` while running: two runs of one study would run trials twice.

    An advisory ``flock``, released by the OS if the process dies, so a killed run
    never leaves a stale lock behind. Where ``fcntl`` is missing (Windows), no lock.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise RuntimeError(
                f"{out} is being written by {owner}: wait for it, or stop it (it resumes)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {platform.node()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _clean_temporaries(trials_dir: Path) -> None:
    """Remove what a killed run left half-written: never read, safe to delete."""
    if trials_dir.is_dir():
        for tmp in trials_dir.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()


# -- executors ----------------------------------------------------------------------

OnResult = Callable[[dict[str, Any]], None]


def _worker_init(threads: int) -> None:
    # Ctrl-C reaches the whole process group: let the parent alone decide what to do
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING)


def _run_inline(specs: Sequence[TrialSpec], on_result: OnResult) -> None:
    for spec in specs:
        on_result(execute_trial(spec))


def _terminate(pool: ProcessPoolExecutor) -> None:
    # ProcessPoolExecutor has no public way to stop a running task; its workers are
    # ours, and a killed trial simply has no file and runs again next time. Take the
    # list first: shutdown() forgets it.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(timeout=10)


def _run_local(specs: Sequence[TrialSpec], jobs: int, on_result: OnResult) -> None:
    queue = list(specs)
    attempts: Counter[str] = Counter()
    # Not fork: forking a process whose torch thread pools are running can deadlock.
    # A fork server that has imported torch (and nothing else has run in it) hands out
    # workers without paying torch's import in each of them.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "greedylr.studies.trial"])
    while queue:
        pool = ProcessPoolExecutor(
            max_workers=min(jobs, len(queue)),
            mp_context=context,
            initializer=_worker_init,
            initargs=(1,),
        )
        futures: dict[Future[dict[str, Any]], TrialSpec] = {
            pool.submit(execute_trial, spec): spec for spec in queue
        }
        queue = []
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    spec = futures[future]
                    try:
                        result = future.result()
                    except BrokenProcessPool as exc:
                        attempts[spec.key] += 1
                        if attempts[spec.key] >= _MAX_ATTEMPTS:
                            on_result(_worker_died(spec, f"worker process died: {exc}{_HINT}"))
                        else:
                            queue.append(spec)
                        continue
                    on_result(result)
        except BaseException:
            _terminate(pool)
            raise
        pool.shutdown(wait=True)
        if queue:
            logger.warning("a worker process died; restarting %d trial(s)", len(queue))


def _execute_one_thread(spec: TrialSpec) -> dict[str, Any]:
    return execute_trial(spec, threads=1)


def _run_ray(
    specs: Sequence[TrialSpec], jobs: int, address: str | None, on_result: OnResult
) -> None:
    try:
        import ray
    except ImportError as exc:
        raise ImportError("the ray executor needs Ray: pip install 'greedylr[ray]'") from exc
    started_here = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False)
        started_here = True
    remote = ray.remote(num_cpus=1, max_retries=_MAX_ATTEMPTS - 1)(_execute_one_thread)
    refs = {remote.remote(spec): spec for spec in specs}
    try:
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    result = _worker_died(refs[ref], f"ray task failed: {exc}")
                on_result(result)
    except BaseException:
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()


@contextlib.contextmanager
def _progress_bar(total: int, skipped: int, enabled: bool) -> Iterator[OnResult]:
    """A rich progress bar with ETA on stderr; a no-op callback when disabled."""
    if not enabled or total == 0:
        yield lambda result: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    counts: Counter[str] = Counter()
    with Progress(
        TextColumn("[bold]trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task(f"({skipped} already done)", total=total)

        def advance(result: dict[str, Any]) -> None:
            counts[result["status"]] += 1
            summary = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
            bar.update(task, advance=1, description=f"{summary} ({skipped} already done)")

        yield advance


def run_trials(
    specs: Iterable[TrialSpec],
    out_dir: str | os.PathLike[str],
    *,
    jobs: int = 1,
    executor: str = "local",
    address: str | None = None,
    retry_failed: bool = False,
    progress: bool = False,
    on_result: OnResult | None = None,
) -> list[dict[str, Any]]:
    """Run every trial of ``specs`` that has no result under ``out_dir`` yet.

    Args:
        specs: the trials (duplicates, by key, run once).
        out_dir: the study folder; results go to ``out_dir/trials/<key>.json``.
        jobs: trials at a time (local worker processes, or CPUs of a local Ray).
        executor: ``"local"`` or ``"ray"``.
        address: the Ray cluster to join (``"auto"``, ``"ray://host:10001"``);
            ``None`` starts a local Ray.
        retry_failed: rerun trials whose stored status is ``failed`` (a crash may
            have been fixed since); ``ok`` and ``diverged`` trials are never rerun.
        progress: show a rich progress bar with ETA on stderr.
        on_result: called with each new result, in the order they finish, after its
            file is written.

    Returns:
        The results of all ``specs`` (stored ones and new ones), in the order of ``specs``.

    Raises:
        KeyboardInterrupt: after Ctrl-C, once the running trials are stopped. Every
            finished trial is on disk; rerunning the same call resumes the study.
        ValueError: unknown executor or a bad ``jobs``.
        RuntimeError: another process is running trials into ``out_dir`` right now.
    """
    if executor not in ("local", "ray"):
        raise ValueError(f"executor must be 'local' or 'ray', got {executor!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
    out = Path(out_dir)
    unique: dict[str, TrialSpec] = {}
    for spec in specs:
        unique.setdefault(spec.key, spec)
    with _exclusive(out):
        return _run_unlocked(
            unique, out, jobs, executor, address, retry_failed, progress, on_result
        )


def _ran_under_other_defaults(spec: TrialSpec, data: dict[str, Any], defaults: str) -> bool:
    """A stored trial of a schedule built on the package defaults, whose digest is no
    longer ``defaults``. Files written before the digest was recorded carry none: kept."""
    if spec.schedule not in schedules.ON_PACKAGE_DEFAULTS:
        return False
    stored = (data.get("code") or {}).get("greedy_defaults")
    return stored is not None and stored != defaults


def _run_unlocked(
    unique: dict[str, TrialSpec],
    out: Path,
    jobs: int,
    executor: str,
    address: str | None,
    retry_failed: bool,
    progress: bool,
    on_result: OnResult | None,
) -> list[dict[str, Any]]:
    _clean_temporaries(out / TRIALS_DIR)

    stored: dict[str, dict[str, Any]] = {}
    todo: list[TrialSpec] = []
    defaults = schedules.greedy_defaults_digest()
    for key, spec in unique.items():
        path = result_path(out, spec)
        data = _read(path) if path.exists() else None
        if data is not None and _ran_under_other_defaults(spec, data, defaults):
            logger.warning("%s ran under other GreedyLR defaults: running it again", key)
            data = None
        if data is not None and (data["status"] != "failed" or not retry_failed):
            stored[key] = data
        else:
            todo.append(spec)
    logger.info(
        "%d trial(s): %d already done, %d to run (%s, jobs=%d)",
        len(unique),
        len(stored),
        len(todo),
        executor,
        jobs,
    )

    new: dict[str, dict[str, Any]] = {}
    with _progress_bar(len(todo), len(stored), progress) as advance:

        def keep(result: dict[str, Any]) -> None:
            spec = unique[result["key"]]
            if result.get("stored", True):
                write_result(result_path(out, spec), result)
            # hand back exactly what a later load_results() reads (tuples become lists)
            result = json.loads(json.dumps(result, default=_json_default))
            new[result["key"]] = result
            if result["status"] != "ok":
                logger.warning("%s: %s (%s)", spec.key, result["status"], result["error"])
            advance(result)
            if on_result is not None:
                on_result(result)

        try:
            if not todo:
                pass
            elif executor == "ray":
                _run_ray(todo, jobs, address, keep)
            elif jobs == 1:
                _run_inline(todo, keep)
            else:
                _run_local(todo, jobs, keep)
        except KeyboardInterrupt:
            logger.warning(
                "interrupted: %d new trial(s) kept, %d not run; rerun to resume",
                len(new),
                len(todo) - len(new),
            )
            raise
    return [stored.get(key) or new[key] for key in unique]

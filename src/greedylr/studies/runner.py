"""Run trials into the resumable results store, on local processes or on Ray.

A study is a list of :class:`~greedylr.studies.trial.TrialSpec`. :func:`run_trials`
runs the ones that have no result yet in the store (:mod:`greedylr.studies.store`, one
JSON file per trial under ``<out_dir>/trials/``), so an interrupted study resumes where it
stopped. Nothing is ever run twice, except a ``greedy`` trial stored under other
:class:`~greedylr.GreedyConfig` defaults than the installed ones, and a trial of user code
whose file changed since it ran (:func:`~greedylr.studies.targets.source_digest`): their
settings alone no longer say what they ran. A trial of a file that was moved since it ran
(a project folder moved or renamed: the same file name, function and code, the old path
gone, :func:`~greedylr.studies.targets.same_file_moved`) is kept, filed under the new path.

Each trial runs through :func:`~greedylr.studies.execution.execute_trial`, whose result
record (status, curves, metrics, events, provenance) is what the store keeps.

Executors:

- ``local`` (default): ``jobs`` worker processes (``forkserver``), each trial with
  ``torch.set_num_threads(1)``; ``jobs=1`` runs in this process, with torch's threads.
  A worker that dies (segfault, OOM killer, ``kill -9``) costs only its own trial,
  which runs again (up to three times); workers end with the process that started them.
- ``ray``: one Ray task per trial (``num_cpus=1``, one torch thread), on the cluster at
  ``address`` or on a local Ray started with ``jobs`` CPUs. Workers must be able to
  import the workload (an installed module, or a file path they can read). A trial
  lost with its worker or node runs again elsewhere (up to three times).

``trial_timeout`` stops a trial that runs longer, killing the process that runs it (a
local worker, or the Ray worker), and stores it as ``timeout``. Ctrl-C and SIGTERM stop
the running trials and keep the finished ones.

Examples:
    >>> from greedylr.studies.trial import TrialSpec
    >>> specs = [TrialSpec.make(study="demo", workload="my_pkg.train:train",
    ...                         schedule=s, seed=seed, steps=200)
    ...          for s in ("greedy", "cosine") for seed in range(3)]
    >>> results = run_trials(specs, "results/demo", jobs=2)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from greedylr._extras import requires_extra
from greedylr.studies import schedules
from greedylr.studies.execution import (
    execute_trial,
    timed_out_result,
    unfinished_result,
    warn_of_a_guessed_direction,
)
from greedylr.studies.store import (
    FORMAT,
    STATUSES,
    StoreError,
    as_loaded,
    clean_temporaries,
    exclusive,
    load_results,
    read_for_rerun,
    read_result,
    result_path,
    write_result,
)
from greedylr.studies.targets import (
    ResolvedWorkload,
    make_specs,
    ran_other_code,
    resolve_workload,
    same_file_moved,
    source_digest,
)
from greedylr.studies.trial import TrialSpec

__all__ = [
    "FORMAT",
    "STATUSES",
    "ResolvedWorkload",
    "StoreError",
    "execute_trial",
    "load_results",
    "make_specs",
    "resolve_workload",
    "result_path",
    "run_trials",
]

logger = logging.getLogger(__name__)


# A worker that dies (segfault, out of memory) takes the trials in flight with it; a
# trial is retried this many times before it is given up (for this run only: no file is
# written, so the next run tries it again).
_MAX_ATTEMPTS = 3
_HINT = (
    " (a script that calls run_trials with jobs > 1 must do it under "
    "`if __name__ == '__main__':`, or every worker re-runs the script)"
)


# -- executors ----------------------------------------------------------------------

OnResult = Callable[[dict[str, Any]], None]


def _run_inline(specs: Sequence[TrialSpec], on_result: OnResult) -> None:
    for spec in specs:
        on_result(execute_trial(spec))


def _exit_with_parent() -> None:
    """End this worker as soon as the process that started it is gone (even by SIGKILL),
    rather than let it finish a trial nobody will store."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="greedylr-parent-watch", daemon=True).start()


def _worker_main(conn: Connection, threads: int | None) -> None:
    """A local worker: for each spec it is sent, say ``None`` (started), then send the
    result; until it is sent ``None``."""
    # Ctrl-C reaches the whole process group: let the parent alone decide what to do
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    logging.basicConfig(level=logging.WARNING)
    while True:
        try:
            spec = conn.recv()
        except EOFError:
            return
        if spec is None:
            return
        conn.send(None)
        conn.send(execute_trial(spec, threads=threads))


def _died(worker: _Worker) -> str:
    """How a worker process ended, in words; where it ended before its trial started,
    with a hint at the usual cause (a script re-run in every worker)."""
    code = worker.process.exitcode
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"worker process died (killed by {signal.Signals(-code).name})"
    if worker.started is None:
        return f"worker process died before the trial started (exit code {code}){_HINT}"
    return f"worker process died during the trial (exit code {code})"


@dataclass
class _Worker:
    """One local worker process, the trial it runs (``None``: idle) and since when."""

    process: BaseProcess
    conn: Connection
    spec: TrialSpec | None = None
    started: float | None = None

    def assign(self, spec: TrialSpec) -> bool:
        """Hand it ``spec``; False if it is already dead."""
        self.spec, self.started = spec, None
        try:
            self.conn.send(spec)
        except OSError:
            return False
        return True

    def receive(self) -> tuple[dict[str, Any] | None, bool]:
        """Read what it sent: ``(its result or None, whether it is gone)``."""
        try:
            while self.conn.poll():
                message = self.conn.recv()
                if message is None:  # the trial started: its clock starts now
                    self.started = time.monotonic()
                    continue
                self.spec, self.started = None, None
                return message, False
        except (EOFError, OSError):
            return None, True
        return None, not self.process.is_alive()

    def stop(self, grace: float = 5.0) -> None:
        """Stop it now: SIGTERM, then SIGKILL if it is still there after ``grace`` s."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(grace)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class _LocalPool:
    """``jobs`` worker processes that this process owns, each running one trial at a time.

    Unlike a ``ProcessPoolExecutor``, each worker can be stopped alone: a trial over the
    time limit is killed with its process, and a worker that dies (a segfault, the OOM
    killer, ``kill -9``) takes only its own trial with it, which runs again.
    """

    def __init__(self, jobs: int, threads: int | None, on_result: OnResult,
                 trial_timeout: float | None) -> None:
        # Not fork: forking a process whose torch thread pools are running can deadlock.
        # A fork server that has imported torch (and nothing else has run in it) hands out
        # workers without paying torch's import in each of them; spawn where there is none
        # (Windows).
        self.context: ForkServerContext | SpawnContext
        if "forkserver" in multiprocessing.get_all_start_methods():
            self.context = multiprocessing.get_context("forkserver")
            self.context.set_forkserver_preload(["torch", "greedylr.studies.trial"])
        else:
            self.context = multiprocessing.get_context("spawn")
        self.jobs, self.threads, self.on_result = jobs, threads, on_result
        self.trial_timeout = trial_timeout
        self.workers: list[_Worker] = []
        self.attempts: Counter[str] = Counter()

    def run(self, specs: Sequence[TrialSpec]) -> None:
        """Run every spec; stop every worker on the way out, whatever happens."""
        queue = deque(specs)
        try:
            while queue or self._busy():
                self._hand_out(queue)
                self._wait(queue)
            for worker in self.workers:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)  # done: let it exit on its own
            for worker in self.workers:
                worker.process.join(5)
        finally:
            for worker in self.workers:  # all at once, then wait for each
                if worker.spec is not None and worker.process.is_alive():
                    worker.process.terminate()
            for worker in list(self.workers):
                self._retire(worker)

    def _start(self) -> _Worker:
        parent, child = self.context.Pipe()
        process = self.context.Process(
            target=_worker_main, args=(child, self.threads), name="greedylr-trial", daemon=True
        )
        process.start()
        child.close()
        worker = _Worker(process, parent)
        self.workers.append(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        worker.stop()
        self.workers.remove(worker)

    def _busy(self) -> list[_Worker]:
        return [w for w in self.workers if w.spec is not None]

    def _hand_out(self, queue: deque[TrialSpec]) -> None:
        while queue:
            idle = next((w for w in self.workers if w.spec is None), None)
            if idle is None and len(self.workers) >= self.jobs:
                return
            worker = idle or self._start()
            if not worker.assign(queue.popleft()):
                self._lost(worker, queue)

    def _lost(self, worker: _Worker, queue: deque[TrialSpec]) -> None:
        """``worker`` died with its trial: run the trial again, up to ``_MAX_ATTEMPTS``."""
        spec = worker.spec
        assert spec is not None
        self._retire(worker)
        self.attempts[spec.key] += 1
        error = _died(worker)
        if self.attempts[spec.key] >= _MAX_ATTEMPTS:
            self.on_result(unfinished_result(spec, "failed", error, stored=False))
        else:
            logger.warning("%s: %s; running it again", spec.key, error)
            queue.appendleft(spec)

    def _wait(self, queue: deque[TrialSpec]) -> None:
        """Wait for a result, a worker's death or the next time limit; deal with each."""
        busy = self._busy()
        timeout = None
        starts = [w.started for w in busy if w.started is not None]
        if self.trial_timeout is not None and starts:
            timeout = max(min(starts) + self.trial_timeout - time.monotonic(), 0.0)
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout))
        now = time.monotonic()
        for worker in busy:
            if worker.conn in ready or worker.process.sentinel in ready:
                result, gone = worker.receive()
                if result is not None:
                    self.on_result(result)
                elif gone:
                    worker.process.join(5)  # its exit code says how it died
                    self._lost(worker, queue)
                    continue
            if (
                self.trial_timeout is not None
                and worker.spec is not None
                and worker.started is not None
                and now - worker.started >= self.trial_timeout
            ):
                spec, ran = worker.spec, now - worker.started
                self._retire(worker)  # the process is killed: the trial is really stopped
                self.on_result(timed_out_result(spec, self.trial_timeout, ran))


def _ray_trial(spec: TrialSpec) -> Iterator[dict[str, Any]]:
    """A trial as a Ray generator task: first where it started, then its result.

    The first item lets the driver count a time limit from the moment the trial starts
    (not from its submission, which may wait for a free CPU), and says on which node.
    """
    import ray

    node = ray.get_runtime_context().get_node_id()
    yield {"started_on": node}
    result = execute_trial(spec, threads=1)
    result["machine"]["ray_node"] = node
    yield result


@dataclass
class _RayTrial:
    """A submitted Ray trial: its spec and, once it runs, when it started."""

    spec: TrialSpec
    started: float | None = None


def _run_ray(
    specs: Sequence[TrialSpec],
    jobs: int,
    address: str | None,
    on_result: OnResult,
    trial_timeout: float | None,
) -> None:
    with requires_extra("ray", "the ray executor"):
        import ray
    started_here = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False)
        started_here = True
    # Retries are the runner's, not Ray's: a retried trial must say again when it started.
    remote = ray.remote(num_cpus=1, max_retries=0)(_ray_trial)
    running: dict[Any, _RayTrial] = {remote.remote(spec): _RayTrial(spec) for spec in specs}
    attempts: Counter[str] = Counter()
    try:
        while running:
            timeout = None
            starts = [t.started for t in running.values() if t.started is not None]
            if trial_timeout is not None and starts:
                timeout = max(min(starts) + trial_timeout - time.monotonic(), 0.0)
            ready: list[Any] = ray.wait(list(running), num_returns=1, timeout=timeout)[0]
            for generator in ready:
                trial = running[generator]
                try:
                    item: dict[str, Any] = ray.get(next(generator))
                except ray.exceptions.RayError as exc:
                    # the worker or its node died (a trial's own errors are in its result)
                    del running[generator]
                    attempts[trial.spec.key] += 1
                    error = f"ray task failed: {type(exc).__name__}: {exc}".splitlines()[0]
                    if attempts[trial.spec.key] >= _MAX_ATTEMPTS:
                        on_result(unfinished_result(trial.spec, "failed", error, stored=False))
                    else:
                        logger.warning("%s: %s; running it again", trial.spec.key, error)
                        running[remote.remote(trial.spec)] = _RayTrial(trial.spec)
                    continue
                if "started_on" in item:
                    trial.started = time.monotonic()
                else:
                    del running[generator]
                    on_result(item)
            now = time.monotonic()
            for generator, trial in list(running.items()):
                if trial_timeout is not None and trial.started is not None:
                    if now - trial.started >= trial_timeout:
                        # force: Ray kills the worker process that runs it
                        ray.cancel(generator, force=True)
                        del running[generator]
                        on_result(timed_out_result(trial.spec, trial_timeout, now - trial.started))
    except BaseException:
        for generator in running:
            with contextlib.suppress(Exception):
                ray.cancel(generator, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM (``kill``, a batch scheduler, a container stop) stops a study as Ctrl-C does:
    the running trials are stopped, the finished ones are kept.

    Only where SIGTERM still has its default action (nobody else handles it) and only in
    the main thread (the only one that receives signals).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _progress_bar(total: int, skipped: int, enabled: bool) -> Iterator[OnResult]:
    """A rich progress bar with ETA on stderr; a no-op callback when disabled."""
    if not enabled or total == 0:
        yield lambda result: None
        return
    with requires_extra("compare", "the progress bar"):
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
    trial_timeout: float | None = None,
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
        retry_failed: rerun trials whose stored status is ``failed`` or ``short`` (a
            crash, or a loop that ended early, may have been fixed since); ``ok`` and
            ``diverged`` trials are never rerun.
        trial_timeout: the most seconds a trial may run (``None``: no limit). A trial
            over it is stopped with its process and stored with ``status="timeout"``;
            it runs again only under a higher limit or none. With a limit, even
            ``jobs=1`` runs trials in a worker process (with torch's default threads),
            so that there is a process to stop.
        progress: show a rich progress bar with ETA on stderr.
        on_result: called with each new result, in the order they finish, after its
            file is written.

    Returns:
        The results of all ``specs`` (stored ones and new ones), in the order of ``specs``.

    Raises:
        KeyboardInterrupt: after Ctrl-C or SIGTERM, once the running trials are stopped.
            Every finished trial is on disk; rerunning the same call resumes the study.
        StoreError: a result could not be written (disk full, read-only folder); the
            study stops there, every result stored before is intact.
        ValueError: unknown executor, a bad ``jobs`` or ``trial_timeout``.
        RuntimeError: another process is running trials into ``out_dir`` right now.
    """
    if executor not in ("local", "ray"):
        raise ValueError(f"executor must be 'local' or 'ray', got {executor!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
    if trial_timeout is not None and not (0 < trial_timeout < math.inf):
        raise ValueError(f"trial_timeout must be a positive number of seconds, got "
                         f"{trial_timeout!r}")
    out = Path(out_dir)
    unique: dict[str, TrialSpec] = {}
    for spec in specs:
        unique.setdefault(spec.key, spec)
    plan = _Plan(jobs, executor, address, retry_failed, trial_timeout)
    with exclusive(out), _stop_on_sigterm():
        return _run_unlocked(unique, out, plan, progress, on_result)


@dataclass(frozen=True)
class _Plan:
    """How to run the trials of one :func:`run_trials` call."""

    jobs: int
    executor: str
    address: str | None
    retry_failed: bool
    trial_timeout: float | None

    def execute(self, todo: Sequence[TrialSpec], keep: OnResult) -> None:
        """Run ``todo`` on the chosen executor, handing each result to ``keep``."""
        if self.executor == "ray":
            _run_ray(todo, self.jobs, self.address, keep, self.trial_timeout)
        elif self.jobs == 1 and self.trial_timeout is None:
            _run_inline(todo, keep)
        else:
            # one worker: torch's default threads, as in this process; several: one each
            threads = None if self.jobs == 1 else 1
            _LocalPool(self.jobs, threads, keep, self.trial_timeout).run(todo)

    def reruns(self, spec: TrialSpec, data: dict[str, Any], defaults: str,
               source: str | None) -> str | None:
        """Why the stored result ``data`` of ``spec`` must run again (``source``: the
        digest of its training function's file now); None to keep it."""
        if _ran_under_other_defaults(spec, data, defaults):
            return "it ran under other GreedyLR defaults"
        if ran_other_code(data, source):
            return "the file of its training function changed since it ran"
        if data["status"] in ("failed", "short") and self.retry_failed:
            return f"it is stored as {data['status']!r} and failed trials are retried"
        if data["status"] == "failed" and _missed_a_module(data.get("error")):
            return "it failed for a module that was not installed then"
        if data["status"] == "timeout":
            limit = data.get("trial_timeout")
            if self.trial_timeout is None or limit is None or self.trial_timeout > limit:
                return "it timed out under a lower time limit"
        return None


def _missed_a_module(error: str | None) -> bool:
    """Whether a trial's stored error is a missing module (an extra not installed, as
    the message advised): a fact about the environment then, not a result of the trial."""
    return (error or "").startswith(("MissingExtra:", "ModuleNotFoundError:"))


def _ran_under_other_defaults(spec: TrialSpec, data: dict[str, Any], defaults: str) -> bool:
    """A stored trial of a schedule built on the package defaults, whose digest is no
    longer ``defaults``. Files written before the digest was recorded carry none: kept."""
    if spec.schedule not in schedules.ON_PACKAGE_DEFAULTS:
        return False
    stored = (data.get("code") or {}).get("greedy_defaults")
    return stored is not None and stored != defaults


def _moved_here(out: Path, spec: TrialSpec, digest: str | None) -> dict[str, Any] | None:
    """The stored result of ``spec`` run from the same file before it was moved
    (:func:`~greedylr.studies.targets.same_file_moved`), filed again under ``spec``'s key
    (with ``moved_from``, the path it ran at); ``None`` where there is none."""
    if digest is None:
        return None
    prefix = f"{spec.workload_label}-{spec.schedule}-{spec.optimizer}-s{spec.seed}-"
    for path in sorted(result_path(out, spec).parent.glob(f"{prefix}*.json")):
        data = read_result(path)
        try:
            old = TrialSpec.from_dict(data["spec"]) if data is not None else None
        except (TypeError, ValueError):  # a spec this version does not know: not ours
            old = None
        if data is None or old is None:
            continue
        if (dataclasses.replace(old, workload=spec.workload).key != spec.key
                or not same_file_moved(old.workload, data.get("source_digest"),
                                       spec.workload, digest)):
            continue
        moved = {**data, "key": spec.key, "spec": spec.to_dict(),
                 "moved_from": [*data.get("moved_from", []), old.workload]}
        try:
            write_result(result_path(out, spec), moved)
            path.unlink()
        except OSError as exc:
            raise StoreError(exc.errno, f"cannot file {path.name} under its moved file's "
                             f"key {spec.key} ({exc.strerror or exc})") from exc
        logger.info("%s: ran from %s, the same file before it was moved: kept", spec.key,
                    old.workload)
        return moved
    return None


def _run_unlocked(
    unique: dict[str, TrialSpec],
    out: Path,
    plan: _Plan,
    progress: bool,
    on_result: OnResult | None,
) -> list[dict[str, Any]]:
    clean_temporaries(out)

    stored: dict[str, dict[str, Any]] = {}
    todo: list[TrialSpec] = []
    defaults = schedules.greedy_defaults_digest()
    sources = {ref: source_digest(ref) for ref in {s.workload for s in unique.values()}}
    for key, spec in unique.items():
        data = (read_for_rerun(result_path(out, spec))
                or _moved_here(out, spec, sources[spec.workload]))
        why = (plan.reruns(spec, data, defaults, sources[spec.workload])
               if data is not None else None)
        if why is not None:
            logger.warning("%s: running it again: %s", key, why)
        if data is not None and why is None:
            stored[key] = data
        else:
            todo.append(spec)
    undigested = Counter(unique[key].workload for key, data in stored.items()
                         if sources[unique[key].workload] and "source_digest" not in data)
    for ref, count in sorted(undigested.items()):
        logger.warning("%d stored trial(s) of %s were stored before greedylr recorded the "
                       "code a trial ran: they are kept even if its file has changed since "
                       "(delete them to run them again)", count, ref)
    logger.info(
        "%d trial(s): %d already done, %d to run (%s, jobs=%d)",
        len(unique),
        len(stored),
        len(todo),
        plan.executor,
        plan.jobs,
    )

    new: dict[str, dict[str, Any]] = {}
    with _progress_bar(len(todo), len(stored), progress) as advance:

        def keep(result: dict[str, Any]) -> None:
            spec = unique[result["key"]]
            result["source_digest"] = sources[spec.workload]
            if result.pop("stored", True):
                path = result_path(out, spec)
                try:
                    write_result(path, result)
                except OSError as exc:
                    raise StoreError(
                        exc.errno,
                        f"cannot store the result of {spec.key} in {path.parent} "
                        f"({exc.strerror or exc}): the study stopped; the {len(new)} "
                        "result(s) of this run stored before are kept; make room and "
                        "rerun to resume",
                    ) from exc
            # hand back exactly what a later load_results() reads (tuples become lists)
            result = as_loaded(result)
            new[result["key"]] = result
            warn_of_a_guessed_direction(result)
            if result["status"] != "ok":
                logger.warning("%s: %s (%s)", spec.key, result["status"], result["error"])
            advance(result)
            if on_result is not None:
                on_result(result)

        try:
            if todo:
                plan.execute(todo, keep)
        except KeyboardInterrupt:
            logger.warning(
                "interrupted: %d new trial(s) kept, %d not run; rerun to resume",
                len(new),
                len(todo) - len(new),
            )
            raise
    return [stored.get(key) or new[key] for key in unique]

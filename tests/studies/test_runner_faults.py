"""Studies under faults: time limits, killed workers, a full or read-only disk, damaged
results, SIGTERM and SIGKILL to ``greedylr compare``. Each ends in a clear status or a
one-line message, and nothing already stored is lost."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from greedylr.cli import main
from greedylr.studies.report import write_report
from greedylr.studies.runner import StoreError, load_results, result_path, run_trials
from greedylr.studies.trial import TrialSpec
from isolation import in_private_namespaces

TOY = f"{Path(__file__).with_name('toy_train.py')}:train"


def _spec(seed: int = 0, schedule: str = "greedy", steps: int = 20,
          **settings: object) -> TrialSpec:
    return TrialSpec.make(study="f", workload=TOY, schedule=schedule, seed=seed, steps=steps,
                          eval_every=10, settings=settings)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _files(out: Path) -> dict[str, bytes]:
    """Every file of the study's trials folder but hidden ones (temporaries, ballast)."""
    return {p.name: p.read_bytes() for p in (out / "trials").iterdir()
            if not p.name.startswith(".")}


# -- the time limit ----------------------------------------------------------------


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_trial_over_the_time_limit_is_killed_and_stored_as_timeout(
    tmp_path: Path, jobs: int
) -> None:
    running = tmp_path / "running"
    running.mkdir()
    out = tmp_path / "study"
    slow = _spec(0, workload_sleep=3.0, workload_running_dir=str(running))  # ~60 s
    fast = [_spec(seed) for seed in (1, 2)]
    dead_at_report: list[bool] = []

    def check(result: dict) -> None:
        if result["status"] == "timeout":  # its process must be gone by now
            (marker,) = running.iterdir()
            dead_at_report.append(not _alive(int(marker.name.rsplit("-", 1)[1])))

    # 15 s, far below the slow trial's ~60 s and far above a fast trial's second: at 3 s
    # and then at 6 s a CI run on a loaded machine (a load of 5 on two cores) stopped a
    # fast trial too
    results = run_trials([slow, *fast], out, jobs=jobs, trial_timeout=15.0, on_result=check)
    assert [r["status"] for r in results] == ["timeout", "ok", "ok"]
    assert dead_at_report == [True]
    timed_out = json.loads(result_path(out, slow).read_text())
    assert timed_out["status"] == "timeout" and timed_out["trial_timeout"] == 15.0
    assert "over the trial time limit of 15 s" in timed_out["error"]
    assert 15.0 <= timed_out["wall_time"] < 25
    assert "stored" not in timed_out

    # the same limit: kept as it is
    seen: list[str] = []
    run_trials([slow, *fast], out, jobs=jobs, trial_timeout=15.0,
               on_result=lambda r: seen.append(r["key"]))
    assert seen == []


def test_compare_with_a_trial_timeout_reports_the_timed_out_trials(tmp_path: Path) -> None:
    out = tmp_path / "study"
    code = main(["compare", TOY, "--schedules", "greedy,exponential", "--seeds", "1",
                 "--steps", "20", "--set", "workload_sleep=0.5", "--trial-timeout", "2",
                 "--jobs", "2", "--out", str(out)])
    assert code == 1  # some trial did not finish
    assert {r["status"] for r in load_results(out)} == {"timeout"}
    report = (out / "report.md").read_text()
    assert "ok/short/diverged/failed/timeout" in report
    assert "## Failed and timed-out runs" in report
    assert report.count("over the trial time limit of 2 s") == 2
    # a limit that is not a positive number is refused before anything runs
    assert main(["compare", TOY, "--trial-timeout", "0", "--out", str(tmp_path / "no")]) == 2
    assert not (tmp_path / "no").exists()


def test_a_raised_or_removed_limit_reruns_the_timed_out_trials(tmp_path: Path) -> None:
    out = tmp_path / "study"
    spec = _spec(0, workload_sleep=0.25)  # ~5 s
    assert run_trials([spec], out, trial_timeout=1.0)[0]["status"] == "timeout"
    seen: list[str] = []
    run_trials([spec], out, trial_timeout=1.0, on_result=lambda r: seen.append(r["status"]))
    assert seen == []
    run_trials([spec], out, on_result=lambda r: seen.append(r["status"]))
    assert seen == ["ok"]
    write_report(out)  # a report of a study that had timeouts


# -- killed workers ----------------------------------------------------------------


def _kill_a_worker_mid_trial(out: Path, running: Path, killed: list[int]) -> None:
    """Once a trial is stored, SIGKILL a worker that started another one just now."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if list(out.glob("trials/*.json")):
            for marker in running.iterdir():
                with contextlib.suppress(FileNotFoundError):  # it may end meanwhile
                    if time.time() - marker.stat().st_mtime < 0.5:  # far from its end
                        killed.append(int(marker.name.rsplit("-", 1)[1]))
                        os.kill(killed[0], signal.SIGKILL)
                        return
        time.sleep(0.01)


def test_a_worker_killed_mid_trial_costs_only_its_trial_which_runs_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    running = tmp_path / "running"
    running.mkdir()
    out = tmp_path / "study"
    specs = [_spec(seed, workload_sleep=0.1, workload_running_dir=str(running))
             for seed in range(4)]  # ~2 s each
    killed: list[int] = []
    killer = threading.Thread(target=_kill_a_worker_mid_trial, args=(out, running, killed))
    killer.start()
    with caplog.at_level(logging.WARNING, logger="greedylr.studies.runner"):
        results = run_trials(specs, out, jobs=2)
    killer.join()
    assert [r["status"] for r in results] == ["ok"] * 4
    assert "worker process died (killed by SIGKILL); running it again" in caplog.text
    # the killed trial left its marker; it ran again elsewhere; one file per trial
    assert [p.name for p in running.iterdir()] == [f"local-{killed[0]}"]
    assert sorted(_files(out)) == sorted(f"{s.key}.json" for s in specs)
    assert results == load_results(out)


def test_a_trial_that_kills_its_worker_every_time_fails_clearly_and_is_not_stored(
    tmp_path: Path,
) -> None:
    out = tmp_path / "study"
    good, deadly = _spec(0), _spec(1, workload_kill_at=3)
    results = run_trials([good, deadly], out, jobs=2)
    assert [r["status"] for r in results] == ["ok", "failed"]
    assert results[1]["error"].startswith("worker process died (killed by SIGKILL)")
    assert "\n" not in results[1]["error"]
    assert result_path(out, good).is_file() and not result_path(out, deadly).exists()


def test_a_trial_that_ends_its_worker_is_told_apart_from_a_worker_that_never_started_it(
    tmp_path: Path,
) -> None:
    # the hint about `if __name__ == '__main__':` is for a worker that dies before the
    # trial starts (a script re-run in it), not for code that ends its own process
    (result,) = run_trials([_spec(0, workload_exit_at=3)], tmp_path / "study", jobs=2)
    assert result["error"] == "worker process died during the trial (exit code 3)"


def _exit_at_once() -> None:
    os._exit(1)


def test_a_worker_that_dies_before_its_trial_starts_gets_the_main_guard_hint() -> None:
    # what a script that calls run_trials without `if __name__ == '__main__':` sees
    from multiprocessing import Pipe, get_context

    from greedylr.studies.runner import _died, _Worker

    process = get_context("spawn").Process(target=_exit_at_once)
    process.start()
    process.join()
    parent, child = Pipe()
    child.close()
    error = _died(_Worker(process, parent, spec=_spec(0)))
    assert error.startswith("worker process died before the trial started (exit code 1)")
    assert "if __name__ == '__main__':" in error


# -- the disk ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["read-only", "full"])
@in_private_namespaces(timeout=300)
def test_a_disk_that_refuses_a_result_stops_the_study_and_keeps_what_was_stored(
    tmp_path: Path, fault: str
) -> None:
    # the trials folder on a file system of our own (in this test's private mount
    # namespace); the study's lock stays open elsewhere, as a remount read-only needs
    out = tmp_path / "study"
    disk = out / "trials"
    disk.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    specs = [_spec(seed) for seed in range(5)]

    def break_the_disk_after_two(result: dict) -> None:
        if len(list((out / "trials").glob("*.json"))) == 2:
            if fault == "read-only":
                subprocess.run(["mount", "-o", "remount,bind,ro", str(disk)], check=True)
            else:  # fill every byte that is left
                with open(disk / ".ballast", "wb") as ballast:
                    try:
                        while True:
                            ballast.write(b"\0" * 65536)
                            ballast.flush()
                    except OSError:
                        pass

    with pytest.raises(StoreError) as raised:
        run_trials(specs, out, on_result=break_the_disk_after_two)
    message = str(raised.value)
    reason = "Read-only file system" if fault == "read-only" else "No space left on device"
    assert reason in message and "the 2 result(s) of this run stored before are kept" in message
    assert "\n" not in message
    kept = _files(out)
    assert len(kept) == 2 and all(json.loads(b)["status"] == "ok" for b in kept.values())
    assert not list(disk.glob(".*.tmp"))  # the half-written result was removed

    # room again: the rerun keeps the two, runs the three others
    if fault == "read-only":
        subprocess.run(["mount", "-o", "remount,bind,rw", str(disk)], check=True)
    else:
        (disk / ".ballast").unlink()
    ran: list[str] = []
    run_trials(specs, out, on_result=lambda r: ran.append(f"{r['key']}.json"))
    assert len(ran) == 3 and set(ran).isdisjoint(kept)
    after = _files(out)
    assert len(after) == 5 and all(after[name] == blob for name, blob in kept.items())
    subprocess.run(["umount", str(disk)], check=True)


def test_a_damaged_result_is_moved_aside_and_its_trial_runs_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "study"
    specs = [_spec(seed, steps=10) for seed in range(4)]
    run_trials(specs, out)
    before = _files(out)
    cut, wrong, foreign = (result_path(out, s) for s in specs[:3])
    cut.write_bytes(cut.read_bytes()[: len(cut.read_bytes()) // 2])  # what a crash leaves
    damaged = json.loads(wrong.read_text())
    del damaged["status"]
    wrong.write_text(json.dumps(damaged))
    foreign.write_bytes(result_path(out, specs[3]).read_bytes())  # another trial's result
    garbage = {p.name: p.read_bytes() for p in (cut, wrong, foreign)}

    # reading alone changes nothing: the damaged files are skipped with a warning each
    with caplog.at_level(logging.WARNING, logger="greedylr.studies.runner"):
        assert len(load_results(out)) == 1
    for path in (cut, wrong, foreign):
        assert str(path) in caplog.text
    caplog.clear()

    ran: list[str] = []
    with caplog.at_level(logging.WARNING, logger="greedylr.studies.runner"):
        results = run_trials(specs, out, on_result=lambda r: ran.append(r["key"]))
    assert sorted(ran) == sorted(s.key for s in specs[:3])
    assert all(r["status"] == "ok" for r in results)
    after = _files(out)
    untouched = f"{specs[3].key}.json"
    assert sorted(after) == sorted([*before, *(f"{name}.damaged" for name in garbage)])
    assert after[untouched] == before[untouched]
    assert all(after[f"{name}.damaged"] == blob for name, blob in garbage.items())
    assert caplog.text.count("moved ") == 3 and "runs again" in caplog.text
    assert len(load_results(out)) == 4


# -- signals to `greedylr compare` -----------------------------------------------------


def _compare(out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "greedylr.cli", "compare", TOY, "--schedules",
         "greedy,exponential", "--seeds", "4", "--steps", "20", "--set", "workload_sleep=0.3",
         "--jobs", "2", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _descendants_once_running(
    process: subprocess.Popen[bytes], out: Path
) -> tuple[list[int], list[int]]:
    """Every process the study started, and its trial workers (the fork server's
    children), once it has stored two trials and runs more."""
    deadline = time.monotonic() + 120
    while len(list(out.glob("trials/*.json"))) < 2:
        assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the study made no progress"
        time.sleep(0.05)
    children = psutil.Process(process.pid).children(recursive=True)
    workers = [child.pid for child in children if child.ppid() != process.pid]
    assert len(workers) == 2
    return [child.pid for child in children], workers


def _assert_all_gone(pids: list[int], within: float) -> None:
    deadline = time.monotonic() + within
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if _alive(pid)], "a worker outlived the study"


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_compare_stopped_by_a_signal_leaves_no_process_and_intact_trials(
    tmp_path: Path, how: signal.Signals
) -> None:
    out = tmp_path / "study"
    process = _compare(out)
    everything, workers = _descendants_once_running(process, out)
    process.send_signal(how)
    code = process.wait(timeout=60)
    if how == signal.SIGTERM:  # as Ctrl-C: the workers stopped, the finished trials kept
        assert code == 130
        assert b"interrupted" in process.stderr.read()  # type: ignore[union-attr]
        _assert_all_gone(workers, within=0)
    else:  # nobody could clean up: the workers see their parent die and end themselves,
        # at once, not when their 6 s trials end
        assert code == -signal.SIGKILL
        _assert_all_gone(workers, within=3)
    _assert_all_gone(everything, within=20)  # the fork server follows in its own time
    stored = _files(out)
    assert 2 <= len(stored) < 8
    assert all(json.loads(blob)["status"] == "ok" for blob in stored.values())
    assert not list((out / "trials").glob(".*"))  # no temporary left behind

"""The runner: result files, statuses, resume after a kill, executors agree."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from greedylr.studies import schedules
from greedylr.studies.report import write_report
from greedylr.studies.runner import (
    FORMAT,
    execute_trial,
    load_results,
    make_specs,
    resolve_workload,
    result_path,
    run_trials,
)
from greedylr.studies.trial import TrialSpec

TOY = f"{Path(__file__).with_name('toy_train.py')}:train"


def _spec(
    schedule: str = "greedy", seed: int = 0, steps: int = 30, **settings: object
) -> TrialSpec:
    return TrialSpec.make(
        study="t",
        workload=TOY,
        schedule=schedule,
        seed=seed,
        steps=steps,
        eval_every=10,
        settings=settings,
    )


def test_a_trial_records_losses_lrs_metrics_and_provenance() -> None:
    result = execute_trial(_spec())
    assert result["status"] == "ok" and result["error"] is None
    assert result["format"] == FORMAT
    assert len(result["losses"]) == len(result["lrs"]) == 30 == result["steps_done"]
    assert [m["step"] for m in result["metrics"]] == [10, 20, 30]
    assert result["metric"] == {"name": "mse", "higher_is_better": False}
    assert result["lr"] == 0.05  # the function's own default
    assert result["code"]["greedylr"] and result["machine"]["cpu_count"]
    assert result["wall_time"] > 0


def test_a_user_function_that_feeds_a_held_out_reacting_schedule_nothing_is_warned_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from greedylr.studies import execution

    monkeypatch.setattr(execution, "_UNFED_WARNED", set())
    unfed = "reacts to a held-out value, but the training function fed it none"
    with caplog.at_level(logging.WARNING, logger="greedylr.studies.execution"):
        for spec in (_spec(), _spec(seed=1), _spec("reduce_on_plateau_eval")):
            assert execute_trial(spec)["status"] == "ok"
    assert caplog.text.count(unfed) == 2  # once for greedy, once for the plateau
    assert "'greedy'" in caplog.text and "'reduce_on_plateau_eval'" in caplog.text
    caplog.clear()
    monkeypatch.setattr(execution, "_UNFED_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="greedylr.studies.execution"):
        fed = execute_trial(_spec(workload_feed=True))
        cosine = execute_trial(_spec("cosine"))  # reacts to nothing held out
        off = execute_trial(_spec(eval_patience=None))  # its held-out rule off
    assert fed["status"] == cosine["status"] == off["status"] == "ok"
    assert unfed not in caplog.text
    assert [m["feed"] for m in fed["metrics"]] == [m["mse"] for m in fed["metrics"]]


def test_a_headline_metric_that_is_the_fed_value_is_warned_once_per_function(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the toy feeds the schedule the very mse it reports as its headline
    from greedylr.studies import execution

    monkeypatch.setattr(execution, "_FED_HEADLINES_WARNED", set())
    judged_on_fed = "the held-out metric 'mse' equals the fed value at every evaluation"
    with caplog.at_level(logging.WARNING, logger="greedylr.studies.execution"):
        for spec in (_spec(workload_feed=True), _spec(seed=1, workload_feed=True),
                     _spec("cosine", workload_feed=True)):
            assert execute_trial(spec)["status"] == "ok"
    assert caplog.text.count(judged_on_fed) == 1
    caplog.clear()
    monkeypatch.setattr(execution, "_FED_HEADLINES_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="greedylr.studies.execution"):
        assert execute_trial(_spec("cosine"))["status"] == "ok"  # fed nothing
    assert "equals the fed value" not in caplog.text


def test_the_same_seed_gives_the_same_trial_and_another_seed_does_not() -> None:
    a, b, c = execute_trial(_spec()), execute_trial(_spec()), execute_trial(_spec(seed=1))
    assert a["losses"] == b["losses"] and a["lrs"] == b["lrs"]
    assert a["losses"] != c["losses"]


def test_a_crash_is_failed_and_a_nan_is_diverged() -> None:
    failed = execute_trial(_spec(workload_fail_at=5))
    assert failed["status"] == "failed"
    assert failed["error"] == "ValueError: boom at step 5"
    assert "toy_train.py" in failed["traceback"]
    assert failed["steps_done"] == 4
    diverged = execute_trial(_spec(workload_nan_at=7))
    assert diverged["status"] == "diverged" and "step 7" in diverged["error"]
    assert diverged["steps_done"] == 7
    missing = execute_trial(
        TrialSpec.make(study="t", workload="no_such_module:train", schedule="greedy")
    )
    assert missing["status"] == "failed" and "ModuleNotFoundError" in missing["error"]


def test_unknown_settings_fail_the_trial_clearly() -> None:
    result = execute_trial(_spec(schedule="cosine", factor=0.5))
    assert result["status"] == "failed" and "does not take setting" in result["error"]


def test_resolve_workload_by_path_and_by_module() -> None:
    w = resolve_workload(TOY)
    assert (w.metric, w.higher_is_better, w.lr) == ("mse", False, 0.05)
    assert resolve_workload("json:dumps").train is json.dumps
    with pytest.raises(ValueError, match="MODULE:FUNCTION"):
        resolve_workload(":train")


def test_make_specs_grid() -> None:
    specs = make_specs("s", [TOY], ["greedy", "cosine"], range(3), steps=50, warmup=5)
    assert len(specs) == 6 == len({s.key for s in specs})
    assert {(s.steps, s.warmup) for s in specs} == {(50, 5)}


def test_run_trials_stores_one_file_each_and_skips_done_ones(tmp_path: Path) -> None:
    specs = [_spec(s, seed) for s in ("greedy", "cosine") for seed in (0, 1)]
    specs.append(_spec("cosine", workload_fail_at=3))
    seen: list[str] = []
    results = run_trials(specs + specs[:1], tmp_path, on_result=lambda r: seen.append(r["key"]))
    assert [r["key"] for r in results] == [s.key for s in specs]  # spec order, deduplicated
    assert sorted(seen) == sorted(s.key for s in specs)
    assert all(result_path(tmp_path, s).is_file() for s in specs)
    assert [r["status"] for r in results].count("failed") == 1

    seen.clear()
    again = run_trials(specs, tmp_path, on_result=lambda r: seen.append(r["key"]))
    assert seen == [] and again == results
    run_trials(specs, tmp_path, retry_failed=True, on_result=lambda r: seen.append(r["key"]))
    assert seen == [specs[-1].key]
    assert len(load_results(tmp_path)) == len(specs)



def _stored_digest(out: Path, spec: TrialSpec) -> str:
    return json.loads(result_path(out, spec).read_text())["code"]["greedy_defaults"]


def test_a_stored_greedy_trial_from_other_defaults_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = [_spec("greedy"), _spec("cosine")]
    run_trials(specs, tmp_path)
    current = schedules.greedy_defaults_digest()
    assert _stored_digest(tmp_path, specs[0]) == current

    def rewrite(digest: str | None) -> None:  # as an older greedylr would have written them
        for spec in specs:
            path = result_path(tmp_path, spec)
            data = json.loads(path.read_text())
            data["code"].pop("greedy_defaults")
            if digest is not None:
                data["code"]["greedy_defaults"] = digest
            path.write_text(json.dumps(data))

    seen: list[str] = []
    rewrite("0000000000")
    run_trials(specs, tmp_path, on_result=lambda r: seen.append(r["key"]))
    assert seen == [specs[0].key]  # greedy again; cosine does not use GreedyLR's defaults
    assert _stored_digest(tmp_path, specs[0]) == current

    seen.clear()
    rewrite(None)  # written before the digest was recorded: kept
    run_trials(specs, tmp_path, on_result=lambda r: seen.append(r["key"]))
    assert seen == []

    # the digest follows the defaults
    monkeypatch.setattr(
        schedules, "GreedyConfig", functools.partial(schedules.GreedyConfig, smoothing="window")
    )
    assert schedules.greedy_defaults_digest() != current


def test_a_stored_trial_of_code_that_changed_since_runs_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a user who fixes their training function and reruns gets results of the new code
    script = tmp_path / "train.py"
    script.write_text(Path(TOY.rpartition(":")[0]).read_text())
    specs = [TrialSpec.make(study="t", workload=f"{script}:train", schedule=s, steps=10)
             for s in ("greedy", "cosine")]
    seen: list[str] = []
    run_trials(specs, tmp_path / "out")
    run_trials(specs, tmp_path / "out", on_result=lambda r: seen.append(r["key"]))
    assert seen == []  # unchanged: resumed, nothing runs again
    script.write_text(script.read_text() + "\n# fixed\n")
    with caplog.at_level(logging.WARNING, logger="greedylr.studies.runner"):
        run_trials(specs, tmp_path / "out", on_result=lambda r: seen.append(r["key"]))
    assert seen == [s.key for s in specs]
    assert "the file of its training function changed since it ran" in caplog.text
    # a trial of the old code that this run did not ask for stays stored, but the report
    # leaves it out and says so (it measured other code)
    old = TrialSpec.make(study="t", workload=f"{script}:train", schedule="linear", steps=10)
    run_trials([old], tmp_path / "out")
    script.write_text(script.read_text() + "\n# fixed again\n")
    run_trials(specs, tmp_path / "out")
    text = write_report(tmp_path / "out").read_text()
    assert "**1 stored trial(s) left out**" in text
    assert "| cosine |" in text and "| linear |" not in text
    # edited again, nothing rerun: an edit never empties the report, it says so
    script.write_text(script.read_text() + "\n# a comment\n")
    text = write_report(tmp_path / "out").read_text()
    assert "**3 trial(s) ran an earlier version" in text and "| linear |" in text
    # stored before the digest was recorded: kept
    for spec in specs:
        path = result_path(tmp_path / "out", spec)
        data = json.loads(path.read_text())
        del data["source_digest"]
        path.write_text(json.dumps(data))
    script.write_text(script.read_text() + "\n# again\n")
    seen.clear()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="greedylr.studies.runner"):
        run_trials(specs, tmp_path / "out", on_result=lambda r: seen.append(r["key"]))
    assert seen == []
    assert "2 stored trial(s) of " in caplog.text and "kept even if its file has changed" \
        in caplog.text


# -- what a trial reports, and what becomes of it ---------------------------------------

_LOOP = textwrap.dedent(
    """
    import numpy as np
    import torch


    def _loop(trial, evaluate, stop_at=None):
        torch.manual_seed(trial.seed)
        w = torch.nn.Parameter(torch.zeros(4))
        optimizer = torch.optim.SGD([w], lr=trial.lr)
        trial.scheduler(optimizer)
        x = torch.randn(32, 4)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
        for step in range(1, trial.steps + 1):
            loss = ((x @ w - y) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            trial.step(loss)
            evaluate(trial, step)
            if step == stop_at:
                return


    def feed_first(trial):  # the schedule's value every 2 steps, the metric once at the end
        def evaluate(trial, step):
            if step % 2 == 0:
                trial.report(feed=1.0)
            if step == trial.steps:
                trial.report(accuracy=0.9)
        _loop(trial, evaluate)


    def feed_only(trial):
        _loop(trial, lambda trial, step: trial.report(feed=1.0 + trial.seed))


    def top1_err(trial):
        _loop(trial, lambda trial, step: trial.report(top1_err=0.3))


    def stated(trial):
        _loop(trial, lambda trial, step: trial.report(top1_err=0.3))


    stated.higher_is_better = True  # the function says: kept, however the name reads


    def early(trial):  # greedy's loop ends after one step, and it reports the best metric
        greedy = trial.spec.schedule == "greedy"
        _loop(trial, lambda trial, step: trial.report(accuracy=0.5 + 0.1 * greedy),
              stop_at=1 if greedy else None)


    def precision(tp, fp):  # numpy told to raise: 0/0 where nothing was predicted
        with np.errstate(all="raise"):
            return float(np.float64(tp) / np.float64(tp + fp))


    def metric_bug(trial):
        _loop(trial, lambda trial, step: trial.report(precision=precision(0, 0)))


    def needs_a_module(trial):  # a dependency the user has not installed yet
        import module_installed_later  # noqa: F401
        _loop(trial, lambda trial, step: trial.report(accuracy=0.5))


    def wrapped_nan(trial):  # a framework that wraps what trial.step raises
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=trial.lr)
        trial.scheduler(optimizer)
        try:
            for loss in (1.0, float("nan")):
                optimizer.step()
                trial.step(loss)
        except FloatingPointError as exc:
            raise RuntimeError("the training loop stopped") from exc
    """
)


@pytest.fixture
def user_code(tmp_path: Path) -> Path:
    """A user's training file with the functions of :data:`_LOOP`."""
    path = tmp_path / "user_train.py"
    path.write_text(_LOOP)
    return path


def _user(path: Path, function: str, schedule: str = "greedy", seed: int = 0,
          steps: int = 6) -> TrialSpec:
    return TrialSpec.make(study="u", workload=f"{path}:{function}", schedule=schedule,
                          seed=seed, steps=steps)


def test_feed_is_the_headline_metric_only_where_nothing_else_is_reported(
    user_code: Path,
) -> None:
    # fed every 2 steps, scored once at the end: the headline is the score
    first = execute_trial(_user(user_code, "feed_first"))
    assert first["status"] == "ok"
    assert first["metric"] == {"name": "accuracy", "higher_is_better": True, "guessed": True}
    # fed and nothing else: feed is what it is documented as, a loss
    only = execute_trial(_user(user_code, "feed_only"))
    assert only["metric"] == {"name": "feed", "higher_is_better": False}


def test_the_direction_of_a_metric_is_the_functions_else_read_from_its_name(
    user_code: Path,
) -> None:
    guessed = execute_trial(_user(user_code, "top1_err"))
    assert guessed["metric"] == {"name": "top1_err", "higher_is_better": False,
                                 "guessed": True}
    stated = execute_trial(_user(user_code, "stated"))
    assert stated["metric"] == {"name": "top1_err", "higher_is_better": True}


@pytest.mark.parametrize(
    ("name", "higher"),
    [("top1_err", False), ("error_rate", False), ("wer", False), ("eval_cer", False),
     ("fid", False), ("val_perplexity", False), ("ppl", False), ("mse", False),
     ("test_rmse", False), ("MAE", False), ("valLoss", False), ("logloss", False),
     ("nll", False), ("accuracy", True), ("top1_acc", True), ("f1", True), ("bleu", True),
     ("answer_accuracy", True), ("precision", True), ("auc", True),
     # read as higher-is-better before: an LR cut at every improvement where fed
     ("val_cross_entropy", False), ("val_ce", False), ("val_bce", False),
     ("val_xent", False), ("val_rmsle", False), ("val_huber", False), ("val_brier", False),
     ("val_l1", False), ("val_lpips", False), ("neg_log_likelihood", False),
     ("val_hamming", False), ("val_loss2", False),
     ("log_likelihood", True), ("entropy", True), ("val_f1", True), ("top1_acc", True)],
)
def test_direction_from_name(name: str, higher: bool) -> None:
    from greedylr import _direction
    from greedylr.studies import execution

    assert _direction.direction_from_name(name) is higher
    # one rule, for the harness and the integrations: the harness's name is the same function
    assert execution.direction_from_name is _direction.direction_from_name


def test_a_guessed_direction_is_warned_once_and_said_in_the_report(
    user_code: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    specs = [_user(user_code, "top1_err", s, seed) for s in ("greedy", "cosine")
             for seed in (0, 1)]
    with caplog.at_level(logging.WARNING, logger="greedylr.studies.execution"):
        run_trials(specs, tmp_path / "out")
    warned = [m for m in caplog.messages if "a guess from its name" in m]
    assert len(warned) == 1 and "'top1_err' is taken as lower is better" in warned[0]
    assert "train.higher_is_better = False" in warned[0]
    text = write_report(tmp_path / "out").read_text()
    assert ("The held-out metric `top1_err` is taken as **lower is better**, a guess from "
            "its name") in text
    # stated: nothing to say
    run_trials([_user(user_code, "stated", s) for s in ("greedy", "cosine")], tmp_path / "s")
    assert "a guess from its name" not in write_report(tmp_path / "s").read_text()


def test_a_floating_point_error_of_the_users_own_code_is_failed_not_diverged(
    user_code: Path,
) -> None:
    # a metric's 0/0 under numpy's seterr(all="raise") is a bug, not the schedule diverging
    bug = execute_trial(_user(user_code, "metric_bug"))
    assert bug["status"] == "failed"
    assert bug["error"] == "FloatingPointError: invalid value encountered in scalar divide"
    assert "in precision" in bug["traceback"]
    # what trial.step detects stays a divergence, even wrapped by the user's framework
    nan = execute_trial(_spec(workload_nan_at=4))
    assert nan["status"] == "diverged" and nan["error"] == "training loss is nan at step 4"
    wrapped = execute_trial(_user(user_code, "wrapped_nan"))
    assert wrapped["status"] == "diverged"
    assert wrapped["error"] == "training loss is nan at step 2"


def test_a_trial_that_returns_early_is_short_and_not_compared(
    user_code: Path, tmp_path: Path
) -> None:
    from greedylr.studies import metrics as M

    out = tmp_path / "out"
    specs = [_user(user_code, "early", s, seed, steps=10) for s in ("greedy", "cosine")
             for seed in range(3)]
    results = run_trials(specs, out)
    short = [r for r in results if r["spec"]["schedule"] == "greedy"]
    assert {r["status"] for r in short} == {"short"}
    assert {r["steps_done"] for r in short} == {1}
    assert short[0]["error"] == ("the training function returned after 1 of the 10 steps "
                                 "asked for")
    assert {r["status"] for r in results if r not in short} == {"ok"}
    # stored, read back as it is, and compared with nothing: its better metric is no win
    assert len(load_results(out)) == 6
    (paired,) = M.paired_differences(load_results(out))
    assert paired.pairs == 0 and paired.wins == 0
    text = write_report(out).read_text()
    assert "**3 trial(s) stopped early**" in text and "| GreedyLR better |" not in text
    # rerun with the failed ones once the loop is fixed
    seen: list[str] = []
    run_trials(specs, out, on_result=lambda r: seen.append(r["key"]))
    assert seen == []
    run_trials(specs, out, retry_failed=True, on_result=lambda r: seen.append(r["key"]))
    assert sorted(seen) == sorted(r["key"] for r in short)


def test_a_trial_failed_for_a_missing_module_runs_again_once_it_is_installed(
        user_code: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The error names the extra to install; a rerun after installing it runs the trial
    (it was kept as failed, "already done", until --retry-failed)."""
    import importlib

    out = tmp_path / "out"
    spec = _user(user_code, "needs_a_module")
    (failed,) = run_trials([spec], out)
    assert failed["status"] == "failed"
    assert failed["error"].startswith("ModuleNotFoundError:")
    site = tmp_path / "site"
    site.mkdir()
    (site / "module_installed_later.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    seen: list[str] = []
    (ran,) = run_trials([spec], out, on_result=lambda r: seen.append(r["key"]))
    assert seen == [spec.key] and ran["status"] == "ok"


@pytest.mark.parametrize(("schedule", "module", "distribution"), [
    ("prodigy", "prodigyopt", "prodigyopt"), ("schedule_free", "schedulefree", "schedulefree")])
def test_a_schedule_whose_extra_is_missing_fails_naming_the_extra(
        user_code: Path, monkeypatch: pytest.MonkeyPatch, schedule: str, module: str,
        distribution: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    result = execute_trial(_user(user_code, "feed_only", schedule))
    assert result["status"] == "failed"
    assert result["error"] == (f"MissingExtra: the {schedule} schedule needs {distribution}: "
                               "pip install 'greedylr[bench]'")


def test_a_short_trial_is_in_the_failures_table(user_code: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_trials([_user(user_code, "early", s, steps=10) for s in ("greedy", "cosine")], out)
    text = write_report(out).read_text()
    assert "| short | the training function returned after 1 of the 10 steps" in text


def test_a_moved_project_folder_reruns_nothing_and_stays_one_workload(tmp_path: Path) -> None:
    # the trial key holds the file's absolute path: moving the project changes every key
    before, after = tmp_path / "project", tmp_path / "renamed"
    before.mkdir()
    (before / "user_train.py").write_text(_LOOP)
    out = tmp_path / "out"

    def specs(folder: Path) -> list[TrialSpec]:
        return [_user(folder / "user_train.py", "top1_err", s) for s in ("greedy", "cosine")]

    run_trials(specs(before), out)
    saved = {p.name: p.read_bytes() for p in (out / "trials").glob("*.json")}
    before.rename(after)
    seen: list[str] = []
    results = run_trials(specs(after), out, on_result=lambda r: seen.append(r["key"]))
    assert seen == []  # nothing ran again
    assert {r["spec"]["workload"] for r in load_results(out)} == {
        f"{after / 'user_train.py'}:top1_err"}
    assert all(r["moved_from"] == [f"{before / 'user_train.py'}:top1_err"] for r in results)
    text = write_report(out).read_text()
    assert text.count("user_train:top1_err (") == 1
    # a store an older greedylr left with both (the old trials and their reruns): one
    # workload, each trial once
    for name, blob in saved.items():
        (out / "trials" / name).write_bytes(blob)
    assert len(load_results(out)) == 4
    assert write_report(out).read_text().count("user_train:top1_err (") == 1
    # the code changed as well as moved: not the same trials
    (after / "user_train.py").write_text(_LOOP + "\n# edited\n")
    seen.clear()
    run_trials(specs(after), out, on_result=lambda r: seen.append(r["key"]))
    assert len(seen) == 2


_STUDY = textwrap.dedent(
    """
    import signal
    import sys
    # as in a terminal: a shell that starts a job in the background (CI may) makes it
    # ignore SIGINT, and Python then never turns Ctrl-C into KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from greedylr.studies.runner import run_trials
    from greedylr.studies.trial import TrialSpec
    specs = [TrialSpec.make(study="k", workload=sys.argv[2], schedule=s, seed=seed, steps=20,
                            settings={"workload_sleep": 0.02})
             for s in ("greedy", "cosine", "linear") for seed in range(4)]
    run_trials(specs, sys.argv[1], jobs=int(sys.argv[3]))
    """
)


def _study(out: Path, jobs: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _STUDY, str(out), TOY, str(jobs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for_files(out: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while len(list((out / "trials").glob("*.json"))) < count:
        assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the study made no progress"
        time.sleep(0.05)


@pytest.mark.parametrize(("jobs", "how"), [(1, signal.SIGKILL), (2, signal.SIGINT)])
def test_a_killed_study_resumes_without_losing_or_repeating_trials(
    tmp_path: Path, jobs: int, how: signal.Signals
) -> None:
    out = tmp_path / "study"
    process = _study(out, jobs)
    _wait_for_files(out, 3, process)
    process.send_signal(how)
    process.wait(timeout=60)
    if how == signal.SIGINT:
        assert b"interrupted" in process.stderr.read()  # type: ignore[union-attr]
    before = {p.name: p.read_bytes() for p in (out / "trials").glob("*.json")}
    assert 3 <= len(before) < 12
    for blob in before.values():  # every file is complete
        assert json.loads(blob)["status"] == "ok"

    # the rerun runs exactly the missing trials, and leaves the finished ones alone
    from greedylr.studies.runner import run_trials as rerun

    specs = [
        TrialSpec.make(
            study="k",
            workload=TOY,
            schedule=s,
            seed=seed,
            steps=20,
            settings={"workload_sleep": 0.02},
        )
        for s in ("greedy", "cosine", "linear")
        for seed in range(4)
    ]
    ran: list[str] = []
    results = rerun(specs, out, on_result=lambda r: ran.append(r["key"] + ".json"))
    assert set(ran).isdisjoint(before)
    assert len(ran) + len(before) == 12 == len(results)
    assert all(r["status"] == "ok" for r in results)
    for name, blob in before.items():
        assert (out / "trials" / name).read_bytes() == blob
    assert not [p for p in (out / "trials").iterdir() if p.name.startswith(".")]
    assert os.listdir(out / "trials") and len(load_results(out)) == 12


def test_a_second_run_into_the_same_study_is_refused_while_the_first_runs(
    tmp_path: Path,
) -> None:
    out = tmp_path / "study"
    first = _study(out, 1)
    try:
        _wait_for_files(out, 1, first)
        with pytest.raises(RuntimeError, match=rf"being written by pid {first.pid} on "):
            run_trials([_spec(steps=3)], out)
    finally:
        first.kill()  # the OS releases its lock: no stale lock survives a kill -9
        first.wait(timeout=60)
    assert run_trials([_spec(steps=3)], out)[0]["status"] == "ok"

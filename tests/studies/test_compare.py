"""``greedylr compare`` on the bundled example, and the three-line protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from greedylr.cli import main
from greedylr.studies.trial import Trial, TrialSpec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "compare_my_model.py"
TOY = Path(__file__).resolve().parent / "toy_train.py"


def test_compare_runs_the_example_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    argv = [
        "compare",
        f"{EXAMPLE}:train",
        "--schedules",
        "greedy,cosine",
        "--seeds",
        "2",
        "--steps",
        "60",
        "--eval-every",
        "30",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    files = sorted((out / "trials").glob("*.json"))
    assert len(files) == 4
    results = [json.loads(f.read_text()) for f in files]
    assert {r["spec"]["schedule"] for r in results} == {"greedy", "cosine"}
    for r in results:
        assert r["status"] == "ok" and len(r["losses"]) == 60
        assert [m["step"] for m in r["metrics"]] == [30, 60]
        assert r["metric"] == {"name": "accuracy", "higher_is_better": True}
        assert r["lr"] == 1e-3  # the example's own optimizer LR
    cosine = next(r for r in results if r["spec"]["schedule"] == "cosine")
    assert cosine["lrs"][-1] == pytest.approx(0.0, abs=1e-12)  # it really was cosine
    report = (out / "report.md").read_text()
    assert "greedy − cosine" in report and "final accuracy" in report
    printed = capsys.readouterr().out
    assert "wins" in printed and "cosine" in printed and ":train," in printed

    # a second run finds everything done and runs nothing
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert main(argv) == 0
    assert [f.stat().st_mtime_ns for f in files] == mtimes


def test_compare_rejects_a_bad_setting(tmp_path: Path) -> None:
    argv = [
        "compare",
        f"{EXAMPLE}:train",
        "--seeds",
        "1",
        "--steps",
        "5",
        "--set",
        "factor",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 2


def test_compare_reports_failed_trials_with_exit_code_1(tmp_path: Path) -> None:
    # the training function raises at step 3: the trial fails, and says why
    argv = [
        "compare",
        f"{TOY}:train",
        "--schedules",
        "cosine",
        "--seeds",
        "1",
        "--steps",
        "5",
        "--set",
        "workload_fail_at=3",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 1
    (result,) = [json.loads(f.read_text()) for f in (tmp_path / "trials").glob("*.json")]
    assert result["status"] == "failed" and "step 3" in result["error"]


@pytest.mark.parametrize("tensor_lr", [False, True])
def test_an_asked_lr_moves_every_group_of_the_users_optimizer(tensor_lr: bool) -> None:
    # greedylr compare --lr 0.5 on a loop that hard-codes its LRs (0.1, and 0.01 for a
    # second group): the first group gets 0.5, the second keeps its ratio (0.05)
    spec = TrialSpec.make(study="s", workload="w", schedule="linear", steps=4, lr=0.5)
    trial = Trial(spec)
    a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    lr = (lambda v: torch.tensor(v)) if tensor_lr else (lambda v: v)
    optimizer = torch.optim.SGD([{"params": a.parameters(), "lr": lr(0.1)},
                                 {"params": b.parameters(), "lr": lr(0.01)}])
    tensors = [g["lr"] for g in optimizer.param_groups]
    trial.scheduler(optimizer)
    assert trial.lr == 0.5
    assert [float(g["lr"]) for g in optimizer.param_groups] == pytest.approx([0.5, 0.05])
    if tensor_lr:  # filled in place, never replaced
        assert all(g["lr"] is t for g, t in zip(optimizer.param_groups, tensors, strict=True))
    for _ in range(4):
        (a(torch.ones(1, 2)) + b(torch.ones(1, 2))).sum().backward()
        optimizer.step()
        trial.step(torch.tensor(1.0))
    assert trial.record.lrs == pytest.approx([0.375, 0.25, 0.125, 0.0])


def test_an_asked_lr_moves_the_default_lr_the_polynomial_schedule_reads() -> None:
    # transformers' polynomial decay divides by optimizer.defaults["lr"]: with --lr 0.5 on
    # a loop that hard-codes 0.1 it must still end at lr_end, not at 5x lr_end
    spec = TrialSpec.make(study="s", workload="w", schedule="polynomial", steps=4, lr=0.5,
                          settings={"lr_end": 1e-3})
    trial = Trial(spec)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trial.scheduler(optimizer)
    assert optimizer.defaults["lr"] == pytest.approx(0.5)
    for _ in range(4):
        model(torch.ones(1, 2)).sum().backward()
        optimizer.step()
        trial.step(1.0)
    assert trial.record.lrs[-1] == pytest.approx(1e-3)


def test_an_asked_lr_cannot_scale_a_first_group_at_lr_0() -> None:
    trial = Trial(TrialSpec.make(study="s", workload="w", schedule="linear", steps=4, lr=0.5))
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.0)
    with pytest.raises(ValueError, match="first group has lr 0"):
        trial.scheduler(optimizer)


def test_the_protocol_records_the_users_own_optimizer_lr() -> None:
    # no LR asked for: the user's optimizer decides, and the trial records its LR
    trial = Trial(TrialSpec.make(study="s", workload="w", schedule="linear", steps=4))
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trial.scheduler(optimizer)
    assert trial.lr == 0.1
    for _ in range(4):
        model(torch.ones(1, 2)).sum().backward()
        optimizer.step()
        trial.step(torch.tensor(1.0))
    assert trial.record.lrs == pytest.approx([0.075, 0.05, 0.025, 0.0])
    assert trial.should_eval()  # the last step always evaluates
    with pytest.raises(FloatingPointError):
        trial.step(float("inf"))


def test_a_held_out_value_that_is_not_finite_is_recorded_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    trial = Trial(TrialSpec.make(study="s", workload="w", schedule="constant", steps=4))
    trial.scheduler(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    trial.step(1.0)
    with caplog.at_level("WARNING", logger="greedylr.studies.trial"):
        trial.report(loss=float("nan"), accuracy=0.5)
    assert "the held-out loss is nan at step 1" in caplog.text
    assert "accuracy" not in caplog.text
    trial.step(1.0)
    with caplog.at_level("WARNING", logger="greedylr.studies.trial"):
        trial.report(loss=float("nan"), accuracy=0.5)
    assert caplog.text.count("the held-out loss is nan") == 1  # once per metric
    assert trial.record.metrics[0]["accuracy"] == 0.5


def _regression_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer):  # type: ignore[no-untyped-def]
    x = torch.linspace(-1, 1, 64).unsqueeze(1)

    def step() -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(model(x), 3 * x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return step


def test_a_range_test_starts_the_schedule_from_its_suggestion_not_the_studys_lr() -> None:
    # greedylr compare --lr 0.5 --set trial_range_test=true, on a loop that hard-codes
    # lr 0.1: the sweep runs around the study's 0.5, the schedule starts at the suggestion
    spec = TrialSpec.make(study="s", workload="w", schedule="constant", steps=3, lr=0.5,
                          settings={"trial_range_test": True})
    trial = Trial(spec)
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    step = _regression_step(model, optimizer)
    result = trial.range_test(model, optimizer, step)
    assert result is not None and result.base_lrs == (0.5,)
    trial.scheduler(optimizer)
    assert trial.lr == 0.5  # the grid point the run started from
    assert trial.record.range_test == {"lr": pytest.approx(0.5 * result.suggested_multiplier),
                                       "multiplier": result.suggested_multiplier,
                                       "steps": float(len(result.losses))}
    for _ in range(3):
        trial.step(step())
    assert trial.record.lrs == pytest.approx([0.5 * result.suggested_multiplier] * 3)


def test_without_the_setting_a_range_test_call_does_nothing() -> None:
    trial = Trial(TrialSpec.make(study="s", workload="w", schedule="constant", steps=2))
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    assert trial.range_test(model, optimizer, lambda: pytest.fail("swept")) is None
    trial.scheduler(optimizer)
    assert trial.lr == 0.1 and trial.record.range_test is None


def test_a_range_test_the_function_never_ran_is_not_reported_as_one() -> None:
    # --set trial_range_test=true on a function without trial.range_test: the trial fails
    # rather than being labelled as a range-test run
    trial = Trial(TrialSpec.make(study="s", workload="w", schedule="constant", steps=2,
                                 settings={"trial_range_test": True}))
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match=r"did not call trial\.range_test"):
        trial.scheduler(optimizer)


def test_a_range_test_after_the_schedule_is_refused() -> None:
    trial = Trial(TrialSpec.make(study="s", workload="w", schedule="constant", steps=2,
                                 settings={"trial_range_test": True}))
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trial.range_test(model, optimizer, _regression_step(model, optimizer))
    trial.scheduler(optimizer)
    with pytest.raises(RuntimeError, match=r"before trial\.scheduler"):
        trial.range_test(model, optimizer, _regression_step(model, optimizer))


def test_compare_rejects_a_misspelt_trial_option(tmp_path: Path) -> None:
    argv = ["compare", f"{TOY}:train", "--seeds", "1", "--steps", "4", "--out",
            str(tmp_path), "--set", "trial_rangetest=true"]
    assert main(argv) == 2
    assert not (tmp_path / "trials").exists()


def test_a_built_in_workload_runs_a_range_test_as_its_own_arm() -> None:
    from greedylr.studies.execution import execute_trial
    from greedylr.studies.metrics import arm_of

    spec = TrialSpec.make(study="s", workload="wine_mlp", schedule="constant", seed=0,
                          steps=20, lr=1e-3, eval_every=10,
                          settings={"trial_range_test": True})
    result = execute_trial(spec, threads=1)
    assert result["status"] == "ok" and result["lr"] == 1e-3
    found = result["range_test"]
    assert found["lr"] == pytest.approx(1e-3 * found["multiplier"])
    assert result["lrs"][0] == pytest.approx(found["lr"])
    assert arm_of(result) == "constant(trial_range_test=True)"


def test_compare_pairs_the_range_test_arms(tmp_path: Path) -> None:
    # greedylr compare ... --set trial_range_test=true on a function that calls
    # trial.range_test: every schedule starts from its own sweep's suggestion
    argv = ["compare", f"{TOY}:train", "--schedules", "greedy,cosine", "--seeds", "1",
            "--steps", "20", "--eval-every", "10", "--out", str(tmp_path),
            "--set", "trial_range_test=true"]
    assert main(argv) == 0
    results = [json.loads(f.read_text()) for f in (tmp_path / "trials").glob("*.json")]
    assert len(results) == 2
    for r in results:
        assert r["status"] == "ok" and r["lr"] == 0.05  # the LR the sweep started from
        assert r["range_test"]["lr"] == pytest.approx(0.05 * r["range_test"]["multiplier"])
    report = (tmp_path / "report.md").read_text()
    assert "greedy(trial_range_test=True) − cosine(trial_range_test=True)" in report


def test_compare_runs_every_schedule_at_every_lr_of_a_grid_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grid"
    argv = ["compare", f"{EXAMPLE}:train", "--schedules", "greedy,cosine", "--lr",
            "1e-3,1e-2", "--seeds", "1", "--steps", "20", "--out", str(out)]
    assert main(argv) == 0
    files = sorted((out / "trials").glob("*.json"))
    results = [json.loads(f.read_text()) for f in files]
    cells = {(r["spec"]["schedule"], r["spec"]["lr"], r["spec"]["seed"]) for r in results}
    assert cells == {(s, lr, 0) for s in ("greedy", "cosine") for lr in (1e-3, 1e-2)}
    # the LR reached the example's own AdamW (it builds it at 1e-3)
    assert {r["lr"] for r in results} == {1e-3, 1e-2}
    printed = capsys.readouterr().out
    assert "at its own best LR" in printed and "LR tolerance" in printed
    assert list((out / "figures").glob("*-lr.png"))
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert main(argv) == 0  # resumed: every trial of the grid is found, none reruns
    assert [f.stat().st_mtime_ns for f in sorted((out / "trials").glob("*.json"))] == mtimes


@pytest.mark.parametrize("lr", ["fast", "1e-3,0", "1e-1:1e-4:3"])
def test_compare_rejects_a_bad_lr_grid(tmp_path: Path, lr: str) -> None:
    argv = ["compare", f"{EXAMPLE}:train", "--lr", lr, "--out", str(tmp_path)]
    assert main(argv) == 2
    assert not (tmp_path / "trials").exists()


def test_the_report_names_the_optimizer_the_function_really_built(tmp_path: Path) -> None:
    # a user loop that builds its own SGD, run under the default --optimizer adamw
    from greedylr.studies.report import write_report
    from greedylr.studies.runner import execute_trial, result_path
    from greedylr.studies.store import write_result

    source = tmp_path / "own_sgd.py"
    source.write_text(
        "import torch\n"
        "def train(trial):\n"
        "    model = torch.nn.Linear(2, 1)\n"
        "    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    trial.scheduler(optimizer)\n"
        "    for _ in range(trial.steps):\n"
        "        loss = model(torch.ones(4, 2)).pow(2).mean()\n"
        "        optimizer.zero_grad(); loss.backward(); optimizer.step(); trial.step(loss)\n"
        "    trial.report(mse=float(loss))\n"
    )
    out = tmp_path / "out"
    for schedule in ("greedy", "cosine"):
        spec = TrialSpec.make(study="s", workload=f"{source}:train", schedule=schedule,
                              steps=5)
        assert spec.optimizer == "adamw"
        result = execute_trial(spec)
        assert result["status"] == "ok"
        assert result["optimizer_used"] == "torch.optim.sgd.SGD"
        write_result(result_path(out, spec), result)
    text = write_report(out).read_text()
    assert "sgd (the training function's own; the study named adamw)" in text
    assert ", adamw," not in text

"""``greedylr compare`` on the bundled example, and the three-line protocol."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from greedylr.cli import main
from greedylr.studies.trial import Trial, TrialSpec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "compare_my_model.py"


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
    # cosine does not take `factor`: every cosine trial fails, and says why
    argv = [
        "compare",
        f"{EXAMPLE}:train",
        "--schedules",
        "cosine",
        "--seeds",
        "1",
        "--steps",
        "5",
        "--set",
        "factor=0.5",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 1
    (result,) = [json.loads(f.read_text()) for f in (tmp_path / "trials").glob("*.json")]
    assert result["status"] == "failed" and "does not take setting" in result["error"]


def test_the_protocol_records_the_users_own_optimizer_lr(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = TrialSpec.make(study="s", workload="w", schedule="linear", steps=4, lr=0.5)
    trial = Trial(spec)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with caplog.at_level(logging.WARNING):
        trial.scheduler(optimizer)
    assert "is not the study's lr" in caplog.text and trial.lr == 0.1
    for _ in range(4):
        model(torch.ones(1, 2)).sum().backward()
        optimizer.step()
        trial.step(torch.tensor(1.0))
    assert trial.record.lrs == pytest.approx([0.075, 0.05, 0.025, 0.0])
    assert trial.should_eval()  # the last step always evaluates
    with pytest.raises(FloatingPointError):
        trial.step(float("inf"))

"""The report: built from stored files alone, with the hand-computed label table."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from greedylr.studies.execution import headline_is_fed
from greedylr.studies.report import write_report
from greedylr.studies.store import FORMAT, load_results, write_result

from .test_metrics import _study


def _store(tmp_path: Path) -> Path:
    out = tmp_path / "study"
    for i, result in enumerate(_study()):
        result = dict(result, format=FORMAT, key=f"trial-{i}", wall_time=1.0)
        # a workload nobody can import: the report must not need it
        result["spec"] = dict(result["spec"], workload="no_such_module:train")
        result["metrics"] = [{"step": 100, "accuracy": 0.5 + 0.01 * i}]
        if result["status"] == "failed":
            result["error"] = "ValueError: boom"
        write_result(out / "trials" / f"trial-{i}.json", result)
    return out


def test_report_tables_figures_and_failures(tmp_path: Path) -> None:
    out = _store(tmp_path)
    path = write_report(out, title="Hand-made")
    assert path == out / "report.md"
    text = path.read_text()
    assert text.startswith("# Hand-made")
    # the pooled row of the paper's table: the counts computed by hand in test_metrics
    row = next(line for line in text.splitlines() if line.startswith("| **all** |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:6] == ["5", "1", "4", "2", "12"]
    assert cells[6:10] == ["83.3%", "50.0%", "41.7%", "16.7%"]
    assert cells[10] == "75.0% / 100.0% / 75.0%"
    assert "| greedy | 2 | 0 | 0 | 1 |" in text and "| linear | 1 | 0 | 1 | 0 |" in text
    assert "ValueError: boom" in text
    assert "held-out metric `accuracy` (higher is better)" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 3
    for link in links:
        blob = (out / link).read_bytes()
        assert blob[:8] == b"\x89PNG\r\n\x1a\n" and len(blob) > 5_000


def test_report_is_rebuilt_identically(tmp_path: Path) -> None:
    out = _store(tmp_path)
    first = write_report(out).read_text()
    assert write_report(out).read_text() == first


def test_cli_report(tmp_path: Path) -> None:
    from greedylr.cli import main

    out = _store(tmp_path)
    assert main(["report", str(out), "--output", str(tmp_path / "r.md")]) == 0
    assert (tmp_path / "r.md").is_file() and (tmp_path / "r-figures").is_dir()
    assert main(["report", str(tmp_path / "nothing")]) == 2  # a user error


def test_the_verdict_names_the_arms_fed_no_held_out_value(tmp_path: Path) -> None:
    from greedylr.studies.report.heldout import unfed_arms

    out = _store(tmp_path)
    results = load_results(out)
    assert unfed_arms(results) == ["greedy"]  # the hand-made study feeds nothing
    assert "run without the held-out rule they are built around: greedy." in (
        write_report(out).read_text())
    for r in results:
        r["metrics"] = [dict(row, feed=1.0) for row in r["metrics"]]
    assert unfed_arms(results) == []
    off = [dict(r, spec=dict(r["spec"], settings={"eval_patience": None}), metrics=[
        {"step": 1, "accuracy": 0.5}]) for r in results]
    assert unfed_arms(off) == []  # GreedyLR with its held-out rule off needs no feed
    builtin = [dict(r, spec=dict(r["spec"], workload="wine_mlp"), metrics=[
        {"step": 1, "accuracy": 0.5}]) for r in results]
    assert unfed_arms(builtin) == []  # fed only under the held-out protocol, by design



@pytest.mark.parametrize(
    ("rows", "fed"),
    [
        ([{"step": 1, "loss": 0.5, "feed": 0.5}, {"step": 2, "loss": 0.4, "feed": 0.4}], True),
        ([{"step": 1, "loss": 0.5, "feed": 0.5}, {"step": 2, "loss": 0.4, "feed": 0.41}], False),
        ([{"step": 1, "feed": 0.5}, {"step": 2, "loss": 0.4, "feed": 0.4}], True),
        ([{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.4, "feed": 0.4}], False),
        ([{"step": 1, "loss": float(np.float32(0.3)), "feed": 0.3}], True),
        ([{"step": 1, "loss": 0.5}], False),
        ([], False),
    ],
)
def test_a_headline_equal_to_the_fed_value_at_every_evaluation_is_fed(
    rows: list[dict[str, float]], fed: bool
) -> None:
    assert headline_is_fed("loss", rows) is fed
    assert headline_is_fed("feed", rows)  # the fed value itself


def test_the_verdict_says_where_the_headline_is_the_fed_value(tmp_path: Path) -> None:
    said = "Judged on the very value fed to the schedule"
    out = _store(tmp_path)
    assert said not in write_report(out).read_text()
    for r in load_results(out):
        r["metrics"] = [dict(row, feed=row["accuracy"]) for row in r["metrics"]]
        write_result(out / "trials" / f"{r['key']}.json", r)
    text = write_report(out).read_text()  # what `greedylr report` writes: stored rows alone
    line = next(x for x in text.splitlines() if x.startswith(f"- {said}"))
    assert line.endswith("(`accuracy` equals `feed` at every evaluation).")
    feed_only = {"name": "feed", "higher_is_better": False}
    text = write_report(_store_of(tmp_path / "b", _study(), feed_only, "feed")).read_text()
    assert "(`feed` is the only metric reported)." in text


def _store_of(tmp_path: Path, results: list[dict], metric: dict, name: str) -> Path:
    """``results`` stored as :func:`_store` does, reporting ``name`` as ``metric`` says."""
    out = tmp_path / "study"
    for i, result in enumerate(results):
        result = dict(result, format=FORMAT, key=f"trial-{i}", wall_time=1.0)
        result["spec"] = dict(result["spec"], workload="no_such_module:train")
        result["metric"] = metric
        result["metrics"] = [{"step": 100, name: 0.5 - 0.01 * i}]
        write_result(out / "trials" / f"trial-{i}.json", result)
    return out


def test_a_short_trial_is_counted_in_every_status_column(tmp_path: Path) -> None:
    from greedylr.studies.metrics import STATUSES

    results = _study()
    short = dict(results[0], status="short", losses=results[0]["losses"][:10],
                 error="the training function returned after 10 of the 100 steps asked for")
    short["spec"] = dict(short["spec"], seed=7)
    out = _store_of(tmp_path, [*results, short],
                    {"name": "accuracy", "higher_is_better": True}, "accuracy")
    text = write_report(out).read_text()
    columns = "/".join(STATUSES)
    assert columns == "ok/short/diverged/failed/timeout"
    # the study's table by status, and the arms table, count it
    assert "| schedule | ok | short | diverged | failed | timeout |" in text
    assert "| greedy | 2 | 1 | 0 | 1 | 0 |" in text
    assert f"| schedule | {columns} |" in text
    # the held-out table too (its runs by status, before the final train loss)
    assert f"| {columns} | final train loss |" in text
    assert "| 2/1/0/1/0 |" in next(line for line in text.splitlines()
                                    if line.startswith("| no_such_module:train"))
    # a failed trial stored without its error is listed all the same
    assert "| failed |  |" in text


def test_a_guessed_direction_is_marked_where_the_tables_show_it(tmp_path: Path) -> None:
    # an error rate whose direction the function did not state: read from its name
    guessed = {"name": "top1_err", "higher_is_better": False, "guessed": True}
    text = write_report(_store_of(tmp_path / "a", _study(), guessed, "top1_err")).read_text()
    assert "held-out metric `top1_err` (lower is better, guessed)" in text  # arms tables
    assert "top1_err ↓ (guessed) |" in text  # the held-out summary's workload column
    # stated: no mark
    stated = {"name": "top1_err", "higher_is_better": False}
    text = write_report(_store_of(tmp_path / "b", _study(), stated, "top1_err")).read_text()
    assert "held-out metric `top1_err` (lower is better)" in text
    assert "top1_err ↓ |" in text and "guessed" not in text

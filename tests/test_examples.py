"""The examples run as a user runs them: each script in a fresh process, checked by what it prints.

``examples/pulse_demo.py`` is run by ``test_diagnose.py``; the distributed ones run under
``torchrun`` with two CPU processes, as their docstrings say.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def _run(
    argv: list[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> str:
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "PYTHONUNBUFFERED": "1", **(env or {})}
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_quickstart(tmp_path: Path) -> None:
    out = _run([sys.executable, str(EXAMPLES / "quickstart.py")], tmp_path)
    assert re.search(r"(increase|decrease) at step \d+: .* patience", out)


def test_untuned_lr(tmp_path: Path) -> None:
    out = _run([sys.executable, str(EXAMPLES / "untuned_lr.py")], tmp_path)
    suggested = float(re.search(r"suggested lr ([\d.e-]+)", out).group(1))
    assert 0.01 < suggested < 0.5, out  # the sweep was cut below the LR given, 1.0
    at_lr, after = (float(a) for a in re.findall(r"held-out accuracy ([\d.]+)", out))
    # from the suggestion the run is reliably good (0.97-0.98 over seeds 0-2); at LR 1 it
    # is chaotic (0.81-0.96 over those seeds, and seed 0's value moves with the CPU: 0.958
    # on one machine, more than 0.05 lower on another), so it is only required not to beat it
    assert after > 0.95 and after >= at_lr, out


def test_compare_my_model(tmp_path: Path) -> None:
    out = _run([sys.executable, str(EXAMPLES / "compare_my_model.py")], tmp_path)
    # both arms in the table, 5 seeds each, none short, diverged, failed or timed out; the
    # report written
    for schedule in ("greedy", "cosine"):
        assert re.search(rf"│ {schedule}\s*│.*│ 5/0/0/0/0\s*│", out), out
    assert "held-out metric first" in out and out.index("final accuracy") < out.index(
        "final train loss")
    # written under the git-ignored runs/, nothing else in the working folder
    assert (tmp_path / "runs" / "compare-digits" / "report.md").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]


def test_compare_my_model_scores_the_average_when_asked(tmp_path: Path) -> None:
    # `greedylr compare examples/compare_my_model.py:train --set workload_power_ema=7`:
    # the same training run, its metric measured on the average of the weights
    out = _run([sys.executable, "-m", "greedylr.cli", "compare",
                f"{EXAMPLES / 'compare_my_model.py'}:train", "--schedules", "greedy",
                "--seeds", "1", "--steps", "60", "--eval-every", "20", "--out", "ab"], tmp_path)
    _run([sys.executable, "-m", "greedylr.cli", "compare",
          f"{EXAMPLES / 'compare_my_model.py'}:train", "--schedules", "greedy",
          "--seeds", "1", "--steps", "60", "--eval-every", "20", "--out", "ab",
          "--set", "workload_power_ema=7"], tmp_path)
    from greedylr.studies.metrics import arm_of
    from greedylr.studies.store import load_results

    runs = {arm_of(r): r for r in load_results(tmp_path / "ab")}
    plain, average = runs["greedy"], runs["greedy(workload_power_ema=7)"]
    assert plain["losses"] == average["losses"] and plain["lrs"] == average["lrs"]
    assert [m["step"] for m in plain["metrics"]] == [m["step"] for m in average["metrics"]]
    assert plain["metrics"] != average["metrics"]
    assert "greedy" in out


def test_pulse_demo_writes_under_runs(tmp_path: Path) -> None:
    _run([sys.executable, str(EXAMPLES / "pulse_demo.py"), "--steps", "350"], tmp_path)
    assert sorted(p.name for p in (tmp_path / "runs" / "pulse").iterdir()) == [
        "pulse.jsonl", "pulse.png"
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]


def test_hf_trainer(tmp_path: Path) -> None:
    # without --output-dir: the Trainer's temporary folder is removed after the run
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = _run(
        [sys.executable, str(EXAMPLES / "hf_trainer.py"), "--max-steps", "20"],
        tmp_path,
        env={"TMPDIR": str(scratch)},
    )
    assert re.search(r"increase at step \d+", out)
    assert not [p.name for p in scratch.iterdir() if p.name.startswith("greedylr-hf-")]


@pytest.mark.slow
def test_hf_trainer_two_processes(tmp_path: Path) -> None:
    out = _run(
        [*TORCHRUN, str(EXAMPLES / "hf_trainer.py"), "--max-steps", "10",
         "--output-dir", str(tmp_path / "hf")],
        tmp_path,
    )
    # Rank 0 alone prints the summary of the 10 optimizer steps.
    assert len(re.findall(r"^step 10: loss", out, flags=re.MULTILINE)) == 1, out


@pytest.mark.slow
def test_ddp_torchrun_ranks_agree(tmp_path: Path) -> None:
    out = _run([*TORCHRUN, str(EXAMPLES / "ddp_torchrun.py"), "--epochs", "1"], tmp_path)
    assert "all ranks hold the same LR at every step: True" in out


@pytest.mark.slow
def test_accelerate_loop_two_processes(tmp_path: Path) -> None:
    out = _run(
        [*TORCHRUN, str(EXAMPLES / "accelerate_loop.py"), "--cpu", "--epochs", "5"], tmp_path
    )
    # 178 wine rows in batches of 16: 12 batches, 6 per process, 3 optimizer steps per
    # epoch at accumulation 2. One decision per optimizer step: 15, not 30 (once per process).
    assert "15 decisions for 2 process(es)" in out, out


def test_lightning_module(tmp_path: Path) -> None:
    out = _run(
        [sys.executable, str(EXAMPLES / "lightning_module.py"), "--epochs", "2"], tmp_path
    )
    assert re.search(r"final lr [0-9.e-]+", out)

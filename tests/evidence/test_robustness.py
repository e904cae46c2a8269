"""The batched robustness engine: parity with one run at a time, metrics, the study."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from greedylr.cli import _parser, main
from greedylr.evidence.perturb import Perturbation
from greedylr.evidence.robustness import (
    SCHEDULES,
    RunSpec,
    design,
    paper_recovery_ratio,
    recovery_events,
    run_robustness,
    train_family,
    train_one,
    write_report,
)


@pytest.fixture(autouse=True)
def _one_thread():
    # as the study runs; also far faster on a shared CPU
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(
    ("family", "steps", "schedules"),
    [("mlp", 40, SCHEDULES), ("rosenbrock", 60, SCHEDULES),
     ("attention", 12, ("greedy", "transformers_greedy", "cosine_restarts")),
     ("cnn", 12, ("greedy_p1", "reduce_on_plateau", "exponential"))],
)
def test_batched_engine_matches_one_run_at_a_time(family: str, steps: int,
                                                  schedules: tuple[str, ...]):
    """Perturbed runs: the batch reproduces torch.optim.Adam + the schedule objects of
    schedules.py (transformers' GreedyLR for transformers_greedy, torch's
    ReduceLROnPlateau, LambdaLR closed forms) run one at a time."""
    perts = [Perturbation("random_spike", 1.0), Perturbation("adversarial", 0.5),
             Perturbation("shard_shift", 1.0)]
    specs = [RunSpec(s, perts[i % 3], seed=i % 2) for i, s in enumerate(schedules)]
    batched = train_family(family, specs, steps=steps)
    for i, spec in enumerate(specs):
        one = train_one(family, spec, steps=steps)
        # float32 in another summation order: allow rounding, not a different decision
        torch.testing.assert_close(one.observed[0], batched.observed[i], rtol=2e-4, atol=1e-5)
        torch.testing.assert_close(one.lr[0], batched.lr[i], rtol=1e-5, atol=0)
        assert torch.equal(one.corrupt[0], batched.corrupt[i])
        torch.testing.assert_close(one.final_loss, batched.final_loss[i:i + 1], rtol=2e-4,
                                   atol=1e-5)


def test_scoring_an_average_of_the_weights_leaves_training_alone():
    specs = [RunSpec(s, Perturbation("random_spike", 1.0), seed=0) for s in ("greedy", "cosine")]
    plain = train_family("mlp", specs, steps=24)
    averaged = train_family("mlp", specs, steps=24, average=7)
    assert torch.equal(plain.observed, averaged.observed) and torch.equal(plain.lr, averaged.lr)
    assert not torch.allclose(plain.final_loss, averaged.final_loss)
    probed = ~plain.probe.isnan()
    assert torch.equal(probed, ~averaged.probe.isnan())
    assert not torch.allclose(plain.probe[probed], averaged.probe[probed])
    # an average this narrow is the last weights: the same scores as without it
    latest = train_family("mlp", specs, steps=24, average=1e6)
    torch.testing.assert_close(latest.final_loss, plain.final_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(latest.probe[probed], plain.probe[probed], rtol=1e-5, atol=1e-6)
    # the one-at-a-time reference scores the same average
    for i, spec in enumerate(specs):
        one = train_one("mlp", spec, steps=24, average=7)
        torch.testing.assert_close(one.final_loss, averaged.final_loss[i:i + 1], rtol=2e-4,
                                   atol=1e-5)
        torch.testing.assert_close(one.probe[0][probed[i]], averaged.probe[i][probed[i]],
                                   rtol=2e-4, atol=1e-5)


def test_a_study_scored_on_the_average_says_so_and_reuses_no_plain_part(tmp_path):
    study = tmp_path / "robustness"
    run_robustness(study, quick=True, families=["quadratic"])
    seen: list[str] = []
    summary = run_robustness(study, quick=True, families=["quadratic"], average=7,
                             progress=seen.append)
    assert summary["design"]["average"] == 7
    assert not any("(stored)" in line for line in seen)  # a plain part is not an average's
    report = (study / "report.md").read_text()
    assert "scored on a power-function EMA of its weights" in report
    assert "`greedylr bench robustness --average 7`" in report
    assert _parser().parse_args(["bench", "robustness", "--average", "7"]).average == 7.0


def test_loss_driven_schedules_react_to_the_loss():
    specs = [RunSpec(s, Perturbation("clean"), 0) for s in
             ("greedy", "greedy_p1", "reduce_on_plateau", "transformers_greedy", "constant")]
    result = train_family("quadratic", specs, steps=120)
    lr = result.lr
    assert (lr[1] > lr[1, 0]).any(), "greedy patience 1 never increased on a falling loss"
    assert (lr[2] <= lr[2, 0]).all(), "reduce_on_plateau must never increase"
    assert (lr[3] >= 0.1 * lr[3, 0] - 1e-12).all(), "transformers_greedy floor is 10%"
    assert torch.all(lr[4] == lr[4, 0])


def test_recovery_events_on_a_known_trace():
    steps = 40
    probe = np.full((1, steps), np.nan)
    probe[0, ::2] = 1.0
    probe[0, 20:26] = [3.0, np.nan, 2.0, np.nan, 1.04, np.nan]
    corrupt = np.zeros((1, steps), bool)
    corrupt[0, 18:20] = True
    (event,) = recovery_events(probe, corrupt, [None])
    assert (event.start, event.end) == (18, 19)
    assert event.level == pytest.approx(1.0)
    assert event.peak == pytest.approx(3.0)
    assert event.recovery == 5  # step 24 is within 5% of 1.0; 24 - 19
    # never back: censored
    probe2 = probe.copy()
    probe2[0, 24:] = 2.0
    (censored,) = recovery_events(probe2, corrupt, [None])
    assert censored.recovery is None and censored.horizon == steps - 19
    # a shard shift is an event at its step even with no corrupted batch
    (shift,) = recovery_events(probe, np.zeros_like(corrupt), [20])
    assert (shift.start, shift.recovery) == (20, 4)


def test_paper_recovery_ratio_measures_improvement_not_recovery():
    # a clean, smoothly falling loss: no perturbation at all, yet a large "recovery"
    t = np.arange(200)
    clean = np.exp(-t / 15.0)[None, :] + 0.01
    ratio = paper_recovery_ratio(clean)
    assert ratio[0] > 30
    assert ratio[0] == pytest.approx(clean[0, 0] / clean[0, 90:100].mean())


def test_full_design_exceeds_the_papers_run_count():
    full = design(False)
    assert full.n_runs >= 8100
    assert len(full.conditions) == 16 and len(full.neural_seeds) >= 3
    assert set(SCHEDULES) >= {"greedy", "cosine", "cosine_restarts", "exponential",
                              "constant", "reduce_on_plateau", "transformers_greedy"}
    assert design(True).n_runs < full.n_runs


def test_study_writes_results_and_a_report(tmp_path, monkeypatch):
    study = tmp_path / "robustness"  # where `greedylr bench --out tmp_path` puts it
    summary = run_robustness(study, quick=True, families=["quadratic", "ackley"])
    d = summary["design"]
    assert d["runs"] == 2 * len(design(True).conditions) * len(SCHEDULES)
    lines = (study / "runs.csv").read_text().splitlines()
    assert len(lines) == d["runs"] + 1
    assert json.loads((study / "summary.json").read_text())["speed"]["speedup"] > 0
    report = (study / "report.md").read_text()
    assert "0.148" in report and "Recovery" in report
    for fig in ("final_loss_vs_cosine", "recovery_steps", "greedy_vs_cosine_grid"):
        assert (study / "figures" / f"{fig}.png").stat().st_size > 1000
    # the report is rebuilt from the stored files alone, also from the command line, and
    # leaves matplotlib's global backend alone (a notebook user's stays as it was)
    import matplotlib

    monkeypatch.setattr(matplotlib, "use", lambda *a, **k: pytest.fail("matplotlib.use()"))
    (study / "report.md").unlink()
    assert write_report(study).exists()
    (study / "report.md").unlink()
    assert main(["bench", "robustness", "--out", str(tmp_path), "--report-only"]) == 0
    assert (study / "report.md").exists()
    # resumable: the trained families are stored in parts and reused, not retrained
    before = (study / "runs.csv").read_text()
    (study / "runs.csv").unlink()
    lines_seen: list[str] = []
    run_robustness(study, quick=True, families=["quadratic", "ackley"],
                   progress=lines_seen.append)
    assert sum("(stored)" in line for line in lines_seen) == 2
    assert (study / "runs.csv").read_text() == before
    speed = summary["speed"]["families"]["quadratic"]
    assert math.isfinite(speed["max_rel_diff_final_loss"])
    assert speed["max_rel_diff_final_loss"] < 1e-3


def test_bench_robustness_subcommand_leaves_bench_intact():
    args = _parser().parse_args(["bench", "robustness", "--out", "x"])
    assert args.run.__name__ == "_run_bench_robustness" and not args.full and args.out == "x"
    args = _parser().parse_args(["bench", "--full"])
    assert args.run.__name__ == "_run_bench" and args.full

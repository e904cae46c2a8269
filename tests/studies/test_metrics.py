"""The paper's labels and the seed statistics, against hand-computed tables."""

from __future__ import annotations

import math
from typing import Any

import pytest

from greedylr.studies import metrics as M
from greedylr.studies import store
from greedylr.studies.metrics import (
    MetricMismatch,
    Stat,
    arm_of,
    arm_summaries,
    best_metric,
    bootstrap_ci,
    common_metric,
    compare,
    direction_guessed,
    final_metric,
    label,
    label_table,
    loss_at,
    lr_changes,
    metric_name,
    paired_differences,
    setting_of,
    sign_test,
    smoothed_curve,
    status_counts,
    t_ci,
    t_quantile,
    time_to_target,
)
from greedylr.studies.report.cells import setting_title

STEPS = 100  # smoothing window: 2% of 100 = 2 steps


def _curve(a: float, b: float, c: float) -> list[float]:
    """a for steps 1-10, b for 11-50, c for 51-100: the loss at 10/50/100% is a/b/c."""
    return [a] * 10 + [b] * 40 + [c] * 50


def _result(
    schedule: str,
    seed: int,
    losses: list[float],
    *,
    status: str = "ok",
    settings: dict[str, Any] | None = None,
    metrics: list[dict[str, float]] | None = None,
    metric: str = "accuracy",
    higher: bool = True,
) -> dict[str, Any]:
    return {
        "spec": {
            "study": "s",
            "workload": "w",
            "schedule": schedule,
            "optimizer": "adamw",
            "seed": seed,
            "steps": STEPS,
            "lr": None,
            "warmup": 0,
            "eval_every": 0,
            "settings": settings or {},
        },
        "status": status,
        "losses": losses,
        "lrs": [1e-3] * len(losses),
        "metrics": metrics or [],
        "metric": {"name": metric, "higher_is_better": higher},
        "wall_time": 1.0,
    }


def _study() -> list[dict[str, Any]]:
    diverged = [1.5] * 10 + [1.2] * 19 + [math.nan]  # NaN at step 30
    return [
        _result("greedy", 0, _curve(1.0, 0.5, 0.25)),
        _result("cosine", 0, _curve(1.25, 0.5625, 0.25)),  # +.25 yes, +.0625 yes*, 0 no*
        _result("linear", 0, _curve(0.9375, 0.75, 0.0)),  # -.0625 no*, +.25 yes, -.25 no
        _result("greedy", 1, _curve(2.0, 1.0, 0.5)),
        _result("cosine", 1, _curve(2.5, 1.0, 0.4375)),  # +.5 yes, 0 no*, -.0625 no*
        _result("linear", 1, diverged, status="diverged"),  # -.5 no, inf yes, inf yes
        _result("greedy", 2, [1.0] * 5, status="failed"),  # not compared
        _result("cosine", 2, _curve(1.0, 1.0, 1.0)),
    ]


def test_label_boundaries() -> None:
    assert [label(d, 0.5) for d in (0.5, 0.25, 0.0, -0.25, -0.5, math.inf)] == [
        "yes",
        "yes*",
        "no*",
        "no*",
        "no",
        "yes",
    ]
    with pytest.raises(ValueError):
        label(0.1, 0.0)


def test_losses_are_smoothed_over_a_trailing_two_percent_window() -> None:
    r = _result("cosine", 0, [float(t) for t in range(1, 101)])
    assert loss_at(r, 0.1) == 9.5  # mean of steps 9 and 10
    assert loss_at(r, 1.0) == 99.5
    assert smoothed_curve(r)[0] == 1.0  # the first step has only itself
    diverged = _result("cosine", 0, [1.0] * 29 + [math.nan], status="diverged")
    assert loss_at(diverged, 0.1) == 1.0 and loss_at(diverged, 0.5) == math.inf


def test_the_papers_label_table_by_hand() -> None:
    comparisons = compare(_study())
    assert len(comparisons) == 12  # 2 seeds x 2 baselines x 3 stages; seed 2 failed
    table = label_table(comparisons)
    assert table.counts == {"yes": 5, "yes*": 1, "no*": 4, "no": 2}
    assert table.as_good_or_better == pytest.approx(100 * 10 / 12)
    assert table.better == pytest.approx(50.0)
    assert table.clearly_better == pytest.approx(100 * 5 / 12)
    assert table.worse == pytest.approx(100 * 2 / 12)
    assert table.as_good == pytest.approx(100 * 5 / 12)
    assert [table.stage_as_good_or_better(s) for s in (0.1, 0.5, 1.0)] == [75.0, 100.0, 75.0]
    # finite deltas: benefits .25 .0625 .25 .5, deficits -.0625 -.25 -.0625 -.5, two zeros
    assert table.mean_benefit == pytest.approx(0.265625)
    assert table.max_benefit == pytest.approx(0.5)
    assert table.mean_deficit == pytest.approx(-0.21875)
    assert table.max_deficit == pytest.approx(-0.5)
    assert table.mean_delta == pytest.approx(0.1875 / 10)


def test_relative_labels_and_baseline_choice() -> None:
    results = [
        _result("greedy", 0, _curve(0.98, 0.995, 1.02)),
        _result("cosine", 0, _curve(1.0, 1.0, 1.0)),
    ]
    table = label_table(compare(results, mode="rel"), mode="rel")
    assert table.counts == {"yes": 1, "yes*": 1, "no*": 0, "no": 1}
    only_linear = compare(_study(), baselines=["linear"])
    assert {c.baseline for c in only_linear} == {"linear"} and len(only_linear) == 6


def test_arms_and_settings() -> None:
    a = _result("greedy", 0, [1.0], settings={"factor": 0.5, "workload_width": 8})
    b = _result("cosine", 0, [1.0], settings={"workload_width": 8})
    c = _result("cosine", 0, [1.0], settings={"workload_width": 16})
    assert arm_of(a) == "greedy(factor=0.5)" and arm_of(b) == "cosine"
    assert setting_of(a) == setting_of(b) != setting_of(c)
    # scoring an average of the weights makes another arm of the same setting
    d = _result("cosine", 0, [1.0], settings={"workload_width": 8, "workload_power_ema": 7})
    assert arm_of(d) == "cosine(workload_power_ema=7)" and setting_of(d) == setting_of(b)
    # runs evaluated at another pace are another setting (GreedyLR is fed what is
    # measured; the best so far is taken over the evaluations): never mixed per seed
    e = _result("cosine", 0, [1.0], settings={"workload_width": 8})
    e["spec"]["eval_every"] = 10
    assert setting_of(e) != setting_of(b)
    assert setting_title(setting_of(e), [e]).endswith("evaluated every 10 steps")


def test_time_to_target() -> None:
    greedy = _result("greedy", 0, _curve(1.0, 0.5, 0.25))
    # smoothed: 0.375 at step 51, 0.25 at step 52
    assert time_to_target(greedy, 0.25) == 52
    assert time_to_target(greedy, 0.5) == 12
    assert time_to_target(greedy, 0.1) is None


def test_held_out_metric_final_and_best() -> None:
    rows = [
        {"step": 10, "accuracy": 0.8},
        {"step": 20, "accuracy": 0.9},
        {"step": 30, "accuracy": 0.85},
    ]
    r = _result("cosine", 0, [1.0] * 30, metrics=rows)
    assert final_metric(r) == 0.85 and best_metric(r) == (0.9, 20)
    ppl = [
        {"step": 10, "perplexity": 9.0},
        {"step": 20, "perplexity": 7.0},
        {"step": 30, "perplexity": 8.0},
    ]
    r = _result("cosine", 0, [1.0] * 30, metrics=ppl, metric="perplexity", higher=False)
    assert best_metric(r) == (7.0, 20)
    assert final_metric(_result("cosine", 0, [1.0])) is None


def test_lr_changes() -> None:
    r = _result("greedy", 0, [1.0] * 6)
    r["lrs"] = [1.0, 1.0, 2.0, 2.0, 1.0, 0.5]
    assert lr_changes(r) == {"up": 1, "down": 2}


def test_bootstrap_ci() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    lo, hi = bootstrap_ci(values)
    assert lo < 4.0 < hi and (lo, hi) == bootstrap_ci(values)  # deterministic
    assert lo >= 1.0 and hi <= 10.0
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert bootstrap_ci([3.0]) == (3.0, 3.0)
    assert all(math.isnan(v) for v in bootstrap_ci([]))


@pytest.mark.parametrize(
    ("df", "quantile"),  # two-sided 95%, from any table of Student's t
    [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262), (29, 2.045),
     (100, 1.984), (1000, 1.962)],
)
def test_t_quantile_matches_the_table(df: int, quantile: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(quantile, abs=5e-4)
    assert t_quantile(0.025, df) == pytest.approx(-quantile, abs=5e-4)


def test_t_quantile_matches_scipy_where_installed() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (*range(1, 40), 299, 300, 301, 5000, 10**6):
        for p in (0.6, 0.9, 0.975, 0.995, 0.9995):
            assert t_quantile(p, df) == pytest.approx(float(stats.t.ppf(p, df)), rel=1e-9)
    with pytest.raises(ValueError):
        t_quantile(0.975, 0)
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)


def test_the_seed_ci_is_the_student_t_interval_not_the_bootstrap() -> None:
    # mean 2, s = 1, n = 3: 2 ± 4.303 / sqrt(3); the percentile bootstrap gave [1, 3],
    # no wider than the values themselves
    lo, hi = t_ci([1.0, 2.0, 3.0])
    assert (lo, hi) == pytest.approx((2 - 4.3027 / math.sqrt(3), 2 + 4.3027 / math.sqrt(3)),
                                     abs=1e-4)
    assert Stat.of([1.0, 2.0, 3.0]).ci == (lo, hi)
    assert t_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert all(math.isnan(v) for v in (*t_ci([3.0]), *t_ci([]), *Stat.of([3.0]).ci))
    assert Stat.of([3.0]).mean == 3.0  # one value: its mean, no interval


def test_sign_test() -> None:
    assert sign_test(0, 6) == pytest.approx(2 / 64)
    assert sign_test(0, 5) == pytest.approx(2 / 32)  # 5 of 5 is not enough at 5%
    assert sign_test(3, 3) == 1.0 and sign_test(0, 0) == 1.0
    assert sign_test(9, 1) == pytest.approx(2 * 11 / 1024)


def test_the_metric_comes_from_the_trials_that_report_one() -> None:
    # the first trial failed before it reported anything: it has no say
    failed = _result("cosine", 0, [], status="failed")
    failed["metric"] = {"name": None, "higher_is_better": None}
    rows = [{"step": 100, "top1_err": 0.2}]
    runs = [failed, *(_result(s, seed, _curve(1.0, 0.5, 0.25), metric="top1_err",
                              higher=False, metrics=rows)
                      for s in ("greedy", "cosine") for seed in (1, 2))]
    assert common_metric(runs) == ("top1_err", False)
    assert common_metric([failed]) == (None, True)
    summaries = {s.arm: s for s in arm_summaries(runs)}
    assert summaries["cosine"].metric == "top1_err" and not summaries["cosine"].higher_is_better
    # two names (the function changed what it reports between two runs): refused
    other = _result("greedy", 3, _curve(1.0, 0.5, 0.25), metrics=[{"step": 100, "acc": 1.0}],
                    metric="acc")
    with pytest.raises(MetricMismatch, match=r"`acc` \(higher is better\) in 1 trial, "
                                             r"`top1_err` \(lower is better\) in 4 trials"):
        common_metric([*runs, other])
    mixed = {s.arm: s for s in arm_summaries([*runs, other])}
    assert mixed["greedy"].metric is None and mixed["greedy"].final_metric.n == 0
    (p,) = paired_differences([*runs, other])
    assert p.final_metric_diff.n == 0  # nothing compared across two metrics


def test_seed_summaries_and_status_counts() -> None:
    study = _study()
    summaries = {s.arm: s for s in arm_summaries(study)}
    greedy = summaries["greedy"]
    assert greedy.runs == 3 and greedy.statuses == {"ok": 2, "failed": 1}
    assert greedy.final_loss.mean == pytest.approx(0.375)
    assert greedy.final_loss.std == pytest.approx(math.sqrt(2) * 0.125)
    assert greedy.final_loss.n == 2
    assert summaries["linear"].statuses == {"ok": 1, "diverged": 1}
    assert status_counts(study) == {
        "cosine": {"ok": 3, "short": 0, "diverged": 0, "failed": 0, "timeout": 0},
        "greedy": {"ok": 2, "short": 0, "diverged": 0, "failed": 1, "timeout": 0},
        "linear": {"ok": 1, "short": 0, "diverged": 1, "failed": 0, "timeout": 0},
    }


def test_a_short_trial_is_counted_as_short() -> None:
    # the statuses are the store's: a trial that returned early is counted, not dropped
    short = _result("greedy", 1, _curve(1.0, 0.5, 0.25)[:10], status="short")
    counts = status_counts([*_study(), short])
    assert counts["greedy"] == {"ok": 2, "short": 1, "diverged": 0, "failed": 1, "timeout": 0}
    assert M.STATUSES is store.STATUSES
    summaries = {s.arm: s for s in arm_summaries([*_study(), short])}
    assert summaries["greedy"].statuses["short"] == 1


def _unnamed(metrics: list[dict[str, float]]) -> dict[str, Any]:
    """A stored result that names no headline metric nor its direction."""
    r = _result("greedy", 0, _curve(1.0, 0.5, 0.25), metrics=metrics)
    r["metric"] = {"name": None, "higher_is_better": None}
    return r


def test_a_result_that_names_no_metric_is_read_by_the_harness_rule() -> None:
    # fed every evaluation, scored once at the end: the score, not feed
    fed_first = _unnamed([{"step": 50, "feed": 0.7}, {"step": 100, "feed": 0.6, "top1_err": 0.2}])
    assert metric_name(fed_first) == ("top1_err", False)  # an error: lower is better
    assert direction_guessed([fed_first])
    # feed alone is a loss
    fed_only = _unnamed([{"step": 50, "feed": 0.7}, {"step": 100, "feed": 0.6}])
    assert metric_name(fed_only) == ("feed", False)
    assert not direction_guessed([fed_only])
    assert best_metric(fed_only) == (0.6, 100)
    # a name with no word of a loss or an error: higher is better, a guess
    assert metric_name(_unnamed([{"step": 100, "accuracy": 0.9}])) == ("accuracy", True)
    # a stored name without a direction: read from the name too
    wer = _result("greedy", 0, _curve(1.0, 0.5, 0.25), metric="wer",
                  metrics=[{"step": 100, "wer": 0.3}])
    wer["metric"] = {"name": "wer", "higher_is_better": None}
    assert metric_name(wer) == ("wer", False) and direction_guessed([wer])
    # what is stored stands, and says whether it was a guess
    stated = _result("greedy", 0, _curve(1.0, 0.5, 0.25), metric="wer", higher=True)
    assert metric_name(stated) == ("wer", True) and not direction_guessed([stated])
    stated["metric"]["guessed"] = True
    assert direction_guessed([stated])
    assert metric_name(_unnamed([])) == (None, True)


def test_paired_differences() -> None:
    rows = [{"step": 100, "accuracy": 0.9}]
    worse = [{"step": 100, "accuracy": 0.8}]
    results = [
        _result("greedy", 0, _curve(1.0, 0.5, 0.25), metrics=rows),
        _result("cosine", 0, _curve(1.0, 0.5, 0.5), metrics=worse),
        _result("greedy", 1, _curve(1.0, 0.5, 0.5), metrics=worse),
        _result("cosine", 1, _curve(1.0, 0.5, 0.25), metrics=rows),
    ]
    (p,) = paired_differences(results)
    assert (p.candidate, p.baseline, p.pairs, p.wins) == ("greedy", "cosine", 2, 1)
    assert p.final_loss_diff.mean == pytest.approx(0.0)
    assert p.final_metric_diff.mean == pytest.approx(0.0)
    # seed 0: greedy reaches cosine's 0.5 at step 12 (smoothed); seed 1 never reaches 0.25
    assert (p.reached, p.time_to_target.mean) == (1, 12.0)


@pytest.mark.parametrize(
    ("candidate", "baseline", "higher", "outcome"),
    [
        (0.9, 0.8, True, 1),
        (0.9, 0.8, False, -1),
        (0.9, 0.9 * (1 + 1e-12), True, 0),  # within a relative 1e-9: a tie, not a win
        (0.9, math.nan, True, 1),  # a non-finite final is a divergence: a loss for its side
        (math.inf, 0.9, False, -1),
        (math.nan, -math.inf, True, 0),  # both diverged
    ],
)
def test_one_seed_of_a_pair_is_won_tied_or_lost(
    candidate: float, baseline: float, higher: bool, outcome: int
) -> None:
    assert M.seed_outcome(candidate, baseline, higher) == outcome


def test_a_nan_final_metric_counts_as_a_divergence_in_every_table() -> None:
    from greedylr.studies import tuning as T

    def run(schedule: str, seed: int, best: float, final: float) -> dict[str, Any]:
        rows = [{"step": 50, "accuracy": best}, {"step": 100, "accuracy": final}]
        return _result(schedule, seed, _curve(1.0, 0.5, 0.25), metrics=rows)

    # cosine's seed 1 scored NaN at the end (status ok) after 0.99 at step 50
    results = [run("greedy", 0, 0.7, 0.7), run("greedy", 1, 0.7, 0.7),
               run("greedy", 2, 0.7, 0.7), run("cosine", 0, 0.6, 0.6),
               run("cosine", 1, 0.99, math.nan), run("cosine", 2, 0.6, 0.6)]
    cosine = next(s for s in arm_summaries(results) if s.arm == "cosine")
    # the best-so-far over the seeds of the final, not also the seed that diverged
    assert cosine.final_metric.n == cosine.best_metric.n == 2
    assert cosine.best_metric.mean == pytest.approx(0.6)
    (p,) = paired_differences(results)
    assert (p.pairs, p.wins, p.final_metric_diff.n) == (3, 3, 2)
    (tuned,) = T.tune(results)[0].pairs
    assert (tuned.wins, tuned.ties, tuned.losses) == (p.wins, 0, 0)

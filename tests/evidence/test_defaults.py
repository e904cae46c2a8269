"""The defaults study's analysis and the suites' summaries, on synthetic stored results."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from greedylr.evidence import defaults, summaries
from greedylr.studies.store import FORMAT, result_path, write_result
from greedylr.studies.trial import TrialSpec


def _result(
    workload: str,
    schedule: str,
    seed: int,
    loss: float,
    metric: float,
    settings: dict | None = None,
    status: str = "ok",
    steps: int = 50,
) -> dict:
    spec = TrialSpec.make(
        study="s",
        workload=workload,
        schedule=schedule,
        seed=seed,
        steps=steps,
        optimizer="adamw",
        settings=settings,
    )
    return {
        "format": FORMAT,
        "key": spec.key,
        "spec": spec.to_dict(),
        "status": status,
        "error": None,
        "traceback": None,
        "lr": 1e-3,
        "metric": {"name": "accuracy", "higher_is_better": True},
        "steps_done": steps,
        "losses": [loss] * steps,
        "lrs": [1e-3] * steps,
        "metrics": [{"step": steps, "accuracy": metric}],
        "events": [],
        "wall_time": 1.0,
    }


def test_ranks_average_ties_and_put_missing_values_last() -> None:
    assert defaults._ranks({"a": 0.9, "b": 0.8, "c": 0.9}, True) == {"a": 1.5, "b": 3.0, "c": 1.5}
    assert defaults._ranks({"a": 1.0, "b": math.nan}, False) == {"a": 1.0, "b": 2.0}


def test_analyze_counts_wins_and_the_adoption_rule_needs_a_majority() -> None:
    results = []
    for w, (base, var) in {"w1": (0.8, 0.9), "w2": (0.8, 0.85), "w3": (0.9, 0.85)}.items():
        for seed in range(3):
            results.append(_result(w, "greedy", seed, 0.5, base))
            results.append(_result(w, "greedy", seed, 0.5, var, settings={"factor": 0.9}))
            results.append(_result(w, "greedy", seed, 0.5, base - 0.1, settings={"patience": 5}))
    baselines = [_result(w, "cosine", s, 0.7, 0.8) for w in ("w1", "w2", "w3") for s in range(3)]
    analysis = defaults.analyze(results, baselines)
    rows = {r["variant"]: r for r in analysis["variants"]}
    assert rows["greedy(factor=0.9)"]["wins_vs_default"] == 2
    assert rows["greedy(factor=0.9)"]["workloads"] == 3
    assert rows["greedy(patience=5)"]["wins_vs_default"] == 0
    assert defaults.adopted(analysis) == ["greedy(factor=0.9)"]
    # every GreedyLR loss (0.5) is 0.2 below cosine's (0.7): all "yes", none worse
    assert rows["greedy"]["as_good_or_better_pct"] == 100.0
    assert rows["greedy"]["worse_pct"] == 0.0
    assert rows["greedy"]["paper_comparisons"] == 3 * 3 * 3


def test_variants_are_valid_greedy_settings_and_splits_are_disjoint() -> None:
    import torch

    from greedylr.studies.schedules import build_schedule

    splits = list(defaults.HELDOUT_SPLITS.values())
    assert len(set().union(*splits)) == sum(len(split) for split in splits)  # disjoint
    for settings in defaults.VARIANTS.values():
        opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
        build_schedule("greedy", opt, total_steps=10, **settings)
    specs = defaults.check_specs({"factor": 0.9})
    assert {s.options.get("factor") for s in specs} == {0.9}
    assert {s.workload for s in specs} == set(defaults.CHECK_WORKLOADS)


def test_the_study_command_hands_the_stage_its_candidate(tmp_path, monkeypatch) -> None:
    """``greedylr study defaults check --set ...``: VALUEs as JSON, a bare word a string."""
    from greedylr.cli import main

    calls = []
    monkeypatch.setattr(defaults, "run_stage", lambda *a, **kw: calls.append((a, kw)))
    argv = ["study", "defaults", "check", "--out", str(tmp_path), "--set", "factor=0.9",
            "--set", "patience=5", "--set", "smoothing=none", "--jobs", "3"]
    assert main(argv) == 0
    ((stage, out), kw), = calls
    assert stage == "check" and out == tmp_path and kw["jobs"] == 3
    assert kw["candidate"] == {"factor": 0.9, "patience": 5, "smoothing": "none"}


def test_headline_and_summary_from_a_store(tmp_path) -> None:
    results = []
    for seed in range(3):
        results.append(_result("w", "greedy", seed, 0.5, 0.9))
        results.append(_result("w", "cosine", seed, 0.55, 0.92))  # yes*: 0.05 better
        results.append(_result("w", "linear", seed, 0.3, 0.95))  # no: 0.2 worse
        results.append(_result("w", "constant", seed, 0.5, 0.8))  # no*: a tie
    head = summaries.headline(results)
    paper = head["vs paper baselines"]
    assert paper["comparisons"] == 2 * 3 * 3
    assert paper["better"] == pytest.approx(50.0) and paper["worse"] == pytest.approx(50.0)
    everything = head["vs all schedules"]
    assert everything["comparisons"] == 3 * 3 * 3
    assert everything["as good or better"] == pytest.approx(200 / 3)
    rows = summaries.workload_table(results)
    assert rows[0]["best_schedule"] == "linear" and rows[0]["greedy_rank"] == 3
    for r in results:
        write_result(result_path(tmp_path / "store", TrialSpec.from_dict(r["spec"])), r)
    path = summaries.write_summary(tmp_path / "store", tmp_path / "out")
    assert "86.73%" in path.read_text()
    with open(tmp_path / "out" / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and {r["schedule"] for r in rows} >= {"greedy", "cosine"}


def test_versus_cosine_scores_within_one_percent_and_time_to_cosines_loss() -> None:
    results = []
    for seed in (0, 1):
        # w1: greedy 0.5% worse on accuracy (within 1%), a lower loss; w2: 2% worse
        results += [_result("w1", "cosine", seed, 1.0, 0.90),
                    _result("w2", "cosine", seed, 1.0, 0.50)]
        results += [_result("w1", "greedy", seed, 0.5, 0.90 * 0.995),
                    _result("w2", "greedy", seed, 2.0, 0.49)]
    table = defaults.versus_cosine(results)
    g = table["greedy"]
    # one evaluation, at the end: no best-so-far comparison at 50%
    assert (g["final_n"], g["best_n"], g["train_n"]) == (2, 2, 6)
    assert g["final_pct"] == 50.0 and g["best_pct"] == 50.0  # w1 only
    assert g["train_pct"] == 50.0  # w1's three stages; w2 is 2x worse
    # w1 is below cosine's loss from its first step, w2 never gets there
    assert g["misses"] == 2 and g["time_to_cosine_loss"] == pytest.approx((0.02 + math.inf) / 2)
    assert table["cosine"]["final_pct"] == 100.0


def test_versus_cosine_selects_the_checkpoint_on_the_fed_half() -> None:
    """``selected`` scores the reported value of the evaluation with the best fed loss:
    here greedy's best reported accuracy (0.95, at step 50) is cosine's, but its fed
    loss was best at step 100, whose accuracy 0.80 is what a user who stops early keeps."""
    def run(schedule: str, seed: int, rows: list[tuple[int, float, float]]) -> dict:
        r = _result("w", schedule, seed, 1.0, rows[-1][1], steps=100)
        r["metrics"] = [{"step": s, "accuracy": a, "feed": f} for s, a, f in rows]
        return r

    results = []
    for seed in (0, 1):
        results += [run("cosine", seed, [(50, 0.90, 0.3), (100, 0.95, 0.2)]),
                    run("greedy", seed, [(50, 0.95, 0.5), (100, 0.80, 0.4)])]
    g = defaults.versus_cosine(results)["greedy"]
    # by 50%: both have one evaluation (0.95 >= 0.90 either way); by 100%: best 0.95 as
    # cosine's, selected 0.80 against cosine's selected 0.95
    assert (g["best_n"], g["selected_n"]) == (2, 2)
    assert g["best_pct"] == 100.0 and g["selected_pct"] == 50.0
    assert defaults._selected_until(results[1], 1.0) == 0.80
    # no fed value: nothing to select on, no comparison
    assert math.isnan(defaults._selected_until(_result("w", "greedy", 0, 1.0, 0.9), 1.0))


def test_versus_cosine_against_another_cosine_arm() -> None:
    averaged = {"workload_power_ema": 7}
    results = []
    for seed in (0, 1):
        results += [_result("w1", "cosine", seed, 1.0, 0.80),
                    _result("w1", "cosine", seed, 1.0, 0.90, settings=averaged),
                    _result("w1", "greedy", seed, 1.0, 0.85, settings=averaged)]
    plain = defaults.versus_cosine(results)
    fair = defaults.versus_cosine(results, "cosine(workload_power_ema=7)")
    arm = "greedy(workload_power_ema=7)"
    assert plain[arm]["final_pct"] == 100.0 and fair[arm]["final_pct"] == 0.0
    assert fair["cosine"]["final_pct"] == 0.0
    assert defaults.versus_cosine(results, "no such arm") == {}


def test_heldout_report_adds_the_table_against_an_averaged_cosine(tmp_path) -> None:
    from greedylr.evidence.defaults_report import write_heldout_report

    averaged = {"workload_power_ema": 7}
    for seed in (0, 1):
        for schedule, metric, settings in (("cosine", 0.80, None), ("greedy", 0.85, None),
                                           ("cosine", 0.90, averaged),
                                           ("greedy", 0.85, averaged)):
            r = _result("wine_mlp", schedule, seed, 1.0, metric, settings=settings)
            write_result(result_path(tmp_path / "heldout_tune", TrialSpec.make(**r["spec"])), r)
    text = write_heldout_report(tmp_path, tmp_path / "report").read_text()
    assert "against `cosine(workload_power_ema=7)`" in text
    summary = json.loads((tmp_path / "report" / "heldout.json").read_text())["tune"]
    arm = "greedy(workload_power_ema=7)"
    assert summary["versus_cosine"][arm]["final_pct"] == 100.0
    assert summary["versus cosine(workload_power_ema=7)"][arm]["final_pct"] == 0.0


def test_heldout_specs_split_the_held_out_data_and_evaluate_every_tenth() -> None:
    specs = defaults.heldout_specs(("wine_mlp",), "x", arms=3)
    assert len(specs) == 3 * len(defaults.SEEDS)
    assert all(s.options["workload_feed_split"] is True for s in specs)
    assert {s.eval_every for s in specs} == {max(1, specs[0].steps // 10)}
    assert [(s.schedule, s.options.get("workload_power_ema")) for s in specs[:3]] == [
        ("cosine", None), ("greedy", None), ("cosine", defaults.AVERAGE_GAMMA)]


def test_heldout_lr_grid_specs_are_the_lr_grid_per_arm_split_and_every_tenth() -> None:
    specs = defaults.heldout_lr_grid_specs()
    # 4 workloads x 5 LRs x 3 seeds per arm
    assert len(specs) == len(defaults.LR_GRID_ARMS) * 4 * 5 * 3
    assert len({s.key for s in specs}) == len(specs)
    assert all(s.options["workload_feed_split"] is True for s in specs)
    assert all(s.eval_every == max(1, s.steps // 10) for s in specs)
    wine_01 = sorted(s.lr for s in specs if s.workload == "wine_mlp" and s.seed == 0
                     and s.options.get("eval_patience", 0) is None)
    assert len(wine_01) == 5 and wine_01[-1] == pytest.approx(100 * wine_01[0])


def test_heldout_lr_grid_on_the_check_split_is_its_workloads_seed_major() -> None:
    specs = defaults.heldout_lr_grid_specs("check")
    arms, seeds = defaults.LR_GRID_CHECK_ARMS, defaults.LR_GRID_CHECK_SEEDS
    assert len(specs) == len(arms) * len(defaults.CHECK_WORKLOADS) * 5 * len(seeds)
    assert {s.workload for s in specs} == set(defaults.CHECK_WORKLOADS)
    assert all(s.options["workload_feed_split"] is True for s in specs)
    # seed-major: a grid cut short has every point of its first seeds
    assert [s.seed for s in specs] == sorted(s.seed for s in specs)
    assert len({s.key for s in specs}) == len(specs)
    resnet = sorted(s.lr for s in specs if s.workload == "mnist_resnet" and s.seed == 0
                    and s.schedule == "greedy" and set(s.options) == {"workload_feed_split"})
    assert len(resnet) == 5 and resnet[-1] == pytest.approx(100 * resnet[0])
    with pytest.raises(ValueError, match="split"):
        defaults.heldout_lr_grid_specs("all")


@pytest.mark.parametrize("split", ["fresh", "probe", "probe2", "probe3", "probe4",
                                   "probe5", "probe6", "probe7", "probe8",
                                   "probe9", "probe10", "probe11",
                                   "probe12", "probe13", "probe14", "probe15",
                                   "probe16"])
def test_later_split_stages_run_its_workloads_under_the_same_protocol(split, tmp_path,
                                                                       monkeypatch) -> None:
    names = defaults.HELDOUT_SPLITS[split]
    grid = defaults.heldout_lr_grid_specs(split)
    arms, seeds = defaults.LR_GRID_CHECK_ARMS, defaults.LR_GRID_CHECK_SEEDS
    assert len(grid) == len(arms) * len(names) * 5 * len(seeds)
    assert {s.study for s in grid} == {f"defaults_heldout_lr_grid_{split}"}
    ran: list[tuple[list, Path]] = []
    monkeypatch.setattr("greedylr.studies.runner.run_trials",
                        lambda specs, out, **_: ran.append((specs, out)))
    assert f"heldout-{split}" in defaults.STAGES and f"heldout-lr-grid-{split}" in defaults.STAGES
    defaults.run_stage(f"heldout-{split}", tmp_path, arms=2)
    defaults.run_stage(f"heldout-lr-grid-{split}", tmp_path)
    (held, held_out), (lr_grid, grid_out) = ran
    assert held_out == tmp_path / f"heldout_{split}"
    assert grid_out == tmp_path / f"heldout_lr_grid_{split}"
    assert {s.workload for s in held} == set(names)
    assert len(held) == 2 * len(names) * len(defaults.SEEDS)
    assert [s.key for s in lr_grid] == [s.key for s in grid]


def test_heldout_specs_take_any_arms_and_unknown_stages_are_refused(tmp_path) -> None:
    explored = defaults.heldout_specs(("wine_mlp",), "x", choices=(("constant", {}),))
    assert {s.schedule for s in explored} == {"constant"} and len(explored) == len(defaults.SEEDS)
    with pytest.raises(ValueError, match="unknown stage"):
        defaults.run_stage("heldout-nothing", tmp_path)


def test_lr_grid_report_scores_only_the_seeds_that_ran_every_point() -> None:
    from greedylr.evidence.defaults_report import _complete_seeds

    def result(seed: int, lr: float, schedule: str) -> dict:
        return {"spec": {"workload": "w", "schedule": schedule, "seed": seed, "lr": lr,
                         "settings": []}}

    full = [result(seed, lr, arm) for seed in (0, 1) for lr in (0.1, 1.0)
            for arm in ("cosine", "greedy")]
    cut = [*full, result(2, 0.1, "cosine")]  # seed 2 cut short after one run
    assert _complete_seeds(cut) == full


def test_lr_grid_report_names_the_worst_point_that_did_not_diverge() -> None:
    # round 14: a blown-up run that ends finite at 202x the best-tuned cosine hid behind a
    # median of 1.02 and no diverged point; the table shows it beside them
    from greedylr.evidence.defaults_report import _tolerance_table
    from greedylr.studies.tuning import Tolerance

    t = Tolerance("greedy", (1.0, 0.9, 202.0, math.inf), (0.95, 202.0, math.inf), 1, 0.02)
    assert t.worst_finite_ratio == 202.0
    row = _tolerance_table({"greedy": t}).splitlines()[-1]
    assert row.split(" | ")[4] == "202"
    assert math.isnan(Tolerance("x", (math.inf,), (math.inf,), 1, 0.02).worst_finite_ratio)


def _unscored(r: dict, status: str = "failed") -> dict:
    """``r`` as a trial that stopped before it reported a metric: it names none."""
    return dict(r, status=status, metrics=[], metric={"name": None, "higher_is_better": None})


def _rmse(workload: str, schedule: str, seed: int, loss: float, value: float, **kw) -> dict:
    """A trial whose held-out metric is an error (lower is better)."""
    r = _result(workload, schedule, seed, loss, value, **kw)
    return dict(r, metric={"name": "rmse", "higher_is_better": False},
                metrics=[{"step": r["spec"]["steps"], "rmse": value}])


def test_the_direction_is_the_trials_that_report_one_not_the_first_or_last() -> None:
    # an error: lower is better; the trial read first, and the one read last, failed
    # before reporting anything (they must not make the workload higher-is-better)
    results = [_unscored(_rmse("w", "constant", 9, 0.5, 0.0))]
    for seed in range(2):
        results += [_rmse("w", "greedy", seed, 0.5, 0.2), _rmse("w", "cosine", seed, 0.5, 0.3),
                    _rmse("w", "linear", seed, 0.5, 0.1)]
    results.append(_unscored(_rmse("w", "polynomial", 9, 0.5, 0.0)))
    (row,) = summaries.workload_table(results)
    assert (row["metric"], row["higher_is_better"]) == ("rmse", False)
    assert row["best_schedule"] == "linear" and row["greedy_rank"] == 2
    assert row["best_paper_baseline"] == "linear" and not row["direction_guessed"]
    assert defaults.directions(results) == {"w": False}
    # analyze: a variant better on the error wins, whichever trial of a seed is read
    # first (here, on the seed read last, a variant's that failed)
    patience = [_rmse("w", "greedy", 0, 0.5, 0.25, settings={"patience": 5}),
                _unscored(_rmse("w", "greedy", 1, 0.5, 0.0, settings={"patience": 5}))]
    cells = [r for r in results if r["spec"]["schedule"] == "greedy"]
    variant = [_rmse("w", "greedy", s, 0.5, 0.15, settings={"factor": 0.9}) for s in range(2)]
    analysis = defaults.analyze([*patience, *cells, *variant])
    rows = {r["variant"]: r for r in analysis["variants"]}
    assert analysis["higher_is_better"] == {"w": False}
    assert rows["greedy(factor=0.9)"]["wins_vs_default"] == 1
    assert rows["greedy(factor=0.9)"]["metric_rank"] < rows["greedy"]["metric_rank"]


def test_a_setting_whose_trials_disagree_on_the_metric_is_not_ranked() -> None:
    results = [_rmse("w", "greedy", 0, 0.5, 0.2), _result("w", "cosine", 0, 0.5, 0.9)]
    (row,) = summaries.workload_table(results)
    assert row["metric"] is None and "disagree on the held-out metric" in row["not_compared"]
    (line,) = summaries._workload_lines([row])[2:]
    assert line.startswith("| w | adamw | default | - | not compared: the trials disagree")
    # a guessed direction is marked, as in the report
    guessed = [dict(r, metric={**r["metric"], "guessed": True})
               for r in (_rmse("w", "greedy", 0, 0.5, 0.2), _rmse("w", "cosine", 0, 0.5, 0.3))]
    (row,) = summaries.workload_table(guessed)
    assert row["direction_guessed"]
    assert "| rmse ↓ (guessed) |" in summaries._workload_lines([row])[2]


def test_the_f_sweep_names_the_metric_of_the_runs_that_report_one(tmp_path) -> None:
    from greedylr.evidence import llm_studies

    def run(factor: float, seed: int) -> dict:
        r = _result("lm", "greedy", seed, 2.0, 30.0, settings={"factor": factor})
        return dict(r, metric={"name": "perplexity", "higher_is_better": False},
                    metrics=[{"step": 50, "perplexity": 30.0}])

    # F = 0.25 diverged before its first evaluation: its runs name no metric; whichever
    # run is read first, the column is the metric of the run that reports one
    runs = [_unscored(run(0.25, s), "diverged") for s in range(3)] + [run(0.9, 3)]
    for r in runs:
        write_result(result_path(tmp_path, TrialSpec.from_dict(r["spec"])), r)
    text = llm_studies.f_sweep_table(tmp_path)
    assert "| F | runs | diverged | final loss | perplexity | peak LR / initial |" in text

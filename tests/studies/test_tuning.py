"""The tuned comparison and the LR tolerance, against a hand-made store of trials."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from greedylr.studies import tuning as T
from greedylr.studies.report import summary_table, write_report
from greedylr.studies.store import FORMAT, load_results, write_result

STEPS = 10


def _trial(schedule: str, lr: float, seed: int, acc: float | None, *,
           status: str = "ok", workload: str = "w") -> dict[str, Any]:
    return {
        "format": FORMAT,
        "key": f"{workload}-{schedule}-{lr:g}-s{seed}",
        "spec": {"study": "s", "workload": workload, "schedule": schedule,
                 "optimizer": "adamw", "seed": seed, "steps": STEPS, "lr": lr, "warmup": 0,
                 "eval_every": 5, "settings": {}},
        "status": status,
        "lr": lr,
        "losses": [1.0] * STEPS,
        "lrs": [lr] * STEPS,
        # best-so-far at step 5 is acc + 0.01; the final metric is acc
        "metrics": [] if acc is None else [{"step": 5, "accuracy": acc + 0.01},
                                           {"step": STEPS, "accuracy": acc}],
        "metric": {"name": "accuracy", "higher_is_better": True},
        "wall_time": 1.0,
    }


# final accuracy per (schedule, lr) and seed 0, 1, 2 (None: that seed diverged)
GRID: dict[str, dict[float, list[float | None]]] = {
    # means .80, .89, .90, .895: best at 1e-2
    "greedy": {1e-3: [0.80, 0.79, 0.81], 3e-3: [0.89, 0.88, 0.90],
               1e-2: [0.90, 0.89, 0.91], 3e-2: [0.90, 0.895, 0.89]},
    # best at 3e-3 (0.91); 1e-2 diverges once -> mean -inf, the worst point
    "cosine": {1e-3: [0.85, 0.86, 0.84], 3e-3: [0.91, 0.92, 0.90],
               1e-2: [0.93, None, 0.93], 3e-2: [0.60, 0.62, 0.61]},
    # best at 1e-3 (0.905)
    "linear": {1e-3: [0.90, 0.91, 0.905], 3e-3: [0.70, 0.70, 0.70],
               1e-2: [0.50, 0.50, 0.50], 3e-2: [0.40, 0.40, 0.40]},
}


def _results() -> list[dict[str, Any]]:
    out = []
    for schedule, grid in GRID.items():
        for lr, values in grid.items():
            for seed, acc in enumerate(values):
                out.append(_trial(schedule, lr, seed, acc,
                                  status="ok" if acc is not None else "diverged"))
    return out


def test_each_arm_is_taken_at_its_own_best_lr_a_diverged_seed_counting_as_worst() -> None:
    (wt,) = T.tune(_results())
    assert wt.grid and wt.metric == "accuracy" and wt.higher_is_better
    assert {a: t.best.lr for a, t in wt.arms.items()} == {
        "greedy": 1e-2, "cosine": 3e-3, "linear": 1e-3}
    cosine = wt.arms["cosine"]
    # 1e-2 has the best seeds (0.93) but one diverged: it is the worst point, not the best
    assert cosine.worst.lr == 1e-2 and cosine.worst.score == -math.inf
    assert cosine.worst.bad == 1 and cosine.worst.final.n == 2
    assert cosine.best.final.mean == pytest.approx(0.91)
    assert cosine.best.best.mean == pytest.approx(0.92)  # best-so-far at that LR
    assert wt.arms["greedy"].worst.lr == 1e-3


def test_the_tuned_pair_is_greedy_at_its_best_lr_minus_the_baseline_at_its_own() -> None:
    (wt,) = T.tune(_results())
    pairs = {p.baseline: p for p in wt.pairs}
    cos = pairs["cosine"]
    assert (cos.candidate_lr, cos.baseline_lr) == (1e-2, 3e-3)
    # seed by seed: .90-.91, .89-.92, .91-.90
    assert cos.diff.mean == pytest.approx((-0.01 - 0.03 + 0.01) / 3)
    assert (cos.wins, cos.ties, cos.losses) == (1, 0, 2)
    assert cos.verdict == "inconclusive (CI spans 0)"
    lin = pairs["linear"]
    assert lin.diff.mean == pytest.approx((0.0 - 0.02 + 0.005) / 3)
    assert (lin.wins, lin.ties, lin.losses) == (1, 1, 1)  # .90 vs .90 is a tie


def test_lr_tolerance_counts_grid_points_within_the_margin_of_the_best_tuned_baseline() -> None:
    (wt,) = T.tune(_results())
    assert wt.reference_arm == "cosine" and wt.reference == pytest.approx(0.91)
    # within 2% of 0.91: mean >= 0.8918
    # greedy means .80, .89, .90, .895 -> 2 of 4; cosine .85, .91, -inf, .61 -> 1;
    # linear .905, .70, .50, .40 -> 1
    assert {a: t.within for a, t in wt.arms.items()} == {"greedy": 2, "cosine": 1, "linear": 1}
    assert wt.arms["greedy"].tolerance == 0.5
    # a wider margin admits greedy's 0.89 too
    (wide,) = T.tune(_results(), margin=0.025)
    assert wide.arms["greedy"].within == 3


def test_a_seed_that_failed_at_every_lr_leaves_no_point_within_the_margin() -> None:
    # seed 3 (a missing data shard) fails in every trial: the reference is cosine's mean
    # over the seeds that finished at its best LR, and no point of any arm is within
    rs = [*_results(), *(_trial(arm, lr, 3, None, status="failed")
                         for arm, grid in GRID.items() for lr in grid)]
    (wt,) = T.tune(rs)
    assert wt.reference_arm == "cosine" and wt.reference == pytest.approx(0.91)
    assert not wt.why_no_reference
    assert {a: t.within for a, t in wt.arms.items()} == {"greedy": 0, "cosine": 0, "linear": 0}
    header, rows = summary_table(rs)
    tolerance = next(h for h in header if h.startswith("LR tolerance"))
    cells = {r[0]: r[header.index(tolerance)] for r in rows}
    assert cells["greedy"] == "0/4 (0%), 4 with a div/fail seed"


def test_no_baseline_that_finished_a_seed_leaves_the_tolerance_unmeasured() -> None:
    rs = [_trial("greedy", lr, seed, 0.9) for lr in (1e-3, 1e-2) for seed in range(2)]
    rs += [_trial("cosine", lr, seed, None, status="diverged")
           for lr in (1e-3, 1e-2) for seed in range(2)]
    (wt,) = T.tune(rs)
    assert math.isnan(wt.reference) and wt.arms["greedy"].within == 0
    assert wt.why_no_reference == "cosine finished no seed at its best LR"
    header, rows = summary_table(rs)
    tolerance = next(h for h in header if h.startswith("LR tolerance"))
    assert rows[0][header.index(tolerance)] == "n/a: cosine finished no seed at its best LR"
    (alone,) = T.tune([r for r in rs if r["spec"]["schedule"] == "greedy"])
    assert alone.why_no_reference == "no baseline to measure it against"


def test_leave_one_seed_out_picks_each_seeds_lr_on_the_other_seeds() -> None:
    (wt,) = T.tune(_results())
    # greedy: seed 0 and 1 left out -> 1e-2 (.90, .89); seed 2 left out -> 3e-2 (.89)
    greedy = wt.arms["greedy"]
    assert greedy.other_seeds.mean == pytest.approx((0.90 + 0.89 + 0.89) / 3)
    assert greedy.other_seeds_bad == 0
    # cosine: seed 1 left out, 1e-2 looks best on seeds 0 and 2 (.93), and seed 1 diverged
    # there; seeds 0 and 2 left out -> 3e-3 (.91, .90)
    cosine = wt.arms["cosine"]
    assert cosine.other_seeds.mean == pytest.approx(0.905) and cosine.other_seeds.n == 2
    assert cosine.other_seeds_bad == 1


def test_leave_one_seed_out_works_at_the_default_lr_too() -> None:
    # no spec LR (the workload's default): one grid point, so each seed's pick is it
    rs = [dict(_trial("greedy", 1e-3, s, 0.9 + 0.01 * s), spec=dict(
        _trial("greedy", 1e-3, s, 0.0)["spec"], lr=None)) for s in range(3)]
    (wt,) = T.tune(rs)
    assert wt.arms["greedy"].other_seeds.mean == pytest.approx(0.91)
    assert wt.arms["greedy"].best.lr == 1e-3  # the LR the trials recorded


def test_verdicts_need_three_seeds_and_a_ci_clear_of_zero() -> None:
    better = [_trial("greedy", 1e-3, s, 0.9 + 0.01 * s) for s in range(3)]
    better += [_trial("cosine", 1e-3, s, 0.8 + 0.01 * s) for s in range(3)]
    (wt,) = T.tune(better)
    assert wt.pairs[0].verdict == "better" and not wt.grid
    two = [r for r in better if r["spec"]["seed"] < 2]
    (wt,) = T.tune(two)
    assert wt.pairs[0].verdict == "inconclusive (2 seeds < 3)"
    worse = [dict(r, spec=dict(r["spec"], schedule={"greedy": "cosine", "cosine": "greedy"}[
        r["spec"]["schedule"]])) for r in better]
    (wt,) = T.tune(worse)
    assert wt.pairs[0].verdict == "worse"


def test_a_seed_where_only_greedy_diverged_is_a_loss() -> None:
    rs = [_trial("greedy", 1e-3, 0, None, status="diverged"), _trial("cosine", 1e-3, 0, 0.5)]
    (wt,) = T.tune(rs)
    p = wt.pairs[0]
    assert (p.wins, p.ties, p.losses) == (0, 0, 1) and p.diff.n == 0


def test_trials_at_the_default_lr_join_the_grid_point_at_the_same_lr() -> None:
    # `compare` first without --lr (the function's own 1e-3), then with a grid naming it
    default = [dict(_trial(s, 1e-3, seed, 0.5), spec={**_trial(s, 1e-3, seed, 0.5)["spec"],
                                                        "lr": None})
               for s in ("greedy", "cosine") for seed in range(3)]
    grid = [_trial(s, lr, seed, 0.6 if lr == 1e-3 else 0.4)
            for s in ("greedy", "cosine") for lr in (1e-3, 1e-2) for seed in range(2)]
    (wt,) = T.tune([*default, *grid])
    for arm in ("greedy", "cosine"):
        points = wt.arms[arm].points
        assert [p.lr for p in points] == [1e-3, 1e-2]
        # seeds 0 and 1 from the grid's runs, seed 2 from the default's
        assert points[0].seeds == 3 and points[0].final.mean == pytest.approx(1.7 / 3)
    assert wt.pairs[0].seeds == 3


def test_default_lr_runs_are_the_grid_point_in_every_section_of_the_report() -> None:
    from greedylr.studies import metrics as M

    own = float(T.parse_lr_grid("3e-4:3e-2:3")[1])  # 0.003000000000000001: not 3e-3
    default = [_trial(s, 3e-3, seed, 0.5) for s in ("greedy", "cosine") for seed in range(2)]
    for r in default:
        r["spec"]["lr"] = None
    grid = [_trial(s, own, seed, 0.6) for s in ("greedy", "cosine") for seed in range(3)]
    merged = T.merge_default_lr([*default, *grid])
    assert len(merged) == 6 and {r["spec"]["lr"] for r in merged} == {own}
    # one setting for the label tables and the per-setting sections, not two
    assert len({M.setting_of(r) for r in merged}) == 1
    (wt,) = T.tune([*default, *grid])
    assert [p.lr for p in wt.arms["greedy"].points] == [own]


def test_a_seed_only_one_arm_ran_is_not_compared() -> None:
    rs = [_trial("greedy", 1e-3, seed, 0.5) for seed in range(3)]
    rs += [_trial("cosine", 1e-3, seed, 0.4) for seed in range(2)]
    p = T.tune(rs)[0].pairs[0]
    assert (p.wins, p.ties, p.losses, p.unpaired) == (2, 0, 0, 1)


def test_a_failed_run_at_the_default_lr_does_not_move_where_the_point_stands() -> None:
    # it failed before the function built its optimizer: it recorded a stand-in LR
    def default(seed: int, lr: float, status: str = "ok") -> dict[str, Any]:
        r = _trial("greedy", lr, seed, 0.5 if status == "ok" else None, status=status)
        return dict(r, spec={**r["spec"], "lr": None})

    rs = [default(0, 3e-3), default(1, 1e-3, "failed"), _trial("greedy", 3e-3, 2, 0.6)]
    (wt,) = T.tune(rs)
    assert [p.lr for p in wt.arms["greedy"].points] == [3e-3]


@pytest.mark.parametrize("status", ["failed", "timeout"])
def test_a_seed_where_a_baseline_failed_or_timed_out_is_not_a_win(status: str) -> None:
    # its cause may be the code or the machine: no one measured a win
    rs = [_trial("greedy", 1e-3, 0, 0.5), _trial("cosine", 1e-3, 0, None, status=status),
          _trial("greedy", 1e-3, 1, 0.5), _trial("cosine", 1e-3, 1, 0.4)]
    (wt,) = T.tune(rs)
    p = wt.pairs[0]
    assert (p.wins, p.ties, p.losses, p.unpaired) == (1, 0, 0, 1) and p.diff.n == 1
    header, rows = summary_table(rs)
    cosine = next(r for r in rows if r[0] == "cosine")
    assert cosine[header.index("GreedyLR won/tied/lost")] == "1/0/0, 1 not compared"


def test_a_seed_without_a_held_out_metric_is_not_compared_and_a_nan_one_lost() -> None:
    nan = _trial("cosine", 1e-3, 1, 0.5)
    nan["metrics"][-1]["accuracy"] = math.nan  # an ok run whose model scored NaN
    rs = [_trial("greedy", 1e-3, 0, 0.5), _trial("cosine", 1e-3, 0, None),
          _trial("greedy", 1e-3, 1, 0.5), nan]
    (wt,) = T.tune(rs)
    p = wt.pairs[0]
    assert (p.wins, p.ties, p.losses, p.unpaired) == (1, 0, 0, 1) and p.diff.n == 0


@pytest.mark.parametrize(
    ("text", "grid"),
    [
        ("1e-3", [1e-3]),
        ("1e-3,3e-3, 1e-2", [1e-3, 3e-3, 1e-2]),
        ("1e-4:1e-1:4", [1e-4, 1e-3, 1e-2, 1e-1]),
    ],
)
def test_parse_lr_grid(text: str, grid: list[float]) -> None:
    assert T.parse_lr_grid(text) == pytest.approx(grid, rel=1e-12)


@pytest.mark.parametrize("text", ["", "x", "1e-3,-1", "0", "1e-3,1e-3", "1:0.1:3", "1e-4:1e-1",
                                  "1e-4:1e-1:1", "a:b:c", "nan", "inf"])
def test_parse_lr_grid_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        T.parse_lr_grid(text)


def _store(tmp_path: Path, results: list[dict[str, Any]]) -> Path:
    out = tmp_path / "store"
    for r in results:
        write_result(out / "trials" / f"{r['key']}.json", r)
    return out


def test_report_opens_with_the_held_out_summary_and_draws_the_lr_figure(tmp_path: Path) -> None:
    out = _store(tmp_path, _results())
    text = write_report(out, title="Grid", smoke=True).read_text()
    lines = text.splitlines()
    assert lines[0] == "# Grid" and "Smoke run of the pipeline" in lines[2]
    assert "results/lr_grid/" in lines[2]
    summary = text.index("## Held-out summary")
    labels = text.index("Training-loss labels, the paper's measure")
    assert summary < labels
    assert "optimistic, for every schedule alike" in text
    row = next(line for line in lines if line.startswith("|  | cosine |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "0.003"  # its own best LR
    assert cells[6] == "1/0/2" and cells[7] == "inconclusive (CI spans 0)"
    assert cells[8] == "1/4 (25%), 1 with a div/fail seed"
    assert cells[9].endswith("@ 0.01, 1 div/fail")
    assert cells[10] == "0.905 ± 0.0071, 1 div/fail"  # LR picked on the other seeds
    assert "- GreedyLR is behind on the mean, but inconclusively, on: w vs cosine" in text
    figure = next(p for p in (out / "figures").glob("*-lr.png"))
    assert f"](figures/{figure.name})" in text
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # `greedylr report` on a quick bench folder keeps the caveat; on a full one it has none
    (out / "bench.json").write_text('{"suite": "quick"}')
    assert "Smoke run of the pipeline" in write_report(out).read_text()
    (out / "bench.json").write_text('{"suite": "full"}')
    assert "Smoke run" not in write_report(out).read_text()


def test_summary_table_for_compare_is_held_out_first(tmp_path: Path) -> None:
    header, rows = summary_table(_results())
    assert header[:3] == ["schedule", "at its own best LR", "final accuracy"]
    assert any(h.startswith("LR tolerance") for h in header)
    assert header[-1] == "final train loss"  # training loss last, not first
    assert [r[0] for r in rows] == ["greedy", "cosine", "linear"]
    # a workload without a grid beside one with: its grid cells say nothing
    single = [dict(r, spec=dict(r["spec"], workload="v")) for r in _results()
              if r["spec"]["lr"] == 1e-3]
    header, rows = summary_table([*_results(), *single])
    start = next(i for i, r in enumerate(rows) if r[0].startswith("v "))
    row = next(r for r in rows[start:] if r[1] == "cosine")
    assert row[header.index("worst grid point")] == "-"
    # two workloads: a column says which
    header, rows = summary_table([*_results(), *(dict(r, spec=dict(r["spec"], workload="v"))
                                                 for r in _results())])
    assert header[0] == "workload" and len(rows) == 6


def test_a_baseline_scored_on_an_average_is_paired_with_greedy_scored_the_same_way() -> None:
    from greedylr.studies.report.heldout import compared_pairs

    def averaged(trial: dict[str, Any], shift: float) -> dict[str, Any]:
        spec = dict(trial["spec"], settings={"workload_power_ema": 7})
        metrics = [{**m, "accuracy": m["accuracy"] + shift} for m in trial["metrics"]]
        return dict(trial, key=trial["key"] + "-avg", spec=spec, metrics=metrics)

    at_one_lr = [r for r in _results() if r["spec"]["lr"] == 1e-2
                 and r["spec"]["schedule"] in ("greedy", "cosine")
                 and r["status"] == "ok"]
    # on the average greedy gains 0.05 and cosine 0.01: greedy(avg) - cosine(avg) is
    # 0.04 above greedy - cosine, and greedy - cosine(avg) 0.01 below it
    results = [*at_one_lr, *(averaged(r, 0.05 if r["spec"]["schedule"] == "greedy" else 0.01)
                             for r in at_one_lr)]
    header, rows = summary_table(results)
    delta = {r[0]: r[header.index("GreedyLR − this [95% CI]")] for r in rows}
    # seeds 0 and 2 (cosine diverged on seed 1): greedy .90/.91, cosine .93/.93
    assert delta["cosine"].startswith("-0.025 ")
    assert delta["cosine(workload_power_ema=7)"].startswith("0.015 ")
    (wt,) = T.tune(results)
    assert {(p.candidate, p.baseline) for p in compared_pairs(wt, results)} == {
        ("greedy", "cosine"),
        ("greedy(workload_power_ema=7)", "cosine(workload_power_ema=7)")}
    # without GreedyLR on the average, the averaged baseline is paired with plain greedy
    plain_greedy = [r for r in results if r["spec"]["schedule"] == "cosine"
                    or not r["spec"]["settings"]]
    header, rows = summary_table(plain_greedy)
    delta = {r[0]: r[header.index("GreedyLR − this [95% CI]")] for r in rows}
    assert delta["cosine(workload_power_ema=7)"].startswith("-0.035 ")


def _loss_trial(schedule: str, lr: float, seed: int, loss: float | None,
                workload: str = "w") -> dict[str, Any]:
    """A trial whose last evaluation reports held-out ``loss`` (None: it diverged)."""
    trial = _trial(schedule, lr, seed, 0.9, workload=workload,
                   status="ok" if loss is not None else "diverged")
    trial["metrics"] = [{"step": STEPS, "accuracy": 0.9, "loss": loss or math.nan}]
    return trial


def test_tolerance_versus_the_best_tuned_cosine_pools_grid_points_over_workloads() -> None:
    # per workload, cosine's best mean loss is the reference: 0.40 on "a", 1.00 on "b"
    losses = {
        ("a", "cosine"): {1e-3: [0.50, 0.50], 1e-2: [0.40, 0.40]},
        ("a", "greedy"): {1e-3: [0.404, 0.404], 1e-2: [0.60, 0.40]},  # ratios 1.01, 1.25
        ("b", "cosine"): {1e-3: [1.00, 1.00], 1e-2: [2.00, 2.00]},
        ("b", "greedy"): {1e-3: [1.10, 1.10], 1e-2: [0.90, None]},  # ratios 1.1, inf
    }
    results = [_loss_trial(arm, lr, seed, v, workload)
               for (workload, arm), grid in losses.items()
               for lr, values in grid.items() for seed, v in enumerate(values)]
    tol = T.tolerance_versus(results)
    greedy, cosine = tol["greedy"], tol["cosine"]
    assert greedy.ratios == pytest.approx((1.01, 1.25, 1.1, math.inf))
    assert greedy.within == 0.25  # only 1.01 is within 2%
    assert greedy.median_ratio == pytest.approx((1.1 + 1.25) / 2)
    assert greedy.by_position == pytest.approx(((1.01 + 1.1) / 2, math.inf))
    assert greedy.bad == 1
    assert greedy.worst_finite_ratio == pytest.approx(1.25)  # the diverged point is in bad
    assert cosine.ratios == pytest.approx((1.25, 1.0, 1.0, 2.0))
    assert (cosine.within, cosine.bad) == (0.5, 0)
    assert cosine.worst_finite_ratio == pytest.approx(2.0)


# -- real trials through `greedylr compare` -------------------------------------------

LOOP = '''
import math

import torch


def loop(trial, accuracy, nan=False):
    """A tiny real regression; the held-out ``accuracy`` is reported once, at the end."""
    torch.manual_seed(trial.seed)
    w = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.SGD([w], lr=trial.lr)
    trial.scheduler(opt)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    for step in range(1, trial.steps + 1):
        loss = ((x @ w - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        trial.step(float("nan") if nan and step == 3 else loss)
    with trial.evaluating(torch.nn.Identity()):
        trial.report(accuracy=accuracy)
'''


def _compare(tmp_path: Path, name: str, body: str, *args: str) -> tuple[int, Path, str]:
    """``greedylr compare`` on a training function ``train`` whose ``body`` (after
    :data:`LOOP`) it runs: (exit code, the output folder, what it printed)."""
    import contextlib
    import io
    import textwrap

    from greedylr.cli import main

    path = tmp_path / f"{name}.py"
    if not path.exists():
        path.write_text(LOOP + "\n\ndef train(trial):\n" + textwrap.indent(
            textwrap.dedent(body), "    ") + "\n\ntrain.steps = 5\ntrain.higher_is_better = True\n")
    out = tmp_path / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["compare", f"{path}:train", "--out", str(out), *args])
    return code, out, printed.getvalue()


def _row(text: str, arm: str) -> list[str]:
    """The cells of ``arm``'s row of the held-out summary in a report."""
    line = next(x for x in text.splitlines() if x.startswith("| ")
                and arm in [c.strip().strip("*") for c in x.strip("|").split("|")][:3])
    return [c.strip() for c in line.strip("|").split("|")]


def test_a_first_trial_that_failed_does_not_drop_the_workload(tmp_path: Path) -> None:
    # cosine's seed 0 fails before it reports anything; whichever trial is read first,
    # the metric is the one the others report, in the report as in the printed table
    code, out, printed = _compare(tmp_path, "first_fails", """
        if trial.spec.schedule == "cosine" and trial.seed == 0:
            raise RuntimeError("flaky data loader")
        loop(trial, 0.5 - 0.05 * (trial.spec.schedule == "greedy") + 0.001 * trial.seed)
    """, "--seeds", "3")
    assert code == 1  # a trial failed
    text = (out / "report.md").read_text()
    assert "## Held-out summary" in text
    final = _row(text, "cosine")[3]  # seeds 1 and 2
    assert final.startswith("0.5015 ± ") and final.endswith(", 1 div/fail")
    assert "held-out metric `accuracy` (higher is better)" in text
    assert "`None`" not in text
    assert "final accuracy" in printed and "cosine" in printed
    results = load_results(out)
    for order in (results, results[::-1]):
        (wt,) = T.tune(order)
        assert (wt.metric, wt.higher_is_better) == ("accuracy", True)


def test_greedy_that_diverged_on_seeds_where_cosine_did_not_is_not_called_better(
    tmp_path: Path,
) -> None:
    # better by 0.01 on the 3 seeds it finished, diverged on the other 2 of 5
    code, out, printed = _compare(tmp_path, "diverges", """
        g = trial.spec.schedule == "greedy"
        loop(trial, 0.5 + 0.01 * g + 0.001 * trial.seed, nan=g and trial.seed >= 3)
    """, "--seeds", "5")
    assert code == 0
    (wt,) = T.tune(load_results(out))
    (p,) = wt.pairs
    verdict = "inconclusive (greedy diverged on 2 of 5 seeds where cosine did not)"
    assert p.verdict == verdict
    assert p.diff.n == 3 and p.diff.ci[0] > 0  # the finished seeds alone say "better"
    assert (p.wins, p.ties, p.losses, p.candidate_diverged) == (3, 0, 2, 2)
    text = (out / "report.md").read_text()
    assert _row(text, "cosine")[7] == verdict
    assert "ahead in 0" in text and "greedy on 2 of 5 seeds" in text
    assert verdict in printed and "ahead in 0" in printed


def test_the_best_lr_counts_bad_seeds_first_then_the_mean_of_the_others(
    tmp_path: Path,
) -> None:
    # accuracy rises with the LR; greedy's seed 2 diverges at every LR, so every point
    # has one bad seed: the best is still the LR best on the other seeds, not the smallest
    code, out, _ = _compare(tmp_path, "grid_diverges", """
        g = trial.spec.schedule == "greedy"
        acc = 0.3 + 0.2 * math.log10(trial.lr / 1e-3) + 0.001 * trial.seed
        loop(trial, acc, nan=g and trial.seed == 2)
    """, "--seeds", "3", "--lr", "1e-3,1e-2,1e-1")
    assert code == 0
    (wt,) = T.tune(load_results(out))
    greedy = wt.arms["greedy"]
    assert greedy.best.lr == pytest.approx(0.1) and greedy.best.bad == 1
    assert greedy.best.shared_mean == pytest.approx(0.7005)
    assert greedy.worst.lr == pytest.approx(1e-3)
    assert wt.arms["cosine"].best.lr == pytest.approx(0.1)
    row = _row((out / "report.md").read_text(), "greedy")
    assert row[2] == "0.1" and row[3] == "0.7005 ± 0.00071, 1 div/fail"


def test_grid_points_run_with_other_seeds_are_compared_on_the_seeds_they_share(
    tmp_path: Path,
) -> None:
    # 1e-3 beats 1e-2 by 0.01 on every seed; seeds 3 and 4 are hard for everyone. Five
    # seeds at the function's own LR (1e-3), then a grid with three: 1e-3's mean over
    # five seeds is below 1e-2's over three, but on the three both ran it is ahead
    body = """
        acc = 0.8 - 0.3 * (trial.seed >= 3) + 0.01 * math.isclose(trial.lr, 1e-3)
        loop(trial, acc)
    """
    assert _compare(tmp_path, "fewer_seeds", body, "--seeds", "5")[0] == 0
    code, out, _ = _compare(tmp_path, "fewer_seeds", body, "--seeds", "3", "--lr", "1e-3,1e-2")
    assert code == 0
    (wt,) = T.tune(load_results(out))
    for arm in ("greedy", "cosine"):
        tuning = wt.arms[arm]
        assert tuning.best.lr == pytest.approx(1e-3) and tuning.best.seeds == 5
        assert tuning.shared == (0, 1, 2) and not tuning.equal_seeds
        assert tuning.worst.lr == pytest.approx(1e-2) and tuning.within == 2
    row = _row((out / "report.md").read_text(), "greedy")
    assert row[2] == "0.001 (picked on the 3 seeds all its LRs ran)"
    assert row[9] == "0.8 @ 0.01 on the 3 shared seeds"


# -- the verdict ------------------------------------------------------------------------


def test_trials_that_disagree_on_the_metric_are_refused_in_the_report(tmp_path: Path) -> None:
    # the function reported accuracy, then an error rate (lower is better) on rerun
    rs = [_trial(s, 1e-3, seed, 0.9) for s in ("greedy", "cosine") for seed in range(3)]
    for r in rs[:2]:
        r["metric"] = {"name": "top1_err", "higher_is_better": False}
        r["metrics"] = [{"step": STEPS, "top1_err": 0.1}]
    (wt,) = T.tune(rs)
    assert wt.problem and not wt.arms and not wt.pairs
    problem = ("the trials disagree on the held-out metric: `accuracy` (higher is better) "
               "in 4 trials, `top1_err` (lower is better) in 2 trials")
    assert wt.problem == problem
    text = write_report(_store(tmp_path, rs)).read_text()
    assert f"not compared: {problem}" in text and f"- Not compared, w: {problem}." in text
    assert f"held-out metric not summarized: {problem}" in text


def test_a_workload_no_trial_reported_a_metric_of_is_said_not_dropped() -> None:
    from greedylr.studies.report.heldout import verdict_lines

    rs = [_trial(s, 1e-3, seed, 0.9) for s in ("greedy", "cosine") for seed in range(3)]
    dead = [dict(_trial("cosine", 1e-3, seed, None, workload="v", status="failed"),
                 metric={"name": None, "higher_is_better": None}) for seed in range(2)]
    tunings = T.tune([*rs, *dead])
    assert [wt.workload for wt in tunings] == ["w"]
    assert ("- Not compared, v: none of its 2 trials reported a held-out metric (2 failed)."
            in verdict_lines(tunings, [*rs, *dead]))


def _pair(diffs: list[float], wins: int, ties: int, losses: int, c_div: int = 0,
          b_div: int = 0) -> T.TunedPair:
    from greedylr.studies import metrics as M

    return T.TunedPair("greedy", "cosine", 1e-3, 1e-3, M.Stat.of(diffs), wins, ties, losses,
                       0, c_div, b_div)


def test_divergences_decide_the_verdict_by_a_sign_test_and_veto_the_side_that_diverged() -> None:
    # 6 of 6 seeds where only greedy diverged: worse (sign test p = 1/32); 5 of 5 is not
    # enough at the 5% level, and says so
    assert _pair([], 0, 0, 6, c_div=6).verdict == "worse"
    assert _pair([], 0, 0, 5, c_div=5).verdict == (
        "inconclusive (greedy diverged on 5 of 5 seeds where cosine did not)")
    # cosine diverged on a seed: a win for greedy, whose CI on the others stands
    assert _pair([0.1, 0.11, 0.12], 4, 0, 0, b_div=1).verdict == "better"
    # ... but cosine ahead on the finished seeds is not "GreedyLR worse"
    assert _pair([-0.1, -0.11, -0.12], 0, 0, 4, b_div=1).verdict == (
        "inconclusive (cosine diverged on 1 of 4 seeds where greedy did not)")
    # the finished seeds say worse, the divergences (12 of 15 seeds) better: undecided
    verdict = _pair([-0.1, -0.11, -0.12], 12, 0, 3, b_div=12).verdict
    assert verdict.startswith("inconclusive (cosine diverged on 12 of 15 seeds")
    assert verdict.endswith("the finished seeds say worse, the divergences better)")


def test_the_verdict_says_better_or_worse_in_5_percent_of_studies_with_no_difference() -> None:
    # the percentile bootstrap said so in 25% of studies at 3 seeds, 16% at 5, 10% at 10
    import numpy as np

    from greedylr.studies import metrics as M

    rng = np.random.default_rng(1)
    sims = 2000
    for n in (3, 5, 10):
        claims = 0
        for _ in range(sims):
            d = rng.normal(0.0, 1.0, n)
            p = T.TunedPair("greedy", "cosine", 1e-3, 1e-3, M.Stat.of(d), 0, 0, 0)
            claims += p.verdict in ("better", "worse")
        assert 0.035 < claims / sims < 0.065, (n, claims / sims)

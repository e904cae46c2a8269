"""The suites: what the small-model study contains, and bench's orchestration."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from greedylr.evidence import suites, workloads
from greedylr.studies.schedules import OPTIMIZERS, SCHEDULES
from greedylr.studies.trial import TrialSpec


def test_full_small_models_covers_every_workload_schedule_seed_and_optimizer() -> None:
    specs = suites.small_models(False)
    assert len({s.key for s in specs}) == len(specs)  # no duplicates
    grid = {(s.workload, s.schedule, s.seed) for s in specs}
    for w in suites.SMALL_MODELS:
        for schedule in SCHEDULES:
            assert {(w, schedule, seed) for seed in suites.FULL_SEEDS} <= grid
    assert set(Counter(s.optimizer for s in specs)) == set(OPTIMIZERS)
    for w in suites.OPTIMIZER_SWEEP:
        assert {s.optimizer for s in specs if s.workload == w} == set(OPTIMIZERS)


def test_full_suite_runs_the_paper_comparison_first() -> None:
    specs = suites.small_models(False)
    core = {"greedy", *suites.PAPER_BASELINES}
    first_extra = next(i for i, s in enumerate(specs) if s.schedule not in core)
    assert all(s.schedule not in core for s in specs[first_extra:])


def test_every_schedule_of_a_workload_gets_the_same_recipe() -> None:
    specs = suites.small_models(False)
    for w in suites.SMALL_MODELS:
        recipes = {
            (s.optimizer, s.steps, s.lr, s.warmup, s.eval_every)
            for s in specs
            if s.workload == w and s.optimizer == workloads.get(w).optimizer
        }
        assert len(recipes) == 1, (w, recipes)


def test_quick_suite_is_a_short_slice_with_scaled_warmup() -> None:
    quick = suites.small_models(True)
    assert {s.workload for s in quick} == set(suites.QUICK_SMALL_MODELS)
    assert {s.schedule for s in quick} == {"greedy", *suites.PAPER_BASELINES}
    for s in quick:
        w = workloads.get(s.workload)
        assert s.steps == w.quick_steps < w.steps
    # warmup keeps its share of the run
    spec = suites.workload_spec("x", "mnist_vit", "cosine", 0, quick=True)
    w = workloads.get("mnist_vit")
    assert spec.warmup == round(w.warmup * w.quick_steps / w.steps)


def test_lazy_imports_on_call_and_rejects_bad_references() -> None:
    fn = suites.lazy("greedylr.evidence.suites:small_models")
    assert fn(True) == suites.small_models(True)
    with pytest.raises(ValueError, match="module:function"):
        suites.lazy("greedylr.evidence.suites")


def _tiny(quick: bool) -> list[TrialSpec]:
    return [
        TrialSpec.make(
            study="tiny",
            workload="wine_mlp",
            schedule=s,
            optimizer="adagrad",
            seed=0,
            steps=4 if quick else 6,
        )
        for s in ("greedy", "cosine")
    ]


def test_bench_runs_registered_studies_resumably_and_writes_a_summary(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(suites, "STUDIES", {"tiny": _tiny})
    summary = suites.bench(tmp_path, quick=True, jobs=1, robustness=False, progress=False)
    assert summary["suite"] == "quick"
    assert summary["studies"]["tiny"]["trials"] == 2
    assert summary["studies"]["tiny"]["statuses"] == {"ok": 2}
    files = sorted((tmp_path / "tiny" / "trials").glob("*.json"))
    assert len(files) == 2
    assert json.loads((tmp_path / "bench.json").read_text())["suite"] == "quick"
    # a second run finds everything done and trains nothing
    mtimes = [f.stat().st_mtime_ns for f in files]
    suites.bench(tmp_path, quick=True, jobs=1, robustness=False, progress=False)
    assert [f.stat().st_mtime_ns for f in files] == mtimes


def test_bench_rejects_unknown_studies(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown studies"):
        suites.bench(tmp_path, studies=["nope"], progress=False)


def test_lr_grid_runs_every_arm_at_five_lrs_over_100x_with_the_same_seeds() -> None:
    specs = suites.lr_grid(False)
    assert len({s.key for s in specs}) == len(specs) == 4 * 7 * 5 * 3
    assert {s.workload for s in specs} == set(suites.LR_GRID_WORKLOADS)
    assert {s.schedule for s in specs} == set(suites.LR_GRID_SCHEDULES)
    for w in suites.LR_GRID_WORKLOADS:
        default = workloads.get(w).lr
        for arm in suites.LR_GRID_SCHEDULES:
            cell = [s for s in specs if s.workload == w and s.schedule == arm]
            base = 1.0 if arm == "prodigy" else default  # Prodigy's lr multiplies its own
            lrs = sorted({s.lr for s in cell})
            assert lrs == pytest.approx([f * base for f in suites.LR_GRID_FACTORS], rel=1e-4)
            assert lrs[-1] / lrs[0] == pytest.approx(100)
            assert Counter(s.lr for s in cell) == {lr: 3 for lr in lrs}  # seeds 0, 1, 2
            # only the schedule and the LR differ within a workload
            assert len({(s.optimizer, s.steps, s.warmup, s.eval_every) for s in cell}) == 1
    # seed-major: a run cut short has every cell with fewer seeds
    assert [s.seed for s in specs] == sorted(s.seed for s in specs)


def test_quick_lr_grid_is_a_small_slice() -> None:
    quick = suites.lr_grid(True)
    assert len(quick) <= 20 and "lr_grid" in suites.STUDIES
    assert {s.schedule for s in quick} >= {"greedy", "cosine", "prodigy"}
    assert len({s.lr for s in quick if s.schedule == "greedy"}) == 3

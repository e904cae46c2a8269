"""The study suites and ``greedylr bench``: every study, quick or full, then the report.

A *study* is a function ``specs(quick: bool) -> list[TrialSpec]``, registered by name in
:data:`STUDIES`. ``bench`` runs every registered study into ``<out>/<study>/``, then the
robustness study (which has its own runner) when it is available, then writes the
report over everything under ``<out>``. Results are resumable: rerunning ``bench`` on
the same folder runs only the trials that have no result yet.

To add a study, write its spec function in your module and add one line to
:data:`STUDIES`, as a lazy reference so that importing this module stays cheap::

    STUDIES["fine_tuning"] = lazy("greedylr.studies.fine_tuning:specs")

The quick suite is sized to finish within ~10 minutes on two CPU cores for all studies
together; the small-model share is about four of them.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from greedylr.evidence import workloads
from greedylr.evidence.outputs import write_csv, write_json
from greedylr.studies.runner import make_specs
from greedylr.studies.trial import TrialSpec

__all__ = [
    "LR_GRID_SCHEDULES",
    "LR_GRID_WORKLOADS",
    "PAPER_BASELINES",
    "QUICK_SMALL_MODELS",
    "SMALL_MODELS",
    "STUDIES",
    "bench",
    "lazy",
    "lr_grid",
    "small_models",
    "workload_spec",
]

logger = logging.getLogger(__name__)

StudyFn = Callable[[bool], list[TrialSpec]]

#: The schedules the paper compares GreedyLR with (section 4.1), HF recipe defaults.
PAPER_BASELINES: tuple[str, ...] = ("linear", "cosine", "polynomial", "constant_warmup")

#: The small-model study's workloads: every built-in small workload, vision, tabular, text.
SMALL_MODELS: tuple[str, ...] = (
    "digits_mlp",
    "digits_cnn",
    "mnist_resnet",
    "mnist_vit",
    "wine_mlp",
    "breast_cancer_mlp",
    "diabetes_mlp",
    "stdlib_tagger",
    "stdlib_char_transformer",
    "stdlib_lstm_lm",
    "docstring_seq2seq",
)

#: A representative slice for the quick suite: vision (MLP, ResNet), tabular
#: (classification, regression) and text (sequence labelling), at ``quick_steps``.
QUICK_SMALL_MODELS: tuple[str, ...] = (
    "digits_mlp",
    "mnist_resnet",
    "wine_mlp",
    "diabetes_mlp",
    "stdlib_tagger",
)

#: Workloads that run under every optimizer in the full suite (cheap enough to afford
#: it), so that AdamW, Adafactor, Adagrad and SGD each meet every schedule.
OPTIMIZER_SWEEP: tuple[str, ...] = ("digits_mlp",)

#: The costliest workloads (~10x a digits MLP per step): the full suite runs their
#: extra schedules last.
COSTLY: tuple[str, ...] = (
    "mnist_resnet",
    "mnist_vit",
    "stdlib_char_transformer",
    "stdlib_lstm_lm",
    "docstring_seq2seq",
)

FULL_SEEDS: tuple[int, ...] = (0, 1, 2)
QUICK_SEEDS: tuple[int, ...] = (0, 1)


def lazy(ref: str) -> StudyFn:
    """A study function named ``"module:function"``, imported only when it is called."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected 'module:function', got {ref!r}")

    def call(quick: bool) -> list[TrialSpec]:
        return getattr(importlib.import_module(module_name), attr)(quick)

    call.__name__ = attr
    call.__qualname__ = ref
    return call


def workload_spec(
    study: str,
    workload: str,
    schedule: str,
    seed: int,
    *,
    optimizer: str | None = None,
    quick: bool = False,
    settings: dict[str, Any] | None = None,
) -> TrialSpec:
    """One trial of a built-in workload with its defaults; ``quick``: at its quick length,
    warmup and evaluation interval keeping their share of the run. The LR is left to the
    workload's default for the optimizer: the same for every schedule."""
    w = workloads.get(workload)
    lengths: dict[str, int] = {}
    if quick and w.quick_steps:
        scale = w.quick_steps / w.steps
        lengths = {
            "steps": w.quick_steps,
            "warmup": round(w.warmup * scale),
            "eval_every": max(1, round(w.eval_every * scale)) if w.eval_every else 0,
        }
    (spec,) = make_specs(study, [workload], [schedule], [seed], optimizer=optimizer,
                         settings=settings, **lengths)
    return spec


#: The LR-grid study's workloads: the four cheapest small ones (a few CPU-seconds a trial),
#: two classifiers on tabular data, one on images and one regression, so that 420 trials
#: fit in well under an hour of two shared cores.
LR_GRID_WORKLOADS: tuple[str, ...] = ("wine_mlp", "breast_cancer_mlp", "diabetes_mlp", "digits_mlp")

#: GreedyLR, the decays users reach for, warmup-then-constant, the paper's transformers
#: GreedyLR, and the two optimizers that need no schedule (schedule-free, Prodigy).
LR_GRID_SCHEDULES: tuple[str, ...] = (
    "greedy",
    "cosine",
    "linear",
    "constant_warmup",
    "schedule_free",
    "transformers_greedy",
    "prodigy",
)

#: Multiples of each arm's base LR: 5 points, log-spaced over 100x (0.1x .. 10x).
LR_GRID_FACTORS: tuple[float, ...] = (0.1, 0.316, 1.0, 3.16, 10.0)

#: Base LRs of the arms whose ``lr`` is not a step size: Prodigy's multiplies the step it
#: estimates, and its authors advise 1.0. Every other arm's base is the workload's LR.
LR_GRID_BASE: dict[str, float] = {"prodigy": 1.0}


def lr_grid(quick: bool) -> list[TrialSpec]:
    """The LR-grid study: every arm tuned over the same 100x grid, judged held-out.

    Full: :data:`LR_GRID_WORKLOADS` x :data:`LR_GRID_SCHEDULES` x :data:`LR_GRID_FACTORS`
    x 3 seeds (420 trials) at each workload's full length, seed-major, so that a run cut
    short has every cell with fewer seeds. Quick (a smoke run of the pipeline, about a
    minute of arithmetic): ``wine_mlp`` x GreedyLR, cosine and Prodigy x 0.1x, 1x, 10x x
    2 seeds at its quick length.
    """
    study = "lr_grid"
    if quick:
        names: Sequence[str] = ("wine_mlp",)
        arms: Sequence[str] = ("greedy", "cosine", "prodigy")
        factors: Sequence[float] = (0.1, 1.0, 10.0)
        seeds: Sequence[int] = QUICK_SEEDS
    else:
        names, arms, factors, seeds = (
            LR_GRID_WORKLOADS, LR_GRID_SCHEDULES, LR_GRID_FACTORS, FULL_SEEDS
        )
    specs = []
    for seed in seeds:
        for name in names:
            base = workload_spec(study, name, "greedy", seed, quick=quick)
            default = workloads.get(name).lr_for(base.optimizer)
            for factor in factors:
                for arm in arms:
                    lr = float(f"{factor * LR_GRID_BASE.get(arm, default):.6g}")
                    specs.append(replace(base, schedule=arm, lr=lr))
    return specs


def small_models(quick: bool) -> list[TrialSpec]:
    """The small-model study (paper section 4.1, offline analogues).

    Full: every small workload x every schedule of the harness x 3 seeds with the
    workload's own optimizer, plus every other optimizer on :data:`OPTIMIZER_SWEEP`.
    The trials are ordered by importance, so that a run cut short keeps what matters:
    GreedyLR and the paper's four baselines everywhere (seed by seed), then the other
    optimizers, then the other schedules, the costly workloads last.
    Quick: :data:`QUICK_SMALL_MODELS` x (GreedyLR + the paper's four baselines)
    x 2 seeds, at each workload's quick length.
    """
    from greedylr.studies.schedules import OPTIMIZERS, SCHEDULES

    study = "small_models"
    core = ("greedy", *PAPER_BASELINES)
    if quick:
        return [
            workload_spec(study, w, s, seed, quick=True)
            for w in QUICK_SMALL_MODELS
            for s in core
            for seed in QUICK_SEEDS
        ]
    extra = tuple(s for s in SCHEDULES if s not in core)
    cheap = [w for w in SMALL_MODELS if w not in COSTLY]

    def sweep(schedules: Sequence[str]) -> list[TrialSpec]:
        out = []
        for w in OPTIMIZER_SWEEP:
            own = workloads.get(w).optimizer
            out += [
                workload_spec(study, w, s, seed, optimizer=o)
                for o in OPTIMIZERS
                if o != own
                for s in schedules
                for seed in FULL_SEEDS
            ]
        return out

    # seed-major: a run cut short has every workload, with fewer seeds
    specs = [workload_spec(study, w, s, seed)
             for seed in FULL_SEEDS for w in SMALL_MODELS for s in core]
    specs += sweep(core)
    specs += [workload_spec(study, w, s, seed) for w in cheap for s in extra for seed in FULL_SEEDS]
    specs += sweep(extra)
    specs += [workload_spec(study, w, s, seed)
              for w in COSTLY for s in extra for seed in FULL_SEEDS]
    return specs


#: The paper's small-model headline (section 4.1, Table 1): 196 comparisons, abs 0.1.
PAPER_HEADLINE: dict[str, float] = {
    "as good or better": 86.73,
    "better": 57.14,
    "clearly better": 24.49,
    "worse": 13.27,
    "as good or better at 10%": 92.42,
    "as good or better at 50%": 81.81,
    "as good or better at 100%": 85.94,
}


def headline(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Our numbers beside the paper's: GreedyLR (default settings) against the paper's
    four baselines and against every other schedule, absolute 0.1 threshold.

    Returns:
        ``{"paper": ..., "vs paper baselines": ..., "vs all schedules": ...}``, each
        mapping the rows of :data:`PAPER_HEADLINE` (plus ``"comparisons"``) to values.
    """
    from greedylr.studies import metrics as M

    def row(baselines: Sequence[str] | None) -> dict[str, float]:
        comparisons = M.compare(results, candidate="greedy", baselines=baselines)
        t = M.label_table(comparisons)
        out = {
            "as good or better": t.as_good_or_better,
            "better": t.better,
            "clearly better": t.clearly_better,
            "worse": t.worse,
        }
        for stage in M.STAGES:
            out[f"as good or better at {stage:.0%}"] = t.stage_as_good_or_better(stage)
        out["comparisons"] = float(t.total)
        return out

    return {
        "paper": {**PAPER_HEADLINE, "comparisons": 196.0},
        "vs paper baselines": row(PAPER_BASELINES),
        "vs all schedules": row(None),
    }


def workload_table(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per setting (workload x optimizer x LR): GreedyLR's seed-mean final held-out metric,
    the best schedule's, GreedyLR's rank among all schedules at that LR, and the seeds."""
    from greedylr.studies import metrics as M

    cells: dict[tuple[str, str, Any], dict[str, list[float]]] = {}
    direction: dict[tuple[str, str, Any], tuple[str | None, bool]] = {}
    for r in results:
        # an LR grid: one row per LR (a schedule is ranked against the others at its LR)
        key = (r["spec"]["workload"], r["spec"]["optimizer"], r["spec"].get("lr"))
        value = M.final_metric(r) if r["status"] == "ok" else None
        cells.setdefault(key, {}).setdefault(M.arm_of(r), []).append(
            float("nan") if value is None else value
        )
        direction[key] = M.metric_name(r)
    rows = []
    for key, arms in sorted(cells.items(), key=lambda kv: repr(kv[0])):
        if "greedy" not in arms:
            continue
        name, higher = direction[key]

        def mean(values: list[float], higher: bool = higher) -> float:
            finite = [v for v in values if v == v]
            # a run that diverged or failed counts as the worst possible value
            if len(finite) < len(values):
                return float("-inf") if higher else float("inf")
            return sum(finite) / len(finite)

        means = {a: mean(v) for a, v in arms.items()}
        ordered = sorted(means, key=lambda a: means[a], reverse=higher)
        best = ordered[0]
        paper = {b: means[b] for b in PAPER_BASELINES if b in means}
        rows.append(
            {
                "workload": key[0],
                "optimizer": key[1],
                "lr": key[2],
                "metric": name,
                "higher_is_better": higher,
                "greedy": means["greedy"],
                "best_schedule": best,
                "best": means[best],
                "greedy_rank": ordered.index("greedy") + 1,
                "schedules": len(ordered),
                "best_paper_baseline": max(paper, key=paper.__getitem__)
                if higher and paper
                else (min(paper, key=paper.__getitem__) if paper else None),
                "seeds": len(arms["greedy"]),
            }
        )
    return rows


def write_summary(study_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Compact, committable results of a study: ``heldout.md`` (the held-out summary:
    every schedule at its own best LR, paired differences, verdicts, LR tolerance),
    ``headline.md`` (the paper's training-loss labels), ``summary.json`` and
    ``trials.csv`` (one row per trial). The per-step curves stay in the trial files;
    everything the summaries need can be recomputed from ``trials.csv``.
    """
    from greedylr.studies import tuning as T
    from greedylr.studies.report import heldout_summary
    from greedylr.studies.runner import load_results

    results = load_results(study_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "trials.csv", _TRIAL_COLUMNS, [_trial_row(r) for r in results])
    head = headline(results)
    table = workload_table(results)
    tuned = [_tuned_json(wt) for wt in T.tune(results)]
    (out / "heldout.md").write_text("\n".join(heldout_summary(results)) + "\n")
    write_json(out / "summary.json",
               {"heldout": tuned, "headline": head, "workloads": table, "trials": len(results)})
    path = out / "headline.md"
    path.write_text("\n".join([*_headline_lines(head), "", *_workload_lines(table)]) + "\n")
    return path


_TRIAL_COLUMNS = (
    "study",
    "workload",
    "optimizer",
    "schedule",
    "seed",
    "steps",
    "lr",
    "warmup",
    "status",
    "loss_10",
    "loss_50",
    "loss_100",
    "metric",
    "final_metric",
    "best_metric",
    "best_step",
    "lr_up",
    "lr_down",
    "wall_s",
    "optimizer_used",
)


def _trial_row(r: dict[str, Any]) -> list[Any]:
    """One trial in ``trials.csv``: its identity, the optimizer it really used, status,
    loss at 10/50/100%, final and best held-out metric, LR moves and wall time."""
    from greedylr.studies import metrics as M

    s = r["spec"]
    losses = [f"{M.loss_at(r, f):.6g}" for f in M.STAGES] if r["losses"] else ["", "", ""]
    final = M.final_metric(r)
    best = M.best_metric(r)
    moves = M.lr_changes(r)
    return [
        s["study"],
        s["workload"],
        s["optimizer"],
        M.arm_of(r),
        s["seed"],
        s["steps"],
        f"{r['lr']:.6g}" if r.get("lr") else "",
        s["warmup"],
        r["status"],
        *losses,
        M.metric_name(r)[0],
        "" if final is None else f"{final:.6g}",
        "" if best is None else f"{best[0]:.6g}",
        "" if best is None else best[1],
        moves["up"],
        moves["down"],
        f"{r['wall_time']:.2f}",
        M.optimizer_of(r),
    ]


def _headline_lines(head: dict[str, dict[str, float]]) -> list[str]:
    """The paper's headline beside ours, as a markdown table (see :func:`headline`)."""
    lines = [
        "| | paper (196 comparisons) | ours vs the paper's 4 baselines "
        "| ours vs all 10 schedules |",
        "|---|---|---|---|",
    ]
    for name in [*PAPER_HEADLINE, "comparisons"]:
        cells = [head[col][name] for col in ("paper", "vs paper baselines", "vs all schedules")]
        fmt = [f"{v:.0f}" if name == "comparisons" else f"{v:.2f}%" for v in cells]
        lines.append(f"| {name} | " + " | ".join(fmt) + " |")
    return lines


def _workload_lines(table: list[dict[str, Any]]) -> list[str]:
    """:func:`workload_table` as a markdown table."""
    lines = [
        "| workload | optimizer | LR | metric | GreedyLR | best schedule | best "
        "| GreedyLR's rank |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in table:
        arrow = "↑" if row["higher_is_better"] else "↓"
        lr = "default" if row["lr"] is None else f"{row['lr']:g}"
        lines.append(
            f"| {row['workload']} | {row['optimizer']} | {lr} | {row['metric']} {arrow} | "
            f"{row['greedy']:.4g} | {row['best_schedule']} | {row['best']:.4g} | "
            f"{row['greedy_rank']}/{row['schedules']} |"
        )
    return lines


def _tuned_json(wt: Any) -> dict[str, Any]:
    """One workload group of :func:`greedylr.studies.tuning.tune`, as plain JSON values
    (non-finite numbers as ``null``)."""
    import math

    def num(value: float) -> float | None:
        return value if math.isfinite(value) else None

    def stat(st: Any) -> dict[str, Any]:
        return {"mean": num(st.mean), "std": num(st.std), "ci": [num(x) for x in st.ci],
                "n": st.n}

    return {
        "group": [str(x) for x in wt.group[:5]],
        "metric": wt.metric,
        "higher_is_better": wt.higher_is_better,
        "margin": wt.margin,
        "best_tuned_baseline": wt.reference_arm,
        "best_tuned_baseline_value": num(wt.reference),
        "arms": {
            arm: {
                "best_lr": t.best.lr,
                "final_at_best_lr": stat(t.best.final),
                "best_so_far_at_best_lr": stat(t.best.best),
                "lr_tolerance": t.tolerance,
                "grid_points_within_margin": t.within,
                "grid_points": len(t.points),
                "worst_lr": t.worst.lr,
                "final_at_worst_lr": stat(t.worst.final),
                "worst_lr_diverged_or_failed": t.worst.bad,
                "final_lr_picked_on_other_seeds": stat(t.other_seeds),
                "grid": [{"lr": p.lr, "final": stat(p.final), "bad": p.bad}
                         for p in t.points],
            }
            for arm, t in wt.arms.items()
        },
        "pairs": [
            {"candidate": p.candidate, "baseline": p.baseline, "candidate_lr": p.candidate_lr,
             "baseline_lr": p.baseline_lr, "diff": stat(p.diff), "wins": p.wins,
             "ties": p.ties, "losses": p.losses, "verdict": p.verdict}
            for p in wt.pairs
        ],
    }


#: Every study ``bench`` runs, by name (its results folder under ``--out``).
STUDIES: dict[str, StudyFn] = {
    "small_models": small_models,
    # LLM-style studies (paper sections 4.2-4.3); see greedylr.evidence.llm_studies
    "finetune": lazy("greedylr.evidence.llm_studies:finetune"),
    "pretrain": lazy("greedylr.evidence.llm_studies:pretrain"),
    "f_sweep": lazy("greedylr.evidence.llm_studies:f_sweep"),
    # every arm over a 100x LR grid, judged on the held-out metric at its own best LR
    "lr_grid": lr_grid,
}


def _run_robustness(out_dir: Path, quick: bool) -> bool:
    """Run the robustness study if its module provides ``run_robustness``; True if ran."""
    try:
        module = importlib.import_module("greedylr.evidence.robustness")
    except ImportError as exc:
        logger.warning("robustness study not available: %s", exc)
        return False
    run = getattr(module, "run_robustness", None)
    if run is None:
        logger.warning("robustness study not available: no run_robustness()")
        return False
    run(out_dir / "robustness", quick)
    return True


def _write_report(out_dir: Path, quick: bool) -> Path:
    """The report over every stored result under ``out_dir`` (markdown and figures); the
    quick suite's says first that it is a smoke run of the pipeline."""
    from greedylr.studies.report import write_report

    return write_report(out_dir, smoke=quick)


def bench(
    out_dir: str | os.PathLike[str] = "bench-results",
    *,
    quick: bool = True,
    jobs: int = 2,
    studies: Sequence[str] | None = None,
    robustness: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the study suites and write the report: the ``greedylr bench`` command.

    Args:
        out_dir: results and report go here, one folder per study.
        quick: the quick suite (a representative slice, 97 s on an idle 2-core machine) or the
            full suite (everything).
        jobs: trials at a time (worker processes).
        studies: run only these registered studies (default: all, then robustness).
        robustness: also run the robustness study, when it is available.
        progress: show progress bars.

    Returns:
        A summary: the suite, per-study trial counts, statuses and wall times; it is
        also written to ``<out_dir>/bench.json``.
    """
    from greedylr.studies.runner import run_trials

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(STUDIES) if studies is None else list(studies)
    unknown = [n for n in names if n not in STUDIES and n != "robustness"]
    if unknown:
        raise ValueError(f"unknown studies {unknown}; registered: {sorted(STUDIES)}")
    summary: dict[str, Any] = {
        "suite": "quick" if quick else "full",
        "jobs": jobs,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "studies": {},
    }
    started = time.perf_counter()
    for name in names:
        if name == "robustness":
            continue
        t0 = time.perf_counter()
        specs = STUDIES[name](quick)
        logger.info("study %s: %d trials", name, len(specs))
        results = run_trials(specs, out / name, jobs=jobs, progress=progress)
        statuses: dict[str, int] = {}
        for r in results:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        summary["studies"][name] = {
            "trials": len(specs),
            "statuses": statuses,
            "wall_s": round(time.perf_counter() - t0, 1),
        }
        if any(r["status"] != "failed" for r in results):
            # compact, committable numbers beside the full report
            write_summary(out / name, out / name)
    if robustness and (studies is None or "robustness" in names):
        t0 = time.perf_counter()
        if _run_robustness(out, quick):
            summary["studies"]["robustness"] = {"wall_s": round(time.perf_counter() - t0, 1)}
    t0 = time.perf_counter()
    report = _write_report(out, quick)
    summary["report"] = str(report) if report else None
    summary["report_wall_s"] = round(time.perf_counter() - t0, 1)
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    (out / "bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary

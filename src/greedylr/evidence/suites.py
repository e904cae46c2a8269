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
from greedylr.evidence.summaries import PAPER_BASELINES, write_summary
from greedylr.studies.runner import make_specs
from greedylr.studies.targets import scaled_lengths
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
    "lr_grid_specs",
    "small_models",
    "workload_spec",
]

logger = logging.getLogger(__name__)

StudyFn = Callable[[bool], list[TrialSpec]]

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
    lengths = scaled_lengths(w, w.quick_steps) if quick and w.quick_steps else {}
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
    return lr_grid_specs(study, names, arms, factors, seeds, quick=quick)


def lr_grid_specs(
    study: str,
    names: Sequence[str],
    arms: Sequence[str],
    factors: Sequence[float],
    seeds: Sequence[int],
    *,
    quick: bool = False,
) -> list[TrialSpec]:
    """``names`` x ``factors`` of each workload's LR x ``arms`` (each at the same LRs;
    :data:`LR_GRID_BASE` for the arms whose ``lr`` is not a step size), seed-major."""
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

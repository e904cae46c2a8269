"""The LLM-style studies: fine-tuning, pre-training and the F-sweep (paper sections 4.2-4.3).

Three studies, each a function ``specs(quick) -> list[TrialSpec]`` registered in
:data:`greedylr.evidence.suites.STUDIES`:

``finetune``
    The packaged all-MiniLM-L6-v2 fine-tuned on stdlib docstring -> package (8 classes),
    with LoRA and fully (workloads ``minilm_lora``, ``minilm_full``), AdamW, under
    :data:`SCHEDULES`, 3 seeds. GreedyLR runs with the package defaults (patience 10,
    min LR 10% of the initial, EMA of span 50; the paper's small-model settings but for
    the EMA, which won our defaults study).
``pretrain``
    A tiny Llama pre-trained from scratch on stdlib bytes with the paper's recipe shape
    (10% warmup, gradient accumulation, F 0.95, min LR at the paper's 1.85e-5 / 2e-4
    proportion, smoothing), under :data:`SCHEDULES` with AdamW, plus GreedyLR and cosine
    with Adafactor; 3 seeds; held-out perplexity.
``f_sweep``
    GreedyLR with F in :data:`F_VALUES` on LoRA fine-tuning (the paper swept F on a LoRA
    run) and on pre-training, 3 seeds each. The paper's claim: F = 0.25 diverges and
    F >= 0.5 converges to within a few percent of each other.

Trials are ordered so that GreedyLR and cosine (the paper's LLM baseline) run first
everywhere: a run cut short still holds the paper's comparison.

``greedylr study llm --out results`` runs all three (resumable) and
writes, per study folder, the harness report (``report.md``, ``figures/``) plus a
compact ``summary.json`` / ``summary.csv``; the F-sweep also gets ``f_sweep.md`` and
``figures/f_sweep.png``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from greedylr.evidence.outputs import write_csv, write_json
from greedylr.evidence.suites import workload_spec
from greedylr.plot import new_figure
from greedylr.studies import metrics as M
from greedylr.studies.trial import TrialSpec

__all__ = [
    "F_VALUES",
    "PHASES",
    "SCHEDULES",
    "STUDIES",
    "UNBOUNDED_F_VALUES",
    "f_sweep",
    "f_sweep_table",
    "finetune",
    "pretrain",
    "run",
    "summarize",
    "summary_markdown",
    "write_reports",
]

logger = logging.getLogger(__name__)

#: Every schedule compared; GreedyLR and the paper's LLM baseline (cosine) first.
SCHEDULES: tuple[str, ...] = (
    "greedy",
    "cosine",
    "linear",
    "constant_warmup",
    "transformers_greedy",
    "schedule_free",
)

#: The F-sweep: the paper's four values plus 0.9 and the recipe's 0.95.
F_VALUES: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9, 0.95, 0.99)

#: F values also swept with no upper LR bound (``max_lr_ratio=None``), as the paper ran.
UNBOUNDED_F_VALUES: tuple[float, ...] = (0.25, 0.5)

FULL_SEEDS: tuple[int, ...] = (0, 1, 2)
QUICK_SEEDS: tuple[int, ...] = (0,)

FINETUNE_WORKLOADS: tuple[str, ...] = ("minilm_lora", "minilm_full")
PRETRAIN_WORKLOAD = "llama_pretrain"
F_SWEEP_WORKLOADS: tuple[str, ...] = ("minilm_lora", PRETRAIN_WORKLOAD)


def _recipe_greedy() -> dict[str, Any]:
    from greedylr.evidence.workloads.llama_pretrain import TINY_RECIPE

    return TINY_RECIPE.greedy_settings()


def _ordered(specs: list[TrialSpec]) -> list[TrialSpec]:
    """GreedyLR and cosine first, then the rest; within each, seed-major (stable)."""
    first = [s for s in specs if s.schedule in ("greedy", "cosine")]
    return first + [s for s in specs if s.schedule not in ("greedy", "cosine")]


def finetune(quick: bool) -> list[TrialSpec]:
    """MiniLM fine-tuning, LoRA and full, every schedule x seeds (quick: LoRA, 2 x 1)."""
    if quick:
        return [
            workload_spec("finetune", "minilm_lora", s, seed, quick=True)
            for s in ("greedy", "cosine")
            for seed in QUICK_SEEDS
        ]
    return _ordered(
        [
            workload_spec("finetune", w, s, seed)
            for w in FINETUNE_WORKLOADS
            for seed in FULL_SEEDS
            for s in SCHEDULES
        ]
    )


def pretrain(quick: bool) -> list[TrialSpec]:
    """Tiny Llama pre-training: every schedule with AdamW, greedy and cosine with Adafactor."""
    recipe = _recipe_greedy()

    def one(schedule: str, seed: int, optimizer: str = "adamw") -> TrialSpec:
        settings = recipe if schedule == "greedy" else None
        return workload_spec("pretrain", PRETRAIN_WORKLOAD, schedule, seed, quick=quick,
                             optimizer=optimizer, settings=settings)

    if quick:
        return [one(s, seed) for s in ("greedy", "cosine") for seed in QUICK_SEEDS]
    specs = [one(s, seed) for seed in FULL_SEEDS for s in SCHEDULES]
    specs += [one(s, seed, "adafactor") for seed in FULL_SEEDS for s in ("greedy", "cosine")]
    return _ordered(specs)


def f_sweep(quick: bool) -> list[TrialSpec]:
    """GreedyLR's factor F swept on LoRA fine-tuning and pre-training (quick: 3 F, LM only)."""
    if quick:
        return [
            workload_spec("f_sweep", PRETRAIN_WORKLOAD, "greedy", seed, quick=True,
                          settings={**_recipe_greedy(), "factor": f})
            for f in (0.25, 0.5, 0.95)
            for seed in QUICK_SEEDS
        ]
    specs = []
    for workload in F_SWEEP_WORKLOADS:
        base = _recipe_greedy() if workload == PRETRAIN_WORKLOAD else {}
        specs += [
            workload_spec("f_sweep", workload, "greedy", seed, settings={**base, "factor": f})
            for seed in FULL_SEEDS
            for f in F_VALUES
        ]
        # the paper's fork bounds the LR by max_lr=1.0, which at LR 2e-4 is no bound;
        # this package's default caps it at 10x the initial LR, which may be what keeps
        # a small F from diverging: run the smallest F values without the cap as well
        specs += [
            workload_spec("f_sweep", workload, "greedy", seed,
                          settings={**base, "factor": f, "max_lr_ratio": None})
            for seed in FULL_SEEDS
            for f in UNBOUNDED_F_VALUES
        ]
    return specs


STUDIES = {"finetune": finetune, "pretrain": pretrain, "f_sweep": f_sweep}


# -- compact summaries ----------------------------------------------------------------


def _fmt(value: float, digits: int = 4) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.{digits}g}"


def summarize(study_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Per workload x optimizer x arm, across seeds: the compact table of a study.

    Writes ``summary.json`` and ``summary.csv`` beside the trials and returns the rows:
    final training loss (the metrics module's trailing-window mean), the held-out
    metric, runs ok / diverged / failed, LR increases and decreases, wall time.
    """
    from greedylr.studies.runner import load_results

    study_dir = Path(study_dir)
    results = load_results(study_dir)
    rows = []
    for s in M.arm_summaries(results):
        _, workload, optimizer, steps, _, warmup, *_ = s.setting
        rows.append(
            {
                "workload": workload,
                "optimizer": optimizer,
                "steps": steps,
                "warmup": warmup,
                "arm": s.arm,
                "runs": s.runs,
                "ok": s.statuses.get("ok", 0),
                "diverged": s.statuses.get("diverged", 0),
                "failed": s.statuses.get("failed", 0),
                "final_loss_mean": s.final_loss.mean,
                "final_loss_std": s.final_loss.std,
                "metric": s.metric,
                "metric_mean": s.final_metric.mean,
                "metric_std": s.final_metric.std,
                "lr_ups": s.lr_ups.mean,
                "lr_downs": s.lr_downs.mean,
                "wall_s_mean": s.wall_time.mean,
            }
        )
    write_json(study_dir / "summary.json", rows)
    write_csv(study_dir / "summary.csv", list(rows[0]) if rows else [],
              [list(r.values()) for r in rows])
    return rows


def summary_markdown(study_dir: str | os.PathLike[str]) -> str:
    """The compact comparison of a study as markdown (``summary.md``).

    Per workload and optimizer: each arm across seeds (final training loss, the
    held-out metric, runs that diverged, wall time), then GreedyLR minus each baseline
    paired by seed (positive metric difference = GreedyLR better; wins = seeds where
    GreedyLR's held-out metric is better).
    """
    from greedylr.studies.runner import load_results

    study_dir = Path(study_dir)
    results = load_results(study_dir)
    lines = [f"# `{study_dir.name}`: every arm, and GreedyLR against each baseline", ""]
    paired: dict[tuple[Any, ...], list[M.Paired]] = defaultdict(list)
    for p in M.paired_differences(results):
        paired[p.setting].append(p)
    by_setting: dict[tuple[Any, ...], list[M.ArmSummary]] = defaultdict(list)
    for a in M.arm_summaries(results):
        by_setting[a.setting].append(a)
    for setting, arms in sorted(by_setting.items(), key=lambda kv: repr(kv[0])):
        _, workload, optimizer, steps, _, warmup, *_ = setting
        metric = arms[0].metric or "metric"
        lines += [
            f"## `{workload}`, {optimizer}, {steps} steps, warmup {warmup}",
            "",
            f"| arm | runs | diverged | final train loss | held-out {metric} | wall s |",
            "|---|---|---|---|---|---|",
        ]
        for a in arms:
            lines.append(
                f"| {a.arm} | {a.runs} | {a.statuses.get('diverged', 0)} | "
                f"{_fmt(a.final_loss.mean)} ± {_fmt(a.final_loss.std, 2)} | "
                f"{_fmt(a.final_metric.mean)} ± {_fmt(a.final_metric.std, 2)} | "
                f"{_fmt(a.wall_time.mean, 3)} |"
            )
        if paired.get(setting):
            lines += [
                "",
                f"| GreedyLR - baseline | pairs | final loss diff | {metric} diff (+ = GreedyLR "
                "better) | wins |",
                "|---|---|---|---|---|",
            ]
            for p in paired[setting]:
                lines.append(
                    f"| {p.candidate} - {p.baseline} | {p.pairs} | "
                    f"{_fmt(p.final_loss_diff.mean, 3)} ± {_fmt(p.final_loss_diff.std, 2)} | "
                    f"{_fmt(p.final_metric_diff.mean, 3)} ± "
                    f"{_fmt(p.final_metric_diff.std, 2)} | {p.wins}/{p.pairs} |"
                )
        pct = _lower_than_cosine_pct(results, setting)
        if pct:
            lines += ["", f"The paper's LLM measure, training loss against cosine: {pct}"]
        lines.append("")
    text = "\n".join(lines)
    (study_dir / "summary.md").write_text(text)
    return text


def _lower_than_cosine_pct(results: list[dict[str, Any]], setting: tuple[Any, ...]) -> str:
    """How much lower GreedyLR's training loss is than cosine's at 10/50/100% of training.

    The paper reports 1.0 / 3.0 / 5.4% for Llama-3.2-1B (one seed); each greedy arm of
    the setting is compared with cosine on the trailing-window training loss.
    """
    arms: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if M.setting_of(r) == setting and r.get("status") == "ok":
            arms[M.arm_of(r)].append(r)
    if "cosine" not in arms:
        return ""
    parts = []
    for arm in sorted(a for a in arms if M.is_candidate(a)):
        values = []
        for fraction in (0.1, 0.5, 1.0):
            greedy = M.Stat.of(M.loss_at(r, fraction) for r in arms[arm]).mean
            cosine = M.Stat.of(M.loss_at(r, fraction) for r in arms["cosine"]).mean
            values.append(f"{100 * (1 - greedy / cosine):.1f}%")
        parts.append(f"`{arm}`: {' / '.join(values)} lower at 10/50/100% (paper: 1.0 / 3.0 / 5.4%)")
    return "; ".join(parts)


def f_sweep_table(study_dir: str | os.PathLike[str]) -> str:
    """The F-sweep verdict as markdown (``f_sweep.md``) and a figure (``figures/f_sweep.png``).

    A run *diverged* if its training loss became non-finite, or if its final
    (trailing-window) loss ended above its first loss: the paper's F = 0.25 run ended
    at 7.78 from 2.28, which is that second kind. A run *converged* otherwise.
    """
    from greedylr.studies.runner import load_results

    study_dir = Path(study_dir)
    results = [r for r in load_results(study_dir) if r["spec"]["schedule"] == "greedy"]
    table: dict[str, dict[tuple[float, bool], list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for r in results:
        settings = r["spec"]["settings"]
        bounded = settings.get("max_lr_ratio", "default") is not None
        table[r["spec"]["workload"]][(float(settings["factor"]), bounded)].append(r)
    lines = [
        "# F-sweep: GreedyLR's factor F",
        "",
        "Diverged: non-finite loss, or final training loss above the first. Final loss: "
        "trailing-window mean of the training loss (mean ± sd over seeds); metric: "
        "held-out, at the end. Peak LR: the largest LR the run reached / the initial LR "
        "(mean over seeds). Rows marked 'no LR cap' ran without the default upper "
        "bound of 10x the initial LR, as the paper's code did.",
        "",
    ]
    figure_data: dict[str, list[tuple[float, float, float]]] = {}
    for workload, by_f in sorted(table.items()):
        # the name the runs that report one share, not the first run's (a run that
        # diverged early reported none)
        try:
            metric = M.common_metric(r for runs in by_f.values() for r in runs)[0] or "metric"
        except M.MetricMismatch:
            metric = "metric"
        lines += [
            f"## `{workload}`",
            "",
            f"| F | runs | diverged | final loss | {metric} | peak LR / initial |",
            "|---|---|---|---|---|---|",
        ]
        points = []
        for (factor, bounded), runs in sorted(by_f.items(), key=lambda kv: (not kv[0][1], kv[0])):
            row, loss_s = _f_sweep_row(factor, bounded, runs)
            lines.append(row)
            if bounded:
                points.append((factor, loss_s.mean, loss_s.std))
        figure_data[workload] = points
        stable = [p[1] for p in points if p[0] >= 0.5 and math.isfinite(p[1])]
        if len(stable) > 1:
            spread = 100 * (max(stable) - min(stable)) / min(stable)
            lines += [
                "",
                f"F >= 0.5: mean final losses within {spread:.1f}% of each other "
                "(the paper: within 1.5%, one seed).",
            ]
        lines.append("")
    text = "\n".join(lines)
    (study_dir / "f_sweep.md").write_text(text)
    _f_sweep_figure(figure_data, study_dir / "figures" / "f_sweep.png")
    return text


def _f_sweep_row(factor: float, bounded: bool, runs: list[dict[str, Any]]) -> tuple[str, M.Stat]:
    """One F's row of the F-sweep table (runs, diverged, final loss, held-out metric, peak
    LR over the initial), and its final-loss statistic for the figure."""
    finals, metrics_, peaks, diverged = [], [], [], 0
    for r in runs:
        losses = [v for v in r.get("losses", []) if v is not None]
        final = M.loss_at(r, 1.0) if r["status"] == "ok" else math.inf
        if r["status"] != "ok" or not math.isfinite(final) or final > losses[0]:
            diverged += 1
        if r["status"] == "ok":
            finals.append(final)
            metrics_.append(M.final_metric(r))
        lrs = [v for v in r.get("lrs", []) if v is not None and math.isfinite(v)]
        if lrs and r.get("lr"):
            peaks.append(max(lrs) / float(r["lr"]))
    loss_s, metric_s, peak_s = M.Stat.of(finals), M.Stat.of(metrics_), M.Stat.of(peaks)
    row = (
        f"| {factor:g}{'' if bounded else ' (no LR cap)'} | {len(runs)} | {diverged} | "
        f"{_fmt(loss_s.mean)} ± {_fmt(loss_s.std, 2)} | "
        f"{_fmt(metric_s.mean)} ± {_fmt(metric_s.std, 2)} | {_fmt(peak_s.mean, 3)} |"
    )
    return row, loss_s


def _f_sweep_figure(data: dict[str, list[tuple[float, float, float]]], path: Path) -> None:
    """Final training loss against F, one panel per workload, the paper's threshold marked."""
    if not data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = new_figure(size=(4.5 * len(data), 3.4), dpi=110, what="the F-sweep figure")
    axes = fig.subplots(1, len(data), squeeze=False)
    for ax, (workload, points) in zip(axes[0], sorted(data.items())):
        xs = [p[0] for p in points]
        ax.errorbar(xs, [p[1] for p in points], yerr=[p[2] for p in points], marker="o")
        ax.axvline(0.5, color="grey", linestyle=":", label="paper's threshold F = 0.5")
        ax.set_xlabel("F")
        ax.set_ylabel("final training loss (mean ± sd)")
        ax.set_title(workload)
        ax.legend(fontsize=7)
    fig.savefig(path)


# -- running -----------------------------------------------------------------------------


#: The order ``run`` works in, cheapest and most central first, so that a run stopped
#: early holds complete comparisons: (study, workload).
PHASES: tuple[tuple[str, str], ...] = (
    ("pretrain", PRETRAIN_WORKLOAD),
    ("f_sweep", PRETRAIN_WORKLOAD),
    ("finetune", "minilm_lora"),
    ("f_sweep", "minilm_lora"),
    ("finetune", "minilm_full"),
)


def write_reports(study_dir: str | os.PathLike[str]) -> None:
    """Everything a study folder shows, from its stored results only."""
    from greedylr.studies.report import write_report

    study_dir = Path(study_dir)
    write_report(study_dir, title=f"GreedyLR: the {study_dir.name} study")
    summarize(study_dir)
    summary_markdown(study_dir)
    if study_dir.name == "f_sweep":
        f_sweep_table(study_dir)


def run(
    out_dir: str | os.PathLike[str],
    *,
    quick: bool = False,
    jobs: int = 2,
    studies: Sequence[str] = ("pretrain", "finetune", "f_sweep"),
    progress: bool = False,
) -> dict[str, Any]:
    """Run the studies into ``out_dir/<study>/`` (resumable), then write their reports.

    The trials run in :data:`PHASES` order across studies. Returns per study: trials,
    statuses, and the summed wall time of its trials.
    """
    from greedylr.studies.runner import run_trials

    out = Path(out_dir)
    specs = {name: STUDIES[name](quick) for name in studies}
    results: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for study, workload in PHASES:
        todo = [s for s in specs.get(study, []) if s.workload == workload]
        if todo:
            started = time.perf_counter()
            results[study] += run_trials(todo, out / study, jobs=jobs, progress=progress)
            logger.info(
                "%s / %s: %d trials, %.0f s",
                study,
                workload,
                len(todo),
                time.perf_counter() - started,
            )
    summary: dict[str, Any] = {}
    for name in studies:
        if not results[name]:
            continue
        write_reports(out / name)
        statuses: dict[str, int] = defaultdict(int)
        for r in results[name]:
            statuses[r["status"]] += 1
        summary[name] = {
            "trials": len(results[name]),
            "statuses": dict(statuses),
            "trial_wall_s": round(sum(float(r.get("wall_time") or 0) for r in results[name]), 1),
        }
    return summary

"""A study's compact, committable numbers beside its report: the held-out summary, the
paper's headline next to ours, one row per trial (``greedylr bench`` writes them per study)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from greedylr.evidence.outputs import write_csv, write_json
from greedylr.studies import metrics as M
from greedylr.studies import tuning as T
from greedylr.studies.report import heldout_summary
from greedylr.studies.runner import load_results

__all__ = ["PAPER_BASELINES", "PAPER_HEADLINE", "headline", "workload_table", "write_summary"]

#: The schedules the paper compares GreedyLR with (section 4.1), HF recipe defaults.
PAPER_BASELINES: tuple[str, ...] = ("linear", "cosine", "polynomial", "constant_warmup")


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
    the best schedule's, GreedyLR's rank among all schedules at that LR, and the seeds.

    The metric and its direction are those of the setting's trials that report one
    (:func:`greedylr.studies.metrics.common_metric`), not of whichever trial is read
    first or last (``direction_guessed`` where the direction was read from the metric's
    name); a setting whose trials disagree on it is not ranked: its row says why
    (``not_compared``)."""
    groups: dict[tuple[str, str, Any], list[dict[str, Any]]] = {}
    for r in results:
        # an LR grid: one row per LR (a schedule is ranked against the others at its LR)
        key = (r["spec"]["workload"], r["spec"]["optimizer"], r["spec"].get("lr"))
        groups.setdefault(key, []).append(r)
    rows = []
    for key, runs in sorted(groups.items(), key=lambda kv: repr(kv[0])):
        arms: dict[str, list[float]] = {}
        for r in runs:
            value = M.final_metric(r) if r["status"] == "ok" else None
            arms.setdefault(M.arm_of(r), []).append(float("nan") if value is None else value)
        if "greedy" not in arms:
            continue
        where = {"workload": key[0], "optimizer": key[1], "lr": key[2]}
        try:
            name, higher = M.common_metric(runs)
        except M.MetricMismatch as e:
            rows.append({**where, "metric": None, "higher_is_better": None,
                         "not_compared": str(e), "seeds": len(arms["greedy"])})
            continue

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
                **where,
                "metric": name,
                "higher_is_better": higher,
                "direction_guessed": M.direction_guessed(runs),
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
    "eval_every",
)


def _trial_row(r: dict[str, Any]) -> list[Any]:
    """One trial in ``trials.csv``: its identity, the optimizer it really used, status,
    loss at 10/50/100%, final and best held-out metric, LR moves, wall time and how
    often it was evaluated."""
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
        s.get("eval_every", 0),
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
        lr = "default" if row["lr"] is None else f"{row['lr']:g}"
        if row.get("not_compared"):
            lines.append(f"| {row['workload']} | {row['optimizer']} | {lr} | - | "
                         f"not compared: {row['not_compared']} | | | |")
            continue
        arrow = ("↑" if row["higher_is_better"] else "↓") + (
            " (guessed)" if row.get("direction_guessed") else "")
        lines.append(
            f"| {row['workload']} | {row['optimizer']} | {lr} | {row['metric']} {arrow} | "
            f"{row['greedy']:.4g} | {row['best_schedule']} | {row['best']:.4g} | "
            f"{row['greedy_rank']}/{row['schedules']} |"
        )
    return lines


def _tuned_json(wt: Any) -> dict[str, Any]:
    """One workload group of :func:`greedylr.studies.tuning.tune`, as plain JSON values
    (non-finite numbers as ``null``)."""
    def num(value: float) -> float | None:
        return value if math.isfinite(value) else None

    def stat(st: Any) -> dict[str, Any]:
        return {"mean": num(st.mean), "std": num(st.std), "ci": [num(x) for x in st.ci],
                "n": st.n}

    return {
        "group": [str(x) for x in wt.group[:5]],
        "eval_every": wt.group[-1],
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
             "ties": p.ties, "losses": p.losses, "unpaired": p.unpaired,
             "verdict": p.verdict}
            for p in wt.pairs
        ],
    }

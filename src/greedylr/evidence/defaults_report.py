"""The defaults study's reports: tables, a figure and summaries from stored results only.

What :mod:`greedylr.evidence.defaults` ran and analysed, written as ``report.md``,
``heldout.md``, the LR-grid tolerance report and their JSON/CSV summaries.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from greedylr.evidence.defaults import (
    CHECK_WORKLOADS,
    HELDOUT_SPLITS,
    SEEDS,
    TUNE_WORKLOADS,
    _key,
    adopted,
    analyze,
    directions,
    heldout_means,
    versus_cosine,
)
from greedylr.evidence.outputs import write_csv, write_json
from greedylr.plot import new_figure
from greedylr.studies import metrics as M
from greedylr.studies.metrics import Result

__all__ = ["write_heldout_report", "write_lr_grid_report", "write_report"]


def _share(row: dict[str, Any], kind: str) -> str:
    """``"86% of 84"``: one kind of comparison of a :func:`versus_cosine` row."""
    pct = row[f"{kind}_pct"]
    return f"{'-' if math.isnan(pct) else f'{pct:.0f}%'} of {row[f'{kind}_n']}"


def _versus_table(table: dict[str, dict[str, Any]]) -> str:
    head = (
        "| arm | final held-out >= cosine | best held-out >= cosine | checkpoint selected on "
        "the fed half >= cosine's | training loss >= cosine | time to cosine's loss (median) "
        "| misses | diverged |\n|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| `{arm}` | {_share(r, 'final')} | {_share(r, 'best')} | {_share(r, 'selected')} | "
        f"{_share(r, 'train')} | "
        f"{_fmt(r['time_to_cosine_loss'], 2)} | {r['misses']}/{r['runs']} | "
        f"{r['diverged']}/{r['runs']} |"
        for arm, r in sorted(table.items(), key=lambda kv: (-kv[1]["final_pct"], kv[0]))
    ]
    return head + "\n".join(lines) + "\n"


def _means_table(means: dict[str, dict[str, float]], higher: dict[str, bool]) -> str:
    arms = sorted({a for m in means.values() for a in m})
    head = "| workload | " + " | ".join(f"`{a}`" for a in arms) + " |\n"
    head += "|---" * (len(arms) + 1) + "|\n"
    lines = [
        f"| {w} ({'↑' if higher[w] else '↓'}) | "
        + " | ".join(_fmt(m.get(a, math.nan), 4) for a in arms) + " |"
        for w, m in sorted(means.items())
    ]
    return head + "\n".join(lines) + "\n"


def _other_cosines(arms: Any) -> list[str]:
    """The cosine arms scored another way than plain cosine (an average of the weights):
    each is the fair baseline of the arms scored the same way."""
    return sorted(a for a in arms if a.startswith("cosine("))


def write_heldout_report(out: Path, report_dir: Path) -> Path:
    """``report_dir/heldout.md`` and ``heldout.json``: :func:`versus_cosine` per split."""
    from greedylr.studies.runner import load_results

    report_dir.mkdir(parents=True, exist_ok=True)
    parts = ["# GreedyLR 0.2 candidates against cosine, on the held-out metric\n",
             "Every arm is evaluated every 10% of the run on alternate halves of the held-out "
             "data: GreedyLR is fed the odd half (`observe_eval`, where `eval_patience` is "
             "set), every arm is scored on the even half. GreedyLR is told `total_steps` as "
             "cosine is. Seed means of 3 seeds; \">= cosine\" is within 1% of cosine or "
             "better.\n"]
    summary: dict[str, Any] = {}
    for stage, names in HELDOUT_SPLITS.items():
        folder = out / f"heldout_{stage}"
        results = load_results(folder) if folder.exists() else []
        if not results:
            continue
        table = versus_cosine(results)
        means = heldout_means(results)
        higher = directions(results)
        summary[stage] = {"versus_cosine": table, "final_heldout": means}
        parts.append(f"## {stage.title()} split: {', '.join(names)}\n")
        parts.append(f"{len(results)} runs.\n")
        parts.append(_versus_table(table))
        for base in _other_cosines(table):
            fair = versus_cosine(results, base)
            summary[stage][f"versus {base}"] = fair
            parts.append(f"\nThe same, against `{base}` (cosine scored the same way):\n\n")
            parts.append(_versus_table(fair))
        parts.append("\nSeed-mean final held-out metric (scored half):\n\n")
        parts.append(_means_table(means, higher))
    path = report_dir / "heldout.md"
    path.write_text("\n".join(parts))
    (report_dir / "heldout.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return path


def _tolerance_table(table: dict[str, Any]) -> str:
    head = ("| arm | grid points within 2% of the best-tuned cosine (target >= 40%) | median "
            "ratio to it (target <= 1.2) | diverged or failed points (target 0) | worst "
            "ratio of a point that did not diverge | median ratio at 0.1x / 0.316x / 1x / "
            "3.16x / 10x |\n|---|---|---|---|---|---|\n")
    lines = [
        f"| `{arm}` | {100 * t.within:.0f}% of {len(t.ratios)} | {_fmt(t.median_ratio, 3)} "
        f"| {t.bad} | {_fmt(t.worst_finite_ratio, 3)} "
        f"| {' / '.join(_fmt(r, 3) for r in t.by_position)} |"
        for arm, t in sorted(table.items(), key=lambda kv: kv[1].median_ratio)
    ]
    return head + "\n".join(lines) + "\n"


#: What each LR grid is, for its report's opening paragraph.
_LR_GRID_SCOPE = {
    "tune": "every arm at 5 LRs (0.1x-10x of the workload's; Prodigy's base is 1.0) on wine, "
            "breast cancer, diabetes and digits (MLPs; these are tuning-split workloads); "
            "`workload_power_ema=7`: scored on a power-function EMA of the weights",
    "check": "cosine and GreedyLR 0.2, each also scored on a power-function EMA of its "
             "weights (`workload_power_ema=7`), at 5 LRs (0.1x-10x of the workload's) on the "
             "check split (MNIST ResNet/SGD, MNIST ViT/AdamW, char transformer/AdamW, char "
             "LSTM/SGD, docstring seq2seq/Adafactor: workloads the defaults never saw)",
    "fresh": "cosine, GreedyLR 0.2 and round 6's faster climb, each also scored on a "
             "power-function EMA of its weights (`workload_power_ema=7`), at 5 LRs (0.1x-10x "
             "of the workload's) on round 7's fresh split (photo Fourier MLP/AdamW, Auto MPG "
             "MLP/SGD, Unicode-names GRU LM/AdamW and category CNN/Adagrad: workloads that "
             "neither split has)",
    "probe": "cosine, GreedyLR 0.2 and round 6's faster climb, each also scored on a "
             "power-function EMA of its weights (`workload_power_ema=7`), at 5 LRs (0.1x-10x "
             "of the workload's) on round 9's probe split (flower Fourier MLP/Adagrad, digits "
             "autoencoder/AdamW, MNIST softmax regression/SGD: workloads no other split has)",
    "probe2": "cosine, GreedyLR 0.2 and round 6's faster climb, each also scored on a "
              "power-function EMA of its weights (`workload_power_ema=7`), at 5 LRs "
              "(0.1x-10x of the workload's) on round 12's probe split (terrain MLP/SGD, MRI "
              "denoiser/Adafactor, membrane-potential forecaster/AdamW, on matplotlib's "
              "sample data: workloads no other split has)",
}


def write_lr_grid_report(folder: Path, report_dir: Path, split: str = "tune") -> Path:
    """``report_dir/tolerance.md`` and ``tolerance.json`` (the issue's LR-tolerance
    targets, :func:`greedylr.studies.tuning.tolerance_versus` cosine, and each other
    cosine arm; the JSON keyed by that reference) and the study's
    held-out summary (``heldout.md``, ``summary.json``, ``trials.csv``) from the LR grid
    in ``folder``. Only seeds with every grid point of every arm count, so that a grid
    cut short is scored on equal seeds everywhere (the report says which)."""
    from greedylr.evidence.suites import write_summary
    from greedylr.studies import tuning as T
    from greedylr.studies.runner import load_results

    results = _complete_seeds(load_results(folder))
    seeds = sorted({r["spec"]["seed"] for r in results})
    write_summary(folder, report_dir)
    table = T.tolerance_versus(results, "cosine")
    parts = ["# LR tolerance under the held-out protocol, against the best-tuned cosine\n",
             f"{len(results)} runs: {_LR_GRID_SCOPE[split]}, seeds {seeds}, evaluated every "
             "10% on alternate halves of the held-out data, GreedyLR fed the odd half and "
             "told `total_steps`, every arm scored on the even half. A grid point is one LR "
             "of one workload, its value the seed-mean final held-out *loss*; its ratio is "
             "that over cosine's at cosine's best LR on the same workload (1.0: as good as "
             "the best-tuned cosine).\n",
             _tolerance_table(table)]
    tables = {"cosine": table}
    for base in _other_cosines({M.arm_of(r) for r in results}):
        tables[base] = T.tolerance_versus(results, base)
        parts += [f"\nThe same, against `{base}` at its best LR (cosine scored the same "
                  "way):\n", _tolerance_table(tables[base])]
    path = report_dir / "tolerance.md"
    path.write_text("\n".join(parts))
    (report_dir / "tolerance.json").write_text(json.dumps(
        {base: {arm: {"within": t.within, "median_ratio": t.median_ratio, "bad": t.bad,
                      "worst_finite_ratio": t.worst_finite_ratio,
                      "by_position": t.by_position, "ratios": t.ratios}
                for arm, t in tab.items()}
         for base, tab in tables.items()}, indent=1) + "\n")
    return path


def _complete_seeds(results: list[Result]) -> list[Result]:
    """The results of the seeds that ran every (workload, schedule, settings, LR) the
    grid's results hold for any seed."""
    def cell(r: Result) -> tuple[Any, ...]:
        return r["spec"]["workload"], M.arm_of(r), r["spec"]["lr"]

    cells = {cell(r) for r in results}
    by_seed: dict[int, set[Any]] = defaultdict(set)
    for r in results:
        by_seed[r["spec"]["seed"]].add(cell(r))
    complete = {seed for seed, have in by_seed.items() if have == cells}
    return [r for r in results if r["spec"]["seed"] in complete]


# -- report ---------------------------------------------------------------------------


def _fmt(v: Any, digits: int = 3) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.{digits}g}"
    return str(v)


def _variants_table(analysis: dict[str, Any]) -> str:
    head = (
        "| variant | mean rank, held-out metric | mean rank, final train loss | "
        "beats default on | as good or better vs paper baselines | clearly worse | "
        "diverged |\n|---|---|---|---|---|---|---|\n"
    )
    lines = []

    def order(r: dict[str, Any]) -> tuple[bool, float]:
        return math.isnan(r["metric_rank"]), r["metric_rank"]

    for r in sorted(analysis["variants"], key=order):
        incomplete = " (incomplete: ranks not comparable)" if math.isnan(r["metric_rank"]) else ""
        lines.append(
            f"| `{r['variant']}`{incomplete} | {_fmt(r['metric_rank'])} | "
            f"{_fmt(r['loss_rank'])} | "
            f"{r['wins_vs_default']}/{r['workloads']} | {_fmt(r['as_good_or_better_pct'])}% | "
            f"{_fmt(r['worse_pct'])}% | {r['diverged']}/{r['runs']} |"
        )
    return head + "\n".join(lines) + "\n"


def _per_workload_table(analysis: dict[str, Any]) -> str:
    variants = [r["variant"] for r in analysis["variants"]]
    head = "| workload (metric) | " + " | ".join(f"`{v}`" for v in variants) + " |\n"
    head += "|---" * (len(variants) + 1) + "|\n"
    lines = []
    for w, m in sorted(analysis["per_workload"].items()):
        arrow = "↑" if analysis["higher_is_better"][w] else "↓"
        lines.append(
            f"| {w} ({arrow}) | " + " | ".join(_fmt(m.get(v, math.nan), 4) for v in variants) + " |"
        )
    return head + "\n".join(lines) + "\n"


def _figure(analysis: dict[str, Any], path: Path, title: str) -> None:
    rows = sorted(
        (r for r in analysis["variants"] if not math.isnan(r["metric_rank"])),
        key=lambda r: r["metric_rank"],
    )
    fig = new_figure(size=(7, 0.35 * len(rows) + 1.2), dpi=110, what="the defaults study's figure")
    ax = fig.subplots()
    names = [r["variant"] for r in rows]
    ax.barh(
        names,
        [r["metric_rank"] for r in rows],
        color=["tab:red" if n == "greedy" else "tab:blue" for n in names],
    )
    ax.invert_yaxis()
    ax.set_xlabel("mean rank of the final held-out metric (1 = best)")
    ax.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def write_report(out: Path, baselines_dir: Path | None, report_dir: Path) -> Path:
    """``report_dir/report.md``, ``summary.json``, ``summary.csv`` and figures."""
    from greedylr.studies.runner import load_results

    baselines = load_results(baselines_dir) if baselines_dir and baselines_dir.exists() else []
    report_dir.mkdir(parents=True, exist_ok=True)
    parts = ["# GreedyLR defaults: tuned on some workloads, checked on the rest\n"]
    summary: dict[str, Any] = {}
    for stage, folder, workloads_ in (
        ("tune", out / "tune", TUNE_WORKLOADS),
        ("check", out / "check", CHECK_WORKLOADS),
    ):
        if not folder.exists():
            continue
        results = load_results(folder)
        if not results:
            continue
        if stage == "check":
            # the current default's runs on these workloads come from the small-model
            # study: paired by seed with the candidate's, so both arms cover the same runs
            ran = {_key(r) for r in results}
            results += [
                b
                for b in baselines
                if b["spec"]["workload"] in CHECK_WORKLOADS
                and M.arm_of(b) == "greedy"
                and _key(b) in ran
            ]
        analysis = analyze(results, baselines)
        summary[stage] = analysis
        _figure(analysis, report_dir / "figures" / f"{stage}_ranks.png", f"{stage} split")
        parts.append(f"## {stage.title()} split: {', '.join(workloads_)}\n")
        parts.append(
            f"{len(results)} runs, seeds {list(SEEDS)}. Variants sorted by mean rank "
            "of the final held-out metric within each workload x seed (1 = best).\n"
        )
        parts.append(_variants_table(analysis))
        if stage == "tune":
            parts.append(
                f"\nAdopted by the rule (beats the default on most workloads and "
                f"ranks better): {', '.join(adopted(analysis)) or 'none'}.\n"
            )
        parts.append("\nSeed-mean final held-out metric per workload:\n\n")
        parts.append(_per_workload_table(analysis))
        parts.append(f"\n![{stage}](figures/{stage}_ranks.png)\n")
    path = report_dir / "report.md"
    path.write_text("\n".join(parts))
    write_json(report_dir / "summary.json", summary)
    _write_summary_csv(report_dir / "summary.csv", summary)
    return path


_SUMMARY_COLUMNS = (
    "split",
    "variant",
    "metric_rank",
    "loss_rank",
    "wins_vs_default",
    "workloads",
    "as_good_or_better_pct",
    "worse_pct",
    "diverged",
    "runs",
)


def _write_summary_csv(path: Path, summary: dict[str, dict[str, Any]]) -> None:
    """One row per split and variant: its ranks, wins and divergences."""
    rows = [
        [
            stage,
            r["variant"],
            f"{r['metric_rank']:.3f}",
            f"{r['loss_rank']:.3f}",
            r["wins_vs_default"],
            r["workloads"],
            _fmt(r["as_good_or_better_pct"], 4),
            _fmt(r["worse_pct"], 4),
            r["diverged"],
            r["runs"],
        ]
        for stage, analysis in summary.items()
        for r in analysis["variants"]
    ]
    write_csv(path, _SUMMARY_COLUMNS, rows)

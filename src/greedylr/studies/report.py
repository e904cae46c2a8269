"""A markdown report with PNG figures, from stored results only.

``write_report(DIR)`` reads every result under ``DIR`` (see
:func:`greedylr.studies.runner.load_results`) and writes ``DIR/report.md`` and
``DIR/figures/*.png``. It never trains and never imports a workload: the report can
be rebuilt from the result files alone, on any machine.

First, one screen that a practitioner reads: the **held-out summary** (see
:mod:`greedylr.studies.tuning`): per workload, GreedyLR and every baseline each at its own
best LR (the only LR when there is no grid), final and best-so-far held-out metric, the
paired difference with its bootstrap CI, seeds won/tied/lost, a verdict that says
"inconclusive" when it cannot say more, the LR tolerance and worst grid point when the
run has an LR grid, and the final held-out metric against the LR (one figure per
workload). Then, for each study:

1. the paper's label table (GreedyLR against each baseline, at 10/50/100% of
   training), with the absolute 0.1 threshold and with the relative 1% one;
2. per setting (workload x optimizer x length x LR): every arm across seeds (final
   loss and held-out metric with bootstrap 95% intervals, the best held-out value and
   its step, the LR pulse, runs that diverged or failed);
3. GreedyLR minus each baseline, paired by seed (final metric, final loss, time to the
   baseline's final loss, seeds won);
4. figures: loss curves (median over seeds) with the LR beneath, the final held-out
   metric of every seed, and the label shares per baseline.

Examples:
    >>> write_report("results/compare")  # doctest: +SKIP
    PosixPath('results/compare/report.md')
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from greedylr._extras import requires_extra
from greedylr.studies import metrics as M
from greedylr.studies import tuning as T
from greedylr.studies.metrics import Result
from greedylr.studies.runner import load_results

__all__ = [
    "heldout_summary",
    "heldout_table",
    "markdown_table",
    "print_summary",
    "render_report",
    "summary_table",
    "verdict_lines",
    "write_report",
]

logger = logging.getLogger(__name__)

_OUR_FIGURES = ("-curves.png", "-final-metric.png", "-labels.png", "-lr.png")

#: Where the full evidence lives, for the smoke-run caveat of the quick suite's report.
EVIDENCE = (
    "`results/` in the repository (`results/lr_grid/`: every schedule tuned over a 100x "
    "LR grid, judged on the held-out metric; `results/small_models/`, `results/finetune/`, "
    "`results/pretrain/`), or `greedylr bench --full`"
)


# -- formatting -----------------------------------------------------------------------


def _num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def _stat(s: M.Stat, digits: int = 4) -> str:
    """``mean ± std [lo, hi]``, or the single value, or ``-``."""
    if s.n == 0:
        return "-"
    if s.n == 1:
        return _num(s.mean, digits)
    lo, hi = s.ci
    return f"{_num(s.mean, digits)} ± {_num(s.std, 2)} [{_num(lo, digits)}, {_num(hi, digits)}]"


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}%"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; ``|`` inside a cell is escaped."""

    def clean(cell: str) -> str:
        return str(cell).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _setting_title(setting: tuple[Any, ...], runs: list[Result]) -> str:
    _study, workload, _optimizer, steps, lr, warmup, shared = setting
    sample = runs[0]
    label = sample["spec"].get("workload", workload)
    used_lr = sample.get("lr") if lr is None else lr
    parts = [f"`{label}`", M.group_optimizer(runs), f"{steps} steps", f"lr {_num(used_lr)}"]
    if warmup:
        parts.append(f"warmup {warmup}")
    parts += [f"{k}={v}" for k, v in shared]
    return ", ".join(parts)


def _slug(setting: tuple[Any, ...]) -> str:
    if len(setting) == 1:
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(setting[0]))
    study, workload, optimizer, steps = setting[:4]
    stem = workload.rpartition(":")[0].rsplit("/", 1)[-1].removesuffix(".py") or workload
    name = workload.rpartition(":")[2] if ":" in workload else ""
    digest = hashlib.sha1(repr(setting).encode()).hexdigest()[:6]
    raw = "-".join(x for x in (study, stem, name, optimizer, str(steps), digest) if x)
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in raw)


# -- figures --------------------------------------------------------------------------


def _plt() -> Any:
    with requires_extra("plot", "a report"):
        import matplotlib

        matplotlib.use("Agg")  # files only: never open a window
        import matplotlib.pyplot as plt

    return plt


def _color(arm: str, arms: Sequence[str]) -> Any:
    plt = _plt()
    if M.is_candidate(arm):
        return "crimson" if arm == "greedy" else plt.cm.Reds(0.45 + 0.5 * (hash(arm) % 7) / 7)
    others = [a for a in arms if not M.is_candidate(a)]
    # tab10 without its red (index 3): red is GreedyLR's
    palette = (0, 1, 2, 4, 5, 6, 7, 8, 9)
    return plt.cm.tab10(palette[others.index(arm) % 9 if arm in others else 0])


def _curves_figure(arms: dict[str, dict[int, Result]], path: Path, title: str) -> None:
    """Median smoothed loss per arm (band: min-max over seeds), median LR beneath."""
    plt = _plt()
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    names = sorted(arms)
    finite_max: list[float] = []
    for arm in names:
        runs = [r for r in arms[arm].values() if r.get("status") != "failed" and r.get("losses")]
        if not runs:
            continue
        curves = np.vstack([M.smoothed_curve(r) for r in runs])
        steps = np.arange(1, curves.shape[1] + 1)
        with np.errstate(invalid="ignore"):
            median = np.median(curves, axis=0)
            lo, hi = curves.min(axis=0), curves.max(axis=0)
        color = _color(arm, names)
        width = 2.0 if M.is_candidate(arm) else 1.2
        top.plot(
            steps,
            np.where(np.isfinite(median), median, np.nan),
            color=color,
            lw=width,
            label=f"{arm} (n={len(runs)})",
        )
        if len(runs) > 1:
            top.fill_between(
                steps,
                np.where(np.isfinite(lo), lo, np.nan),
                np.where(np.isfinite(hi), hi, np.nan),
                color=color,
                alpha=0.12,
            )
        finite_max.extend(median[np.isfinite(median)][: max(1, len(median) // 20)].tolist())
        lrs = [np.asarray(r.get("lrs") or [], dtype=float) for r in runs]
        n = min(len(x) for x in lrs)
        if n:
            lr = np.median(np.vstack([x[:n] for x in lrs]), axis=0)
            bottom.plot(np.arange(1, n + 1), lr, color=color, lw=width)
    positive = all(
        (M.smoothed_curve(r) > 0).all()
        for runs in arms.values()
        for r in runs.values()
        if r.get("status") == "ok" and r.get("losses")
    )
    if positive:
        top.set_yscale("log")
    top.set_ylabel("training loss (2% window)")
    top.set_title(title, fontsize=9)
    if top.get_legend_handles_labels()[0]:
        top.legend(fontsize=7, ncol=2)
    top.grid(alpha=0.3)
    bottom.set_yscale("log")
    # decays that end at 0 would stretch the axis over decades and flatten the pulse
    top_lr = max((np.nanmax(line.get_ydata()) for line in bottom.get_lines()), default=0.0)
    if top_lr > 0:
        bottom.set_ylim(bottom=top_lr * 1e-3)
    bottom.set_ylabel("learning rate")
    bottom.set_xlabel("step")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _distribution_figure(
    arms: dict[str, dict[int, Result]], path: Path, title: str, metric: str, higher: bool
) -> bool:
    """Every seed's final held-out metric per arm, with the mean; False if none."""
    plt = _plt()
    names = sorted(arms)
    values = {
        a: [
            v
            for v in (M.final_metric(r) for r in arms[a].values() if r.get("status") == "ok")
            if v is not None and math.isfinite(v)
        ]
        for a in names
    }
    if not any(values.values()):
        return False
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(names) + 2), 3.6))
    rng = np.random.default_rng(0)
    for i, arm in enumerate(names):
        ys = values[arm]
        if not ys:
            continue
        xs = i + rng.uniform(-0.12, 0.12, len(ys))
        ax.scatter(xs, ys, s=18, color=_color(arm, names), alpha=0.8, zorder=3)
        ax.hlines(np.mean(ys), i - 0.3, i + 0.3, color="black", lw=1.5, zorder=4)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"final {metric} ({'higher' if higher else 'lower'} is better)")
    ax.set_title(textwrap.fill(title, 60), fontsize=8)  # narrow figure: wrap, never clip
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _labels_figure(per_baseline: dict[str, M.LabelTable], path: Path, title: str) -> None:
    """Stacked label shares (yes, yes*, no*, no) per baseline."""
    plt = _plt()
    names = sorted(per_baseline)
    colors = {"yes": "#1a9850", "yes*": "#a6d96a", "no*": "#fdae61", "no": "#d73027"}
    fig, ax = plt.subplots(figsize=(max(4.5, 0.8 * len(names) + 2.5), 3.6))
    bottom = np.zeros(len(names))
    for lab in M.LABELS:
        shares = np.array([per_baseline[b].percent(lab) for b in names])
        ax.bar(names, shares, bottom=bottom, color=colors[lab], label=lab)
        bottom += np.nan_to_num(shares)
    ax.set_ylabel("% of comparisons")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _lr_figure(wt: T.WorkloadTuning, path: Path, title: str) -> bool:
    """Final held-out metric against the LR (log x), one line per arm, seed spread as
    error bars (std over seeds); False if no arm has a finite point.

    When the arms ran different LR sets (Prodigy's ``lr`` is a multiplier of its own
    step size), x is each arm's LR over its grid's geometric centre.
    """
    plt = _plt()
    names = sorted(wt.arms, key=lambda a: (not M.is_candidate(a), a))
    grids = {tuple(p.lr for p in wt.arms[a].points) for a in names}
    relative = len(grids) > 1
    fig, ax = plt.subplots(figsize=(9, 4.2))
    drawn = False
    for arm in names:
        points = [p for p in wt.arms[arm].points if p.final.n and math.isfinite(p.lr)]
        if not points:
            continue
        lrs = np.array([p.lr for p in wt.arms[arm].points if math.isfinite(p.lr)], float)
        centre = float(np.exp(np.mean(np.log(lrs)))) if relative and len(lrs) else 1.0
        xs = np.array([p.lr / centre for p in points])
        ys = np.array([p.final.mean for p in points])
        err = np.array([p.final.std if p.final.n > 1 else 0.0 for p in points])
        bad = sum(p.bad for p in wt.arms[arm].points)
        label = arm + (f" ({bad} runs diverged/failed)" if bad else "")
        ax.errorbar(xs, ys, yerr=err, color=_color(arm, names), capsize=3, marker="o",
                    ms=4, lw=2.2 if M.is_candidate(arm) else 1.3, label=label)
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    if wt.reference_arm is not None and math.isfinite(wt.reference):
        ax.axhline(wt.reference, color="grey", lw=0.8, ls="--")
        band = wt.margin * abs(wt.reference)
        edge = wt.reference - band if wt.higher_is_better else wt.reference + band
        ax.axhspan(min(edge, wt.reference), max(edge, wt.reference), color="grey", alpha=0.12,
                   label=f"within {wt.margin:.0%} of best-tuned baseline ({wt.reference_arm})")
    ax.set_xscale("log")
    ax.set_xlabel("LR / the arm's grid centre (the workload's LR; Prodigy: 1)"
                  if relative else "initial learning rate")
    direction = "higher" if wt.higher_is_better else "lower"
    ax.set_ylabel(f"final held-out {wt.metric} ({direction} is better)")
    ax.set_title(textwrap.fill(title, 80), fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# -- the held-out summary -------------------------------------------------------------


def _primary(wt: T.WorkloadTuning) -> str | None:
    """The candidate the summary compares with: ``greedy``, else the first GreedyLR arm."""
    cands = sorted(a for a in wt.arms if M.is_candidate(a))
    return "greedy" if "greedy" in cands else (cands[0] if cands else None)


def _workload_label(workload: str) -> str:
    """``path/to/file.py:train`` -> ``file:train``; a registered name as it is."""
    target, _, function = workload.rpartition(":")
    return f"{Path(target).stem}:{function}" if target else workload


def _group_title(wt: T.WorkloadTuning, results: list[Result], study: bool) -> str:
    _study, _workload, _optimizer, steps, warmup, shared = wt.group
    label = _workload_label(wt.workload)
    parts = [M.group_optimizer(results), f"{steps} steps"]
    if warmup:
        parts.append(f"warmup {warmup}")
    parts += [f"{k}={v}" for k, v in shared]
    arrow = "↑" if wt.higher_is_better else "↓"
    head = f"{_study}: " if study else ""
    return f"{head}{label} ({', '.join(parts)}), {wt.metric} {arrow}"


def _verdict_cell(pair: T.TunedPair) -> str:
    verdict = pair.verdict
    return f"GreedyLR {verdict}" if verdict in ("better", "worse") else verdict


def _train_loss(runs: list[Result]) -> M.Stat:
    return M.Stat.of(M.loss_at(r, 1.0) for r in runs if r.get("status") == "ok")


def heldout_table(
    results: list[Result], *, margin: float = T.DEFAULT_MARGIN
) -> tuple[list[str], list[list[str]], list[T.WorkloadTuning]]:
    """The held-out-first table, one row per arm of each workload group.

    Columns: the group, the schedule, its own best LR, its final and best-so-far held-out
    metric there (mean ± std over seeds), GreedyLR minus it paired by seed (mean and
    bootstrap 95% CI, positive: GreedyLR better), seeds won/tied/lost by GreedyLR, the
    verdict; with an LR grid, its LR tolerance, worst grid point and the final metric at
    an LR picked on the other seeds; last, runs by status and the final training loss
    (not a held-out number).

    Returns:
        ``(header, rows, tunings)``.
    """
    tunings = T.tune(results, margin=margin)
    grid = any(wt.grid for wt in tunings)
    several_studies = len({wt.group[0] for wt in tunings}) > 1
    members: dict[tuple[Any, ...], list[Result]] = defaultdict(list)
    for r in results:
        members[T.group_of(r)].append(r)
    metrics = {wt.metric for wt in tunings}
    metric = metrics.pop() if len(metrics) == 1 else "held-out metric"
    header = [
        "workload",
        "schedule",
        "at its own best LR" if grid else "LR",
        f"final {metric}",
        f"best {metric} so far",
        "GreedyLR − this [95% CI]",
        "GreedyLR won/tied/lost",
        "verdict",
    ]
    if grid:
        header += [f"LR tolerance (within {margin:.0%} of best-tuned baseline)",
                   "worst grid point", f"final {metric}, LR picked on the other seeds"]
    header += ["ok/div/fail/timeout", "final train loss"]

    def short(stat: M.Stat) -> str:
        if stat.n == 0:
            return "-"
        return _num(stat.mean) if stat.n == 1 else f"{_num(stat.mean)} ± {_num(stat.std, 2)}"

    rows = []
    for wt in tunings:
        group = members[wt.group]
        title = _group_title(wt, group, several_studies)
        primary = _primary(wt)
        pairs = {p.baseline: p for p in wt.pairs if p.candidate == primary}
        order = sorted(wt.arms, key=lambda a: (a != primary, not M.is_candidate(a), a))
        for i, arm in enumerate(order):
            tuning = wt.arms[arm]
            best = tuning.best
            at_best = [r for r in group if r.get("key") in best.keys]
            runs = [r for r in group if M.arm_of(r) == arm]
            status = M.status_counts(runs).get(arm, {})
            pair = pairs.get(arm)
            delta = verdict = won = ""
            if pair is not None:
                if pair.diff.n:
                    lo, hi = pair.diff.ci
                    delta = f"{_num(pair.diff.mean, 3)} [{_num(lo, 3)}, {_num(hi, 3)}]"
                won = f"{pair.wins}/{pair.ties}/{pair.losses}"
                verdict = _verdict_cell(pair)
            elif M.is_candidate(arm):
                verdict = "(candidate)"
            row = [
                title if i == 0 else "",
                arm,
                _num(best.lr, 3),
                short(best.final),
                short(best.best),
                delta,
                won,
                verdict,
            ]
            if grid and len(tuning.points) == 1:  # no grid for this arm: nothing to say
                row += ["-", "-", "-"]
            elif grid:
                n = len(tuning.points)
                row += [
                    f"{tuning.within}/{n} ({100 * tuning.tolerance:.0f}%)",
                    f"{short(tuning.worst.final)} @ {_num(tuning.worst.lr, 3)}"
                    + (f", {tuning.worst.bad} div/fail" if tuning.worst.bad else ""),
                    short(tuning.other_seeds)
                    + (f", {tuning.other_seeds_bad} div/fail" if tuning.other_seeds_bad
                       else ""),
                ]
            row += [
                "/".join(str(status.get(k, 0)) for k in M.STATUSES),
                short(_train_loss(at_best)),
            ]
            rows.append(row)
    return header, rows, tunings


def verdict_lines(tunings: Sequence[T.WorkloadTuning]) -> list[str]:
    """The plain-words verdict: where GreedyLR is behind, ahead, and what is undecided."""
    behind, ahead, unsure, unsure_behind = [], [], [], []
    short_seeds = spans = 0
    for wt in tunings:
        primary = _primary(wt)
        for p in wt.pairs:
            if p.candidate != primary:
                continue
            lo, hi = p.diff.ci
            where = f"{_workload_label(wt.workload)} vs {p.baseline}"
            amount = f"{_num(p.diff.mean, 3)} [{_num(lo, 3)}, {_num(hi, 3)}]"
            if p.verdict == "worse":
                behind.append(f"{where} ({amount})")
            elif p.verdict == "better":
                ahead.append(f"{where} ({amount})")
            else:
                unsure.append(where)
                if p.diff.n < T.MIN_SEEDS:
                    short_seeds += 1
                else:
                    spans += 1
                if p.diff.n and p.diff.mean < 0:
                    unsure_behind.append(f"{where} ({amount})")
    total = len(behind) + len(ahead) + len(unsure)
    if not total:
        return ["No GreedyLR arm and baseline with a held-out metric to compare."]
    lines = [
        f"**Verdict** on the held-out metric, GreedyLR against each baseline ({total} "
        f"comparison{'s' if total != 1 else ''}): **behind in {len(behind)}, ahead in "
        f"{len(ahead)}, inconclusive in {len(unsure)}** ({short_seeds} with fewer than "
        f"{T.MIN_SEEDS} seeds, {spans} whose 95% CI spans 0; an inconclusive comparison "
        "is not a win).",
        "",
        "- GreedyLR loses (CI below 0) on: " + ("; ".join(behind) if behind else "none") + ".",
    ]
    if unsure_behind:
        lines.append("- GreedyLR is behind on the mean, but inconclusively, on: "
                     + "; ".join(unsure_behind) + ".")
    lines.append("- GreedyLR wins (CI above 0) on: " + ("; ".join(ahead) if ahead else "none")
                 + ".")
    return lines


def heldout_summary(results: list[Result], *, margin: float = T.DEFAULT_MARGIN) -> list[str]:
    """The held-out summary in markdown lines: how to read it, :func:`heldout_table`, and
    :func:`verdict_lines`; no lines when no result has a held-out metric."""
    header, rows, tunings = heldout_table(results, margin=margin)
    if not tunings:
        return []
    grid = any(wt.grid for wt in tunings)
    out = ["## Held-out summary: read this first", ""]
    how = (
        "Per workload, GreedyLR and each baseline on the held-out metric (final, and the "
        "best value seen at any evaluation), mean ± std over seeds; GreedyLR minus each "
        "baseline paired by seed with a bootstrap 95% CI (positive: GreedyLR better); "
        f"fewer than {T.MIN_SEEDS} seeds or a CI that spans 0 is *inconclusive*."
    )
    if grid:
        how += (
            " Every schedule ran at every LR of the grid with the same seeds and is shown "
            "**at its own best LR** (by mean final held-out metric over seeds; a diverged "
            "seed counts as the worst value). Choosing the best LR on the same seeds that "
            "then report it is optimistic, for every schedule alike: the tuned numbers "
            "are a best case; the column *LR picked on the other seeds* is the less "
            "flattering estimate (each seed at the LR best on the other seeds; it still "
            "reuses one held-out set). **LR tolerance**: the share of the schedule's grid points "
            f"whose mean final held-out metric is within {margin:.0%} of the best-tuned "
            "baseline's; the worst grid point says what a mistuned LR costs."
        )
    rows = [[r[0], f"**{r[1]}**" if M.is_candidate(r[1]) else r[1], *r[2:]] for r in rows]
    return [*out, how, "", markdown_table(header, rows), "", *verdict_lines(tunings), ""]


def _heldout_section(
    results: list[Result], figures_dir: Path, *, margin: float
) -> list[str]:
    """:func:`heldout_summary` and, for each workload with an LR grid, its LR figure."""
    out = heldout_summary(results, margin=margin)
    for wt in T.tune(results, margin=margin):
        if not wt.grid:
            continue
        title = _group_title(wt, [r for r in results if T.group_of(r) == wt.group], True)
        fig = figures_dir / f"{_slug(wt.group)}-lr.png"
        if _lr_figure(wt, fig, f"{title}: final held-out {wt.metric} vs LR (bars: std "
                      "over seeds)"):
            out += [f"![final {wt.metric} vs LR]({figures_dir.name}/{fig.name})", ""]
    return out


# -- sections -------------------------------------------------------------------------


def _label_section(results: list[Result], mode: str) -> tuple[str, dict[str, M.LabelTable]]:
    comparisons = M.compare(results, mode=mode)
    if not comparisons:
        return "", {}
    by_base: dict[str, list[M.Comparison]] = defaultdict(list)
    for c in comparisons:
        by_base[c.baseline].append(c)
    tables = {b: M.label_table(cs, mode=mode) for b, cs in sorted(by_base.items())}
    rows = []
    unit = "" if mode == "abs" else "%"
    scale = 1.0 if mode == "abs" else 100.0

    def amount(value: float) -> str:
        text = _num(value * scale, 3)
        return text if text == "-" else text + unit

    def row(name: str, t: M.LabelTable) -> list[str]:
        return [
            name,
            *(str(t.counts[x]) for x in M.LABELS),
            str(t.total),
            _pct(t.as_good_or_better),
            _pct(t.better),
            _pct(t.clearly_better),
            _pct(t.worse),
            " / ".join(_pct(t.stage_as_good_or_better(s)) for s in M.STAGES),
            amount(t.mean_benefit),
            amount(t.max_benefit),
            amount(t.max_deficit),
        ]

    for name, t in tables.items():
        rows.append(row(name, t))
    everything = M.label_table(comparisons, mode=mode)
    if len(tables) > 1:
        rows.append(row("**all**", everything))
    header = [
        "GreedyLR vs",
        "yes",
        "yes*",
        "no*",
        "no",
        "n",
        "as good or better",
        "better",
        "clearly better",
        "worse",
        "as good or better at 10/50/100%",
        "mean benefit",
        "max benefit",
        "max deficit",
    ]
    threshold = "absolute 0.1 loss" if mode == "abs" else "1% of the baseline's loss"
    text = (
        f"Threshold: {threshold}. One comparison = one seed of one setting at one stage "
        f"(10%, 50%, 100% of training), on the training loss averaged over a trailing "
        f"window of 2% of the run.\n\n" + markdown_table(header, rows)
    )
    return text, tables


def _arms_section(arms: dict[str, dict[int, Result]]) -> str:
    sample = next(iter(next(iter(arms.values())).values()))
    metric, higher = M.metric_name(sample)
    rows = []
    summaries = {s.arm: s for s in M.arm_summaries([r for a in arms.values() for r in a.values()])}
    for arm in sorted(summaries):
        s = summaries[arm]
        status = "/".join(str(s.statuses.get(k, 0)) for k in M.STATUSES)
        best = "-"
        if s.best_metric.n:
            best = f"{_num(s.best_metric.mean)} @ step {_num(s.best_step.mean, 3)}"
        rows.append(
            [
                f"**{arm}**" if M.is_candidate(arm) else arm,
                status,
                _stat(s.final_loss),
                _stat(s.final_metric),
                best,
                f"{_num(s.lr_ups.mean, 3)} / {_num(s.lr_downs.mean, 3)}",
                _num(s.wall_time.mean, 3),
            ]
        )
    direction = "higher" if higher else "lower"
    header = [
        "schedule",
        "/".join(M.STATUSES),
        "final train loss",
        f"final {metric or 'metric'}",
        f"best {metric or 'metric'} @ step",
        "LR steps up / down",
        "wall s",
    ]
    return (
        f"Mean ± std [bootstrap 95% CI] over seeds; held-out metric `{metric}` "
        f"({direction} is better).\n\n" + markdown_table(header, rows)
    )


def _paired_section(arms: dict[str, dict[int, Result]]) -> str:
    paired = M.paired_differences([r for a in arms.values() for r in a.values()])
    if not paired:
        return ""
    rows = []
    for p in paired:
        ttt = "-"
        if p.reached:
            ttt = (
                f"{p.reached}/{p.pairs} seeds, {_num(p.time_to_target.mean, 3)} steps "
                f"({_pct(100 * p.time_to_target_fraction)})"
            )
        else:
            ttt = f"0/{p.pairs} seeds"
        rows.append(
            [
                f"{p.candidate} − {p.baseline}",
                _stat(p.final_metric_diff),
                f"{p.wins}/{p.pairs}",
                _stat(p.final_loss_diff),
                ttt,
            ]
        )
    header = [
        "pair",
        "Δ final metric (+ = GreedyLR better)",
        "seeds won",
        "Δ final train loss",
        "time to baseline's final loss",
    ]
    preamble = "Paired by seed, over seeds where both ran to the end.\n\n"
    return preamble + markdown_table(header, rows)


def _provenance(results: list[Result]) -> str:
    codes = sorted(
        {", ".join(f"{k} {v}" for k, v in (r.get("code") or {}).items() if v) for r in results}
    )
    machines = sorted(
        {
            f"{(r.get('machine') or {}).get('processor', '?')}, "
            f"{(r.get('machine') or {}).get('cpu_count', '?')} CPUs, "
            f"{(r.get('machine') or {}).get('platform', '?')}"
            for r in results
        }
    )
    total_wall = sum(float(r.get("wall_time") or 0.0) for r in results)
    lines = [f"- code: {c}" for c in codes] + [f"- machine: {m}" for m in machines]
    lines.append(f"- trials: {len(results)}, {total_wall:.0f} s of training in total")
    return "\n".join(lines)


def render_report(
    results: list[Result],
    figures_dir: Path,
    *,
    title: str = "",
    smoke: bool = False,
    margin: float = T.DEFAULT_MARGIN,
) -> str:
    """The markdown report of ``results``; figures are written to ``figures_dir``.

    Figure links are relative to ``figures_dir.parent`` (where the report goes).

    Args:
        results: stored trial results.
        figures_dir: where the PNG figures go.
        title: the report's title.
        smoke: the results are a smoke run of the pipeline (the quick suite): say so
            first, and where the evidence lives.
        margin: the LR-tolerance margin (relative to the best-tuned baseline).
    """
    figures_dir.mkdir(parents=True, exist_ok=True)
    rel = figures_dir.name
    out = [f"# {title or 'GreedyLR study report'}", ""]
    if smoke:
        out += [
            "> **Smoke run of the pipeline, not evidence.** The quick suite runs a slice "
            "of each study with few seeds and short runs, to show that every part works; "
            "its comparisons are mostly inconclusive by design. The full evidence lives "
            f"in {EVIDENCE}.",
            "",
        ]
    out += _heldout_section(results, figures_dir, margin=margin)
    out += [
        "## How these results were produced",
        "",
        "Generated by `greedylr report` from stored results only. GreedyLR is the "
        "candidate (**bold**); every other schedule is a baseline with the same "
        "optimizer, warmup, seeds and steps, and, within one setting below, the same "
        "initial LR.",
        "",
        _provenance(results),
        "",
    ]
    failures = [r for r in results if r.get("status") in ("failed", "timeout")]
    by_study: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_study[r["spec"]["study"]].append(r)
    for study, study_results in sorted(by_study.items()):
        out += [f"## Study `{study}`", ""]
        counts = M.status_counts(study_results)
        out += [
            markdown_table(
                ["schedule", *M.STATUSES],
                [[a, *(str(c[k]) for k in M.STATUSES)] for a, c in counts.items()],
            ),
            "",
        ]
        for mode, name in (("abs", "absolute 0.1"), ("rel", "relative 1%")):
            text, tables = _label_section(study_results, mode)
            if not text:
                continue
            out += [
                f"### Training-loss labels, the paper's measure ({name}): not a held-out "
                "result",
                "",
                "The paper's labels compare *training* loss at one shared LR; they say "
                "nothing about held-out quality or a tuned LR (see the held-out summary "
                "at the top).",
                "",
                text,
                "",
            ]
            if mode == "abs":
                fig = figures_dir / f"{_slug((study,))}-labels.png"
                _labels_figure(tables, fig, f"{study}: GreedyLR vs each baseline (abs 0.1)")
                out += [f"![labels]({rel}/{fig.name})", ""]
        settings: dict[tuple[Any, ...], dict[str, dict[int, Result]]] = defaultdict(dict)
        for r in study_results:
            settings[M.setting_of(r)].setdefault(M.arm_of(r), {})[int(r["spec"]["seed"])] = r
        for setting, arms in sorted(settings.items(), key=lambda kv: repr(kv[0])):
            sample = next(iter(next(iter(arms.values())).values()))
            heading = _setting_title(setting, [r for a in arms.values() for r in a.values()])
            out += [f"### {heading}", "", _arms_section(arms), ""]
            paired = _paired_section(arms)
            if paired:
                out += [paired, ""]
            slug = _slug(setting)
            curves = figures_dir / f"{slug}-curves.png"
            _curves_figure(arms, curves, heading.replace("`", ""))
            out += [f"![loss and learning rate]({rel}/{curves.name})", ""]
            metric, higher = M.metric_name(sample)
            dist = figures_dir / f"{slug}-final-metric.png"
            if metric and _distribution_figure(
                arms, dist, heading.replace("`", ""), metric, higher
            ):
                out += [f"![final {metric} per seed]({rel}/{dist.name})", ""]
    if failures:
        out += ["## Failed and timed-out runs", ""]
        rows = [
            [r["key"], r["status"], (r.get("error") or "").splitlines()[0][:200]]
            for r in failures
        ]
        out += [markdown_table(["trial", "status", "error"], rows), ""]
    return "\n".join(out).rstrip() + "\n"


def _bench_suite(directory: Path) -> str | None:
    """``quick`` or ``full`` when ``directory`` holds a ``greedylr bench`` run."""
    import json

    try:
        return json.loads((directory / "bench.json").read_text()).get("suite")
    except (OSError, ValueError, AttributeError):
        return None


def write_report(
    directory: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    title: str = "",
    smoke: bool | None = None,
    margin: float = T.DEFAULT_MARGIN,
) -> Path:
    """Write ``report.md`` and ``figures/`` for every result stored under ``directory``.

    Args:
        directory: a study folder or a results root (searched recursively).
        output: the markdown file (default ``directory/report.md``); figures go to a
            ``figures`` folder beside it.
        title: the report's title.
        smoke: a smoke run of the pipeline (the quick suite): the report says so first.
            ``None``: as ``directory/bench.json`` says (``greedylr bench`` writes it).
        margin: the LR-tolerance margin, relative to the best-tuned baseline (0.02: 2%).

    Returns:
        The markdown file's path.

    Raises:
        FileNotFoundError: no results under ``directory``.
    """
    results = load_results(directory)
    if not results:
        raise FileNotFoundError(f"no trial results under {directory}")
    path = Path(output) if output is not None else Path(directory) / "report.md"
    figures = path.parent / "figures"
    if smoke is None:
        smoke = _bench_suite(Path(directory)) == "quick"
    text = render_report(results, figures, title=title, smoke=smoke, margin=margin)
    # figures of an earlier report that this one no longer shows (a renamed setting)
    for old in figures.glob("*.png"):
        if old.name.endswith(_OUR_FIGURES) and f"({figures.name}/{old.name})" not in text:
            old.unlink()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    logger.info("wrote %s (%d trials)", path, len(results))
    return path


def summary_table(
    results: list[Result], *, margin: float = T.DEFAULT_MARGIN
) -> tuple[list[str], list[list[str]]]:
    """The headline table of an A/B (``greedylr compare`` prints it): held-out first.

    The rows of :func:`heldout_table`: per workload group and arm, its own best LR, the
    final and best-so-far held-out metric there, GreedyLR's paired difference with its
    bootstrap 95% CI, seeds won/tied/lost, the verdict, the LR tolerance and worst grid
    point (with an LR grid), runs by status and, last, the final training loss. The
    ``workload`` column is left out when there is only one.

    Returns:
        ``(header, rows)``.
    """
    header, rows, tunings = heldout_table(results, margin=margin)
    if len(tunings) == 1:  # one workload: its name is the table's title, not a column
        return header[1:], [row[1:] for row in rows]
    return header, rows


def print_summary(
    results: list[Result], *, title: str = "", margin: float = T.DEFAULT_MARGIN
) -> None:
    """Print :func:`summary_table` as a rich table, then the plain-words verdict.

    What ``greedylr compare`` prints. Piped to a file or a log, every row stays on one
    line (the table takes the width it needs); in a terminal it wraps to fit.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    header, rows = summary_table(results, margin=margin)
    # plain text: a target like "x.py:train" must not become the :train: emoji
    table = Table(title=Text(f"{title}: held-out metric first" if title else
                             "held-out metric first"))
    for column in header:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console(emoji=False, markup=False)
    if not console.is_terminal:
        wide = console.options.update_width(10_000)
        console.width = max(console.width, console.measure(table, options=wide).maximum)
    console.print(table)
    for line in verdict_lines(T.tune(results, margin=margin)):
        console.print(line.replace("**", ""))

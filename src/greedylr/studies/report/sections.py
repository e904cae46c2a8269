"""The per-study sections of a report: the paper's labels, each setting's arms and paired
differences with their figures, where the results came from, what failed."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from greedylr.studies import metrics as M
from greedylr.studies.metrics import Result
from greedylr.studies.report.cells import markdown_table, num, pct, setting_title, slug, stat_cell
from greedylr.studies.report.figures import curves_figure, distribution_figure, labels_figure

__all__ = [
    "arms_section",
    "failures_section",
    "label_section",
    "paired_section",
    "provenance",
    "study_section",
]


def label_section(results: list[Result], mode: str) -> tuple[str, dict[str, M.LabelTable]]:
    """The paper's label table (``mode``: ``abs`` 0.1 or ``rel`` 1%) per baseline, as
    markdown, with the tables it shows; ``("", {})`` when nothing compares."""
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
        text = num(value * scale, 3)
        return text if text == "-" else text + unit

    def row(name: str, t: M.LabelTable) -> list[str]:
        return [
            name,
            *(str(t.counts[x]) for x in M.LABELS),
            str(t.total),
            pct(t.as_good_or_better),
            pct(t.better),
            pct(t.clearly_better),
            pct(t.worse),
            " / ".join(pct(t.stage_as_good_or_better(s)) for s in M.STAGES),
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


def arms_section(arms: dict[str, dict[int, Result]]) -> str:
    """Every arm of one setting across seeds: statuses, final loss and metric, best
    metric and its step, LR moves, wall time; the metric's direction is marked
    ``guessed`` where it was read from its name."""
    metric, higher, problem = _metric(arms)
    rows = []
    summaries = {s.arm: s for s in M.arm_summaries([r for a in arms.values() for r in a.values()])}
    for arm in sorted(summaries):
        s = summaries[arm]
        status = "/".join(str(s.statuses.get(k, 0)) for k in M.STATUSES)
        best = "-"
        if s.best_metric.n:
            best = f"{num(s.best_metric.mean)} @ step {num(s.best_step.mean, 3)}"
        rows.append(
            [
                f"**{arm}**" if M.is_candidate(arm) else arm,
                status,
                stat_cell(s.final_loss),
                stat_cell(s.final_metric),
                best,
                f"{num(s.lr_ups.mean, 3)} / {num(s.lr_downs.mean, 3)}",
                num(s.wall_time.mean, 3),
            ]
        )
    direction = f"{'higher' if higher else 'lower'} is better"
    if M.direction_guessed(r for a in arms.values() for r in a.values()):
        direction += ", guessed"  # from its name: the top of the report says so
    about = (f"held-out metric not summarized: {problem}" if problem else
             f"held-out metric `{metric}` ({direction})")
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
        f"Mean ± std [Student-t 95% CI of the mean] over the seeds that finished (the "
        f"final and best held-out metric: over those whose final one is finite); {about}."
        "\n\n" + markdown_table(header, rows)
    )


def _metric(arms: dict[str, dict[int, Result]]) -> tuple[str | None, bool, str | None]:
    """A setting's held-out metric and direction, from the trials that report one
    (:func:`greedylr.studies.metrics.common_metric`), and what is wrong when they
    disagree."""
    try:
        return (*M.common_metric(r for a in arms.values() for r in a.values()), None)
    except M.MetricMismatch as e:
        return None, True, str(e)


def paired_section(arms: dict[str, dict[int, Result]]) -> str:
    """GreedyLR minus each baseline of one setting, paired by seed; ``""`` when none."""
    paired = M.paired_differences([r for a in arms.values() for r in a.values()])
    if not paired:
        return ""
    rows = []
    for p in paired:
        ttt = "-"
        if p.reached:
            ttt = (
                f"{p.reached}/{p.pairs} seeds, {num(p.time_to_target.mean, 3)} steps "
                f"({pct(100 * p.time_to_target_fraction)})"
            )
        else:
            ttt = f"0/{p.pairs} seeds"
        rows.append(
            [
                f"{p.candidate} − {p.baseline}",
                stat_cell(p.final_metric_diff),
                f"{p.wins}/{p.pairs}",
                stat_cell(p.final_loss_diff),
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
    preamble = ("Paired by seed, over seeds where both ran to the end; a final metric that "
                "is not finite is a divergence, as in the held-out summary: the seed is lost "
                "by its side and left out of the Δ final metric.\n\n")
    return preamble + markdown_table(header, rows)


def provenance(results: list[Result]) -> str:
    """The code versions and machines behind ``results``, and their training time."""
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


def study_section(study: str, results: list[Result], figures_dir: Path) -> list[str]:
    """One study's part of the report: trials by status, the paper's labels, then each
    setting with its arms, paired differences and figures."""
    counts = M.status_counts(results)
    out = [
        f"## Study `{study}`",
        "",
        markdown_table(
            ["schedule", *M.STATUSES],
            [[a, *(str(c[k]) for k in M.STATUSES)] for a, c in counts.items()],
        ),
        "",
    ]
    out += _labels_part(study, results, figures_dir)
    settings: dict[tuple[Any, ...], dict[str, dict[int, Result]]] = defaultdict(dict)
    for r in results:
        settings[M.setting_of(r)].setdefault(M.arm_of(r), {})[int(r["spec"]["seed"])] = r
    for setting, arms in sorted(settings.items(), key=lambda kv: repr(kv[0])):
        out += _setting_part(setting, arms, figures_dir)
    return out


def _labels_part(study: str, results: list[Result], figures_dir: Path) -> list[str]:
    """The paper's training-loss labels, absolute and relative, with the label figure."""
    out: list[str] = []
    for mode, name in (("abs", "absolute 0.1"), ("rel", "relative 1%")):
        text, tables = label_section(results, mode)
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
            fig = figures_dir / f"{slug((study,))}-labels.png"
            labels_figure(tables, fig, f"{study}: GreedyLR vs each baseline (abs 0.1)")
            out += [f"![labels]({figures_dir.name}/{fig.name})", ""]
    return out


def _setting_part(
    setting: tuple[Any, ...], arms: dict[str, dict[int, Result]], figures_dir: Path
) -> list[str]:
    """One setting: its arms, the paired differences, the curves and the final metric."""
    rel = figures_dir.name
    heading = setting_title(setting, [r for a in arms.values() for r in a.values()])
    out = [f"### {heading}", "", arms_section(arms), ""]
    paired = paired_section(arms)
    if paired:
        out += [paired, ""]
    stem = slug(setting)
    curves = figures_dir / f"{stem}-curves.png"
    curves_figure(arms, curves, heading.replace("`", ""))
    out += [f"![loss and learning rate]({rel}/{curves.name})", ""]
    metric, higher, _problem = _metric(arms)
    dist = figures_dir / f"{stem}-final-metric.png"
    if metric and distribution_figure(arms, dist, heading.replace("`", ""), metric, higher):
        out += [f"![final {metric} per seed]({rel}/{dist.name})", ""]
    return out


def failures_section(results: list[Result]) -> list[str]:
    """The trials that failed, stopped short of their steps or timed out, with the first
    line of their error."""
    failures = [r for r in results if r.get("status") in ("failed", "short", "timeout")]
    if not failures:
        return []
    rows = [
        [r["key"], r["status"], next(iter((r.get("error") or "").splitlines()), "")[:200]]
        for r in failures
    ]
    return ["## Failed and timed-out runs", "",
            markdown_table(["trial", "status", "error"], rows), ""]

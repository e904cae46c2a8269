"""The held-out summary, read first: every schedule at its own best LR, the paired
difference with its CI, and the verdict in plain words (see :mod:`greedylr.studies.tuning`).
Also what ``greedylr compare`` prints."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from greedylr.studies import metrics as M
from greedylr.studies import tuning as T
from greedylr.studies.execution import FEED, headline_is_fed
from greedylr.studies.metrics import Result
from greedylr.studies.report.cells import markdown_table, num, slug, workload_label
from greedylr.studies.report.figures import lr_figure

__all__ = [
    "compared_pairs",
    "fed_headlines",
    "heldout_section",
    "heldout_summary",
    "heldout_table",
    "print_summary",
    "summary_table",
    "verdict_lines",
]


def _primary_arm(wt: T.WorkloadTuning) -> str | None:
    """The candidate the summary compares with: ``greedy``, else the first GreedyLR arm."""
    cands = sorted(a for a in wt.arms if M.is_candidate(a))
    return "greedy" if "greedy" in cands else (cands[0] if cands else None)


def compared_pairs(wt: T.WorkloadTuning, results: Sequence[Result]) -> list[T.TunedPair]:
    """The pairs the summary shows: each baseline arm against the GreedyLR defaults with
    the same arm options (``cosine(workload_power_ema=7)`` against
    ``greedy(workload_power_ema=7)``) when that arm ran, else against
    :func:`_primary_arm`."""
    primary = _primary_arm(wt)
    versus: dict[str, str | None] = {}
    for r in results:
        arm = M.arm_of(r)
        if arm in wt.arms and not M.is_candidate(arm) and T.group_of(r) == wt.group:
            twin = M.arm_of({"spec": {"schedule": "greedy",
                                      "settings": dict(M.arm_options_of(r))}})
            versus[arm] = twin if twin in wt.arms else primary
    return [p for p in wt.pairs if p.candidate == versus.get(p.baseline)]


def _group_title(wt: T.WorkloadTuning, results: list[Result], study: bool) -> str:
    """A workload group's title: study (when there are several), workload, optimizer,
    length, warmup, options, how often it was evaluated and the metric with its
    direction, marked ``(guessed)`` where it was read from the metric's name."""
    _study, _workload, _optimizer, steps, warmup, shared, eval_every = wt.group
    label = workload_label(wt.workload)
    parts = [M.group_optimizer(results), f"{steps} steps"]
    if warmup:
        parts.append(f"warmup {warmup}")
    parts += [f"{k}={v}" for k, v in shared]
    if eval_every:
        parts.append(f"evaluated every {eval_every} steps")
    head = f"{_study}: " if study else ""
    if wt.metric is None:  # not compared (its ``problem``): no metric to name
        return f"{head}{label} ({', '.join(parts)})"
    arrow = "↑" if wt.higher_is_better else "↓"
    if M.direction_guessed(results):
        arrow += " (guessed)"
    return f"{head}{label} ({', '.join(parts)}), {wt.metric} {arrow}"


def _verdict_cell(pair: T.TunedPair) -> str:
    """``GreedyLR better``/``GreedyLR worse``, or the verdict as it is."""
    verdict = pair.verdict
    return f"GreedyLR {verdict}" if verdict in ("better", "worse") else verdict


def _train_loss(runs: list[Result]) -> M.Stat:
    """The final training loss (trailing window) over the finished ``runs``."""
    return M.Stat.of(M.loss_at(r, 1.0) for r in runs if r.get("status") == "ok")


def heldout_table(
    results: list[Result], *, margin: float = T.DEFAULT_MARGIN
) -> tuple[list[str], list[list[str]], list[T.WorkloadTuning]]:
    """The held-out-first table, one row per arm of each workload group.

    Columns: the group, the schedule, its own best LR (and, when its grid points ran
    different seeds, on how many shared seeds it was picked), its final and best-so-far
    held-out metric there (mean ± std over the seeds that finished, and how many diverged
    or failed), GreedyLR minus it paired by seed (mean and Student-t 95% CI over the
    seeds both finished, positive: GreedyLR better), seeds won/tied/lost by GreedyLR, the
    verdict (``TunedPair.judgement``); with an LR grid, its
    LR tolerance, worst grid point and the final metric at an LR picked on the other
    seeds; last, runs by status and the final training loss (not a held-out number). A
    group whose trials disagree on the held-out metric has one row that says so.

    Returns:
        ``(header, rows, tunings)``.
    """
    tunings = T.tune(results, margin=margin)
    grid = any(wt.grid for wt in tunings)
    several_studies = len({wt.group[0] for wt in tunings}) > 1
    members: dict[tuple[Any, ...], list[Result]] = defaultdict(list)
    for r in results:
        members[T.group_of(r)].append(r)
    metrics = {wt.metric for wt in tunings if wt.metric is not None}
    metric = metrics.pop() if len(metrics) == 1 else "held-out metric"
    header = _heldout_header(metric, grid, margin)
    rows = []
    for wt in tunings:
        group = members[wt.group]
        title = _group_title(wt, group, several_studies)
        if wt.problem:  # not compared: one row that says why
            row = ["-"] * (len(header) - 1)
            row[header.index("verdict") - 1] = f"not compared: {wt.problem}"
            rows.append([title, *row])
            continue
        primary = _primary_arm(wt)
        pairs = {p.baseline: p for p in compared_pairs(wt, group)}
        order = sorted(wt.arms, key=lambda a: (a != primary, not M.is_candidate(a), a))
        for i, arm in enumerate(order):
            row = _arm_row(wt, arm, group, pairs.get(arm), grid)
            rows.append([title if i == 0 else "", *row])
    return header, rows, tunings


def _heldout_header(metric: str | None, grid: bool, margin: float) -> list[str]:
    """The columns of :func:`heldout_table`; the LR-grid ones only with a grid."""
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
    return [*header, "/".join(M.STATUSES), "final train loss"]


def _short(stat: M.Stat) -> str:
    """``mean ± std`` (the value alone for one seed, ``-`` for none)."""
    if stat.n == 0:
        return "-"
    return num(stat.mean) if stat.n == 1 else f"{num(stat.mean)} ± {num(stat.std, 2)}"


def _lr_cell(lr: float | None, runs: list[Result]) -> str:
    """The LR a point's runs started from; with a range test (``trial_range_test``),
    ``start → suggestion``, the median over seeds of the LR each sweep suggested."""
    suggested = [r["range_test"]["lr"] for r in runs if r.get("range_test")]
    cell = num(lr, 3)
    return f"{cell} → {num(statistics.median(suggested), 3)}" if suggested else cell


def _arm_row(
    wt: T.WorkloadTuning, arm: str, group: list[Result], pair: T.TunedPair | None, grid: bool
) -> list[str]:
    """One arm's row of :func:`heldout_table`, but the group's title."""
    tuning = wt.arms[arm]
    best = tuning.best
    at_best = [r for r in group if r.get("key") in best.keys]
    # the runs its grid points hold (not a default-LR run a grid point's run superseded)
    keys = {key for point in tuning.points for key in point.keys}
    runs = [r for r in group if M.arm_of(r) == arm and r.get("key") in keys]
    status = M.status_counts(runs).get(arm, {})
    delta = verdict = won = ""
    if pair is not None:
        if pair.diff.n:
            lo, hi = pair.diff.ci
            delta = f"{num(pair.diff.mean, 3)} [{num(lo, 3)}, {num(hi, 3)}]"
        won = f"{pair.wins}/{pair.ties}/{pair.losses}" + (
            f", {pair.unpaired} not compared" if pair.unpaired else "")
        verdict = _verdict_cell(pair)
    elif M.is_candidate(arm):
        verdict = "(candidate)"
    lr = _lr_cell(best.lr, at_best)
    if not tuning.equal_seeds:  # its LRs ran different seeds: picked on the shared ones
        lr += (f" (picked on the {len(tuning.shared)} seeds all its LRs ran)" if tuning.shared
               else " (its LRs share no seed: each judged on its own)")
    final = _short(best.final) + (f", {best.bad} div/fail" if best.bad else "")
    row = [arm, lr, final, _short(best.best), delta, won, verdict]
    if grid and len(tuning.points) == 1:  # no grid for this arm: nothing to say
        row += ["-", "-", "-"]
    elif grid:
        worst = tuning.worst
        if tuning.equal_seeds or not tuning.shared:
            at_worst = f"{_short(worst.final)} @ {num(worst.lr, 3)}" + (
                f", {worst.bad} div/fail" if worst.bad else "")
        else:  # ranked on the seeds all its LRs ran: say it there
            at_worst = (f"{num(worst.shared_mean)} @ {num(worst.lr, 3)} on the "
                        f"{len(tuning.shared)} shared seeds") + (
                f", {worst.shared_bad} div/fail" if worst.shared_bad else "")
        row += [
            _tolerance_cell(wt, tuning),
            at_worst,
            _short(tuning.other_seeds)
            + (f", {tuning.other_seeds_bad} div/fail" if tuning.other_seeds_bad else ""),
        ]
    return [*row, "/".join(str(status.get(k, 0)) for k in M.STATUSES),
            _short(_train_loss(at_best))]


def _tolerance_cell(wt: T.WorkloadTuning, tuning: T.ArmTuning) -> str:
    """``within/points (share)``, and how many points had a seed that diverged or failed
    (never within: a low share from them is a failure, not a narrow LR range); ``n/a``
    and why where the group has nothing to be within of."""
    if wt.why_no_reference:
        return f"n/a: {wt.why_no_reference}"
    cell = f"{tuning.within}/{len(tuning.points)} ({100 * tuning.tolerance:.0f}%)"
    bad = sum(p.shared_bad > 0 for p in tuning.points)
    return cell + (f", {bad} with a div/fail seed" if bad else "")


def _lone_divergences(p: T.TunedPair) -> str:
    """``greedy on 2 of 5 seeds``: the seeds where one side alone diverged."""
    parts = []
    if p.candidate_diverged:
        parts.append(f"{p.candidate} on {p.candidate_diverged} of {p.seeds} seeds")
    if p.baseline_diverged:
        parts.append(f"{p.baseline} on {p.baseline_diverged} of {p.seeds} seeds")
    return ", ".join(parts)


def verdict_lines(
    tunings: Sequence[T.WorkloadTuning], results: Sequence[Result]
) -> list[str]:
    """The plain-words verdict: where GreedyLR is behind, ahead, and what is undecided
    (the pairs of :func:`compared_pairs`), where one side alone diverged, and the
    workloads not compared (their trials disagree on the held-out metric, or none
    reported one)."""
    behind, ahead, unsure, unsure_behind, diverged = [], [], [], [], []
    short_seeds = spans = by_divergence = 0
    for wt in tunings:
        for p in compared_pairs(wt, results):
            lo, hi = p.diff.ci
            versus = p.baseline if p.candidate == _primary_arm(wt) else (
                f"{p.baseline} ({p.candidate} against it)")
            where = f"{workload_label(wt.workload)} vs {versus}"
            amount = f"{num(p.diff.mean, 3)} [{num(lo, 3)}, {num(hi, 3)}]"
            lone = _lone_divergences(p)
            if lone:
                diverged.append(f"{where} ({lone})")
                amount += f"; diverged alone: {lone}"
            verdict, _why = p.judgement
            if verdict == "worse":
                behind.append(f"{where} ({amount})")
            elif verdict == "better":
                ahead.append(f"{where} ({amount})")
            else:
                unsure.append(where)
                if lone:
                    by_divergence += 1
                elif p.diff.n < T.MIN_SEEDS:
                    short_seeds += 1
                else:
                    spans += 1
                if p.diff.n and p.diff.mean < 0:
                    unsure_behind.append(f"{where} ({amount})")
    total = len(behind) + len(ahead) + len(unsure)
    skipped = _not_compared(tunings, results)
    if not total:
        return ["No GreedyLR arm and baseline with a held-out metric to compare.", *skipped]
    lines = [
        f"**Verdict** on the held-out metric, GreedyLR against each baseline ({total} "
        f"comparison{'s' if total != 1 else ''}): **behind in {len(behind)}, ahead in "
        f"{len(ahead)}, inconclusive in {len(unsure)}** ({short_seeds} with fewer than "
        f"{T.MIN_SEEDS} seeds both finished, {spans} whose 95% CI spans 0, {by_divergence} "
        "where one side alone diverged on some seed; an inconclusive comparison is not a "
        "win).",
        "",
        "- GreedyLR loses on: " + ("; ".join(behind) if behind else "none") + ".",
    ]
    if unsure_behind:
        lines.append("- GreedyLR is behind on the mean, but inconclusively, on: "
                     + "; ".join(unsure_behind) + ".")
    lines.append("- GreedyLR wins on: " + ("; ".join(ahead) if ahead else "none") + ".")
    if diverged:
        lines.append("- One side alone diverged (a loss for it, and never called better): "
                     + "; ".join(diverged) + ".")
    unfed = unfed_arms(results)
    if unfed:
        lines.append("- Fed no held-out value (`trial.report(feed=...)`), so run without the "
                     "held-out rule they are built around: " + ", ".join(unfed) + ".")
    fed = fed_headlines(tunings, results)
    if fed:
        lines.append("- Judged on the very value fed to the schedule, so GreedyLR's held-out "
                     "rule was tuned on what it is judged on (a bias in favour of the "
                     "schedules that react to it; report the metric on data the feed does "
                     "not use): " + "; ".join(fed) + ".")
    return [*lines, *skipped]


def fed_headlines(
    tunings: Sequence[T.WorkloadTuning], results: Sequence[Result]
) -> list[str]:
    """``workload (`val_loss` equals `feed` at every evaluation)`` for each workload group
    whose headline metric is the value its trials fed the schedule
    (:func:`~greedylr.studies.execution.headline_is_fed`, in any of its trials): read from
    the stored evaluations, so ``greedylr report`` says it as ``compare`` does."""
    out = []
    for wt in tunings:
        if wt.metric is None:
            continue
        if any(T.group_of(r) == wt.group and headline_is_fed(wt.metric, r.get("metrics") or [])
               for r in results):
            what = ("`feed` is the only metric reported" if wt.metric == FEED
                    else f"`{wt.metric}` equals `feed` at every evaluation")
            out.append(f"{workload_label(wt.workload)} ({what})")
    return out


def _not_compared(tunings: Sequence[T.WorkloadTuning], results: Sequence[Result]) -> list[str]:
    """Lines for the workload groups of ``results`` the summary does not compare: their
    trials disagree on the held-out metric, or none of them reported one."""
    lines = [f"- Not compared, {workload_label(wt.workload)}: {wt.problem}."
             for wt in tunings if wt.problem]
    shown = {wt.group for wt in tunings}
    silent: dict[tuple[Any, ...], list[Result]] = defaultdict(list)
    for r in results:
        if T.group_of(r) not in shown:
            silent[T.group_of(r)].append(r)
    for group, runs in sorted(silent.items(), key=lambda kv: repr(kv[0])):
        counts = Counter(str(r.get("status", "failed")) for r in runs)
        statuses = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        lines.append(f"- Not compared, {workload_label(str(group[1]))}: none of its "
                     f"{len(runs)} trials reported a held-out metric ({statuses}).")
    return lines


def unfed_arms(results: Sequence[Result]) -> list[str]:
    """The arms of a user's function whose schedule reacts to a held-out value and that
    ran, in at least one trial, without ever being fed one
    (:func:`~greedylr.studies.schedules.fed_nothing`)."""
    from greedylr.studies.schedules import fed_nothing

    return sorted({
        M.arm_of(r) for r in results
        if r["status"] == "ok" and fed_nothing(r["spec"]["workload"], r["spec"]["schedule"],
                                               r["spec"]["settings"], r["metrics"])})


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
        "best value seen at any evaluation), mean ± std over the seeds that finished; "
        "GreedyLR minus each baseline paired by seed, the mean over the seeds both "
        "finished with its Student-t 95% CI (positive: GreedyLR better). The verdict is "
        "*better* or *worse* when that CI is clear of 0 with at least "
        f"{T.MIN_SEEDS} such seeds, else *inconclusive*: with no real difference it "
        "reads better or worse in 5% of studies at any number of seeds. A seed where one "
        "side alone diverged is a loss for that side (won/tied/lost count it), which is "
        "then never called better (*inconclusive*, said with the count); divergences "
        "alone decide (*worse* for the side that diverged) only when a two-sided sign "
        "test over the seeds says so at the 5% level, which takes at least 6 seeds all one "
        "way."
    )
    if any(M.scoring_of(r) for r in results):
        how += (
            " A baseline scored on an average of its weights (`workload_power_ema`) is "
            "paired with GreedyLR scored on the same average, when that arm ran."
        )
    if any(dict(M.arm_options_of(r)).get("trial_range_test") for r in results):
        how += (
            " A baseline started from an LR range test's suggestion (`trial_range_test`) "
            "is paired with GreedyLR started the same way, when that arm ran; its LR "
            "column reads `start → suggestion` (the LR the sweep started from, and the "
            "median over seeds of the LR it suggested)."
        )
    if grid:
        how += (
            " Every schedule ran at every LR of the grid and is shown **at its own best "
            "LR**: its grid point with the fewest seeds that diverged or failed, then the "
            "best mean final held-out metric over the others, counted on the seeds all its "
            "grid points ran (the LR column says so where they ran different seeds; the "
            "final column, how many seeds diverged or failed there). Choosing the best LR "
            "on the same seeds that then report it is optimistic, for every schedule "
            "alike: the tuned numbers are a best case; the column *LR picked on the other "
            "seeds* is the less flattering estimate (each seed at the LR best on the other "
            "seeds; it still reuses one held-out set). **LR tolerance**: the share of the "
            f"schedule's grid points whose mean final held-out metric is within {margin:.0%} "
            "of the best-tuned baseline's (its mean over the seeds that finished at its best "
            "LR). A point where a seed diverged or failed is not within, whatever its other "
            "seeds scored: the cell counts those points (a seed that fails at every LR "
            "leaves none within); it reads n/a where no baseline finished a seed at its best "
            "LR. The worst grid point says what a mistuned LR costs."
        )
    rows = [[r[0], f"**{r[1]}**" if M.is_candidate(r[1]) else r[1], *r[2:]] for r in rows]
    table = markdown_table(header, rows)
    return [*out, how, "", table, "", *verdict_lines(tunings, results), ""]


def heldout_section(
    results: list[Result], figures_dir: Path, *, margin: float
) -> list[str]:
    """:func:`heldout_summary` and, for each workload with an LR grid, its LR figure."""
    out = heldout_summary(results, margin=margin)
    for wt in T.tune(results, margin=margin):
        if not wt.grid:
            continue
        title = _group_title(wt, [r for r in results if T.group_of(r) == wt.group], True)
        fig = figures_dir / f"{slug(wt.group)}-lr.png"
        if lr_figure(wt, fig, f"{title}: final held-out {wt.metric} vs LR (bars: std "
                      "over seeds)"):
            out += [f"![final {wt.metric} vs LR]({figures_dir.name}/{fig.name})", ""]
    return out


def summary_table(
    results: list[Result], *, margin: float = T.DEFAULT_MARGIN
) -> tuple[list[str], list[list[str]]]:
    """The headline table of an A/B (``greedylr compare`` prints it): held-out first.

    The rows of :func:`heldout_table`: per workload group and arm, its own best LR, the
    final and best-so-far held-out metric there, GreedyLR's paired difference with its
    Student-t 95% CI, seeds won/tied/lost, the verdict, the LR tolerance and worst grid
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
    for line in verdict_lines(T.tune(results, margin=margin), results):
        console.print(line.replace("**", ""))

"""The report's PNG figures: loss and LR curves, final metric per seed, label shares, LR
sweeps. Each is drawn on its own Agg canvas (:func:`greedylr.plot.new_figure`), so writing
a report never changes matplotlib's global backend."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from greedylr.plot import new_figure
from greedylr.studies import metrics as M
from greedylr.studies import tuning as T
from greedylr.studies.metrics import Result

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "arm_color",
    "curves_figure",
    "distribution_figure",
    "labels_figure",
    "lr_figure",
]


def _figure(size: tuple[float, float]) -> Figure:
    """A report figure of ``size`` inches at 110 dpi."""
    return new_figure(size=size, dpi=110, what="a report")


def arm_color(arm: str, arms: Sequence[str]) -> Any:
    """GreedyLR arms in reds (``greedy`` crimson), baselines in tab10 without its red."""
    from matplotlib import colormaps

    if M.is_candidate(arm):
        return "crimson" if arm == "greedy" else colormaps["Reds"](0.45 + 0.5 * (hash(arm) % 7) / 7)
    others = [a for a in arms if not M.is_candidate(a)]
    # tab10 without its red (index 3): red is GreedyLR's
    palette = (0, 1, 2, 4, 5, 6, 7, 8, 9)
    return colormaps["tab10"](palette[others.index(arm) % 9 if arm in others else 0])


def curves_figure(arms: dict[str, dict[int, Result]], path: Path, title: str) -> None:
    """Median smoothed loss per arm (band: min-max over seeds), median LR beneath."""
    fig = _figure((8, 5.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.4]})
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
        color = arm_color(arm, names)
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
    fig.savefig(path)


def distribution_figure(
    arms: dict[str, dict[int, Result]], path: Path, title: str, metric: str, higher: bool
) -> bool:
    """Every seed's final held-out metric per arm, with the mean; False if none."""
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
    fig = _figure((max(4.5, 0.9 * len(names) + 2), 3.6))
    ax = fig.subplots()
    rng = np.random.default_rng(0)
    for i, arm in enumerate(names):
        ys = values[arm]
        if not ys:
            continue
        xs = i + rng.uniform(-0.12, 0.12, len(ys))
        ax.scatter(xs, ys, s=18, color=arm_color(arm, names), alpha=0.8, zorder=3)
        ax.hlines(np.mean(ys), i - 0.3, i + 0.3, color="black", lw=1.5, zorder=4)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"final {metric} ({'higher' if higher else 'lower'} is better)")
    ax.set_title(textwrap.fill(title, 60), fontsize=8)  # narrow figure: wrap, never clip
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path)
    return True


def labels_figure(per_baseline: dict[str, M.LabelTable], path: Path, title: str) -> None:
    """Stacked label shares (yes, yes*, no*, no) per baseline."""
    names = sorted(per_baseline)
    colors = {"yes": "#1a9850", "yes*": "#a6d96a", "no*": "#fdae61", "no": "#d73027"}
    fig = _figure((max(4.5, 0.8 * len(names) + 2.5), 3.6))
    ax = fig.subplots()
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
    fig.savefig(path)


def lr_figure(wt: T.WorkloadTuning, path: Path, title: str) -> bool:
    """Final held-out metric against the LR (log x), one line per arm, seed spread as
    error bars (std over seeds); False if no arm has a finite point.

    When the arms ran different LR sets (Prodigy's ``lr`` is a multiplier of its own
    step size), x is each arm's LR over its grid's geometric centre.
    """
    names = sorted(wt.arms, key=lambda a: (not M.is_candidate(a), a))
    grids = {tuple(p.lr for p in wt.arms[a].points) for a in names}
    relative = len(grids) > 1
    fig = _figure((9, 4.2))
    ax = fig.subplots()
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
        ax.errorbar(xs, ys, yerr=err, color=arm_color(arm, names), capsize=3, marker="o",
                    ms=4, lw=2.2 if M.is_candidate(arm) else 1.3, label=label)
        drawn = True
    if not drawn:
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
    fig.savefig(path)
    return True

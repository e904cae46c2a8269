"""The figures of the robustness report, drawn from the stored tables and traces.

Every figure is drawn on its own canvas (:func:`greedylr.plot.new_figure`): making the
report never touches pyplot or the global matplotlib backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from greedylr.evidence.robustness.comparisons import paired_ratio
from greedylr.evidence.robustness.recovery import damaged
from greedylr.evidence.robustness.tables import Table
from greedylr.plot import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["draw_figures"]


def _figure(size: tuple[float, float]) -> Figure:
    """A blank figure laid out by :meth:`Figure.tight_layout` once drawn (see :func:`_save`),
    as the study's figures always were."""
    figure = new_figure(size=size, what="the robustness report")
    figure.set_layout_engine(None)
    return figure


def _save(figure: Figure, figs: Path, name: str) -> str:
    figure.tight_layout()
    figure.savefig(figs / f"{name}.png", dpi=110)
    return f"figures/{name}.png"


def _final_loss_vs_cosine(figs: Path, runs: Table, schedules: Sequence[str]) -> str:
    """Final loss relative to cosine, per schedule, neural and analytic."""
    fig = _figure((12, 4.5))
    axes = fig.subplots(1, 2, sharey=False)
    for ax, kind in zip(axes, ("neural", "analytic")):
        data = [np.log10(np.maximum(paired_ratio(runs, s, mask=runs["kind"] == kind), 1e-6))
                for s in schedules]
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(schedules) + 1), schedules, rotation=35, ha="right")
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        ax.set_title(f"{kind}: final held-out loss / cosine's (same family, condition, seed)")
        ax.set_ylabel("log10 ratio (below 0: better than cosine)")
    return _save(fig, figs, "final_loss_vs_cosine")


def _recovery_steps(figs: Path, runs: Table, events: Table, schedules: Sequence[str]) -> str:
    """Recovery steps after each damaging event: cumulative distribution per schedule."""
    run_sched = dict(zip(runs["run"].astype(int), runs["schedule"]))
    run_pf = dict(zip(runs["run"].astype(int), runs["perturb_family"]))
    hurt = damaged(events)
    fig = _figure((15, 4.2))
    axes = fig.subplots(1, 3, sharey=True)
    for ax, fam in zip(axes, ("periodic_spike", "random_spike", "shard_shift")):
        for s in schedules:
            sel = np.array([run_sched[int(r)] == s and run_pf[int(r)] == fam
                            for r in events["run"]]) & hurt
            if not sel.any():
                continue
            rec = events["recovery_steps"][sel]
            rec = np.where(np.isfinite(rec), rec, np.inf)
            xs = np.arange(0, 101)
            ax.plot(xs, [(rec <= x).mean() for x in xs], label=s,
                    lw=2.2 if s in ("greedy", "cosine") else 1.0)
        ax.set_title(f"{fam}: damaged events recovered within x steps", fontsize=10)
        ax.set_xlabel("steps after the perturbation")
    axes[0].set_ylabel("fraction of events")
    axes[-1].legend(fontsize=8, loc="lower right")
    return _save(fig, figs, "recovery_steps")


def _greedy_vs_cosine_grid(figs: Path, runs: Table) -> str:
    """Greedy against cosine: median log ratio by model family x perturbation family."""
    fams = list(dict.fromkeys(runs["family"]))
    pfs = list(dict.fromkeys(runs["perturb_family"]))
    grid = np.full((len(fams), len(pfs)), np.nan)
    for i, fam in enumerate(fams):
        for j, pf in enumerate(pfs):
            mask = (runs["family"] == fam) & (runs["perturb_family"] == pf)
            r = paired_ratio(runs, "greedy", mask=mask)
            if r.size:
                grid[i, j] = np.median(np.log10(np.maximum(r, 1e-6)))
    fig = _figure((8, 6))
    ax = fig.subplots()
    lim = max(0.05, float(np.nanmax(np.abs(grid))))
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(pfs)), pfs, rotation=30, ha="right")
    ax.set_yticks(range(len(fams)), fams)
    for i in range(len(fams)):
        for j in range(len(pfs)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{10 ** grid[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, label="median log10(greedy / cosine final loss)")
    ax.set_title("greedy vs cosine: median final-loss ratio (blue: greedy better)")
    return _save(fig, figs, "greedy_vs_cosine_grid")


_EXAMPLES = (("mlp", "periodic_spike@1"), ("multihead", "shard_shift@1"))
_EXAMPLE_SCHEDULES = ("greedy", "cosine", "transformers_greedy", "reduce_on_plateau")


def _trajectories(figs: Path, runs: Table, traces: Table) -> str:
    """Example trajectories of seed 0: probe loss (perturbed steps in red) and LR."""
    row = {int(r): i for i, r in enumerate(traces["run"])}
    fig = _figure((13, 6.5))
    axes = fig.subplots(2, 2, sharex=True)
    for col, (fam, pert) in enumerate(_EXAMPLES):
        for s in _EXAMPLE_SCHEDULES:
            sel = ((runs["family"] == fam) & (runs["perturbation"] == pert)
                   & (runs["schedule"] == s) & (runs["seed"] == 0))
            if not sel.any() or int(runs["run"][sel][0]) not in row:
                continue
            i = row[int(runs["run"][sel][0])]
            probe = traces["probe"][i].astype(float)
            steps = np.nonzero(np.isfinite(probe))[0]
            axes[0, col].plot(steps, probe[steps], label=s)
            axes[1, col].plot(traces["lr"][i].astype(float), label=s)
            for t in np.nonzero(traces["corrupt"][i])[0]:
                axes[0, col].axvline(t, color="red", alpha=0.08)
        axes[0, col].set_title(f"{fam}, {pert}, seed 0: held-out probe loss")
        axes[0, col].set_yscale("log")
        axes[1, col].set_yscale("log")
        axes[1, col].set_title("learning rate")
        axes[1, col].set_xlabel("step")
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(fontsize=8)
    return _save(fig, figs, "trajectories")


def draw_figures(out: Path, runs: Table, events: Table, schedules: Sequence[str]) -> list[str]:
    """Draw every figure into ``out/figures/``; their paths relative to ``out``."""
    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    made = [_final_loss_vs_cosine(figs, runs, schedules),
            _recovery_steps(figs, runs, events, schedules),
            _greedy_vs_cosine_grid(figs, runs)]
    traces_path = out / "traces.npz"
    if traces_path.exists():
        with np.load(traces_path) as traces:
            made.append(_trajectories(figs, runs, dict(traces)))
    return made

"""Round 7's fresh workloads: each one's LR, chosen by cosine alone before any GreedyLR run.

For every fresh workload, cosine (told the budget, the held-out protocol's split
evaluation) at 0.1x, 0.316x, 1x, 3.16x and 10x a conventional LR for its optimizer,
seed 0; the LR with the best final held-out metric becomes the workload's ``lr``. Where
the best is at an end of the grid, the grid moves 10x that way (the workload's ``lr``
then is the new centre) and runs again, until the best is inside. No GreedyLR arm runs
here: the split stays unseen by the candidate.

    python results/defaults/round7/calibrate.py runs/r7/calibrate [WORKLOAD ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from greedylr.evidence import workloads
from greedylr.evidence.defaults import FRESH_WORKLOADS
from greedylr.evidence.suites import LR_GRID_FACTORS
from greedylr.studies.runner import run_trials
from greedylr.studies.store import load_results
from greedylr.studies.trial import TrialSpec


def specs(names: list[str]) -> list[TrialSpec]:
    out = []
    for name in names:
        w = workloads.get(name)
        for factor in LR_GRID_FACTORS:
            out.append(TrialSpec.make(
                study="round7_calibrate", workload=name, schedule="cosine",
                optimizer=w.optimizer, seed=0, steps=w.steps, lr=w.lr * factor,
                warmup=w.warmup, eval_every=max(1, w.steps // 10),
                settings={"workload_feed_split": True},
            ))
    return out


def main(out: Path, names: list[str]) -> None:
    run_trials(specs(names), out, jobs=2, progress=True)
    for name in names:
        w = workloads.get(name)
        rows = sorted(
            (r["spec"]["lr"], r["metrics"][-1][w.metric], r["wall_time"])
            for r in load_results(out)
            if r["spec"]["workload"] == name
            and round(r["spec"]["lr"] / w.lr, 3) in LR_GRID_FACTORS
        )
        best = (max if w.higher_is_better else min)(rows, key=lambda row: row[1])
        print(f"{name}: " + ", ".join(f"{lr:.3g} -> {m:.4f}" for lr, m, _ in rows)
              + f"; best {best[0]:.3g}; {rows[0][2]:.1f} s a run")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:] or list(FRESH_WORKLOADS))

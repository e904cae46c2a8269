"""The small-model headline (the paper's labels on training loss, against the paper's 4
baselines and all 10) and GreedyLR's held-out rank, from ``trials.csv`` alone; with a
folder of greedy trial results, their rows replace the greedy rows first (how the 0.2
headline was computed without the other arms' trial files). Usage::

    python headline_from_csv.py TRIALS_CSV [GREEDY_RESULTS_DIR]
"""

import csv
import sys
from collections import defaultdict
from typing import Any

import numpy as np

from greedylr.studies import metrics as M

PAPER = ("linear", "cosine", "polynomial", "constant_warmup")
STAGES = ("10", "50", "100")


def load(path: str, greedy_dir: str | None) -> list[dict[str, Any]]:
    """The CSV rows, the greedy ones replaced by ``greedy_dir``'s results (6 digits, as
    the CSV stores them, so that ties stay ties)."""
    rows = list(csv.DictReader(open(path)))
    if greedy_dir is None:
        return rows
    from greedylr.studies.runner import load_results

    rows = [r for r in rows if r["schedule"] != "greedy"]
    for res in load_results(greedy_dir):
        s, final = res["spec"], M.final_metric(res)
        losses = {f"loss_{f}": f"{M.loss_at(res, int(f) / 100):.6g}" for f in STAGES}
        rows.append({"workload": s["workload"], "optimizer": s["optimizer"],
                     "schedule": "greedy", "seed": str(s["seed"]), "steps": str(s["steps"]),
                     "metric": M.metric_name(res)[0], **losses,
                     "final_metric": "" if final is None else f"{final:.6g}"})
    return rows


def labels(by: dict[Any, dict[str, dict[str, Any]]], bases: tuple[str, ...] | None) -> str:
    """The paper's table (absolute threshold 0.1) over every setting, seed and stage."""
    counts: dict[str, int] = defaultdict(int)
    stage_no: dict[str, int] = defaultdict(int)
    stage_n: dict[str, int] = defaultdict(int)
    for arms in by.values():
        greedy = arms.get("greedy", {})
        for base, runs in arms.items():
            if base == "greedy" or (bases and base not in bases):
                continue
            for seed in set(greedy) & set(runs):
                for f in STAGES:
                    delta = float(runs[seed][f"loss_{f}"]) - float(greedy[seed][f"loss_{f}"])
                    label = M.label(delta, 0.1)
                    counts[label] += 1
                    stage_n[f] += 1
                    stage_no[f] += label == "no"
    n = sum(counts.values())

    def pct(*names: str) -> str:
        return f"{100 * sum(counts[x] for x in names) / n:.2f}%"

    at = " / ".join(f"{100 * (stage_n[f] - stage_no[f]) / stage_n[f]:.2f}" for f in STAGES)
    return (f"as good or better {pct('yes', 'yes*', 'no*')}, better {pct('yes', 'yes*')}, "
            f"clearly better {pct('yes')}, worse {pct('no')}, as good or better at "
            f"10/50/100% {at}% ({n} comparisons)")


def main() -> None:
    rows = load(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    by: dict[Any, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        by[(r["workload"], r["optimizer"], r["steps"])][r["schedule"]][r["seed"]] = r
    print("against the paper's 4 baselines:", labels(by, PAPER))
    print("against all 10 other schedules:", labels(by, None))
    print("\n| workload | optimizer | metric | GreedyLR | best schedule | best | GreedyLR's rank |")
    print("|---|---|---|---|---|---|---|")
    for (workload, optimizer, _), arms in sorted(by.items()):
        metric = next(iter(arms["greedy"].values()))["metric"]
        higher = metric not in ("rmse", "perplexity", "loss")
        means = {a: float(np.mean([float(r["final_metric"]) for r in runs.values()]))
                 for a, runs in arms.items()}
        best = sorted(means, key=lambda a: -means[a] if higher else means[a])[0]
        g = means["greedy"]
        better = sum((v > g) if higher else (v < g) for v in means.values())
        ties = sum(v == g for a, v in means.items() if a != "greedy")
        print(f"| {workload} | {optimizer} | {metric} {'↑' if higher else '↓'} | {g:.4g} | "
              f"{best} | {means[best]:.4g} | {1 + better + ties / 2:g}/{len(means)} |")


if __name__ == "__main__":
    main()

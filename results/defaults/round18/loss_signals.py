"""Round 18, descriptive: can the training loss alone say that an LR is too large?

Where GreedyLR loses on the LR grid is 3.16x, where the loss still falls and the rule
raises a too-large LR (round 17). A rule could stop that climb only with a signal it can
compute online from the loss. This reads the cosine arm of stored LR-grid runs (cosine's
LR is 0.79-0.98x its initial value over the window read), computes candidate signals
over 10-30% of each run (where the rule's climb starts), and asks how well one threshold
separates the LRs above a workload's best-tuned cosine LR from the rest:

- ``noise``: the root mean square of the one-step prediction error of an EMA (span 50),
  over the EMA's level (the scale of ``noise_threshold``'s standard error);
- ``z``: the EMA's fall over the window in units of that noise (progress over noise);
- ``ac1``: the lag-1 autocorrelation of those prediction errors (an oscillating loss
  has it negative);
- ``up``: the share of steps on which the raw loss rose.

For each signal: the area under the ROC curve pooled over every workload and LR (1.0 or
0.0: one threshold separates them; 0.5: none does), the balanced accuracy of its best
single threshold (either direction), and the share of workloads where it rises with the
LR at every grid step (a signal that orders LRs within a workload, but needs that
workload's other LRs to be read).

    python results/defaults/round18/loss_signals.py STORED_GRID.json ...

With ``--climb``, each argument is ``FILE=ARM`` (a stored grid and the GreedyLR arm to
read in it, as ``arm_of`` names it): by grid position, how often that arm's runs saw a
worse held-out value (``eval_decrease`` events) and how high their LR peaked before the
final cooldown, over the LR they were given.
"""
from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

SPAN = 50
SIGNALS = ("noise", "z", "ac1", "up")


def signals(losses: list[float | None]) -> dict[str, float]:
    """The signals over 10-30% of a run's observed losses."""
    n = len(losses)
    lo, hi = n // 10, 3 * n // 10
    alpha, ema, errors, levels = 2.0 / (SPAN + 1), None, [], []
    start_level = end_level = math.nan
    for i, x in enumerate(losses):
        if x is None or not math.isfinite(x):
            continue
        if ema is not None and lo <= i < hi:
            errors.append(x - ema)
            levels.append(ema)
        ema = x if ema is None else ema + alpha * (x - ema)
        if i == lo:
            start_level = ema
        if i < hi:
            end_level = ema
    e = np.asarray(errors)
    if len(e) < 10:
        return dict.fromkeys(SIGNALS, math.nan)
    rms = float(np.sqrt(np.mean(e * e)))
    raw = np.asarray([x for x in losses[lo:hi] if x is not None and math.isfinite(x)])
    return {
        "noise": rms / float(np.mean(np.abs(levels))),
        "z": (start_level - end_level) / rms,
        "ac1": float(np.sum(e[1:] * e[:-1]) / np.sum(e * e)),
        "up": float(np.mean(np.diff(raw) > 0)),
    }


def auc(scores: list[float], labels: list[bool]) -> float:
    """P(a too-large LR scores above a right or too-small one), ties counted half."""
    pos = [s for s, y in zip(scores, labels) if y and math.isfinite(s)]
    neg = [s for s, y in zip(scores, labels) if not y and math.isfinite(s)]
    if not pos or not neg:
        return math.nan
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def best_threshold(scores: list[float], labels: list[bool]) -> float:
    """The balanced accuracy of the best single threshold, in either direction."""
    pairs = [(s, y) for s, y in zip(scores, labels) if math.isfinite(s)]
    n_pos = sum(y for _, y in pairs)
    n_neg = len(pairs) - n_pos
    best = 0.5
    for t, _ in pairs:
        tpr = sum(s >= t and y for s, y in pairs) / n_pos
        tnr = sum(s < t and not y for s, y in pairs) / n_neg
        best = max(best, (tpr + tnr) / 2, 1 - (tpr + tnr) / 2)
    return best


def main(paths: list[str]) -> None:
    from greedylr.studies.metrics import arm_of
    from greedylr.studies.tuning import final_heldout_loss

    points: list[tuple[str, float, dict[str, float], bool]] = []
    for path in paths:
        runs = [r for r in json.loads(Path(path).read_text())
                if arm_of(r) == "cosine" and r["status"] == "ok"]
        by: dict[str, dict[float, list[Any]]] = defaultdict(lambda: defaultdict(list))
        for r in runs:
            by[r["spec"]["workload"]][float(r["spec"]["lr"])].append(r)
        for workload, lrs in by.items():
            finals = {lr: float(np.mean([final_heldout_loss(r) for r in rs]))
                      for lr, rs in lrs.items()}
            best = min(finals, key=lambda lr: finals[lr] if math.isfinite(finals[lr]) else math.inf)
            for lr, rs in sorted(lrs.items()):
                each = [signals(r["losses"]) for r in rs]
                mean = {k: float(np.nanmean([s[k] for s in each])) for k in SIGNALS}
                points.append((workload, lr, mean, lr > best))
    labels = [p[3] for p in points]
    workloads = sorted({p[0] for p in points})
    print(f"{len(points)} workload-LR points on {len(workloads)} workloads, "
          f"{sum(labels)} above the best-tuned cosine LR")
    for k in SIGNALS:
        rising = 0
        for w in workloads:
            values = [p[2][k] for p in points if p[0] == w]  # in LR order
            rising += all(b > a for a, b in pairwise(values))
        scores = [p[2][k] for p in points]
        print(f"{k:6s} pooled AUC {auc(scores, labels):.2f}   best threshold's balanced "
              f"accuracy {best_threshold(scores, labels):.2f}   rises with the LR on "
              f"{rising} of {len(workloads)} workloads")


def climb(pairs: list[str]) -> None:
    from greedylr.studies.metrics import arm_of

    decreases: dict[int, list[int]] = defaultdict(list)
    peaks: dict[int, list[float]] = defaultdict(list)
    for pair in pairs:
        path, arm = pair.split("=", 1)
        runs = [r for r in json.loads(Path(path).read_text()) if arm_of(r) == arm]
        grid: dict[str, set[float]] = defaultdict(set)
        for r in runs:
            grid[r["spec"]["workload"]].add(float(r["spec"]["lr"]))
        for r in runs:
            lr = float(r["spec"]["lr"])
            position = sorted(grid[r["spec"]["workload"]]).index(lr)
            decreases[position].append(sum(e["kind"] == "eval_decrease"
                                           for e in r.get("events") or []))
            before_cooldown = r["lrs"][: int(0.8 * len(r["lrs"]))]
            peaks[position].append(max(before_cooldown) / lr)
    for position in sorted(decreases):
        d = decreases[position]
        print(f"grid position {position}: {len(d)} runs, worse held-out values per run median "
              f"{np.median(d):.0f} mean {np.mean(d):.2f}, peak LR over the given one median "
              f"{np.median(peaks[position]):.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--climb"]:
        climb(sys.argv[2:])
    else:
        main(sys.argv[1:])

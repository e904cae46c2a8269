"""Round 19, descriptive: what a deliberate LR change shows (``round19/lr_probe.py``).

For every probed grid run and its unprobed twin (the same workload, LR and seed, so the
same batches: the losses agree until the probe acts), three readings of the probe's
``LENGTH`` observations, each relative to the loss before it:

- ``online``: what a rule could compute alone: the probe window's mean loss against the
  window before it, less the change between the two windows before that (the trend);
- ``paired``: the probe window against the same window of the twin, which no rule has:
  the probe's true effect, the best any probe statistic could do;
- ``after``: the twin comparison over the ``LENGTH`` observations after the probe.

Scored against the label the grid gives each point: its LR above the best-tuned cosine's
(``down``) or below it (``up``), as round 18's ``loss_signals.py`` scored the passive
signals, by AUC (1: the statistic ranks every such point above the rest) and by the
median reading at each grid position.

    python results/defaults/round19/probe_signal.py ARM FILE... (the probe files)
        --stored DIR (the folder of the unprobed twins and cosine, round19's grid_SPLIT.json)
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from greedylr.studies.tuning import final_heldout_loss


def _auc(scores: list[float], labels: list[bool]) -> float:
    """P(a positive outranks a negative), ties half."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    s = r["spec"]
    return s["study"], s["workload"], s["lr"], s["seed"]


def _readings(probe: list[float], twin: list[float], length: int) -> dict[str, float] | None:
    start = next((i for i, (a, b) in enumerate(zip(probe, twin)) if a != b), None)
    if start is None or start < 2 * length or start + 2 * length > len(probe):
        return None
    p, t = np.asarray(probe, dtype=float), np.asarray(twin, dtype=float)
    m2, m1 = p[start - 2 * length:start - length].mean(), p[start - length:start].mean()
    m0 = p[start:start + length].mean()
    t0 = t[start:start + length].mean()
    after_p, after_t = (p[start + length:start + 2 * length].mean(),
                        t[start + length:start + 2 * length].mean())
    return {"online": (m0 - m1) / abs(m1) - (m1 - m2) / abs(m2),
            "paired": (m0 - t0) / abs(t0),
            "after": (after_p - after_t) / abs(after_t)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("arm", choices=("down", "up"))
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--stored", type=Path, required=True)
    parser.add_argument("--length", type=int, default=25)
    args = parser.parse_args()
    twins: dict[tuple[Any, ...], dict[str, Any]] = {}
    cosine: dict[tuple[Any, ...], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for path in args.stored.glob("grid_*.json"):
        for r in json.loads(path.read_text()):
            if r["spec"]["schedule"] == "greedy":
                twins[_key(r)] = r
            else:
                cosine[_key(r)[:2]][r["spec"]["lr"]].append(final_heldout_loss(r))
    rows = []
    for path in args.files:
        for r in json.loads(path.read_text()):
            if r["spec"]["schedule"] != "greedy" or "eps" not in r["spec"]["settings"]:
                continue
            twin = twins[_key(r)]
            reading = _readings(r["losses"], twin["losses"], args.length)
            if reading is None:
                continue
            grid = cosine[_key(r)[:2]]
            best_lr = min(grid, key=lambda lr: np.mean(grid[lr]))
            lrs = sorted(grid)
            lr = r["spec"]["lr"]
            label = lr > best_lr if args.arm == "down" else lr < best_lr
            change = final_heldout_loss(r) / final_heldout_loss(twin)
            rows.append((lrs.index(lr), label, reading, change))
    labels = [row[1] for row in rows]
    print(f"{args.arm}: {len(rows)} probed runs, {sum(labels)} labelled "
          f"{'above' if args.arm == 'down' else 'below'} the best-tuned cosine's LR")
    for name in ("online", "paired", "after"):
        # the score is the drop: a too-large LR should fall more when lowered (down),
        # a too-small one more when raised (up)
        scores = [-row[2][name] for row in rows]
        by_position = defaultdict(list)
        for row in rows:
            by_position[row[0]].append(row[2][name])
        medians = " / ".join(f"{np.median(v):+.3f}" for _, v in sorted(by_position.items()))
        print(f"  {name:7s} AUC {_auc(scores, labels):.2f}  median by LR (0.1x..10x) {medians}")
    changes = defaultdict(list)
    for row in rows:
        changes[row[0]].append(row[3])
    print("  the probe's cost, final held-out vs twin, median by LR: "
          + " / ".join(f"{np.median(v):.3f}" for _, v in sorted(changes.items())))


if __name__ == "__main__":
    main()

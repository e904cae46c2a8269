"""Round 20 pilot, descriptive: does the held-out loss keep pace with the training loss?

Round 19's names classifier lost the final held-out metric because the rule climbed
while its held-out value still improved at every evaluation: the held-out value alone
said nothing in time. What it could have said is how *much* it improved: between two
evaluations the training loss fell far faster than the held-out loss (the model learnt
its training set, not the task). This reads, for every GreedyLR run (the package's
defaults) of the held-out protocol, at each evaluation after the first:

- ``train``: the relative fall of the rule's smoothed training loss since the last
  evaluation (the bias-corrected EMA the rule keeps, recomputed by the rule's own
  smoother from the run's losses);
- ``held``: the relative fall of the held-out value the rule is fed (``feed``: the loss
  on the fed half, the same loss function as the training loss);
- ``pace``: ``held / train`` where ``train > 0`` (1: the held-out loss keeps pace; 0: it
  stands still; below 0: it rises).

Per run it prints the paces in order and the run's final scored metric against
cosine's seed mean at the same LR (the loss a rule would want to avoid); and, over all
runs, how often a pace below each threshold is seen before 80% of the run in runs that
end worse than cosine by more than 1% against runs that do not::

    python results/defaults/round20/gap_signal.py RUNS_DIR_OR_JSON...
"""
from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.5)


def _load(paths: list[str]) -> list[dict[str, Any]]:
    from greedylr.studies.runner import load_results

    runs: list[dict[str, Any]] = []
    for p in map(Path, paths):
        runs += json.loads(p.read_text()) if p.is_file() else load_results(p)
    return [r for r in runs if r["status"] == "ok"]


def smoothed(losses: list[float]) -> list[float]:
    """The smoothed loss the rule (the package's defaults) holds after each step (index
    i: after step i + 1): its own smoother, fed the run's losses."""
    from greedylr import rule

    config = rule.GreedyConfig()
    state = rule.init(config, [1.0])
    return [rule.update(config, state, loss).smoothed for loss in losses]


def paces(run: dict[str, Any]) -> list[tuple[int, float, float, float | None]]:
    """(step, train fall, held-out fall, pace) at each evaluation after the first."""
    ema = smoothed(run["losses"])
    rows, last = [], None
    for m in run["metrics"]:
        if "feed" not in m:
            continue
        now = (m["step"], ema[m["step"] - 1], m["feed"])
        if last is not None:
            train = (last[1] - now[1]) / abs(last[1])
            held = (last[2] - now[2]) / abs(last[2])
            rows.append((now[0], train, held, held / train if train > 0 else None))
        last = now
    return rows


def _arm(run: dict[str, Any]) -> str:
    s = run["spec"]
    return s["schedule"] + ("" if set(s["settings"]) <= {"workload_feed_split"}
                            else json.dumps(s["settings"], sort_keys=True))


def main(paths: list[str]) -> None:
    runs = _load(paths)
    final: dict[tuple[str, str, Any], list[float]] = defaultdict(list)
    sign: dict[str, int] = {}
    for r in runs:
        s = r["spec"]
        value = r["metrics"][-1][r["metric"]["name"]]
        final[(_arm(r), s["workload"], r["lr"])].append(value)
        sign[s["workload"]] = -1 if r["metric"]["higher_is_better"] else 1
    seen: dict[bool, list[list[float]]] = {True: [], False: []}
    for r in sorted(runs, key=lambda r: (r["spec"]["workload"], r["lr"], r["spec"]["seed"])):
        s = r["spec"]
        if _arm(r) != "greedy":
            continue
        cos = final.get(("cosine", s["workload"], r["lr"]))
        if not cos:
            continue
        value = r["metrics"][-1][r["metric"]["name"]]
        ratio = (value / statistics.fmean(cos)) ** sign[s["workload"]]
        lost = ratio > 1.01
        rows = paces(r)
        early = [p for step, _, _, p in rows if step <= 0.8 * s["steps"] and p is not None]
        seen[lost].append(early)
        text = " ".join("  -  " if p is None else f"{p:5.2f}" for *_, p in rows)
        print(f"{s['workload']:26s} lr {r['lr']:<9.3g} seed {s['seed']} "
              f"{'LOST' if lost else 'ok  '} {ratio:6.3f} | {text}")
    print()
    for t in THRESHOLDS:
        share = {k: sum(any(p < t for p in e) for e in v) / max(len(v), 1) for k, v in seen.items()}
        print(f"pace < {t:.1f} before 80%: runs that lost {100 * share[True]:.0f}% "
              f"({len(seen[True])}), the others {100 * share[False]:.0f}% ({len(seen[False])})")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Round 21, descriptive readings of stored runs.

- ``climb ARM FILE...``: on LR-grid results files, by position on the grid (the smallest
  LR first), the median LR of ``ARM``'s runs over the LR they were given at 10%, 30%, 50%
  and 80% of the run, and the mean count of each kind of event by mid-run.
- ``selected RUNS...``: under the held-out protocol (folders or results files, the split
  read from each name as ``round20/pooled.py`` reads it), per arm and workload, the
  reported value of the checkpoint selected on the fed half at the end of the run
  (:func:`greedylr.evidence.defaults._selected_until`), seed means, as good as cosine's
  or not (:func:`greedylr.evidence.defaults._as_good`), and the count pooled::

- ``versus ARM FILE... [--against BASE]``: on LR-grid results files, each grid point
  where ``ARM`` and cosine (or ``BASE``, which may be in another file of the same split)
  both ran (the same LR), split by whether ``ARM``'s final held-out loss (seed mean) is
  more than 2% worse than the other's there, within 2%, or more than 2% better; by
  position on the grid, the median of ``ARM``'s mean LR over the other's over 0-50%,
  50-80% and 80-100% of the run. ``FILE=ARM`` names another arm for that file::

    python results/defaults/round21/readings.py climb 'greedy' FILE...
    python results/defaults/round21/readings.py selected RUNS...
    python results/defaults/round21/readings.py versus 'greedy' FILE[=ARM]... [--against BASE]
"""
from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "round20"))

import pooled

STAGES = (0.1, 0.3, 0.5, 0.8)


def climb(arm: str, paths: list[str]) -> None:
    from greedylr.studies import metrics as M
    from greedylr.studies.tuning import group_of

    lrs: dict[int, list[list[float]]] = defaultdict(list)
    events: dict[int, Counter[str]] = defaultdict(Counter)
    for path in paths:
        runs: list[dict[str, Any]] = json.loads(Path(path).read_text())
        grid: dict[Any, set[float]] = defaultdict(set)
        for r in runs:
            grid[group_of(r)].add(float(r["spec"]["lr"]))
        for r in runs:
            if M.arm_of(r) != arm:
                continue
            i = sorted(grid[group_of(r)]).index(float(r["spec"]["lr"]))
            n = int(r["spec"]["steps"])
            lrs[i].append([r["lrs"][int(q * n) - 1] / float(r["lr"]) for q in STAGES])
            events[i].update(e["kind"] for e in r["events"] if e["step"] <= n / 2)
    for i in sorted(lrs):
        runs_here = len(lrs[i])
        median = np.median(lrs[i], axis=0)
        print(f"position {i}: {runs_here} runs; LR over the given at "
              + ", ".join(f"{int(100 * q)}% {m:.2f}" for q, m in zip(STAGES, median))
              + "; events by mid-run per run: "
              + ", ".join(f"{k} {v / runs_here:.1f}" for k, v in sorted(events[i].items())))


def selected(paths: list[str]) -> None:
    from greedylr.evidence.defaults import _as_good, _selected_until
    from greedylr.studies import metrics as M

    counts: dict[str, list[bool]] = defaultdict(list)
    for split, runs in sorted(pooled._runs(paths).items()):
        by: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for r in runs:
            if r["status"] != "failed":
                by[M.arm_of(r)][r["spec"]["workload"]].append(r)
        for arm, workloads in sorted(by.items()):
            for workload, rs in sorted(workloads.items()):
                base = by["cosine"].get(workload)
                if arm == "cosine" or not base:
                    continue
                _, higher = M.metric_name(rs[0])
                value = float(np.mean([_selected_until(r, 1.0) for r in rs]))
                cos = float(np.mean([_selected_until(b, 1.0) for b in base]))
                good = _as_good(value, cos, higher)
                counts[arm].append(good)
                print(f"{split} {arm} {workload}: {value:.4g} against cosine's {cos:.4g}"
                      f"{'' if good else ' (worse)'}")
    for arm, goods in counts.items():
        print(f"{arm}: as good as cosine's selected checkpoint on {sum(goods)} of {len(goods)}")


Point = tuple[int, list[dict[str, Any]], list[dict[str, Any]]]


def paired_points(arm: str, paths: list[str], against: str = "cosine") -> list[Point]:
    """Every grid point where ``arm`` and ``against`` both ran, over every file (a grid
    point's runs of two arms may be in two files): its position on its grid (the smallest
    LR first), ``arm``'s runs there and ``against``'s. ``FILE=ARM`` names another arm for
    that file."""
    from greedylr.studies import metrics as M
    from greedylr.studies.tuning import group_of

    table: dict[Any, dict[str, dict[float, list[dict[str, Any]]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for item in paths:
        path, _, own = item.partition("=")
        for r in json.loads(Path(path).read_text()):
            name = M.arm_of(r)
            table[group_of(r)][arm if own and name == own else name][
                float(r["spec"]["lr"])].append(r)
    return [(i, arms[arm][lr], arms[against][lr])
            for arms in table.values() for i, lr in enumerate(sorted(arms[against]))
            if arms[arm].get(lr)]


def side_of(mine: list[dict[str, Any]], other: list[dict[str, Any]]) -> str:
    """``worse``, ``within`` or ``better``: ``mine``'s final held-out loss (seed mean)
    against ``other``'s, 2% either way."""
    from greedylr.studies.tuning import final_heldout_loss

    ratio = (np.mean([final_heldout_loss(r) for r in mine])
             / np.mean([final_heldout_loss(r) for r in other]))
    return "worse" if ratio > 1.02 else "better" if ratio < 1 / 1.02 else "within"


def versus(arm: str, paths: list[str], against: str = "cosine") -> list[Point]:
    """Prints the ``versus`` reading (the module's docstring); returns the grid points
    it paired (:func:`paired_points`)."""
    spans = ((0.0, 0.5), (0.5, 0.8), (0.8, 1.0))
    rows: dict[tuple[int, str], list[list[float]]] = defaultdict(list)

    def mean_lr(runs: list[dict[str, Any]], a: float, b: float) -> float:
        return float(np.mean([np.mean(r["lrs"][int(a * len(r["lrs"])):int(b * len(r["lrs"]))])
                              for r in runs]))

    points = paired_points(arm, paths, against)
    for i, mine, other in points:
        rows[i, side_of(mine, other)].append([mean_lr(mine, a, b) / mean_lr(other, a, b)
                                              for a, b in spans])
    for i in sorted({i for i, _ in rows}):
        print(f"position {i}: " + "; ".join(
            f"{side} {len(rows[i, side])}"
            + ("" if not rows[i, side] else f" (LR over {against}'s "
               + " / ".join(f"{m:.2f}" for m in np.median(rows[i, side], axis=0)) + ")")
            for side in ("worse", "within", "better")))
    return points


def _versus(argv: list[str]) -> None:
    against = "cosine"
    if "--against" in argv:
        at = argv.index("--against")
        against, argv = argv[at + 1], argv[:at] + argv[at + 2:]
    versus(argv[0], argv[1:], against)


if __name__ == "__main__":
    {"climb": lambda a: climb(a[0], a[1:]), "selected": selected,
     "versus": _versus}[sys.argv[1]](sys.argv[2:])

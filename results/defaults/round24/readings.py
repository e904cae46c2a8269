"""Round 24, descriptive: other readings of the stored range-test sweeps, and other ways
to combine the suggestion with the LR given, estimated without new runs.

Each grid point's stored sweep (rounds 22-23, 100 steps) is read again: the smoothed
minimum over 10 (``valley/10``, the package's), over 30 and over 100; the same with
lighter smoothing (EMA beta 0.9 and 0.95 instead of 0.98); fastai's ``valley`` (the
point two thirds down the longest falling stretch of the smoothed loss, the first 10%
and last 5 points skipped). Then, for ``valley/10``, the suggestion combined with the
grid point's LR: its geometric mean with it (weights 1/2 and 2/3), the move clipped to
a factor sqrt(10) or 10, and the point's LR kept unless the move exceeds sqrt(10) or
10. Each resulting LR is scored by interpolating, log-linearly in the LR, the seed-mean
final held-out loss of cosine and of ``ARM`` over every LR either was trained at on that
workload (the grid's five and every stored run at a suggestion; beyond them, the
nearest), over the best-tuned cosine's. The estimate reproduces the measured figures of
``valley/10`` exactly (its LRs were all trained at) and is only an estimate elsewhere.
Clipping to a factor of 10 scores well only because the grids are centred on the tuned
LR (a clip from 0.1x or 10x lands there)::

    python results/defaults/round24/readings.py ARM RANGE_DIR... -- FILE[=ARM]...

``RANGE_DIR``: folders with a round's ``range_tests.json``, ``range_cosine.json`` and
``range_greedy.json`` (rounds 22 and 23); ``FILE``: the grids, as round 22's script
takes them.
"""
from __future__ import annotations

import itertools
import json
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "round22"))

import range_test as R22
import signals

Run = dict[str, Any]
Curve = list[tuple[float, float]]


def _curves(arm: str, table: dict[str, Any], dirs: list[Path]) -> dict[str, dict[str, Curve]]:
    """Per schedule and workload: (log10 LR, seed-mean final held-out loss), sorted."""
    from greedylr.studies.tuning import final_heldout_loss

    curves = {}
    for schedule, key in (("cosine", "cosine"), ("greedy", arm)):
        values: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
        for workload, lrs in table[key].items():
            for lr, runs in lrs.items():
                values[workload][lr] += map(final_heldout_loss, runs)
        for folder in dirs:
            for run in json.loads((folder / f"range_{schedule}.json").read_text()):
                values[run["spec"]["workload"]][float(run["spec"]["lr"])].append(
                    final_heldout_loss(run))
        curves[schedule] = {w: sorted((math.log10(lr), statistics.fmean(v))
                                      for lr, v in lrs.items()) for w, lrs in values.items()}
    return curves


def _at(curve: Curve, lr: float) -> float:
    x = math.log10(lr)
    if x <= curve[0][0]:
        return curve[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if x <= x1:
            t = 0.0 if x1 == x0 else (x - x0) / (x1 - x0)
            return math.exp((1 - t) * math.log(y0) + t * math.log(y1))
    return curve[-1][1]


def _reading(losses: list[float], beta: float = 0.98, over: float = 10.0,
             fastai: bool = False) -> float:
    """A multiple of the point's LR."""
    from greedylr.range_test import RangeTest

    multiples = R22.multiples(max(R22.STEPS, len(losses)))
    test = RangeTest.read([1.0], multiples, losses, beta=beta, stop=R22.STOP)
    if not fastai:
        return test.best_multiplier / over
    smoothed = list(test.smoothed)
    first, last = R22.STEPS // 10, max(R22.STEPS // 10 + 2, len(smoothed) - 5)
    cut = smoothed[first:last]
    longest = [1] * len(cut)  # the longest falling stretch ending at each point
    start = end = 0
    for i in range(1, len(cut)):
        for j in range(i):
            if cut[i] < cut[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
            if longest[end] < longest[i]:
                end, start = i, i - longest[i]
    third = (end - start) / 3
    return multiples[first + start + int(third) + int(third / 2)]


READINGS: dict[str, dict[str, Any]] = {
    "valley/10 (the package's)": {}, "minimum/30": {"over": 30.0},
    "minimum/100": {"over": 100.0}, "beta 0.95, minimum/10": {"beta": 0.95},
    "beta 0.9, minimum/10": {"beta": 0.9}, "beta 0.9, minimum/30": {"beta": 0.9, "over": 30.0},
    "fastai valley": {"fastai": True}, "fastai valley, beta 0.9": {"fastai": True, "beta": 0.9},
}
COMBINED: dict[str, Callable[[float], float]] = {  # the suggestion's multiple -> the LR's
    "geometric mean with the LR given (1/2)": lambda m: m ** 0.5,
    "geometric mean with the LR given (2/3)": lambda m: m ** (2 / 3),
    "the move clipped to sqrt(10)": lambda m: min(max(m, 10 ** -0.5), 10 ** 0.5),
    "the move clipped to 10 (flattered by the grid)": lambda m: min(max(m, 0.1), 10.0),
    "no move within sqrt(10)": lambda m: 1.0 if 10 ** -0.5 <= m <= 10 ** 0.5 else m,
    "no move within 10": lambda m: 1.0 if 0.1 < m < 10 else m,
}


def main(arm: str, dirs: list[Path], files: list[str]) -> None:
    from greedylr.studies.tuning import final_heldout_loss

    table = signals.grid_runs(arm, files)
    cosine = {w: {lr: statistics.fmean(map(final_heldout_loss, v)) for lr, v in lrs.items()}
              for w, lrs in table["cosine"].items()}
    curves = _curves(arm, table, dirs)
    sweeps: dict[tuple[str, float], Run] = {}
    for folder in dirs:
        for run in json.loads((folder / "range_tests.json").read_text()):
            if run["spec"]["workload"] in cosine:
                sweeps[run["spec"]["workload"], float(run["spec"]["lr"])] = run
    rows: dict[str, Callable[[Run], float]] = {
        name: (lambda run, kw=kw: _reading(run["losses"], **kw)) for name, kw in READINGS.items()}
    rows |= {f"valley/10, {name}": (lambda run, f=f: f(_reading(run["losses"])))
             for name, f in COMBINED.items()}
    for schedule in ("greedy", "cosine"):
        for name, multiple in rows.items():
            by_position: list[list[float]] = [[] for _ in range(5)]
            for (workload, lr), run in sweeps.items():
                grid = sorted(cosine[workload])
                by_position[grid.index(lr)].append(
                    _at(curves[schedule][workload], lr * multiple(run))
                    / min(cosine[workload].values()))
            every = [r for rs in by_position for r in rs]
            print(f"then {schedule:6s} {name:48s} within 2% "
                  f"{100 * sum(r <= 1.02 for r in every) / len(every):3.0f}% median "
                  f"{statistics.median(every):.3f} by LR "
                  + " / ".join(f"{statistics.median(rs):.2f}" for rs in by_position))


if __name__ == "__main__":
    split = sys.argv.index("--")
    main(sys.argv[1], [Path(d) for d in sys.argv[2:split]], sys.argv[split + 1:])

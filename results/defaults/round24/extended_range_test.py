"""Round 24, descriptive: the LR range test's sweep, extended where it ends still falling.

Rounds 22 and 23 swept from 1e-4 to 1e2 times each grid point's LR in 100 steps. A sweep
whose smoothed loss is still at its lowest at the last step (50 of the 235) can only
suggest ten times the point, whatever the best LR is: from 0.1x, exactly the tuned LR
each grid is centred on, so those points' figures may flatter the test. What would a
sweep that goes on tell? This script extends every stored saturated sweep at the same
rate for up to 100 more steps, until the cut (seed 0; the first 100 losses must equal
the stored ones, or it stops), reads it with the package's
:class:`greedylr.RangeTest`, trains cosine and ``ARM`` (the package's defaults) from its
suggestion with the grid's seeds (round 22's ``exact``), and prints rounds 22-23's table
twice: with the stored suggestions, and with the extended sweeps' in place of the
saturated ones::

    python results/defaults/round24/extended_range_test.py OUT ARM STORED_SWEEPS... -- FILE[=ARM]...

``STORED_SWEEPS``: rounds 22 and 23's ``range_tests.json`` (their ``range_cosine.json``
and ``range_greedy.json`` beside them are the stored runs at the stored suggestions);
``FILE``: the grids, as round 22's script takes them.
"""
from __future__ import annotations

import json
import math
import statistics
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "round22"))

import range_test as R22
import signals

Run = dict[str, Any]
EXTEND = 100


def _reading(run: Run) -> Any:
    from greedylr.range_test import RangeTest

    return RangeTest.read([run["spec"]["lr"]], R22.multiples(len(run["losses"])), run["losses"],
                          beta=R22.BETA, stop=R22.STOP)


def _suggestion(run: Run) -> float:
    return float(_reading(run).suggested_multiplier)


def _saturated(run: Run) -> bool:
    return bool(_reading(dict(run, losses=run["losses"][:R22.STEPS])).saturated)


def extended_sweeps(out: Path, stored: list[Run]) -> list[Run]:
    """Every saturated stored sweep, run again for up to ``EXTEND`` more steps and cut
    where the package's reading cuts it."""
    path = out / "range_tests.json"
    if path.exists():
        return json.loads(path.read_text())
    again = [run for run in stored if _saturated(run)]
    out.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(2, initializer=R22._hooks, initargs=(R22.STEPS + EXTEND,)) as pool:
        runs = list(pool.map(R22._trial, [run["spec"] for run in again]))
    for run, old in zip(runs, again):
        if run["losses"][:R22.STEPS] != old["losses"]:
            raise SystemExit(f"{run['spec']['workload']} at {run['spec']['lr']}: the sweep's "
                             "first 100 losses differ from the stored ones")
        run["losses"] = next(  # what a range test keeps: up to the step that cut it
            (run["losses"][:n] for n in range(1, len(run["losses"]) + 1)
             if _reading(dict(run, losses=run["losses"][:n])).stopped), run["losses"])
    path.write_text(json.dumps(runs))
    return runs


def _trained(runs: list[Run]) -> dict[tuple[str, float], float]:
    from greedylr.studies.tuning import final_heldout_loss

    values: dict[tuple[str, float], list[float]] = defaultdict(list)
    for run in runs:
        values[run["spec"]["workload"], run["point"]].append(final_heldout_loss(run))
    return {key: statistics.fmean(v) for key, v in values.items()}


def _line(name: str, by_position: list[list[float]]) -> str:
    every = [r for rs in by_position for r in rs]
    return (f"{name:52s} within 2% {100 * sum(r <= 1.02 for r in every) / len(every):3.0f}% "
            f"median {statistics.median(every):.3f} by LR "
            + " / ".join(f"{statistics.median(rs):.2f}" if rs else "-" for rs in by_position)
            + f" ({len(every)} points)")


def main(out: Path, arm: str, stored_files: list[str], grid_files: list[str]) -> None:
    from greedylr.studies.tuning import final_heldout_loss

    table = signals.grid_runs(arm, grid_files)
    cosine = {w: {lr: statistics.fmean(map(final_heldout_loss, v)) for lr, v in lrs.items()}
              for w, lrs in table["cosine"].items()}
    stored = [run for f in stored_files for run in json.loads(Path(f).read_text())
              if run["spec"]["workload"] in cosine]
    extended = extended_sweeps(out, stored)
    moved = {(r["spec"]["workload"], float(r["spec"]["lr"])): r for r in extended}
    print(f"{len(moved)} of {len(stored)} stored sweeps end still falling; extended:")
    for (workload, lr), run in sorted(moved.items()):
        grid = sorted(cosine[workload])
        best = min(grid, key=cosine[workload].__getitem__)
        print(f"  {workload:32s} {lr / best:7.3g}x  {len(run['losses'])} steps, suggestion "
              f"{lr * _suggestion(run) / best:.3g}x of the best-tuned LR "
              f"(was {R22.HIGH / 10 * lr / best:.3g}x)")
    for schedule in ("cosine", "greedy"):
        before: dict[tuple[str, float], float] = {}
        for f in stored_files:
            before |= _trained(json.loads(
                (Path(f).parent / f"range_{schedule}.json").read_text()))
        after = before | _trained(R22.exact(out, extended, schedule, _suggestion))
        for name, values, only in (("stored sweeps", before, False),
                                   ("extended sweeps", after, False),
                                   ("stored, at the saturated points", before, True),
                                   ("extended, at the saturated points", after, True)):
            by_position: list[list[float]] = [[] for _ in range(5)]
            for run in stored:
                key = run["spec"]["workload"], float(run["spec"]["lr"])
                if only and key not in moved:
                    continue
                grid = sorted(cosine[key[0]])
                by_position[grid.index(key[1])].append(
                    values[key] / min(cosine[key[0]].values()))
            print(_line(f"range test, then {schedule}: {name}", by_position))
    beyond = sum(math.log10(lr * _suggestion(run))
                 > math.log10(max(cosine[w])) + 0.25
                 for (w, lr), run in moved.items())
    print(f"extended suggestions above the grid's top LR: {beyond} of {len(moved)}")


if __name__ == "__main__":
    split = sys.argv.index("--")
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:split], sys.argv[split + 1:])

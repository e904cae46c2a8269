"""Round 22, descriptive: what a user who cannot tune gets from an LR range test, the
tool they already have, against GreedyLR's tolerance of a badly chosen LR.

Lightning's ``Tuner.lr_find`` (and fastai's ``lr_find``; Smith 2017, arXiv 1506.01186)
trains 100 steps while the LR grows exponentially, smooths the loss (an EMA, beta 0.98,
bias-corrected), stops once the smoothed loss exceeds 4 times its best, suggests the LR
of the steepest fall of the smoothed loss (skipping the first 10 points and the last),
and restores the model. Here the fall is taken per point of the sweep, against the log
of the LR, as earlier Lightning releases did (``np.gradient(loss)``) and fastai's
``steep`` does: Lightning 2.6 takes it against the LR itself (``torch.gradient(losses,
spacing=[lrs])``), which on these sweeps picks the first point after the skip on every
workload tried (wine_mlp, five starting LRs), a suggestion that says nothing.

The sweep runs from every point of the grids in ``FILE`` (round 22: the thirteen seen
grids; round 23: the eleventh probe split's), seed 0, from 1e-4 to 1e2
times the point's LR (six decades; Lightning's default spans eight, from 1e-8 to 1), on
the workload's own batches and optimizer, the LR set before each optimizer step by a
global hook. Two suggestions: ``steep`` and ``valley/10`` (the LR of the smoothed loss's
minimum over ten, fastai's former ``lr_min``).

Each suggestion is snapped to the nearest LR of the point's grid (in decades; one
beyond the grid's ends takes the end, and is counted) and scored with the stored cosine
runs at that LR against the best-tuned cosine, beside what cosine and ``ARM`` get at the
point itself (stored runs too). ``valley/10`` is also measured exactly (``exact``):
cosine, and GreedyLR with the package's defaults, trained from the suggested LR itself
with the grid's seeds (one suggestion for both seeds, every run of the grid's length)::

    python results/defaults/round22/range_test.py OUT ARM FILE[=ARM]...
"""
from __future__ import annotations

import json
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import signals

Run = dict[str, Any]
STEPS, LOW, HIGH = 100, 1e-4, 1e2
BETA, STOP = 0.98, 4.0
SWEEP = [0]
LENGTH = [STEPS]  # the sweep's steps in this worker (round 24 goes on past STEPS)


class _Enough(Exception):
    """Stops a trial once the sweep's steps are done."""


def multiples(n: int) -> list[float]:
    """The first ``n`` multiples of the point's LR the sweep trains at, at the rate of
    ``STEPS`` steps from ``LOW`` to ``HIGH`` (beyond ``STEPS``, on past ``HIGH``); for the
    first ``STEPS`` the same floats as :func:`greedylr.range_test.sweep_multipliers`."""
    return [LOW * (HIGH / LOW) ** (k / (STEPS - 1)) for k in range(n)]


def _hooks(length: int = STEPS) -> None:
    """The sweep in this worker: ``length`` steps at the rate of ``STEPS`` from ``LOW`` to
    ``HIGH`` (more than ``STEPS`` carry on past ``HIGH``)."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    LENGTH[0] = length
    sweep = multiples(length)

    def pre(opt: Any, args: Any, kwargs: Any) -> None:
        k = SWEEP[0]
        if k >= LENGTH[0]:
            raise _Enough
        for group in opt.param_groups:
            group["lr"] = group.setdefault("sweep_lr", group["lr"]) * sweep[k]
        SWEEP[0] += 1

    register_optimizer_step_pre_hook(pre)


def _trial(spec: dict[str, Any]) -> Run:
    from greedylr.studies.execution import execute_trial
    from greedylr.studies.trial import TrialSpec

    SWEEP[0] = 0
    result = execute_trial(TrialSpec.make(**spec), threads=1)
    return {"spec": spec, "losses": result["losses"][:LENGTH[0]]}


def sweeps(out: Path, workloads: set[str]) -> list[Run]:
    """The range test from every grid point of ``workloads``, seed 0."""
    from dataclasses import replace

    from greedylr.evidence.defaults import HELDOUT_SPLITS, heldout_lr_grid_specs

    path = out / "range_tests.json"
    if path.exists():
        return json.loads(path.read_text())
    specs = [replace(s, schedule="constant", settings=()).to_dict()
             for split in HELDOUT_SPLITS for s in heldout_lr_grid_specs(split)
             if s.schedule == "cosine" and s.seed == 0 and s.workload in workloads
             and dict(s.settings) == {"workload_feed_split": True}]
    out.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(2, initializer=_hooks) as pool:
        runs = list(pool.map(_trial, specs))
    path.write_text(json.dumps(runs))
    return runs


def _train(spec: dict[str, Any]) -> Run:
    from greedylr.studies.execution import execute_trial
    from greedylr.studies.trial import TrialSpec

    return execute_trial(TrialSpec.make(**spec), threads=1)


def exact(out: Path, tests: list[Run], schedule: str,
          suggest: Callable[[Run], float] | None = None) -> list[Run]:
    """``schedule`` (with the package's defaults) at each grid point's ``valley/10``
    suggestion (or ``suggest``'s, a multiple of the point's LR), the grid's seeds."""
    from greedylr.evidence.defaults import HELDOUT_SPLITS, heldout_lr_grid_specs

    path = out / f"range_{schedule}.json"
    if path.exists():
        return json.loads(path.read_text())
    suggest = suggest or (lambda t: suggestions(t)["valley/10"])
    chosen = {(t["spec"]["workload"], t["spec"]["lr"]): t["spec"]["lr"] * suggest(t)
              for t in tests}
    points = [s for split in HELDOUT_SPLITS for s in heldout_lr_grid_specs(split)
              if s.schedule == schedule and (s.workload, s.lr) in chosen
              and dict(s.settings) == {"workload_feed_split": True}]
    with ProcessPoolExecutor(2) as pool:
        runs = list(pool.map(_train, [dict(s.to_dict(), lr=chosen[s.workload, s.lr])
                                      for s in points]))
    for run, s in zip(runs, points):  # the grid point each run stands for
        run["point"] = s.lr
    path.write_text(json.dumps(runs))
    return runs


def suggestions(run: Run) -> dict[str, float]:
    """``steep`` and ``valley/10`` of one sweep, as multiples of the point's LR; the
    sweep read (smoothed, cut) by the package's :class:`greedylr.RangeTest`."""
    from greedylr.range_test import RangeTest, sweep_multipliers

    multiples = sweep_multipliers(STEPS, LOW, HIGH)
    test = RangeTest.read([run["spec"]["lr"]], multiples, run["losses"], beta=BETA, stop=STOP)
    found: dict[str, float] = {"valley/10": test.suggested_multiplier}
    cut = test.smoothed[10:-1]
    if len(cut) >= 2:  # per point of the sweep: against the log of the LR
        grad = [cut[min(i + 1, len(cut) - 1)] - cut[max(i - 1, 0)] for i in range(len(cut))]
        found["steep"] = multiples[10 + grad.index(min(grad))]
    return found


def main(out: Path, arm: str, files: list[str]) -> None:
    from greedylr.studies.tuning import final_heldout_loss

    table = signals.grid_runs(arm, files)
    cosine = {w: {lr: statistics.fmean(map(final_heldout_loss, v)) for lr, v in lrs.items()}
              for w, lrs in table["cosine"].items()}
    ratios: dict[str, list[list[float]]] = defaultdict(lambda: [[] for _ in range(5)])
    beyond: dict[str, int] = defaultdict(int)
    tests = sweeps(out, set(cosine))
    for run in tests:
        workload, lr = run["spec"]["workload"], float(run["spec"]["lr"])
        if workload not in cosine:
            continue
        grid = sorted(cosine[workload])
        best = min(cosine[workload].values())
        i = grid.index(lr)
        rows = {"cosine at the point": cosine[workload][lr],
                f"{arm} at the point": statistics.fmean(
                    map(final_heldout_loss, table[arm][workload][lr]))}
        for name, multiple in suggestions(run).items():
            target = math.log10(lr * multiple)
            snapped = min(grid, key=lambda g: abs(math.log10(g) - target))
            beyond[name] += not math.log10(grid[0]) - 0.25 <= target <= math.log10(grid[-1]) + 0.25
            rows[f"range test ({name}), then cosine"] = cosine[workload][snapped]
        for name, value in rows.items():
            ratios[name][i].append(value / best)
    for schedule in ("cosine", "greedy"):
        trained: dict[tuple[str, float], list[float]] = defaultdict(list)
        for run in exact(out, tests, schedule):
            trained[run["spec"]["workload"], run["point"]].append(final_heldout_loss(run))
        for (workload, point), values in trained.items():
            if workload in cosine:
                ratios[f"range test (valley/10), then {schedule}, exact"][
                    sorted(cosine[workload]).index(point)].append(
                    statistics.fmean(values) / min(cosine[workload].values()))
    for name, by_position in ratios.items():
        every = [r for rs in by_position for r in rs]
        print(f"{name:44s} within 2% {100 * sum(r <= 1.02 for r in every) / len(every):3.0f}% "
              f"median {statistics.median(every):.3f} by LR "
              + " / ".join(f"{statistics.median(rs):.2f}" for rs in by_position)
              + (f"; suggestions beyond the grid {beyond[name.split('(')[1].split(')')[0]]}"
                 if name.startswith("range") and "exact" not in name else "")
              + f" ({len(every)} points)")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])

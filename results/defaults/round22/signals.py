"""Round 22, descriptive: can a signal the rule could read online place a run on the LR
axis, where the loss's improvement cannot? Nothing in the package changes.

Rounds 3-21 met one limit again and again: early in a run the training loss improves
quickly both at a tenth of a good LR and at the good LR itself, so a rule fed the loss
climbs in both (right at 0.1x, wrong at 1x) or in neither. Four candidate signals, read
for every workload of the thirteen seen grids against its best-tuned cosine LR (its grid
runs, stored; the best LR by the mean final held-out loss over seeds):

- ``update``: the relative size of an update, ||w_{t+1} - w_t|| / ||w_t||, which
  practitioners read as a health check ("update to data ratio about 1e-3", Karpathy
  2022) and LARS/LAMB (You et al. 2017, 2019) and Adafactor's relative step (Shazeer and
  Stern 2018) set directly; measured on the update itself, whatever the optimizer.
  Cosine at each of the grid's five LRs (seed 0) runs its first 15% of steps with global
  optimizer hooks recording, per step, the update's size relative to the weights over all
  parameters (``global``) and the median over weight tensors of two or more dimensions
  (``matrix``); the reading is the median over steps from the end of warmup (at least 5%
  of the run) to 15%, per step and times the run's steps (the distance a run covers).
- ``progress``: the stored cosine runs' mean training loss at 10% of the run over their
  first steps' (how far the loss has come).
- ``noise``: the standard deviation of the training loss's step-to-step change over
  10-20% of the run, over its mean there (the oscillation a too-large LR makes).
- ``pace``: for ``ARM``'s stored grid runs (a rule, not cosine), the held-out pace
  (:func:`round20.gap_signal.paces`: the fed held-out loss's relative fall between two
  evaluations over the smoothed training loss's) at the evaluations of 20-50%, by
  position relative to the best-tuned cosine LR: the signal 0.8's held-out cut reads,
  asked whether a pace above 1 could license a climb.

The criterion for the absolute readings (``update``, ``progress``, ``noise``), written
before the update sizes were measured and applied to the other two after: a reading is
worth building into a rule only if one band of it, a factor sqrt(10) wide either side of
its median over workloads at their best-tuned LR, holds the best-tuned LR's reading for
at least 80% of workloads while the grid's neighbours of that LR (3.16x off) fall outside
it for at least 80% (a band that cannot exclude a neighbour cannot place a run)::

    python results/defaults/round22/signals.py OUT ARM FILE[=ARM]...

``FILE``: LR-grid results files holding cosine's runs and ``ARM``'s (``FILE=NAME``: the
arm is called ``NAME`` in that file).
"""
from __future__ import annotations

import json
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "round20"))

import gap_signal

Run = dict[str, Any]
RECORDS: list[dict[str, float]] = []
SNAPSHOT: dict[int, list[Any]] = {}
LIMIT = [0]


class _Enough(Exception):
    """Stops a trial once its first 15% of steps are recorded."""


def _hooks() -> None:
    import torch
    from torch.optim.optimizer import (
        register_optimizer_step_post_hook,
        register_optimizer_step_pre_hook,
    )

    def params(opt: Any) -> list[Any]:
        return [p for g in opt.param_groups for p in g["params"]]

    def pre(opt: Any, args: Any, kwargs: Any) -> None:
        SNAPSHOT[id(opt)] = [p.detach().clone() for p in params(opt)]

    def post(opt: Any, args: Any, kwargs: Any) -> None:
        sq_delta = sq_weight = 0.0
        matrix = []
        with torch.no_grad():
            for old, p in zip(SNAPSHOT.pop(id(opt)), params(opt)):
                d = float((p.detach() - old).float().norm())
                w = float(old.float().norm())
                sq_delta += d * d
                sq_weight += w * w
                if old.dim() >= 2 and w > 0:
                    matrix.append(d / w)
        RECORDS.append({"global": math.sqrt(sq_delta / sq_weight) if sq_weight else math.nan,
                        "matrix": statistics.median(matrix) if matrix else math.nan})
        if len(RECORDS) >= LIMIT[0]:
            raise _Enough

    register_optimizer_step_pre_hook(pre)
    register_optimizer_step_post_hook(post)


def _trial(spec: dict[str, Any]) -> Run:
    from greedylr.studies.execution import execute_trial
    from greedylr.studies.trial import TrialSpec

    RECORDS.clear()
    SNAPSHOT.clear()
    LIMIT[0] = max(3, math.ceil(0.15 * spec["steps"]))
    execute_trial(TrialSpec.make(**spec), threads=1)
    return {"spec": spec, "records": list(RECORDS)}


def update_runs(out: Path) -> list[Run]:
    """Cosine at every grid LR of every seen split, seed 0, its first 15% of steps."""
    from greedylr.evidence.defaults import HELDOUT_SPLITS, heldout_lr_grid_specs

    path = out / "update_sizes.json"
    if path.exists():
        return json.loads(path.read_text())
    specs = [s.to_dict() for split in HELDOUT_SPLITS for s in heldout_lr_grid_specs(split)
             if s.schedule == "cosine" and s.seed == 0
             and dict(s.settings) == {"workload_feed_split": True}]
    out.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(2, initializer=_hooks) as pool:
        runs = list(pool.map(_trial, specs))
    path.write_text(json.dumps(runs))
    return runs


def _update(key: str, distance: bool) -> Callable[[Run], float]:
    def reading(run: Run) -> float:
        steps = run["spec"]["steps"]
        start = max(run["spec"]["warmup"], math.ceil(0.05 * steps))
        values = [r[key] for r in run["records"][start:] if math.isfinite(r[key])]
        return statistics.median(values) * (steps if distance else 1) if values else math.nan
    return reading


def _progress(run: Run) -> float:
    losses = run["losses"]
    n = len(losses)
    head, at = losses[:max(1, n // 100)], losses[int(0.1 * n) - max(1, n // 50):int(0.1 * n) + 1]
    return statistics.fmean(at) / statistics.fmean(head) if all(map(math.isfinite, head + at)) \
        else math.nan


def _noise(run: Run) -> float:
    window = run["losses"][int(0.1 * len(run["losses"])):int(0.2 * len(run["losses"]))]
    if len(window) < 5 or not all(map(math.isfinite, window)):
        return math.nan
    steps = [b - a for a, b in pairwise(window)]
    return statistics.pstdev(steps) / statistics.fmean(window)


def band(name: str, by_lr: dict[str, dict[float, list[Run]]], best: dict[str, float],
         reading: Callable[[Run], float]) -> None:
    """Prints the criterion's figures for ``reading`` (seed mean per workload and LR)."""
    at_best, neighbours, named = [], [], {}
    for workload, runs in by_lr.items():
        lrs = sorted(runs)
        values = [statistics.fmean(reading(r) for r in runs[lr]) for lr in lrs]
        i = lrs.index(best[workload])
        at_best.append(values[i])
        named[workload] = values[i]
        neighbours += [values[j] for j in (i - 1, i + 1) if 0 <= j < len(lrs)]
    logs = sorted(math.log10(v) for v in at_best if math.isfinite(v) and v > 0)
    centre = 10 ** statistics.median(logs)
    lo, hi = centre / math.sqrt(10), centre * math.sqrt(10)
    inside = sum(lo <= v <= hi for v in at_best) / len(at_best)
    outside = sum(not lo <= v <= hi for v in neighbours) / len(neighbours)
    spread = logs[int(0.9 * (len(logs) - 1))] - logs[int(0.1 * (len(logs) - 1))]
    low, high = (pick(named, key=lambda w: named[w]) for pick in (min, max))
    print(f"{name:21s} centre {centre:9.3g}; best LR inside the band {100 * inside:3.0f}%, "
          f"its neighbours outside {100 * outside:3.0f}%; 10th-90th percentile spread "
          f"{spread:.2f} decades ({len(at_best)} workloads; from {low} {named[low]:.3g} to "
          f"{high} {named[high]:.3g})")


def pace(arm_runs: dict[str, dict[float, list[Run]]], best: dict[str, float]) -> None:
    """The held-out pace at 20-50% of ``ARM``'s runs by position against the best LR."""
    by: dict[int, list[float]] = defaultdict(list)
    for workload, runs in arm_runs.items():
        lrs = sorted(runs)
        for lr in lrs:
            for r in runs[lr]:
                if r["status"] == "ok":
                    by[lrs.index(lr) - lrs.index(best[workload])] += [
                        p for step, _, _, p in gap_signal.paces(r)
                        if p is not None and step <= 0.5 * r["spec"]["steps"]]
    for d, values in sorted(by.items()):
        q = statistics.quantiles(values, n=4)
        print(f"pace, {d:+d} grid steps from the best LR: {len(values):4d} evaluations, "
              f"quartiles {q[0]:5.2f} {q[1]:5.2f} {q[2]:5.2f}; above 1 "
              f"{100 * sum(v > 1 for v in values) / len(values):3.0f}%, below 0.5 "
              f"{100 * sum(v < 0.5 for v in values) / len(values):3.0f}%")


def grid_runs(arm: str, files: list[str]) -> dict[str, dict[str, dict[float, list[Run]]]]:
    """The runs of LR-grid results files by arm, workload and LR (``FILE=NAME``: the arm
    called ``NAME`` in that file is ``arm``)."""
    from greedylr.studies import metrics as M

    table: dict[str, dict[str, dict[float, list[Run]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for item in files:
        path, _, own = item.partition("=")
        for r in json.loads(Path(path).read_text()):
            name = M.arm_of(r)
            name = arm if own and name == own else name
            table[name][r["spec"]["workload"]][float(r["spec"]["lr"])].append(r)
    return table


def main(out: Path, arm: str, files: list[str]) -> None:
    from greedylr.studies.tuning import final_heldout_loss

    table = grid_runs(arm, files)
    cosine = table["cosine"]
    best = {w: min(lrs, key=lambda lr: statistics.fmean(map(final_heldout_loss, lrs[lr])))
            for w, lrs in cosine.items()}
    sizes: dict[str, dict[float, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for r in update_runs(out):
        if r["spec"]["workload"] in best:
            sizes[r["spec"]["workload"]][float(r["spec"]["lr"])].append(r)
    for key in ("global", "matrix"):
        for distance in (False, True):
            band(f"update {key}{' x steps' if distance else ''}", sizes, best,
                 _update(key, distance))
    band("progress", cosine, best, _progress)
    band("noise", cosine, best, _noise)
    pace(table[arm], best)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])

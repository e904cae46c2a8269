"""Round 25, descriptive: torch's ``ReduceLROnPlateau`` fed the held-out value, the
budget-free schedule a user who evaluates already has, beside GreedyLR 0.8.

Round 24 found 0.8 level with cosine on 42-44 of 49 workloads when it is fed a held-out
value (``observe_eval``), and little better than a constant LR without one. The baseline
that question calls for is the one every framework ships: a plateau scheduler stepped
with the validation value at each evaluation, here the package's ``reduce_on_plateau_eval``
(:class:`~greedylr.studies.schedules.HeldOutPlateau`, added from this round: torch's
``ReduceLROnPlateau`` on the workload's warmup ramp, stepped only with the fed values,
the validation half every 10% of the run, as GreedyLR's ``observe_eval``; the training
loss never reaches it). Two settings, declared before any run: ``factor=0.5, patience=1`` (a user's
choice with ten evaluations a run; torch's ``patience=10`` would never fire) and
``factor=0.7, patience=0`` (GreedyLR's own ``eval_factor`` and ``eval_patience``: its
held-out rule without the training-loss rule, the pace test or the cooldown).

``heldout`` runs cosine, 0.8 (told the budget, as the defaults' figures are) and both
plateau arms under every split's held-out protocol (3 seeds, the workload's LR), to
``OUT/plateau_heldout_<split>.json``; ``grid`` runs cosine and both plateau arms at every
point of every split's LR grid (the grid's seeds), to ``OUT/plateau_grid_<split>.json``.
A file already there is read, not rerun. Score with ``round20/pooled.py heldout|grid``;
``ratios`` prints, from the held-out files, each arm's final held-out metric over
cosine's and over 0.8's per workload (seed means, a loss ratio, a metric where higher
is better inverted): the median, the worst five, the workloads more than 1% better and
the best three, and each arm's median final LR over its initial one::

    python results/defaults/round25/heldout_plateau.py {heldout,grid,ratios} OUT
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import every_split, grid_points

PLATEAUS: tuple[dict[str, Any], ...] = ({"factor": 0.5, "patience": 1},
                                        {"factor": 0.7, "patience": 0})
ARMS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("cosine", {}), ("greedy", {}), *(("reduce_on_plateau_eval", p) for p in PLATEAUS))


def _specs(protocol: str, split: str) -> list[Any]:
    from greedylr.evidence.defaults import HELDOUT_SPLITS, heldout_specs

    if protocol == "heldout":
        return heldout_specs(HELDOUT_SPLITS[split], f"defaults_heldout_{split}", choices=ARMS)
    return grid_points(split, [arm for arm in ARMS if arm[0] != "greedy"])


def ratios(out: Path) -> None:
    import json
    import statistics
    from collections import defaultdict

    from greedylr.studies import metrics as M

    final: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    last_lr: dict[str, list[float]] = defaultdict(list)
    higher = {}
    for path in sorted(out.glob("plateau_heldout_*.json")):
        for r in json.loads(path.read_text()):
            arm, workload = M.arm_of(r), r["spec"]["workload"]
            higher[workload] = M.metric_name(r)[1]
            worst = -math.inf if higher[workload] else math.inf  # a failed run
            final[arm][workload].append(M.final_metric(r) if r["status"] == "ok" else worst)
            if r["lrs"]:
                last_lr[arm].append(r["lrs"][-1] / r["lr"])

    def ratio(arm: str, base: str, workload: str) -> float:
        a, b = (statistics.fmean(final[x][workload]) for x in (arm, base))
        return b / a if higher[workload] else a / b

    for base in ("cosine", "greedy"):
        for arm in sorted(set(final) - {base}):
            rows = sorted(((ratio(arm, base, w), w) for w in final[base]), reverse=True)
            worst = ", ".join(f"{w} {r:.3f}" for r, w in rows[:5])
            best = ", ".join(f"{w} {r:.3f}" for r, w in rows[::-1][:3])
            ahead = sum(r < 0.99 for r, _ in rows)
            print(f"{arm} over {base}: median {statistics.median(r for r, _ in rows):.3f}; "
                  f"worst {worst}; more than 1% better on {ahead}, best {best}")
    for arm, values in sorted(last_lr.items()):
        print(f"{arm}: final LR over the initial, median {statistics.median(values):.3f}")


def main(protocol: str, out: Path) -> None:
    if protocol == "ratios":
        ratios(out)
        return
    every_split(lambda split: _specs(protocol, split), out, f"plateau_{protocol}")


if __name__ == "__main__":
    if sys.argv[1:2] not in (["heldout"], ["grid"], ["ratios"]):
        raise SystemExit("usage: heldout_plateau.py {heldout,grid,ratios} OUT")
    main(sys.argv[1], Path(sys.argv[2]))

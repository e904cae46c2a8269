"""Round 41, descriptive: could the generalization gap tell the held-out cuts that cancel a
climb from a too-small LR from those that rescue a too-large one?

For every held-out cut (``eval_decrease`` event) before 80% of a grid run of ``ARM``, the
fed held-out value over the smoothed training loss at that step (the rule's own smoothed
value, which the event records), by the run's position on its grid (-2: 0.1x
the workload's LR ... +2: 10x) and by the cut's kind (a value that lags the training
loss, ``eval_pace``, or one that is not better). A veto on lagging cuts where the gap is
small would help only if small gaps came at the grid's bottom and not at its top::

    python results/defaults/round41/gap_signal.py ARM GRID_FILES...
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from greedylr.evidence import workloads
from greedylr.studies import metrics as M


def main(arm: str, paths: list[str]) -> None:
    gaps: dict[tuple[str, int], list[float]] = defaultdict(list)
    for path in paths:
        for r in json.loads(Path(path).read_text()):
            if r["status"] != "ok" or M.arm_of(r) != arm:
                continue
            spec = r["spec"]
            position = round(2 * np.log10(spec["lr"] / workloads.get(spec["workload"]).lr))
            for e in r["events"]:
                if e["kind"] == "eval_decrease" and e["step"] <= 0.8 * spec["steps"]:
                    kind = "lagging" if "eval_pace" in e["reason"] else "not better"
                    gaps[kind, position].append(e["loss"] / e["smoothed"])
    for (kind, position), values in sorted(gaps.items()):
        v = np.asarray(values)
        quantiles = " / ".join(f"{q:.2f}" for q in np.quantile(v, [0.1, 0.25, 0.5, 0.75, 0.9]))
        print(f"{kind:10s} position {position:+d}: {len(v):4d} cuts, gap quantiles "
              f"10/25/50/75/90% {quantiles}; below 1.1: {np.mean(v < 1.1):.0%}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

"""Round 41's diagnosis (descriptive): where GreedyLR's LR stands in its stored runs.

For every run of an arm in the given results files: its highest LR over its initial one,
and its LR at 50% of the run over its initial one, as quantiles over the held-out
protocol's runs (the workload's LR), over the grid's (every point), and over the grid's
at each of its five positions (0.1x to 10x of the workload's LR)::

    python results/defaults/round41/lr_paths.py ARM FILES...
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from greedylr.studies import metrics as M

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def main(arm: str, paths: list[str]) -> None:
    from greedylr.evidence import workloads

    rows: dict[str, list[tuple[float, float]]] = {"held-out": [], "grid": []}
    for path in paths:
        kind = "grid" if "_grid_" in Path(path).name else "held-out"
        for r in json.loads(Path(path).read_text()):
            if r["status"] != "ok" or M.arm_of(r) != arm:
                continue
            initial = r["spec"]["lr"] or r["lr"]
            lrs = np.asarray(r["lrs"], dtype=float) / initial
            rows[kind].append((lrs.max(), lrs[len(lrs) // 2]))
            if kind == "grid":
                position = initial / workloads.get(r["spec"]["workload"]).lr
                rows.setdefault(f"grid at {position:.3g}x", []).append(
                    (lrs.max(), lrs[len(lrs) // 2]))
    for kind, values in sorted(rows.items(), key=lambda kv: (len(kv[0]), kv[0])):
        if not values:
            continue
        peak, middle = np.asarray(values).T
        print(f"{kind} ({len(values)} runs): highest LR over the initial, quantiles "
              f"{' / '.join(f'{q:.0%}' for q in QUANTILES)}: "
              f"{' / '.join(f'{v:.2f}' for v in np.quantile(peak, QUANTILES))}; "
              f"above 3x in {np.mean(peak > 3):.0%}; at 50% of the run: "
              f"{' / '.join(f'{v:.2f}' for v in np.quantile(middle, QUANTILES))}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

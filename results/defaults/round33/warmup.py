"""Round 33 prototype, descriptive: a warmup over a fixed fraction of the budget.

On 0.9's LR grids (round 29) the top of the grid is where GreedyLR is furthest from the
best-tuned cosine (3.16x: 1.13, 10x: 1.48, within 2% at 20% and 10% of the points), and
there the damage is done before the first evaluation: at 10x the held-out cuts take the
LR down to the rule's floor (the workload's default LR) by mid-run on most workloads,
and the final metric stays 2-10x the tuned one, as cosine's does at the same LR. A linear
warmup is the standard remedy for an LR too large at the start (it lets the network reach
a region where the large LR is stable); none of the protocol's workloads has one.
``warmup``: 0.9 with a linear warmup from 0 over ``FRACTION`` of ``total_steps`` (the
rule starts when it ends). Marked by ``eps``::

    python results/defaults/round33/warmup.py {heldout,grid} OUT [FRACTION ...]
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import run_arms

from greedylr import config as config_module

#: each warmup fraction's mark (``eps``; far below any loss difference)
MARKS = {0.05: 3.05e-297, 0.1: 3.1e-297, 0.2: 3.2e-297}
_FRACTIONS = {mark: fraction for fraction, mark in MARKS.items()}
_post_init = config_module.GreedyConfig.__post_init__


def _patched_post_init(self: Any) -> None:
    _post_init(self)
    fraction = _FRACTIONS.get(self.eps)
    if fraction is not None and self.warmup == 0 and self.total_steps is not None:
        object.__setattr__(self, "warmup", max(1, round(fraction * self.total_steps)))


def _patch() -> None:
    config_module.GreedyConfig.__post_init__ = _patched_post_init  # type: ignore[method-assign]


if __name__ == "__main__":
    command, out, *fractions = sys.argv[1:]
    for f in map(float, fractions or ["0.1"]):
        run_arms([command, out], (("greedy", {"eps": MARKS[f]}),), f"warmup{f:g}", _patch)

"""Round 7, after the decision, descriptive: what the fresh split (LRs tuned for cosine)
says of three knob settings and a constant LR. Nothing is adopted from it: the split has
now been looked at.

Same protocol as ``heldout-fresh`` (same study, same folder), so that
``heldout-report`` lists these arms beside the declared ones:

    python results/defaults/round7/explore.py runs/r7
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from greedylr.evidence.defaults import FRESH_WORKLOADS, heldout_specs
from greedylr.studies.runner import run_trials

ARMS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("greedy", {"anneal_fraction": 0.6}),  # round 4's long cooldown
    ("greedy", {"max_lr_ratio": 1.0}),  # never above the LR it was given
    ("constant_warmup", {}),
)


if __name__ == "__main__":
    run_trials(heldout_specs(FRESH_WORKLOADS, "defaults_heldout_fresh", choices=ARMS),
               Path(sys.argv[1]) / "heldout_fresh", jobs=2, progress=True)

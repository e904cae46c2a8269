"""Round 42 pilot, descriptive: GreedyLR 0.11 with ``max_lr_ratio=1``: the rule never
raises the LR above the one it was given; everything else (decreases, held-out cuts, the
final cooldown) is 0.11's. Over every split of ``HELDOUT_SPLITS`` (the eighteen seen
ones), as :func:`prototypes.run_arms`; 0.11's runs of the same specs are stored (round
37's prototype on the first sixteen, round 40's on the fourteenth probe split, round
41's defaults on the fifteenth, corrected)::

    python results/defaults/round42/no_climb.py {heldout,grid} OUT
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from prototypes import run_arms

if __name__ == "__main__":
    run_arms(sys.argv[1:], (("greedy", {"max_lr_ratio": 1.0}),), "no_climb")

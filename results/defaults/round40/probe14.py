"""Round 40: GreedyLR 0.9 and round 37's ``stalled`` cooldown (a prototype: a final
cooldown that starts while the held-out rule blocks increases ends at 0, patched into
the rule in every worker) on the fourteenth probe split, declared before any GreedyLR
run on it (``results/defaults/DECISION.md``, round 40); the round's protocol, readings
and decision are :class:`probe_round.ProbeRound`'s::

    python results/defaults/round40/probe14.py run OUT
    python results/defaults/round40/probe14.py score OUT
    python results/defaults/round40/probe14.py pool OUT STORED...
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parents[1] / "round37"))

from probe_round import ProbeRound
from stalled_zero import MARK, _patch

ROUND = ProbeRound(split="probe14", tag="round40", candidate=("greedy", {"eps": MARK}),
                   name="stalled", version="0.9", patch=_patch)

if __name__ == "__main__":
    ROUND.main(sys.argv[1:])

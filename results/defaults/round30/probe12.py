"""Round 30: GreedyLR 0.8 and round 29's ``worse3`` on the twelfth probe split, declared
before any GreedyLR run on it (``results/defaults/DECISION.md``, round 30); the round's
protocol, readings and decision are :class:`probe_round.ProbeRound`'s. ``worse3`` is
round 29's patch of the held-out rule, marked by ``eps``; ``same`` runs its runs again
through the package's defaults (0.9: ``eval_compound_margin=0.03``, no patch)::

    python results/defaults/round30/probe12.py run OUT
    python results/defaults/round30/probe12.py score OUT
    python results/defaults/round30/probe12.py {pool,same} OUT STORED...
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parents[1] / "round29"))

from compound import MARKS
from compound import _patch as patch_worse3
from probe_round import ProbeRound


def _without_mark(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k != "eps"}


ROUND = ProbeRound(split="probe12", tag="round30", candidate=("greedy", {"eps": MARKS["worse3"]}),
                   name="worse3", version="0.8", patch=patch_worse3, ships=_without_mark)

if __name__ == "__main__":
    ROUND.main(sys.argv[1:])

"""Round 40: GreedyLR 0.9 and round 37's ``stalled`` cooldown (a prototype: a final
cooldown that starts while the held-out rule blocks increases ends at 0, patched into
the rule in every worker) on the fourteenth probe split, declared before any GreedyLR
run on it (``results/defaults/DECISION.md``, round 40); the round's protocol, readings
and decision are :class:`probe_round.ProbeRound`'s::

    python results/defaults/round40/probe14.py run OUT
    python results/defaults/round40/probe14.py score OUT
    python results/defaults/round40/probe14.py pool OUT STORED...
    python results/defaults/round40/probe14.py same OUT STORED...

``same`` runs the prototype's runs on the seen splits (round 37's ``stalled``, marked
by ``eps``) again through the package's defaults, which adopted it in 0.11.0.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parents[1] / "round37"))

from probe_round import ProbeRound
from stalled_zero import MARK, _patch


def _shipped(settings: dict[str, Any]) -> dict[str, Any]:
    """A prototype run's settings without its ``eps`` mark: the package's defaults."""
    return {k: v for k, v in settings.items() if k != "eps"}


ROUND = ProbeRound(split="probe14", tag="round40", candidate=("greedy", {"eps": MARK}),
                   name="stalled", version="0.9", patch=_patch, ships=_shipped,
                   prototype=(f"greedy(eps={MARK})", "greedy(eps=1.9e-297)"))

if __name__ == "__main__":
    ROUND.main(sys.argv[1:])

"""Round 33: GreedyLR 0.9 and the spike guard (``spike_ratio=10``, the package's knob)
on the thirteenth probe split, declared before any GreedyLR run on it
(``results/defaults/DECISION.md``, round 33); the round's protocol, readings and decision
are :class:`probe_round.ProbeRound`'s. ``same`` runs the prototype's runs on the seen
splits (``spike.py``, marked by ``eps``) again through the package's knob::

    python results/defaults/round33/probe13.py run OUT
    python results/defaults/round33/probe13.py score OUT
    python results/defaults/round33/probe13.py {pool,same} OUT STORED...
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from probe_round import ProbeRound

#: the candidate as the package ships it
SPIKE = {"spike_ratio": 10.0}


def _shipped(settings: dict[str, Any]) -> dict[str, Any]:
    """A prototype run's settings with the package's knob for its ``eps`` mark."""
    return {**{k: v for k, v in settings.items() if k != "eps"}, **SPIKE}


ROUND = ProbeRound(split="probe13", tag="round33", candidate=("greedy", SPIKE), name="spike",
                   version="0.9", ships=_shipped,
                   prototype=("greedy(eps=4.3e-297)", "greedy(eps=1.9e-297)"))

if __name__ == "__main__":
    ROUND.main(sys.argv[1:])

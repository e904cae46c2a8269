"""Round 41: GreedyLR 0.11's claims on the fifteenth probe split, and its stalled cooldown
(``stalled_anneals_to_zero``, adopted in round 40) against the same rule without it,
declared before any GreedyLR run on the split (``results/defaults/DECISION.md``, round
41). The protocol and the readings are :class:`probe_round.ProbeRound`'s; the decision is
this round's: the knob stays on unless the split shows it worse than the rule without it::

    python results/defaults/round41/probe15.py run OUT
    python results/defaults/round41/probe15.py score OUT
    python results/defaults/round41/probe15.py pool OUT STORED...
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from probe_round import G, ProbeRound


@dataclass(frozen=True)
class KeepRound(ProbeRound):
    """The candidate is the defaults with one knob turned off; the decision is whether
    the knob stays: every condition is one the defaults must meet against it."""

    verdicts: tuple[str, str] = (
        "stalled_anneals_to_zero stays on", "stalled_anneals_to_zero reverts to False")

    def heading(self) -> str:
        return self.verdicts[0]

    def decision(self, r: dict[str, Any]) -> dict[str, bool]:
        off, version = self.arm, self.version
        counts, noise, sides = r["counts"], r["noise"], r["sides"]
        off_better = sum(n for (_, side), n in sides.items() if side == "better")
        off_worse = sum(n for (_, side), n in sides.items() if side == "worse")
        return {
            f"K1. grid: {version} worse than the knob off at {off_better} points, better at "
            f"{off_worse} (worse at no more points than better)": off_better <= off_worse,
            f"K2. F (issue's reading) {version} {counts[G]} >= the knob off {counts[off]}":
                counts[G] >= counts[off],
            **{f"K3. beyond noise {q} {version} {noise[G][q]:.0f}% >= the knob off "
               f"{noise[off][q]:.0f}%": noise[G][q] >= noise[off][q] for q in "FBT"},
        }


ROUND = KeepRound(split="probe15", tag="round41",
                  candidate=("greedy", {"stalled_anneals_to_zero": False}),
                  name="stalled off", version="0.11")

if __name__ == "__main__":
    ROUND.main(sys.argv[1:])

"""Round 43: GreedyLR 0.11's claims on the sixteenth probe split, and the README's advice
for an LR nobody tuned (an LR range test, then GreedyLR), declared before any GreedyLR run
and any range test on the split (``results/defaults/DECISION.md``, round 43). The protocol
and the readings are :class:`probe_round.ProbeRound`'s, with a fourth arm (the range
test, then cosine); no default changes here, whatever the outcome::

    python results/defaults/round43/probe16.py run OUT
    python results/defaults/round43/probe16.py score OUT
    python results/defaults/round43/probe16.py pool OUT STORED...
    python results/defaults/round43/probe16.py table OUT

``table`` (descriptive, beside the decision): each workload's grid, every arm's ratio
of its final held-out metric to the best-tuned cosine's at each point, and where the
range test's suggestions put the LR, over the best-tuned cosine LR.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from probe_round import G, ProbeRound

from greedylr.studies import metrics as M
from greedylr.studies import tuning

#: the range test, then cosine: the combination the README's advice is measured against
RC = ("cosine", {"trial_range_test": True})


@dataclass(frozen=True)
class AdviceRound(ProbeRound):
    """The candidate is the defaults started from an LR range test's suggestion; the
    decision is whether the README's advice for an LR nobody tuned holds on the split."""

    verdicts: tuple[str, str] = ("holds", "fails")

    @property
    def arms(self) -> tuple[tuple[str, dict[str, Any]], ...]:
        return (*super().arms, RC)

    def heading(self) -> str:
        return f"the README's advice (a range test, then {self.version}) {self.verdicts[0]}"

    def decision(self, r: dict[str, Any]) -> dict[str, bool]:
        version, tol = self.version, r["tol"]
        rg, g = tol[self.arm], tol[G]
        rc = tol[M.arm_of({"spec": {"schedule": RC[0], "settings": RC[1]}})]
        return {
            f"R1. grid median: the range test, then {version}, {rg.median_ratio:.3f} < "
            f"{version} alone {g.median_ratio:.3f}": rg.median_ratio < g.median_ratio,
            f"R2. grid median: the range test, then {version}, {rg.median_ratio:.3f} <= the "
            f"range test, then cosine, {rc.median_ratio:.3f}":
                rg.median_ratio <= rc.median_ratio,
            f"R2. within 2%: the range test, then {version}, {100 * rg.within:.0f}% >= the "
            f"range test, then cosine, {100 * rc.within:.0f}%": rg.within >= rc.within,
            f"R3. at the given LR (1x) the range test, then {version}, costs at most 13% "
            f"(median ratio {rg.by_position[2]:.3f})": rg.by_position[2] <= 1.13,
        }


    def table(self, out: Path) -> None:
        grid = json.loads(self.paths(out)["grid"].read_text())
        for workload in sorted({r["spec"]["workload"] for r in grid}):
            runs = [r for r in grid if r["spec"]["workload"] == workload]
            for arm, t in tuning.tolerance_versus(runs, "cosine").items():
                print(f"{workload:22s} {arm:32s} " + " / ".join(f"{x:.3g}" for x in t.ratios))
            values: dict[float, list[float]] = {}
            for r in runs:
                if M.arm_of(r) == "cosine":
                    values.setdefault(r["spec"]["lr"], []).append(
                        tuning.final_heldout_loss(r))
            best = min(values, key=lambda lr: sum(values[lr]) / len(values[lr]))
            suggested = sorted({(r["spec"]["lr"], r["spec"]["seed"]): r["range_test"]["lr"]
                                for r in runs if r.get("range_test")}.items())
            print(f"{workload:22s} suggestions over the best-tuned cosine LR {best:.3g}: "
                  + " / ".join(f"{lr / best:.2f}" for _, lr in suggested))

    def main(self, argv: Sequence[str]) -> None:
        if argv[:1] == ["table"] and len(argv) == 2:
            self.table(Path(argv[1]))
        else:
            super().main(argv)


ROUND = AdviceRound(split="probe16", tag="round43",
                    candidate=("greedy", {"trial_range_test": True}),
                    name="range test, then 0.11", version="0.11")

if __name__ == "__main__":
    ROUND.main(sys.argv[1:])

"""Round 8, descriptive: at cosine's tuned LR against over the LR grid, every arm
measured on the fresh split (round 7's four workloads, whose LRs are cosine's best).

Runs what is missing (each prototype's held-out protocol and LR grid, and the grid of
round 7's two knob settings) beside the stored runs of round 7, then prints one table:
the held-out shares against cosine at the tuned LR (F, B, T, t) next to the LR grid's
tolerance against the best-tuned cosine (within 2%, median ratio, by LR).

    python results/defaults/round8/tradeoff.py runs/r8p runs/r7

(``runs/r7``: the outputs of ``heldout-fresh``, ``round7/explore.py`` and
``heldout-lr-grid-fresh``.)
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parents[1] / "round7"))

import noise_gate
import prototypes
import relative_cosine
import rprop

from greedylr.evidence.defaults import versus_cosine
from greedylr.studies import tuning
from greedylr.studies.runner import load_results


def _unpatched() -> None:
    """The package's own rule: for knob settings."""


#: tag (the prototype scripts' own, so that their runs are reused) -> settings, patch
ARMS: dict[str, tuple[dict[str, Any], Any]] = {
    "knob_long_cooldown": ({"anneal_fraction": 0.6}, _unpatched),
    "knob_ceiling": ({"max_lr_ratio": 1.0}, _unpatched),
    "noise_gate": ({"noise_threshold": 1.0}, noise_gate._init),
    "relative_cosine_plain": relative_cosine.VARIANTS["plain"],
    "relative_cosine_gated": relative_cosine.VARIANTS["gated"],
    "relative_cosine_no_eval": relative_cosine.VARIANTS["no_eval"],
    "rprop": (rprop.MARK, rprop._patch),
}


def main(out: Path, stored: Path) -> None:
    heldout, grid = load_results(stored / "heldout_fresh"), load_results(
        stored / "heldout_lr_grid_fresh")
    for tag, (settings, patch) in ARMS.items():
        if not tag.startswith("knob_"):  # round 7's explore.py ran the knobs' held-out runs
            heldout += prototypes.heldout("fresh", settings, patch, out, tag,
                                          stored / "heldout_fresh")
        grid += prototypes.grid("fresh", settings, patch, out, tag,
                                stored / "heldout_lr_grid_fresh")
    shares, tolerance = versus_cosine(heldout), tuning.tolerance_versus(grid, "cosine")
    print("\n| arm | F | B | T | t (misses) | grid: within 2% | median ratio "
          "| 0.1x / 0.316x / 1x / 3.16x / 10x |\n|---|---|---|---|---|---|---|---|")
    for arm in sorted(set(shares) | set(tolerance)):
        row, t = shares.get(arm), tolerance.get(arm)
        left = (f"{row['final_pct']:.0f}% | {row['best_pct']:.0f}% | {row['train_pct']:.0f}% | "
                f"{row['time_to_cosine_loss']:.2f} ({row['misses']}/{row['runs']})"
                if row else "- | - | - | -")
        right = (f"{100 * t.within:.0f}% | {t.median_ratio:.2f} | "
                 + " / ".join(f"{x:.2f}" for x in t.by_position) if t else "- | - | -")
        print(f"| `{arm}` | {left} | {right} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

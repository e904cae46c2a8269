"""Round 14, descriptive, after the outcome: ``compare="best"`` (torch's and transformers'
reference, the package's knob) on the fourth probe split's LR grid.

Round 14 found GreedyLR's worst failure at a far too large SGD LR: after the loss blows
up, ``compare="recent_best"`` moves the reference to the current, terrible value at every
decrease, so the recovery reads as progress. ``record.py`` (an increase needs a new low)
stopped the increases but also the decreases (the recovery still counts as better than
the recent reference). With the all-time best as the reference every observation above it
counts as worse, and the LR keeps coming down. The 0.1 defaults study had the two level on
clean runs; ``recent_best`` was chosen for disturbed ones (the rule guide).

    python results/defaults/round14/compare_best.py {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes


def _unpatched() -> None:
    """The package as it is: the knob exists."""


if __name__ == "__main__":
    prototypes.main(sys.argv[1:], {"compare": "best"}, _unpatched, "compare_best")

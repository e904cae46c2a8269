"""Round 21 pilots: settings of the package's own knobs on top of 0.8, run under the
defaults study's protocols on the seen splits (descriptive; no patch).

- ``decay``: ``base_schedule="cosine"`` with 0.8's held-out rule on. Rounds 8-10 measured
  the cosine base (R) with the held-out rule off: at the given LR it kept what the
  constant-base defaults lose mid-run, on the LR grid it lost their rescue of a
  too-small LR (the decay cancels part of the climb).
- ``decay_fast``: ``decay`` with round 6's faster climb (``increase_patience=5,
  factor=0.9``), on the hypothesis that the decay is the brake that climb lacked.
- ``climb5``: increases after 6 improving observations instead of 11 (decreases
  unchanged), on the hypothesis that 0.8's held-out pace is the brake round 3's
  ``increase_patience=5`` lacked. Under 0.8 a run at 0.1x its LR stands at a median
  0.9x its initial LR at mid-run: its increases are offset by decreases.

::

    python results/defaults/round21/knobs.py ARM {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes

ARMS: dict[str, dict[str, Any]] = {
    "decay": {"base_schedule": "cosine"},
    "decay_fast": {"base_schedule": "cosine", "increase_patience": 5, "factor": 0.9},
    "climb5": {"increase_patience": 5},
}


def _package() -> None:
    """The package as it is: every arm is a setting of its knobs."""


if __name__ == "__main__":
    prototypes.main(sys.argv[2:], ARMS[sys.argv[1]], _package, sys.argv[1])

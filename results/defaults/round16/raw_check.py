"""Round 16: the blow-up guard's raw-loss check (``blowup_raw_check``, a knob of the
package) beside cosine and the 0.5 defaults, under the defaults study's protocols
(``prototypes.py``).

0.5's guard judges the smoothed loss. A loss that spikes for a step or two and is back
at once keeps the EMA above the guard's line for a hundred steps or more, and the guard's
squared decreases take the LR to its floor. With ``blowup_raw_check=True`` a step of a
blow-up whose raw loss is back at or below half its first value counts neither as
better nor as worse (``GreedyConfig``'s docstring). The pilots, with a patch of the rule
before the knob existed, are ``raw_recovered.py``'s (``RAW_RECOVERED=half`` is this
rule).

    python results/defaults/round16/raw_check.py {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes


def _unpatched() -> None:
    """The package as it is: the knob exists."""


if __name__ == "__main__":
    prototypes.main(sys.argv[1:], {"blowup_raw_check": True}, _unpatched, "rawcheck")

"""Round 41: the beyond-noise reading (round 29's) of 0.11 and 0.9 pooled over eighteen
splits: every split's held-out runs, each arm under one name on every split (0.11: round
37's prototype on the sixteen seen splits and round 40's on the fourteenth probe split,
the package's default on the fifteenth; 0.9: its stored runs on the first sixteen,
round 40's default on the fourteenth, 0.11 with ``stalled_anneals_to_zero=False`` on the
fifteenth, as corrected twice after round 41: ``runs/r41fix2``), with round 29's reseeded
cosine and rounds 40's and 41's::

    python results/defaults/round41/beyond_noise.py RUNS   # RUNS: runs/ of this checkout
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parents[1] / "round29"))

import noise_floor

from greedylr.studies import metrics as M

#: (split or None for any, arm) -> the name it is pooled under
NAMES = {("probe14", "greedy"): "0.9", ("probe15", "greedy"): "0.11",
         ("probe15", "greedy(stalled_anneals_to_zero=False)"): "0.9",
         (None, "greedy(eps=1.9e-297)"): "0.9", (None, "greedy(eps=7.3e-297)"): "0.11"}


def files(fifteenth: str = "r41fix2") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The held-out runs' and the reseeded cosine's files (patterns under ``RUNS``), the
    fifteenth split's from the folder ``fifteenth`` (``r41fix``: the split as round 42's
    pilot ran on it, before its second correction)."""
    heldout = (f"{fifteenth}/round41_heldout_probe15.json", "r40/round40_heldout_probe14.json",
               "r29/worse3_heldout_*.json", "r25/plateau_heldout_*.json",
               "r30/round30_heldout_probe12.json", "r33/named_heldout_probe13.json",
               "r37/stalled_heldout_*.json")
    reseeded = ("r29/floor_heldout_*.json", "r40/reseeded_heldout_probe14.json",
                f"{fifteenth}/reseeded_heldout_probe15.json")
    return heldout, reseeded


def main(root: Path, heldout: tuple[str, ...] = files()[0],
         names: dict[tuple[str | None, str], str] = NAMES,
         reseeded: tuple[str, ...] = files()[1]) -> None:
    """The reading over the files ``heldout`` (patterns under ``root``), arms named by
    ``names``, with the reseeded cosine of ``reseeded``; an arm it does not name is left
    out, cosine's seeds 0-2 kept."""
    runs = []
    for path in (p for pattern in heldout for p in sorted(root.glob(pattern))):
        split = re.sub(r"\.json$", "", path.name).rsplit("_", 1)[-1]
        for r in json.loads(path.read_text()):
            arm = M.arm_of(r)
            name = names.get((split, arm)) or names.get((None, arm))
            if arm == "cosine":
                runs.append(r)
            elif name:
                r["spec"]["schedule"], r["spec"]["settings"] = name, {}
                runs.append(r)
    for path in (p for pattern in reseeded for p in sorted(root.glob(pattern))):
        runs += [r for r in map(noise_floor._named, json.loads(path.read_text()))
                 if r["spec"]["schedule"] == "cosine_reseeded"]
    print(f"{len({r['spec']['workload'] for r in runs})} workloads")
    noise_floor._print_beyond_noise(runs)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

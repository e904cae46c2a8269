"""Round 42's pilot read as declared, against 0.11 on the eighteen seen splits: the issue's
held-out reading (F, B, S, T, t), round 29's beyond-noise reading, the LR grid against the
best-tuned cosine, and the pilot against 0.11 at each grid point. On the fifteenth probe
split 0.11's runs are ``runs/r41fix``, of the split as the pilot ran on it (its first
correction; the second, later, changed the docstring pairs and their LR)::

    python results/defaults/round42/score.py RUNS   # RUNS: runs/ of this checkout
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parents[1] / "round20"))
sys.path.insert(0, str(Path(__file__).parents[1] / "round21"))
sys.path.insert(0, str(Path(__file__).parents[1] / "round41"))

import beyond_noise
import pooled
import readings

PILOT = "greedy(max_lr_ratio=1)"
#: 0.11's stored runs of the same specs, and the other arms' files the readings pool
HELDOUT = ("r42/no_climb_heldout_*.json", "r37/stalled_heldout_*.json",
           "r25/plateau_heldout_*.json", "r29/worse3_heldout_*.json",
           "r30/round30_heldout_probe12.json", "r33/named_heldout_probe13.json",
           "r40/round40_heldout_probe14.json", "r41fix/round41_heldout_probe15.json")
GRID = tuple(p.replace("heldout", "grid") for p in HELDOUT)
AS = ["--as", "probe15:greedy=greedy(eps=7.3e-297)"]


def main(root: Path) -> None:
    def files(patterns: tuple[str, ...]) -> list[str]:
        return [str(p) for pattern in patterns for p in sorted(root.glob(pattern))]

    print("-- held-out protocol (the issue's reading)")
    pooled.heldout([*AS, *files(HELDOUT)])
    print("-- beyond noise")
    heldout, reseeded = beyond_noise.files("r41fix")
    beyond_noise.main(root, (HELDOUT[0], *heldout),
                      {**beyond_noise.NAMES, (None, PILOT): "no_climb"}, reseeded)
    print("-- LR grids against the best-tuned cosine")
    pooled.grid([*AS, *files(GRID)])
    print(f"-- 0.11 against {PILOT} at each grid point ('better': 0.11 better)")
    readings.versus("greedy(eps=7.3e-297)",
                    [*files(GRID[:2]), str(root / "r40/round40_grid_probe14.json"),
                     f"{root / 'r41fix/round41_grid_probe15.json'}=greedy"], against=PILOT)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

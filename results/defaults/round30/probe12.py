"""Round 30: GreedyLR 0.8 and round 29's ``worse3`` on the twelfth probe split, declared
before any GreedyLR run on it (``results/defaults/DECISION.md``, round 30).

``run OUT``: on ``probe12``, under the held-out protocol (3 seeds, the workload's LR,
GreedyLR fed the validation half and scored on the other), cosine, 0.8 (the package's
defaults) and ``worse3`` (round 29's patch of the held-out rule, marked by ``eps``), and
cosine on seeds 3, 4, 5 (the spread round 29's beyond-noise reading needs); at every
point of the split's LR grid (2 seeds), cosine, 0.8 and ``worse3``. Results in
``OUT/round30_heldout_probe12.json``, ``OUT/reseeded_heldout_probe12.json`` and
``OUT/round30_grid_probe12.json`` (read, not rerun, when there). ``score OUT`` prints the
declared readings and the declared decision, condition by condition::

    python results/defaults/round30/probe12.py run OUT
    python results/defaults/round30/probe12.py score OUT

``pool OUT STORED...`` prints the same readings pooled with the other splits' stored runs
(descriptive, beside the decision); ``same OUT STORED...`` checks that the package's
defaults, once ``worse3`` is adopted as ``eval_compound_margin``, run the prototype's
runs bit for bit.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parents[1] / "round20"))
sys.path.insert(0, str(Path(__file__).parents[1] / "round21"))
sys.path.insert(0, str(Path(__file__).parents[1] / "round29"))

import noise_floor
import pooled
import prototypes
import readings
from compound import MARKS
from compound import _patch as patch_worse3

SPLIT = "probe12"
WORSE3 = ("greedy", {"eps": MARKS["worse3"]})
ARMS = (("cosine", {}), ("greedy", {}), WORSE3)
#: the arm names :func:`greedylr.studies.metrics.arm_of` gives
W, G = f"greedy(eps={MARKS['worse3']})", "greedy"


def _paths(out: Path) -> dict[str, Path]:
    return {"heldout": out / f"round30_heldout_{SPLIT}.json",
            "reseeded": out / f"reseeded_heldout_{SPLIT}.json",
            "grid": out / f"round30_grid_{SPLIT}.json"}


def run(out: Path) -> None:
    from greedylr.evidence.defaults import HELDOUT_SPLITS, heldout_specs

    paths = _paths(out)
    prototypes._run(heldout_specs(HELDOUT_SPLITS[SPLIT], f"defaults_heldout_{SPLIT}",
                                  choices=ARMS), paths["heldout"], patch_worse3)
    prototypes._run(noise_floor._reseeded(noise_floor._heldout(SPLIT, "cosine")),
                    paths["reseeded"])
    prototypes._run(prototypes.grid_points(SPLIT, ARMS), paths["grid"], patch_worse3)


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    """A run's spec but its schedule: the same run under another arm has it too."""
    s = r["spec"]
    return s["workload"], s["lr"], s["seed"], s["steps"]


def _changed(runs: list[dict[str, Any]]) -> int:
    """How many of ``worse3``'s runs have an LR that 0.8's run of the same spec has not:
    the patch acted there (it changes nothing else)."""
    from greedylr.studies import metrics as M

    base = {_key(r): r["lrs"] for r in runs if M.arm_of(r) == G}
    return sum(r["lrs"] != base[_key(r)] for r in runs if M.arm_of(r) == W)


def score(out: Path) -> None:
    from greedylr.evidence.defaults import versus_cosine

    paths = _paths(out)
    heldout = json.loads(paths["heldout"].read_text())
    grid = json.loads(paths["grid"].read_text())
    print("-- held-out protocol (the issue's reading)")
    pooled.heldout([str(paths["heldout"])])
    rows = versus_cosine(heldout)
    counts = {a: round(rows[a]["final_pct"] * rows[a]["final_n"] / 100) for a in (G, W)}
    print("-- beyond noise (a shortfall counts beyond 1% and 2 standard errors)")
    reseeded = [noise_floor._named(r) for r in json.loads(paths["reseeded"].read_text())]
    noise = noise_floor._print_beyond_noise(heldout + reseeded)
    print("-- LR grid against the best-tuned cosine")
    tol = prototypes.print_tolerance(SPLIT, grid)
    print("-- worse3 against 0.8 at each grid point (seed means more than 2% apart)")
    sides = Counter((i, readings.side_of(mine, other))
                    for i, mine, other in readings.versus(W, [str(paths["grid"])], against=G))
    changed = {"heldout": _changed(heldout), "grid": _changed(grid)}
    print(f"-- worse3's runs whose LRs differ from 0.8's: {changed['heldout']} of "
          f"{len(heldout) // 3} held out, {changed['grid']} of {len(grid) // 3} on the grid")

    better = sum(n for (_, side), n in sides.items() if side == "better")
    worse = sum(n for (_, side), n in sides.items() if side == "worse")
    bottom = sum(n for (i, side), n in sides.items() if side == "worse" and i < 2)
    g, w, c = tol[G], tol[W], tol["cosine"]
    points = len(g.ratios)
    within = {a: round(t.within * points) for a, t in ((G, g), (W, w))}
    failed = [r for r in heldout + grid if r["status"] != "ok"]
    decision = {
        "1. worse3 acts (a run's LRs differ from 0.8's)": sum(changed.values()) > 0,
        f"2. F (issue's reading) {counts[W]} >= 0.8's {counts[G]}": counts[W] >= counts[G],
        **{f"3. beyond noise {q} {noise[W][q]:.0f}% >= 0.8's {noise[G][q]:.0f}%":
           noise[W][q] >= noise[G][q] for q in "FBT"},
        f"4a. grid: better than 0.8 at {better} points, worse at {worse}": better >= worse,
        f"4b. at 0.1x and 0.316x worse than 0.8 at {bottom} points (at most 1)": bottom <= 1,
        f"5a. median ratio {w.median_ratio:.3f} <= 0.8's {g.median_ratio:.3f} + 0.01":
            w.median_ratio <= g.median_ratio + 0.01,
        f"5b. within 2% {within[W]} of {points} >= 0.8's {within[G]} less 1":
            within[W] >= within[G] - 1,
        f"6. no run of worse3 diverges ({w.bad})": w.bad == 0,
        f"7. every run completes ({len(failed)} failed)": not failed,
    }
    print("-- the declared decision: worse3 is adopted only if every condition holds")
    for condition, holds in decision.items():
        print(f"{'holds' if holds else 'FAILS'}: {condition}")
    print("adopted" if all(decision.values()) else "not adopted")
    claims = {
        f"a. 0.8's final held-out metric as good as cosine's on {counts[G]} of "
        f"{rows[G]['final_n']} (at least 2)": counts[G] >= 2,
        f"b. 0.8's grid share within 2% {100 * g.within:.0f}% >= cosine's "
        f"{100 * c.within:.0f}%": g.within >= c.within,
        f"b. 0.8's grid median {g.median_ratio:.3f} <= cosine's {c.median_ratio:.3f}":
            g.median_ratio <= c.median_ratio,
        f"c. at 0.1x 0.8's median {g.by_position[0]:.2f} < cosine's {c.by_position[0]:.2f}":
            g.by_position[0] < c.by_position[0],
        f"d. no grid point of 0.8 diverges ({g.bad})": g.bad == 0,
    }
    print("-- 0.8's claims out of sample")
    for claim, holds in claims.items():
        print(f"{'holds' if holds else 'FAILS'}: {claim}")


def same(out: Path, stored: list[str]) -> None:
    """The package's defaults (0.9: ``eval_compound_margin=0.03``, no patch) against the
    prototype's runs where it acted: ``stored``, round 29's ``worse3`` files and 0.8's runs
    of the same specs (its ``plateau_heldout`` and ``base_grid`` files); the eight
    shortest such runs run again, each reported identical (LRs, losses, metrics) or not."""
    from greedylr.studies import metrics as M
    from greedylr.studies.trial import TrialSpec

    runs = [r for path in stored for r in json.loads(Path(path).read_text())]
    base = {_key(r): r["lrs"] for r in runs if M.arm_of(r) == G}
    acted = sorted((r for r in runs if M.arm_of(r) == W and r["lrs"] != base[_key(r)]),
                   key=lambda r: r["spec"]["steps"])[:8]
    specs = [TrialSpec.make(**{**r["spec"], "settings": {
        k: v for k, v in r["spec"]["settings"].items() if k != "eps"}}) for r in acted]
    again = prototypes._run(specs, out / "same_as_prototype.json")
    for old, new in zip(acted, again, strict=True):
        identical = all(old[k] == new[k] for k in ("lrs", "losses", "metrics"))
        print(f"{old['spec']['workload']} lr {old['spec']['lr']} seed {old['spec']['seed']}: "
              f"{'identical' if identical else 'DIFFERENT'}")


def pool(out: Path, stored: list[str]) -> None:
    """The readings pooled over every split: this round's runs with ``stored``, results
    files of the other splits (held-out and grid files by their names; round 29's
    ``floor_heldout_*`` files for the reseeded cosine of the beyond-noise reading)."""
    paths = _paths(out)
    floors = [p for p in stored if Path(p).name.startswith("floor_heldout_")]
    heldout = [p for p in stored if "heldout" in Path(p).name and p not in floors]
    grid = [p for p in stored if "_grid_" in Path(p).name]
    print("-- held-out protocol (the issue's reading), every split")
    pooled.heldout([*heldout, str(paths["heldout"])])
    print("-- beyond noise, every split")
    runs = [r for p in [*heldout, str(paths["heldout"])] for r in json.loads(Path(p).read_text())]
    runs += [r for p in [*floors, str(paths["reseeded"])]
             for r in map(noise_floor._named, json.loads(Path(p).read_text()))
             if r["spec"]["schedule"] == "cosine_reseeded"]
    noise_floor._print_beyond_noise(runs)
    print("-- LR grids, every split")
    pooled.grid([*grid, str(paths["grid"])])
    print("-- worse3 against 0.8 at each grid point, every split")
    readings.versus(W, [*grid, str(paths["grid"])], against=G)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("run", "score", "pool", "same"):
        raise SystemExit("usage: probe12.py {run,score} OUT | probe12.py {pool,same} OUT "
                         "STORED...")
    if sys.argv[1] in ("pool", "same"):
        {"pool": pool, "same": same}[sys.argv[1]](Path(sys.argv[2]), sys.argv[3:])
    else:
        {"run": run, "score": score}[sys.argv[1]](Path(sys.argv[2]))

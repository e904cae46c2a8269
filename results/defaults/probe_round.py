"""A round declared on an unseen probe split: the package's defaults and one candidate
against cosine, under the held-out protocol and on the split's LR grid, scored by the
declared decision (rounds 30 and 33; ``results/defaults/DECISION.md``).

``run OUT``: on the split, under the held-out protocol (3 seeds, the workload's LR,
GreedyLR fed the validation half and scored on the other), cosine, the defaults and the
candidate, and cosine on seeds 3, 4, 5 (the spread round 29's beyond-noise reading
needs); at every point of the split's LR grid (2 seeds), the same three arms. Results in
``OUT/<tag>_heldout_<split>.json``, ``OUT/reseeded_heldout_<split>.json`` and
``OUT/<tag>_grid_<split>.json`` (read, not rerun, when there). ``score OUT`` prints the
declared readings and the declared decision, condition by condition; ``pool OUT
STORED...`` the same readings pooled with the other splits' stored runs (descriptive,
beside the decision); ``same OUT STORED...`` checks that the package, with the candidate
as it ships, runs the prototype's runs bit for bit.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "round20"))
sys.path.insert(0, str(Path(__file__).parent / "round21"))
sys.path.insert(0, str(Path(__file__).parent / "round29"))

import noise_floor
import pooled
import prototypes
import readings

#: the defaults' arm name (:func:`greedylr.studies.metrics.arm_of`)
G = "greedy"


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    """A run's spec but its schedule: the same run under another arm has it too."""
    s = r["spec"]
    return s["workload"], s["lr"], s["seed"], s["steps"]


@dataclass(frozen=True)
class ProbeRound:
    """One declared round: ``candidate`` (schedule, settings) beside the defaults.

    ``name``: what the readings call the candidate; ``version``: the defaults' version;
    ``patch``: what a prototype candidate needs in every worker (None for a knob the
    package has); ``ships``: the settings that replace a prototype's (its ``eps`` mark)
    when ``same`` runs its runs again through the package; ``prototype``: for ``same``,
    the prototype's arm name and that of the defaults it patched, in the stored files
    (by default the candidate's and the defaults').
    """

    split: str
    tag: str
    candidate: tuple[str, dict[str, Any]]
    name: str
    version: str
    patch: Callable[[], None] | None = None
    ships: Callable[[dict[str, Any]], dict[str, Any]] = dict
    prototype: tuple[str, str] | None = None

    @property
    def arms(self) -> tuple[tuple[str, dict[str, Any]], ...]:
        return (("cosine", {}), (G, {}), self.candidate)

    @property
    def arm(self) -> str:
        """The candidate's arm name."""
        from greedylr.studies import metrics as M

        schedule, settings = self.candidate
        return M.arm_of({"spec": {"schedule": schedule, "settings": settings}})

    def paths(self, out: Path) -> dict[str, Path]:
        return {"heldout": out / f"{self.tag}_heldout_{self.split}.json",
                "reseeded": out / f"reseeded_heldout_{self.split}.json",
                "grid": out / f"{self.tag}_grid_{self.split}.json"}

    def run(self, out: Path) -> None:
        from greedylr.evidence.defaults import HELDOUT_SPLITS, heldout_specs

        paths = self.paths(out)
        prototypes._run(heldout_specs(HELDOUT_SPLITS[self.split],
                                      f"defaults_heldout_{self.split}", choices=self.arms),
                        paths["heldout"], self.patch)
        prototypes._run(noise_floor._reseeded(noise_floor._heldout(self.split, "cosine")),
                        paths["reseeded"])
        prototypes._run(prototypes.grid_points(self.split, self.arms), paths["grid"],
                        self.patch)

    def _changed(self, runs: list[dict[str, Any]]) -> int:
        """How many of the candidate's runs have an LR that the defaults' run of the same
        spec has not: the candidate acted there."""
        from greedylr.studies import metrics as M

        base = {_key(r): r["lrs"] for r in runs if M.arm_of(r) == G}
        return sum(r["lrs"] != base[_key(r)] for r in runs if M.arm_of(r) == self.arm)

    def read(self, out: Path) -> dict[str, Any]:
        """Print every declared reading of the split's runs and return them:
        ``counts`` (F as workloads, by arm), ``rows`` (:func:`versus_cosine`), ``noise``
        (beyond-noise shares), ``tol`` (grid tolerances), ``sides`` (the candidate
        against the defaults at each grid point, by position), ``changed``, ``failed``."""
        from greedylr.evidence.defaults import versus_cosine

        W, name, version = self.arm, self.name, self.version
        paths = self.paths(out)
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
        tol = prototypes.print_tolerance(self.split, grid)
        print(f"-- {name} against {version} at each grid point (seed means more than 2% "
              "apart)")
        sides = Counter((i, readings.side_of(mine, other))
                        for i, mine, other in readings.versus(W, [str(paths["grid"])],
                                                              against=G))
        changed = {"heldout": self._changed(heldout), "grid": self._changed(grid)}
        print(f"-- {name}'s runs whose LRs differ from {version}'s: {changed['heldout']} of "
              f"{len(heldout) // 3} held out, {changed['grid']} of {len(grid) // 3} on the "
              "grid")
        failed = [r for r in heldout + grid if r["status"] != "ok"]
        return {"counts": counts, "rows": rows, "noise": noise, "tol": tol, "sides": sides,
                "changed": changed, "failed": failed}

    def decision(self, r: dict[str, Any]) -> dict[str, bool]:
        """Round 30's conditions: the candidate is adopted only if every one holds."""
        W, name, version = self.arm, self.name, self.version
        counts, noise, sides, changed = r["counts"], r["noise"], r["sides"], r["changed"]
        better = sum(n for (_, side), n in sides.items() if side == "better")
        worse = sum(n for (_, side), n in sides.items() if side == "worse")
        bottom = sum(n for (i, side), n in sides.items() if side == "worse" and i < 2)
        g, w = r["tol"][G], r["tol"][W]
        points = len(g.ratios)
        within = {a: round(t.within * points) for a, t in ((G, g), (W, w))}
        return {
            f"1. {name} acts (a run's LRs differ from {version}'s)": sum(changed.values()) > 0,
            f"2. F (issue's reading) {counts[W]} >= {version}'s {counts[G]}":
                counts[W] >= counts[G],
            **{f"3. beyond noise {q} {noise[W][q]:.0f}% >= {version}'s {noise[G][q]:.0f}%":
               noise[W][q] >= noise[G][q] for q in "FBT"},
            f"4a. grid: better than {version} at {better} points, worse at {worse}":
                better >= worse,
            f"4b. at 0.1x and 0.316x worse than {version} at {bottom} points (at most 1)":
                bottom <= 1,
            f"5a. median ratio {w.median_ratio:.3f} <= {version}'s {g.median_ratio:.3f} + 0.01":
                w.median_ratio <= g.median_ratio + 0.01,
            f"5b. within 2% {within[W]} of {points} >= {version}'s {within[G]} less 1":
                within[W] >= within[G] - 1,
            f"6. no run of {name} diverges ({w.bad})": w.bad == 0,
            f"7. every run completes ({len(r['failed'])} failed)": not r["failed"],
        }

    #: what the decision's verdict says when every condition holds, and otherwise
    verdicts: tuple[str, str] = ("adopted", "not adopted")

    def heading(self) -> str:
        """The decision's heading: what holds only if every condition does."""
        return f"{self.name} is {self.verdicts[0]}"

    def score(self, out: Path) -> None:
        r = self.read(out)
        decision = self.decision(r)
        print(f"-- the declared decision: {self.heading()} only if every condition holds")
        for condition, holds in decision.items():
            print(f"{'holds' if holds else 'FAILS'}: {condition}")
        print(self.verdicts[0] if all(decision.values()) else self.verdicts[1])
        version, counts, rows = self.version, r["counts"], r["rows"]
        g, c = r["tol"][G], r["tol"]["cosine"]
        claims = {
            f"a. {version}'s final held-out metric as good as cosine's on {counts[G]} of "
            f"{rows[G]['final_n']} (at least 2)": counts[G] >= 2,
            f"b. {version}'s grid share within 2% {100 * g.within:.0f}% >= cosine's "
            f"{100 * c.within:.0f}%": g.within >= c.within,
            f"b. {version}'s grid median {g.median_ratio:.3f} <= cosine's "
            f"{c.median_ratio:.3f}": g.median_ratio <= c.median_ratio,
            f"c. at 0.1x {version}'s median {g.by_position[0]:.2f} < cosine's "
            f"{c.by_position[0]:.2f}": g.by_position[0] < c.by_position[0],
            f"d. no grid point of {version} diverges ({g.bad})": g.bad == 0,
        }
        print(f"-- {version}'s claims out of sample")
        for claim, holds in claims.items():
            print(f"{'holds' if holds else 'FAILS'}: {claim}")

    def same(self, out: Path, stored: list[str]) -> None:
        """The package with the candidate as it ships (``ships``, no patch) against the
        prototype's runs where it acted: ``stored``, the prototype's files and the
        defaults' runs of the same specs; the eight shortest such runs run again, each
        reported identical (LRs, losses, metrics) or not."""
        from greedylr.studies import metrics as M
        from greedylr.studies.trial import TrialSpec

        arm, patched = self.prototype or (self.arm, G)
        runs = [r for path in stored for r in json.loads(Path(path).read_text())]
        base = {_key(r): r["lrs"] for r in runs if M.arm_of(r) == patched}
        acted = sorted((r for r in runs if M.arm_of(r) == arm and r["lrs"] != base[_key(r)]),
                       key=lambda r: r["spec"]["steps"])[:8]
        specs = [TrialSpec.make(**{**r["spec"], "settings": self.ships(r["spec"]["settings"])})
                 for r in acted]
        again = prototypes._run(specs, out / "same_as_prototype.json")
        for old, new in zip(acted, again, strict=True):
            identical = all(old[k] == new[k] for k in ("lrs", "losses", "metrics"))
            print(f"{old['spec']['workload']} lr {old['spec']['lr']} seed "
                  f"{old['spec']['seed']}: {'identical' if identical else 'DIFFERENT'}")

    def pool(self, out: Path, stored: list[str]) -> None:
        """The readings pooled over every split: this round's runs with ``stored``,
        results files of the other splits (held-out and grid files by their names; round
        29's ``floor_heldout_*`` files for the reseeded cosine of the beyond-noise
        reading)."""
        paths = self.paths(out)
        floors = [p for p in stored if Path(p).name.startswith("floor_heldout_")]
        heldout = [p for p in stored if "heldout" in Path(p).name and p not in floors]
        grid = [p for p in stored if "_grid_" in Path(p).name]
        print("-- held-out protocol (the issue's reading), every split")
        pooled.heldout([*heldout, str(paths["heldout"])])
        print("-- beyond noise, every split")
        runs = [r for p in [*heldout, str(paths["heldout"])]
                for r in json.loads(Path(p).read_text())]
        runs += [r for p in [*floors, str(paths["reseeded"])]
                 for r in map(noise_floor._named, json.loads(Path(p).read_text()))
                 if r["spec"]["schedule"] == "cosine_reseeded"]
        noise_floor._print_beyond_noise(runs)
        print("-- LR grids, every split")
        pooled.grid([*grid, str(paths["grid"])])
        print(f"-- {self.name} against {self.version} at each grid point, every split")
        readings.versus(self.arm, [*grid, str(paths["grid"])], against=G)

    def main(self, argv: Sequence[str]) -> None:
        script = f"{self.split}.py"
        if len(argv) < 2 or argv[0] not in ("run", "score", "pool", "same"):
            raise SystemExit(f"usage: {script} {{run,score}} OUT | {script} {{pool,same}} "
                             "OUT STORED...")
        if argv[0] in ("pool", "same"):
            {"pool": self.pool, "same": self.same}[argv[0]](Path(argv[1]), list(argv[2:]))
        else:
            {"run": self.run, "score": self.score}[argv[0]](Path(argv[1]))

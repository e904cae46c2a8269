"""Recovery after a damaging event, paired with cosine, from ``runs.csv`` and
``events.csv`` alone. The report's figure (median recovery steps over the damaged events
a schedule recovered from) compares different sets of events: a schedule damaged more
often, or recovering from harder events, is measured on other events than cosine. Here
each event is matched with the same event (family, perturbation, strength, seed, step) in
cosine's run; an event that did no damage counts 0 steps, one never recovered from
counts as infinite. Usage::

    python recovery_paired.py [FOLDER]   # default: this script's folder
"""

import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from greedylr.evidence.robustness.recovery import damaged

#: The events the report's recovery figure pools: spikes and shard shifts.
FAMILIES = ("periodic_spike", "random_spike", "shard_shift")
#: The first step of the 0.2 rule's final cooldown in these 200-step runs (20%).
COOLDOWN_START = 160


def main(folder: Path) -> None:
    runs = {r["run"]: r for r in csv.DictReader(open(folder / "runs.csv"))}
    rows = list(csv.DictReader(open(folder / "events.csv")))
    hurt = damaged({k: np.array([float(e[k]) for e in rows]) for k in ("peak", "level")})
    events: dict[tuple[str, ...], dict[str, tuple[bool, float, int]]] = defaultdict(dict)
    for e, was_damaged in zip(rows, hurt.tolist()):
        run = runs[e["run"]]
        if run["perturb_family"] not in FAMILIES:
            continue
        steps = float(e["recovery_steps"] or math.inf) if was_damaged else 0.0
        key = (run["family"], run["perturbation"], run["strength"], run["seed"], e["start"])
        events[key][run["schedule"]] = (was_damaged, steps, int(e["start"]))
    schedules = sorted({s for v in events.values() for s in v} - {"cosine"})
    print("| schedule | events damaged in either run | damaged: it / cosine | median steps, "
          "it / cosine (never = inf) | faster / same / slower than cosine | it, median over "
          "recovered damaged events: before / in the last 20% |")
    print("|---|---|---|---|---|---|")
    for s in schedules:
        pairs = [(v[s], v["cosine"]) for v in events.values()
                 if s in v and "cosine" in v and (v[s][0] or v["cosine"][0])]
        mine = np.array([a[1] for a, _ in pairs])
        cos = np.array([b[1] for _, b in pairs])
        recovered = [a for a, _ in pairs if a[0] and math.isfinite(a[1])]
        before = [a[1] for a in recovered if a[2] < COOLDOWN_START]
        late = [a[1] for a in recovered if a[2] >= COOLDOWN_START]
        hit = f"{sum(a[0] for a, _ in pairs)} / {sum(b[0] for _, b in pairs)}"
        shares = " / ".join(f"{share:.0%}" for share in
                            (np.mean(mine < cos), np.mean(mine == cos), np.mean(mine > cos)))
        print(f"| `{s}` | {len(pairs)} | {hit} | {np.median(mine):g} / {np.median(cos):g} "
              f"| {shares} | {_median(before)} / {_median(late)} |")


def _median(values: list[float]) -> str:
    return f"{np.median(values):g} ({len(values)})" if values else "- (0)"

if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)

"""Round 29, descriptive: how often cosine is "as good as" cosine, the instrument's floor.

Issue 12's comparisons count a schedule as good as cosine where its seed mean (3 seeds)
is within 1% of cosine's or better. Two schedules that are cosine in expectation, scored
against cosine exactly as a GreedyLR arm is (:func:`versus_cosine`, every split of
``HELDOUT_SPLITS``, the held-out protocol):

- ``cosine_nudged``: cosine at 1.001 times the workload's LR, the same seeds (the same
  initialisations and batches: the pairing a GreedyLR arm has; the runs part only as
  the rounding of a 0.1% larger step compounds);
- ``cosine_reseeded``: cosine at the workload's LR on seeds 3, 4, 5 (what a rerun of the
  same study on other seeds would compare).

Whatever share of comparisons these lose, a rule that is not cosine loses too by noise
alone. With 0.8 run on seeds 3, 4, 5 as well, ``score`` prints four readings:
``controls`` (both controls and 0.8 against cosine, the issue's rule), ``replica`` (0.8
against cosine on seeds 3-5 alone: how far the headline figures move with the seeds),
``six`` (0.8, and the nudged cosine where ``nudged`` ran, against cosine, six seeds
each) and ``beyond noise`` (:func:`beyond_noise`)::

    python results/defaults/round29/noise_floor.py run OUT      # the two controls
    python results/defaults/round29/noise_floor.py greedy OUT   # 0.8 on seeds 3, 4, 5
    python results/defaults/round29/noise_floor.py nudged OUT   # the nudged cosine, seeds 3-5
    python results/defaults/round29/noise_floor.py score OUT STORED...
    python results/defaults/round29/noise_floor.py rescore OUT STORED...   # other arms
    python results/defaults/round29/noise_floor.py grid OUT     # cosine's grids, next seeds
    python results/defaults/round29/noise_floor.py greedy-grid OUT   # 0.8's, next seeds
    python results/defaults/round29/noise_floor.py grid-score OUT STORED...  # both grids
"""
from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))

NUDGE = 1.001
RESEEDS = (3, 4, 5)


def _heldout(split: str, schedule: str) -> list[Any]:
    """``schedule`` (the package's defaults) under ``split``'s held-out protocol."""
    from greedylr.evidence.defaults import HELDOUT_SPLITS, heldout_specs

    return heldout_specs(HELDOUT_SPLITS[split], f"defaults_heldout_{split}",
                         choices=((schedule, {}),))


def _reseeded(specs: list[Any]) -> list[Any]:
    """``specs`` on seeds 3, 4, 5 instead of the protocol's 0, 1, 2."""
    offset = RESEEDS[0] - min(s.seed for s in specs)
    return [replace(s, seed=s.seed + offset) for s in specs]


def _nudged(split: str) -> list[Any]:
    """``cosine_nudged`` on the protocol's seeds."""
    from greedylr.evidence import workloads

    return [replace(s, lr=NUDGE * workloads.get(s.workload).lr)
            for s in _heldout(split, "cosine")]


def _specs(split: str) -> list[Any]:
    """The two controls: ``cosine_nudged`` and ``cosine_reseeded``."""
    return _nudged(split) + _reseeded(_heldout(split, "cosine"))


def _greedy_specs(split: str) -> list[Any]:
    """0.8 (the package's defaults, fed the validation half) on seeds 3, 4, 5."""
    return _reseeded(_heldout(split, "greedy"))


def _nudged_specs(split: str) -> list[Any]:
    """``cosine_nudged`` on seeds 3, 4, 5: the control's six seeds."""
    return _reseeded(_nudged(split))


def _grid_specs(split: str, schedule: str = "cosine") -> list[Any]:
    """``schedule`` (the package's defaults) at every point of ``split``'s held-out LR
    grid on the next seeds (2, 3 where the grid has 0, 1; 3, 4, 5 on the tuning split's
    three)."""
    from prototypes import grid_points

    points = grid_points(split, ((schedule, {}),))
    seeds = sorted({s.seed for s in points})
    return [replace(s, seed=s.seed + len(seeds)) for s in points]


def grid_score(out: Path, stored: list[str]) -> None:
    """The reseeded cosine against the best-tuned cosine of the stored grids (files
    ``*_<split>.json``): how often a rerun of cosine at each grid position is within 2%;
    with 0.8's grids on the next seeds (``greedy-grid``) run too, 0.8's grid figures on
    those seeds alone and on every seed."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "round20"))
    from pooled import _runs

    from greedylr.evidence.defaults import HELDOUT_SPLITS
    from greedylr.studies.tuning import final_heldout_loss

    stored_runs = _runs(stored)
    named = {}
    for split in HELDOUT_SPLITS:
        again = json.loads((out / f"floor_grid_{split}.json").read_text())
        for r in again:
            r["spec"]["schedule"] = "cosine_reseeded"
        named[split] = again + [r for r in stored_runs[split]
                                if r["spec"]["schedule"] == "cosine"]
    _pool(out, "named", named, "grid")
    loss: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(
        lambda: defaultdict(list))
    for r in (r for runs in named.values() for r in runs):
        loss[r["spec"]["workload"], r["spec"]["schedule"]][float(r["spec"]["lr"])].append(
            final_heldout_loss(r))
    at_best, best_again = [], []
    for (workload, arm), by_lr in loss.items():
        if arm != "cosine":
            continue
        means = {lr: float(np.mean(v)) for lr, v in by_lr.items()}
        again = {lr: float(np.mean(v)) for lr, v in loss[workload, "cosine_reseeded"].items()}
        best = min(means, key=means.__getitem__)
        at_best.append(again[best] / means[best])
        best_again.append(min(again.values()) / means[best])
    print(f"the reseeded cosine at the best-tuned cosine's LR: within 2% at "
          f"{100 * np.mean(np.array(at_best) <= 1.02):.0f}% of {len(at_best)} workloads, "
          f"median ratio {np.median(at_best):.3f}; its own best LR within 2% at "
          f"{100 * np.mean(np.array(best_again) <= 1.02):.0f}%")
    if not all((out / f"greedy_grid_{split}.json").exists() for split in HELDOUT_SPLITS):
        return
    plain = ("cosine", "greedy")
    for name, with_stored in (("replica", False), ("all", True)):
        runs = {}
        for split in HELDOUT_SPLITS:
            runs[split] = [r for kind in ("floor", "greedy")
                           for r in json.loads((out / f"{kind}_grid_{split}.json").read_text())]
            if with_stored:
                kept = [r for r in stored_runs[split] if r["spec"]["schedule"] in plain
                        and not r["spec"]["settings"].keys() - {"workload_feed_split"}]
                if not any(r["spec"]["schedule"] == "greedy" for r in kept):
                    raise SystemExit(f"no stored 0.8 grid runs of {split}: give them too "
                                     "(runs/r28/base_grid_*.json)")
                runs[split] += kept
        _pool(out, name, runs, "grid", f"{name}: 0.8 against the best-tuned cosine, "
              + ("every seed" if with_stored else "both on the next seeds alone"))


def _quantities(r: dict[str, Any]) -> dict[str, float]:
    """What the held-out protocol compares, of one run: the final metric (F), the best
    one by 50% and 100% (B) and the smoothed training loss at 10%, 50% and 100% (T)."""
    from greedylr.evidence.defaults import M, _best_until

    final = M.final_metric(r) if r["status"] == "ok" else None
    return {"F": math.nan if final is None else final,
            **{f"B{stage}": _best_until(r, stage) for stage in (0.5, 1.0)},
            **{f"T{stage}": M.loss_at(r, stage) for stage in M.STAGES}}


def beyond_noise(runs: list[dict[str, Any]], z: float = 2.0) -> dict[str, dict[str, float]]:
    """Each arm's shares of F, B and T against cosine's seeds 0-2 where a shortfall
    counts only if it exceeds both 1% and ``z`` standard errors of the difference of two
    3-seed means, the standard deviation being cosine's over its six seeds (0-5: the
    protocol's and the reseeded control's)."""
    from greedylr.evidence.defaults import TOLERANCE, M

    values: dict[tuple[str, str], dict[int, dict[str, float]]] = defaultdict(dict)
    higher: dict[str, bool] = {}
    for r in runs:
        if r["status"] == "failed":
            continue
        w, arm = r["spec"]["workload"], M.arm_of(r)
        higher[w] = M.metric_name(r)[1]
        values[arm, w][r["spec"]["seed"]] = _quantities(r)
    shares: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for (arm, w), seeds in values.items():
        if arm == "cosine":
            continue
        cos = values["cosine", w]
        six = {**cos, **values["cosine_reseeded", w]}
        for q in seeds[min(seeds)]:
            base = np.mean([cos[s][q] for s in cos])
            if not math.isfinite(base):  # cosine never evaluated by then: no comparison
                continue
            mine = np.mean([seeds[s][q] for s in seeds])
            spread = np.std([six[s][q] for s in six], ddof=1) * math.sqrt(2 / 3)
            allowed = max(TOLERANCE * abs(base), z * spread)
            up = q[0] in "FB" and higher[w]
            ok = bool(math.isfinite(mine)) and (mine >= base - allowed if up
                                                else mine <= base + allowed)
            shares[arm][q[0]].append(ok)
    return {arm: {k: 100 * sum(v) / len(v) for k, v in by.items()}
            for arm, by in shares.items()}


def _named(r: dict[str, Any]) -> dict[str, Any]:
    """A run under the name of the schedule it stands for."""
    spec = r["spec"]
    if spec["schedule"] == "cosine" and spec["lr"] is not None:
        spec["schedule"] = "cosine_nudged"
    elif spec["seed"] in RESEEDS:
        spec["schedule"] += "_reseeded"
    return r


def _pool(out: Path, name: str, runs: dict[str, list[dict[str, Any]]],
          protocol: str = "heldout", heading: str | None = None) -> None:
    """``pooled.py PROTOCOL`` on ``runs`` (by split), kept as ``out/<name>_<protocol>_*``,
    under ``-- heading`` where one is given."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "round20"))
    import pooled

    paths = []
    for split, rs in runs.items():
        path = out / f"{name}_{protocol}_{split}.json"
        path.write_text(json.dumps(rs))
        paths.append(str(path))
    if heading is not None:
        print(f"-- {heading}")
    getattr(pooled, protocol)(paths)


def score(out: Path, stored: list[str]) -> None:
    """The four readings, from this round's runs in ``out`` and the stored runs of cosine
    and 0.8 on seeds 0-2 (``stored``: files ``*_<split>.json``)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "round20"))
    from pooled import _runs

    from greedylr.evidence.defaults import HELDOUT_SPLITS

    base = {split: [r for r in rs if r["spec"]["schedule"] in ("cosine", "greedy")
                    and not r["spec"]["settings"].keys() - {"workload_feed_split"}]
            for split, rs in _runs(stored).items()}
    mine = {split: [_named(r) for name in ("floor", "greedy")
                    for r in json.loads((out / f"{name}_heldout_{split}.json").read_text())]
            for split in HELDOUT_SPLITS}
    _pool(out, "controls", {s: base[s] + mine[s] for s in HELDOUT_SPLITS}, heading="controls")

    def renamed(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for r in rs:
            r["spec"]["schedule"] = r["spec"]["schedule"].removesuffix("_reseeded")
        return rs

    again = {s: [r for r in mine[s] if r["spec"]["schedule"].endswith("_reseeded")]
             for s in HELDOUT_SPLITS}
    _pool(out, "replica", {s: renamed(json.loads(json.dumps(again[s])))
                           for s in HELDOUT_SPLITS}, heading="replica")
    six = {s: base[s] + renamed(json.loads(json.dumps(again[s]))) for s in HELDOUT_SPLITS}
    for s in HELDOUT_SPLITS:  # the nudged cosine's six seeds too, where ``nudged`` ran
        path = out / f"nudged_heldout_{s}.json"
        if path.exists():
            six[s] += [r for r in mine[s] if r["spec"]["schedule"] == "cosine_nudged"]
            six[s] += [_named(r) for r in json.loads(path.read_text())]
    _pool(out, "six", six, heading="six")
    print("-- beyond noise (a shortfall counts beyond 1% and 2 standard errors)")
    _print_beyond_noise([r for s in HELDOUT_SPLITS for r in base[s] + mine[s]])


def _print_beyond_noise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """:func:`beyond_noise`'s shares, an arm a line; returns them."""
    shares = beyond_noise(runs)
    for arm, row in sorted(shares.items()):
        print(f"{arm:58s} " + " ".join(f"{k} {v:.0f}%" for k, v in row.items()))
    return shares


def rescore(out: Path, stored: list[str]) -> None:
    """:func:`beyond_noise` for every arm of the stored held-out runs (files of every
    split, cosine's seeds 0-2 among them), the reseeded cosine from ``out``."""
    runs = [r for path in stored for r in json.loads(Path(path).read_text())]
    runs += [r for path in sorted(out.glob("floor_heldout_*.json"))
             for r in map(_named, json.loads(path.read_text()))
             if r["spec"]["schedule"] == "cosine_reseeded"]
    _print_beyond_noise(runs)


if __name__ == "__main__":
    from prototypes import every_split

    command, out = sys.argv[1], Path(sys.argv[2])
    if command == "run":
        every_split(_specs, out, "floor_heldout")
    elif command == "greedy":
        every_split(_greedy_specs, out, "greedy_heldout")
    elif command == "nudged":
        every_split(_nudged_specs, out, "nudged_heldout")
    elif command == "grid":
        every_split(_grid_specs, out, "floor_grid")
    elif command == "greedy-grid":
        every_split(lambda split: _grid_specs(split, "greedy"), out, "greedy_grid")
    elif command == "rescore":
        rescore(out, sys.argv[3:])
    elif command == "grid-score":
        grid_score(out, sys.argv[3:])
    else:
        score(out, sys.argv[3:])

"""Which stored GreedyLR runs start their final cooldown with every group at its lower
bound, the only runs ``floor_anneals_to_zero`` (0.7) changes.

Each argument is a study's output folder (or its ``trials/``), a prototype's results
file (a JSON list) or a robustness study's ``traces.npz`` (with its ``runs.csv`` beside
it). For trials, the
cooldown's ``anneal`` event quotes the LRs it starts from and the bound (rounded to four
digits, hence the tolerance); for the robustness traces, the LR before the cooldown's
first step (80% of the run) against 10% of the initial LR, the default lower bound:

    python results/defaults/round18/floor_starts.py runs/r17/small_models_greedy \\
        results/pretrain/trials results/robustness/traces.npz
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

TOLERANCE = 1e-3  # the reason's four significant digits


def _trials(path: Path) -> list[dict[str, Any]]:
    if path.is_dir():  # a study's output folder or its trials/
        folder = path / "trials" if (path / "trials").is_dir() else path
        return [json.loads(f.read_text()) for f in sorted(folder.glob("*.json"))]
    return list(json.loads(path.read_text()))


def _at_floor(event: dict[str, Any]) -> bool:
    towards = event["reason"].split("towards ", 1)[1]
    if "lower bound " not in towards:
        return False
    bounds = [float(x) for x in towards.split("lower bound ", 1)[1].split(":")[0].split(", ")]
    return all(lr <= lo * (1 + TOLERANCE) for lr, lo in zip(event["lrs_before"], bounds))


def trials(path: Path) -> tuple[int, list[str]]:
    runs = [r for r in _trials(path) if str(r["spec"]["schedule"]).startswith("greedy")]
    hits = [f"{r['spec']['workload']} lr {r['spec'].get('lr')} seed {r['spec']['seed']}"
            for r in runs for e in r.get("events") or []
            if e["kind"] == "anneal" and _at_floor(e)]
    return len(runs), hits


def robustness(path: Path) -> tuple[int, list[str]]:
    import numpy as np

    traces = np.load(path)
    row_of = {int(run): i for i, run in enumerate(traces["run"])}
    lrs = traces["lr"].astype(np.float64)
    with open(path.with_name("runs.csv")) as f:
        runs = [r for r in csv.DictReader(f) if r["schedule"].startswith("greedy")
                and int(r["run"]) in row_of]
    start = int(0.8 * lrs.shape[1]) - 1
    hits = [f"run {r['run']}" for r in runs
            if lrs[row_of[int(r["run"])], start] <= 0.1 * lrs[row_of[int(r["run"])], 0]
            * (1 + TOLERANCE)]
    return len(runs), hits


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        path = Path(arg)
        n, hits = (robustness if path.suffix == ".npz" else trials)(path)
        print(f"{arg}: {len(hits)} of {n} GreedyLR runs start the cooldown at the bound")
        for hit in hits:
            print("   ", hit)

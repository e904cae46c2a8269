"""Running the robustness study: train every family (or reuse its stored part), check the
speed, write the tables, the traces, the summary and the report."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from greedylr.evidence.robustness.design import StudyDesign, design
from greedylr.evidence.robustness.engine import BASE_LR, train_family
from greedylr.evidence.robustness.nets import NEURAL
from greedylr.evidence.robustness.report import write_report
from greedylr.evidence.robustness.speed import TrainedFamily, speed_check
from greedylr.evidence.robustness.tables import EVENT_FIELDS, RUN_FIELDS, summarise, write_csv
from greedylr.evidence.robustness.task import BATCH, FAMILIES, load_digits

__all__ = ["run_robustness"]

logger = logging.getLogger(__name__)

_TRACES = ("run", "observed", "probe", "lr", "corrupt")
"""The per-step arrays of ``traces.npz`` (and ``traces_all.npz``)."""


def run_robustness(out_dir: str | Path, quick: bool = False, *,
                   families: Sequence[str] | None = None,
                   average: float | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the robustness study and write its results and report into ``out_dir``.

    Writes ``runs.csv`` (one row per run), ``events.csv`` (one row per perturbation
    event), ``traces.npz`` (seed-0 loss, probe and LR traces, float16; ``traces_all.npz``
    holds every run's), ``summary.json``
    (design, wall times, speed-up, parity) and ``report.md`` with ``figures/*.png``.

    Args:
        out_dir: the folder for everything the study writes.
        quick: the quick design (about a minute) instead of the full one.
        families: only these families (default: all twelve).
        average: score every run on a power-function EMA of its weights with this gamma
            (:func:`greedylr.averaging.power_ema`; the probe and final held-out losses);
            ``None`` (default): on the weights themselves.
        progress: called with a line of text after each family.

    Returns:
        The summary (also in ``summary.json``).
    """

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    study = design(quick)
    if families is not None:
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
        study = dataclasses.replace(study, families=tuple(families))
    if average is not None:
        study = dataclasses.replace(study, average=float(average))
    # One thread: on a shared, oversubscribed CPU a second OpenMP thread mostly spins
    # (measured: 3.5x slower wall time with 2 threads than with 1).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_study(out, study, quick, progress)
    finally:
        torch.set_num_threads(threads)


def _design_key(study: StudyDesign, family: str) -> dict[str, Any]:
    """What a stored family part must match to be reused."""
    return {"steps": study.steps, "runs": [[r.schedule, r.perturbation.name, r.seed]
                                           for r in study.specs(family)],
            "batch": BATCH, "base_lr": BASE_LR, "average": study.average}


def _train_or_load(study: StudyDesign, family: str, parts: Path,
                   first_run: int) -> tuple[dict[str, Any], dict[str, np.ndarray], bool]:
    """One family's rows, events and traces: from its stored part, or trained now.

    A part is written atomically after its family has trained, so an interrupted study
    resumes at the first family without one and loses nothing.
    """
    meta_path, trace_path = parts / f"{family}.json", parts / f"{family}.npz"
    key = _design_key(study, family)
    if meta_path.exists() and trace_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["key"] == key and meta["first_run"] == first_run:
            with np.load(trace_path) as stored:
                return meta, dict(stored), True
    cpu = time.process_time()
    result = train_family(family, study.specs(family), steps=study.steps,
                          average=study.average)
    cpu = time.process_time() - cpu
    rows, events = summarise(result, first_run)
    meta = {"key": key, "first_run": first_run, "rows": rows, "events": events,
            "seconds": result.seconds, "cpu_s": cpu}
    traces: dict[str, Any] = {"run": np.array([r["run"] for r in rows]),
              "observed": result.observed.numpy().astype(np.float16),
              "probe": result.probe.numpy().astype(np.float16),
              "lr": result.lr.numpy().astype(np.float16),
              "corrupt": result.corrupt.numpy(),
              "seed": np.array([r.seed for r in result.specs])}
    parts.mkdir(parents=True, exist_ok=True)
    tmp = trace_path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **traces)
    tmp.replace(trace_path)
    tmp_meta = meta_path.with_suffix(".json.tmp")
    tmp_meta.write_text(json.dumps(meta))
    tmp_meta.replace(meta_path)
    return meta, traces, False


@dataclass
class _Collected:
    """Every family's rows, events and traces, in family order."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    seed0: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in _TRACES})
    every: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in _TRACES})
    batched: dict[str, TrainedFamily] = field(default_factory=dict)
    cpu_s: float = 0.0


def _train_all(out: Path, study: StudyDesign,
               progress: Callable[[str], None] | None) -> _Collected:
    """Train (or load) every family of ``study``, reporting a line after each."""
    got = _Collected()
    for family in study.families:
        meta, traces, resumed = _train_or_load(study, family, out / "parts", len(got.rows))
        keep = traces["seed"] == 0
        for k in _TRACES:
            got.every[k].append(traces[k])
            got.seed0[k].append(traces[k][keep])
        got.rows += meta["rows"]
        got.events += meta["events"]
        got.cpu_s += meta["cpu_s"]
        got.batched[family] = TrainedFamily(
            study.specs(family), np.array([r["final_loss"] for r in meta["rows"]]),
            meta["seconds"])
        n = len(meta["rows"])
        line = (f"{family}: {n} runs in {meta['seconds']:.1f} s ({n / meta['seconds']:.1f} "
                f"runs/s){' (stored)' if resumed else ''}")
        logger.info(line)
        if progress:
            progress(line)
    return got


def _write_results(out: Path, got: _Collected) -> None:
    """``runs.csv``, ``events.csv``, ``traces.npz`` (seed 0) and ``traces_all.npz``."""
    write_csv(out / "runs.csv", RUN_FIELDS, got.rows)
    write_csv(out / "events.csv", EVENT_FIELDS, got.events)
    seed0_arrays: dict[str, Any] = {k: np.concatenate(v) for k, v in got.seed0.items()}
    np.savez_compressed(out / "traces.npz", **seed0_arrays)
    # every run's traces too, so that any metric can be recomputed from stored data
    # (several MB: kept beside the results, not meant for version control)
    every_arrays: dict[str, Any] = {k: np.concatenate(v) for k, v in got.every.items()}
    np.savez_compressed(out / "traces_all.npz", **every_arrays)


def _summary(study: StudyDesign, quick: bool, got: _Collected, train_s: float,
             speed: dict[str, Any], started: float) -> dict[str, Any]:
    """What ``summary.json`` holds: the design, wall and CPU times, the speed check."""
    return {
        "design": {
            "quick": quick,
            "steps": study.steps,
            "families": list(study.families),
            "schedules": list(study.schedules),
            "conditions": [c.name for c in study.conditions],
            "neural_seeds": list(study.neural_seeds),
            "analytic_seeds": list(study.analytic_seeds),
            "runs": len(got.rows),
            "batch": BATCH,
            "base_lr": BASE_LR,
            "average": study.average,
        },
        "train_s": round(train_s, 1),
        "train_cpu_s": round(got.cpu_s, 1),
        "speed": speed,
        "wall_s": round(time.perf_counter() - started, 1),
        "threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _run_study(out: Path, study: StudyDesign, quick: bool,
               progress: Callable[[str], None] | None) -> dict[str, Any]:
    started = time.perf_counter()
    if any(f in NEURAL for f in study.families):
        load_digits()  # load (and import sklearn) before the clock of the first family
    got = _train_all(out, study, progress)
    train_s = time.perf_counter() - started
    speed = speed_check(study, got.batched)
    if progress:
        progress(f"one at a time: {speed['one_at_a_time_runs_per_s']:.2f} runs/s; batched "
                 f"{speed['batched_runs_per_s']:.1f} runs/s; speed-up {speed['speedup']:.1f}x")
    _write_results(out, got)
    summary = _summary(study, quick, got, train_s, speed, started)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_report(out)
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary

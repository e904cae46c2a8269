"""Run a prototype of the rule under the defaults study's protocols, descriptively.

A prototype is a patch of :mod:`greedylr.rule` (not in the package) applied in every
worker, and an arm whose settings mark the configs the patch acts on, so that cosine and
the 0.2 defaults run unpatched beside it. Two protocols, each scored as the package's
reports score them:

- ``heldout``: the held-out protocol of ``heldout-<split>`` (3 seeds, evaluated every 10%,
  GreedyLR fed the odd half), against cosine (:func:`versus_cosine`);
- ``grid``: the split's held-out LR grid, against the best-tuned cosine
  (:func:`greedylr.studies.tuning.tolerance_versus`).

Cosine and the 0.2 defaults run too, unless ``stored`` names a folder with their runs of
the same study (a ``heldout-<split>`` or ``heldout-lr-grid-<split>`` output, or another
prototype's results file of the same protocol and split). Results are kept in
``out/<tag>_<protocol>_<split>.json``; a file already there is read, not rerun.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any


def _trial(spec: dict[str, Any]) -> dict[str, Any]:
    from greedylr.studies.runner import execute_trial
    from greedylr.studies.trial import TrialSpec

    return execute_trial(TrialSpec.make(**spec), threads=1)


def patch_update(patched: Callable[..., Any]) -> None:
    """Route the float rule's update through ``patched`` in this process (a worker's
    ``initializer``, with :func:`functools.partial`): in :mod:`greedylr.rule` and where
    :mod:`greedylr.scheduler` imported it by name."""
    import greedylr.scheduler
    from greedylr import rule

    rule.update = patched
    greedylr.scheduler.update = patched


def _baseline(schedule: str, settings: Any) -> bool:
    """Cosine or the 0.2 defaults (settings: only the held-out protocol's own), of a spec
    or of a stored result."""
    return schedule == "cosine" or (schedule == "greedy"
                                    and dict(settings) == {"workload_feed_split": True})


def _run(specs: Sequence[Any], path: Path,
         patch: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """``specs`` run on two workers (each ``patch``-ed first), kept in ``path``; a file
    already there is read, not rerun."""
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(2, initializer=patch) as pool:
        results = list(pool.map(_trial, [s.to_dict() for s in specs]))
    path.write_text(json.dumps(results, default=str))
    print(f"{path.name}: {len(results)} runs", flush=True)
    return results


def _baselines(specs: list[Any], stored: Path | None) -> tuple[list[Any], list[dict[str, Any]]]:
    """The specs still to run, and the stored cosine / default runs that replace the rest."""
    if stored is None:
        return specs, []
    from greedylr.studies.runner import load_results

    results = json.loads(stored.read_text()) if stored.is_file() else load_results(stored)
    lengths = {(s.workload, s.steps) for s in specs}  # a stored run of another budget is not one
    return ([s for s in specs if not _baseline(s.schedule, s.settings)],
            [r for r in results
             if _baseline(r["spec"]["schedule"], r["spec"]["settings"])
             and (r["spec"]["workload"], r["spec"]["steps"]) in lengths])


def every_split(specs: Callable[[str], Sequence[Any]], out: Path, name: str,
                patch: Callable[[], None] | None = None) -> None:
    """:func:`_run` on every split of ``HELDOUT_SPLITS``: ``specs(split)`` into
    ``out/<name>_<split>.json``."""
    from greedylr.evidence.defaults import HELDOUT_SPLITS

    for split in HELDOUT_SPLITS:
        _run(specs(split), out / f"{name}_{split}.json", patch)


def grid_points(split: str, arms: Sequence[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Each of ``arms`` (``(schedule, settings)``), in order, at every point of ``split``'s
    held-out LR grid: cosine's specs there (workload, LR, seed, steps) with the arm's
    schedule and settings, fed the validation half as the protocol feeds every arm."""
    from greedylr.evidence.defaults import heldout_lr_grid_specs

    cosine = [s for s in heldout_lr_grid_specs(split)
              if s.schedule == "cosine" and dict(s.settings) == {"workload_feed_split": True}]
    return [replace(s, schedule=schedule,
                    settings=tuple(sorted({**settings, "workload_feed_split": True}.items())))
            for schedule, settings in arms for s in cosine]


def run_arms(argv: Sequence[str], arms: Sequence[tuple[str, dict[str, Any]]], name: str,
             patch: Callable[[], None] | None = None) -> None:
    """``{heldout,grid} OUT``, the command line of a script ``<name>.py`` that runs
    ``arms`` on every split: under the held-out protocol (3 seeds, the workload's LR) or
    at every point of the LR grid (:func:`grid_points`), into
    ``OUT/<name>_<protocol>_<split>.json``; ``patch`` as :func:`_run`'s."""
    from greedylr.evidence.defaults import HELDOUT_SPLITS, heldout_specs

    if len(argv) != 2 or argv[0] not in ("heldout", "grid"):
        raise SystemExit(f"usage: {name}.py {{heldout,grid}} OUT")
    protocol = argv[0]

    def specs(split: str) -> list[Any]:
        if protocol == "heldout":
            return heldout_specs(HELDOUT_SPLITS[split], f"defaults_heldout_{split}",
                                 choices=arms)
        return grid_points(split, arms)

    every_split(specs, Path(argv[1]), f"{name}_{protocol}", patch)


def heldout(split: str, settings: dict[str, Any], patch: Callable[[], None], out: Path,
            tag: str, stored: Path | None = None, *, budget: int = 1) -> list[dict[str, Any]]:
    """The prototype arm on ``split``'s held-out protocol; prints :func:`versus_cosine`'s
    rows (F, B, T, t against cosine) and returns the runs it made or read from ``out``.
    ``budget`` multiplies every run's steps (and its evaluation interval): a rule that
    claims to need no budget must keep its place against cosine told the longer one."""
    from greedylr.evidence.defaults import HELDOUT_SPLITS, heldout_specs, versus_cosine

    arms = (("cosine", {}), ("greedy", {}), ("greedy", settings))
    specs = [replace(s, steps=budget * s.steps, eval_every=budget * s.eval_every)
             for s in heldout_specs(HELDOUT_SPLITS[split], f"defaults_heldout_{split}",
                                    choices=arms)]
    specs, kept = _baselines(specs, stored)
    name = "heldout" if budget == 1 else f"heldout_x{budget}"
    runs = _run(specs, out / f"{tag}_{name}_{split}.json", patch)
    for arm, row in versus_cosine(kept + runs).items():
        print(f"{split} {arm:58s} F {row['final_pct']:.0f} B {row['best_pct']:.0f} "
              f"T {row['train_pct']:.0f} t {row['time_to_cosine_loss']:.2f} "
              f"misses {row['misses']}/{row['runs']}", flush=True)
    return runs


def grid(split: str, settings: dict[str, Any], patch: Callable[[], None], out: Path,
         tag: str, stored: Path | None = None) -> list[dict[str, Any]]:
    """The prototype arm on ``split``'s held-out LR grid beside cosine and the defaults;
    prints the tolerance against the best-tuned cosine and returns the runs it made or
    read from ``out``."""
    from greedylr.evidence.defaults import heldout_lr_grid_specs

    specs = []
    for spec in heldout_lr_grid_specs(split):
        if _baseline(spec.schedule, spec.settings):
            specs.append(spec)
            if spec.schedule == "greedy":
                specs.append(replace(spec, settings=tuple(sorted(
                    {**settings, "workload_feed_split": True}.items()))))
    specs, kept = _baselines(specs, stored)
    runs = _run(specs, out / f"{tag}_grid_{split}.json", patch)
    print_tolerance(split, kept + runs)
    return runs


def print_tolerance(split: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each arm's tolerance against the best-tuned cosine on ``split``'s grid, a line each;
    returns them (:func:`greedylr.studies.tuning.tolerance_versus`)."""
    from greedylr.studies import tuning

    tolerance = tuning.tolerance_versus(runs, "cosine")
    for arm, t in tolerance.items():
        print(f"{split} grid {arm:52s} within 2% {100 * t.within:.0f}% median "
              f"{t.median_ratio:.3f} diverged {t.bad} worst {t.worst_finite_ratio:.3g} by LR "
              f"{' / '.join(f'{x:.2f}' for x in t.by_position)}", flush=True)
    return tolerance


def main(argv: Sequence[str], settings: dict[str, Any], patch: Callable[[], None],
         tag: str) -> None:
    """``PROTOCOL OUT SPLIT [STORED]``: the command line of a prototype script.
    ``PROTOCOL``: ``heldout``, ``grid`` or ``heldout_xK`` (the held-out protocol with K
    times the steps; no study stores its baselines, another prototype's file can)."""
    protocol, out, split = argv[0], Path(argv[1]), argv[2]
    stored = Path(argv[3]) if len(argv) > 3 else None
    if protocol.startswith("heldout_x"):  # the held-out protocol on a longer budget
        heldout(split, settings, patch, out, tag, stored,
                budget=int(protocol.removeprefix("heldout_x")))
        return
    {"heldout": heldout, "grid": grid}[protocol](split, settings, patch, out, tag, stored)

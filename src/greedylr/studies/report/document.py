"""The whole report: :func:`render_report` puts the sections together, :func:`write_report`
writes it and its figures beside the stored results."""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from pathlib import Path

from greedylr.studies import tuning as T
from greedylr.studies.metrics import Result
from greedylr.studies.report.heldout import heldout_section
from greedylr.studies.report.sections import failures_section, provenance, study_section
from greedylr.studies.store import load_results
from greedylr.studies.targets import ran_other_code, same_file_moved, source_digest
from greedylr.studies.trial import TrialSpec

__all__ = ["EVIDENCE", "figures_dir_of", "render_report", "write_report"]

logger = logging.getLogger(__name__)

_OUR_FIGURES = ("-curves.png", "-final-metric.png", "-labels.png", "-lr.png")

#: Where the full evidence lives, for the smoke-run caveat of the quick suite's report.
EVIDENCE = (
    "`results/` in the repository (`results/lr_grid/`: every schedule tuned over a 100x "
    "LR grid, judged on the held-out metric; `results/small_models/`, `results/finetune/`, "
    "`results/pretrain/`), or `greedylr bench --full`"
)


def figures_dir_of(report: Path) -> Path:
    """The folder of the figures of the report ``report``, beside it: ``figures/`` for a
    ``report.md`` (the default), ``<stem>-figures/`` for any other name, so that reports
    written into one folder never share, overwrite or delete each other's figures."""
    stem = report.stem
    return report.with_name("figures" if stem == "report" else f"{stem}-figures")


def _moved_files_joined(results: list[Result],
                        now: dict[str, str | None]) -> tuple[list[Result], int]:
    """``results`` with the trials of a training function's file that was moved since they
    ran (:func:`~greedylr.studies.targets.same_file_moved`) filed under the file where it
    is now, as one workload, and how many of them were dropped as a trial stored at both
    paths (the one at the present path is kept); ``now``: each workload's
    :func:`~greedylr.studies.targets.source_digest`."""
    refs = set(now)
    keys = {r["key"] for r in results}
    out, dropped = [], 0
    for r in results:
        old = r["spec"]["workload"]
        there = [ref for ref in refs
                 if same_file_moved(old, r.get("source_digest"), ref, now[ref])]
        if len(there) != 1:
            out.append(r)
            continue
        spec = {**r["spec"], "workload": there[0]}
        key = TrialSpec.from_dict(spec).key
        if key in keys:
            dropped += 1
            continue
        keys.add(key)
        out.append({**r, "spec": spec, "key": key,
                    "moved_from": [*r.get("moved_from", []), old]})
    return out, dropped


def _of_current_code(results: list[Result],
                     now: dict[str, str | None]) -> tuple[list[Result], int, int]:
    """The results to report, how many were left out, and how many of those kept ran an
    earlier version of their training function's file: a workload's trials of an
    earlier version are left out where trials of its file as it is now are stored, and
    kept (to be said) where none are, so that an edit never empties a report; ``now``:
    each workload's :func:`~greedylr.studies.targets.source_digest`."""

    def old(r: Result) -> bool:
        return ran_other_code(r, now[r["spec"]["workload"]])

    current = {r["spec"]["workload"] for r in results
               if r.get("source_digest") is not None
               and r.get("source_digest") == now[r["spec"]["workload"]]}
    kept = [r for r in results if not (old(r) and r["spec"]["workload"] in current)]
    outdated = sum(old(r) for r in kept)
    return kept, len(results) - len(kept), outdated


def render_report(
    results: list[Result],
    figures_dir: Path,
    *,
    title: str = "",
    smoke: bool = False,
    margin: float = T.DEFAULT_MARGIN,
    left_out: int = 0,
    outdated: int = 0,
) -> str:
    """The markdown report of ``results``; figures are written to ``figures_dir``.

    Figure links are relative to ``figures_dir.parent`` (where the report goes).

    Args:
        results: stored trial results.
        figures_dir: where the PNG figures go.
        title: the report's title.
        smoke: the results are a smoke run of the pipeline (the quick suite): say so
            first, and where the evidence lives.
        margin: the LR-tolerance margin (relative to the best-tuned baseline).
        left_out: stored trials left out because their code changed since they ran.
        outdated: trials in ``results`` whose code changed since they ran (no trial of
            the code as it is now is stored).
    """
    figures_dir.mkdir(parents=True, exist_ok=True)
    # runs at the function's own LR are the grid's point at that LR, in every section
    results = T.merge_default_lr(results)
    out = [f"# {title or 'GreedyLR study report'}", ""]
    if left_out:
        out += [f"> **{left_out} stored trial(s) left out**: the file of their training "
                "function changed since they ran, so they measured other code. Rerun the "
                "comparison that ran them to run them again.", ""]
    if outdated:
        out += [f"> **{outdated} trial(s) ran an earlier version of their training "
                "function's file**: it changed since, and no trial of it as it is now is "
                "stored. Rerun the comparison to measure the code as it is.", ""]
    out += _status_notes(results)
    if smoke:
        out += [
            "> **Smoke run of the pipeline, not evidence.** The quick suite runs a slice "
            "of each study with few seeds and short runs, to show that every part works; "
            "its comparisons are mostly inconclusive by design. The full evidence lives "
            f"in {EVIDENCE}.",
            "",
        ]
    out += heldout_section(results, figures_dir, margin=margin)
    out += [
        "## How these results were produced",
        "",
        "Generated by `greedylr report` from stored results only. GreedyLR is the "
        "candidate (**bold**); every other schedule is a baseline with the same "
        "optimizer, warmup, seeds and steps, and, within one setting below, the same "
        "initial LR.",
        "",
        provenance(results),
        "",
    ]
    by_study: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_study[r["spec"]["study"]].append(r)
    for study, study_results in sorted(by_study.items()):
        out += study_section(study, study_results, figures_dir)
    out += failures_section(results)
    return "\n".join(out).rstrip() + "\n"


def _status_notes(results: list[Result]) -> list[str]:
    """What the reader must know before the tables: trials that stopped early (not
    compared), and held-out metrics whose direction was guessed from their name."""
    out = []
    short = [r for r in results if r.get("status") == "short"]
    if short:
        arms = sorted({r["spec"]["schedule"] for r in short})
        out += [f"> **{len(short)} trial(s) stopped early** (their training function "
                "returned before the steps asked for; `steps_done` in each result says "
                f"when), of {', '.join(f'`{a}`' for a in arms)}: not compared, as a failed "
                "trial is not. Rerun with `--retry-failed` once the loop is fixed.", ""]
    guessed = sorted({(r["metric"]["name"], bool(r["metric"].get("higher_is_better")))
                      for r in results if (r.get("metric") or {}).get("guessed")})
    for name, higher in guessed:
        out += [f"> The held-out metric `{name}` is taken as **{'higher' if higher else 'lower'}"
                " is better**, a guess from its name: state it on the training function "
                f"(`train.higher_is_better = {higher}`).", ""]
    return out


def _bench_suite(directory: Path) -> str | None:
    """``quick`` or ``full`` when ``directory`` holds a ``greedylr bench`` run."""
    try:
        return json.loads((directory / "bench.json").read_text()).get("suite")
    except (OSError, ValueError, AttributeError):
        return None


def write_report(
    directory: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    title: str = "",
    smoke: bool | None = None,
    margin: float = T.DEFAULT_MARGIN,
) -> Path:
    """Write ``report.md`` and its figures for every result stored under ``directory``.

    Args:
        directory: a study folder or a results root (searched recursively).
        output: the markdown file (default ``directory/report.md``); figures go to a
            folder beside it, named after it (``figures/`` for a ``report.md``,
            ``NAME-figures/`` for ``NAME.md``), which holds its figures alone.
        title: the report's title.
        smoke: a smoke run of the pipeline (the quick suite): the report says so first.
            ``None``: as ``directory/bench.json`` says (``greedylr bench`` writes it).
        margin: the LR-tolerance margin, relative to the best-tuned baseline (0.02: 2%).

    Returns:
        The markdown file's path.

    Raises:
        FileNotFoundError: no results under ``directory``.
    """
    results = load_results(directory)
    if not results:
        raise FileNotFoundError(f"no trial results under {directory}")
    now = {ref: source_digest(ref) for ref in {r["spec"]["workload"] for r in results}}
    results, doubles = _moved_files_joined(results, now)
    if doubles:
        logger.info("%d stored trial(s) under %s ran a training function's file before it "
                    "was moved and are stored at its new path too: reported once", doubles,
                    directory)
    results, stale, outdated = _of_current_code(results, now)
    if stale:
        logger.warning("%d stored trial(s) under %s ran an earlier version of their training "
                       "function's file: the report leaves them out (rerun them to include "
                       "them)", stale, directory)
    if outdated:
        logger.warning("%d stored trial(s) under %s ran an earlier version of their training "
                       "function's file, and none ran it as it is now: reported, and said",
                       outdated, directory)
    path = Path(output) if output is not None else Path(directory) / "report.md"
    figures = figures_dir_of(path)
    if smoke is None:
        smoke = _bench_suite(Path(directory)) == "quick"
    text = render_report(results, figures, title=title, smoke=smoke, margin=margin,
                         left_out=stale, outdated=outdated)
    # figures of an earlier version of this report that it no longer shows (a renamed
    # setting): the folder is this report's alone
    for old in figures.glob("*.png"):
        if old.name.endswith(_OUR_FIGURES) and f"({figures.name}/{old.name})" not in text:
            old.unlink()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    logger.info("wrote %s (%d trials)", path, len(results))
    return path

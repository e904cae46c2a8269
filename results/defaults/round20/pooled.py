"""Round 20: the held-out protocol's and the LR grid's figures pooled over splits.

Each split is scored on its own (:func:`greedylr.evidence.defaults.versus_cosine`, and
:func:`greedylr.studies.tuning.tolerance_versus` against that split's best-tuned
cosine), then the comparisons are pooled: F, B and T as the share of all comparisons,
S the checkpoint selected on the fed half (:func:`versus_cosine`'s ``selected``), t as
the median over splits of each split's median, misses summed; the grid's share
within 2% and its median ratio over all grid points, and both by position on the grid.
``RUNS`` are folders or results files; each file or folder is read for the split its
name ends with. ``--as SPLIT:ARM=NAME`` pools that split's arm under another name (the
package's default of one version is a marked prototype on the splits run before it was
adopted). ``heldout --against ARM`` scores every arm against ``ARM`` instead of cosine
(t is then the time to that arm's final training loss)::

    python results/defaults/round20/pooled.py {heldout,grid} [--as SPLIT:ARM=NAME ...] RUNS...
    python results/defaults/round20/pooled.py heldout --against ARM [--as ...] RUNS...
"""
from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def _runs(paths: list[str]) -> dict[str, list[dict[str, Any]]]:
    from greedylr.studies.runner import load_results

    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in map(Path, paths):
        split = re.sub(r"\.json$", "", p.name).rsplit("_", 1)[-1]
        runs = json.loads(p.read_text()) if p.is_file() else load_results(p)
        by[split] += runs
    return by


def _outside_parentheses(text: str, char: str) -> int:
    """The index of the first ``char`` in ``text`` outside parentheses (an arm's name,
    ``greedy(eps=1.9e-297)``, has its own ``=`` inside them)."""
    depth = 0
    for i, c in enumerate(text):
        depth += (c == "(") - (c == ")")
        if c == char and depth == 0:
            return i
    raise SystemExit(f"--as {text!r}: expected SPLIT:ARM=NAME")


def _names(argv: list[str]) -> tuple[dict[tuple[str, str], str], list[str]]:
    """``--as SPLIT:ARM=NAME`` options, and the paths."""
    names, paths, args = {}, [], iter(argv)
    for a in args:
        if a == "--as":
            option = next(args, "")
            cut = _outside_parentheses(option, "=")
            split, colon, arm = option[:cut].partition(":")
            if not colon:
                raise SystemExit(f"--as {option!r}: expected SPLIT:ARM=NAME")
            names[split, arm] = option[cut + 1:]
        else:
            paths.append(a)
    return names, paths


def _check_names(names: dict[tuple[str, str], str], seen: set[tuple[str, str]]) -> None:
    """An ``--as`` that names no arm of the runs is a typo: say so rather than pool
    the arm under its own name."""
    unknown = sorted(set(names) - seen)
    if unknown:
        raise SystemExit(f"--as names no arm of the runs: {unknown}")


def heldout(argv: list[str]) -> None:
    from greedylr.evidence.defaults import versus_cosine

    against = "cosine"
    if argv[:1] == ["--against"]:
        against, argv = argv[1], argv[2:]
    names, paths = _names(argv)
    pooled: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(list))
    seen: set[tuple[str, str]] = set()
    for split, runs in sorted(_runs(paths).items()):
        for arm, row in versus_cosine(runs, against).items():
            seen.add((split, arm))
            p = pooled[names.get((split, arm), arm)]
            for k in ("final", "best", "selected", "train"):
                if row[f"{k}_n"]:
                    p[k].append((row[f"{k}_pct"] * row[f"{k}_n"] / 100, row[f"{k}_n"]))
            p["t"].append(row["time_to_cosine_loss"])
            p["misses"].append((row["misses"], row["runs"]))
            p["splits"].append(split)
    _check_names(names, seen)
    for arm, p in pooled.items():
        share = {k: 100 * sum(a for a, _ in p[k]) / max(1, sum(n for _, n in p[k]))
                 for k in ("final", "best", "selected", "train")}
        print(f"{arm:40s} splits {len(p['splits']):2d} F {share['final']:.0f}% "
              f"({sum(a for a, _ in p['final']):.0f}/{sum(n for _, n in p['final'])}) "
              f"B {share['best']:.0f}% S {share['selected']:.0f}% T {share['train']:.0f}% "
              f"t median of splits {statistics.median(p['t']):.2f} "
              f"misses {sum(a for a, _ in p['misses'])}/{sum(n for _, n in p['misses'])}")


def grid(argv: list[str]) -> None:
    from greedylr.studies import tuning

    names, paths = _names(argv)
    pooled: dict[str, list[float]] = defaultdict(list)
    # by position on the grid (the smallest LR first): a group's ratios come in LR order
    positions: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    splits: dict[str, int] = defaultdict(int)
    seen: set[tuple[str, str]] = set()
    for split, runs in sorted(_runs(paths).items()):
        for arm, t in tuning.tolerance_versus(runs, "cosine").items():
            seen.add((split, arm))
            arm = names.get((split, arm), arm)
            size = len(t.by_position)
            assert len(t.ratios) % size == 0, "every group of a split has the same grid"
            pooled[arm] += list(t.ratios)
            for i, r in enumerate(t.ratios):
                positions[arm][i % size].append(r)
            splits[arm] += 1
    _check_names(names, seen)
    for arm, ratios in pooled.items():
        within = sum(r <= 1.02 for r in ratios) / len(ratios)
        by = positions[arm].values()
        print(f"{arm:40s} splits {splits[arm]:2d} points {len(ratios)} within 2% "
              f"{100 * within:.0f}% median {statistics.median(ratios):.3f} by position "
              + " / ".join(f"{statistics.median(v):.2f}" for v in by) + " within 2% "
              + " / ".join(f"{100 * sum(r <= 1.02 for r in v) / len(v):.0f}%" for v in by))


if __name__ == "__main__":
    {"heldout": heldout, "grid": grid}[sys.argv[1]](sys.argv[2:])

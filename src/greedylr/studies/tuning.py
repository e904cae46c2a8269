"""The held-out metric at a tuned learning rate: what a practitioner asks of a schedule.

A study (or ``greedylr compare --lr 1e-3,3e-3,1e-2``) may run every schedule at every
point of an LR grid with the same seeds. This module answers, per *workload group*
(a setting of ``greedylr.studies.metrics.setting_of`` without its LR):

- **at its own best LR**: each arm's LR whose mean final held-out metric over seeds is
  best (a seed that diverged or failed counts as the worst value), and its final and
  best-so-far metric there;
- **the tuned comparison**: GreedyLR at its best LR minus each baseline at the
  baseline's best LR, paired by seed, with a bootstrap 95% CI, seeds won, tied and lost,
  and a verdict that says "inconclusive" when there are fewer than
  :data:`MIN_SEEDS` seeds or the CI spans zero;
- **LR tolerance**: the share of an arm's grid points whose mean final held-out metric
  is within ``margin`` (relative, default 2%) of the *best-tuned baseline* (the best
  baseline at its own best LR), and its worst grid point.

Picking the best LR on the same seeds that then report it flatters every schedule alike
(the report says so): the tuned numbers are a best case, the tolerance is the guard. The
less flattering estimate beside them, ``other_seeds`` of :class:`ArmTuning`, picks the LR for
each seed on the *other* seeds and reports that seed's value at it (leave one seed out):
it removes the optimism of choosing on the reported seeds' noise (not that of reusing one
held-out set, which only a separate validation split would).

With a single LR per arm this reduces to the plain held-out comparison at that LR.
Pure functions of stored result dicts, like ``greedylr.studies.metrics``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from greedylr.studies import metrics as M

__all__ = [
    "DEFAULT_MARGIN",
    "MIN_SEEDS",
    "ArmTuning",
    "GridPoint",
    "Tolerance",
    "TunedPair",
    "WorkloadTuning",
    "group_of",
    "merge_default_lr",
    "parse_lr_grid",
    "tolerance_versus",
    "tune",
]

Result = dict[str, Any]

#: The LR-tolerance margin: within 2% (relative) of the best-tuned baseline.
DEFAULT_MARGIN = 0.02

#: Fewer seeds than this and a paired difference is "inconclusive", whatever its sign.
MIN_SEEDS = 3


def parse_lr_grid(text: str) -> list[float]:
    """An LR list ``"1e-3,3e-3,1e-2"`` or a log grid ``"1e-4:1e-1:7"`` (7 points, ends kept).

    Raises:
        ValueError: not numbers, a non-positive or non-finite LR, a log grid with fewer
            than 2 points or ends in the wrong order, or a repeated LR.
    """
    text = text.strip()
    if ":" in text:
        shape = f"a log grid is LOW:HIGH:POINTS, e.g. 1e-4:1e-1:7; got {text!r}"
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(shape)
        try:
            low, high, points = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise ValueError(shape) from None
        if points < 2 or not 0 < low < high or not math.isfinite(high):
            raise ValueError(
                f"a log grid needs 0 < LOW < HIGH and POINTS >= 2; got {text!r}"
            )
        grid = [float(v) for v in np.geomspace(low, high, points)]
        grid[0], grid[-1] = low, high  # exactly the ends asked for
        return grid
    try:
        grid = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(
            f"--lr takes numbers like 1e-3,3e-3 or LOW:HIGH:POINTS; got {text!r}"
        ) from None
    if not grid:
        raise ValueError("--lr needs at least one learning rate")
    bad = [v for v in grid if not (math.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"learning rates must be finite and > 0; got {bad}")
    if len(set(grid)) != len(grid):
        raise ValueError(f"repeated learning rate in {text!r}")
    return grid


def group_of(result: Result) -> tuple[Any, ...]:
    """The workload group of a trial: its setting without the LR (arms x LRs x seeds)."""
    setting = M.setting_of(result)
    return setting[:4] + setting[5:]


def _ran_at(runs: Iterable[Result]) -> float:
    """The LR trials without a spec LR ran at: the one most of them recorded (the
    workload's or the user's optimizer's default)."""
    runs = list(runs)
    # a run that failed before the function built its optimizer records a stand-in LR
    ran = [r for r in runs if r.get("status") in ("ok", "diverged")] or runs
    recorded = Counter(float(r["lr"]) for r in ran if r.get("lr") is not None)
    return recorded.most_common(1)[0][0] if recorded else math.nan


def merge_default_lr(results: Iterable[Result]) -> list[Result]:
    """``results`` with the trials run without a spec LR moved to the grid point at the LR
    they ran at, where the grid has one (a comparison run first without ``--lr``, then
    with a grid that includes the function's own LR): one point, not two at the same LR.
    Per workload group and arm; the LR matched to a relative 1e-9 (a log grid's inner
    points are not exact); a seed both ran keeps the grid's run. Other results unchanged.
    """
    placed = [((group_of(r), M.arm_of(r)), r) for r in results]  # (group, arm) once each
    explicit: dict[tuple[Any, ...], set[float]] = defaultdict(set)
    defaults: dict[tuple[Any, ...], list[Result]] = defaultdict(list)
    taken = set()  # (group, arm, LR, seed) of the grid's runs
    for where, r in placed:
        lr = r["spec"].get("lr")
        if lr is None:
            defaults[where].append(r)
        else:
            explicit[where].add(float(lr))
            taken.add((*where, float(lr), r["spec"]["seed"]))
    moved: dict[tuple[Any, ...], float] = {}
    for where, runs in defaults.items():
        ran = _ran_at(runs)
        match = [lr for lr in explicit[where] if math.isclose(lr, ran, rel_tol=1e-9)]
        if match:
            moved[where] = match[0]
    out = []
    for where, r in placed:
        if r["spec"].get("lr") is None and where in moved:
            if (*where, moved[where], r["spec"]["seed"]) in taken:
                continue  # the grid's run of this seed
            r = {**r, "spec": {**r["spec"], "lr": moved[where]}}
        out.append(r)
    return out


def _order(lr: float | None) -> tuple[bool, float]:
    return (lr is None, lr or 0.0)


@dataclass(frozen=True)
class GridPoint:
    """One arm at one LR, over seeds.

    Attributes:
        lr: the initial LR.
        final: the final held-out metric over the seeds that ran to the end.
        best: the best-so-far held-out metric over those seeds.
        score: the mean final metric over every seed, a diverged or failed seed (or one
            without a metric) counting as the worst value (-inf, or +inf when lower is
            better): what the best LR is chosen by.
        seeds: seeds run; ``bad``: of them, diverged, failed or without a metric.
        keys: the trials' keys.
    """

    lr: float
    final: M.Stat
    best: M.Stat
    score: float
    seeds: int
    bad: int
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArmTuning:
    """One arm across the LR grid of one workload group.

    Attributes:
        other_seeds: the final metric of each seed at the LR that is best on the other
            seeds (leave one seed out), over the seeds where that run ended with a
            metric; ``other_seeds_bad``: seeds where it diverged or failed there.
    """

    arm: str
    points: tuple[GridPoint, ...]
    best: GridPoint
    worst: GridPoint
    within: int
    other_seeds: M.Stat = field(default_factory=lambda: M.Stat.of([]))
    other_seeds_bad: int = 0

    @property
    def tolerance(self) -> float:
        """The share of grid points within the margin of the best-tuned baseline."""
        return self.within / len(self.points)


@dataclass(frozen=True)
class TunedPair:
    """The candidate at its best LR minus a baseline at its best LR, paired by seed.

    ``diff`` is positive when the candidate is better; a seed where exactly one of the
    two diverged (a non-finite training loss, or a non-finite final held-out metric) is
    a win or a loss without a difference; where both did, a tie. A seed where either
    run failed, timed out or reported no held-out metric, or that only one of the two
    ran, is not compared (``unpaired``): a failure's cause may be the code or the machine
    rather than the schedule, and counting it would credit the other arm with a win
    nobody measured.
    """

    candidate: str
    baseline: str
    candidate_lr: float
    baseline_lr: float
    diff: M.Stat
    wins: int
    ties: int
    losses: int
    unpaired: int = 0

    @property
    def seeds(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def verdict(self) -> str:
        """``better``, ``worse``, or ``inconclusive (...)`` saying why."""
        if self.diff.n < MIN_SEEDS:
            return f"inconclusive ({self.diff.n} seeds < {MIN_SEEDS})"
        lo, hi = self.diff.ci
        if lo > 0:
            return "better"
        if hi < 0:
            return "worse"
        return "inconclusive (CI spans 0)"


@dataclass(frozen=True)
class WorkloadTuning:
    """Every arm of one workload group at its own best LR, the tolerances and the pairs."""

    group: tuple[Any, ...]
    metric: str | None
    higher_is_better: bool
    arms: dict[str, ArmTuning]
    reference_arm: str | None
    reference: float
    margin: float
    pairs: tuple[TunedPair, ...]

    @property
    def workload(self) -> str:
        return str(self.group[1])

    @property
    def grid(self) -> bool:
        """True when some arm ran at more than one LR."""
        return any(len(a.points) > 1 for a in self.arms.values())


def _value(result: Result, higher: bool) -> float:
    """The final held-out metric; the worst value if the run diverged, failed or has none."""
    value = M.final_metric(result) if result.get("status") == "ok" else None
    if value is None or not math.isfinite(value):
        return -math.inf if higher else math.inf
    return value


def _other_seeds(
    lrs: dict[float | None, dict[int, Result]], higher: bool
) -> tuple[M.Stat, int]:
    """Leave one seed out: each seed's value at the LR best on the other seeds."""
    keys = sorted(lrs, key=_order)
    seeds = sorted({seed for runs in lrs.values() for seed in runs})
    values, bad = [], 0
    for seed in seeds:
        # (score on the other seeds, LR key); the spec LR ``None`` is a real key
        candidates = [
            (float(np.mean([_value(r, higher) for s, r in lrs[key].items() if s != seed])), key)
            for key in keys
            if seed in lrs[key] and len(lrs[key]) > 1
        ]
        if not candidates:
            continue
        pick_score, pick = candidates[0]
        for score, key in candidates[1:]:
            if _better(score, pick_score, higher):
                pick_score, pick = score, key
        value = _value(lrs[pick][seed], higher)
        if math.isfinite(value):
            values.append(value)
        else:
            bad += 1
    return M.Stat.of(values), bad


def _point(lr: float, runs: list[Result], higher: bool) -> GridPoint:
    scores = [_value(r, higher) for r in runs]
    ended = [r for r, v in zip(runs, scores) if math.isfinite(v)]
    bests = [M.best_metric(r) for r in ended]
    worst = -math.inf if higher else math.inf
    return GridPoint(
        lr,
        M.Stat.of(v for v in scores if math.isfinite(v)),
        M.Stat.of(b[0] if b else None for b in bests),
        float(np.mean(scores)) if scores else worst,
        len(runs),
        len(runs) - len(ended),
        tuple(str(r.get("key")) for r in runs),
    )


def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


def _within(score: float, reference: float, margin: float, higher: bool) -> bool:
    if not math.isfinite(reference):
        return math.isfinite(score) or score == reference
    slack = margin * abs(reference)
    return score >= reference - slack if higher else score <= reference + slack


def _pair(
    cand: str,
    base: str,
    c_runs: dict[int, Result],
    b_runs: dict[int, Result],
    c_lr: float,
    b_lr: float,
    higher: bool,
) -> TunedPair:
    diffs: list[float] = []
    wins = ties = losses = unpaired = 0
    for seed in sorted(set(c_runs) | set(b_runs)):
        if seed not in c_runs or seed not in b_runs:  # only one of the two ran it
            unpaired += 1
            continue
        fc, fb = _outcome(c_runs[seed]), _outcome(b_runs[seed])
        if fc is None or fb is None:
            unpaired += 1
        elif math.isfinite(fc) and math.isfinite(fb):
            d = fc - fb if higher else fb - fc
            diffs.append(d)
            if math.isclose(fc, fb, rel_tol=1e-9, abs_tol=1e-12):
                ties += 1
            elif d > 0:
                wins += 1
            else:
                losses += 1
        elif math.isfinite(fc):
            wins += 1
        elif math.isfinite(fb):
            losses += 1
        else:
            ties += 1
    return TunedPair(cand, base, c_lr, b_lr, M.Stat.of(diffs), wins, ties, losses, unpaired)


def _outcome(result: Result) -> float | None:
    """What a run counts as in a pair: its final held-out metric (NaN where it diverged
    or its metric is not finite), or ``None`` where it measured nothing (failed, timed
    out, never reported)."""
    status = result.get("status")
    if status == "diverged":
        return math.nan
    return M.final_metric(result) if status == "ok" else None


def tune(
    results: Iterable[Result],
    *,
    margin: float = DEFAULT_MARGIN,
    candidate: Callable[[str], bool] = M.is_candidate,
) -> list[WorkloadTuning]:
    """Per workload group: every arm at its own best LR, LR tolerance, tuned pairs.

    Args:
        results: stored trial results.
        margin: the LR-tolerance margin, relative to the best-tuned baseline's metric.
        candidate: which arms are GreedyLR (the rest are baselines).

    Returns:
        One :class:`WorkloadTuning` per group that has a held-out metric, sorted by
        group. The best LR of an arm is chosen by ``score`` of :class:`GridPoint` (ties: the
        smaller LR).
    """
    if not 0 <= margin < 1:
        raise ValueError(f"margin must be in [0, 1), got {margin!r}")
    # group -> arm -> spec LR (None: the default) -> seed -> result
    table: dict[tuple[Any, ...], dict[str, dict[float | None, dict[int, Result]]]] = (
        defaultdict(lambda: defaultdict(dict))
    )
    for r in merge_default_lr(results):
        lr = r["spec"].get("lr")
        table[group_of(r)][M.arm_of(r)].setdefault(lr, {})[int(r["spec"]["seed"])] = r
    out = []
    for group, arms in sorted(table.items(), key=lambda kv: repr(kv[0])):
        sample = next(r for lrs in arms.values() for runs in lrs.values() for r in runs.values())
        metric, higher = M.metric_name(sample)
        if metric is None:
            continue
        points = {
            arm: [
                _point(_ran_at(runs.values()) if lr is None else float(lr),
                       list(runs.values()), higher)
                for lr, runs in sorted(lrs.items(), key=lambda kv: _order(kv[0]))
            ]
            for arm, lrs in arms.items()
        }
        by_lr = {arm: {p.lr: key for p, key in zip(points[arm], sorted(lrs, key=_order))}
                 for arm, lrs in arms.items()}
        best: dict[str, GridPoint] = {}
        for arm, pts in points.items():
            pick = pts[0]
            for p in pts[1:]:
                if _better(p.score, pick.score, higher):
                    pick = p
            best[arm] = pick
        baselines = sorted(a for a in arms if not candidate(a))
        reference_arm = None
        for arm in baselines:
            if reference_arm is None or _better(best[arm].score, best[reference_arm].score,
                                                higher):
                reference_arm = arm
        reference = best[reference_arm].score if reference_arm else math.nan
        tuned: dict[str, ArmTuning] = {}
        for arm, pts in sorted(points.items()):
            worst = pts[0]
            for p in pts[1:]:
                if _better(worst.score, p.score, higher):
                    worst = p
            within = (
                sum(_within(p.score, reference, margin, higher) for p in pts)
                if reference_arm
                else 0
            )
            other, other_bad = _other_seeds(arms[arm], higher)
            tuned[arm] = ArmTuning(arm, tuple(pts), best[arm], worst, within, other, other_bad)
        pairs = tuple(
            _pair(cand, base, arms[cand][by_lr[cand][best[cand].lr]],
                  arms[base][by_lr[base][best[base].lr]], best[cand].lr, best[base].lr, higher)
            for cand in sorted(a for a in arms if candidate(a))
            for base in baselines
        )
        out.append(
            WorkloadTuning(group, metric, higher, tuned, reference_arm, reference, margin, pairs)
        )
    return out


@dataclass(frozen=True)
class Tolerance:
    """One arm's LR tolerance against a reference arm tuned over the same grids.

    Pooled over workload groups, on the final held-out *loss* (lower is better, so a
    ratio is meaningful whatever the workload's metric). A grid point is one LR of one
    group, its value the mean over seeds; a seed that diverged, failed or has no
    held-out loss makes the point *bad* (ratio infinite).

    Attributes:
        arm: the arm.
        ratios: per grid point, its value over the reference arm's value at the
            reference's own best LR in that group.
        by_position: per position in the LR grid (the smallest LR first), the median
            ratio over groups: where on the grid the arm loses.
        bad: grid points with a diverged or failed seed.
        margin: "within" is a ratio <= 1 + margin.
    """

    arm: str
    ratios: tuple[float, ...]
    by_position: tuple[float, ...]
    bad: int
    margin: float

    @property
    def within(self) -> float:
        """The share of grid points within the margin of the best-tuned reference."""
        return sum(r <= 1 + self.margin for r in self.ratios) / len(self.ratios)

    @property
    def median_ratio(self) -> float:
        return float(np.median(self.ratios))

    @property
    def worst_finite_ratio(self) -> float:
        """The largest ratio of a point that did not diverge (``nan`` if every one did):
        a run that ends finite but far worse than the best-tuned reference (a blown-up
        model that never recovered) is a failure the median and ``bad`` both hide."""
        finite = [r for r in self.ratios if math.isfinite(r)]
        return max(finite) if finite else math.nan


def final_heldout_loss(result: Result) -> float:
    """The held-out ``loss`` at the last evaluation; ``inf`` if the run did not end ok
    or never reported one."""
    rows = [r for r in result.get("metrics") or [] if "loss" in r]
    value = float(rows[-1]["loss"]) if rows and result.get("status") == "ok" else math.inf
    return value if math.isfinite(value) else math.inf


def tolerance_versus(
    results: Iterable[Result], reference: str = "cosine", *, margin: float = DEFAULT_MARGIN
) -> dict[str, Tolerance]:
    """Every arm's :class:`Tolerance` against ``reference`` at its best LR per group.

    The issue-12 targets read off it: within 2% of the best-tuned cosine at >= 40% of
    the grid points, a median ratio <= 1.2, no bad point. Groups where the reference
    did not run are left out.
    """
    table: dict[tuple[Any, ...], dict[str, dict[float, list[float]]]] = (
        defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    )
    for r in results:
        lr = r["spec"].get("lr")
        table[group_of(r)][M.arm_of(r)][float(lr if lr is not None else math.nan)].append(
            final_heldout_loss(r))
    ratios: dict[str, list[float]] = defaultdict(list)
    positions: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    bad: dict[str, int] = defaultdict(int)
    for arms in table.values():
        if reference not in arms:
            continue
        best = min(float(np.mean(v)) for v in arms[reference].values())
        for arm, lrs in arms.items():
            for i, (_, values) in enumerate(sorted(lrs.items())):
                value = float(np.mean(values))
                ratio = value / best if math.isfinite(value) and best > 0 else math.inf
                ratios[arm].append(ratio)
                positions[arm][i].append(ratio)
                bad[arm] += not math.isfinite(value)
    return {
        arm: Tolerance(arm, tuple(values),
                       tuple(float(np.median(positions[arm][i]))
                             for i in sorted(positions[arm])),
                       bad[arm], margin)
        for arm, values in sorted(ratios.items())
    }

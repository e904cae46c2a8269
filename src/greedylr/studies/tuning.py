"""The held-out metric at a tuned learning rate: what a practitioner asks of a schedule.

A study (or ``greedylr compare --lr 1e-3,3e-3,1e-2``) may run every schedule at every
point of an LR grid with the same seeds. This module answers, per *workload group*
(a setting of ``greedylr.studies.metrics.setting_of`` without its LR):

- **at its own best LR**: each arm's grid points ranked by the number of seeds that
  diverged, failed or ended without a metric (fewer first), then by the mean final
  held-out metric over the other seeds, both on the seeds every grid point of the arm ran
  (a point run with more seeds is not judged on seeds the others never saw); its final
  and best-so-far metric there;
- **the tuned comparison**: GreedyLR at its best LR minus each baseline at the
  baseline's best LR, paired by seed, with a Student-t 95% CI of the mean difference
  (calibrated at any number of seeds, unlike the percentile bootstrap it replaces),
  seeds won, tied and lost, and a verdict (``TunedPair.judgement``: the CI, with a
  seed where one side alone diverged a loss for that side, which is then never called
  better);
- **LR tolerance**: the share of an arm's grid points whose mean final held-out metric
  is within ``margin`` (relative, default 2%) of the *best-tuned baseline* (the best
  baseline at its own best LR, its mean over the seeds that finished there), and its
  worst grid point. A point where a seed diverged, failed or ended without a metric is
  never within, whatever its other seeds scored (a seed that fails at every LR leaves no
  point within). Without a baseline that finished a seed at its best LR the tolerance is
  not measured (``WorkloadTuning.why_no_reference``).

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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from greedylr.studies import metrics as M

__all__ = [
    "ALPHA",
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

#: Fewer seeds than this that both arms finished and a paired difference is
#: "inconclusive", whatever its CI. Not what keeps the verdict's false-positive rate at
#: 5% (the Student-t interval does that at any n >= 2): with one degree of freedom
#: nothing checks the spread the interval assumes, and it is the default ``--seeds``.
MIN_SEEDS = 3

#: The significance level of the verdicts (their intervals are 1 - ALPHA).
ALPHA = 0.05


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
        score: the mean final metric over the seeds every grid point of its arm ran
            (``shared`` of :class:`ArmTuning`; all of its own when they share none), a diverged
            or failed seed (or one without a metric) counting as the worst value (-inf,
            or +inf when lower is better): what the LR tolerance is measured on, so a
            point with such a seed is never within.
        seeds: seeds run; ``bad``: of them, diverged, failed or without a metric.
        keys: the trials' keys.
        shared_bad: on the seeds every grid point of its arm ran (``shared`` of :class:`ArmTuning`),
            the bad ones; ``shared_mean``: the mean final metric over the others (NaN if
            none): what the best LR is chosen by, in that order.
    """

    lr: float
    final: M.Stat
    best: M.Stat
    score: float
    seeds: int
    bad: int
    keys: tuple[str, ...] = ()
    shared_bad: int = 0
    shared_mean: float = math.nan


@dataclass(frozen=True)
class ArmTuning:
    """One arm across the LR grid of one workload group.

    Attributes:
        shared: the seeds every one of its grid points ran, which its points are ranked
            on (empty when no seed is common to all: then each point on its own seeds);
            ``equal_seeds``: whether every point ran the same seeds.
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
    shared: tuple[int, ...] = ()
    equal_seeds: bool = True

    @property
    def tolerance(self) -> float:
        """The share of grid points within the margin of the best-tuned baseline."""
        return self.within / len(self.points)


@dataclass(frozen=True)
class TunedPair:
    """The candidate at its best LR minus a baseline at its best LR, paired by seed.

    ``diff`` is positive when the candidate is better, over the seeds both finished with
    a finite held-out metric; its ``ci`` is the Student-t 95% interval of the mean
    (:func:`greedylr.studies.metrics.t_ci`). A seed where exactly one of the two
    *diverged* (a non-finite training loss, or a non-finite final held-out metric) is a
    loss for the one that diverged, without a difference (``candidate_diverged``,
    ``baseline_diverged``); where both did, a tie. A seed where either run failed, timed
    out or reported no held-out metric, or that only one of the two ran, is not compared
    (``unpaired``): a failure's cause may be the code or the machine rather than the
    schedule, and counting it would credit the other arm with a win nobody measured.
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
    candidate_diverged: int = 0
    baseline_diverged: int = 0

    @property
    def seeds(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def judgement(self) -> tuple[str, str]:
        """``(verdict, why)``: ``better``, ``worse`` or ``inconclusive``, and why when
        inconclusive (``""`` otherwise). The rule, at the 5% level (:data:`ALPHA`):

        1. *The finished seeds*: with at least :data:`MIN_SEEDS` seeds both finished,
           the Student-t 95% CI of the mean paired difference above 0 says ``better``,
           below 0 ``worse``.
        2. *Divergence is the worst outcome*: a seed where one side alone diverged is a
           loss for it, of a size no difference measures (the worst-rank principle of
           outcomes cut short by failure). The side that lost a seed that way cannot be
           called better: a CI in its favour is *inconclusive*, said with the count.
        3. Where some seed had a lone divergence, the divergences can decide by
           themselves: an exact two-sided sign test over every compared seed (a lone
           divergence a loss for the diverged side, a finished seed won or lost by its
           difference, ties left out) with p < 0.05 says ``better`` or ``worse``, under
           rule 2 (no ``better`` for a side that diverged alone on some seed). It takes
           at least 6 seeds all one way; fewer and the count is said, inconclusive.
        4. When rule 1 and rule 3 point opposite ways: inconclusive.

        Without a lone divergence only rule 1 applies, so with no real difference the
        verdict is ``better`` or ``worse`` in about 5% of studies at any number of seeds
        (rules 2 and 4 only remove claims; rule 3 adds the sign test's own 5% where
        divergences occur).
        """
        by_ci = by_sign = None
        if self.diff.n >= MIN_SEEDS:
            lo, hi = self.diff.ci
            by_ci = "better" if lo > 0 else "worse" if hi < 0 else None
        lone = self.candidate_diverged + self.baseline_diverged
        if lone and M.sign_test(self.wins, self.losses) < ALPHA:
            by_sign = "better" if self.wins > self.losses else "worse"
        said = []
        if self.candidate_diverged:
            said.append(f"{self.candidate} diverged on {self.candidate_diverged} of "
                        f"{self.seeds} seeds where {self.baseline} did not")
        if self.baseline_diverged:
            said.append(f"{self.baseline} diverged on {self.baseline_diverged} of "
                        f"{self.seeds} seeds where {self.candidate} did not")
        if by_ci and by_sign and by_ci != by_sign:
            return "inconclusive", "; ".join(
                [*said, f"the finished seeds say {by_ci}, the divergences {by_sign}"])
        claim = by_ci or by_sign
        if claim == "better" and self.candidate_diverged:
            return "inconclusive", "; ".join(said)
        if claim == "worse" and self.baseline_diverged:
            return "inconclusive", "; ".join(said)
        if claim:
            return claim, ""
        if said:
            return "inconclusive", "; ".join(said)
        if self.diff.n < MIN_SEEDS:
            return "inconclusive", f"{self.diff.n} seeds < {MIN_SEEDS}"
        return "inconclusive", "CI spans 0"

    @property
    def verdict(self) -> str:
        """``better``, ``worse``, or ``inconclusive (...)`` saying why
        (:attr:`judgement`)."""
        word, why = self.judgement
        return f"{word} ({why})" if why else word


@dataclass(frozen=True)
class WorkloadTuning:
    """Every arm of one workload group at its own best LR, the tolerances and the pairs.

    ``reference``: what the LR tolerance is measured against, the best-tuned baseline's
    (``reference_arm`` at its best LR) mean final metric over the seeds that finished
    there, counted on the seeds all its grid points ran; NaN where there is none
    (:attr:`why_no_reference`). ``problem``: why the group is not compared (its trials
    disagree on the held-out metric, ``greedylr.studies.metrics.MetricMismatch``); it
    then has no arms and no pairs, and the report says so instead of leaving it out.
    """

    group: tuple[Any, ...]
    metric: str | None
    higher_is_better: bool
    arms: dict[str, ArmTuning]
    reference_arm: str | None
    reference: float
    margin: float
    pairs: tuple[TunedPair, ...]
    problem: str | None = None

    @property
    def workload(self) -> str:
        return str(self.group[1])

    @property
    def grid(self) -> bool:
        """True when some arm ran at more than one LR."""
        return any(len(a.points) > 1 for a in self.arms.values())

    @property
    def why_no_reference(self) -> str:
        """Why the LR tolerance is not measured (``""`` where it is): no baseline ran, or
        the best-tuned one finished no seed at its best LR. Every ``within`` is then 0,
        which the report shows as n/a, not as a tolerance of 0%."""
        if self.reference_arm is None:
            return "no baseline to measure it against"
        if not math.isfinite(self.reference):
            return f"{self.reference_arm} finished no seed at its best LR"
        return ""


def _value(result: Result, higher: bool) -> float:
    """The final held-out metric; the worst value if the run diverged, failed or has none."""
    value = M.final_metric(result) if result.get("status") == "ok" else None
    if value is None or not math.isfinite(value):
        return -math.inf if higher else math.inf
    return value


def _standing(runs: dict[int, Result], seeds: Iterable[int], higher: bool) -> tuple[int, float]:
    """On ``seeds``: how many are bad (diverged, failed, no metric) and the mean final
    metric over the others (NaN if none)."""
    values = [_value(runs[s], higher) for s in seeds]
    finite = [v for v in values if math.isfinite(v)]
    return len(values) - len(finite), float(np.mean(finite)) if finite else math.nan


def _rank(standing: tuple[int, float], higher: bool) -> tuple[int, float]:
    """A sort key, the best first: fewer bad seeds, then the better mean."""
    bad, mean = standing
    if math.isnan(mean):
        return bad, math.inf
    return bad, -mean if higher else mean


def _shared(seed_sets: Iterable[Iterable[int]]) -> set[int]:
    """The seeds common to every set (empty for none)."""
    sets = [set(s) for s in seed_sets]
    return set.intersection(*sets) if sets else set()


def _pick(
    candidates: list[tuple[Any, dict[int, Result]]], higher: bool, leave_out: int | None = None
) -> Any:
    """The key of the best of ``candidates`` (key, runs by seed), ranked by :func:`_rank`
    on the seeds they all ran but ``leave_out`` (each on its own, if they share none);
    ties: the first."""
    shared = _shared(runs for _, runs in candidates) - {leave_out}

    def key(item: tuple[Any, dict[int, Result]]) -> tuple[int, float]:
        seeds = shared or (set(item[1]) - {leave_out})
        return _rank(_standing(item[1], seeds, higher), higher)

    return min(candidates, key=key)[0]


def _other_seeds(
    lrs: dict[float | None, dict[int, Result]], higher: bool
) -> tuple[M.Stat, int]:
    """Leave one seed out: each seed's value at the LR best on the other seeds (ranked as
    the best LR is, on the other seeds those LRs share)."""
    keys = sorted(lrs, key=_order)
    seeds = sorted({seed for runs in lrs.values() for seed in runs})
    values, bad = [], 0
    for seed in seeds:
        # the spec LR ``None`` is a real key
        candidates = [(key, lrs[key]) for key in keys if seed in lrs[key] and len(lrs[key]) > 1]
        if not candidates:
            continue
        pick = _pick(candidates, higher, leave_out=seed)
        value = _value(lrs[pick][seed], higher)
        if math.isfinite(value):
            values.append(value)
        else:
            bad += 1
    return M.Stat.of(values), bad


def _point(lr: float, runs: dict[int, Result], higher: bool, shared: set[int]) -> GridPoint:
    values = [_value(r, higher) for r in runs.values()]
    ended = [r for r, v in zip(runs.values(), values) if math.isfinite(v)]
    bests = [M.best_metric(r) for r in ended]
    worst = -math.inf if higher else math.inf
    on = sorted(shared or runs)
    scores = [_value(runs[s], higher) for s in on]
    shared_bad, shared_mean = _standing(runs, on, higher)
    return GridPoint(
        lr,
        M.Stat.of(v for v in values if math.isfinite(v)),
        M.Stat.of(b[0] if b else None for b in bests),
        float(np.mean(scores)) if scores else worst,
        len(runs),
        len(runs) - len(ended),
        tuple(str(r.get("key")) for r in runs.values()),
        shared_bad,
        shared_mean,
    )


def _within(score: float, reference: float, margin: float, higher: bool) -> bool:
    """Whether a point's ``score`` is within ``margin`` of ``reference``: never for a
    point with a bad seed (its score is infinite) nor against no reference (NaN)."""
    if not (math.isfinite(score) and math.isfinite(reference)):
        return False
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
    wins = ties = losses = unpaired = c_div = b_div = 0
    for seed in sorted(set(c_runs) | set(b_runs)):
        if seed not in c_runs or seed not in b_runs:  # only one of the two ran it
            unpaired += 1
            continue
        fc, fb = _outcome(c_runs[seed]), _outcome(b_runs[seed])
        if fc is None or fb is None:
            unpaired += 1
            continue
        outcome = M.seed_outcome(fc, fb, higher)
        wins += outcome > 0
        ties += outcome == 0
        losses += outcome < 0
        if math.isfinite(fc) and math.isfinite(fb):
            diffs.append(fc - fb if higher else fb - fc)
        else:  # a divergence: a loss for the side alone in it
            c_div += outcome < 0
            b_div += outcome > 0
    return TunedPair(cand, base, c_lr, b_lr, M.Stat.of(diffs), wins, ties, losses, unpaired,
                     c_div, b_div)


def _outcome(result: Result) -> float | None:
    """What a run counts as in a pair: its final held-out metric (NaN where it diverged
    or its metric is not finite), or ``None`` where it measured nothing (failed, timed
    out, never reported)."""
    status = result.get("status")
    if status == "diverged":
        return math.nan
    return M.final_metric(result) if status == "ok" else None


def _arm(
    arm: str, lrs: dict[float | None, dict[int, Result]], higher: bool
) -> tuple[ArmTuning, dict[float, float | None]]:
    """An arm's grid points, its best and worst (``within`` left 0), and each point's
    LR -> its key in ``lrs``."""
    keys = sorted(lrs, key=_order)
    shared = _shared(lrs[k] for k in keys)
    points = [_point(_ran_at(lrs[k].values()) if k is None else float(k), lrs[k], higher,
                     shared)
              for k in keys]

    def rank(p: GridPoint) -> tuple[int, float]:
        return _rank((p.shared_bad, p.shared_mean), higher)

    best, worst = min(points, key=rank), max(points, key=rank)  # ties: the smaller LR
    equal = len({frozenset(lrs[k]) for k in keys}) == 1
    other, other_bad = _other_seeds(lrs, higher)
    tuning = ArmTuning(arm, tuple(points), best, worst, 0, other, other_bad,
                       tuple(sorted(shared)), equal)
    return tuning, {p.lr: k for p, k in zip(points, keys)}


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
        One :class:`WorkloadTuning` per group where some trial reported a held-out metric
        (a group whose trials disagree on it is one with a ``problem``, not left out),
        sorted by group. The metric and its direction are those of the trials that
        report one (``greedylr.studies.metrics.common_metric``), never the first
        trial's. The best LR of an arm is its grid point with the fewest bad seeds, then
        the best mean final metric over the others, counted on the seeds all its points
        ran (:class:`GridPoint`; ties: the smaller LR); the best-tuned baseline likewise,
        at each one's best LR.
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
        runs = (r for lrs in arms.values() for by_seed in lrs.values() for r in by_seed.values())
        try:
            metric, higher = M.common_metric(runs)
        except M.MetricMismatch as e:
            out.append(WorkloadTuning(group, None, True, {}, None, math.nan, margin, (),
                                      problem=str(e)))
            continue
        if metric is None:
            continue
        tuned: dict[str, ArmTuning] = {}
        by_lr: dict[str, dict[float, float | None]] = {}
        for arm, lrs in sorted(arms.items()):
            tuned[arm], by_lr[arm] = _arm(arm, lrs, higher)
        best = {arm: t.best for arm, t in tuned.items()}
        baselines = sorted(a for a in arms if not candidate(a))
        reference_arm = min(
            baselines, key=lambda a: _rank((best[a].shared_bad, best[a].shared_mean), higher),
            default=None)
        reference = best[reference_arm].shared_mean if reference_arm else math.nan
        for arm, t in tuned.items():
            within = sum(_within(p.score, reference, margin, higher) for p in t.points)
            tuned[arm] = replace(t, within=within)
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

"""What the results say: the paper's labels, and the statistics the paper lacks.

Everything here is a pure function of stored result dicts (see
:mod:`greedylr.studies.runner`); nothing trains, nothing reads live objects.

**Arms and settings.** An *arm* is a schedule with its own settings, e.g. ``cosine`` or
``greedy(factor=0.5)``, and the options in :data:`ARM_OPTIONS` (how the trained model is
scored: ``cosine(workload_power_ema=7)``; whether the run started from an LR range test:
``cosine(trial_range_test=True)``). A *setting* is everything else a trial
is: study, workload, optimizer, steps, LR, warmup and the workload's other options. Two
trials are compared only within one setting and, for paired statistics, with the same seed.

**The paper's labels** (section 4.1) compare the candidate and a baseline on the training
loss (a trailing window of 2% of the run) at 10%, 50% and 100% of training: ``yes``,
``yes*``, ``no*``, ``no`` by the sign and size of the difference against an absolute or a
relative threshold. Their definitions, and what this module adds to them (confidence
intervals, paired differences, time to target, held-out metrics): ``docs/guides/compare.md``
("How the report reads").
"""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from greedylr.studies.execution import headline_metric, metric_field
from greedylr.studies.schedules import PASSTHROUGH_PREFIXES, TRIAL_OPTIONS
from greedylr.studies.store import STATUSES

__all__ = [
    "ARM_OPTIONS",
    "LABELS",
    "SCORING_OPTIONS",
    "STAGES",
    "STATUSES",
    "ArmSummary",
    "Comparison",
    "LabelTable",
    "MetricMismatch",
    "Result",
    "arm_of",
    "arm_options_of",
    "arm_summaries",
    "best_metric",
    "bootstrap_ci",
    "common_metric",
    "compare",
    "direction_guessed",
    "final_metric",
    "is_candidate",
    "label",
    "label_table",
    "loss_at",
    "lr_changes",
    "metric_name",
    "optimizer_of",
    "paired_differences",
    "scoring_of",
    "seed_outcome",
    "setting_of",
    "sign_test",
    "smoothed_curve",
    "status_counts",
    "t_ci",
    "t_quantile",
    "time_to_target",
]

LABELS = ("yes", "yes*", "no*", "no")
STAGES = (0.1, 0.5, 1.0)
WINDOW_FRACTION = 0.02

Result = dict[str, Any]
"""One trial's stored result, as :func:`greedylr.studies.runner.load_results` returns it."""


# -- identity -------------------------------------------------------------------------

#: Workload options that say how the trained model is scored (an average of the
#: weights against the weights themselves, :func:`greedylr.averaging.power_ema`).
SCORING_OPTIONS: tuple[str, ...] = ("workload_power_ema",)

#: Options that make another arm, not another setting: trials that differ in them are
#: compared with each other (the :data:`SCORING_OPTIONS`; the trial protocol's options,
#: such as a run started from an LR range test's suggestion against one started at the
#: study's LR, :meth:`greedylr.studies.trial.Trial.range_test`).
ARM_OPTIONS: tuple[str, ...] = (*SCORING_OPTIONS, *TRIAL_OPTIONS)


def _arm_key(key: str) -> bool:
    return key in ARM_OPTIONS or not key.startswith(PASSTHROUGH_PREFIXES)


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def arm_of(result: Result) -> str:
    """The schedule with its own settings: ``cosine``, ``greedy(factor=0.5)``."""
    spec = result["spec"]
    own = {k: v for k, v in (spec.get("settings") or {}).items() if _arm_key(k)}
    if not own:
        return spec["schedule"]
    inside = ",".join(f"{k}={_fmt(v)}" for k, v in sorted(own.items()))
    return f"{spec['schedule']}({inside})"


def arm_options_of(result: Result) -> tuple[tuple[str, str], ...]:
    """A trial's :data:`ARM_OPTIONS` settings: how its model is scored and how its run
    started; ``()`` for the plain arm."""
    settings = result["spec"].get("settings") or {}
    return tuple(sorted((k, _fmt(v)) for k, v in settings.items() if k in ARM_OPTIONS))


def scoring_of(result: Result) -> tuple[tuple[str, str], ...]:
    """How a trial's model is scored: its :data:`SCORING_OPTIONS` settings, ``()`` for
    the trained weights themselves."""
    return tuple(kv for kv in arm_options_of(result) if kv[0] in SCORING_OPTIONS)


def setting_of(result: Result) -> tuple[Any, ...]:
    """Everything a trial is except its arm and seed: trials compare within a setting.

    ``(study, workload, optimizer, steps, lr, warmup, shared settings, eval_every)``:
    how often a run is evaluated is part of it, since GreedyLR reacts to what it is fed
    and the best-so-far metric is taken over the evaluations."""
    spec = result["spec"]
    shared = tuple(
        sorted(
            (k, _fmt(v))
            for k, v in (spec.get("settings") or {}).items()
            if not _arm_key(k)
        )
    )
    return (
        spec["study"],
        spec["workload"],
        spec["optimizer"],
        spec["steps"],
        spec.get("lr"),
        spec.get("warmup", 0),
        shared,
        spec.get("eval_every", 0),
    )


#: Class names of the study optimizers, by their names in the specs.
_OPTIMIZER_NAMES = {"AdamW": "adamw", "SGD": "sgd", "Adagrad": "adagrad", "Adafactor": "adafactor",
                    "NAdam": "nadam", "RMSprop": "rmsprop", "Adamax": "adamax", "RAdam": "radam",
                    "Adadelta": "adadelta", "ASGD": "asgd", "Adam": "adam",
                    "SparseAdam": "sparse_adam", "Muon": "muon"}

#: Arms that bring their own optimizer (whatever the spec's ``optimizer`` says).
OWN_OPTIMIZER_ARMS = ("schedule_free", "prodigy")


def optimizer_of(result: Result) -> str:
    """The optimizer the trial really trained with, not the one its spec named.

    Read from the class of the optimizer its schedule was built on (``optimizer_used``):
    a user function that builds its own SGD is ``sgd`` even under ``--optimizer adamw``;
    a class the studies do not build goes by its class name (``AdamWScheduleFree``,
    ``Prodigy``). Results stored before the class was recorded: the spec's.
    """
    used = result.get("optimizer_used")
    if not used:
        return str(result["spec"]["optimizer"])
    name = str(used).rpartition(".")[2]
    return _OPTIMIZER_NAMES.get(name, name)


def group_optimizer(results: Iterable[Result]) -> str:
    """The optimizer of a setting, in words: what its schedules (not the arms that bring
    their own optimizer) trained with, and whether that is the study's or the user's own.
    """
    results = list(results)
    runs = [r for r in results if r["spec"]["schedule"] not in OWN_OPTIMIZER_ARMS]
    if not runs:  # only arms that bring their own optimizer: name theirs
        return "/".join(sorted({optimizer_of(r) for r in results})) or "-"
    used = sorted({optimizer_of(r) for r in runs})
    asked = runs[0]["spec"]["optimizer"]
    if used == [asked]:
        return asked
    return f"{'/'.join(used)} (the training function's own; the study named {asked})"


def is_candidate(arm: str) -> bool:
    """True for GreedyLR arms: ``greedy`` and ``greedy(<settings>)``."""
    return arm == "greedy" or arm.startswith("greedy(")


# -- losses ---------------------------------------------------------------------------


def _window(steps: int, window_fraction: float) -> int:
    return max(1, round(window_fraction * steps))


def _losses(result: Result) -> np.ndarray:
    """The run's training losses over all ``steps``: inf after a divergence."""
    steps = int(result["spec"]["steps"])
    raw = np.asarray(result.get("losses") or [], dtype=float)[:steps]
    out = np.full(steps, np.inf)
    out[: len(raw)] = raw
    out[~np.isfinite(out)] = np.inf
    if result.get("status") == "diverged":
        bad = np.flatnonzero(~np.isfinite(raw))
        if len(bad):
            out[bad[0] :] = np.inf
    return out


def smoothed_curve(result: Result, *, window_fraction: float = WINDOW_FRACTION) -> np.ndarray:
    """Trailing-window mean of the training loss at every step (inf once diverged).

    Element ``t`` is the mean of the losses of steps ``t - w + 1 .. t`` (1-based steps,
    index ``t - 1``), over the steps available at the start.
    """
    losses = _losses(result)
    w = _window(len(losses), window_fraction)
    finite = np.where(np.isfinite(losses), losses, 0.0)
    bad = (~np.isfinite(losses)).astype(int)
    csum, cbad = np.concatenate([[0.0], np.cumsum(finite)]), np.concatenate([[0], np.cumsum(bad)])
    idx = np.arange(1, len(losses) + 1)
    lo = np.maximum(0, idx - w)
    mean = (csum[idx] - csum[lo]) / (idx - lo)
    mean[(cbad[idx] - cbad[lo]) > 0] = np.inf
    return mean


def loss_at(result: Result, fraction: float, *, window_fraction: float = WINDOW_FRACTION) -> float:
    """The smoothed training loss at ``fraction`` of training (see the module docstring)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    steps = int(result["spec"]["steps"])
    step = max(1, math.ceil(fraction * steps - 1e-9))
    return float(smoothed_curve(result, window_fraction=window_fraction)[step - 1])


def time_to_target(
    result: Result, target: float, *, window_fraction: float = WINDOW_FRACTION
) -> int | None:
    """The first step at which the smoothed training loss is at or below ``target``.

    ``None`` if it never gets there.
    """
    if not math.isfinite(target):
        return None
    curve = smoothed_curve(result, window_fraction=window_fraction)
    hits = np.flatnonzero(curve <= target)
    return int(hits[0]) + 1 if len(hits) else None


# -- held-out metric ------------------------------------------------------------------


def _metric(result: Result) -> tuple[str | None, bool, bool]:
    """The held-out metric's name, whether higher is better, and whether that direction
    was guessed from the name: as stored, and by the harness's one rule where the result
    does not say (:func:`greedylr.studies.execution.metric_field`)."""
    meta = result.get("metric") or {}
    name, higher = meta.get("name"), meta.get("higher_is_better")
    if name is None:
        name = headline_metric(result.get("metrics") or [])
    if higher is not None:
        return name, bool(higher), bool(meta.get("guessed"))
    field = metric_field(name, None)
    higher = field["higher_is_better"]
    return name, True if higher is None else bool(higher), bool(field.get("guessed"))


def metric_name(result: Result) -> tuple[str | None, bool]:
    """The held-out metric's name and direction (whether higher is better).

    As the result stores them; for a result that stores no name, its headline metric
    (:func:`greedylr.studies.execution.headline_metric`: the first name reported other
    than ``feed``), and for one that stores no direction, ``feed``'s (lower is better)
    or one read from the name (:func:`greedylr.studies.execution.direction_from_name`).
    ``(None, True)`` for a result that reported no metric."""
    name, higher, _ = _metric(result)
    return name, higher


class MetricMismatch(ValueError):
    """Trials that are compared with each other name different held-out metrics or
    directions (a function changed what it reports between two runs of a study):
    comparing their values would compare different things."""


def common_metric(results: Iterable[Result]) -> tuple[str | None, bool]:
    """The held-out metric's name and direction that ``results`` share.

    Read from the trials that name one: a trial that failed, timed out or diverged before
    it reported anything names none and has no say (it must not decide, by being read
    first, that a group has no metric). ``(None, True)`` when no trial names one.

    Raises:
        MetricMismatch: the trials that name one disagree on it or on its direction;
            the message says which, and in how many trials each.
    """
    seen: Counter[tuple[str, bool]] = Counter()
    for r in results:
        name, higher = metric_name(r)
        if name is not None:
            seen[(name, higher)] += 1
    if not seen:
        return None, True
    if len(seen) > 1:
        raise MetricMismatch(
            "the trials disagree on the held-out metric: "
            + ", ".join(f"`{name}` ({'higher' if higher else 'lower'} is better) in {n} "
                        f"trial{'s' if n != 1 else ''}"
                        for (name, higher), n in sorted(seen.items()))
        )
    return next(iter(seen))


def direction_guessed(results: Iterable[Result]) -> bool:
    """Whether the direction of the held-out metric of any of ``results`` (the trials of
    a setting, which share it: :func:`common_metric`) was guessed from its name, not
    stated by the training function: the report marks it so."""
    return any(_metric(r)[2] for r in results)


def final_metric(result: Result) -> float | None:
    """The held-out metric at the last evaluation; ``None`` if never reported."""
    name, _ = metric_name(result)
    rows = [r for r in result.get("metrics") or [] if name in r]
    return float(rows[-1][name]) if rows else None


def best_metric(result: Result) -> tuple[float, int] | None:
    """The best held-out metric over the run and the first step it was reached at.

    This is what a team that stops early keeps: a schedule that trains faster may
    overfit sooner, so the best value and when it came matter as much as the last.
    """
    name, higher = metric_name(result)
    rows = [r for r in result.get("metrics") or [] if name in r and math.isfinite(float(r[name]))]
    if not rows:
        return None
    pick = max if higher else min
    best = pick(rows, key=lambda r: float(r[name]))
    return float(best[name]), int(best["step"])


def seed_outcome(candidate: float, baseline: float, higher: bool) -> int:
    """One seed of a pair, for the candidate: 1 won, 0 tied, -1 lost, from the two final
    held-out metrics. A non-finite final is a divergence, whatever the run's status says:
    a loss for its side, a tie where both diverged; finite finals within a relative 1e-9
    tie. The one rule of every count of seeds won (the held-out summary's
    ``greedylr.studies.tuning.TunedPair`` and :func:`paired_differences`), so that two
    tables of one report never count one seed two ways."""
    c_finite, b_finite = math.isfinite(candidate), math.isfinite(baseline)
    if not (c_finite and b_finite):
        return int(c_finite) - int(b_finite)
    if math.isclose(candidate, baseline, rel_tol=1e-9, abs_tol=1e-12):
        return 0
    return 1 if (candidate > baseline) == higher else -1


def lr_changes(result: Result, *, tolerance: float = 1e-12) -> dict[str, int]:
    """How often the LR went up and down between consecutive steps (the "pulse")."""
    lrs = np.asarray(result.get("lrs") or [], dtype=float)
    if len(lrs) < 2:
        return {"up": 0, "down": 0}
    diff = np.diff(lrs)
    scale = np.maximum(np.abs(lrs[:-1]), 1e-30)
    return {
        "up": int(np.sum(diff > tolerance * scale)),
        "down": int(np.sum(diff < -tolerance * scale)),
    }


# -- the paper's labels ---------------------------------------------------------------


def label(delta: float, threshold: float) -> str:
    """The paper's label of an improvement ``delta`` (positive: the candidate is better)."""
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    if math.isnan(delta):
        raise ValueError("delta is NaN")
    if delta >= threshold:
        return "yes"
    if delta > 0:
        return "yes*"
    if delta > -threshold:
        return "no*"
    return "no"


@dataclass(frozen=True)
class Comparison:
    """One candidate-vs-baseline comparison at one stage of training."""

    setting: tuple[Any, ...]
    seed: int
    candidate: str
    baseline: str
    stage: float
    candidate_loss: float
    baseline_loss: float
    delta: float
    label: str


def _delta(candidate: float, baseline: float, mode: str) -> float:
    if math.isinf(candidate) and math.isinf(baseline):
        return 0.0  # both diverged: neither is better
    delta = baseline - candidate
    if mode == "rel":
        if math.isinf(baseline):
            return math.inf
        return (
            delta / abs(baseline)
            if baseline != 0
            else (0.0 if delta == 0 else math.copysign(math.inf, delta))
        )
    return delta


def _by_setting(results: Iterable[Result]) -> dict[tuple[Any, ...], dict[str, dict[int, Result]]]:
    table: dict[tuple[Any, ...], dict[str, dict[int, Result]]] = defaultdict(dict)
    for r in results:
        table[setting_of(r)].setdefault(arm_of(r), {})[int(r["spec"]["seed"])] = r
    return table


def compare(
    results: Iterable[Result],
    *,
    candidate: Callable[[str], bool] | str | None = None,
    baselines: Sequence[str] | None = None,
    mode: str = "abs",
    threshold: float | None = None,
    stages: Sequence[float] = STAGES,
    window_fraction: float = WINDOW_FRACTION,
) -> list[Comparison]:
    """Every candidate-vs-baseline comparison, per setting, seed and stage.

    Args:
        results: stored results (failed runs are skipped: they have no loss to compare).
        candidate: the candidate arm's name, or a predicate on arm names; by default
            every ``greedy`` arm (``greedy``, ``greedy(factor=0.5)``, ...).
        baselines: the baseline arms; by default every arm that is not a candidate.
        mode: ``"abs"`` (absolute loss difference) or ``"rel"`` (relative to the
            baseline's loss).
        threshold: the ``yes``/``yes*`` boundary; 0.1 for ``abs``, 0.01 for ``rel``.
        stages: fractions of training to compare at.
        window_fraction: the smoothing window, as a fraction of the run.
    """
    if mode not in ("abs", "rel"):
        raise ValueError(f"mode must be 'abs' or 'rel', got {mode!r}")
    thr = threshold if threshold is not None else (0.1 if mode == "abs" else 0.01)
    is_cand: Callable[[str], bool]
    if candidate is None:
        is_cand = is_candidate
    elif isinstance(candidate, str):
        name = candidate

        def is_cand(arm: str) -> bool:
            return arm == name
    else:
        is_cand = candidate
    out = []
    usable = [r for r in results if r.get("status") in ("ok", "diverged")]  # with losses
    for setting, arms in _by_setting(usable).items():
        cands = sorted(a for a in arms if is_cand(a))
        bases = sorted(a for a in arms if not is_cand(a) and (baselines is None or a in baselines))
        for cand in cands:
            for base in bases:
                for seed in sorted(set(arms[cand]) & set(arms[base])):
                    c, b = arms[cand][seed], arms[base][seed]
                    for stage in stages:
                        lc = loss_at(c, stage, window_fraction=window_fraction)
                        lb = loss_at(b, stage, window_fraction=window_fraction)
                        d = _delta(lc, lb, mode)
                        out.append(
                            Comparison(setting, seed, cand, base, stage, lc, lb, d, label(d, thr))
                        )
    return out


@dataclass(frozen=True)
class LabelTable:
    """The paper's Table 1/2 for a set of comparisons."""

    counts: dict[str, int]
    total: int
    by_stage: dict[float, dict[str, int]]
    mean_delta: float
    mean_benefit: float
    max_benefit: float
    mean_deficit: float
    max_deficit: float
    mode: str = "abs"

    def percent(self, *labels: str) -> float:
        """The share of comparisons with any of ``labels``, in percent."""
        if self.total == 0:
            return math.nan
        return 100.0 * sum(self.counts[x] for x in labels) / self.total

    @property
    def as_good_or_better(self) -> float:
        return self.percent("yes", "yes*", "no*")

    @property
    def better(self) -> float:
        return self.percent("yes", "yes*")

    @property
    def clearly_better(self) -> float:
        return self.percent("yes")

    @property
    def worse(self) -> float:
        return self.percent("no")

    @property
    def as_good(self) -> float:
        return self.percent("yes*", "no*")

    def stage_as_good_or_better(self, stage: float) -> float:
        """ "As good or better" at one stage (the paper's 92 / 82 / 86 %)."""
        counts = self.by_stage.get(stage, {})
        n = sum(counts.values())
        return math.nan if n == 0 else 100.0 * (n - counts.get("no", 0)) / n


def label_table(comparisons: Sequence[Comparison], *, mode: str = "abs") -> LabelTable:
    """Counts, percentages, benefits and deficits of ``comparisons``.

    Benefits are the positive deltas, deficits the negative ones (in loss units for
    ``abs``, fractions for ``rel``); infinite deltas (one run diverged) are counted in
    the labels but left out of the means and extremes.
    """
    counts = Counter({x: 0 for x in LABELS})
    by_stage: dict[float, dict[str, int]] = {}
    for c in comparisons:
        counts[c.label] += 1
        stage = by_stage.setdefault(c.stage, {x: 0 for x in LABELS})
        stage[c.label] += 1
    deltas = np.array([c.delta for c in comparisons if math.isfinite(c.delta)], dtype=float)
    pos, neg = deltas[deltas > 0], deltas[deltas < 0]

    def stat(values: np.ndarray, fn: Callable[[np.ndarray], Any]) -> float:
        return float(fn(values)) if len(values) else math.nan

    return LabelTable(
        counts=dict(counts),
        total=len(comparisons),
        by_stage=by_stage,
        mean_delta=stat(deltas, np.mean),
        mean_benefit=stat(pos, np.mean),
        max_benefit=stat(pos, np.max),
        mean_deficit=stat(neg, np.mean),
        max_deficit=stat(neg, np.min),
        mode=mode,
    )


# -- seeds ----------------------------------------------------------------------------


def bootstrap_ci(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    statistic: Callable[..., Any] = np.mean,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic`` (the mean) of ``values``.

    Deterministic (seeded). Non-finite values are dropped. With fewer than two values the
    interval is the value itself (or NaN): there is no spread to resample. ``statistic``
    must take an ``axis`` keyword, as ``np.mean`` and ``np.median`` do.
    """
    data = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(data) == 0:
        return math.nan, math.nan
    if len(data) == 1:
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    draws = statistic(data[rng.integers(0, len(data), size=(resamples, len(data)))], axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(draws, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _t_central(t: float, df: int) -> float:
    """``P(|T| <= t)`` for Student's t with an integer ``df`` >= 1: the finite series of
    Abramowitz and Stegun 26.7.3 (odd ``df``) and 26.7.4 (even), exact up to rounding."""
    theta = math.atan(t / math.sqrt(df))
    c2, sin = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:
        if df == 1:
            return 2.0 * theta / math.pi
        term = total = math.cos(theta)
        for k in range(3, df - 1, 2):
            term *= c2 * (k - 1) / k
            total += term
        return 2.0 / math.pi * (theta + sin * total)
    term = total = 1.0
    for k in range(2, df - 1, 2):
        term *= c2 * (k - 1) / k
        total += term
    return sin * total


#: Above this many degrees of freedom the quantile comes from the Cornish-Fisher
#: expansion (its relative error there is below 1e-10 for p up to 0.9995), not the
#: series (``df / 2`` terms a step).
_SERIES_DF = 300


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``df`` an
    integer >= 1, ``0 < p < 1``): ``t_quantile(0.975, 2)`` is 4.303.

    Computed here, not with scipy (not a dependency of the core package): by bisection on
    the exact distribution function of :func:`_t_central` up to ``df`` 300, beyond by the
    Cornish-Fisher expansion in ``1/df`` (Abramowitz and Stegun 26.7.5).
    """
    if int(df) != df or df < 1:
        raise ValueError(f"df must be an integer >= 1, got {df!r}")
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    df = int(df)
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    central = 2.0 * p - 1.0  # P(|T| <= t) at the quantile
    if df > _SERIES_DF:
        z = NormalDist().inv_cdf(p)
        g1 = (z**3 + z) / 4
        g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
        g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
        g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
        return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4
    lo, hi = 0.0, 1.0
    while _t_central(hi, df) < central:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if _t_central(mid, df) < central:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def t_ci(values: Sequence[float], *, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean of ``values``: mean ± t(n-1) · s/√n.

    What the verdicts use: for the mean of n paired differences it covers the true mean
    with the stated probability at every n when the differences are roughly normal, and
    conservatively when they are symmetric with heavier tails (the case of no real
    difference between two arms, whose paired differences are symmetric), where the
    percentile bootstrap of :func:`bootstrap_ci` is far too narrow at a few seeds (it
    cannot be wider than the values it resamples). Non-finite values are dropped; with
    fewer than two values there is no spread to estimate and the interval is NaN (the
    mean of one value, NaN with none).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    data = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(data) < 2:
        return math.nan, math.nan
    mean = float(np.mean(data))
    half = t_quantile(0.5 + confidence / 2.0, len(data) - 1) * float(
        np.std(data, ddof=1)) / math.sqrt(len(data))
    return mean - half, mean + half


def sign_test(wins: int, losses: int) -> float:
    """The exact two-sided sign test's p-value for ``wins`` against ``losses`` (ties
    left out): the chance, were each seed a fair coin, of a split at least this uneven."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


@dataclass(frozen=True)
class Stat:
    """Mean, standard deviation (ddof=1), Student-t 95% CI of the mean (:func:`t_ci`;
    NaN with fewer than two values) and count of finite values."""

    mean: float
    std: float
    ci: tuple[float, float]
    n: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Stat:
        data = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        if not data:
            return cls(math.nan, math.nan, (math.nan, math.nan), 0)
        std = float(np.std(data, ddof=1)) if len(data) > 1 else 0.0
        return cls(float(np.mean(data)), std, t_ci(data), len(data))


@dataclass(frozen=True)
class ArmSummary:
    """One arm in one setting, across seeds."""

    setting: tuple[Any, ...]
    arm: str
    runs: int
    statuses: dict[str, int]
    final_loss: Stat
    final_metric: Stat
    best_metric: Stat
    best_step: Stat
    wall_time: Stat
    metric: str | None
    higher_is_better: bool
    lr_ups: Stat = field(default_factory=lambda: Stat.of([]))
    lr_downs: Stat = field(default_factory=lambda: Stat.of([]))


def _setting_metric(arms: dict[str, dict[int, Result]]) -> tuple[str | None, bool, bool]:
    """A setting's :func:`common_metric` and whether its trials agree on it (when they
    do not: no name, and its metric must not be compared)."""
    try:
        return (*common_metric(r for runs in arms.values() for r in runs.values()), True)
    except MetricMismatch:
        return None, True, False


def _scored(runs: Iterable[Result]) -> list[Result]:
    """The ``runs`` whose final held-out metric is finite: a non-finite one is a
    divergence (:func:`seed_outcome`), so its best-so-far is left out with it."""
    out = []
    for r in runs:
        final = final_metric(r)
        if final is not None and math.isfinite(final):
            out.append(r)
    return out


def arm_summaries(results: Iterable[Result]) -> list[ArmSummary]:
    """Per setting and arm: seed statistics of the final loss and held-out metric.

    The loss statistics are over the runs that finished (``ok``); the final and the
    best-so-far held-out metric over the same seeds, those of them whose final metric is
    finite (a best averaged over more seeds than the final would compare two
    populations). The metric is the setting's :func:`common_metric`; where its trials
    disagree on it, ``metric`` is ``None`` and the metric statistics are empty."""
    out = []
    for setting, arms in _by_setting(results).items():
        name, higher, same = _setting_metric(arms)
        for arm, by_seed in sorted(arms.items()):
            runs = list(by_seed.values())
            ok = [r for r in runs if r.get("status") == "ok"]
            scored = _scored(ok) if same else []
            bests = [best_metric(r) for r in scored]
            changes = [lr_changes(r) for r in ok]
            out.append(
                ArmSummary(
                    setting=setting,
                    arm=arm,
                    runs=len(runs),
                    statuses=dict(Counter(r.get("status", "failed") for r in runs)),
                    final_loss=Stat.of(loss_at(r, 1.0) for r in ok),
                    final_metric=Stat.of(final_metric(r) for r in scored),
                    best_metric=Stat.of(b[0] if b else None for b in bests),
                    best_step=Stat.of(b[1] if b else None for b in bests),
                    wall_time=Stat.of(r.get("wall_time") for r in ok),
                    metric=name,
                    higher_is_better=higher,
                    lr_ups=Stat.of(c["up"] for c in changes),
                    lr_downs=Stat.of(c["down"] for c in changes),
                )
            )
    return out


@dataclass(frozen=True)
class Paired:
    """Candidate minus baseline, paired by seed, in one setting."""

    setting: tuple[Any, ...]
    candidate: str
    baseline: str
    final_loss_diff: Stat
    final_metric_diff: Stat
    time_to_target: Stat
    reached: int
    pairs: int
    wins: int

    @property
    def time_to_target_fraction(self) -> float:
        """Mean steps to the baseline's final loss, as a fraction of the run."""
        steps = self.setting[3]
        return self.time_to_target.mean / steps if steps else math.nan


def paired_differences(
    results: Iterable[Result],
    *,
    candidate: Callable[[str], bool] | None = None,
) -> list[Paired]:
    """Per setting, candidate vs each baseline over the seeds both ran successfully.

    ``final_metric_diff`` is signed so that positive always means the candidate is
    better (higher accuracy, or lower perplexity), by the setting's
    :func:`common_metric` (empty where its trials disagree on the metric).
    ``time_to_target`` is over the seeds
    where the candidate reached the baseline's final smoothed loss (``reached`` of
    ``pairs``); ``wins`` counts seeds the candidate won by :func:`seed_outcome`, the
    held-out summary's rule: a better final metric, or a finite one where the
    baseline's is not (a divergence, left out of ``final_metric_diff``).
    """
    is_cand = candidate or is_candidate
    out = []
    for setting, arms in _by_setting(results).items():
        _, higher, same = _setting_metric(arms)
        for cand in sorted(a for a in arms if is_cand(a)):
            for base in sorted(a for a in arms if not is_cand(a)):
                seeds = sorted(
                    s
                    for s in set(arms[cand]) & set(arms[base])
                    if arms[cand][s].get("status") == "ok" and arms[base][s].get("status") == "ok"
                )
                loss_diff, metric_diff, ttt = [], [], []
                wins = 0
                for s in seeds:
                    c, b = arms[cand][s], arms[base][s]
                    loss_diff.append(loss_at(c, 1.0) - loss_at(b, 1.0))
                    fc, fb = final_metric(c), final_metric(b)
                    if same and fc is not None and fb is not None:
                        wins += seed_outcome(fc, fb, higher) > 0
                        if math.isfinite(fc) and math.isfinite(fb):
                            metric_diff.append(fc - fb if higher else fb - fc)
                    t = time_to_target(c, loss_at(b, 1.0))
                    if t is not None:
                        ttt.append(t)
                out.append(
                    Paired(
                        setting=setting,
                        candidate=cand,
                        baseline=base,
                        final_loss_diff=Stat.of(loss_diff),
                        final_metric_diff=Stat.of(metric_diff),
                        time_to_target=Stat.of(ttt),
                        reached=len(ttt),
                        pairs=len(seeds),
                        wins=wins,
                    )
                )
    return out


def status_counts(results: Iterable[Result]) -> dict[str, dict[str, int]]:
    """Per arm: how many runs had each of :data:`STATUSES`."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        counts[arm_of(r)][r.get("status", "failed")] += 1
    return {
        arm: {s: c[s] for s in STATUSES} for arm, c in sorted(counts.items())
    }

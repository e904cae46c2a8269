"""The cases of ``tests/test_parity.py``, generated once, and the float rule's answers.

A case is a configuration (every knob of :class:`~greedylr.GreedyConfig` drawn), base LRs
and a script: losses (non-finite ones included) with held-out values interleaved. The
cases come in families that share what the optax port compiles (smoothing, window, final
cooldown), so that its parity test compiles once per family; every other knob varies
within a family; each family also has a case with held-out values through a long warmup
ramp and after it. :func:`reference` runs a case through :mod:`greedylr.rule`, the
implementation every other one is compared with.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from typing import Any

from greedylr import rule
from greedylr import tensor_rule as tr
from greedylr.rule import Event, GreedyConfig, RuleState

#: (smoothing, window, budget as (total_steps, anneal_fraction, anneal_shape) or None,
#: base_schedule)
FAMILIES = [
    ("none", 1, None, "constant"),
    ("window", 1, None, "constant"),
    ("window", 5, None, "constant"),
    ("ema", 3, None, "constant"),
    ("ema", 10, None, "constant"),
    ("ema", 50, None, "constant"),
    ("ema", 5, (60, 0.2, "1-sqrt"), "constant"),
    ("window", 3, (50, 0.5, "linear"), "constant"),
    ("none", 1, (40, 0.25, "cosine"), "constant"),
    ("window", 5, (30, 0.0, "cosine"), "constant"),  # a budget, but nothing to anneal
    # cosine's decay under the rule: ending with the script, before it, after it (the
    # final cooldown's knobs are ignored there)
    ("ema", 5, (60, 0.2, "1-sqrt"), "cosine"),
    ("window", 3, (40, 0.0, "linear"), "cosine"),
    ("none", 1, (90, 0.0, "linear"), "cosine"),
]
CASES_PER_FAMILY = 14
STEPS = 60  # losses per script: one length, so that the optax port scans them in one batch
NONFINITE = (math.nan, math.inf, -math.inf)

# ("loss", x) feeds update(); ("eval", v) feeds observe_eval(), between two losses
Script = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Case:
    name: str
    config: GreedyConfig
    base: tuple[float, ...]
    script: Script

    @property
    def losses(self) -> list[float]:
        return [v for kind, v in self.script if kind == "loss"]


@dataclass
class Trajectory:
    """The float rule on a case: after each script item, the LRs and the events."""

    lrs: list[tuple[float, ...]] = field(default_factory=list)
    events: list[tuple[Event, ...]] = field(default_factory=list)
    smoothed: list[float | None] = field(default_factory=list)
    state: RuleState | None = None

    def all_events(self, case: Case, upto: int | None = None) -> list[Event]:
        """Those of the first ``upto`` script items (all by default), in the order of
        :attr:`greedylr.GreedyLR.events`: by step, a step's own events first."""
        items = list(zip(case.script, self.events))[:upto]
        steps = [e for (kind, _), es in items if kind == "loss" for e in es]
        evals = [e for (kind, _), es in items if kind == "eval" for e in es]
        return sorted(steps + evals, key=lambda e: e.step)


def decoded_events(config: GreedyConfig, tstate: tr.TensorState, d: tr.TensorDecision,
                   value: float) -> list[Event]:
    """The events of tensor-rule decision ``d`` (after ``value``), decoded on the host."""
    return tr.decode_events(
        config, step=int(tstate.step), code=int(d.code), loss=value,
        smoothed=float(d.smoothed), reference=float(d.reference),
        lrs_before=d.lrs_before.tolist(), lrs_changed=d.lrs_changed.tolist(),
        lrs_after=d.rule_lrs.tolist(), min_lrs=tstate.min_lrs.tolist(),
        max_lrs=tstate.max_lrs.tolist(), penalty=int(d.penalty), first=float(d.first),
    )


def _bounds(rng: random.Random, base: list[float]) -> dict[str, Any]:
    kind = rng.choice(["ratio", "ratio", "absolute", "outside", "none"])
    if kind == "ratio":
        low = rng.choice([None, 0.1, 0.5, 1.0, rng.uniform(0.05, 1.0)])
        high = rng.choice([None, 1.0, 2.0, rng.uniform(1.0, 30.0)])
        return {"min_lr_ratio": low, "max_lr_ratio": high}
    if kind == "absolute":
        return {"min_lr": rng.choice([0.0, min(base) * rng.uniform(0.05, 1.0)]),
                "max_lr": rng.choice([max(base), max(base) * rng.uniform(1.0, 30.0)])}
    if kind == "outside":  # absolute bounds that need not contain the base LRs
        return {"min_lr": rng.choice([0.0, 0.01, 0.05]), "max_lr": rng.choice([0.2, 1.0]),
                "check_bounds": False}
    return {"min_lr_ratio": None, "max_lr_ratio": None}


def _config(rng: random.Random, family: tuple, base: list[float]) -> GreedyConfig:
    smoothing, window, cooldown, base_schedule = family
    threshold_mode = rng.choice(["rel", "abs"])
    anneal: dict[str, Any] = {}
    if cooldown is not None:
        total, fraction, shape = cooldown
        anneal = {"total_steps": total, "anneal_fraction": fraction, "anneal_shape": shape}
    return GreedyConfig(
        factor=rng.choice([0.5, 0.3, 0.9, 0.95, rng.uniform(0.05, 0.99)]),
        patience=rng.randint(0, 4),
        increase_patience=rng.choice([None, rng.randint(0, 4)]),
        compare=rng.choice(["best", "recent_best", "previous"]),
        threshold=rng.choice([0.0, 1e-3, rng.uniform(0.0, 0.05 if threshold_mode == "rel"
                                                     else 0.2)]),
        threshold_mode=threshold_mode,
        mode=rng.choice(["min", "max"]),
        smoothing=smoothing,
        window=window,
        warmup=rng.choice([0, 0, rng.randint(1, 8)]),
        warmup_start_factor=rng.choice([0.0, 0.1, rng.uniform(0.0, 1.0)]),
        cooldown=rng.randint(0, 3),
        hold_after_increase=rng.randint(0, 3),
        reset_patience=rng.choice([None, rng.randint(1, 3)]),
        eps=rng.choice([0.0, 0.0, 1e-8, min(base) * rng.uniform(0.0, 0.2)]),
        on_nonfinite=rng.choice(["skip", "decrease"]),
        noise_threshold=rng.choice([0.0, 0.0, 0.5, 2.0, rng.uniform(0.0, 2.0)]),
        payoff_patience=rng.choice([None, None, rng.randint(1, 4)]),
        eval_patience=rng.choice([None, 0, 0, 1, 2]),
        eval_mode=rng.choice(["min", "max"]),
        eval_factor=rng.choice([0.5, rng.uniform(0.1, 0.9)]),
        base_schedule=base_schedule,
        blowup_ratio=rng.choice([None, None, 1.2, 1.5, rng.uniform(1.05, 3.0)]),
        blowup_raw_check=rng.random() < 0.5,
        floor_anneals_to_zero=rng.random() < 0.5,
        **anneal,
        **_bounds(rng, base),
        eval_pace=rng.choice([0.0, 0.0, 0.5, rng.uniform(0.0, 2.0)]),
        eval_compound_margin=rng.choice([None, 0.03, 0.03, 0.0, rng.uniform(0.0, 0.3)]),
        # ratios near 1, as the blow-up guard's: the cases' losses wander within a few
        # times their first value
        spike_ratio=rng.choice([None, None, 1.2, 1.5, rng.uniform(1.05, 3.0)]),
        anneal_to_zero=rng.random() < 0.3,
        stalled_anneals_to_zero=rng.random() < 0.5,
    )


def random_losses(rng: random.Random, n: int = STEPS) -> list[float]:
    """A walk, a noisy trend, a grid of exact ties or plateaus; a few non-finite values."""
    kind = rng.choice(["walk", "trend", "grid", "plateau"])
    out, x = [], rng.uniform(0.5, 5.0)
    for t in range(n):
        if kind == "walk":
            x *= math.exp(rng.gauss(0.0, 0.1))
        elif kind == "trend":
            x = 3.0 * math.exp(-t / 20) + rng.gauss(0.0, 0.2)
        elif kind == "grid":  # exact ties, many of them
            x = rng.choice([1.0, 1.5, 2.0, 2.5])
        elif rng.random() < 0.15:  # plateau: long runs of one value, then a jump
            x = rng.uniform(0.5, 5.0)
        out.append(x)
    for _ in range(rng.choice([0, 0, 1, 3])):
        out[rng.randrange(n)] = rng.choice(NONFINITE)
    return out


def _script(rng: random.Random, losses: list[float], evals: bool) -> Script:
    """The losses, with a held-out value after some of them (never after the last)."""
    every = rng.randint(3, 9)
    out: list[tuple[str, float]] = []
    for t, loss in enumerate(losses):
        out.append(("loss", loss))
        if evals and t % every == every - 1 and t < len(losses) - 1:
            value = loss if math.isfinite(loss) else 1.0
            out.append(("eval", math.nan if rng.random() < 0.05 else
                        value + rng.gauss(0.0, 0.3)))
    return tuple(out)


def _ramp_script(rng: random.Random, losses: list[float], warmup: int, maximize: bool) -> Script:
    """The losses, with a held-out value after every other one (never after the last),
    through the warmup ramp (after its last two steps too) and after it; the one right
    after the update that ends the ramp is worse than all the others."""
    out: list[tuple[str, float]] = []
    boundary = 0
    for t, loss in enumerate(losses, 1):
        out.append(("loss", loss))
        if t == warmup:
            boundary = len(out)
        if (t % 2 == warmup % 2 or t == warmup - 1) and t < len(losses):
            out.append(("eval", (loss if math.isfinite(loss) else 1.0) + rng.gauss(0.0, 0.3)))
    worst = (min if maximize else max)(v for kind, v in out if kind == "eval")
    out[boundary] = ("eval", worst - 1.0 if maximize else worst + 1.0)
    return tuple(out)


def _valid(config: GreedyConfig, base: list[float]) -> bool:
    try:
        rule.init(config, base)
    except ValueError:
        return False
    return True


def _long_runs() -> list[Case]:
    """1,200-step noisy descents with spikes (past the end of the EMA tables), and the
    transformers preset on 600 steps."""
    cases = []
    for i, kwargs in enumerate([
        {},
        {"smoothing": "window", "window": 7, "compare": "previous", "patience": 1},
        {"smoothing": "none", "patience": 0, "reset_patience": 2, "cooldown": 2,
         "hold_after_increase": 1, "warmup": 5, "on_nonfinite": "decrease",
         "min_lr_ratio": 0.5, "max_lr_ratio": 2.0},
        {"eval_patience": 1, "eval_factor": 0.7, "total_steps": 1100, "anneal_fraction": 0.1,
         "noise_threshold": 1.0, "payoff_patience": 4, "patience": 4},
        {"base_schedule": "cosine", "total_steps": 1000, "warmup": 20, "eval_patience": 0,
         "payoff_patience": 3, "reset_patience": 3, "min_lr_ratio": 0.5},
    ]):
        rng = random.Random(7)
        losses, x = [], 2.0
        for _ in range(1200):
            x = max(x + rng.gauss(-0.002, 0.05), 0.01)
            losses.append(rng.choice(NONFINITE) if rng.random() < 0.01 else x)
        cases.append(Case(f"long-{i}", GreedyConfig(**kwargs), (0.1, 0.01),
                          _script(rng, losses, evals=True)))
    preset = GreedyConfig(
        factor=0.95, patience=10, threshold=1e-6, threshold_mode="abs", min_lr=1e-3,
        max_lr=1.0, min_lr_ratio=None, max_lr_ratio=None, eps=1e-8, smoothing="window",
        window=50, reset_patience=500, check_bounds=False, eval_patience=None,
    )
    rng = random.Random(3)
    losses = [1.0 / (1 + 0.01 * i) + rng.gauss(0, 0.05) for i in range(600)]
    cases.append(Case("transformers-preset", preset, (0.01,), tuple(("loss", v) for v in losses)))
    return cases


def _ramp_cases(seed: int) -> list[Case]:
    """Per family, a case with a long warmup ramp (18 to 25 steps) and held-out values
    through it and after it (:func:`_ramp_script`): during the ramp they only record the
    best, after it they count."""
    rng = random.Random(seed)
    cases = []
    for f, family in enumerate(FAMILIES):
        while True:
            base = [10 ** rng.uniform(-4, 0)]  # one group: the optax port runs these too
            config = _config(rng, family, base)
            ramp = {"warmup": rng.randint(18, 25), "eval_patience": rng.choice([0, 0, 1])}
            try:
                config = replace(config, **ramp)
            except ValueError:  # a warmup that runs into the final cooldown
                continue
            if _valid(config, base):
                break
        script = _ramp_script(rng, random_losses(rng, STEPS), config.warmup,
                              config.eval_mode == "max")
        cases.append(Case(f"family{f}-ramp", config, tuple(base), script))
    return cases


def _negative_cases(seed: int) -> list[Case]:
    """Per family, a case whose losses are mostly negative (a Gaussian NLL, a negative
    ELBO) and cross 0, with a relative threshold: better is beyond the reference by that
    fraction of its size, on either side of 0; and its twin with the product bar
    (``threshold_mode="rel_product"``, torch's and transformers'), lenient below 0."""
    rng = random.Random(seed)
    cases = []
    for f, family in enumerate(FAMILIES):
        while True:
            base = [10 ** rng.uniform(-4, 0)]  # one group: the optax port runs these too
            config = replace(_config(rng, family, base), threshold_mode="rel",
                             threshold=rng.choice([0.02, 0.05, rng.uniform(0.005, 0.1)]))
            if _valid(config, base):
                break
        losses = [x - 4.0 for x in random_losses(rng, STEPS)]
        script = _script(rng, losses, evals=config.eval_patience is not None)
        cases.append(Case(f"family{f}-negative", config, tuple(base), script))
        cases.append(Case(f"family{f}-negative-product",
                          replace(config, threshold_mode="rel_product"), tuple(base), script))
    return cases


def make_cases(seed: int = 20251214) -> list[Case]:
    """Every family's random cases, the ramp cases, the negative losses, then the long
    runs."""
    rng = random.Random(seed)
    cases = []
    for f, family in enumerate(FAMILIES):
        made = 0
        while made < CASES_PER_FAMILY:
            groups = rng.choice([1, 1, 1, 2, 3])
            base = [10 ** rng.uniform(-4, 0) for _ in range(groups)]
            config = _config(rng, family, base)
            if not _valid(config, base):
                continue
            losses = random_losses(rng, STEPS)
            script = _script(rng, losses, evals=config.eval_patience is not None)
            cases.append(Case(f"family{f}-{made}", config, tuple(base), script))
            made += 1
    return cases + _ramp_cases(seed + 1) + _negative_cases(seed + 2) + _long_runs()


def reference(case: Case) -> Trajectory:
    """The float rule's LRs and events after each script item, and its final state."""
    state = rule.init(case.config, list(case.base))
    out = Trajectory()
    for kind, value in case.script:
        step = rule.update if kind == "loss" else rule.observe_eval
        decision = step(case.config, state, value)
        out.lrs.append(decision.lrs)
        out.events.append(decision.events)
        out.smoothed.append(decision.smoothed)
    out.state = state
    return out


def cuts(case: Case) -> list[int]:
    """Script positions to checkpoint at: mid-run, around the final cooldown's start, and
    right after the last held-out value of the warmup ramp."""
    n = len(case.script)
    positions = {n // 3, (2 * n) // 3}
    start = case.config.anneal_start
    seen, ramp = 0, None
    for i, (kind, _) in enumerate(case.script):
        if kind == "eval" and seen < case.config.warmup:
            ramp = i + 1  # right after a held-out value given during the ramp
        seen += kind == "loss"
        # the script index right after the loss of observation ``start - 1`` and ``start``
        if start is not None and seen in (start - 1, start, start + 1) and kind == "loss":
            positions.add(i + 1)
    if ramp is not None:
        positions.add(ramp)
    return sorted(p for p in positions if 0 < p < n)


CASES = make_cases()

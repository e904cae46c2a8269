"""Every schedule and optimizer the studies compare, built by name.

All schedules are built from the same three inputs: the optimizer (whose learning rate
is the initial, peak LR), the number of training steps and the warmup steps, so that
only the schedule differs between arms. What each schedule is, and why it is configured
so: ``docs/guides/compare.md`` ("The schedules").

Settings are validated: a key that the schedule does not take raises ``ValueError``,
except keys with a prefix in :data:`PASSTHROUGH_PREFIXES` (``workload_``: options of
the workload; ``optimizer_``: options of :func:`build_optimizer`; ``perturb_``:
perturbations; ``trial_``: options of the trial protocol, such as ``trial_range_test``),
which are ignored here.

Examples:
    >>> import torch
    >>> opt = build_optimizer("adamw", torch.nn.Linear(2, 1).parameters(), lr=0.1,
    ...                       schedule="cosine")
    >>> sched = build_schedule("cosine", opt, total_steps=10, warmup=2)
    >>> [round(g["lr"], 3) for g in opt.param_groups]  # warmup starts at 0
    [0.0]
    >>> opt.step()  # after each optimizer step, with that step's loss:
    >>> step_schedule(sched, 1.0); round(opt.param_groups[0]["lr"], 3)
    0.05
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from greedylr._extras import requires_extra
from greedylr.config import ABSENT_MEANS
from greedylr.rule import GreedyConfig
from greedylr.scheduler import GreedyLR

__all__ = [
    "HELD_OUT_BASELINES",
    "HELD_OUT_DRIVEN",
    "LOSS_DRIVEN",
    "LR_FREE",
    "ON_PACKAGE_DEFAULTS",
    "OPTIMIZERS",
    "PASSTHROUGH_PREFIXES",
    "SCHEDULES",
    "TRIAL_OPTIONS",
    "WORKLOAD_OPTIMIZERS",
    "HeldOutPlateau",
    "build_optimizer",
    "build_schedule",
    "check_settings",
    "current_lr",
    "fed_nothing",
    "greedy_defaults_digest",
    "is_loss_driven",
    "reacts_to_held_out",
    "step_schedule",
    "transformers_greedy_arguments",
]

logger = logging.getLogger(__name__)

SCHEDULES: tuple[str, ...] = (
    "constant",
    "constant_warmup",
    "linear",
    "cosine",
    "cosine_restarts",
    "polynomial",
    "exponential",
    "reduce_on_plateau",
    "transformers_greedy",
    "greedy",
    "schedule_free",
)
"""The schedules the studies compare (every name :func:`build_schedule` accepts but
:data:`HELD_OUT_BASELINES` and :data:`LR_FREE`), in the order reports list them."""

HELD_OUT_BASELINES: tuple[str, ...] = ("reduce_on_plateau_eval",)
"""Schedules that :func:`build_schedule` also accepts and that only a study feeding a
held-out value runs (``greedylr compare`` with ``trial.report(feed=...)``, the held-out
protocol): fed nothing they are a constant LR, so the studies of :data:`SCHEDULES`, which
feed none, leave them out."""

LR_FREE: tuple[str, ...] = ("prodigy",)
"""Optimizer-based arms that :func:`build_schedule` also accepts but that need an optional
package (``prodigyopt``, in the ``bench`` extra): only the studies that name them run them,
so that adding one changes no other study's design."""

LOSS_DRIVEN: frozenset[str] = frozenset({"reduce_on_plateau", "transformers_greedy", "greedy"})
"""The schedules whose ``step`` takes the loss."""

HELD_OUT_DRIVEN: frozenset[str] = frozenset({"reduce_on_plateau_eval", "greedy"})
"""The schedules that react to a held-out value (``observe_eval``, what
``trial.report(feed=...)`` passes); see :func:`reacts_to_held_out`."""


def reacts_to_held_out(name: str, settings: Mapping[str, Any]) -> bool:
    """True if schedule ``name`` with ``settings`` reacts to a held-out value: one of
    :data:`HELD_OUT_DRIVEN`, unless it is GreedyLR with its held-out rule off
    (``eval_patience=None``)."""
    own = dict(settings)
    return name in HELD_OUT_DRIVEN and not (
        name == "greedy" and "eval_patience" in own and own["eval_patience"] is None)


def fed_nothing(workload: str, schedule: str, settings: Mapping[str, Any],
                metrics: Sequence[Mapping[str, Any]]) -> bool:
    """True if a trial of a user's function (``module:function``) ran a schedule that
    reacts to a held-out value (:func:`reacts_to_held_out`) and none of its evaluations
    (``metrics``, the rows ``trial.report`` records) fed one. A built-in workload feeds one
    only under the held-out protocol (``workload_feed_split``), by design."""
    return (":" in workload and reacts_to_held_out(schedule, settings)
            and not any("feed" in row for row in metrics))


ON_PACKAGE_DEFAULTS: frozenset[str] = frozenset({"greedy", "reduce_on_plateau_eval"})
"""The schedules that take a knob a trial does not set from :class:`GreedyConfig`'s
defaults (``reduce_on_plateau_eval`` its ``factor`` and ``patience``), so that a stored
trial of theirs is stale once those defaults change."""


#: Knobs added since 0.2 at a value that keeps every trajectory of the rule before them
#: (a neutral default, or the value a config saved without them means): left out of the
#: digest at that value, so that a trial stored under the older rule stays that rule's.
_ADDED_AT_NEUTRAL: dict[str, Any] = {"base_schedule": "constant", **ABSENT_MEANS}


def greedy_defaults_digest() -> str:
    """A short digest of :class:`GreedyConfig`'s defaults, stored with every trial."""
    return _config_digest(GreedyConfig())


def _config_digest(config: GreedyConfig) -> str:
    values = {k: v for k, v in asdict(config).items()
              if k not in _ADDED_AT_NEUTRAL or v != _ADDED_AT_NEUTRAL[k]}
    blob = json.dumps(values, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:10]


OPTIMIZERS: tuple[str, ...] = ("adamw", "adafactor", "adagrad", "sgd")

#: Optimizers :func:`build_optimizer` also builds, outside the studies' optimizer grid
#: (:data:`OPTIMIZERS`): for the workloads that train with them (round 15's probe split:
#: ``nadam``, ``rmsprop``; round 16's: ``adamax``, ``radam``, ``adadelta``; the seventh
#: probe split's: ``asgd``, ``adam``; the eighth's: ``sparse_adam``; the sixteenth's:
#: ``muon``, torch's ``Muon``, from torch 2.9).
WORKLOAD_OPTIMIZERS: tuple[str, ...] = ("nadam", "rmsprop", "adamax", "radam", "adadelta",
                                        "asgd", "adam", "sparse_adam", "muon")

PASSTHROUGH_PREFIXES: tuple[str, ...] = ("workload_", "optimizer_", "perturb_", "trial_")
"""Settings with these prefixes belong to someone else and are ignored by the schedules."""

#: The trial protocol's own settings (prefix ``trial_``): ``trial_range_test``, an LR
#: range test before the schedule (:meth:`greedylr.studies.trial.Trial.range_test`).
TRIAL_OPTIONS: tuple[str, ...] = ("trial_range_test",)

_GREEDY_KEYS = frozenset(f.name for f in fields(GreedyConfig)) - {"warmup", "total_steps"}
_HF_GREEDY_KEYS = frozenset(
    {
        "mode",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "warmup",
        "min_lr",
        "max_lr",
        "eps",
        "smooth",
        "window_size",
        "reset_start",
    }
)
_PLATEAU_KEYS = frozenset(
    {"mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps"}
)
_ALLOWED: dict[str, frozenset[str]] = {
    "constant": frozenset(),
    "constant_warmup": frozenset(),
    "linear": frozenset(),
    "cosine": frozenset(),
    "cosine_restarts": frozenset({"num_cycles"}),
    "polynomial": frozenset({"power", "lr_end"}),
    "exponential": frozenset({"gamma", "final_ratio"}),
    "reduce_on_plateau": _PLATEAU_KEYS,
    "reduce_on_plateau_eval": _PLATEAU_KEYS - {"min_lr", "eps"},
    "transformers_greedy": _HF_GREEDY_KEYS - {"warmup"},
    "greedy": _GREEDY_KEYS,
    "schedule_free": frozenset(),
    "prodigy": frozenset(),
}


def check_settings(name: str, settings: dict[str, Any], *, total_steps: int = 1,
                   warmup: int = 0) -> dict[str, Any]:
    """The settings meant for schedule ``name``; raise on any it does not take.

    Needs no optimizer, so that a study can check its grid before any trial runs.

    Args:
        name: a schedule name, one of :data:`SCHEDULES`.
        settings: the trial's settings; keys with a prefix in
            :data:`PASSTHROUGH_PREFIXES` are not the schedule's and are left out.
        total_steps: the trial's, where known.
        warmup: the trial's, where known (GreedyLR's warmup must end before its final
            cooldown starts).

    Returns:
        The settings that are the schedule's own.

    Raises:
        ValueError: for an unknown schedule, a setting it does not take, a ``trial_``
            setting not in ``TRIAL_OPTIONS``, or (for ``greedy``) a value
            :class:`~greedylr.GreedyConfig` refuses or ``total_steps`` (the trial's own).
    """
    if name not in _ALLOWED:
        known = ", ".join((*SCHEDULES, *HELD_OUT_BASELINES, *LR_FREE))
        raise ValueError(f"unknown schedule {name!r}; known: {known}")
    protocol = sorted(k for k in settings if k.startswith("trial_") and k not in TRIAL_OPTIONS)
    if protocol:
        raise ValueError(f"unknown trial option(s) {protocol}; the trial protocol takes: "
                         f"{', '.join(TRIAL_OPTIONS)}")
    own = {k: v for k, v in settings.items() if not k.startswith(PASSTHROUGH_PREFIXES)}
    if name == "greedy" and "total_steps" in own:
        raise ValueError(
            "schedule 'greedy' takes its budget from the trial's steps, as cosine does; "
            "for GreedyLR without a budget set anneal_fraction=0.0 (with the constant base "
            "schedule, the budget times only the final cooldown)")
    unknown = sorted(set(own) - _ALLOWED[name])
    if unknown:
        allowed = ", ".join(sorted(_ALLOWED[name])) or "none"
        raise ValueError(
            f"schedule {name!r} does not take setting(s) {unknown}; it takes: {allowed} "
            f"(prefix a key with one of {PASSTHROUGH_PREFIXES} to pass it elsewhere)"
        )
    if name == "greedy":
        # a bad value (factor=1.5) fails here rather than in a trial; the budget is the
        # trial's own (a stand-in by default, for the knobs that need one)
        GreedyConfig(total_steps=total_steps, warmup=warmup, **own)
    return own


def _warmup_then(warmup: int, after: Callable[[int], float]) -> Callable[[int], float]:
    """A LambdaLR multiplier: a linear ramp from 0 over ``warmup`` steps, then ``after``.

    The ramp is the one transformers uses (``step / warmup``), so that every
    schedule with a warmup shares exactly the same first ``warmup`` LRs.
    """

    def multiplier(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return after(step - warmup)

    return multiplier


def _constant_after_warmup(
    optimizer: Optimizer, total_steps: int, warmup: int, own: dict[str, Any]
) -> Callable[[int], float]:
    return lambda t: 1.0


def _linear_decay(
    optimizer: Optimizer, total_steps: int, warmup: int, own: dict[str, Any]
) -> Callable[[int], float]:
    span = max(1, total_steps - warmup)
    return lambda t: max(0.0, float(total_steps - warmup - t) / float(span))


def _cosine_decay(
    optimizer: Optimizer, total_steps: int, warmup: int, own: dict[str, Any]
) -> Callable[[int], float]:
    span, cycles = max(1, total_steps - warmup), 0.5

    def after(t: int) -> float:
        progress = float(t) / float(span)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress)))

    return after


def _cosine_restarts_decay(
    optimizer: Optimizer, total_steps: int, warmup: int, own: dict[str, Any]
) -> Callable[[int], float]:
    span, cycles = max(1, total_steps - warmup), float(int(own.get("num_cycles", 4)))

    def after(t: int) -> float:
        progress = float(t) / float(span)
        if progress >= 1.0:
            return 0.0
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((cycles * progress) % 1.0))))

    return after


def _polynomial_decay(
    optimizer: Optimizer, total_steps: int, warmup: int, own: dict[str, Any]
) -> Callable[[int], float]:
    # transformers takes the initial LR from the optimizer's defaults, not from the groups
    lr_init = optimizer.defaults["lr"]
    lr_end, power = own.get("lr_end", 1e-7), own.get("power", 1.0)
    if not lr_init > lr_end:
        raise ValueError(f"lr_end ({lr_end}) must be smaller than initial lr ({lr_init})")
    span = max(1, total_steps - warmup)

    def after(t: int) -> float:
        if t + warmup > total_steps:
            return lr_end / lr_init
        pct_remaining = 1 - t / span
        return ((lr_init - lr_end) * pct_remaining**power + lr_end) / lr_init

    return after


_TRANSFORMERS_FORMULAS: dict[
    str, Callable[[Optimizer, int, int, dict[str, Any]], Callable[[int], float]]
] = {
    "constant_warmup": _constant_after_warmup,
    "linear": _linear_decay,
    "cosine": _cosine_decay,
    "cosine_restarts": _cosine_restarts_decay,
    "polynomial": _polynomial_decay,
}
"""The decays of ``transformers.get_scheduler`` (``constant_with_warmup``, ``linear``,
``cosine``, ``cosine_with_restarts``, ``polynomial``) after the shared warmup ramp, as
functions of the steps ``t`` since its end: the same operations in the same order, so
the LRs are transformers' bit for bit (``tests/studies/test_schedules.py`` compares them)
while the schedules need torch alone."""


class HeldOutPlateau(LambdaLR):
    """``reduce_on_plateau_eval``: torch's ``ReduceLROnPlateau`` stepped with the held-out
    values only, on the warmup ramp every schedule shares; the budget-free baseline of a
    user who evaluates (Keras' and Lightning's plateau scheduler on ``val_loss``).

    The multiplier after the ramp is the LR of a ``ReduceLROnPlateau`` on a one-parameter
    shadow optimizer that starts at 1, so that every decision is torch's own. It is
    stepped by :meth:`observe_eval` (what ``trial.report(feed=...)`` calls), never with the
    training loss; fed nothing, it is a constant LR after the ramp. Its ``factor`` and
    ``patience`` default to GreedyLR's ``eval_factor`` and ``eval_patience``, so that
    against ``greedy`` it is GreedyLR's held-out rule alone (torch's own defaults, a
    patience of 10 evaluations, never fire in a run evaluated ten times).
    """

    def __init__(self, optimizer: Optimizer, warmup: int = 0, **plateau: Any) -> None:
        defaults = GreedyConfig()
        plateau = {"factor": defaults.eval_factor, "patience": defaults.eval_patience,
                   **plateau}
        self._shadow = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        self._plateau = ReduceLROnPlateau(self._shadow, **plateau)
        self._multiplier = _warmup_then(warmup, lambda _: self._shadow.param_groups[0]["lr"])
        super().__init__(optimizer, self._multiplier)

    def observe_eval(self, value: float) -> None:
        """A held-out value (lower is better unless ``mode="max"``); a reduction applies
        at once (``get_last_lr`` included)."""
        self._plateau.step(value)
        # the groups the schedule was built for, as torch's schedulers (zip stops there)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=False):
            lr = base * self._multiplier(self.last_epoch)
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    _OWN = ("_shadow", "_plateau", "_multiplier")

    def state_dict(self) -> dict[str, Any]:
        """``LambdaLR``'s state and the plateau's (its best value, its count of bad
        evaluations, the multiplier it stands at); no closure, no optimizer."""
        state = {k: v for k, v in super().state_dict().items() if k not in self._OWN}
        state["plateau"] = self._plateau.state_dict()
        state["multiplier"] = self._shadow.param_groups[0]["lr"]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        plateau, multiplier = state.pop("plateau"), state.pop("multiplier")
        super().load_state_dict(state)
        self._plateau.load_state_dict(plateau)
        self._shadow.param_groups[0]["lr"] = multiplier


class _NoSchedule(LambdaLR):
    """The schedule of a schedule-free optimizer: leaves the LR alone."""

    def __init__(self, optimizer: Optimizer) -> None:
        super().__init__(optimizer, lambda _: 1.0)


def build_schedule(
    name: str, optimizer: Optimizer, *, total_steps: int, warmup: int = 0, **settings: Any
) -> Any:
    """Build schedule ``name`` for ``optimizer``; step it with :func:`step_schedule`.

    Args:
        name: one of :data:`SCHEDULES`.
        optimizer: the optimizer; its current LRs are the initial (peak) LRs.
        total_steps: optimizer steps the training will take (decay schedules end there).
        warmup: linear warmup steps, for every schedule that takes one.
        **settings: options of that schedule (see the module docstring); keys with a
            prefix in :data:`PASSTHROUGH_PREFIXES` are ignored.

    Returns:
        A torch ``LRScheduler``, a ``ReduceLROnPlateau``, or a ``transformers.GreedyLR``.

    Raises:
        ValueError: for an unknown name, a setting the schedule does not take, or a
            bad step count.
    """
    own = check_settings(name, settings)
    if not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps must be an int >= 1, got {total_steps!r}")
    if not isinstance(warmup, int) or not 0 <= warmup <= total_steps:
        raise ValueError(f"warmup must be an int in [0, total_steps], got {warmup!r}")
    decay_steps = max(1, total_steps - warmup)

    if name in ("schedule_free", "prodigy"):
        if not _is_own_optimizer(name, optimizer):
            package = "prodigyopt" if name == "prodigy" else "schedulefree"
            raise ValueError(
                f"schedule {name!r} needs a {package} optimizer: build it with "
                f"trial.optimizer(params) or build_optimizer(); got {type(optimizer).__name__}"
            )
        return _NoSchedule(optimizer)
    if name == "constant":
        return LambdaLR(optimizer, lambda _: 1.0)
    if name in _TRANSFORMERS_FORMULAS:
        after = _TRANSFORMERS_FORMULAS[name](optimizer, total_steps, warmup, own)
        return LambdaLR(optimizer, _warmup_then(warmup, after))
    if name == "exponential":
        if "gamma" in own:
            gamma = float(own["gamma"])
        else:
            final_ratio = float(own.get("final_ratio", 0.01))
            if not 0 < final_ratio <= 1:
                raise ValueError(f"final_ratio must be in (0, 1], got {final_ratio!r}")
            gamma = final_ratio ** (1.0 / decay_steps)
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
        return LambdaLR(optimizer, _warmup_then(warmup, lambda t: gamma**t))
    if name == "reduce_on_plateau":
        return ReduceLROnPlateau(optimizer, **own)
    if name == "reduce_on_plateau_eval":
        return HeldOutPlateau(optimizer, warmup, **own)
    if name == "transformers_greedy":
        with requires_extra("hf", "the transformers_greedy schedule"):
            from transformers import GreedyLR as HFGreedyLR

        kwargs = transformers_greedy_arguments([float(g["lr"]) for g in optimizer.param_groups])
        kwargs.update(own)
        return HFGreedyLR(optimizer, **kwargs)
    # greedy: ours; the study's warmup is a real ramp, not transformers' hold period,
    # and it knows the budget as cosine does (only its final cooldown uses it)
    return GreedyLR(optimizer, warmup=warmup, total_steps=total_steps, **own)


def transformers_greedy_arguments(initial_lrs: Sequence[float]) -> dict[str, Any]:
    """``transformers.GreedyLR``'s arguments for ``transformers_greedy`` (the paper's fork
    configuration, see above), for groups that start at ``initial_lrs``. The one home of
    that preset: the robustness study's batched rule is built from it too."""
    return {"min_lr": [0.1 * lr for lr in initial_lrs], "smooth": True, "window_size": 50,
            "patience": 10}


def _is_own_optimizer(arm: str, optimizer: Optimizer) -> bool:
    """True if ``optimizer`` is the one the optimizer-based ``arm`` stands for."""
    module = type(optimizer).__module__
    if arm == "prodigy":
        return module.startswith("prodigyopt")
    return "train_mode" in optimizer.param_groups[0] and module.startswith("schedulefree")


def is_loss_driven(scheduler: Any) -> bool:
    """True if ``scheduler.step`` takes the loss (GreedyLR, ReduceLROnPlateau, HF GreedyLR)."""
    if isinstance(scheduler, (GreedyLR, ReduceLROnPlateau)):
        return True
    cls = type(scheduler)
    return cls.__name__ == "GreedyLR" and cls.__module__.startswith("transformers")


def step_schedule(scheduler: Any, loss: float) -> None:
    """Advance ``scheduler`` by one optimizer step; loss-driven ones get ``loss``.

    Args:
        scheduler: what :func:`build_schedule` returned.
        loss: the training loss of the step just taken (a finite float).
    """
    if is_loss_driven(scheduler):
        scheduler.step(loss)
    else:
        scheduler.step()


def current_lr(optimizer: Optimizer) -> float:
    """The LR the first parameter group really uses now.

    A schedule-free optimizer keeps its warmup outside ``lr``: it logs the effective
    value in ``scheduled_lr``, which is what the study records for it.
    """
    group = optimizer.param_groups[0]
    if "scheduled_lr" in group and group.get("k", 0) > 0:
        return float(group["scheduled_lr"])
    return float(group["lr"])


def build_optimizer(
    name: str,
    params: Iterable[Any],
    *,
    lr: float,
    schedule: str = "",
    warmup: int = 0,
    **kwargs: Any,
) -> Optimizer:
    """Build optimizer ``name`` at learning rate ``lr``.

    Args:
        name: ``adamw`` (torch defaults), ``adafactor`` (``transformers.Adafactor`` with
            an external LR: ``relative_step=False, scale_parameter=False,
            warmup_init=False``), ``adagrad``, ``sgd`` (momentum 0.9), or one of
            ``WORKLOAD_OPTIMIZERS``: ``nadam``, ``rmsprop``, ``adamax``, ``radam``,
            ``adadelta``, ``asgd``, ``adam`` (torch defaults), ``sparse_adam`` (torch's
            SparseAdam, for models whose every gradient is sparse), ``muon`` (torch's
            Muon, torch 2.9 or later, for models whose every parameter is a matrix).
        params: the parameters or parameter groups.
        lr: the initial (peak) learning rate.
        schedule: the schedule under test. For ``schedule_free`` the optimizer is
            ``schedulefree.SGDScheduleFree`` for ``sgd`` and
            ``schedulefree.AdamWScheduleFree`` otherwise (schedule-free has no
            Adafactor or Adagrad variant, so AdamW is their "no schedule" peer), with
            ``warmup_steps=warmup``, already in train mode.
            For ``prodigy``: ``prodigyopt.Prodigy`` (whatever ``name``; it is Adam-based),
            whose ``lr`` multiplies the step size it estimates.
        warmup: the warmup steps (used only by the schedule-free optimizers).
        **kwargs: override the optimizer's own arguments (e.g. ``weight_decay``).

    Raises:
        ValueError: for an unknown optimizer name or a non-positive LR.
    """
    if name not in OPTIMIZERS + WORKLOAD_OPTIMIZERS:
        known = ", ".join(OPTIMIZERS + WORKLOAD_OPTIMIZERS)
        raise ValueError(f"unknown optimizer {name!r}; known: {known}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if schedule == "schedule_free":
        with requires_extra("bench", "the schedule_free schedule"):
            import schedulefree

        if name == "sgd":
            opt = schedulefree.SGDScheduleFree(
                params, lr=lr, warmup_steps=warmup, **{"momentum": 0.9, **kwargs}
            )
        else:
            if name != "adamw":
                logger.info("schedule_free: no %s variant exists; using AdamWScheduleFree", name)
            opt = schedulefree.AdamWScheduleFree(params, lr=lr, warmup_steps=warmup, **kwargs)
        opt.train()  # schedule-free optimizers refuse to step outside train mode
        return opt
    if schedule == "prodigy":
        with requires_extra("bench", "the prodigy schedule"):
            from prodigyopt import Prodigy

        return Prodigy(params, lr=lr, **kwargs)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, **kwargs)
    if name == "adafactor":
        with requires_extra("hf", "the adafactor optimizer"):
            from transformers import Adafactor

        options = {"relative_step": False, "scale_parameter": False, "warmup_init": False}
        return Adafactor(params, lr=lr, **{**options, **kwargs})
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, **kwargs)
    if name == "nadam":
        return torch.optim.NAdam(params, lr=lr, **kwargs)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, **kwargs)
    if name == "adamax":
        return torch.optim.Adamax(params, lr=lr, **kwargs)
    if name == "radam":
        return torch.optim.RAdam(params, lr=lr, **kwargs)
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, **kwargs)
    if name == "asgd":
        return torch.optim.ASGD(params, lr=lr, **kwargs)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, **kwargs)
    if name == "sparse_adam":
        return torch.optim.SparseAdam(list(params), lr=lr, **kwargs)
    if name == "muon":
        if not hasattr(torch.optim, "Muon"):
            raise RuntimeError(f"the muon optimizer needs torch 2.9 or later (torch.optim.Muon); "
                               f"this is torch {torch.__version__}")
        return torch.optim.Muon(params, lr=lr, **kwargs)
    return torch.optim.SGD(params, lr=lr, **{"momentum": 0.9, **kwargs})

"""Every schedule and optimizer the studies compare, built by name.

All schedules are built from the same three inputs: the optimizer (whose learning rate
is the initial, peak LR), the number of training steps and the warmup steps. Where a
schedule takes a warmup it gets the same linear ramp; where it does not (``constant``,
``reduce_on_plateau``, ``transformers_greedy``), it gets none, and that is part of what
is compared.

========================  ==============================================================
name                      what it is
========================  ==============================================================
``constant``              the initial LR throughout, no warmup
``constant_warmup``       linear warmup, then constant (transformers)
``linear``                linear warmup, linear decay to 0 (transformers)
``cosine``                linear warmup, cosine decay to 0 (transformers)
``cosine_restarts``       linear warmup, cosine with ``num_cycles`` (4) hard restarts
``polynomial``            linear warmup, polynomial decay (transformers' defaults:
                          ``power`` 1.0 to ``lr_end`` 1e-7)
``exponential``           linear warmup, then ``lr * gamma**t``; ``gamma`` defaults to the
                          value that ends at ``final_ratio`` (1%) of the initial LR
                          (the paper's gamma 0.95 per step collapses the LR to ~0 within
                          a few hundred steps, a straw man)
``reduce_on_plateau``     torch ``ReduceLROnPlateau`` with torch's defaults (factor 0.1,
                          patience 10, threshold 1e-4 rel), stepped with the training
                          loss of every step, as a user who swaps it in would
``transformers_greedy``   ``transformers.GreedyLR`` in the paper's configuration:
                          ``min_lr`` = 10% of each group's initial LR, ``smooth=True``,
                          ``window_size=50``, ``patience=10``, stepped with the training
                          loss of every step (the paper's fork; upstream's Trainer steps
                          it with the eval loss). Its stock ``min_lr=1e-3`` would sit
                          above typical LRs and silently disable every decrease; pass
                          ``min_lr=0.001`` in the settings to study the stock behaviour.
``greedy``                :class:`greedylr.GreedyLR` with this package's defaults plus
                          the study's warmup as a true ramp; any
                          :class:`greedylr.GreedyConfig` key in the settings (e.g.
                          ``factor`` for the F-sweep)
``schedule_free``         the "no schedule" peer: the optimizer is ``schedulefree``'s
                          (built by :func:`build_optimizer`, with its own warmup) and the
                          schedule is a no-op
========================  ==============================================================

Settings are validated: a key that the schedule does not take raises ``ValueError``,
except keys with a prefix in :data:`PASSTHROUGH_PREFIXES` (``workload_``: options of
the workload; ``optimizer_``: options of :func:`build_optimizer`; ``perturb_``:
perturbations), which are ignored here.

Example:
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
from collections.abc import Callable, Iterable
from dataclasses import asdict, fields
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from greedylr.rule import GreedyConfig
from greedylr.scheduler import GreedyLR

__all__ = [
    "LOSS_DRIVEN",
    "ON_PACKAGE_DEFAULTS",
    "OPTIMIZERS",
    "PASSTHROUGH_PREFIXES",
    "SCHEDULES",
    "build_optimizer",
    "build_schedule",
    "current_lr",
    "greedy_defaults_digest",
    "is_loss_driven",
    "step_schedule",
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
"""Every schedule name :func:`build_schedule` accepts, in the order reports list them."""

LOSS_DRIVEN: frozenset[str] = frozenset({"reduce_on_plateau", "transformers_greedy", "greedy"})
"""The schedules whose ``step`` takes the loss."""

ON_PACKAGE_DEFAULTS: frozenset[str] = frozenset({"greedy"})
"""The schedules that take every knob a trial does not set from :class:`GreedyConfig`'s
defaults, so that a stored trial of theirs is stale once those defaults change."""


def greedy_defaults_digest() -> str:
    """A short digest of :class:`GreedyConfig`'s defaults, stored with every trial."""
    blob = json.dumps(asdict(GreedyConfig()), sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:10]


OPTIMIZERS: tuple[str, ...] = ("adamw", "adafactor", "adagrad", "sgd")

PASSTHROUGH_PREFIXES: tuple[str, ...] = ("workload_", "optimizer_", "perturb_")
"""Settings with these prefixes belong to someone else and are ignored by the schedules."""

_GREEDY_KEYS = frozenset(f.name for f in fields(GreedyConfig)) - {"warmup"}
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
    "transformers_greedy": _HF_GREEDY_KEYS - {"warmup"},
    "greedy": _GREEDY_KEYS,
    "schedule_free": frozenset(),
}


def _check_settings(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings meant for schedule ``name``; raise on any it does not take."""
    if name not in _ALLOWED:
        raise ValueError(f"unknown schedule {name!r}; known: {', '.join(SCHEDULES)}")
    own = {k: v for k, v in settings.items() if not k.startswith(PASSTHROUGH_PREFIXES)}
    unknown = sorted(set(own) - _ALLOWED[name])
    if unknown:
        allowed = ", ".join(sorted(_ALLOWED[name])) or "none"
        raise ValueError(
            f"schedule {name!r} does not take setting(s) {unknown}; it takes: {allowed} "
            f"(prefix a key with one of {PASSTHROUGH_PREFIXES} to pass it elsewhere)"
        )
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
    own = _check_settings(name, settings)
    if not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps must be an int >= 1, got {total_steps!r}")
    if not isinstance(warmup, int) or not 0 <= warmup <= total_steps:
        raise ValueError(f"warmup must be an int in [0, total_steps], got {warmup!r}")
    decay_steps = max(1, total_steps - warmup)

    if name == "schedule_free":
        if not _is_schedule_free(optimizer):
            raise ValueError(
                "schedule 'schedule_free' needs a schedulefree optimizer: build it with "
                f"trial.optimizer(params) or build_optimizer(); got {type(optimizer).__name__}"
            )
        return _NoSchedule(optimizer)
    if name == "constant":
        return LambdaLR(optimizer, lambda _: 1.0)
    if name in ("constant_warmup", "linear", "cosine", "cosine_restarts", "polynomial"):
        from transformers import get_scheduler

        hf_name = {
            "constant_warmup": "constant_with_warmup",
            "cosine_restarts": "cosine_with_restarts",
        }.get(name, name)
        specific: dict[str, Any] = {}
        if name == "cosine_restarts":
            specific["num_cycles"] = int(own.get("num_cycles", 4))
        elif name == "polynomial":
            specific = {k: own[k] for k in ("power", "lr_end") if k in own}
        return get_scheduler(
            hf_name,
            optimizer,
            num_warmup_steps=warmup,
            num_training_steps=total_steps,
            scheduler_specific_kwargs=specific or None,
        )
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
    if name == "transformers_greedy":
        from transformers import GreedyLR as HFGreedyLR

        initial = [float(g["lr"]) for g in optimizer.param_groups]
        kwargs: dict[str, Any] = {
            "min_lr": [0.1 * lr for lr in initial],
            "smooth": True,
            "window_size": 50,
            "patience": 10,
        }
        kwargs.update(own)
        return HFGreedyLR(optimizer, **kwargs)
    # greedy: ours; the study's warmup is a real ramp, not transformers' hold period,
    # and it knows the budget as cosine does (only its final cooldown uses it)
    return GreedyLR(optimizer, warmup=warmup, **{"total_steps": total_steps, **own})


def _is_schedule_free(optimizer: Optimizer) -> bool:
    return "train_mode" in optimizer.param_groups[0] and type(optimizer).__module__.startswith(
        "schedulefree"
    )


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
            warmup_init=False``), ``adagrad``, or ``sgd`` (momentum 0.9).
        params: the parameters or parameter groups.
        lr: the initial (peak) learning rate.
        schedule: the schedule under test. For ``schedule_free`` the optimizer is
            ``schedulefree.SGDScheduleFree`` for ``sgd`` and
            ``schedulefree.AdamWScheduleFree`` otherwise (schedule-free has no
            Adafactor or Adagrad variant, so AdamW is their "no schedule" peer), with
            ``warmup_steps=warmup``, already in train mode.
        warmup: the warmup steps (used only by the schedule-free optimizers).
        **kwargs: override the optimizer's own arguments (e.g. ``weight_decay``).

    Raises:
        ValueError: for an unknown optimizer name or a non-positive LR.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if schedule == "schedule_free":
        import schedulefree

        if name == "sgd":
            opt: Optimizer = schedulefree.SGDScheduleFree(
                params, lr=lr, warmup_steps=warmup, **{"momentum": 0.9, **kwargs}
            )
        else:
            if name != "adamw":
                logger.info("schedule_free: no %s variant exists; using AdamWScheduleFree", name)
            opt = schedulefree.AdamWScheduleFree(params, lr=lr, warmup_steps=warmup, **kwargs)
        opt.train()  # schedule-free optimizers refuse to step outside train mode
        return opt
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, **kwargs)
    if name == "adafactor":
        from transformers import Adafactor

        options = {"relative_step": False, "scale_parameter": False, "warmup_init": False}
        return Adafactor(params, lr=lr, **{**options, **kwargs})
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, **kwargs)
    return torch.optim.SGD(params, lr=lr, **{"momentum": 0.9, **kwargs})

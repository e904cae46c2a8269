"""The schedules the robustness study compares, as per-run learning rates of a batch.

Each schedule is defined once, by :func:`greedylr.studies.schedules.build_schedule`; this
module reproduces it over R runs at once (tested against the schedule objects): closed
forms for the fixed schedules, :mod:`greedylr.tensor_rule` (the rule as branch-free
tensor ops) for the loss-driven ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from greedylr import tensor_rule
from greedylr.rule import GreedyConfig
from greedylr.scheduler import GreedyLR
from greedylr.studies.schedules import transformers_greedy_arguments

__all__ = ["SCHEDULES", "BatchedSchedules", "schedule_settings"]

SCHEDULES: tuple[str, ...] = (
    "greedy",
    "greedy_p1",
    "cosine",
    "cosine_restarts",
    "exponential",
    "constant",
    "reduce_on_plateau",
    "transformers_greedy",
)
"""The compared schedules. ``greedy_p1`` is GreedyLR with patience 1, as in the paper's
design (which ran GreedyLR at patience 1 and 10)."""

_LOSS_DRIVEN = ("greedy", "greedy_p1", "reduce_on_plateau", "transformers_greedy")

_PLATEAU = GreedyConfig(
    factor=0.1, patience=10, increase_patience=2**62, threshold=1e-4,
    threshold_mode="rel_product", smoothing="none", min_lr_ratio=None, max_lr_ratio=None,
    eps=1e-8, compare="best",
)
"""torch's ``ReduceLROnPlateau`` with its defaults, as the rule: never increases, no
smoothing, relative threshold 1e-4, no lower bound, eps 1e-8."""


def schedule_settings(name: str) -> tuple[str, dict[str, Any]]:
    """The :func:`greedylr.studies.schedules.build_schedule` name and settings of ``name``.

    These define each schedule; the batched engine must reproduce them (tested).
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; known: {', '.join(SCHEDULES)}")
    if name == "greedy_p1":
        return "greedy", {"patience": 1}
    return name, {}


def _rule_config(name: str, base_lr: float, steps: int) -> GreedyConfig:
    """The :class:`GreedyConfig` that a loss-driven schedule steps over ``steps`` steps,
    built the way a user builds the scheduler (GreedyLR told the budget, as
    :func:`greedylr.studies.schedules.build_schedule` tells it), so that the batched
    engine cannot drift from it."""
    if name == "reduce_on_plateau":
        return _PLATEAU
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    if name == "transformers_greedy":  # our exact port of transformers.GreedyLR
        return GreedyLR.from_transformers(opt, **transformers_greedy_arguments([base_lr])).config
    _, settings = schedule_settings(name)
    return GreedyLR(opt, total_steps=steps, **settings).config


def _closed_form(name: str, steps: int) -> Tensor:
    """The LR multiplier of a fixed schedule at every step ``[T]`` (float64).

    The same formulas as schedules.py's (transformers' cosine and cosine with 4 hard
    restarts, exponential to 1% of the initial LR, constant), as closed forms.
    """
    t = torch.arange(steps, dtype=torch.float64)
    progress = t / max(1, steps)
    if name == "constant":
        return torch.ones(steps, dtype=torch.float64)
    if name == "cosine":
        return (0.5 * (1.0 + torch.cos(math.pi * progress))).clamp(min=0.0)
    if name == "cosine_restarts":
        return 0.5 * (1.0 + torch.cos(math.pi * ((4.0 * progress) % 1.0)))
    if name == "exponential":
        gamma = 0.01 ** (1.0 / max(1, steps))
        return torch.tensor([gamma**i for i in range(steps)], dtype=torch.float64)
    raise ValueError(f"{name!r} is not a fixed schedule")


class BatchedSchedules:
    """Per-run learning rates of R runs whose schedules may all differ.

    Fixed schedules read a precomputed table; loss-driven ones keep one
    :mod:`greedylr.tensor_rule` state per schedule (the rule's shared knobs, e.g.
    smoothing, differ between schedules) over the runs that use it, in float64 so that
    every decision is the float rule's.
    """

    def __init__(self, names: Sequence[str], steps: int, base_lr: float) -> None:
        self.steps = steps
        self.lr = torch.full((len(names),), base_lr, dtype=torch.float64)
        index: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            index.setdefault(name, []).append(i)
        self.fixed: list[tuple[Tensor, Tensor]] = []
        self.driven: list[tuple[Tensor, GreedyConfig, tensor_rule.TensorState]] = []
        for name, rows in index.items():
            rows_t = torch.tensor(rows)
            if name in _LOSS_DRIVEN:
                cfg = _rule_config(name, base_lr, steps)
                state = tensor_rule.init(cfg, torch.full((len(rows), 1), base_lr,
                                                         dtype=torch.float64))
                self.driven.append((rows_t, cfg, state))
                self.lr[rows_t] = state.lrs[:, 0]
            else:
                self.fixed.append((rows_t, base_lr * _closed_form(name, steps)))
                self.lr[rows_t] = base_lr * _closed_form(name, steps)[0]

    def step(self, step: int, loss: Tensor) -> Tensor:
        """Observe the loss of ``step`` (``[R]``); return the LRs of step + 1 (``[R]``)."""
        nxt = min(step + 1, self.steps - 1)
        for rows, table in self.fixed:
            self.lr[rows] = table[nxt]
        for k, (rows, cfg, state) in enumerate(self.driven):
            state, decision = tensor_rule.update(cfg, state, loss[rows].double())
            self.driven[k] = (rows, cfg, state)
            self.lr[rows] = decision.lrs[:, 0]
        return self.lr

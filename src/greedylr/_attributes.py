"""What the parts of GreedyLR in other modules read of it, declared once for the type
checker; GreedyLR's constructor (and torch's ``LRScheduler``) sets them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim import Optimizer

from greedylr.rule import GreedyConfig
from greedylr.trace import Trace

__all__ = ["SchedulerAttributes"]


class SchedulerAttributes:
    """The base of GreedyLR's mixins: annotations only, no behaviour."""

    config: GreedyConfig
    optimizer: Optimizer
    trace: Trace | None
    last_epoch: int
    _step_count: int
    _last_lr: list[Any]
    _next_lrs: Sequence[Any]
    _pending_sum: float | torch.Tensor
    _pending_count: int
    _steps_seen: int
    _compile_rule: bool | str
    _device: torch.device | None
    _step_rule: Any
    # device mode's loss averaged across ranks, beside float mode's (scheduler.py)
    _agreed_on_device: Callable[[Any], torch.Tensor]

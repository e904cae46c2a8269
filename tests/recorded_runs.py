"""A trace recorded by a real GreedyLR, for the tests of what reads traces."""

from __future__ import annotations

from collections.abc import Iterable

import torch

import greedylr


def scheduler_run(values: Iterable[float], *, add_group_at: int | None = None,
                  **config: object) -> greedylr.Trace:
    """A real GreedyLR (SGD on a dummy parameter) fed ``values``; with ``add_group_at``,
    a second parameter group (lr 0.01) is added before that step (counted from 0)."""
    first, second = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([first], lr=0.1)
    scheduler = greedylr.GreedyLR(optimizer, **config)
    for i, value in enumerate(values):
        if i == add_group_at:
            optimizer.add_param_group({"params": [second], "lr": 0.01})
        optimizer.step()
        scheduler.step(float(value))
    assert scheduler.trace is not None
    return scheduler.trace

"""Round 11 pilot, descriptive: the hypergradient's sign as the rule's comparison (not in
the package).

Rounds 8 and 10 found that the direction of the training loss cannot tell a too-small LR
from a well-tuned one: early in a run the loss improves quickly at both. Round 8 named the
candidate signal: the alignment of the new gradient with the last update (hypergradient
descent, Baydin et al. 2018, arXiv 1703.04782). For a step ``theta_t = theta_{t-1} + u_t``,
the derivative of the loss at ``theta_{t-1}`` with respect to the LR that made ``u_{t-1}`` is
``g_t . u_{t-1} / lr``: negative (a larger LR would have lowered the loss) while the LR is too
small, positive when the last step overshot, and, in the noise-dominated phase of SGD at a
constant LR, positive on average by about ``lr * tr(H Sigma)`` (the step's noise climbs the
curvature): the signal anneals with no budget. Its known risk is short-horizon bias (Wu et
al. 2018, arXiv 1803.02021): the one-step greedy LR decays too early.

Here the scheduler's step reads every parameter's gradient (the step's, before
``zero_grad``) and keeps two copies of the parameters (the last ones and the last update):
``a_t = -cos(g_t, u_{t-1})``, smoothed by an EMA of the loss smoother's span. Two variants:

- ``sign``: an observation counts as "better" when the smoothed alignment is positive, the
  loss is not compared at all;
- ``gated``: "better" needs the smoothed loss better than the reference (as now) *and* a
  positive alignment; a negative one counts as "not better", so it both blocks a climb and
  drives a decrease after ``patience``;
- ``drift`` (designed after ``sign`` lost on the tuning and probe splits and on a 3x
  budget, the one-step signal's short-horizon bias): ``sign`` with the last update
  replaced by the parameters' distance from their own EMA (span ``window``), a horizon of
  tens of steps. A steady descent moves the parameters away from their average along the
  descent, against the gradient (raise); an oscillation or the noise floor leaves them
  around it, the gradient pointing back (lower); over a longer horizon the drift grows
  and the oscillation does not.

The rest is the 0.2 defaults (final cooldown from 80% of the budget), without the held-out
rule (``eval_patience=None``, as rounds 8-10). Marked by ``eps`` (the default is 0):

    python results/defaults/round11/hypergradient.py VARIANT {heldout,grid} OUT SPLIT [STORED]
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes

from greedylr import rule, scheduler

MARKS = {"sign": 2e-299, "gated": 3e-299, "drift": 4e-299}
_step = scheduler.GreedyLR.step
_is_better = rule._is_better
_alignment = {"value": 0.0}  # the smoothed alignment of the step being decided


def _observe(sched: Any) -> None:
    """Update the scheduler's smoothed alignment from the gradients of the step just taken:
    ``-cos(g_t, d)``, ``d`` the last update (``sign``, ``gated``) or the last parameters'
    distance from their EMA of the smoother's span (``drift``)."""
    params = [p for group in sched.optimizer.param_groups for p in group["params"]
              if p.grad is not None]
    beta = 1.0 - 2.0 / (sched.config.window + 1)
    drift = sched.config.eps == MARKS["drift"]
    with torch.no_grad():
        now = [p.detach().clone() for p in params]
        last, direction = getattr(sched, "_h_last", None), getattr(sched, "_h_direction", None)
        if direction is not None:
            dot = sum(float((p.grad * u).sum()) for p, u in zip(params, direction))
            norms = (math.sqrt(sum(float(p.grad.square().sum()) for p in params))
                     * math.sqrt(sum(float(u.square().sum()) for u in direction)))
            if norms > 0:
                sched._h_ema = beta * getattr(sched, "_h_ema", 0.0) + (1 - beta) * -dot / norms
                sched._h_count = getattr(sched, "_h_count", 0) + 1
                _alignment["value"] = sched._h_ema / (1.0 - beta**sched._h_count)
        if drift:  # the EMA of the parameters, started at the first ones
            mean = getattr(sched, "_h_mean", None)
            mean = now if mean is None else [beta * m + (1 - beta) * x for m, x in zip(mean, now)]
            sched._h_mean = mean
            sched._h_direction = [x - m for x, m in zip(now, mean)]
        else:
            sched._h_direction = None if last is None else [a - b for a, b in zip(now, last)]
        sched._h_last = now


def _patched_step(self: Any, loss: Any = None) -> None:
    if self.config.eps in MARKS.values() and not self._constructing:
        _observe(self)
    _step(self, loss)


def _patched_is_better(config: Any, value: float, reference: float) -> bool:
    if config.eps in (MARKS["sign"], MARKS["drift"]):
        return _alignment["value"] > 0.0
    if config.eps == MARKS["gated"]:
        return _alignment["value"] > 0.0 and _is_better(config, value, reference)
    return _is_better(config, value, reference)


def _patch() -> None:
    scheduler.GreedyLR.step = _patched_step
    rule._is_better = _patched_is_better


if __name__ == "__main__":
    variant = sys.argv[1]
    prototypes.main(sys.argv[2:], {"eps": MARKS[variant], "eval_patience": None}, _patch,
                    f"hypergradient_{variant}")

"""Round 19 pilot, descriptive: can a deliberate LR change tell a too-large LR apart?

Round 18 found no loss-only signal a rule could read passively that separates an LR
above the best-tuned cosine's from the rest (the best, the loss's relative noise, pooled
AUC 0.71), and named the one lever no round had tried: probe the loss's response to a
deliberate change of the LR. This pilot makes the probe and measures what it shows. The
rule is the package's (0.7); at observation ``start`` (30% of the budget) the LRs it
applies are multiplied by ``scale`` for ``length`` observations, then the rule's own LRs
return (its state never sees the probe, only the losses it causes).

Two arms, each marked by ``eps`` (the default is 0): ``down`` (x0.5, the question of the
grid's top: does a too-large LR show a larger immediate drop?) and ``up`` (x2, the
question of its bottom: does a too-small LR fall faster when raised?).
``round19/probe_signal.py`` scores the probes against the unprobed runs.

    python results/defaults/round19/lr_probe.py {down,up} grid OUT SPLIT STORED
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

import prototypes

from greedylr import rule, scheduler

ARMS = {"down": (7e-299, 0.5), "up": (8e-299, 2.0)}
START, LENGTH = 0.3, 25
_update = rule.update


def _probe_window(config: Any) -> range:
    start = round(START * config.total_steps)
    return range(start, start + LENGTH)


def _patched_update(config: Any, state: Any, loss: float) -> rule.Decision:
    decision = _update(config, state, loss)
    scale = {mark: s for mark, s in ARMS.values()}.get(config.eps)
    # the decision at observation k sets the LRs of the steps that follow it
    if scale is None or config.total_steps is None or state.step not in _probe_window(config):
        return decision
    return rule.Decision(tuple(lr * scale for lr in decision.lrs), decision.smoothed,
                         decision.events)


def _patch() -> None:
    scheduler.update = _patched_update  # type: ignore[attr-defined]


if __name__ == "__main__":
    arm = sys.argv[1]
    prototypes.main(sys.argv[2:], {"eps": ARMS[arm][0]}, _patch, f"probe{arm}")

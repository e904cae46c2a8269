"""The batched engine: all the runs of one model family trained at once, as one model.

The weights of every run (every schedule x perturbation x seed) sit in one flat ``[R, P]``
buffer; one ``backward`` of the summed per-run losses gives each run its own gradient
(the runs share no weight), and Adam steps them all with per-run learning rates.
:func:`train_one` is the reference "one run at a time" path that the engine must
reproduce (tested) and whose speed the study compares with. With ``average=gamma`` both
score a :func:`greedylr.averaging.power_ema` average of each run's weights (the probe and
the final held-out metrics) instead of the weights themselves; training is unchanged.

Examples:
    >>> from greedylr.evidence.perturb import Perturbation
    >>> specs = [RunSpec("greedy", Perturbation("random_spike", 0.5), seed=0),
    ...          RunSpec("cosine", Perturbation("random_spike", 0.5), seed=0)]
    >>> result = train_family("quadratic", specs, steps=50)
    >>> result.final_loss.shape
    torch.Size([2])
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from greedylr.averaging import power_ema
from greedylr.evidence.robustness.optim import BatchedAdam, FlatLayout
from greedylr.evidence.robustness.presets import BatchedSchedules, schedule_settings
from greedylr.evidence.robustness.task import PROBE_EVERY, FamilyTask, RunSpec
from greedylr.studies.schedules import build_schedule, step_schedule

__all__ = ["BASE_LR", "FamilyResult", "train_family", "train_one"]

BASE_LR = 0.01
"""Adam's initial LR for every run, as in the paper's robustness experiment."""


@dataclass
class FamilyResult:
    """Everything recorded for the R runs of one family.

    Attributes:
        specs: the runs, in order.
        observed: ``[R, T]`` the training loss handed to the scheduler at every step.
        probe: ``[R, T]`` the loss on a fixed held-out probe set after every
            :data:`PROBE_EVERY`-th step and the last (NaN between), on the distribution
            the run currently trains on (the clean objective for an analytic function).
        lr: ``[R, T]`` the learning rate used at every step.
        corrupt: ``[R, T]`` steps that trained on a corrupted batch.
        final_loss: ``[R]`` held-out loss after the last step (the whole held-out split;
            the clean objective for an analytic function).
            (``probe``, ``final_loss`` and ``final_accuracy`` are of the average of the
            weights when the run was trained with ``average``.)
        final_accuracy: ``[R]`` held-out accuracy (NaN for an analytic function).
        shift_at: the step of a shard shift (for the runs that have one).
        seconds: wall time of the whole batch.
    """

    family: str
    specs: list[RunSpec]
    observed: Tensor
    probe: Tensor
    lr: Tensor
    corrupt: Tensor
    final_loss: Tensor
    final_accuracy: Tensor
    shift_at: int
    seconds: float = 0.0


def train_family(family: str, specs: Sequence[RunSpec], *, steps: int = 200,
                 base_lr: float = BASE_LR, average: float | None = None) -> FamilyResult:
    """Train every run of ``specs`` on model family ``family``, all at once.

    Args:
        family: one of :data:`~greedylr.evidence.robustness.task.FAMILIES`.
        specs: the runs; runs with the same seed share initial weights, batches and
            perturbation draws.
        steps: optimizer steps per run.
        base_lr: Adam's initial learning rate.
        average: score a power-function EMA of the weights with this gamma (the
            default, ``None``: the weights themselves).

    Returns:
        The per-step records and final held-out metrics of every run.
    """
    # Adam's second moments and the gradients of saturated units underflow into
    # subnormal floats, which the CPU handles ~100x slower: flushing them to zero made
    # the whole study 3x faster and changes no result beyond float noise.
    flush = torch.set_flush_denormal(True)
    try:
        return _train_family(family, specs, steps, base_lr, average)
    finally:
        if flush:
            torch.set_flush_denormal(False)


class _Scored:
    """The weights a run is scored on: its own, or a power-function EMA of them updated
    after every optimizer step (``torch.optim.swa_utils.AveragedModel``'s count: the
    first update copies)."""

    def __init__(self, average: float | None) -> None:
        self._avg_fn = None if average is None else power_ema(average)
        self._averaged: dict[str, Tensor] = {}
        self._count = 0

    def update(self, weights: dict[str, Tensor]) -> dict[str, Tensor]:
        """After an optimizer step: the weights to score now."""
        if self._avg_fn is None:
            return weights
        if not self._count:
            self._averaged = {k: v.detach().clone() for k, v in weights.items()}
        else:
            self._averaged = {k: self._avg_fn(self._averaged[k], v.detach(), self._count)
                              for k, v in weights.items()}
        self._count += 1
        return self._averaged


def _train_family(family: str, specs: Sequence[RunSpec], steps: int,
                  base_lr: float, average: float | None) -> FamilyResult:
    """:func:`train_family`'s loop: one batched forward, backward and Adam step a step."""
    start = time.perf_counter()
    specs = list(specs)
    r = len(specs)
    task = FamilyTask(family, specs, steps)
    initial = task.init_params()
    layout = FlatLayout(initial)
    flat = layout.pack(initial).requires_grad_()
    adam = BatchedAdam(flat)
    schedules = BatchedSchedules([s.schedule for s in specs], steps, base_lr)
    observed = torch.empty(r, steps)
    probe = torch.full((r, steps), math.nan)
    lrs = torch.empty(r, steps)
    corrupt_log = torch.zeros(r, steps, dtype=torch.bool)
    last = torch.full((r,), math.inf)
    best_before = torch.full((r,), math.inf)
    best = torch.full((r,), math.inf)
    scored = _Scored(average)
    params = layout.views(flat.detach())
    for step in range(steps):
        corrupt = task.perturber.corrupt_mask(step, last, best_before)
        loss = task.train_loss(step, layout.views(flat), corrupt)
        loss.sum().backward()  # runs share no weight: each gets its own gradient
        lr = schedules.lr.clone()
        adam.step(lr)
        params = scored.update(layout.views(flat.detach()))
        loss = loss.detach()
        observed[:, step] = loss
        lrs[:, step] = lr.float()
        corrupt_log[:, step] = corrupt
        if step % PROBE_EVERY == PROBE_EVERY - 1 or step == steps - 1:
            probe[:, step] = task.probe_loss(step, params)
        best_before = best
        best = torch.minimum(best, loss)
        last = loss
        schedules.step(step, loss)
    final_loss, final_acc = task.final(params)
    return FamilyResult(
        family, specs, observed, probe, lrs, corrupt_log, final_loss, final_acc,
        task.perturber.shift_at, time.perf_counter() - start,
    )


def train_one(family: str, spec: RunSpec, *, steps: int = 200,
              base_lr: float = BASE_LR, average: float | None = None) -> FamilyResult:
    """The reference path: one run, ``torch.optim.Adam`` and the schedule built by
    :func:`greedylr.studies.schedules.build_schedule`, stepped as a user would.

    Used to check the batched engine (same results within float tolerance) and to
    measure its speed-up.
    """
    start = time.perf_counter()
    task = FamilyTask(family, [spec], steps)
    params = {k: v.requires_grad_() for k, v in task.init_params().items()}
    opt = torch.optim.Adam(list(params.values()), lr=base_lr, foreach=False)
    name, settings = schedule_settings(spec.schedule)
    sched = build_schedule(name, opt, total_steps=steps, **settings)
    observed = torch.empty(1, steps)
    probe = torch.full((1, steps), math.nan)
    lrs = torch.empty(1, steps)
    corrupt_log = torch.zeros(1, steps, dtype=torch.bool)
    last = best_before = best = math.inf
    scored = _Scored(average)
    weights = params
    for step in range(steps):
        corrupt = task.perturber.corrupt_mask(
            step, torch.tensor([last]), torch.tensor([best_before])
        )
        loss = task.train_loss(step, params, corrupt)
        opt.zero_grad()
        loss.sum().backward()
        lrs[0, step] = opt.param_groups[0]["lr"]
        opt.step()
        weights = scored.update(params)
        value = float(loss.detach())
        observed[0, step] = value
        corrupt_log[0, step] = corrupt
        if step % PROBE_EVERY == PROBE_EVERY - 1 or step == steps - 1:
            probe[0, step] = task.probe_loss(step, weights)
        best_before, best, last = best, min(best, value), value
        step_schedule(sched, value)
    final_loss, final_acc = task.final(weights)
    return FamilyResult(
        family, [spec], observed, probe, lrs, corrupt_log, final_loss, final_acc,
        task.perturber.shift_at, time.perf_counter() - start,
    )

"""A running average of the weights to evaluate a GreedyLR run on: the power-function EMA.

GreedyLR stands at a higher LR than a decaying schedule for most of a run: the training
loss falls sooner, but the weights at any one step are noisier, and a snapshot taken
mid-run scores worse on held-out data. An average of the recent weights removes much of
that noise without lowering the LR (Sandler et al. 2023, arXiv 2306.08590; Hägele et al.
2024, arXiv 2405.18392). The defaults study (``results/defaults/DECISION.md``) measured it:
on two splits (round 5) GreedyLR 0.2's best held-out value by mid-run was as good as
cosine's on every workload; pooled over 49 workloads (round 26), 0.8's is behind cosine's on
8 instead of 12 on plain weights: it narrows the mid-run gap without closing it.

The average is the power-function EMA of Karras et al. 2024 (EDM2, arXiv 2312.02696): it
always covers the same *fraction* of the run so far, so it needs no step budget and no
decay fitted to the run's length. It plugs into torch's own
:class:`torch.optim.swa_utils.AveragedModel` (and so into Lightning's ``WeightAveraging``
callback, which takes the same ``avg_fn``)::

    averaged = greedylr.averaged_model(model)       # after building the model
    ...
    optimizer.step(); scheduler.step(loss)
    averaged.update_parameters(model)               # after every optimizer step
    ...
    scheduler.observe_eval(validation_loss(averaged.module))   # evaluate the average

:func:`power_ema` itself computes on the weights' device with no host read; torch's
``AveragedModel.update_parameters`` reads its update count once per call.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

__all__ = ["DEFAULT_GAMMA", "averaged_model", "power_ema"]

#: EDM2's relative width 0.10: the average covers about the last 10% of the run so far.
DEFAULT_GAMMA = 7.0

AvgFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | int"], torch.Tensor]


def power_ema(gamma: float = DEFAULT_GAMMA) -> AvgFn:
    """The power-function EMA as an ``avg_fn`` of :class:`~torch.optim.swa_utils.AveragedModel`.

    At the t-th update the average moves towards the weights by ``1 - (1 - 1/t)**(gamma
    + 1)`` (``gamma=0``: the plain mean of every step, SWA): step tau's weight in the
    average is close to proportional to ``tau**gamma``, a profile whose relative width
    is ``sqrt((gamma + 1) / ((gamma + 2)**2 * (gamma + 3)))`` of the run so far (0.10
    at the default 7).

    Raises:
        ValueError: ``gamma`` is not a finite number >= 0.
    """
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not (
        math.isfinite(gamma) and gamma >= 0
    ):
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")
    exponent = float(gamma) + 1.0

    def average(averaged: torch.Tensor, current: torch.Tensor,
                n_averaged: torch.Tensor | int) -> torch.Tensor:
        if not averaged.is_floating_point():  # a count (BatchNorm's num_batches_tracked)
            return current.clone()
        # 1 - (1 - 1/(n+1))**exponent as -expm1(exponent * log1p(-1/(n+1))): accurate
        # however long the run (n/(n+1) in float32 was 19% off at 1e7 updates, and 0
        # from 2**25), in float64 for float64 weights, else float32
        count = torch.as_tensor(n_averaged, device=averaged.device,
                                dtype=torch.promote_types(averaged.dtype, torch.float32))
        step = -torch.expm1(exponent * torch.log1p(-1.0 / (count + 1.0)))
        return averaged + (current - averaged) * step.to(averaged.dtype)

    return average


def averaged_model(model: nn.Module, gamma: float = DEFAULT_GAMMA) -> AveragedModel:
    """A :func:`power_ema` average of ``model``'s weights and buffers (BatchNorm's
    running statistics are averaged too, as Lightning's ``WeightAveraging`` does; an
    integer buffer, a count, is copied), on the model's device, in the model's dtypes.
    Call ``update_parameters(model)`` after every optimizer step and evaluate
    ``.module``. A bfloat16 or float16 average stops following the model once each
    update is below half its precision (after a few hundred updates): there, keep the
    average in float32 with ``averaged.module.float()`` (the updates then average in
    float32; evaluate on inputs of that dtype).

    Under FSDP, build the average *before* sharding and shard ``.module`` with the same
    calls as the model (``fully_shard`` on the same layers): each rank then averages its
    own shard, and ``.module`` evaluates like the model (tested with FSDP2 on a 2-rank
    gloo group).

    A data-parallel wrapper (``DistributedDataParallel``, ``nn.DataParallel``) is
    unwrapped: the average holds a copy of its ``.module``, so evaluating it is no
    collective (a copied DDP would broadcast its buffers at every forward, a call the other
    ranks never join) and its ``state_dict`` has the module's keys. Pass the wrapper or its
    module to ``update_parameters``: their parameters are the same tensors.

    Raises:
        ValueError: ``model`` is sharded by FSDP already (a sharded module cannot be
            copied), or ``gamma`` is invalid (see :func:`power_ema`).
    """
    avg_fn = power_ema(gamma)
    if _fsdp_sharded(model):
        raise ValueError(
            "model is sharded by FSDP, which cannot be copied: build the average before "
            "sharding (averaged = greedylr.averaged_model(model)), then shard "
            "averaged.module with the same fully_shard calls as model"
        )
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return AveragedModel(model, avg_fn=avg_fn, use_buffers=True)


def _fsdp_sharded(model: nn.Module) -> bool:
    """Whether an FSDP wrapper (``FullyShardedDataParallel``) or an FSDP2 module
    (``fully_shard``) is part of ``model``."""
    if not torch.distributed.is_available():
        return False
    from torch.distributed import fsdp

    kinds = tuple(k for k in (getattr(fsdp, "FSDPModule", None),
                              getattr(fsdp, "FullyShardedDataParallel", None)) if k is not None)
    return bool(kinds) and any(isinstance(m, kinds) for m in model.modules())

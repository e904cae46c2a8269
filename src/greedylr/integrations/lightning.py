"""GreedyLR in PyTorch Lightning, fed the training loss of every optimizer step.

Return GreedyLR as an ordinary step-interval scheduler and add the callback::

    from greedylr import GreedyLR
    from greedylr.integrations.lightning import GreedyLRCallback

    class Model(L.LightningModule):
        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
            return {"optimizer": opt,
                    "lr_scheduler": {"scheduler": GreedyLR(opt), "interval": "step"}}

    trainer = L.Trainer(callbacks=[GreedyLRCallback()], accumulate_grad_batches=4)

Why a callback rather than ``reduce_on_plateau=True`` with a ``monitor``: Lightning's
plateau path steps the scheduler with the *monitored* value, which under gradient
accumulation is the last micro-batch's loss, and is rank-local unless every ``self.log``
call says ``sync_dist=True``; it also runs after ``on_train_batch_end``, where
checkpoints are written, so a checkpoint holds the state of one step before
(Lightning PR #7877). The callback instead:

* adds up, in ``on_before_backward``, the loss of every micro-batch exactly as Lightning
  back-propagates it (already divided by ``accumulate_grad_batches``; an AMP
  ``GradScaler``'s scale is divided out), and in ``on_before_optimizer_step`` hands the
  mean over the micro-batches of that optimizer step to :meth:`GreedyLR.observe`;
* lets Lightning step the scheduler as any step-interval scheduler (``step()`` with no
  argument, once per optimizer step, before ``on_train_batch_end``, so checkpoints
  hold the state after the step), on every rank: ``GreedyLR`` averages the loss across
  ranks itself (``sync_ranks``), so ranks agree without ``sync_dist=True`` and there is
  no collective in rank-gated code;
* logs ``greedylr/lr`` (the LR decided for the next step) and the smoothed loss with
  ``LightningModule.log``, so every Lightning logger receives them; in device mode as
  device tensors, which Lightning reads only when its loggers write: no host read per
  step (``tests/integrations/test_lightning.py``);
* keeps a mid-accumulation partial sum in its checkpoint state.

With ``"interval": "epoch"`` (or a ``frequency`` above 1) the scheduler decides less often,
on the mean of the per-optimizer-step losses since its last decision.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from greedylr._extras import requires_extra
from greedylr.scheduler import GreedyLR

with requires_extra("lightning", "greedylr.integrations.lightning"):
    import lightning.pytorch as pl
    from lightning.pytorch.utilities.exceptions import MisconfigurationException

__all__ = ["GreedyLRCallback"]

logger = logging.getLogger("greedylr")


class GreedyLRCallback(pl.Callback):
    """Feeds every :class:`~greedylr.GreedyLR` of the LightningModule its training loss.

    Args:
        log: log ``greedylr/lr`` (group 0; ``greedylr/lr_group{i}`` for the others) and
            ``greedylr/smoothed_loss`` after each optimizer step, through
            ``LightningModule.log``.
        monitor: the validation metric given to :meth:`~greedylr.GreedyLR.observe_eval`
            after each validation run, when it is logged (``None``: none). Each GreedyLR
            built without ``total_steps`` gets ``trainer.estimated_stepping_batches``
            at fit start (used only by a final cooldown).

    Raises:
        MisconfigurationException: at fit start, if ``configure_optimizers`` returned no
            GreedyLR, or returned one with ``reduce_on_plateau=True`` (Lightning would
            then step it with the monitored value and drop the observed loss).
    """

    def __init__(self, *, log: bool = True, monitor: str | None = "val_loss") -> None:
        self._log = log
        self.monitor = monitor
        self._loss_sum: torch.Tensor | None = None
        self._count = 0
        self._stepped = False

    # -- which schedulers -------------------------------------------------------

    @staticmethod
    def _schedulers(trainer: pl.Trainer) -> list[GreedyLR]:
        return [
            c.scheduler for c in trainer.lr_scheduler_configs if isinstance(c.scheduler, GreedyLR)
        ]

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        configs = [c for c in trainer.lr_scheduler_configs if isinstance(c.scheduler, GreedyLR)]
        if not configs:
            raise MisconfigurationException(
                "GreedyLRCallback: configure_optimizers returned no greedylr.GreedyLR; return "
                '{"optimizer": opt, "lr_scheduler": '
                '{"scheduler": GreedyLR(opt), "interval": "step"}}'
            )
        for config in configs:
            if config.reduce_on_plateau:
                raise MisconfigurationException(
                    "GreedyLRCallback feeds GreedyLR the training loss; with "
                    "reduce_on_plateau=True Lightning would step it with the monitored value "
                    "instead. Remove reduce_on_plateau and monitor (or remove the callback to "
                    "decide on the metric)."
                )
            if config.interval != "step" or config.frequency != 1:
                logger.info(
                    "GreedyLR steps every %s %s(s): each decision is on the mean training loss "
                    "of the optimizer steps since the previous one",
                    config.frequency,
                    config.interval,
                )
        self._loss_sum, self._count, self._stepped = None, 0, False
        budget = trainer.estimated_stepping_batches
        for config in configs:
            sched = config.scheduler
            assert isinstance(sched, GreedyLR)  # the configs kept above
            if sched.config.total_steps is None and math.isfinite(budget) and budget >= 1:
                sched.set_total_steps(int(budget))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # not the sanity check before training: the model has not been trained yet
        if self.monitor is None or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None:
            for sched in self._schedulers(trainer):
                sched.observe_eval(value)

    # -- the loss ---------------------------------------------------------------

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        # The loss Lightning back-propagates: divided by accumulate_grad_batches and, with
        # fp16 AMP, multiplied by the GradScaler's scale (divided out once per step below).
        value = loss.detach().float()
        self._loss_sum = value if self._loss_sum is None else self._loss_sum + value
        self._count += 1

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        total, count = self._loss_sum, self._count
        self._loss_sum, self._count = None, 0
        if total is None:
            return
        # The sum of the normalised micro-batch losses is their mean when the window is
        # full; a short last window (end of epoch) is still divided by the full size,
        # so rescale to the mean of what was really seen.
        value = total * (trainer.accumulate_grad_batches / count)
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        if scaler is not None and scaler.is_enabled():
            # The scale tensor itself when there is one: get_scale() reads it on the host,
            # a sync per step that a device-mode GreedyLR is built to avoid.
            scale = getattr(scaler, "_scale", None)
            value = value / (scale if isinstance(scale, torch.Tensor) else scaler.get_scale())
        schedulers = [s for s in self._schedulers(trainer) if s.optimizer is optimizer]
        if not schedulers:  # an optimizer wrapper: feed the only GreedyLR there is
            schedulers = self._schedulers(trainer)[:1]
        for sched in schedulers:
            sched.observe(value)
        self._stepped = True

    # -- logging ----------------------------------------------------------------

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        # Runs after Lightning stepped the step-interval schedulers for this batch.
        if not (self._log and self._stepped):
            return
        self._stepped = False
        # Tensors are logged as they are: Lightning reads them when its loggers write
        # (every log_every_n_steps), so a device-mode GreedyLR costs no sync per step.
        for k, sched in enumerate(self._schedulers(trainer)):
            suffix = "" if k == 0 else f"_{k}"
            for i, lr in enumerate(sched.get_last_lr()):
                name = "greedylr/lr" if i == 0 else f"greedylr/lr_group{i}"
                value = lr if isinstance(lr, torch.Tensor) else float(lr)
                pl_module.log(name + suffix, value, on_step=True, on_epoch=False)
            smoothed = sched.smoothed_loss  # a device tensor in device mode: no host read
            if smoothed is not None:
                pl_module.log(
                    "greedylr/smoothed_loss" + suffix,
                    smoothed,
                    on_step=True,
                    on_epoch=False,
                )

    # -- checkpoint -------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The partial sum of an unfinished accumulation window (plain values)."""
        total = 0.0 if self._loss_sum is None else float(self._loss_sum)
        return {"loss_sum": total, "count": self._count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        count = int(state_dict.get("count", 0))
        self._count = count
        self._loss_sum = torch.tensor(float(state_dict["loss_sum"])) if count else None

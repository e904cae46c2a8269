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
on the mean of the per-optimizer-step losses since its last decision, and its budget
(``total_steps``) counts those decisions.

For an LR nobody tuned, :func:`range_test` runs :func:`greedylr.lr_range_test`'s protocol
through Lightning's own fit loop (its strategy, precision and gradient accumulation),
undoes it, and multiplies the LightningModule's LR attribute (``lr``) by the suggested
multiple, so that the fit after it builds its optimizer (and GreedyLR) there::

    result = range_test(trainer, model, datamodule=dm)   # 100 optimizer steps, then undone
    trainer.fit(model, datamodule=dm)                     # starts at the suggestion

Unlike ``Tuner.lr_find``, every param group keeps its ratio to the others, the reading is
on each optimizer step's raw loss (the mean over its micro-batches and over the ranks),
and the suggestion is the valley/10 the project's evidence is about.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from greedylr import distributed
from greedylr._direction import direction_from_name
from greedylr._extras import requires_extra
from greedylr.config import budget_after_warmup
from greedylr.range_test import (
    RangeTest,
    _base_lrs,
    _check_sweep,
    _set,
    _warn_at_an_end_of_the_sweep,
    sweep_multipliers,
)
from greedylr.scheduler import GreedyLR

with requires_extra("lightning", "greedylr.integrations.lightning"):
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import GradientAccumulationScheduler, LearningRateFinder
    from lightning.pytorch.loggers.logger import DummyLogger
    from lightning.pytorch.strategies.launchers.subprocess_script import (
        _SubprocessScriptLauncher,
    )
    from lightning.pytorch.trainer.states import TrainerFn
    from lightning.pytorch.tuner.lr_finder import _determine_lr_attr_name
    from lightning.pytorch.utilities.exceptions import (
        MisconfigurationException,
        _TunerExitException,
    )
    from lightning.pytorch.utilities.parsing import lightning_getattr, lightning_setattr
    from lightning.pytorch.utilities.seed import isolate_rng

__all__ = ["GreedyLRCallback", "range_test"]

logger = logging.getLogger("greedylr")


class GreedyLRCallback(pl.Callback):
    """Feeds every :class:`~greedylr.GreedyLR` of the LightningModule its training loss.

    Args:
        log: log ``greedylr/lr`` (group 0; ``greedylr/lr_group{i}`` for the others) and
            ``greedylr/smoothed_loss`` after each optimizer step, through
            ``LightningModule.log``.
        monitor: the validation metric given to :meth:`~greedylr.GreedyLR.observe_eval`
            after each validation run of a fit (``None``: none; a validation that did not
            log it feeds nothing, with a warning the first time; ``trainer.validate()``
            feeds nothing). Under DDP every rank feeds it: logged without ``sync_dist``
            each rank's own value, which ``observe_eval`` averages across ranks (as the
            training loss), or, logged on some ranks only (``rank_zero_only=True``), the
            mean of theirs. Its direction is each GreedyLR's ``eval_mode``: at fit start
            a warning says where the metric's name reads the other way (an accuracy under
            the default ``eval_mode="min"``). Each GreedyLR built without
            ``total_steps`` gets at fit start the number of times Lightning will step it
            (used only by a final cooldown): ``trainer.estimated_stepping_batches`` with
            ``"interval": "step"``, fewer with an ``"epoch"`` interval or a ``frequency``
            above 1 (none, with a warning, where the batches of an epoch are not known).

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
        self._warned_missing = False

    # -- which schedulers -------------------------------------------------------

    @staticmethod
    def _schedulers(trainer: pl.Trainer) -> list[GreedyLR]:
        return [
            c.scheduler for c in trainer.lr_scheduler_configs if isinstance(c.scheduler, GreedyLR)
        ]

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # A fit starts with an empty window, unless it resumes inside one: Lightning
        # restores the callbacks' state (load_state_dict) after setup, and before
        # on_fit_start unless its strategy restores after setting up (FSDP, DeepSpeed).
        if stage == TrainerFn.FITTING:
            self._loss_sum, self._count, self._stepped = None, 0, False

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
        self._check_direction(self._schedulers(trainer))
        budget = trainer.estimated_stepping_batches
        for config in configs:
            sched = config.scheduler
            assert isinstance(sched, GreedyLR)  # the configs kept above
            if sched.config.total_steps is not None or not math.isfinite(budget) or budget < 1:
                continue
            decisions = _scheduler_steps(trainer, int(budget), config.interval,
                                         config.frequency)
            if decisions is None:
                logger.warning(
                    "GreedyLRCallback: GreedyLR steps every %s %s(s), and the number of "
                    "batches an epoch has is not known at fit start: it gets no budget, so "
                    "no final cooldown; pass total_steps= (in scheduler steps) to GreedyLR",
                    config.frequency, config.interval)
                continue
            c = sched.config
            steps = budget_after_warmup(decisions, c.warmup, c.anneal_fraction, c.base_schedule)
            if steps is not None and steps >= 1:
                sched.set_total_steps(steps)

    def _check_direction(self, schedulers: list[GreedyLR]) -> None:
        """Warn where the GreedyLRs judge the monitored metric in the direction its name
        does not read as (:func:`greedylr._direction.direction_from_name`, as
        ``transformers.attach`` reads it): an accuracy under the default
        ``eval_mode="min"`` would have every improvement cut the LR."""
        if self.monitor is None:
            return
        larger = direction_from_name(self.monitor)
        if all((sched.config.eval_mode == "max") == larger for sched in schedulers):
            return
        logger.warning(
            "GreedyLRCallback: GreedyLR takes a %s %r as better (eval_mode=%r), but its name "
            "reads as %s-is-better (a guess from its words); pass eval_mode=%r to GreedyLR if "
            "%s is better", "smaller" if larger else "larger", self.monitor,
            "min" if larger else "max", "higher" if larger else "lower",
            "max" if larger else "min", "higher" if larger else "lower")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # only the validations of a fit: not its sanity check (the model is untrained),
        # not a trainer.validate() afterwards (the run is over: nothing to decide)
        if (self.monitor is None or trainer.sanity_checking
                or trainer.state.fn != TrainerFn.FITTING):
            return
        value: Any = trainer.callback_metrics.get(self.monitor)
        if distributed.is_distributed() and self._schedulers(trainer):
            # observe_eval is a collective: every rank calls it, or none does. A metric
            # logged on some ranks only (rank_zero_only=True) reaches every rank as the
            # mean of those that have it; a rank-local one (no sync_dist) is averaged by
            # observe_eval itself
            value = distributed.mean_where_given(None if value is None else float(value))
        if value is None:
            if not self._warned_missing:
                self._warned_missing = True
                logger.warning(
                    "GreedyLRCallback observes no held-out value: %r was not logged in "
                    "validation (logged: %s); pass monitor= (None for none)", self.monitor,
                    sorted(trainer.callback_metrics))
            return
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


def _scheduler_steps(trainer: pl.Trainer, optimizer_steps: int, interval: str,
                     frequency: int) -> int | None:
    """How many times Lightning steps a scheduler of ``interval`` and ``frequency`` in a fit
    of ``optimizer_steps`` optimizer steps, or ``None`` where the number of batches an epoch
    has is not known. As ``_TrainingEpochLoop.update_lr_schedulers`` steps it: a "step" one
    after each optimizer step whose batch, counted from 1 in its epoch, is a multiple of
    ``frequency``; an "epoch" one after each epoch completed whose number is."""
    if interval == "step" and frequency == 1:
        return optimizer_steps
    if not math.isfinite(trainer.num_training_batches) and trainer.train_dataloader is None:
        # not loaded yet: with max_epochs=-1 Lightning's estimate is max_steps, read
        # without the data; load it as the estimate does otherwise
        trainer.fit_loop.setup_data()
    batches, accumulation = trainer.num_training_batches, trainer.accumulate_grad_batches
    if not math.isfinite(batches):
        return None
    batches = int(batches)
    epochs, rest = divmod(optimizer_steps, math.ceil(batches / accumulation))
    if interval == "epoch":
        return epochs // frequency
    # an optimizer step ends each multiple of accumulation batches, and the epoch's last
    both = math.lcm(accumulation, frequency)
    per_epoch = batches // both + (batches % accumulation != 0 and batches % frequency == 0)
    return epochs * per_epoch + rest * accumulation // both


# -- the LR range test ------------------------------------------------------------


def range_test(
    trainer: pl.Trainer,
    model: pl.LightningModule,
    train_dataloaders: Any = None,
    datamodule: pl.LightningDataModule | None = None,
    *,
    steps: int = 100,
    start: float = 1e-4,
    end: float = 1e2,
    beta: float = 0.98,
    stop: float = 4.0,
    update_attr: bool = True,
    attr_name: str = "",
) -> RangeTest:
    """:func:`greedylr.lr_range_test`'s sweep, run by ``trainer`` on ``model``; call it
    before ``trainer.fit(model, ...)``, which then starts at the suggestion.

    The sweep is a ``trainer.fit`` that Lightning's strategy, precision plugin and
    gradient accumulation run as they will run the real fit. Once the strategy has set the
    model up and ``configure_optimizers`` has built its optimizer, it trains ``steps``
    optimizer steps; before step ``k`` every param group's LR is its own (``initial_lr``
    where a scheduler left one, else ``lr``) times ``sweep_multipliers(steps, start,
    end)[k]``, so the groups keep their ratios. Step ``k``'s loss is the mean of the loss
    ``training_step`` returned over the step's micro-batches (a short last window of an
    epoch included) and over the ranks, so that every rank reads the same sweep (a loss
    to lower, whatever the mode of the GreedyLR fed after it: ``mode="min"``);
    :meth:`RangeTest.read` reads it after every step and the sweep ends where it stops. An
    epoch shorter than the sweep is followed by the next, as a plain loop would cycle
    through its data.

    During the sweep (as in ``Tuner.lr_find``) the trainer's callbacks do not run, except
    any ``GradientAccumulationScheduler`` (it decides how many micro-batches make a step),
    its loggers receive nothing, validation does not run and the LR schedulers are not
    stepped; the LightningModule's own hooks run. Afterwards a checkpoint taken before it
    (in ``trainer.default_root_dir``, then deleted) puts back the weights and buffers
    (those registered with ``persistent=False``, which it leaves out, from a copy kept in
    memory), the loops' progress (``global_step``), the precision plugin's state (a GradScaler's
    scale) and the datamodule's; the callbacks, loggers, LR schedulers, ``max_steps``,
    ``max_epochs``, ``limit_val_batches`` and ``accumulate_grad_batches`` are put back
    as they were, and so are the random number generators (torch's, numpy's, Python's):
    the fit that follows trains as it would have without the test, from the suggestion.
    The model's and callbacks' ``setup``/``teardown`` hooks run once more, and the model's
    ``on_save_checkpoint``/``on_load_checkpoint`` once each, as with ``Tuner.lr_find``.

    Args:
        trainer: the Trainer that will fit ``model`` (not yet fitted, or where the fit to
            continue left off).
        model: the LightningModule; its ``configure_optimizers`` builds one optimizer,
            at the LR you would otherwise use.
        train_dataloaders: as for ``trainer.fit``.
        datamodule: as for ``trainer.fit``.
        steps: the sweep's length, in optimizer steps.
        start: the sweep's first multiple of each group's LR (:func:`greedylr.lr_range_test`).
        end: its last.
        beta: the smoothing of :meth:`RangeTest.read`.
        stop: its cut.
        update_attr: multiply the LightningModule's LR attribute by
            :attr:`RangeTest.suggested_multiplier`, so that ``configure_optimizers`` builds
            the next fit's optimizer at the suggestion (every group moves with it when its
            LR is proportional to the attribute). ``False``: only return the result.
        attr_name: that attribute (in the model or its ``hparams``); by default ``lr`` or
            ``learning_rate``, found as ``Tuner.lr_find`` finds it.

    Returns:
        The sweep and its reading; ``base_lrs`` are the LRs ``configure_optimizers`` gave
        the groups.

    Raises:
        ValueError: ``steps`` is below 2, ``start`` or ``end`` is not positive and finite
            or ``end <= start``, ``beta`` or ``stop`` is out of range, the first loss is not
            finite, the LR attribute is not a positive number, or every param group's LR
            (its ``initial_lr`` where a scheduler set one) is 0.
        AttributeError: ``update_attr`` and the model has no LR attribute.
        MisconfigurationException: what the sweep cannot run correctly: manual
            optimization (and so several optimizers), a strategy that trains in processes
            it launches itself (``ddp_spawn``, ``ddp_fork``, notebooks, XLA),
            ``fast_dev_run``, a ``LearningRateFinder`` callback, or no optimizer with an LR.
        RuntimeError: the fit loop ended before the sweep did (no training batches, or
            the model stopped the fit), or an optimizer step had no loss on any rank.
    """
    steps = _check_sweep(steps, start, end, beta, stop)
    _refuse_what_the_sweep_cannot_run(trainer, model)
    attr = _lr_attribute(model, attr_name) if update_attr else None
    sweep = _Sweep(sweep_multipliers(steps, start, end), beta=beta, stop=stop)
    with isolate_rng(), _first_callback(trainer, sweep):
        trainer.fit(model, train_dataloaders=train_dataloaders, datamodule=datamodule)
    result = sweep.result
    assert result is not None, "the sweep either reads its steps or raises"
    if trainer.is_global_zero:
        _warn_at_an_end_of_the_sweep(result)
    if attr is not None:
        name, lr = attr
        lightning_setattr(model, name, lr * result.suggested_multiplier)
        logger.info("LR range test: %s set from %g to %g (%g times it)", name, lr,
                    lr * result.suggested_multiplier, result.suggested_multiplier)
    return result


# The trainers below are typed Any: Lightning sets Trainer.callbacks and fast_dev_run
# outside Trainer.__init__, where type checkers do not see them.


@contextmanager
def _first_callback(trainer: Any, callback: pl.Callback) -> Iterator[None]:
    """``callback`` first among the trainer's callbacks (its ``on_fit_start`` before any
    other's), then the trainer's callbacks as given (the fit adds the model's own)."""
    callbacks = trainer.callbacks
    trainer.callbacks = [callback, *callbacks]
    try:
        yield
    finally:
        trainer.callbacks = callbacks


def _refuse_what_the_sweep_cannot_run(trainer: Any, model: pl.LightningModule) -> None:
    """Refuses, before the fit, what would make the sweep wrong or its result lost."""
    if not model.automatic_optimization:
        raise MisconfigurationException(
            "range_test needs automatic optimization: the sweep sets the LR before each "
            "optimizer step Lightning takes and reads the loss training_step returns for it. "
            "Under manual optimization (which several optimizers need) training_step steps "
            "its optimizers itself; run greedylr.lr_range_test in a loop of your own, whose "
            "train_step is one step of one optimizer."
        )
    launcher = trainer.strategy.launcher
    if launcher is not None and not isinstance(launcher, _SubprocessScriptLauncher):
        raise MisconfigurationException(
            f"range_test reads the sweep and puts the model back in this process; "
            f"{type(trainer.strategy).__name__} trains in processes it launches itself "
            "(ddp_spawn, ddp_fork, a notebook's ddp, XLA), from which neither would come "
            "back. Use strategy='ddp' (each rank runs your script, and the test), or run "
            "the test on one device."
        )
    if trainer.fast_dev_run:
        raise MisconfigurationException(
            "range_test cannot run its sweep under fast_dev_run, which trains a single "
            "batch; use a Trainer without fast_dev_run."
        )
    if any(isinstance(c, LearningRateFinder) for c in trainer.callbacks):
        raise MisconfigurationException(
            "the trainer has a LearningRateFinder callback: Lightning would run its own "
            "sweep (every group at the same LR, read at the steepest descent) at fit start "
            "and set the LR itself. Remove it to use range_test."
        )


def _lr_attribute(model: pl.LightningModule, attr_name: str) -> tuple[str, float]:
    """The model's LR attribute, as ``Tuner.lr_find`` finds it, and the positive LR it
    holds."""
    try:
        name = _determine_lr_attr_name(model, attr_name)
    except AttributeError as error:
        wanted = repr(attr_name) if attr_name else "'lr' or 'learning_rate'"
        raise AttributeError(
            f"range_test sets the LR that configure_optimizers reads, but neither the model "
            f"nor model.hparams has {wanted}: pass attr_name= the attribute's name, or "
            "update_attr=False to only return the RangeTest (its suggested_lrs)"
        ) from error
    value = lightning_getattr(model, name)
    if not (isinstance(value, numbers.Real) and 0 < float(value) < math.inf):
        raise ValueError(
            f"range_test multiplies model.{name} by the suggestion; it holds {value!r}, not "
            "a positive LR. Set it to the LR configure_optimizers builds the optimizer with."
        )
    return name, float(value)


def _unsaved_buffers(model: torch.nn.Module) -> list[tuple[torch.nn.Module, str, torch.Tensor]]:
    """A copy of each buffer registered with ``persistent=False``, which checkpoints leave
    out, with its module and name (found module by module: a state_dict of a sharded
    model would gather it)."""
    return [(module, name, buffer.detach().clone())
            for module in model.modules()
            for name, buffer in module.named_buffers(recurse=False)
            if name in module._non_persistent_buffers_set]


def _put_back(unsaved: list[tuple[torch.nn.Module, str, torch.Tensor]]) -> None:
    """Each buffer's value from its copy, in place; one that the module rebuilt in another
    shape or dtype (a cache grown during the sweep) stays as rebuilt, consistent with the
    module's own record of it; one made under inference mode, which takes no in-place
    update outside it, is replaced by the copy."""
    for module, name, saved in unsaved:
        current = module._buffers.get(name)
        if current is None or current.shape != saved.shape or current.dtype != saved.dtype:
            continue
        if current.is_inference():
            module._buffers[name] = saved
        else:
            with torch.no_grad():
                current.copy_(saved)


class _Sweep(pl.Callback):
    """The range test inside ``trainer.fit``: at fit start, where the strategy has set the
    model up and built its optimizer, it runs Lightning's fit loop for the sweep's
    optimizer steps, putting every group's LR in place before each and reading its loss
    after it; then it puts the trainer back from a checkpoint taken before and ends the
    fit (the caller's own fit builds its optimizer anew, from the suggested LR)."""

    def __init__(self, multipliers: Sequence[float], *, beta: float, stop: float) -> None:
        self.multipliers = list(multipliers)
        self.beta = beta
        self.stop = stop
        self.result: RangeTest | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._base_lrs: list[float] = []
        self._losses: list[float] = []
        self._window: list[torch.Tensor] = []  # the current step's micro-batch losses
        self._first_step = 0

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizer = trainer.optimizers[0]  # automatic optimization: the one there is
        # Lightning's stand-in when configure_optimizers returns None has no param groups
        if not optimizer.param_groups or any("lr" not in g for g in optimizer.param_groups):
            raise MisconfigurationException(
                "range_test: configure_optimizers returned no optimizer (or one whose param "
                "groups have no 'lr'): there is no LR to sweep"
            )
        self._optimizer = optimizer
        self._base_lrs = _base_lrs(optimizer)  # initial_lr where set; none all 0
        self._first_step = trainer.global_step
        checkpoint = trainer.strategy.broadcast(os.path.join(
            trainer.default_root_dir, f".greedylr_range_test_{uuid.uuid4()}.ckpt"))
        trainer.save_checkpoint(checkpoint)
        unsaved = _unsaved_buffers(pl_module)
        try:
            with self._sweep_settings(trainer):
                self._set_lrs(0)
                trainer.fit_loop.run()
        finally:
            trainer._checkpoint_connector.restore(checkpoint)
            trainer.strategy.remove_checkpoint(checkpoint)
            # restoring the loops marks them as resuming a checkpoint: the next fit must
            # start from their progress as if the test had not run
            trainer.fit_loop.restarting = False
            trainer.fit_loop.epoch_loop.restarting = False
            _put_back(unsaved)
        if self.result is None or not (
                self.result.stopped or len(self._losses) == len(self.multipliers)):
            raise RuntimeError(
                f"range_test: Lightning's fit loop ended the sweep after {len(self._losses)} "
                f"of its {len(self.multipliers)} optimizer steps (no training batches, "
                "limit_train_batches=0, or the LightningModule stopped the fit): the test "
                "reads a whole sweep only"
            )
        raise _TunerExitException  # ends this fit, as Tuner.lr_find ends its own

    @contextmanager
    def _sweep_settings(self, trainer: Any) -> Iterator[None]:
        """The trainer set to run the sweep alone, and put back as it was after it."""
        epoch_loop = trainer.fit_loop.epoch_loop
        saved = (trainer.callbacks, trainer.loggers, trainer.strategy.lr_scheduler_configs,
                 epoch_loop.max_steps, trainer.fit_loop.max_epochs, trainer.limit_val_batches,
                 trainer.accumulate_grad_batches)
        trainer.callbacks = [self, *(c for c in trainer.callbacks
                                     if isinstance(c, GradientAccumulationScheduler))]
        # a stand-in logger: code that reads trainer.logger (or its experiment) still runs
        trainer.logger = DummyLogger() if trainer.loggers else None
        trainer.strategy.lr_scheduler_configs = []
        epoch_loop.max_steps = trainer.global_step + len(self.multipliers)
        # as many epochs as steps: enough however short an epoch is, and an end to the
        # loop if the data yields nothing
        trainer.fit_loop.max_epochs = trainer.current_epoch + len(self.multipliers)
        trainer.limit_val_batches = 0
        try:
            yield
        finally:
            (trainer.callbacks, trainer.loggers, trainer.strategy.lr_scheduler_configs,
             epoch_loop.max_steps, trainer.fit_loop.max_epochs, trainer.limit_val_batches,
             trainer.accumulate_grad_batches) = saved

    def _set_lrs(self, step: int) -> None:
        assert self._optimizer is not None  # set at fit start
        for group, lr in zip(self._optimizer.param_groups, self._base_lrs):
            _set(group, "lr", lr * self.multipliers[step])

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else None
        if loss is not None:  # None: training_step skipped this micro-batch
            # Lightning divided it by accumulate_grad_batches (in a short window too)
            self._window.append(loss.detach().float() * trainer.accumulate_grad_batches)
        if trainer.global_step - self._first_step == len(self._losses):
            return  # the optimizer step is still accumulating
        self._losses.append(self._step_loss(trainer))
        self.result = RangeTest.read(self._base_lrs, self.multipliers, self._losses,
                                     beta=self.beta, stop=self.stop)
        if self.result.stopped:
            trainer.fit_loop.epoch_loop.max_steps = trainer.global_step
        elif len(self._losses) < len(self.multipliers):
            self._set_lrs(len(self._losses))

    def _step_loss(self, trainer: pl.Trainer) -> float:
        """The mean loss of the step's micro-batches on every rank (one collective)."""
        window, self._window = self._window, []
        device = trainer.strategy.root_device
        total = sum(window, torch.zeros((), device=device))
        both = torch.stack([total, torch.tensor(float(len(window)), device=device)])
        loss_sum, count = trainer.strategy.reduce(both, reduce_op="sum").tolist()
        if count == 0:
            raise RuntimeError(
                f"range_test: training_step returned no loss for any micro-batch of the "
                f"sweep's step {len(self._losses)}: the step has nothing to read"
            )
        return loss_sum / count

"""GreedyLR in the Hugging Face ``Trainer``, fed the training loss of every optimizer step.

One line on an existing ``Trainer`` (or any subclass: TRL's ``SFTTrainer``, ...)::

    from greedylr.integrations.transformers import attach

    trainer = Trainer(model=model, args=args, train_dataset=train)
    attach(trainer, patience=10)  # any GreedyLR keyword argument
    trainer.train()

What it does, and why (transformers 5.x ``Trainer``):

* The Trainer steps a scheduler with ``lr_scheduler.step()``, without a loss, after every
  optimizer step that was not skipped, and only its loss-driven schedulers see a value:
  the *eval* metric, after an evaluation. The training loss reaches no callback.
  ``attach`` therefore wraps ``trainer.training_step`` (the Trainer's documented
  override point), sums the loss it returns over the micro-batches of one optimizer
  step, exactly as the Trainer sums it for ``logs["loss"]`` (each micro-batch loss is
  already divided by the accumulation steps, or normalised by ``num_items_in_batch``),
  and hands that sum to :meth:`GreedyLR.observe` in ``on_optimizer_step``, just
  before the Trainer's own ``step()``. The scheduler averages it across ranks
  (``sync_ranks``), so it equals the Trainer's all-gathered ``logs["loss"]``.
* A step the optimizer skipped (fp16 overflow: ``optimizer_step_was_skipped``) feeds
  nothing, and its micro-batch losses are dropped rather than carried into the next
  step.
* ``feed="eval"`` reproduces transformers' own behaviour instead: one decision per
  evaluation, on ``eval_<metric_for_best_model>``.
* The scheduler is created by ``trainer.create_scheduler``, after Accelerate has
  prepared the optimizer, so ``resume_from_checkpoint`` loads ``scheduler.pt`` into it
  (``state_dict`` loads with ``weights_only=True``) and the LR trajectory continues
  exactly. Built again on the same optimizer (a second ``train()``, an
  ``auto_find_batch_size`` retry), it starts from each group's ``initial_lr``, as the
  Trainer's own schedulers do. ``TrainingArguments.warmup_steps``/``warmup_ratio`` become
  GreedyLR's linear ramp unless ``warmup`` is given, with ``feed="train"`` (a rule fed
  once per evaluation counts evaluations: it gets no ramp unless given one).
* Every training log (``trainer.log``, hence ``log_history`` and every ``report_to``
  integration) gains ``greedylr/lr`` (the LR decided for the next step), the smoothed
  loss, and the number of increases, decreases and resets since the previous log; each
  event's reason goes to the ``greedylr`` logger at INFO.

The Trainer's ``logging_nan_inf_filter`` replaces a NaN or infinite loss in its logs;
GreedyLR is fed the true value instead, and its ``on_nonfinite`` policy decides.

:func:`average_weights` adds what the Trainer lacks for evaluating GreedyLR runs: a running
average of the weights (:mod:`greedylr.averaging`), swapped in for every evaluation and
kept in every checkpoint.

:func:`range_test` places the LR before ``train()`` when nobody tuned it: the combination
the evidence found the most tolerant of such an LR is an LR range test, then GreedyLR from
its suggestion (:mod:`greedylr.range_test`). It runs :func:`greedylr.lr_range_test` on the
Trainer's own optimizer steps (its batches, ``compute_loss``, accumulation, clipping and
mixed precision) set up as ``train()`` sets them up (activation checkpointing, NEFTune,
Liger's kernels), puts back everything the sweep changed but Liger's kernels, which
``train()`` patches in anyway, and leaves the suggestion where ``train()`` reads it::

    trainer = Trainer(model=model, args=args, train_dataset=train)
    range_test(trainer)   # 100 optimizer steps, then everything put back
    attach(trainer)       # GreedyLR starts from the suggestion
    trainer.train()
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import torch
from torch.optim.swa_utils import AveragedModel

from greedylr._direction import direction_from_name
from greedylr._extras import requires_extra
from greedylr._values import as_float, write_lrs
from greedylr.averaging import DEFAULT_GAMMA, averaged_model, power_ema
from greedylr.config import GreedyConfig, budget_after_warmup
from greedylr.range_test import RangeTest, lr_range_test
from greedylr.scheduler import GreedyLR

with requires_extra("hf", "greedylr.integrations.transformers"):
    from accelerate.optimizer import AcceleratedOptimizer
    from accelerate.utils import convert_outputs_to_fp32
    from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
    from transformers.training_args import TrainingArguments
    from transformers.utils import is_sagemaker_mp_enabled

__all__ = ["AVERAGE_FILE", "GreedyLRCallback", "WeightAveragingCallback", "attach",
           "average_weights", "range_test"]

logger = logging.getLogger("greedylr")

Feed = Literal["train", "eval"]

_EVENT_KINDS = ("increase", "decrease", "reset")


class _EvalFedGreedyLR(GreedyLR):
    """GreedyLR that decides only on evaluation metrics.

    The Trainer calls ``step()`` without a value after every optimizer step, because this
    is not a ``ReduceLROnPlateau``; with ``feed="eval"`` those calls carry nothing to
    decide on and are ignored. The callback calls ``step(metric)`` after an evaluation.
    """

    def step(self, loss: Any = None) -> None:
        if loss is None and not self._constructing:
            return
        super().step(loss)


class GreedyLRCallback(TrainerCallback):
    """Feeds the Trainer's GreedyLR; made and registered by :func:`attach`.

    Args:
        trainer: the Trainer it serves (it reads the accelerator's skip flag and the
            evaluation metrics name from it).
        feed: ``"train"``: the training loss of every optimizer step; ``"eval"``: the
            evaluation metric, once per evaluation.
        metric: the evaluation metric fed (``eval_`` is prepended if missing). Defaults
            to ``args.metric_for_best_model``, else ``"loss"``. Only the evaluations that
            report it are read: not another set's, nor an ``evaluate()`` under another
            ``metric_key_prefix`` (a callback's test set).
    """

    def __init__(self, trainer: Trainer, *, feed: Feed = "train", metric: str | None = None):
        self._trainer = trainer
        self.feed = feed
        self.metric = _metric_key(metric or trainer.args.metric_for_best_model or "loss")
        self._loss_sum: torch.Tensor | None = None
        self._steps_this_run = 0
        self._events_logged = 0
        self._warned_missing = False
        self._prefix: str | None = "eval"  # the metric_key_prefix of the evaluation fed

    @property
    def scheduler(self) -> GreedyLR | None:
        """The GreedyLR the Trainer is driving (``None`` before ``train()`` creates it)."""
        sched = self._trainer.lr_scheduler
        return sched if isinstance(sched, GreedyLR) else None

    # -- the loss, from the wrapped training_step --------------------------------

    def add_micro_batch_loss(self, loss: Any) -> None:
        """Add the loss ``training_step`` returned for one micro-batch."""
        if self.feed != "train":
            return
        value = loss.detach() if isinstance(loss, torch.Tensor) else torch.tensor(loss)
        # float32 like the Trainer's own ``_tr_loss``, so the sum is bit-identical to it.
        value = value.float()
        self._loss_sum = value if self._loss_sum is None else self._loss_sum + value

    # -- Trainer events ----------------------------------------------------------

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        sched = self._trainer.lr_scheduler
        if not isinstance(sched, GreedyLR):
            raise TypeError(
                "greedylr.integrations.transformers.attach: the Trainer's lr_scheduler is "
                f"{type(sched).__name__}, not a greedylr.GreedyLR; do not replace it after attach()"
            )
        self._loss_sum = None
        self._steps_this_run = 0
        self._events_logged = len(sched.events)
        self._check_metric_is_evaluated()

    def _check_metric_is_evaluated(self) -> None:
        """With several evaluation sets (a dict ``eval_dataset``), each set's metrics are
        ``eval_<set>_<name>``: the metric fed must name one of them, whose evaluation is
        then the one fed (``None``: none is)."""
        self._prefix = "eval"
        sets = self._trainer.eval_dataset
        if not isinstance(sets, dict) or self._trainer.args.eval_strategy == "no":
            return
        named = [f"eval_{name}" for name in sets if self.metric.startswith(f"eval_{name}_")]
        self._prefix = max(named, key=len, default=None)
        if self._prefix is not None:
            return
        example = f"{next(iter(sets))}_loss" if sets else "<set>_loss"
        message = (f"GreedyLR is fed {self.metric!r}, but with several evaluation sets "
                   f"({', '.join(map(repr, sets))}) each metric is named eval_<set>_<name>: "
                   f"pass metric= to attach() (e.g. metric={example!r})")
        if self.feed == "eval":
            raise ValueError(message)
        logger.warning("%s; until then no held-out value reaches it", message)
        self._warned_missing = True

    def on_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        # Called after optimizer.step() and before the Trainer's lr_scheduler.step().
        self._steps_this_run += 1
        total, self._loss_sum = self._loss_sum, None
        if self.feed != "train" or total is None:
            return
        if self._trainer.accelerator.optimizer_step_was_skipped:
            logger.debug("optimizer step skipped: its loss is not fed to GreedyLR")
            return
        sched = self.scheduler
        if sched is not None:
            sched.observe(total)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        # Only evaluations inside train() after an optimizer step, as transformers does
        # (it skips eval_on_start; a manual evaluate() after training changes nothing).
        if not self._trainer.is_in_train or self._steps_this_run == 0:
            return
        metrics = metrics or {}
        if self._prefix is None or _evaluated(metrics) not in (None, self._prefix):
            # another set's evaluation (the Trainer evaluates each set in turn), or one
            # with another metric_key_prefix (a callback's evaluate(test, "test")); one
            # without a <prefix>_runtime (a subclass's own evaluate) is taken as the fed one
            return
        if self.metric not in metrics:
            if self.feed == "eval":
                raise KeyError(
                    f"GreedyLR is fed {self.metric!r}, which is not among the evaluation "
                    f"metrics {sorted(metrics)}; pass metric= to attach()"
                )
            if not self._warned_missing:
                self._warned_missing = True
                logger.warning(
                    "GreedyLR observes no held-out value: %r is not among the evaluation "
                    "metrics %s; pass metric= to attach()", self.metric, sorted(metrics))
            return
        sched = self.scheduler
        if sched is None:
            return
        if self.feed == "train":
            # the held-out value as well: a worse one lowers the LR, blocks increases
            sched.observe_eval(metrics[self.metric])
        else:
            sched.step(metrics[self.metric])

    # -- what goes into the Trainer's logs ---------------------------------------

    def log_fields(self) -> dict[str, float]:
        """The scheduler's fields for the next log entry; events since the last entry."""
        sched = self.scheduler
        if sched is None:
            return {}
        fields: dict[str, float] = {}
        for i, lr in enumerate(sched.get_last_lr()):
            fields["greedylr/lr" if i == 0 else f"greedylr/lr_group{i}"] = float(lr)
        # The value fed is the Trainer's own "loss" (or the eval metric): not repeated.
        # One value read at log time (the Trainer reads its loss then too), not the state.
        smoothed = sched.smoothed_loss
        value = math.nan if smoothed is None else float(smoothed)  # NaN: none yet
        if not math.isnan(value):
            fields["greedylr/smoothed_loss"] = value
        events = sched.events  # a copy of the events only: no per-step column is read
        new, self._events_logged = events[self._events_logged :], len(events)
        for kind in _EVENT_KINDS:
            fields[f"greedylr/{kind}"] = float(sum(e.kind == kind for e in new))
        for event in new:
            if event.kind in _EVENT_KINDS:
                logger.info("GreedyLR %s", event.reason)
        return fields


def _evaluated(metrics: dict[str, float]) -> str | None:
    """The ``metric_key_prefix`` of an evaluation's metrics: the Trainer's ``evaluate()``
    always reports ``<prefix>_runtime`` (the shortest such key: a metric may end in
    ``_runtime`` too); ``None`` where none is reported."""
    prefixes = [key.removesuffix("_runtime") for key in metrics if key.endswith("_runtime")]
    return min(prefixes, key=len, default=None)


def _metric_key(name: str) -> str:
    """The key of an evaluation metric in the Trainer's metrics (``eval_`` prepended)."""
    return name if name.startswith("eval_") else f"eval_{name}"


def _larger_is_better(args: TrainingArguments, fed: str) -> tuple[bool, bool]:
    """Whether a larger value of the metric fed (its key) is better, and whether that is a
    guess to warn of: the arguments' ``greater_is_better`` for ``metric_for_best_model``
    (whose default is the Trainer's rule: a name ending in ``loss`` is lower-is-better, any
    other higher); for another metric, read from its words as ``greedylr compare`` reads
    a metric's (:func:`greedylr._direction.direction_from_name`: ``eval_wer``,
    ``eval_perplexity`` and ``eval_top1_err`` are lower-is-better, ``eval_accuracy``
    higher), a guess unless the name ends in ``loss``."""
    if args.metric_for_best_model and fed == _metric_key(args.metric_for_best_model):
        return bool(args.greater_is_better), False
    return direction_from_name(fed), not fed.endswith("loss")


def _wrap_training_step(trainer: Trainer, callback: GreedyLRCallback) -> None:
    original: Callable[..., torch.Tensor] = trainer.training_step

    def training_step(*args: Any, **kwargs: Any) -> torch.Tensor:
        loss = original(*args, **kwargs)
        callback.add_micro_batch_loss(loss)
        return loss

    trainer.training_step = training_step  # type: ignore[method-assign]


def _wrap_log(trainer: Trainer, callback: GreedyLRCallback) -> None:
    original: Callable[..., None] = trainer.log

    def log(logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        # Only training logs: an evaluate() call outside train() has no decision to show.
        if trainer.is_in_train and "loss" in logs:
            logs.update(callback.log_fields())
        original(logs, *args, **kwargs)

    trainer.log = log  # type: ignore[method-assign]


def _wrap_create_scheduler(trainer: Trainer, feed: Feed, kwargs: dict[str, Any]) -> None:
    built: GreedyLR | None = None  # the last GreedyLR built here

    def create_scheduler(
        num_training_steps: int, optimizer: torch.optim.Optimizer | None = None
    ) -> torch.optim.lr_scheduler.LRScheduler:
        nonlocal built
        if trainer.lr_scheduler is None:
            config = dict(kwargs)
            if "warmup" not in config:
                warmup = trainer.args.get_warmup_steps(num_training_steps)
                if feed == "eval" and warmup:
                    # a rule fed once per evaluation counts evaluations: the Trainer's
                    # ramp, in optimizer steps, would hold the LR at 0 until the first one
                    logger.warning(
                        "attach(feed='eval'): the Trainer's warmup (%d optimizer steps) is not "
                        "applied: GreedyLR decides once per evaluation there, as transformers' "
                        "GreedyLR does; pass warmup= to attach() for a ramp over the first "
                        "evaluations", warmup)
                    warmup = 0
                config["warmup"] = warmup
            if feed == "train" and "total_steps" not in config:
                # the budget (max_steps), for the final cooldown when one is configured;
                # none where the warmup would run into it (a short run, a long warmup)
                defaults = GreedyConfig()
                budget = budget_after_warmup(
                    num_training_steps, config["warmup"],
                    config.get("anneal_fraction", defaults.anneal_fraction),
                    config.get("base_schedule", defaults.base_schedule))
                if budget is not None:
                    config["total_steps"] = budget
            cls = GreedyLR if feed == "train" else _EvalFedGreedyLR
            target = optimizer or trainer.optimizer
            assert target is not None, "the Trainer builds its optimizer before its scheduler"
            if built is not None and built.optimizer.param_groups is target.param_groups:
                # Rebuilt on the optimizer the last one drove (train() after
                # create_optimizer_and_scheduler, a second train(), an auto_find_batch_size
                # retry): GreedyLR starts from each group's lr, which holds the last one's
                # decision (0 inside a warmup); the Trainer's own schedulers start again
                # from initial_lr, which the last one set to its base LRs, or the user
                # moved since (greedylr.set_lrs, a range test's apply). So does this one.
                write_lrs(target.param_groups,
                          [as_float(group.get("initial_lr", base))
                           for group, base in zip(target.param_groups, built.base_lrs)])
            built = scheduler = cls(target, **config)
            # transformers annotates the attribute as a LambdaLR, though any scheduler works
            trainer.lr_scheduler = scheduler  # type: ignore[assignment]
            # The Trainer then rebuilds it on the next train() call, as its own schedulers.
            trainer._created_lr_scheduler = True
            return scheduler
        return trainer.lr_scheduler

    trainer.create_scheduler = create_scheduler  # type: ignore[method-assign]


def attach(
    trainer: Trainer, *, feed: Feed = "train", metric: str | None = None, **kwargs: Any
) -> GreedyLRCallback:
    """Make ``trainer`` drive GreedyLR with the loss of every optimizer step.

    Args:
        trainer: a ``transformers.Trainer`` or a subclass, before ``train()``.
        feed: ``"train"`` (default): the training loss of each optimizer step, the mean
            over its micro-batches and over ranks, exactly the value the Trainer logs
            as ``loss`` with ``logging_steps=1``; the Trainer's ``max_steps`` becomes
            ``total_steps`` (used only by a final cooldown), and each evaluation's
            metric goes to :meth:`~greedylr.GreedyLR.observe_eval`. ``"eval"``: the
            evaluation metric, once per evaluation (transformers' ``GreedyLR`` behaviour;
            needs an ``eval_strategy``).
        metric: the evaluation metric fed (default: ``metric_for_best_model``, else
            ``"loss"``; with several evaluation sets, a dict ``eval_dataset``, name the
            set's metric: ``"a_loss"``). Larger is better (``mode="max"`` with
            ``feed="eval"``, ``eval_mode="max"`` with ``"train"``, unless given) where the
            arguments say ``greater_is_better`` of this metric, or, for a metric other
            than ``metric_for_best_model``, where its name has no word of a loss or an
            error (``loss``, ``err``, ``wer``, ``perplexity``, ``mse``, ...: the rule
            ``greedylr compare`` reads a metric's direction by), with a warning unless
            the name ends in ``loss``.
        **kwargs: keyword arguments of :class:`greedylr.GreedyLR` (``patience``,
            ``factor``, ``sync_ranks``, ...). ``warmup`` defaults to the
            ``TrainingArguments`` warmup with ``feed="train"``, to none with ``"eval"``
            (with a warning where the arguments ask for one: that rule counts
            evaluations). The Trainer's ``lr_scheduler_type`` and
            ``lr_scheduler_kwargs`` are not used (a warning says so where set). Not
            allowed if the Trainer was given a GreedyLR through
            ``optimizers=(optimizer, scheduler)``: that one is used.

    Returns:
        The registered callback; ``callback.scheduler`` is the GreedyLR once training
        has started.

    Raises:
        ValueError: for an unknown ``feed``, ``feed="eval"`` without evaluation, a
            second ``attach``, or GreedyLR arguments given with a ready scheduler.
        TypeError: if the Trainer already holds a scheduler that is not a GreedyLR.

    Examples:
        >>> attach(trainer, patience=10, factor=0.9)  # doctest: +SKIP
        >>> trainer.train()  # doctest: +SKIP
        >>> trainer.state.log_history[-2]["greedylr/lr"]  # doctest: +SKIP
        4.5e-05
    """
    if feed not in ("train", "eval"):
        raise ValueError(f"feed must be 'train' or 'eval', got {feed!r}")
    if any(isinstance(cb, GreedyLRCallback) for cb in trainer.callback_handler.callbacks):
        raise ValueError("GreedyLR is already attached to this Trainer")
    if feed == "eval" and trainer.args.eval_strategy == "no":
        raise ValueError("feed='eval' needs evaluations: set TrainingArguments.eval_strategy")
    existing = trainer.lr_scheduler
    if existing is not None:
        if not isinstance(existing, GreedyLR):
            raise TypeError(
                f"the Trainer already has a {type(existing).__name__} scheduler; "
                "pass optimizers=(optimizer, None) or a greedylr.GreedyLR"
            )
        if kwargs:
            raise ValueError(
                f"the Trainer already has a GreedyLR; GreedyLR arguments {sorted(kwargs)} "
                "would be ignored: configure that scheduler instead"
            )
        if feed == "eval":
            raise ValueError(
                "feed='eval' needs attach() to create the scheduler: pass its arguments "
                "to attach() and optimizers=(optimizer, None) to the Trainer"
            )
    callback = GreedyLRCallback(trainer, feed=feed, metric=metric)
    direction = "mode" if feed == "eval" else "eval_mode"
    larger, guessed = _larger_is_better(trainer.args, callback.metric)
    if direction not in kwargs:
        if larger:
            kwargs[direction] = "max"
        if guessed:
            logger.warning(
                "attach(): GreedyLR takes a %s %r as better, a guess from its name (it is "
                "not metric_for_best_model, whose direction greater_is_better states); "
                "pass %s=%r if %s is better", "larger" if larger else "smaller",
                callback.metric, direction, "min" if larger else "max",
                "lower" if larger else "higher")
    _warn_of_ignored_scheduler_arguments(trainer.args)

    _wrap_create_scheduler(trainer, feed, kwargs)
    _wrap_training_step(trainer, callback)
    _wrap_log(trainer, callback)
    trainer.add_callback(callback)
    return callback


def _warn_of_ignored_scheduler_arguments(args: TrainingArguments) -> None:
    """The Trainer's own scheduler settings, which GreedyLR replaces, said to be unused."""
    kind = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    ignored = []
    if kind != "linear":  # TrainingArguments' default
        ignored.append(f"lr_scheduler_type={kind!r}")
    if args.lr_scheduler_kwargs:
        ignored.append(f"lr_scheduler_kwargs={args.lr_scheduler_kwargs!r}")
    if ignored:
        logger.warning("attach(): GreedyLR replaces the Trainer's scheduler, so %s %s "
                       "ignored; give GreedyLR's arguments to attach()", " and ".join(ignored),
                       "is" if len(ignored) == 1 else "are")


# -- an LR range test on the Trainer's own optimizer steps -----------------------------

#: What the sweep sets on the Trainer for its steps, and puts back after them.
_SWEEP_ATTRIBUTES = ("optimizer", "current_gradient_accumulation_steps", "is_in_train",
                     "neftune_hook_handle")

_OWN_LOOP = ("; run greedylr.lr_range_test in your own training loop instead (its train_step "
             "one step of that loop)")


def range_test(
    trainer: Trainer,
    *,
    steps: int = 100,
    start: float = 1e-4,
    end: float = 1e2,
    beta: float = 0.98,
    stop: float = 4.0,
) -> RangeTest:
    """Run :func:`greedylr.lr_range_test` on ``trainer``'s own optimizer steps, before
    ``train()``, and leave the suggestion where ``train()`` starts from.

    Each step of the sweep is one optimizer step as ``train()`` takes it:
    ``args.gradient_accumulation_steps`` micro-batches from a fresh
    ``trainer.get_train_dataloader()`` iterator (started again when exhausted, as the next
    epoch), counted by ``get_batch_samples`` (``num_items_in_batch``), each through
    ``trainer.training_step`` (so ``compute_loss`` or ``compute_loss_func``, the scaling for
    accumulation, and the accelerator's ``backward``), the gradients clipped at
    ``args.max_grad_norm`` by the accelerator, then the optimizer's step. The loss the sweep
    reads is the one the Trainer logs as ``loss`` for that step: the sum of the micro-batch
    losses ``training_step`` returns, a loss to lower whichever metric, and direction,
    :func:`attach`'s GreedyLR is fed (``mode="min"``). The Trainer's callbacks see none of
    these steps.

    Mixed precision as in training: the forward runs under the accelerator's autocast with
    its outputs cast to float32, as ``accelerator.prepare`` makes it in ``train()``; with the
    fp16 ``GradScaler``, the loss is scaled, the gradients unscaled before clipping, and the
    step taken through the scaler. Under data parallelism (several processes, DDP), the
    sweep starts from the first process's weights and buffers on every process, as DDP's
    wrapping in ``train()`` makes them, the gradients are averaged across the processes
    before each step, as DDP averages them (with ``find_unused_parameters``: a gradient
    some process lacks counts as zero there), and so is the loss (the Trainer's logged
    ``loss``): every process reads the same sweep and takes the same suggestion, and gets
    its own weights back afterwards.

    What ``train()`` sets up before its first step, the sweep sets up too (in transformers
    5's order; 4.x hooks NEFTune before checkpointing, which gives the same steps):
    ``trainer.is_in_train`` is true (a ``compute_loss`` that reads it sees training);
    Liger's kernels (``args.use_liger_kernel``) are patched into the model as ``train()``
    patches them (transformers 4.x patches them when the Trainer is built); activation
    checkpointing is on where the arguments ask for it (``activation_checkpointing`` and its
    kwargs; 4.x: ``gradient_checkpointing``), through the model's own
    ``activation_checkpointing_enable`` (4.x: ``gradient_checkpointing_enable``), so that a
    model that fits in memory only with it fits in the sweep; NEFTune's noise
    (``args.neftune_noise_alpha``) is added to the input embeddings by the hook ``train()``
    adds, so the loss read has it.

    Afterwards the model's weights, buffers, gradients and train/eval modes, the optimizer's
    state, the random number generators (Python's, NumPy's, torch's) and the
    ``GradScaler`` are as they were, and ``train()`` builds its own dataloader, from the
    first batch. So are
    ``trainer.is_in_train``, the NEFTune hook (removed) and activation checkpointing (off
    again unless it was on before, with the input-gradient hooks its enabling added
    removed). Liger's kernels stay patched in: they replace the model's layers' and loss's
    forward in place, ``train()`` would patch them in at its start anyway, and unpatching
    them is no public operation. The suggestion (each LR
    times :attr:`RangeTest.suggested_multiplier`) goes where ``train()`` reads it:

    * the Trainer was given an optimizer (``optimizers=(optimizer, None)``): that one is
      swept, and its LRs set to the suggestion (:meth:`RangeTest.apply`);
    * otherwise the optimizer the Trainer builds (``trainer.create_optimizer()``) is swept
      and dropped, ``trainer.optimizer`` stays ``None``, and ``trainer.args.learning_rate``
      is multiplied by ``suggested_multiplier``: ``train()`` builds its optimizer, and its
      scheduler or :func:`attach`'s GreedyLR, at the suggestion. The arguments change in
      place, for any Trainer that shares them.

    What it found goes to the ``greedylr`` logger at INFO.

    Args:
        trainer: a ``transformers.Trainer`` or a subclass, before ``train()``.
        steps: the sweep's length, in optimizer steps (:func:`greedylr.lr_range_test`).
        start: the sweep's first multiple of the LR.
        end: its last multiple.
        beta: the smoothing of :meth:`RangeTest.read`.
        stop: its cut.

    Returns:
        The sweep's :class:`~greedylr.RangeTest`.

    Raises:
        RuntimeError: where a sweep before ``train()`` cannot take the steps training will
            (DeepSpeed, FSDP, a model split across devices, ``nn.DataParallel``, FP8, a
            multi-process setup other than DDP, an optimizer that updates inside
            backward), or cannot place the suggestion where ``train()`` reads it (a
            Trainer that trained already or holds a scheduler, a built optimizer whose LR
            does not follow ``args.learning_rate``). Nothing has changed then; the message
            says what to do instead.
        ValueError: as :func:`greedylr.lr_range_test`.
        ImportError: ``args.use_liger_kernel`` without liger-kernel installed, as
            ``train()`` raises it (transformers 5); nothing has changed then.
    """
    refusal = _refusal(trainer)
    if refusal is not None:
        raise RuntimeError(f"greedylr range_test: {refusal}")
    model = trainer.model
    assert model is not None, "a Trainer has a model"
    given = trainer.optimizer
    optimizer = given if given is not None else _trainers_optimizer(trainer)
    scaler = trainer.accelerator.scaler
    with _as_in_training(trainer, model, optimizer):
        result = lr_range_test(
            model, optimizer, _optimizer_step(trainer, model, optimizer), steps=steps,
            start=start, end=end, beta=beta, stop=stop,
            also_restore=() if scaler is None else (scaler,))
    if given is None:
        before = trainer.args.learning_rate
        trainer.args.learning_rate = before * result.suggested_multiplier
        placed = (f"args.learning_rate {before:g} -> {trainer.args.learning_rate:g}, which "
                  "train() builds its optimizer at")
    else:
        result.apply(given)
        placed = "the given optimizer's LRs set to it: " + ", ".join(
            f"{lr:g}" for lr in result.suggested_lrs)
    logger.info(
        "LR range test on the Trainer: the smoothed loss was lowest (the valley) at LR %g, "
        "%g times the LR given; the suggestion is a tenth of it, LR %g; %s",
        result.swept_lrs[result.valley], result.best_multiplier, result.suggested_lr, placed)
    return result


def _refusal(trainer: Trainer) -> str | None:
    """Why a sweep before ``train()`` would not take the steps ``train()`` takes, or could not
    place its suggestion where ``train()`` reads it; ``None`` when it can."""
    args, accelerator = trainer.args, trainer.accelerator
    optim = getattr(args.optim, "value", args.optim)
    config = getattr(accelerator, "parallelism_config", None)  # Accelerate's TP/CP/SP sizes
    if trainer.is_deepspeed_enabled:
        return ("DeepSpeed's engine, built in train(), owns the weights, the loss scaling and "
                "the optimizer step" + _OWN_LOOP)
    if trainer.is_fsdp_enabled or trainer.is_fsdp_xla_enabled:
        return "FSDP shards the model in train(), after which its steps differ" + _OWN_LOOP
    if (trainer.is_model_parallel or is_sagemaker_mp_enabled()
            or getattr(trainer, "is_distributed_loading_by_transformers", False)
            or (config is not None and config.non_data_parallel_size > 1)):
        return ("the model is split across devices (model, tensor, context or sequence "
                "parallelism)" + _OWN_LOOP)
    if args.n_gpu > 1:
        return (f"train() wraps the model in nn.DataParallel over {args.n_gpu} GPUs of one "
                "process; launch one process per GPU (torchrun), which range_test supports")
    # (Accelerate before 1.7 has no fp8_enabled; its mixed precision says the same)
    if getattr(accelerator, "fp8_enabled", accelerator.mixed_precision == "fp8"):
        return ("FP8: Accelerate converts the model's layers in train(), so a sweep before it "
                "would run in another precision" + _OWN_LOOP)
    # MULTI_CPU, MULTI_GPU, MULTI_XPU, ...: Accelerate wraps the model in DDP in train()
    data_parallel = accelerator.distributed_type.value.startswith("MULTI_")
    if accelerator.num_processes > 1 and not data_parallel:
        return (f"{accelerator.distributed_type.value} over {accelerator.num_processes} "
                "processes is not the data parallelism (DDP) range_test reproduces" + _OWN_LOOP)
    if "lomo" in optim or "layerwise" in optim:
        return (f"optim={optim!r} updates the weights inside backward, not in "
                "optimizer.step(), where the sweep sets the LR" + _OWN_LOOP)
    if isinstance(trainer.optimizer, AcceleratedOptimizer):
        return ("this Trainer has trained already (Accelerate prepared its model and "
                "optimizer): call range_test before train(), on a new Trainer")
    if trainer.lr_scheduler is not None:
        return ("the Trainer holds a scheduler already, built at the LR given, which the "
                "suggestion would not reach: pass optimizers=(optimizer, None), and train() "
                "or attach() builds the scheduler at the suggestion")
    return None


def _trainers_optimizer(trainer: Trainer) -> torch.optim.Optimizer:
    """The optimizer ``train()`` would build, built now and not kept (``trainer.optimizer``
    stays ``None``); first built at twice ``args.learning_rate``, to check that each group's
    LR follows it, else scaling ``args.learning_rate`` would not carry the suggestion to
    ``train()``."""
    args = trainer.args
    given = args.learning_rate
    built = []
    try:
        for lr in (2 * given, given):
            args.learning_rate = lr
            built.append(trainer.create_optimizer())
            trainer.optimizer = None
    finally:
        args.learning_rate = given
    doubled, optimizer = built
    if not all(math.isclose(float(a["lr"]), 2 * float(b["lr"]), rel_tol=1e-12)
               for a, b in zip(doubled.param_groups, optimizer.param_groups, strict=True)):
        raise RuntimeError(
            "greedylr range_test: the optimizer trainer.create_optimizer() builds does not "
            "take its LR from args.learning_rate (optimizer_cls_and_kwargs with its own lr, "
            "or an overridden create_optimizer), so the suggestion could not reach train(): "
            "build the optimizer and pass optimizers=(optimizer, None); range_test then "
            "sweeps it and sets its LRs")
    return optimizer


@contextlib.contextmanager
def _attributes_kept(holder: object, names: tuple[str, ...]) -> Iterator[None]:
    """``holder``'s attributes ``names`` after the block as they were before it, set or not."""
    kept = {name: vars(holder)[name] for name in names if name in vars(holder)}
    try:
        yield
    finally:
        for name in names:
            vars(holder).pop(name, None)
        vars(holder).update(kept)


@contextlib.contextmanager
def _as_in_training(trainer: Trainer, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """What ``train()`` sets up around its steps, for the sweep only: ``trainer.optimizer``
    is the optimizer swept (``training_step`` calls its ``train()``, which schedule-free
    optimizers need), ``trainer.is_in_train`` is true, Liger's kernels are patched in
    (:func:`_apply_liger_kernels`), activation checkpointing is on where the arguments ask
    for it (:func:`_checkpointing_as_in_training`), NEFTune's noise is added to the input
    embeddings (:func:`_neftune_as_in_training`), in the order transformers 5's ``train()``
    sets them up, and the model's forward runs as ``accelerator.prepare`` makes it, under
    the accelerator's autocast with its outputs cast to float32. Afterwards these, the
    Trainer's accumulation count and the modules' train/eval modes are as they were, but
    for Liger's kernels, which ``train()`` patches in for good (the rest,
    :func:`greedylr.lr_range_test` puts back)."""
    accelerator = trainer.accelerator
    modes = [(module, module.training) for module in model.modules()]
    with contextlib.ExitStack() as stack:
        stack.enter_context(_attributes_kept(trainer, _SWEEP_ATTRIBUTES))
        trainer.optimizer = optimizer
        trainer.is_in_train = True
        # before the forward is kept below: Liger may bind its own forward to the model,
        # which must stay
        _apply_liger_kernels(trainer, model)
        stack.enter_context(_checkpointing_as_in_training(trainer, model))
        stack.enter_context(_neftune_as_in_training(trainer, model))
        stack.enter_context(_attributes_kept(model, ("forward",)))
        if accelerator.native_amp:
            model.forward = convert_outputs_to_fp32(accelerator.autocast()(model.forward))
        try:
            yield
        finally:
            for module, training in modes:
                module.training = training


def _apply_liger_kernels(trainer: Trainer, model: torch.nn.Module) -> None:
    """Liger's kernels (``args.use_liger_kernel``), patched into the model as ``train()``
    patches them, for good: they replace its normalisations, activations, rotary
    embeddings and loss (a fused linear cross-entropy that never holds the logits) in
    place, changing the step's memory and its loss, and ``train()`` would patch the same
    model in the same way at its start; applying them twice is what two ``train()`` calls
    do. Without liger-kernel installed, this raises ``train()``'s ImportError. Transformers
    4.x patches them when the Trainer is built: then there is nothing left to do."""
    if not getattr(trainer.args, "use_liger_kernel", False):
        return
    try:
        from transformers.integrations.liger import apply_liger_kernel
    except ImportError:  # transformers 4.x
        return
    apply_liger_kernel(model, trainer.args.liger_kernel_config)


def _checkpointing_on(model: torch.nn.Module) -> bool:
    """Whether the model's activation checkpointing is on (transformers 5's property, else
    4.x's, which 5 keeps with a deprecation warning; a model without either has none)."""
    for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):
        on = getattr(model, name, None)  # (a PEFT model hands it on to its base model)
        if on is not None:
            return bool(on)
    return False


#: Where ``enable_input_require_grads`` keeps its hooks' handles, on the model it is called
#: on (transformers 4.x: the first alone).
_INPUT_GRAD_HOOKS = ("_require_grads_hook", "_require_grads_hooks")


def _input_grad_hooks(module: torch.nn.Module) -> list[Any]:
    """The handles ``module`` keeps of hooks that make the input embeddings' output require
    gradients."""
    hooks = list(vars(module).get("_require_grads_hooks") or ())
    single = vars(module).get("_require_grads_hook")
    return hooks if single is None else [*hooks, single]


@contextlib.contextmanager
def _checkpointing_as_in_training(trainer: Trainer, model: torch.nn.Module) -> Iterator[None]:
    """Activation checkpointing turned on as ``train()`` turns it on, through the model's
    own ``activation_checkpointing_enable`` with ``args.activation_checkpointing_kwargs``
    (transformers 5), or ``gradient_checkpointing_enable`` with
    ``args.gradient_checkpointing_kwargs`` (4.x, or a model with only that method).
    Afterwards it is turned off again if it was off before (on before, it stays on, as
    ``train()`` leaves it), and the input-gradient hooks the enabling registered on the
    embeddings are removed."""
    args: Any = trainer.args  # (either version's fields)
    hf_model: Any = model  # (a PreTrainedModel's methods)
    five = hasattr(args, "activation_checkpointing")  # 4.x: gradient_checkpointing
    wanted = args.activation_checkpointing if five else args.gradient_checkpointing
    if not wanted:
        yield
        return
    if five:  # in train()
        kwargs = dict(args.activation_checkpointing_kwargs or {})
        # train()'s own keys, given to the method; the rest are torch.utils.checkpoint's
        layers = {key: kwargs.pop(key) for key in ("every_n_layers", "offload") if key in kwargs}
        if hasattr(hf_model, "activation_checkpointing_enable"):
            enable = functools.partial(hf_model.activation_checkpointing_enable,
                                       activation_checkpointing_kwargs=kwargs or None, **layers)
        else:
            enable = functools.partial(hf_model.gradient_checkpointing_enable,
                                       gradient_checkpointing_kwargs=kwargs or None, **layers)
    else:  # in _inner_training_loop
        enable = functools.partial(hf_model.gradient_checkpointing_enable,
                                   gradient_checkpointing_kwargs=args.gradient_checkpointing_kwargs)
    was_on = _checkpointing_on(model)
    # on every module: a PEFT model's enabling runs on (and keeps them in) its base model
    modules = list(model.modules())
    hooks_before = [hook for module in modules for hook in _input_grad_hooks(module)]
    with contextlib.ExitStack() as stack:
        for module in modules:
            stack.enter_context(_attributes_kept(module, _INPUT_GRAD_HOOKS))
        enable()
        try:
            yield
        finally:
            if not was_on:
                disable = getattr(hf_model, "activation_checkpointing_disable", None)
                (disable or hf_model.gradient_checkpointing_disable)()
            for module in modules:
                for hook in _input_grad_hooks(module):
                    if not any(hook is kept for kept in hooks_before):
                        hook.remove()


@contextlib.contextmanager
def _neftune_as_in_training(trainer: Trainer, model: torch.nn.Module) -> Iterator[None]:
    """NEFTune's noise on the input embeddings (``args.neftune_noise_alpha``), hooked as
    ``train()`` hooks it (transformers 5's ``activate_neftune``, 4.x's
    ``trainer._activate_neftune``), and unhooked afterwards as ``train()`` unhooks it."""
    if getattr(trainer, "neftune_noise_alpha", None) is None:
        yield
        return
    hf_trainer: Any = trainer  # (4.x's methods)
    try:
        from transformers.integrations.neftune import activate_neftune, deactivate_neftune
    except ImportError:  # transformers 4.x: the Trainer's own methods
        hf_trainer._activate_neftune(model)
        off = functools.partial(hf_trainer._deactivate_neftune, model)
    else:
        handle = activate_neftune(model, trainer.neftune_noise_alpha, trainer.accelerator)
        off = functools.partial(deactivate_neftune, model, handle, trainer.accelerator)
    try:
        yield
    finally:
        off()


def _optimizer_step(trainer: Trainer, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer) -> Callable[[], torch.Tensor]:
    """One optimizer step as ``train()`` takes it (:func:`range_test` says how), on the next
    batches; it returns the step's loss."""
    args, accelerator = trainer.args, trainer.accelerator
    batches = _endless_batches(trainer)
    started = False

    def step() -> torch.Tensor:
        nonlocal started
        if not started and accelerator.num_processes > 1:
            # DDP copies the first process's weights and buffers to the others when it
            # wraps the model in train(); lr_range_test puts each process's own back after
            _from_first_process([*model.parameters(), *model.buffers()])
        started = True
        model.zero_grad()  # as train() does before its first step and after each
        micro_batches, num_items_in_batch = trainer.get_batch_samples(
            batches, args.gradient_accumulation_steps, args.device)
        trainer.current_gradient_accumulation_steps = len(micro_batches)
        loss = torch.zeros((), device=args.device)  # float32, as the Trainer sums its logged loss
        for inputs in micro_batches:
            loss += trainer.training_step(model, inputs, num_items_in_batch)
        if accelerator.num_processes > 1:  # DDP's average, and the logs' mean over processes
            _average_over_processes(loss, model.parameters())
        scaler = accelerator.scaler
        if args.max_grad_norm > 0:
            if scaler is not None:  # the accelerator unscales only the optimizers it prepared
                scaler.unscale_(optimizer)
            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()
        return loss

    return step


def _endless_batches(trainer: Trainer) -> Iterator[Any]:
    """The training batches from a fresh ``trainer.get_train_dataloader()``, which starts
    again (on its next epoch) when exhausted."""
    dataloader = trainer.get_train_dataloader()
    while True:
        yield from dataloader


@torch.no_grad()
def _from_first_process(tensors: list[torch.Tensor]) -> None:
    """Copy the first process's value of each tensor into every process's, in place."""
    for tensor in tensors:
        torch.distributed.broadcast(tensor, src=0)


@torch.no_grad()
def _average_over_processes(loss: torch.Tensor,
                            parameters: Iterable[torch.nn.Parameter]) -> None:
    """Average the loss and the gradients in place over the processes, as DDP averages
    gradients (divided by the number of processes, then summed) with
    ``find_unused_parameters=True`` (the Trainer's default without gradient
    checkpointing): a parameter that has a gradient on some process only gets the average
    everywhere, its gradient counted as zero where it had none (a model that routes data,
    as a mixture of experts does, would otherwise leave the processes' collectives out of
    step: a hang); one that has none anywhere keeps none."""
    processes = torch.distributed.get_world_size()
    trained = [p for p in parameters if p.requires_grad]
    has_grad = torch.tensor([p.grad is not None for p in trained], dtype=torch.float32,
                            device=loss.device)
    torch.distributed.all_reduce(has_grad)
    # each divided before the sum, as DDP's all-reduce divides: a half-precision sum of the
    # processes' gradients can overflow where their average does not
    loss.div_(processes)
    torch.distributed.all_reduce(loss)
    for p, anywhere in zip(trained, has_grad.tolist(), strict=True):
        if anywhere:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            p.grad.div_(processes)
            torch.distributed.all_reduce(p.grad)


# -- an average of the weights to evaluate on -----------------------------------------

#: The average's state in each checkpoint folder, beside the Trainer's own files.
AVERAGE_FILE = "greedylr_average.pt"


@contextlib.contextmanager
def _weights_of(model: torch.nn.Module, source: torch.nn.Module) -> Iterator[None]:
    """``model`` holds ``source``'s parameters and buffers inside the block, its own after."""
    targets = [*model.parameters(), *model.buffers()]
    sources = [*source.parameters(), *source.buffers()]
    saved = [t.detach().clone() for t in targets]
    with torch.no_grad():
        for target, value in zip(targets, sources, strict=True):
            target.copy_(value)
    try:
        yield
    finally:
        with torch.no_grad():
            for target, value in zip(targets, saved, strict=True):
                target.copy_(value)


class WeightAveragingCallback(TrainerCallback):
    """Keeps a :func:`greedylr.averaged_model` of the Trainer's model; made by
    :func:`average_weights`.

    Attributes:
        averaged: the ``AveragedModel`` (``None`` before ``train()``); its ``.module`` is
            the averaged model, to evaluate or ``save_pretrained``.
        evaluate_average: while True (the default), ``trainer.evaluate()`` scores the
            average; set it False to score the model's own weights.
    """

    def __init__(self, trainer: Trainer, gamma: float) -> None:
        self._trainer = trainer
        self._gamma = gamma
        self.averaged: AveragedModel | None = None
        self.evaluate_average = True
        self.resume_from: str | None = None

    @property
    def model(self) -> torch.nn.Module:
        """The Trainer's model (unwrapped), the one averaged."""
        model = self._trainer.model
        assert model is not None, "a Trainer has a model"
        return model

    def _load(self, checkpoint: str, why: str) -> None:
        assert self.averaged is not None
        path = Path(checkpoint) / AVERAGE_FILE
        if not path.is_file():
            logger.warning("%s has no %s (%s): the average starts again from these weights",
                           checkpoint, AVERAGE_FILE, why)
            return
        device = next(self.model.parameters()).device
        self.averaged.load_state_dict(torch.load(path, map_location=device, weights_only=True))

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.averaged = averaged_model(self.model, self._gamma)
        if self.resume_from is not None:
            self._load(self.resume_from, "resumed from it")

    def on_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.averaged is not None and not self._trainer.accelerator.optimizer_step_was_skipped:
            self.averaged.update_parameters(self.model)

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        folder = Path(str(args.output_dir)) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if self.averaged is None or not state.is_world_process_zero:
            return
        if not folder.is_dir():
            raise FileNotFoundError(
                f"the checkpoint {folder} the Trainer just saved is not there: "
                "average_weights() does not support hyperparameter search output folders")
        torch.save(self.averaged.state_dict(), folder / AVERAGE_FILE)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        # load_best_model_at_end loads the best checkpoint's own weights: its average too
        if args.load_best_model_at_end and state.best_model_checkpoint:
            self._load(state.best_model_checkpoint, "the best checkpoint")


def _wrap_train(trainer: Trainer, callback: WeightAveragingCallback) -> None:
    original: Callable[..., Any] = trainer.train

    def train(resume_from_checkpoint: str | bool | None = None, *args: Any, **kwargs: Any) -> Any:
        if resume_from_checkpoint is True:
            callback.resume_from = get_last_checkpoint(trainer.args.output_dir)
        else:
            callback.resume_from = resume_from_checkpoint or None
        return original(resume_from_checkpoint, *args, **kwargs)

    trainer.train = train  # type: ignore[method-assign]


def _wrap_evaluate(trainer: Trainer, callback: WeightAveragingCallback) -> None:
    original: Callable[..., dict[str, float]] = trainer.evaluate

    def evaluate(*args: Any, **kwargs: Any) -> dict[str, float]:
        if callback.averaged is None or not callback.evaluate_average:
            return original(*args, **kwargs)
        with _weights_of(callback.model, callback.averaged.module):
            return original(*args, **kwargs)

    trainer.evaluate = evaluate  # type: ignore[method-assign]


def average_weights(trainer: Trainer, gamma: float = DEFAULT_GAMMA) -> WeightAveragingCallback:
    """Evaluate ``trainer``'s model on a running average of its weights.

    Why (GreedyLR stands at a high LR mid-run; the average scores like an annealed model)
    and what it measured: ``greedylr.averaging``. With :func:`attach`, the evaluation
    metric GreedyLR receives is the average's, as in the studies.

    The average (a :func:`greedylr.averaged_model`, on the model's device: one more copy
    of the weights) is updated after every optimizer step that was not skipped;
    ``trainer.evaluate()`` swaps it in and the model's own weights back afterwards (a
    third copy while it runs). Each checkpoint holds it (``greedylr_average.pt``), and
    ``train(resume_from_checkpoint=...)`` restores it; a checkpoint without one restarts
    it from the resumed weights, with a warning. With ``load_best_model_at_end`` the best
    checkpoint's average is loaded too. The model itself trains and is saved as without
    it. At the end of a run whose LR has annealed, the model's own weights can score
    better (``callback.evaluate_average = False``): evaluate both.

    Args:
        trainer: a ``transformers.Trainer`` or a subclass, before ``train()``.
        gamma: :func:`greedylr.power_ema`'s exponent (7: the last ~10% of the run so far).

    Returns:
        The registered :class:`WeightAveragingCallback`.

    Raises:
        ValueError: under DeepSpeed or FSDP (the model is sharded: not supported), or a
            second call on the same Trainer.
    """
    power_ema(gamma)  # validates gamma now, not at train()
    if getattr(trainer, "is_deepspeed_enabled", False) or getattr(trainer, "is_fsdp_enabled",
                                                                   False):
        raise ValueError("average_weights() does not support DeepSpeed or FSDP: their models "
                         "are sharded across ranks")
    if any(isinstance(cb, WeightAveragingCallback) for cb in trainer.callback_handler.callbacks):
        raise ValueError("average_weights() was already called on this Trainer")
    callback = WeightAveragingCallback(trainer, gamma)
    _wrap_train(trainer, callback)
    _wrap_evaluate(trainer, callback)
    trainer.add_callback(callback)
    return callback

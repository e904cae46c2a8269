"""GreedyLR as a torch ``LRScheduler``: a thin adapter over :mod:`greedylr.rule`.

This module feeds the rule the loss and writes its LRs into the optimizer; the float
step is one function because it runs on every step of every run
(``docs/guides/overhead.md``). The rest lives by job: :mod:`greedylr._guards` (the
checks that keep misuse loud), :mod:`greedylr._device_mode` (the rule on the LRs'
device), :mod:`greedylr._checkpoint` (state dicts and copies), :mod:`greedylr._values`
(losses in, LRs out).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, Literal

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from greedylr import _guards as guards
from greedylr import distributed, tensor_rule
from greedylr import rule as _rule
from greedylr._checkpoint import Checkpointing
from greedylr._device_mode import Decoder, DeviceMode, keep_recording_out_of_compile
from greedylr._values import HELD_OUT, as_float, write_lrs
from greedylr.config import _plain, check_budget_change
from greedylr.rule import Bound, Event, GreedyConfig, RuleState, add_group, init, update
from greedylr.trace import Trace

__all__ = ["GreedyLR", "as_float"]

# True only while dynamo traces (it folds the call to a constant); a plain ``return False``
# when eager, where ``is_compiling`` also asks TorchScript: the float step asks every step
_is_dynamo_compiling = getattr(torch.compiler, "is_dynamo_compiling", torch.compiler.is_compiling)

logger = logging.getLogger("greedylr")

_TRANSFORMERS_KEYS = {
    "mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "warmup",
    "min_lr", "max_lr", "eps", "verbose", "smooth", "window_size", "reset_start",
}
# transformers' "rel" is the product whatever the sign (torch's ReduceLROnPlateau's too),
# not the sign-aware bar of greedylr's "rel"
_TRANSFORMERS_THRESHOLD_MODES: dict[str, Literal["rel_product", "abs"]] = {
    "rel": "rel_product", "abs": "abs"}


class GreedyLR(DeviceMode, Checkpointing, LRScheduler):
    """Loss-driven learning rate: raise it while the loss improves, lower it when not.

    Call ``step(loss)`` after each ``optimizer.step()``. The rule's knobs, every keyword
    but the four below, are the fields of :class:`~greedylr.GreedyConfig`: the same names,
    types and defaults, documented there; ``self.config`` holds them.

    Args:
        optimizer: the wrapped optimizer.
        sync_ranks: under ``torch.distributed`` with more than one process, average
            the loss across ranks before deciding, so that every rank makes the same
            decision (one all-reduce per step). The all-reduce also checks that every
            rank's configuration and base LRs are the same (each rank's own would give
            each its own LR from the same loss): where not, every rank raises
            ``greedylr.distributed.RanksDisagree`` naming what differs (device mode,
            which reads nothing back in its steps, compares them when it is built, with
            one all-reduce and a read there, and after a change at the next step). Turn
            off only if the loss you pass is already global.
        trace: keep the per-step record and the events in ``self.trace``: True (a
            :class:`~greedylr.trace.Trace` in memory), False (none), or a ``Trace`` you
            built, e.g. ``Trace(sinks=["run.jsonl", writer])``. The scheduler stores its
            configuration and LR bounds in ``trace.meta``. Attach signals with
            ``sched.trace.log(grad_norm=..., source="shard-3")`` before ``step(loss)``.
        device_mode: keep the rule's state on the device of the learning rates and
            decide with tensor ops (:mod:`greedylr.tensor_rule`), so that
            ``step(loss_tensor)`` never reads anything back to the host. ``None``
            (default): on when every group's ``lr`` is a tensor, all on one
            accelerator (CUDA, MPS, ...), or all on one device with ``compile_rule``
            set; and the config does not ask for ``on_nonfinite="raise"``, which
            needs a host read. Tensor LRs on the CPU otherwise get float mode:
            reading a CPU tensor is no sync, and the float rule costs a few
            microseconds where the tensor rule costs hundreds. Either mode writes a
            tensor LR in place (``fill_``), so a compiled optimizer does not
            recompile as the LR changes. ``True`` requires tensor LRs (on any
            device); ``False`` forces the float rule.
            Both modes give the same LRs (see ``_step_on_device``), the same
            events and the same checkpoints. In device mode the trace rows and
            events are buffered on the device and read when you look at them (or
            every ``trace.flush_every`` steps, a sync then: pass
            ``trace=Trace(flush_every=0)`` for none), and ``sched.state`` is a host copy.
        compile_rule: device mode only: run the rule through ``torch.compile``
            (``True``: inductor; or a backend name), so that an eager training loop
            launches a few fused kernels per step instead of about a hundred small
            ones (:func:`greedylr.tensor_rule.compile_step`: one graph, compiled
            once). The first step pays the compilation (seconds). Not needed when you
            compile your training step yourself: the rule is traced into it. The
            device-mode step updates its state in place, so it can be captured in a
            CUDA graph (with ``trace=False``: the trace keeps a row per step on the
            host side, which a replay does not run).

    Calls that come without an optimizer step in between (Accelerate calls ``step``
    once per process; a GradScaler skips the optimizer step on overflow) are ignored
    once the optimizer has stepped at least once: the rule advances exactly once per
    optimizer step.

    Examples:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> sched = GreedyLR(opt, patience=2, smoothing="none")
        >>> for _ in range(4):
        ...     loss = model(torch.ones(1, 2)).pow(2).mean()
        ...     loss.backward(); opt.step(); opt.zero_grad()
        ...     sched.step(loss)
        >>> len(sched.get_last_lr())
        1
    """

    def __init__(
        self,
        optimizer: Optimizer,
        *,
        sync_ranks: bool = True,
        trace: bool | Trace = True,
        device_mode: bool | None = None,
        compile_rule: bool | str = False,
        factor: float = 0.95,
        patience: int = 10,
        increase_patience: int | None = None,
        compare: Literal["best", "recent_best", "previous"] = "recent_best",
        threshold: float = 0.0,
        threshold_mode: Literal["rel", "abs", "rel_product"] = "rel",
        mode: Literal["min", "max"] = "min",
        smoothing: Literal["window", "ema", "none"] = "ema",
        window: int = 50,
        warmup: int = 0,
        warmup_start_factor: float = 0.0,
        cooldown: int = 0,
        hold_after_increase: int = 0,
        min_lr: Bound = None,
        min_lr_ratio: float | None = 0.1,
        max_lr: Bound = None,
        max_lr_ratio: float | None = 10.0,
        reset_patience: int | None = None,
        eps: float = 0.0,
        on_nonfinite: Literal["skip", "decrease", "raise"] = "skip",
        check_bounds: bool = True,
        total_steps: int | None = None,
        anneal_fraction: float = 0.2,
        anneal_shape: Literal["linear", "cosine", "1-sqrt"] = "1-sqrt",
        noise_threshold: float = 0.0,
        payoff_patience: int | None = None,
        eval_mode: Literal["min", "max"] = "min",
        eval_factor: float = 0.7,
        eval_patience: int | None = 0,
        eval_pace: float = 0.5,
        eval_compound_margin: float | None = 0.03,
        base_schedule: Literal["constant", "cosine"] = "constant",
        blowup_ratio: float | None = 100.0,
        blowup_raw_check: bool = True,
        floor_anneals_to_zero: bool = True,
        spike_ratio: float | None = None,
        anneal_to_zero: bool = False,
        stalled_anneals_to_zero: bool = True,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            # first: the mode choice below reads param_groups (an AttributeError for a
            # model), and an object that has them would get initial_lr written before
            # torch's LRScheduler refused it. The wrappers GreedyLR runs under
            # (Accelerate's, Lightning's, ZeroRedundancyOptimizer, schedule-free) are
            # Optimizer subclasses.
            hint = (": pass the optimizer, not the model" if isinstance(optimizer, torch.nn.Module)
                    else "")
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer{hint} "
                            "(GreedyLR(torch.optim.AdamW(model.parameters()), ...))")
        # The knobs are spelled out for type checkers and IDEs; GreedyConfig stays their
        # one definition (tests/test_typed_api.py keeps the two in step).
        knobs = locals()
        self.config = GreedyConfig(**{f.name: knobs[f.name] for f in fields(GreedyConfig)})
        self._device_state: tensor_rule.TensorState | None = None
        self._rule_state: RuleState | None = None  # the host state; None in device mode
        self._device = self._choose_device(optimizer, device_mode, bool(compile_rule))
        self._compile_rule = compile_rule
        self._step_rule = self._rule_step(compile_rule)
        self.sync_ranks = sync_ranks
        self._unchecked: str | None = None  # why the first LRs cannot start a run
        # this rank's configuration and base LRs, checked against every other rank's in
        # the loss's all-reduce (_rank_digest)
        self._digest_key: tuple[Any, ...] | None = None
        self._digest = distributed.Digest()
        self._digest_verified = False
        self.state = self._initial_state(optimizer)
        if self._device is not None:
            keep_recording_out_of_compile()
            self._to_device(self.state)
        self.trace: Trace | None = self._make_trace(trace)
        if self._device is not None and self.trace is not None:
            self.trace.set_decoder(Decoder(self))
        self._pending_sum: float | torch.Tensor = 0.0  # a tensor in device mode
        self._pending_count = 0
        self._eval_events: list[Event] = []
        self._next_lrs: Sequence[float | torch.Tensor] = self.state.lrs
        self._optimizer_steps = guards.StepCounter()
        self._hook = guards.register_counter(optimizer, self._optimizer_steps)
        self._steps_seen = 0
        self._warned_order = False
        self._written: Sequence[Any] | None = None
        self._float_lrs = False  # set with _written: see _set_marks
        self._held: tuple[float, ...] | None = None  # set with _written: see _set_marks
        # The base class's constructor makes one initial ``step()`` call with no loss;
        # our own flag marks it (torch's ``_is_initial`` exists only from torch 2.8 on).
        self._constructing = True
        try:
            super().__init__(optimizer)
        finally:
            self._constructing = False
        # the base class's initial step wrote the initial LRs (_apply), on every torch
        self._set_marks(self._next_lrs if self._step_count else None)
        if self._device is not None and sync_ranks and distributed.is_distributed():
            # device mode reads no verdict back in its steps: the ranks compare their
            # digests here, once (an all-reduce of its own, and a read), and every rank
            # raises if they differ. Float mode compares them in every step's all-reduce.
            distributed.agreed_mean(0.0, distributed.BUILD, self._rank_digest())
            self._digest_verified = True

    def _initial_state(self, optimizer: Optimizer) -> RuleState:
        """The rule's state for a fresh run: from each group's ``lr``, as the user set it.

        A group may carry another ``initial_lr``: an earlier scheduler's (a run restarted
        from new LRs, as the chaining error advises), or one restored by
        ``optimizer.load_state_dict`` before this scheduler was built (a resume, whose
        :meth:`load_state_dict` then replaces this state). Either way the run starts from
        ``lr``, and ``initial_lr`` is set to it (torch's ``base_lrs``). Where ``lr`` cannot
        start a run (outside its bounds: a restored LR inside a warmup ramp or a final
        cooldown), the state is built from ``initial_lr`` and the error is raised at the
        first step, unless ``load_state_dict`` comes first.
        """
        groups = optimizer.param_groups
        base = [as_float(group["lr"]) for group in groups]
        carried = [i for i, group in enumerate(groups)
                   if "initial_lr" in group and as_float(group["initial_lr"]) != base[i]]
        try:
            state = init(self.config, base)
        except ValueError as exc:
            if not carried:
                raise
            try:
                state = init(self.config, [as_float(g["initial_lr"]) if "initial_lr" in g
                                           else as_float(g["lr"]) for g in groups])
            except ValueError:
                raise exc from None
            self._unchecked = (
                f"{exc} (parameter group(s) {carried} carry an initial_lr other than their "
                "lr, an earlier scheduler's or a restored optimizer's: GreedyLR starts from "
                "each group's lr, unless load_state_dict restores a run before the first "
                "step)")
            return state
        if carried:
            logger.info(
                "GreedyLR: parameter group(s) %s start from their lr %s, not the initial_lr "
                "they carry (an earlier scheduler's, or a restored optimizer's; "
                "load_state_dict restores a saved run's)", carried, [base[i] for i in carried])
        for group in groups:
            lr = group["lr"]
            group["initial_lr"] = lr.clone() if isinstance(lr, torch.Tensor) else lr
        guards.warn_zero_lrs(base, 0)
        return state

    @classmethod
    def from_transformers(cls, optimizer: Optimizer, **kwargs: Any) -> GreedyLR:
        """Build the scheduler that reproduces ``transformers.GreedyLR(optimizer, **kwargs)``.

        Same keyword arguments and defaults; the same LR trajectory on the same finite
        loss sequence, also where an integration tells it the budget
        (:meth:`set_total_steps`) or a held-out value (:meth:`observe_eval`), which
        transformers' rule does not use. Differences, on purpose: non-finite losses are
        skipped instead of poisoning the smoothing window, and ``verbose`` goes to logging.
        transformers' ``threshold_mode="rel"`` becomes ``"rel_product"`` (its bar, the
        product ``best * (1 - threshold)``, ``best * (1 + threshold)`` in max mode, whatever
        the sign of ``best``; greedylr's ``"rel"`` is sign-aware).
        """
        unknown = set(kwargs) - _TRANSFORMERS_KEYS
        if unknown:
            raise TypeError(f"unexpected transformers.GreedyLR arguments: {sorted(unknown)}")
        get = kwargs.get
        # as GreedyConfig reads them: a NumPy array or a 1-d tensor is one value per group,
        # a NumPy scalar or 0-d tensor a number
        min_lr, max_lr = _plain(get("min_lr", 1e-3)), _plain(get("max_lr", 1.0))
        for value, name in ((min_lr, "min_lr"), (max_lr, "max_lr")):
            if isinstance(value, (list, tuple)) and len(value) != len(optimizer.param_groups):
                raise ValueError(
                    f"expected {len(optimizer.param_groups)} {name}s, got {len(value)}"
                )
        threshold_mode = get("threshold_mode", "abs")
        if threshold_mode not in _TRANSFORMERS_THRESHOLD_MODES:  # transformers' check
            raise ValueError(f"threshold mode {threshold_mode} is unknown!")
        scheduler = _TransformersGreedyLR(
            optimizer,
            mode=get("mode", "min"),
            factor=get("factor", 0.95),
            patience=get("patience", 10),
            threshold=get("threshold", 1e-6),
            threshold_mode=_TRANSFORMERS_THRESHOLD_MODES[threshold_mode],
            cooldown=get("cooldown", 0),
            hold_after_increase=get("warmup", 0),
            min_lr=min_lr,
            max_lr=max_lr,
            min_lr_ratio=None,
            max_lr_ratio=None,
            eps=get("eps", 1e-8),
            smoothing="window" if get("smooth", False) else "none",
            window=get("window_size", 50),
            reset_patience=max(get("reset_start", 500), 1),
            compare="best",
            warmup=0,
            check_bounds=False,
            # transformers' rule has neither: a budget or a held-out value that an
            # integration passes along must not move its trajectory
            anneal_fraction=0.0,
            eval_patience=None,
            blowup_ratio=None,
            blowup_raw_check=False,
            floor_anneals_to_zero=False,
            spike_ratio=None,
            anneal_to_zero=False,
            stalled_anneals_to_zero=False,
        )
        # the bounds as the config resolved them (one per group), once it accepted them
        state = scheduler.state
        if any(f > lr for f, lr in zip(state.min_lrs, state.base_lrs)):
            logger.warning(
                "min_lr %s is above the initial lr %s: decreases will be no-ops, as in "
                "transformers.GreedyLR", state.min_lrs, state.base_lrs,
            )
        return scheduler

    # -- feeding the loss -------------------------------------------------------

    def observe(self, loss: Any) -> None:
        """Record a loss for the next ``step()``; several observations are averaged.

        This is the path for framework integrations that see the loss where they
        cannot step (a micro-batch hook), and step where they cannot see the loss.
        """
        if self._unchecked is not None:  # the first LRs' deferred error (_initial_state)
            raise ValueError(self._unchecked)
        if self._written is not None:  # before _sync_groups, which marks the LRs it finds
            guards.check_lrs_are_ours(self.optimizer.param_groups, self._written)
        if len(self.optimizer.param_groups) != len(self.base_lrs):
            self._sync_groups()
        if self._device_state is not None:
            self._pending_sum = self._pending_sum + self._device_loss(loss)
        else:
            self._pending_sum += as_float(loss)
        self._pending_count += 1

    def step(self, loss: Any = None) -> None:
        """Decide on ``loss`` (or on the mean of the observed losses) and apply the LRs.

        Args:
            loss: the training loss of this optimizer step: a number, or a one-element
                tensor. May be omitted only if :meth:`observe` was called since the
                last step.

        Raises:
            TypeError: if no loss was given or observed.
            RuntimeError: if another scheduler (or anything else) changed the LR since
                the last step (checked for float LRs and, in float mode, tensor LRs).
            FloatingPointError: for a non-finite loss with ``on_nonfinite="raise"``
                (under ``torch.distributed``: a non-finite loss on any rank, and every
                rank raises). The step is not made: the rule's state, the step counts,
                the LRs and the trace are as they were (the losses observed for it are
                dropped), so a retry with a finite loss is that optimizer step's.
        """
        if self._constructing:
            # the base class's initial step: set the initial LRs as every later step
            # does (tensor LRs filled in place, on every torch version)
            self._apply(self._next_lrs)
            return
        if self._device_state is None and _is_dynamo_compiling():
            # traced, every new LR (and each LR tensor's version counter, which the check
            # for foreign writes reads) would be a constant of the graph, a recompile per
            # step: float mode runs eagerly, so that a compiled training step keeps its graph
            torch.compiler.disable(GreedyLR.step)(self, loss)
            return
        # Eager, without the disable wrapper (it costs as much as the float rule), and the
        # float step written out in this one function: it runs on every step of every run,
        # where each call saved is a measurable share of its cost. The checks are cheap
        # tests here; what they call runs only when something is wrong.
        if self._unchecked is not None:  # the first LRs' deferred error (_initial_state)
            raise ValueError(self._unchecked)
        groups = self.optimizer.param_groups
        written = self._written
        if written is not None:  # before _sync_groups, which marks the LRs it finds
            for group, mark in zip(groups, written):
                if group["lr"] is not mark:  # not the very object written: compare values
                    guards.check_lrs_are_ours(groups, written)
                    break
        if len(groups) != len(self.base_lrs):
            self._sync_groups()
        count = self._optimizer_steps.count
        if count == self._steps_seen and count:
            # A repeated call (Accelerate calls once per process, the later ones often
            # without a loss) or a skipped optimizer step: nothing new to decide, and
            # what was observed for it must not leak into the next step.
            self._pending_sum, self._pending_count = 0.0, 0
            logger.debug("GreedyLR.step ignored: no optimizer step since the last one")
            return
        if loss is None and not self._pending_count:
            # a step that will fail for want of a loss: if SequentialLR or ChainedScheduler
            # makes it, say that they cannot hold GreedyLR (before the order warning)
            guards.refuse_container_caller()
        if count == self._steps_seen and not self._warned_order:
            self._warned_order = True
            guards.warn_order()
        if self._device_state is not None:
            self._step_on_device(loss, count)
            return
        if self.sync_ranks and distributed.is_distributed():
            # every rank reaches the all-reduce, one without a loss too (then all raise)
            value = self._agreed(lambda: as_float(self._loss_or_mean(loss)), distributed.STEP)
            self._pending_sum, self._pending_count = 0.0, 0
        elif type(loss) is float and not self._pending_count:
            value = loss
        else:
            value = as_float(self._loss_or_mean(loss))
            self._pending_sum, self._pending_count = 0.0, 0
        state = self._rule_state
        assert state is not None  # None only in device mode
        decision = update(self.config, state, value)
        # after the decision: a step refused for its loss (malformed, or non-finite with
        # on_nonfinite="raise", which leaves the rule's state as it was) can be retried
        self._steps_seen = count
        lrs, events = decision.lrs, decision.events
        if events and logger.isEnabledFor(logging.DEBUG):
            for event in events:
                logger.debug(event.reason)
        self._next_lrs = lrs
        self._step_count += 1
        self.last_epoch += 1
        if self._float_lrs:  # then the floats written are the marks: nothing to test
            for group, lr in zip(groups, lrs):
                group["lr"] = lr
            self._last_lr = list(lrs)
            self._written = lrs
        elif lrs != self._held:  # most steps change no LR: the tensors already hold it
            self._write(lrs)
        if self.trace is not None:  # last: the rule and the optimizer agree whatever it does
            self.trace.record(state.step, value, decision.smoothed, lrs, events)

    def _agreed(self, local: Callable[[], float], call: str) -> float:
        """``local()`` averaged across ranks (``greedylr.distributed.agreed_mean``), where
        every rank's configuration and base LRs are this one's (:meth:`_rank_digest`).

        A rank whose ``local()`` raises (no loss, a malformed one) takes part in the
        all-reduce all the same, with no value, then raises its own error; the others
        raise ``greedylr.distributed.RanksDisagree`` rather than wait in it.
        """
        digest = self._rank_digest()
        try:
            value = local()
        except (TypeError, ValueError) as exc:
            try:
                distributed.agreed_mean(None, call, digest)
            except distributed.RanksDisagree:
                pass
            raise exc
        return distributed.agreed_mean(value, call, digest)

    def _agreed_on_device(self, loss: Any) -> torch.Tensor:
        """Device mode's loss averaged across ranks, without a host read: converted to the
        state's dtype first, so that the sum is float mode's (float64; a float32 sum of
        float32 losses rounded away differences float mode sees), and NaN, a skipped step,
        where a rank has none (that rank raises its own error after the all-reduce, which
        it still takes part in: the others do not wait for it forever); the digest of
        :meth:`_rank_digest` rides in the same all-reduce.

        Ranks whose configurations or base LRs differ decide on NaN (a skipped step, as
        where a rank has no loss). The constructor compared them (``__init__``); at the
        first step after this rank's changed since (``load_state_dict``, a group added,
        ``set_total_steps``) the verdict is read back, once, and every rank that reads it
        raises ``greedylr.distributed.RanksDisagree``: no rank is at fault there to raise
        alone. Not read while ``torch.compile`` traces the step or a CUDA graph captures
        it (the next eager step reads it; replays of a captured graph read nothing, and
        skip every step where the digests differ).
        """
        assert self._device_state is not None
        like = self._device_state.lrs
        digest = self._rank_digest()
        verify = (not self._digest_verified and not _is_dynamo_compiling()
                  and not (like.is_cuda and torch.cuda.is_current_stream_capturing()))
        try:
            local = self._device_loss(self._loss_or_mean(loss))
        except (TypeError, ValueError):
            distributed.agreed_mean_on_device(None, distributed.STEP, like, digest)
            raise
        mean = distributed.agreed_mean_on_device(local, distributed.STEP, like, digest,
                                                 verify=verify)
        if verify:
            self._digest_verified = True
        return mean

    def _rank_digest(self) -> distributed.Digest:
        """What every rank's GreedyLR must share (its configuration and base LRs, the
        latter as the state setter keeps them on the host), digested for the all-reduce
        of ``_agreed``; made again when either changes (a new budget, a group added, a
        resume: a new object each), which ``is`` tests catch cheaply every step."""
        key = self.__dict__.get("_digest_key")  # absent in a copy pickled by 0.11.9 or before
        bases = self.__dict__.get("_host_bases")
        if bases is None:  # such a copy: its state's (a read in device mode, once)
            bases = self._host_bases = list(self.state.base_lrs)
        if key is None or key[0] is not self.config or key[1] is not bases:
            self._digest = distributed.Digest(self.config.to_dict(), bases)
            self._digest_key = (self.config, bases)
            self._digest_verified = False
        return self._digest

    def _loss_or_mean(self, loss: Any) -> Any:
        """The loss this step decides on: ``loss``, else the mean of the observed losses.

        The caller converts it, then clears the observations: they must not leak into the
        next step (and stay if the conversion refuses the loss).
        """
        if loss is not None:
            return loss
        if self._pending_count == 0:
            raise TypeError(
                "GreedyLR.step() needs the loss: call step(loss), or observe(loss) before step()"
            )
        return self._pending_sum / self._pending_count

    def _apply(self, lrs: Sequence[float | torch.Tensor]) -> None:
        """What ``LRScheduler.step`` does after ``get_lr``, without its per-call machinery.

        The base class's step (warning checks, a context manager, a generic write per
        group) costs as much as the whole rule; this keeps its contract: counters,
        tensor LRs filled in place, ``_last_lr`` holding copies.
        """
        self._step_count += 1
        self.last_epoch += 1
        self._write(lrs)

    def _write(self, lrs: Sequence[float | torch.Tensor]) -> None:
        """Set every group's LR (tensor LRs in place), ``_last_lr``, and what the check
        for foreign LR writes compares with."""
        self._last_lr = write_lrs(self.optimizer.param_groups, lrs)
        self._set_marks(lrs)

    def _set_marks(self, held: Sequence[float | torch.Tensor] | None = None) -> None:
        """Note what each group's LR is now, for the check for foreign writes: the
        float, or a tensor and its version counter (``_written``); whether every LR
        is a float (``_float_lrs``), which lets the float step skip the type tests; and
        ``held``, the floats just written (``_held``), which lets the float step skip
        writing tensor LRs that already hold the rule's LRs (None: unknown, write).

        In device mode no marks: the check would read the host (or, under
        ``torch.compile``, break the graph), so it is not made there.
        """
        self._held = None
        if self._device_state is not None:
            self._written, self._float_lrs = None, False
            return
        self._written, self._float_lrs = guards.lr_marks(self.optimizer.param_groups)
        floats = () if held is None else tuple(
            lr for lr in held if not isinstance(lr, torch.Tensor))
        if held is not None and len(floats) == len(held):
            self._held = floats

    def _update_lr(self, epoch: int | None = None) -> None:
        """torch's LR write; SequentialLR calls it with ``epoch=0`` to switch schedulers."""
        if epoch is not None:
            raise RuntimeError(f"GreedyLR cannot be switched to by SequentialLR. {guards.CHAINING}")
        super()._update_lr(epoch)

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """The LR of every parameter group, including groups added since the last step."""
        if len(self.optimizer.param_groups) != len(self.base_lrs):
            self._sync_groups()
        return self._last_lr

    def _sync_groups(self) -> None:
        """Schedule the groups added by ``optimizer.add_param_group`` since the last call.

        Each new group starts from its own LR (its ``initial_lr`` if it has one, as after
        ``optimizer.load_state_dict``), with bounds relative to it; the rule's statistics
        are shared. In device mode its LR must be a tensor on the scheduler's device.
        """
        groups = self.optimizer.param_groups
        known = len(self.base_lrs)
        if len(groups) < known:
            raise RuntimeError(
                f"the optimizer has {len(groups)} parameter groups, GreedyLR schedules {known}: "
                "groups cannot be removed during a run"
            )
        new = groups[known:]
        if self._device is not None:
            bad = [known + i for i, g in enumerate(new) if not (
                isinstance(g["lr"], torch.Tensor) and g["lr"].device == self._device)]
            if bad:
                raise ValueError(
                    f"device mode: the new parameter group(s) {bad} need a tensor lr on "
                    f"{self._device}, as the others (e.g. lr=torch.tensor(1e-3, device=...))"
                )
        bases = []
        for group in new:
            lr = group["lr"]
            group.setdefault("initial_lr", lr.clone() if isinstance(lr, torch.Tensor) else lr)
            bases.append(as_float(group["initial_lr"]))
        # a copy (in device mode a host copy: one read, once per added group): a group
        # refused after another was added leaves the state as it was
        state = copy.deepcopy(self.state)
        for i, base in enumerate(bases, start=known):
            try:
                add_group(self.config, state, base)
            except ValueError as exc:
                raise ValueError(f"GreedyLR cannot schedule parameter group {i}, added by "
                                 f"optimizer.add_param_group: {exc}") from exc
        guards.warn_zero_lrs(bases, known)
        self.state = state  # back to the device in device mode
        self.base_lrs.extend(bases)
        self._last_lr.extend(write_lrs(new, state.lrs[known:]))
        if self._device_state is not None:
            self._next_lrs = list(self._device_state.lrs.reshape(-1).unbind())
        else:
            self._next_lrs = tuple(state.lrs)
            self._set_marks()
        if self.trace is not None:
            for _ in new:
                self.trace.add_group()
            self.trace.meta.update(base_lrs=list(state.base_lrs), min_lrs=list(state.min_lrs),
                                   max_lrs=list(state.max_lrs))
        logger.info("GreedyLR: scheduling new parameter group(s) %s from lr %s (bounds %s..%s)",
                    list(range(known, len(groups))), bases, state.min_lrs[known:],
                    state.max_lrs[known:])

    @property
    def state(self) -> RuleState:
        """The rule's state. In device mode a host copy, taken (with a sync) when read."""
        if self._device_state is not None:
            return tensor_rule.to_rule_state(tensor_rule.select(self._device_state, 0))
        assert self._rule_state is not None  # None only in device mode
        return self._rule_state

    @state.setter
    def state(self, value: RuleState) -> None:
        # the base LRs of the digest the ranks compare (_rank_digest), kept on the host:
        # device mode reads nothing back for it
        self._host_bases = list(value.base_lrs)
        if self._device_state is not None:
            self._to_device(value)
        else:
            self._rule_state = value

    @property
    def smoothed_loss(self) -> float | torch.Tensor | None:
        """The smoothed loss of the last decision, read without a host transfer.

        Float mode: a float, None before the first finite loss. Device mode: a 0-d tensor
        on the device, NaN before the first finite loss (what an integration can log
        every step without a sync).
        """
        if self._device_state is not None:
            return self._device_state.smoothed.squeeze(0)  # a view: no read
        assert self._rule_state is not None  # None only in device mode
        return self._rule_state.smoothed

    def get_lr(self) -> list[float | torch.Tensor]:
        """The LRs decided by the last observation (torch's ``LRScheduler`` hook)."""
        return list(self._next_lrs)

    def _make_trace(self, trace: bool | Trace) -> Trace | None:
        groups = len(self.state.base_lrs)
        if isinstance(trace, Trace):
            if trace.num_groups not in (None, groups):
                raise ValueError(
                    f"trace has {trace.num_groups} LR columns, the optimizer {groups} groups"
                )
        elif isinstance(trace, bool):
            if not trace:
                return None
            trace = Trace(groups)
        else:
            raise TypeError(f"trace must be a bool or a greedylr.Trace, got {trace!r}")
        # what diagnose() and the plot need to read a trace without the scheduler
        for key, value in (("config", self.config.to_dict()),
                           ("base_lrs", list(self.state.base_lrs)),
                           ("min_lrs", list(self.state.min_lrs)),
                           ("max_lrs", list(self.state.max_lrs))):
            trace.meta.setdefault(key, value)
        return trace

    @property
    def events(self) -> list[Event]:
        """Every event so far, held-out ones included (only those if tracing is off)."""
        steps = [] if self.trace is None else list(self.trace.events)
        # stable: a held-out event of step t comes after that step's own events
        return sorted(steps + self._eval_events, key=lambda e: e.step)

    def set_total_steps(self, total_steps: int) -> None:
        """Tell the rule the run's length once it is known (``GreedyConfig.total_steps``).

        For integrations that learn the budget after the scheduler was built
        (Lightning's ``estimated_stepping_batches``). The final cooldown uses it, and a
        decaying ``base_schedule`` (from the next step on, its decay spans the new budget).

        Under a decaying ``base_schedule``, a new budget given past the warmup moves the
        decay, and the LR with it, at once: a warning says by how much.

        Raises:
            ValueError: for a bad count, once the final cooldown has started, for a
                budget whose cooldown would have started at a step already made (the LR
                would jump there), or, under a decaying ``base_schedule``, for a budget the
                run has made already (the LR would drop to 0).
        """
        state = self.state
        config = dataclasses.replace(self.config, total_steps=total_steps)
        check_budget_change(config, state.step, bool(state.anneal_from), self.config)
        self.config = config
        if self._device_state is not None:
            self._to_device(state)
        if self.trace is not None:
            self.trace.meta["config"] = self.config.to_dict()

    def observe_eval(self, value: Any) -> None:
        """Tell the rule a held-out value, after each evaluation (lower is better unless
        ``eval_mode="max"``).

        A value not better than the best so far (worse, or better by less than
        ``eval_pace`` times the training loss's relative fall since the last value)
        blocks increases until one is better again, and (after ``eval_patience`` of
        them) multiplies the LRs by ``eval_factor``: the training loss cannot see
        overfitting, the held-out value can. A value worse than the best by more than
        ``eval_compound_margin`` of it (3%) compounds the cut: the second such cut with
        no value counting as better in between takes ``eval_factor`` squared, the third
        its fourth power, as a too-large LR needs. During the warmup ramp (before the
        ``warmup``-th step, which ends it) a value only becomes the best so far if it is
        better: the ramp sets the LR, and a worse value blocks and cuts nothing. Takes
        effect from the next optimizer step. The events it produces are in
        :attr:`events` (not in the per-step trace, which has one row per training step).
        In device mode this reads the decision back to the host once per evaluation.

        Under ``torch.distributed`` (with ``sync_ranks``, and ``eval_patience`` not None)
        the value is averaged across ranks before it is judged, as the loss is in
        :meth:`step`: a collective, so every rank must call it, with its own value (a
        value that is already global is left as it is by the mean), the same number of
        times; never under ``if rank == 0:``. Ranks that do not all call it raise
        ``greedylr.distributed.RanksDisagree`` where one meets another's
        :meth:`step`.

        With ``mode="max"`` (a training metric where higher is better), ``eval_mode``
        still defaults to ``"min"``: right for a held-out loss, wrong for a held-out
        accuracy or reward, whose every improvement would then cut the LR. The first call
        logs a warning for that combination; pass ``eval_mode="max"`` for such a value.

        Args:
            value: the held-out metric: a number or a one-element tensor.

        Raises:
            RuntimeError: if anything else changed an LR since the last step (checked
                for float LRs and, in float mode, tensor LRs), as :meth:`step` does:
                this call writes every LR.
        """
        if self._unchecked is not None:  # the first LRs' deferred error (_initial_state)
            raise ValueError(self._unchecked)
        if self._written is not None:
            # as step and observe: it writes every LR, and would undo a foreign write
            # silently (before _sync_groups, which marks the LRs it finds as its own)
            guards.check_lrs_are_ours(self.optimizer.param_groups, self._written)
        if (self.config.mode == "max" and self.config.eval_mode == "min"
                and self.config.eval_patience is not None
                and not self.__dict__.get("_warned_eval_mode")):
            self._warned_eval_mode = True
            logger.warning(
                "GreedyLR: mode='max' with eval_mode='min' (its default, whatever the mode): "
                "a lower held-out "
                "value counts as better, right for a held-out loss; for an accuracy or a "
                "reward pass eval_mode='max', or each improvement cuts the LR")
        if len(self.optimizer.param_groups) != len(self.base_lrs):
            # a group added since the last step takes this cut too, as the rule's own
            # add_group then observe_eval does (else it joined at its full LR)
            self._sync_groups()
        if (self.sync_ranks and self.config.eval_patience is not None
                and distributed.is_distributed()):
            # the same value on every rank, so the same cut (a read in device mode too,
            # which observe_eval makes anyway)
            value = self._agreed(lambda: as_float(value, HELD_OUT), distributed.EVAL)
        if self._device_state is not None:
            lrs: Sequence[Any] = self._observe_eval_on_device(value)
        else:
            assert self._rule_state is not None  # None only in device mode
            decision = _rule.observe_eval(self.config, self._rule_state,
                                           as_float(value, HELD_OUT))
            self._eval_events += decision.events
            lrs = decision.lrs
        for event in self._eval_events[-1:]:
            logger.debug(event.reason)
        self._next_lrs = lrs
        self._write(lrs)

class _TransformersGreedyLR(GreedyLR):
    """:meth:`GreedyLR.from_transformers`: also takes transformers' ``step(metrics, epoch)``."""

    def step(  # type: ignore[override]
        self, loss: Any = None, epoch: int | None = None, *, metrics: Any = None
    ) -> None:
        """``step(loss)``, or transformers' ``step(metrics, epoch)`` call form.

        ``epoch``, as in ``transformers.GreedyLR``, only sets ``last_epoch`` (to
        ``epoch``, after the step); the decision is the same.
        """
        if metrics is not None:
            if loss is not None:
                raise TypeError("step() got both loss and metrics: pass one")
            loss = metrics
        super().step(loss)
        if epoch is not None:
            self.last_epoch = epoch

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """:meth:`GreedyLR.load_state_dict`; also a state saved while ``from_transformers``
        kept transformers' ``threshold_mode="rel"`` as greedylr's sign-aware ``"rel"``
        (0.11.8 and before): the run goes on with transformers' bar, ``"rel_product"``
        (the same decisions while the reference is >= 0)."""
        config = state_dict.get("config") if isinstance(state_dict, dict) else None
        if (isinstance(config, dict) and config.get("threshold_mode") == "rel"
                and self.config.threshold_mode == "rel_product"):
            logger.warning("GreedyLR: the state was saved with threshold_mode='rel' (greedylr's "
                           "sign-aware bar); the run goes on with transformers' "
                           "'rel_product'")
            state_dict = {**state_dict, "config": {**config, "threshold_mode": "rel_product"}}
        super().load_state_dict(state_dict)

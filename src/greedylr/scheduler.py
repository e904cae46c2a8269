"""GreedyLR as a torch ``LRScheduler``: a thin adapter over :mod:`greedylr.rule`."""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, Literal

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from greedylr import distributed, tensor_rule
from greedylr import rule as _rule
from greedylr.rule import Bound, Event, GreedyConfig, RuleState, add_group, init, update
from greedylr.trace import Rows, Trace, decode_events

__all__ = ["GreedyLR", "as_float"]

# True only while dynamo traces (it folds the call to a constant); a plain ``return False``
# when eager, where ``is_compiling`` also asks TorchScript: the float step asks every step
_is_dynamo_compiling = getattr(torch.compiler, "is_dynamo_compiling", torch.compiler.is_compiling)

logger = logging.getLogger("greedylr")

_TRANSFORMERS_KEYS = {
    "mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "warmup",
    "min_lr", "max_lr", "eps", "verbose", "smooth", "window_size", "reset_start",
}


def as_float(loss: Any) -> float:
    """A loss as a Python float: a number, or any one-element tensor or array.

    Raises:
        TypeError: for a string, a bool or an object that is not a number.
        ValueError: for a tensor or array with more than one element.
    """
    if isinstance(loss, (str, bytes, bool)) or loss is None:
        raise TypeError(f"loss must be a number or a one-element tensor, got {loss!r}")
    shape = getattr(loss, "shape", None)
    if shape is not None:
        if math.prod(shape) != 1:
            raise ValueError(
                f"loss must be a scalar, got a tensor of shape {tuple(shape)}; "
                "reduce it (e.g. loss.mean()) first"
            )
        # item() takes any one-element tensor or array; float() refuses arrays of ndim > 0
        item = loss.detach().item if isinstance(loss, torch.Tensor) else getattr(loss, "item", None)
        if item is not None:
            value = item()
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            raise TypeError(f"loss must be a number or a one-element tensor, got {loss!r}")
    try:
        return float(loss)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"loss must be a number or a one-element tensor, got {loss!r}") from exc


_CHAINING = (
    "GreedyLR sets each LR from the loss, and its bounds, checkpoints and trace are in terms "
    "of that LR: chained with another scheduler (ChainedScheduler, SequentialLR, a LinearLR "
    "warmup stepped alongside) it would silently overwrite the other's LR, and losses seen "
    "during the other's phase would leak into its first decision. For a warmup, use GreedyLR "
    "alone with warmup=N (and warmup_start_factor): a linear ramp over N steps during which "
    "the losses only feed the smoother. To restart from new LRs, build a new GreedyLR."
)


def _register_counter(optimizer: Optimizer, counter: _StepCounter) -> Any:
    """Register ``counter`` as a step post-hook on the optimizer that really steps.

    Wrappers such as Accelerate's AcceleratedOptimizer subclass Optimizer without its hook
    registry: the post-hook must sit on the inner optimizer. Returns the hook's handle, or
    None if ``counter`` is already registered there.
    """
    inner: Any = optimizer
    while not hasattr(inner, "_optimizer_step_post_hooks") and isinstance(
        getattr(inner, "optimizer", None), Optimizer
    ):
        inner = inner.optimizer
    if any(hook is counter for hook in inner._optimizer_step_post_hooks.values()):
        return None
    return inner.register_step_post_hook(counter)


class _Decoder:
    """The trace's device-mode decoder: the scheduler's, through a weak reference.

    A bound method would close a cycle (scheduler -> trace -> decoder -> scheduler) that
    keeps the optimizer, and its parameters, alive after ``del`` until the cyclic GC runs.
    Once the scheduler is gone, rows still buffered get the generic reasons.
    """

    __slots__ = ("_ref",)

    def __init__(self, scheduler: GreedyLR | None) -> None:
        self._ref = None if scheduler is None else weakref.ref(scheduler)

    def __call__(self, rows: Rows) -> list[Event]:
        scheduler = None if self._ref is None else self._ref()
        return decode_events(rows) if scheduler is None else scheduler._decode_rows(rows)

    def __reduce__(self) -> tuple[Any, ...]:
        # a weak reference does not pickle; GreedyLR.__setstate__ links a copy to its copy
        return (_Decoder, (None,))


def _warn_zero_lrs(base_lrs: Sequence[float], first: int) -> None:
    """Warn once for groups that start at LR 0: GreedyLR can never move them."""
    zero = [first + i for i, lr in enumerate(base_lrs) if lr == 0]
    if zero:
        warnings.warn(
            f"GreedyLR: parameter group(s) {zero} start with lr 0; GreedyLR multiplies and "
            "divides the LR by factor (and its ratio bounds are 0 too), so they stay at 0 for "
            "the whole run. To freeze parameters, set requires_grad=False or leave them out "
            "of the optimizer; otherwise give them a positive lr.",
            UserWarning,
            stacklevel=3,
        )


class _StepCounter:
    """Counts optimizer steps through a post-hook; holds no reference to the scheduler."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        self.count += 1


def write_lrs(groups: Sequence[dict[str, Any]], lrs: Sequence[Any]) -> list[Any]:
    """Set each group's LR (a tensor LR in place, so that a compiled optimizer does not
    recompile) and return what ``_last_lr`` keeps of them: the floats, tensor copies."""
    last: list[Any] = []
    for group, lr in zip(groups, lrs):
        current = group["lr"]
        if isinstance(current, torch.Tensor):
            current.fill_(lr)
            last.append(current.clone())
        else:
            group["lr"] = lr
            last.append(lr)
    return last


class GreedyLR(LRScheduler):
    """Loss-driven learning rate: raise it while the loss improves, lower it when not.

    Call ``step(loss)`` after each ``optimizer.step()``. The rule's knobs, ``factor`` to
    ``check_bounds``, are the fields of :class:`~greedylr.GreedyConfig`: the same names,
    types and defaults, documented there; ``self.config`` holds them.

    Args:
        optimizer: the wrapped optimizer.
        sync_ranks: under ``torch.distributed`` with more than one process, average
            the loss across ranks before deciding, so that every rank makes the same
            decision (one all-reduce per step). Turn off only if the loss you pass is
            already global.
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
        threshold_mode: Literal["rel", "abs"] = "rel",
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
        eval_factor: float = 0.5,
        eval_patience: int | None = 0,
    ) -> None:
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
        base = []
        for group in optimizer.param_groups:
            lr = group.get("initial_lr", group["lr"])
            base.append(as_float(lr))
        self.state: RuleState = init(self.config, base)
        _warn_zero_lrs(base, 0)
        if self._device is not None:
            _keep_recording_out_of_compile()
            self._to_device(self.state)
        self.trace: Trace | None = self._make_trace(trace)
        if self._device is not None and self.trace is not None:
            self.trace.set_decoder(_Decoder(self))
        self._pending_sum: float | torch.Tensor = 0.0  # a tensor in device mode
        self._pending_count = 0
        self._eval_events: list[Event] = []
        self._next_lrs: Sequence[float | torch.Tensor] = self.state.lrs
        self._optimizer_steps = _StepCounter()
        self._hook = _register_counter(optimizer, self._optimizer_steps)
        self._steps_seen = 0
        self._warned_order = False
        self._written: Sequence[Any] | None = None
        self._float_lrs = False  # set with _written: see _set_marks
        # The base class's constructor makes one initial ``step()`` call with no loss;
        # our own flag marks it (torch's ``_is_initial`` exists only from torch 2.8 on).
        self._constructing = True
        try:
            super().__init__(optimizer)
        finally:
            self._constructing = False
        self._set_marks()

    @classmethod
    def from_transformers(cls, optimizer: Optimizer, **kwargs: Any) -> GreedyLR:
        """Build the scheduler that reproduces ``transformers.GreedyLR(optimizer, **kwargs)``.

        Same keyword arguments and defaults; the same LR trajectory on the same finite
        loss sequence. Differences, on purpose: non-finite losses are skipped instead of
        poisoning the smoothing window, and ``verbose`` goes to logging.
        """
        unknown = set(kwargs) - _TRANSFORMERS_KEYS
        if unknown:
            raise TypeError(f"unexpected transformers.GreedyLR arguments: {sorted(unknown)}")
        get = kwargs.get
        min_lr, max_lr = get("min_lr", 1e-3), get("max_lr", 1.0)
        for value, name in ((min_lr, "min_lr"), (max_lr, "max_lr")):
            if isinstance(value, (list, tuple)) and len(value) != len(optimizer.param_groups):
                raise ValueError(
                    f"expected {len(optimizer.param_groups)} {name}s, got {len(value)}"
                )
        lrs = [as_float(g["lr"]) for g in optimizer.param_groups]
        floors = min_lr if isinstance(min_lr, (list, tuple)) else [min_lr] * len(lrs)
        if any(f > lr for f, lr in zip(floors, lrs)):
            logger.warning(
                "min_lr %s is above the initial lr %s: decreases will be no-ops, as in "
                "transformers.GreedyLR", floors, lrs,
            )
        return _TransformersGreedyLR(
            optimizer,
            mode=get("mode", "min"),
            factor=get("factor", 0.95),
            patience=get("patience", 10),
            threshold=get("threshold", 1e-6),
            threshold_mode=get("threshold_mode", "abs"),
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
        )

    # -- feeding the loss -------------------------------------------------------

    def observe(self, loss: Any) -> None:
        """Record a loss for the next ``step()``; several observations are averaged.

        This is the path for framework integrations that see the loss where they
        cannot step (a micro-batch hook), and step where they cannot see the loss.
        """
        if self._written is not None:
            self._check_lrs_are_ours()
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
        groups = self.optimizer.param_groups
        if len(groups) != len(self.base_lrs):
            self._sync_groups()
        written = self._written
        if written is not None:
            for group, mark in zip(groups, written):
                if group["lr"] is not mark:  # not the very object written: compare values
                    self._check_lrs_are_ours()
                    break
        count = self._optimizer_steps.count
        if count == self._steps_seen:
            if count:
                # A repeated call (Accelerate calls once per process, the later ones often
                # without a loss) or a skipped optimizer step: nothing new to decide, and
                # what was observed for it must not leak into the next step.
                self._pending_sum, self._pending_count = 0.0, 0
                logger.debug("GreedyLR.step ignored: no optimizer step since the last one")
                return
            if not self._warned_order:
                self._warn_order()
        if self._device_state is not None:
            self._step_on_device(loss, count)
            return
        if type(loss) is float and not self._pending_count:
            value = loss
        else:
            value = as_float(self._loss_or_mean(loss))
            self._pending_sum, self._pending_count = 0.0, 0
        self._steps_seen = count  # after the loss: a step refused for it can be retried
        if self.sync_ranks and distributed.is_distributed():
            value = distributed.mean_across_ranks(value)
        state = self._rule_state
        assert state is not None  # None only in device mode
        decision = update(self.config, state, value)
        lrs, events = decision.lrs, decision.events
        if events and logger.isEnabledFor(logging.DEBUG):
            for event in events:
                logger.debug(event.reason)
        if self.trace is not None:
            self.trace.record(state.step, value, decision.smoothed, lrs, events)
        self._next_lrs = lrs
        self._step_count += 1
        self.last_epoch += 1
        if self._float_lrs:  # then the floats written are the marks: nothing to test
            for group, lr in zip(groups, lrs):
                group["lr"] = lr
            self._last_lr = list(lrs)
            self._written = lrs
        else:
            self._write(lrs)

    def _warn_order(self) -> None:
        self._warned_order = True
        warnings.warn(
            "Detected call of `GreedyLR.step()` before `optimizer.step()` (or the first "
            "optimizer steps were skipped, e.g. by a GradScaler): call `optimizer.step()` "
            "first, then `GreedyLR.step(loss)` with the loss of that step; otherwise the "
            "first decision is made before the initial LR was used.",
            UserWarning,
            stacklevel=3,
        )

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
        self._set_marks()

    def _set_marks(self) -> None:
        """Note what each group's LR is now, for the check for foreign writes: the
        float, or a tensor and its version counter (``_written``); and whether every LR
        is a float (``_float_lrs``), which lets the float step skip the type tests.

        In device mode no marks: the check would read the host (or, under
        ``torch.compile``, break the graph), so it is not made there.
        """
        if self._device_state is not None:
            self._written, self._float_lrs = None, False
            return
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        self._float_lrs = not any(isinstance(lr, torch.Tensor) for lr in lrs)
        self._written = [(lr, lr._version) if isinstance(lr, torch.Tensor) else lr for lr in lrs]

    def _check_lrs_are_ours(self) -> None:
        """Refuse to go on if something else wrote an LR since GreedyLR's last write."""
        assert self._written is not None
        for i, (group, mark) in enumerate(zip(self.optimizer.param_groups, self._written)):
            lr = group["lr"]
            if isinstance(lr, torch.Tensor):
                same = isinstance(mark, tuple) and mark[0] is lr and mark[1] == lr._version
            else:
                same = not isinstance(mark, tuple) and lr == mark
            if not same:
                before = float(mark[0]) if isinstance(mark, tuple) else mark
                raise RuntimeError(
                    f"the LR of parameter group {i} was changed outside GreedyLR since its "
                    f"last step ({before!r} -> {float(lr)!r}): by another scheduler, a manual "
                    "write, or optimizer.load_state_dict without GreedyLR.load_state_dict. "
                    f"{_CHAINING}"
                )

    def _update_lr(self, epoch: int | None = None) -> None:
        """torch's LR write; SequentialLR calls it with ``epoch=0`` to switch schedulers."""
        if epoch is not None:
            raise RuntimeError(f"GreedyLR cannot be switched to by SequentialLR. {_CHAINING}")
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
        state = self.state  # a host copy in device mode: one read, once per added group
        for base in bases:
            add_group(self.config, state, base)
        _warn_zero_lrs(bases, known)
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

    # -- copies -------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """What ``pickle``, ``copy.deepcopy`` and ``torch.save(scheduler)`` keep.

        torch drops an optimizer's hooks when it is copied, so the hook that counts
        optimizer steps is registered again on the copy's optimizer by
        :meth:`__setstate__` (without it every later step would look like a repeat and
        be ignored); a compiled rule is compiled again.
        """
        state = self.__dict__.copy()
        state.pop("_hook", None)
        state.pop("_step_rule", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._step_rule = self._rule_step(self._compile_rule)
        self._hook = _register_counter(self.optimizer, self._optimizer_steps)
        if self._device is not None and self.trace is not None:
            self.trace.set_decoder(_Decoder(self))

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
        (Lightning's ``estimated_stepping_batches``). Only the final cooldown uses it.

        Raises:
            ValueError: for a bad count, or once the final cooldown has started.
        """
        state = self.state
        if state.anneal_from:
            raise ValueError("the final cooldown has started: total_steps can no longer change")
        self.config = dataclasses.replace(self.config, total_steps=total_steps)
        if self._device_state is not None:
            self._to_device(state)
        if self.trace is not None:
            self.trace.meta["config"] = self.config.to_dict()

    def observe_eval(self, value: Any) -> None:
        """Tell the rule a held-out value, after each evaluation (lower is better unless
        ``eval_mode="max"``).

        A value worse than the best so far blocks increases until one is better again,
        and (after ``eval_patience`` of them) multiplies the LRs by ``eval_factor``: the
        training loss cannot see overfitting, the held-out value can. Takes effect from
        the next optimizer step. The events it produces are in :attr:`events` (not in
        the per-step trace, which has one row per training step). In device mode this
        reads the decision back to the host once per evaluation.

        Args:
            value: the held-out metric: a number or a one-element tensor.
        """
        if self._device_state is not None:
            value_t = self._device_loss(value)
            self._device_state, d = tensor_rule.observe_eval(
                self.config, self._device_state, value_t
            )
            code = int(d.code)
            if code:
                self._eval_events += tensor_rule.decode_events(
                    self.config, step=self._host_step, code=code, loss=float(value_t),
                    smoothed=float(d.smoothed), reference=float(d.reference),
                    lrs_before=d.lrs_before.tolist(), lrs_changed=d.lrs_changed.tolist(),
                    lrs_after=d.lrs.tolist(), min_lrs=self._bounds[0],
                    max_lrs=self._bounds[1],
                )
            lrs: Sequence[Any] = list(d.lrs.unbind())
        else:
            assert self._rule_state is not None  # None only in device mode
            decision = _rule.observe_eval(self.config, self._rule_state, as_float(value))
            self._eval_events += decision.events
            lrs = decision.lrs
        for event in self._eval_events[-1:]:
            logger.debug(event.reason)
        self._next_lrs = lrs
        self._write(lrs)

    # -- device mode --------------------------------------------------------------

    @property
    def state(self) -> RuleState:
        """The rule's state. In device mode a host copy, taken (with a sync) when read."""
        if self._device_state is not None:
            return tensor_rule.to_rule_state(tensor_rule.select(self._device_state, 0))
        assert self._rule_state is not None  # None only in device mode
        return self._rule_state

    @state.setter
    def state(self, value: RuleState) -> None:
        if self._device_state is not None:
            self._to_device(value)
        else:
            self._rule_state = value

    @property
    def device_mode(self) -> bool:
        """True when the rule runs on the device, with no host read per step."""
        return self._device is not None

    def _choose_device(
        self, optimizer: Optimizer, device_mode: bool | None, compile_rule: bool
    ) -> torch.device | None:
        """The device of the tensor LRs if device mode is on (asked for, or automatic)."""
        lrs = [group["lr"] for group in optimizer.param_groups]
        tensors = all(isinstance(lr, torch.Tensor) for lr in lrs)
        devices = {lr.device for lr in lrs} if tensors else set()
        if device_mode is None:
            if not tensors or len(devices) != 1:
                return None
            if next(iter(devices)).type == "cpu" and not compile_rule:
                # no sync to avoid on the CPU: the float rule, ~100x cheaper
                return None
            if self.config.on_nonfinite == "raise":
                logger.info("GreedyLR: tensor learning rates, but on_nonfinite='raise' reads "
                            "every loss on the host: float mode")
                return None
            return devices.pop()
        if not device_mode:
            return None
        if not tensors:
            kinds = [type(lr).__name__ for lr in lrs]
            raise ValueError(
                f"device_mode=True needs a tensor lr in every parameter group, got {kinds}; "
                "e.g. torch.optim.AdamW(params, lr=torch.tensor(1e-3, device='cuda'), "
                "fused=True)"
            )
        if len(devices) != 1:
            raise ValueError(f"device_mode=True needs every lr on one device, got {devices}")
        tensor_rule.check_config(self.config)
        return devices.pop()

    def _rule_step(self, compile_rule: bool | str) -> Any:
        """:func:`tensor_rule.step_`, compiled if asked (device mode only)."""
        if not compile_rule:
            return tensor_rule.step_
        if self._device is None:
            raise ValueError("compile_rule needs device mode: tensor learning rates, all on "
                             "one device, and on_nonfinite other than 'raise'")
        return tensor_rule.compile_step(
            compile_rule if isinstance(compile_rule, str) else "inductor")

    def _to_device(self, state: RuleState) -> None:
        assert self._device is not None
        # float64 gives the float rule's results bit for bit; MPS has no float64, and
        # float32 there is correctly rounded but may differ (see greedylr.tensor_rule)
        dtype = torch.float32 if self._device.type == "mps" else torch.float64
        one_run = tensor_rule.from_rule_state(self.config, state, device=self._device,
                                              dtype=dtype)
        # a batch of one run: shape [1] rather than 0-d, because dynamo specialises 0-d
        # CPU tensors on their values (a NaN recompiles) and inductor loses in-place
        # writes to 0-d float64 CPU inputs (torch 2.13)
        fresh = tensor_rule.select(one_run, None)
        old = self._device_state
        if old is None or any(a.shape != b.shape for a, b in zip(old, fresh, strict=True)):
            self._device_state = fresh  # the first, or a parameter group was added
        else:  # a load: in place, so that a captured CUDA graph keeps reading this state
            torch._foreach_copy_(list(old), list(fresh))
        self._rule_state = None
        self._host_step = state.step  # the trace's step column, counted without a sync
        self._bounds = (list(state.min_lrs), list(state.max_lrs))

    def _device_loss(self, loss: Any, *, convert: bool = True) -> torch.Tensor:
        """A loss as a one-element tensor on the state's device, without a host read.

        Args:
            loss: a number or a one-element tensor.
            convert: make a tensor ``[1]`` of the state's dtype (for sums of observed
                losses, which float mode adds in float64). ``False`` passes a tensor
                as it is, for the rule to convert inside its own (fused) kernels;
                only a 0-d CPU tensor becomes ``[1]``, for the reason given in
                :meth:`_to_device`.
        """
        assert self._device_state is not None
        like = self._device_state.lrs
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:  # the shape is host metadata: no sync
                raise ValueError(
                    f"loss must be a scalar, got a tensor of shape {tuple(loss.shape)}; "
                    "reduce it (e.g. loss.mean()) first"
                )
            if convert:
                return loss.detach().reshape(1).to(device=like.device, dtype=like.dtype)
            if loss.ndim == 0 and loss.device.type == "cpu":
                return loss.reshape(1)
            return loss
        # a host number: a fill kernel with a scalar argument, no copy
        return torch.full((1,), as_float(loss), dtype=like.dtype, device=like.device)

    def _step_on_device(self, loss: Any, count: int) -> None:
        """``step`` in device mode: the same decisions as the float rule, no host read.

        The state is float64 (on every device that has it) and every operation is the
        float rule's, in its order, so the LRs are bit for bit those of float mode; both
        modes then write them into the LR tensor with the same rounding cast.
        """
        # an observed mean is converted as float mode adds it (float64); a tensor loss is
        # converted by the rule inside its own (fused) kernels
        value = self._device_loss(self._loss_or_mean(loss), convert=loss is None)
        self._pending_sum, self._pending_count = 0.0, 0
        self._steps_seen = count
        if self.sync_ranks and distributed.is_distributed():
            value = self._device_loss(distributed.mean_across_ranks(value))
        lr_tensors = [group["lr"] for group in self.optimizer.param_groups]
        # no_grad: a loss that requires grad needs no autograd graph around the rule
        with torch.no_grad():
            row, lrs = self._step_rule(self.config, self._device_state, value, lr_tensors,
                                       with_row=self.trace is not None)
        self._record_on_device(row)
        # what _apply does, but the rule has already filled the LR tensors in place
        self._step_count += 1
        self.last_epoch += 1
        self._next_lrs = self._last_lr = list(lrs)

    def _record_on_device(self, row: torch.Tensor | None) -> None:
        """Buffer the trace row on the device (no sync).

        Kept out of ``torch.compile`` (see :func:`_keep_recording_out_of_compile`): the
        trace's Python bookkeeping (a growing list, a step counter) would otherwise be
        guarded on and recompile the step each time.
        """
        self._host_step += 1
        if row is None or self.trace is None:
            return
        if row.is_cuda and torch.cuda.is_current_stream_capturing():
            raise RuntimeError(
                "GreedyLR in a CUDA graph needs trace=False: a replay would not record "
                "its rows"
            )
        self.trace.record_row(self._host_step, row, len(self._bounds[0]))

    def _decode_rows(self, rows: Any) -> list[Event]:
        """The trace's decoder in device mode: the float rule's events, reasons included."""
        groups = rows.lrs.shape[1]
        events: list[Event] = []
        for i in range(len(rows)):
            code = int(rows.code[i])
            if not code:
                continue
            extra = rows.extra[i]
            events += tensor_rule.decode_events(
                self.config,
                step=int(rows.step[i]),
                code=code,
                loss=float(rows.loss[i]),
                smoothed=float(rows.smoothed[i]),
                reference=float(extra[0]),
                lrs_before=extra[1:1 + groups].tolist(),
                lrs_changed=extra[1 + groups:1 + 2 * groups].tolist(),
                lrs_after=rows.lrs[i].tolist(),
                min_lrs=self._bounds[0],
                max_lrs=self._bounds[1],
                penalty=int(extra[1 + 2 * groups]),
            )
        for event in events:
            logger.debug(event.reason)
        return events

    # -- checkpointing ----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors only: loads with ``torch.load(weights_only=True)``."""
        if len(self.optimizer.param_groups) != len(self.base_lrs):
            self._sync_groups()
        return {
            "format": 2,
            "config": self.config.to_dict(),
            "rule": self.state.to_dict(),
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            "_last_lr": self._last_lr,
            "base_lrs": self.base_lrs,
            # float(): a device-mode sum is a tensor; one format for both modes
            "pending": [float(self._pending_sum), self._pending_count],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the run continues bit-identically.

        Everything is checked before anything is changed: a state dict that is refused
        leaves the scheduler as it was.

        Raises:
            ValueError: if the state was saved with another configuration or another
                number of parameter groups, or an entry is missing or malformed.
        """
        if (not isinstance(state_dict, dict) or state_dict.get("format") not in (1, 2)
                or "rule" not in state_dict):
            raise ValueError("not a greedylr.GreedyLR state dict")
        missing = [key for key in _STATE_KEYS if key not in state_dict]
        if missing:
            raise ValueError(f"GreedyLR state dict has no {missing}; nothing was loaded")
        config = state_dict["config"]
        if state_dict["format"] == 1:
            # 0.1 had none of 0.2's knobs: what it ran is those knobs switched off
            config = {**_rule.KNOBS_OFF, **config}
        saved = GreedyConfig.from_dict(config)
        if saved != self.config:
            diff = {
                k: (v, getattr(self.config, k))
                for k, v in saved.to_dict().items()
                if v != self.config.to_dict()[k]
            }
            raise ValueError(
                f"state dict was saved with another configuration (saved, current): {diff}"
            )
        try:
            rule = RuleState.from_dict(state_dict["rule"])
        except TypeError as exc:
            raise ValueError(
                f"GreedyLR state dict: malformed 'rule' entry ({exc}); nothing was loaded"
            ) from exc
        if len(self.optimizer.param_groups) != len(self.base_lrs):
            self._sync_groups()
        groups = len(self.optimizer.param_groups)
        if len(rule.lrs) != groups:
            raise ValueError(
                f"state dict has {len(rule.lrs)} parameter groups, the optimizer has {groups}"
            )
        lengths = {key: len(state_dict[key]) for key in ("_last_lr", "base_lrs")}
        lengths.update(min_lrs=len(rule.min_lrs), max_lrs=len(rule.max_lrs),
                       rule_base_lrs=len(rule.base_lrs))
        wrong = {key: n for key, n in lengths.items() if n != groups}
        if wrong:
            raise ValueError(f"GreedyLR state dict: {wrong} values for {groups} parameter "
                             "groups; nothing was loaded")
        pending_sum, pending_count = state_dict["pending"]
        last_epoch, step_count = int(state_dict["last_epoch"]), int(state_dict["_step_count"])
        self.state = rule
        self.last_epoch = last_epoch
        self._step_count = step_count
        self.base_lrs = list(state_dict["base_lrs"])
        self._pending_sum, self._pending_count = pending_sum, pending_count
        self._steps_seen = self._optimizer_steps.count
        self._next_lrs = rule.lrs
        write_lrs(self.optimizer.param_groups, rule.lrs)
        self._last_lr = [
            lr.clone() if isinstance(lr, torch.Tensor) else lr for lr in state_dict["_last_lr"]
        ]
        self._set_marks()


_STATE_KEYS = ("format", "config", "rule", "last_epoch", "_step_count", "_last_lr", "base_lrs",
               "pending")


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


_recording_kept_out = False


def _keep_recording_out_of_compile() -> None:
    """Wrap ``GreedyLR._record_on_device`` in ``torch.compiler.disable``, once.

    The same as decorating it at class definition, deferred to the first device-mode
    scheduler: ``torch.compiler.disable`` imports ``torch._dynamo`` (seconds), which
    float mode, and so ``import greedylr``, never needs.
    """
    global _recording_kept_out
    if not _recording_kept_out:
        GreedyLR._record_on_device = torch.compiler.disable(  # type: ignore[method-assign]
            GreedyLR._record_on_device
        )
        _recording_kept_out = True

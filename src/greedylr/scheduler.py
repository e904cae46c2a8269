"""GreedyLR as a torch ``LRScheduler``: a thin adapter over :mod:`greedylr.rule`."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from greedylr import distributed, tensor_rule
from greedylr import rule as _rule
from greedylr.rule import Decision, Event, GreedyConfig, RuleState, init, update
from greedylr.trace import Trace

__all__ = ["GreedyLR", "as_float"]

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
    if shape is not None and math.prod(shape) != 1:
        raise ValueError(
            f"loss must be a scalar, got a tensor of shape {tuple(shape)}; "
            "reduce it (e.g. loss.mean()) first"
        )
    if isinstance(loss, torch.Tensor):
        loss = loss.detach()
    try:
        return float(loss)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"loss must be a number or a one-element tensor, got {loss!r}") from exc


class _StepCounter:
    """Counts optimizer steps through a post-hook; holds no reference to the scheduler."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        self.count += 1


class GreedyLR(LRScheduler):
    """Loss-driven learning rate: raise it while the loss improves, lower it when not.

    Call ``step(loss)`` after each ``optimizer.step()``. Every keyword argument of
    :class:`greedylr.rule.GreedyConfig` is accepted here.

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
            ``step(loss_tensor)`` never reads anything back to the host and a compiled
            training step does not recompile as the LR changes. ``None`` (default):
            on when every group's ``lr`` is a tensor, all on one device (and the
            config does not ask for ``on_nonfinite="raise"``, which needs a host
            read). ``True`` requires tensor LRs; ``False`` forces the float rule.
            Both modes give the same LRs (see :meth:`_step_on_device`), the same
            events and the same checkpoints. In device mode the trace rows and
            events are buffered on the device and read when you look at them (or
            every ``trace.flush_every`` steps, a sync then: pass
            ``trace=Trace(flush_every=0)`` for none), and ``sched.state`` is a host copy.
        compile_rule: device mode only: run the rule through ``torch.compile``
            (``True``: inductor; or a backend name), so that an eager training loop
            launches a few fused kernels per step instead of about a hundred small
            ones. The first step pays the compilation (seconds). Not needed when you
            compile your training step yourself: the rule is traced into it.
        **config: the rule's knobs (factor, patience, smoothing, window, warmup, ...).

    Calls that come without an optimizer step in between (Accelerate calls ``step``
    once per process; a GradScaler skips the optimizer step on overflow) are ignored
    once the optimizer has stepped at least once: the rule advances exactly once per
    optimizer step.

    Example:
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
        **config: Any,
    ) -> None:
        self.config = GreedyConfig(**config)
        self._device_state: tensor_rule.TensorState | None = None
        self._device = self._choose_device(optimizer, device_mode)
        self._update = self._rule_update(compile_rule)
        self.sync_ranks = sync_ranks
        base = []
        for group in optimizer.param_groups:
            lr = group.get("initial_lr", group["lr"])
            base.append(as_float(lr))
        self.state: RuleState = init(self.config, base)
        if self._device is not None:
            self._to_device(self.state)
        self.trace: Trace | None = self._make_trace(trace)
        if self._device is not None and self.trace is not None:
            self.trace.set_decoder(self._decode_rows)
        self._pending_sum = 0.0
        self._pending_count = 0
        self._eval_events: list[Event] = []
        self._next_lrs: Sequence[float] = self.state.lrs
        self._optimizer_steps = _StepCounter()
        # Wrappers such as Accelerate's AcceleratedOptimizer subclass Optimizer without
        # its hook registry: the post-hook must sit on the optimizer that really steps.
        inner = optimizer
        while not hasattr(inner, "_optimizer_step_post_hooks") and isinstance(
            getattr(inner, "optimizer", None), Optimizer
        ):
            inner = inner.optimizer
        self._hook = inner.register_step_post_hook(self._optimizer_steps)
        self._steps_seen = 0
        super().__init__(optimizer)

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
        return cls(
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
        if self._device_state is not None:
            self._pending_sum = self._pending_sum + self._device_loss(loss)
        else:
            self._pending_sum += as_float(loss)
        self._pending_count += 1

    def step(self, loss: Any = None) -> None:  # type: ignore[override]
        """Decide on ``loss`` (or on the mean of the observed losses) and apply the LRs.

        Args:
            loss: the training loss of this optimizer step: a number, or a one-element
                tensor. May be omitted only if :meth:`observe` was called since the
                last step.

        Raises:
            TypeError: if no loss was given or observed.
        """
        if self._is_initial:
            super().step()
            return
        count = self._optimizer_steps.count
        if count and count == self._steps_seen:
            # A repeated call (Accelerate calls once per process, the later ones often
            # without a loss) or a skipped optimizer step: nothing new to decide, and
            # what was observed for it must not leak into the next step.
            self._pending_sum, self._pending_count = 0.0, 0
            logger.debug("GreedyLR.step ignored: no optimizer step since the last one")
            return
        if self._device_state is not None:
            self._step_on_device(loss, count)
            return
        if loss is None:
            if self._pending_count == 0:
                raise TypeError(
                    "GreedyLR.step() needs the loss: call step(loss), or observe(loss) "
                    "before step()"
                )
            value = self._pending_sum / self._pending_count
        else:
            value = loss if type(loss) is float else as_float(loss)
        self._pending_sum, self._pending_count = 0.0, 0
        self._steps_seen = count
        if self.sync_ranks and distributed.is_distributed():
            value = distributed.mean_across_ranks(value)
        decision = update(self.config, self.state, value)
        self._record(value, decision)
        self._next_lrs = decision.lrs
        self._apply(decision.lrs)

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
        """Set every group's LR (tensor LRs in place) and ``_last_lr``."""
        last = []
        for group, lr in zip(self.optimizer.param_groups, lrs):
            current = group["lr"]
            if isinstance(current, torch.Tensor):
                current.fill_(lr)
                last.append(current.clone())
            else:
                group["lr"] = lr
                last.append(lr)
        self._last_lr = last

    def get_lr(self) -> list[float]:  # type: ignore[override]
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

    def _record(self, loss: float, decision: Decision) -> None:
        if decision.events and logger.isEnabledFor(logging.DEBUG):
            for event in decision.events:
                logger.debug(event.reason)
        if self.trace is not None:
            # float mode: the host state itself (the ``state`` property is for both modes)
            self.trace.record(self._rule_state.step, loss, decision.smoothed, decision.lrs,
                              decision.events)

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
            return tensor_rule.to_rule_state(self._device_state)
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

    def _choose_device(self, optimizer: Optimizer, device_mode: bool | None) -> torch.device | None:
        """The device of the tensor LRs if device mode is on (asked for, or automatic)."""
        lrs = [group["lr"] for group in optimizer.param_groups]
        tensors = all(isinstance(lr, torch.Tensor) for lr in lrs)
        devices = {lr.device for lr in lrs} if tensors else set()
        if device_mode is None:
            if not tensors or len(devices) != 1:
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

    def _rule_update(self, compile_rule: bool | str) -> Any:
        """:func:`tensor_rule.update`, compiled if asked (device mode only)."""
        if not compile_rule:
            return tensor_rule.update
        if self._device is None:
            raise ValueError("compile_rule needs device mode (tensor learning rates)")
        backend = compile_rule if isinstance(compile_rule, str) else "inductor"
        # the config is a frozen dataclass: a constant for dynamo, one graph for the run
        return torch.compile(tensor_rule.update, backend=backend, fullgraph=True, dynamic=False)

    def _to_device(self, state: RuleState) -> None:
        assert self._device is not None
        # float64 gives the float rule's results bit for bit; MPS has no float64, and
        # float32 there is correctly rounded but may differ (see greedylr.tensor_rule)
        dtype = torch.float32 if self._device.type == "mps" else torch.float64
        self._device_state = tensor_rule.from_rule_state(
            self.config, state, device=self._device, dtype=dtype
        )
        self._rule_state = None
        self._host_step = state.step  # the trace's step column, counted without a sync
        self._bounds = (list(state.min_lrs), list(state.max_lrs))

    def _device_loss(self, loss: Any) -> torch.Tensor:
        """A loss as a 0-d tensor of the state's device and dtype, without a host read."""
        assert self._device_state is not None
        like = self._device_state.lrs
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:  # the shape is host metadata: no sync
                raise ValueError(
                    f"loss must be a scalar, got a tensor of shape {tuple(loss.shape)}; "
                    "reduce it (e.g. loss.mean()) first"
                )
            return loss.detach().reshape(()).to(device=like.device, dtype=like.dtype)
        # a host number: a fill kernel with a scalar argument, no copy
        return torch.full((), as_float(loss), dtype=like.dtype, device=like.device)

    def _step_on_device(self, loss: Any, count: int) -> None:
        """``step`` in device mode: the same decisions as the float rule, no host read.

        The state is float64 (on every device that has it) and every operation is the
        float rule's, in its order, so the LRs are bit for bit those of float mode; both
        modes then write them into the LR tensor with the same rounding cast.
        """
        if loss is None:
            if self._pending_count == 0:
                raise TypeError(
                    "GreedyLR.step() needs the loss: call step(loss), or observe(loss) "
                    "before step()"
                )
            value = self._device_loss(self._pending_sum / self._pending_count)
        else:
            value = self._device_loss(loss)
        self._pending_sum, self._pending_count = 0.0, 0
        self._steps_seen = count
        if self.sync_ranks:
            value = self._device_loss(distributed.mean_across_ranks(value))
        self._device_state, decision = self._update(self.config, self._device_state, value)
        self._record_on_device(value, decision)
        # 0-d tensors on the LRs' device: fill_ copies them in place, without a read
        self._next_lrs = list(decision.lrs.unbind())
        self._apply(self._next_lrs)

    @torch.compiler.disable
    def _record_on_device(self, value: torch.Tensor, decision: tensor_rule.TensorDecision) -> None:
        """Buffer the trace row on the device (no sync).

        Kept out of ``torch.compile``: the trace's Python bookkeeping (a growing list,
        a step counter) would otherwise be guarded on and recompile the step each time.
        """
        self._host_step += 1
        if self.trace is not None:
            extra = torch.cat([decision.reference.reshape(1), decision.lrs_before,
                               decision.lrs_changed,
                               decision.penalty.reshape(1).to(decision.lrs.dtype)])
            self.trace.record(self._host_step, value, decision.smoothed, decision.lrs,
                              code=decision.code, extra=extra)

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

        Raises:
            ValueError: if the state was saved with another configuration or another
                number of parameter groups.
        """
        if state_dict.get("format") not in (1, 2) or "rule" not in state_dict:
            raise ValueError("not a greedylr.GreedyLR state dict")
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
        rule = RuleState.from_dict(state_dict["rule"])
        groups = len(self.optimizer.param_groups)
        if len(rule.lrs) != groups:
            raise ValueError(
                f"state dict has {len(rule.lrs)} parameter groups, the optimizer has {groups}"
            )
        self.state = rule
        self.last_epoch = state_dict["last_epoch"]
        self._step_count = state_dict["_step_count"]
        self.base_lrs = list(state_dict["base_lrs"])
        self._pending_sum, self._pending_count = state_dict["pending"]
        self._steps_seen = self._optimizer_steps.count
        self._next_lrs = rule.lrs
        for group, lr in zip(self.optimizer.param_groups, rule.lrs):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._last_lr = [
            lr.clone() if isinstance(lr, torch.Tensor) else lr for lr in state_dict["_last_lr"]
        ]

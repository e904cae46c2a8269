"""GreedyLR's device mode: the rule's state on the LRs' device, no host read per step.

A mixin of :class:`greedylr.GreedyLR` (which documents ``device_mode`` and
``compile_rule``): choosing the mode, moving the state to the device and back
(``state``), the step through :mod:`greedylr.tensor_rule`, and the trace rows it buffers
on the device and decodes into the float rule's events when they are read.
"""

from __future__ import annotations

import gc
import logging
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch.optim import Optimizer

from greedylr import distributed, tensor_rule
from greedylr._attributes import SchedulerAttributes
from greedylr._values import HELD_OUT, as_float
from greedylr.rule import Event, RuleState
from greedylr.trace import Rows, decode_events

__all__ = ["Decoder", "DeviceMode", "keep_recording_out_of_compile"]

logger = logging.getLogger("greedylr")


class DeviceMode(SchedulerAttributes):
    """The device-mode half of :class:`greedylr.GreedyLR`; float mode when ``_device`` is
    None, where ``state`` is the host state itself."""

    # set by GreedyLR: declared for the type checker (more in SchedulerAttributes)
    sync_ranks: bool
    _eval_events: list[Event]
    _loss_or_mean: Callable[[Any], Any]
    _device_state: tensor_rule.TensorState | None
    _rule_state: RuleState | None
    _host_step: int
    _bounds: tuple[list[float], list[float]]

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

    def _device_loss(self, loss: Any, *, convert: bool = True,
                     what: str = "loss") -> torch.Tensor:
        """A loss as a one-element tensor on the state's device, without a host read.

        Args:
            loss: a number or a one-element tensor.
            convert: make a tensor ``[1]`` of the state's dtype (for sums of observed
                losses, which float mode adds in float64). ``False`` passes a tensor
                as it is, for the rule to convert inside its own (fused) kernels;
                only a 0-d CPU tensor becomes ``[1]``, for the reason given in
                :meth:`_to_device`.
            what: what ``loss`` is, for the error messages.
        """
        assert self._device_state is not None
        like = self._device_state.lrs
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:  # the shape is host metadata: no sync
                raise ValueError(
                    f"{what} must be a scalar, got a tensor of shape {tuple(loss.shape)}; "
                    "reduce it (e.g. loss.mean()) first"
                )
            if loss.dtype is torch.bool or loss.is_complex():  # metadata too: no sync
                # as float mode refuses them, rather than read True as 1 or drop an
                # imaginary part inside the rule's cast
                raise TypeError(f"{what} must be a number or a one-element tensor of real "
                                f"numbers, got a tensor of dtype {loss.dtype}")
            if convert:
                return loss.detach().reshape(1).to(device=like.device, dtype=like.dtype)
            if loss.ndim == 0 and loss.device.type == "cpu":
                return loss.reshape(1)
            return loss
        # a host number: a fill kernel with a scalar argument, no copy
        return torch.full((1,), as_float(loss, what), dtype=like.dtype, device=like.device)

    def _step_on_device(self, loss: Any, count: int) -> None:
        """``step`` in device mode: the same decisions as the float rule, no host read.

        The state is float64 (on every device that has it) and every operation is the
        float rule's, in its order, so the LRs are bit for bit those of float mode; both
        modes then write them into the LR tensor with the same rounding cast.
        """
        if self.sync_ranks and distributed.is_distributed():
            value = self._agreed_on_device(loss)
        else:
            # an observed mean is converted as float mode adds it (float64); a tensor loss
            # is converted by the rule inside its own (fused) kernels
            value = self._device_loss(self._loss_or_mean(loss), convert=loss is None)
        self._pending_sum, self._pending_count = 0.0, 0
        self._steps_seen = count
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

        Kept out of ``torch.compile`` (see :func:`keep_recording_out_of_compile`): the
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
        own = self.config.base_schedule != "constant"  # the rule's own LRs follow the penalty
        guarded = self.config.keeps_first  # the first smoothed value ends the row
        events: list[Event] = []
        for i in range(len(rows)):
            code = int(rows.code[i])
            if not code:
                continue
            extra = rows.extra[i]
            after = extra[2 + 2 * groups:2 + 3 * groups] if own else rows.lrs[i]
            events += tensor_rule.decode_events(
                self.config,
                step=int(rows.step[i]),
                code=code,
                loss=float(rows.loss[i]),
                smoothed=float(rows.smoothed[i]),
                reference=float(extra[0]),
                lrs_before=extra[1:1 + groups].tolist(),
                lrs_changed=extra[1 + groups:1 + 2 * groups].tolist(),
                lrs_after=after.tolist(),
                # rows recorded before a group was added have fewer columns than the
                # bounds now (add_param_group decodes them after the bounds grew)
                min_lrs=self._bounds[0][:groups],
                max_lrs=self._bounds[1][:groups],
                penalty=int(extra[1 + 2 * groups]),
                first=float(extra[-1]) if guarded else None,
            )
        for event in events:
            logger.debug(event.reason)
        return events

    def _observe_eval_on_device(self, value: Any) -> list[torch.Tensor]:
        """``observe_eval`` in device mode: its events read back (once per evaluation);
        returns the LRs to write."""
        assert self._device_state is not None
        value_t = self._device_loss(value, what=HELD_OUT)
        state, d = tensor_rule.observe_eval(self.config, self._device_state, value_t)
        # the state is a batch of one run ([1], [1, groups]): one run's values
        lrs = d.lrs.reshape(-1).clone()
        code = int(d.code)
        if code:
            self._eval_events += tensor_rule.decode_events(
                self.config, step=self._host_step, code=code, loss=float(value_t),
                smoothed=float(d.smoothed), reference=float(d.reference),
                lrs_before=d.lrs_before.reshape(-1).tolist(),
                lrs_changed=d.lrs_changed.reshape(-1).tolist(),
                lrs_after=d.rule_lrs.reshape(-1).tolist(), min_lrs=self._bounds[0],
                max_lrs=self._bounds[1],
            )
        # in place, as a load: a captured CUDA graph of the step keeps reading this state
        # (after the decision is read: some of its tensors are the state's before)
        torch._foreach_copy_(list(self._device_state), list(state))
        return list(lrs.unbind())


class Decoder:
    """The trace's device-mode decoder: the scheduler's, through a weak reference.

    A bound method would close a cycle (scheduler -> trace -> decoder -> scheduler) that
    keeps the optimizer, and its parameters, alive after ``del`` until the cyclic GC runs.
    Once the scheduler is gone, rows still buffered get the generic reasons.
    """

    __slots__ = ("_ref",)

    def __init__(self, scheduler: DeviceMode | None) -> None:
        self._ref = None if scheduler is None else weakref.ref(scheduler)

    def __call__(self, rows: Rows) -> list[Event]:
        scheduler = None if self._ref is None else self._ref()
        return decode_events(rows) if scheduler is None else scheduler._decode_rows(rows)

    def __reduce__(self) -> tuple[Any, ...]:
        # a weak reference does not pickle; GreedyLR.__setstate__ links a copy to its copy
        return (Decoder, (None,))


_recording_kept_out = False


def keep_recording_out_of_compile() -> None:
    """Wrap ``DeviceMode._record_on_device`` in ``torch.compiler.disable``, once.

    The same as decorating it at class definition, deferred to the first device-mode
    scheduler: ``torch.compiler.disable`` imports ``torch._dynamo`` (seconds), which
    float mode, and so ``import greedylr``, never needs.
    """
    global _recording_kept_out
    if not _recording_kept_out:
        DeviceMode._record_on_device = torch.compiler.disable(  # type: ignore[method-assign]
            DeviceMode._record_on_device
        )
        _recording_kept_out = True
        # importing torch._dynamo leaves a reference cycle through a frame (torch.fx's
        # wrap() keeps its own frame) whose f_back chain reaches the caller's frames:
        # the first device-mode run's locals (its scheduler, trace, open file and lock)
        # would live on until the cyclic GC ran. Collect it now, once per process.
        gc.collect()

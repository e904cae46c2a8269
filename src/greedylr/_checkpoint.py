"""Saving and restoring a GreedyLR: its state dict, and its copies.

A mixin of :class:`greedylr.GreedyLR`. The state dict holds plain values and tensors
only (it loads with ``torch.load(weights_only=True)``), is checked whole before anything
is changed, and restores the run bit-identically; a 0.1 state dict (format 1) loads as
the 0.1 rule, 0.2's knobs off. A copy (``pickle``, ``copy.deepcopy``,
``torch.save(scheduler)``) registers its optimizer-step counter again on the copy's
optimizer, whose hooks torch does not copy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from greedylr._attributes import SchedulerAttributes
from greedylr._device_mode import Decoder
from greedylr._guards import StepCounter, register_counter
from greedylr._values import write_lrs
from greedylr.config import check_budget_change
from greedylr.rule import KNOBS_OFF, GreedyConfig, RuleState

__all__ = ["STATE_KEYS", "Checkpointing"]

logger = logging.getLogger("greedylr")

STATE_KEYS = ("format", "config", "rule", "last_epoch", "_step_count", "_last_lr", "base_lrs",
              "pending")


def _saved_config(state_dict: dict[str, Any], current: GreedyConfig) -> GreedyConfig:
    """The configuration ``state_dict`` was saved with, refused (naming what differs) where
    it is not ``current`` but for the budget: a run may continue with another
    ``total_steps`` (a Trainer's larger ``max_steps``), and with another ``warmup`` (which
    a ``warmup_ratio`` derives from the budget), both checked against its state by
    :meth:`Checkpointing._checked_rule_state`."""
    config = state_dict["config"]
    if state_dict["format"] == 1:
        # 0.1 had none of 0.2's knobs: what it ran is those knobs switched off
        config = {**KNOBS_OFF, **config}
    saved = GreedyConfig.from_dict(config)
    diff = {
        k: (v, getattr(current, k))
        for k, v in saved.to_dict().items()
        if v != current.to_dict()[k]
    }
    budget_only = set(diff) <= {"total_steps", "warmup"} and (
        "total_steps" not in diff or current.total_steps is not None)
    if not budget_only:
        raise ValueError(
            f"state dict was saved with another configuration (saved, current): {diff}"
        )
    return saved


class Checkpointing(SchedulerAttributes):
    """``state_dict``, ``load_state_dict`` and copies of :class:`greedylr.GreedyLR`."""

    # set by GreedyLR: declared for the type checker (more in SchedulerAttributes)
    state: RuleState
    _optimizer_steps: StepCounter
    _hook: Any
    _sync_groups: Callable[[], None]
    _unchecked: str | None
    _set_marks: Callable[[], None]
    _rule_step: Callable[[bool | str], Any]

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
            # copies: a group added later must not change a state dict kept in memory
            "_last_lr": list(self._last_lr),
            "base_lrs": list(self.base_lrs),
            # float(): a device-mode sum is a tensor; one format for both modes
            "pending": [float(self._pending_sum), self._pending_count],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the run continues bit-identically.

        Everything is checked before anything is changed: a state dict that is refused
        leaves the scheduler as it was. A state saved with another ``total_steps`` (a run
        continued with a larger budget) loads, with a warning, and the run goes on with
        this scheduler's, as after :meth:`~greedylr.GreedyLR.set_total_steps`; so does one
        saved with another ``warmup`` (a ``warmup_ratio`` of the new budget) once the run
        is past both ramps, under the constant ``base_schedule`` (a decaying one decays over
        the steps after the warmup: the LR would jump). The trace notes the step resumed from
        (:meth:`Trace.resume <greedylr.Trace.resume>`): a file sink that has not written
        yet keeps the rows of its file up to that step and appends the new ones, so that a
        run resumed after a crash with the same sink path leaves one whole trace.

        Raises:
            ValueError: if the state was saved with another configuration (but the budget
                and the warmup) or another number of parameter groups, an entry is missing
                or malformed, the budget differs where
                :meth:`~greedylr.GreedyLR.set_total_steps` would refuse it (the final
                cooldown has started, or the new one would have), or the warmup differs
                inside either ramp or under a decaying ``base_schedule``.
        """
        rule, saved = self._checked_rule_state(state_dict)
        for knob in ("total_steps", "warmup"):
            if getattr(saved, knob) != getattr(self.config, knob):
                logger.warning("GreedyLR: the state was saved with %s=%s; the run goes on "
                               "with %s=%s", knob, getattr(saved, knob), knob,
                               getattr(self.config, knob))
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
        self._unchecked = None  # the LRs the constructor found are replaced
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            # torch's record of the run's base LR, which a later scheduler reads; the
            # constructor set it to the LR it found (see GreedyLR._initial_state)
            old = group.get("initial_lr")
            group["initial_lr"] = (torch.tensor(float(base), dtype=old.dtype, device=old.device)
                                   if isinstance(old, torch.Tensor) else base)
        if self.trace is not None:
            # what the trace's file sinks compare with the file they resume (the
            # constructor's were the LRs it found in the optimizer)
            self.trace.meta.update(base_lrs=list(rule.base_lrs), min_lrs=list(rule.min_lrs),
                                   max_lrs=list(rule.max_lrs))
            self.trace.resume(rule.step)

    def _checked_rule_state(self, state_dict: Any) -> tuple[RuleState, GreedyConfig]:
        """The rule state of ``state_dict`` and the configuration it was saved with (which
        differs from this scheduler's in the budget and warmup at most), once every entry
        was found consistent with this scheduler (see :meth:`load_state_dict`); changes
        nothing."""
        if (not isinstance(state_dict, dict) or state_dict.get("format") not in (1, 2)
                or "rule" not in state_dict):
            raise ValueError("not a greedylr.GreedyLR state dict")
        missing = [key for key in STATE_KEYS if key not in state_dict]
        if missing:
            raise ValueError(f"GreedyLR state dict has no {missing}; nothing was loaded")
        saved = _saved_config(state_dict, self.config)
        try:
            rule = RuleState.from_dict(state_dict["rule"])
        except TypeError as exc:
            raise ValueError(
                f"GreedyLR state dict: malformed 'rule' entry ({exc}); nothing was loaded"
            ) from exc
        if saved.warmup != self.config.warmup and rule.step < max(saved.warmup,
                                                                  self.config.warmup):
            raise ValueError(
                f"state dict was saved with warmup={saved.warmup} at step {rule.step}, this "
                f"GreedyLR has warmup={self.config.warmup}: a run can change its warmup only "
                f"once past both ramps (the LR would jump); build it with "
                f"warmup={saved.warmup} to resume that run; nothing was loaded")
        if saved.warmup != self.config.warmup and self.config.base_schedule != "constant":
            raise ValueError(
                f"state dict was saved with warmup={saved.warmup}, this GreedyLR has warmup="
                f"{self.config.warmup}: base_schedule={self.config.base_schedule!r} decays "
                f"over the steps after the warmup, so the LR would jump; build it with "
                f"warmup={saved.warmup} to resume that run; nothing was loaded")
        if saved.total_steps != self.config.total_steps:
            try:
                check_budget_change(self.config, rule.step, bool(rule.anneal_from), saved)
            except ValueError as exc:
                raise ValueError(
                    f"state dict was saved with total_steps={saved.total_steps}, this "
                    f"GreedyLR has {self.config.total_steps}: {exc}; build it with "
                    f"total_steps={saved.total_steps} to resume that run; nothing was loaded"
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
        return rule, saved

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
        self.__dict__.setdefault("_unchecked", None)  # a copy pickled by 0.11.7 or before
        self._step_rule = self._rule_step(self._compile_rule)
        self._hook = register_counter(self.optimizer, self._optimizer_steps)
        if self._device is not None and self.trace is not None:
            self.trace.set_decoder(Decoder(self))  # type: ignore[arg-type]  # a DeviceMode too

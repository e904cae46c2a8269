"""The checks that keep GreedyLR from failing silently, and their messages.

GreedyLR owns every LR of its optimizer, and decides once per optimizer step. Each way
of breaking that, which would otherwise go unnoticed, is detected here: an LR written by
something else (another scheduler chained with it, a manual write, an optimizer restored
without the scheduler), a ``step()`` before the first ``optimizer.step()``, repeated
calls between two optimizer steps (counted by a hook, :class:`StepCounter`), a group
that starts at LR 0. The scheduler's step makes the cheap tests itself (identity of the
LR objects written, the step count) and calls in here only when one fails.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from collections.abc import Sequence
from types import CodeType, FrameType
from typing import Any

import torch
from torch.optim import Optimizer

__all__ = ["CHAINING", "StepCounter", "check_lrs_are_ours", "lr_marks", "refuse_container_caller",
           "register_counter", "warn_order", "warn_zero_lrs"]

CHAINING = (
    "GreedyLR sets each LR from the loss, and its bounds, checkpoints and trace are in terms "
    "of that LR: chained with another scheduler (ChainedScheduler, SequentialLR, a LinearLR "
    "warmup stepped alongside) it would silently overwrite the other's LR, and losses seen "
    "during the other's phase would leak into its first decision. For a warmup, use GreedyLR "
    "alone with warmup=N (and warmup_start_factor): a linear ramp over N steps during which "
    "the losses only feed the smoother. To restart from new LRs, set each group's lr and build a "
    "new GreedyLR: it starts from them."
)


class StepCounter:
    """Counts optimizer steps through a post-hook; holds no reference to the scheduler."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        self.count += 1


def register_counter(optimizer: Optimizer, counter: StepCounter) -> Any:
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


def lr_marks(groups: Sequence[dict[str, Any]]) -> tuple[list[Any], bool]:
    """What each group's LR is now, for :func:`check_lrs_are_ours`: the float, or a tensor
    and its version counter; and whether every LR is a float."""
    lrs = [group["lr"] for group in groups]
    marks = [(lr, lr._version) if isinstance(lr, torch.Tensor) else lr for lr in lrs]
    return marks, not any(isinstance(lr, torch.Tensor) for lr in lrs)


def _container_code() -> dict[CodeType, str]:
    """The code of every method of torch's scheduler containers, to the container's name."""
    from torch.optim import lr_scheduler

    return {function.__code__: container.__name__
            for container in (lr_scheduler.SequentialLR, lr_scheduler.ChainedScheduler)
            for function in vars(container).values() if inspect.isfunction(function)}


def refuse_container_caller(frames: int = 8) -> None:
    """Refuse a ``step()`` without a loss that torch's ``SequentialLR`` or
    ``ChainedScheduler`` makes: holding GreedyLR first, they step it with no argument
    (``SequentialLR`` in its constructor), where "step() needs the loss" would send the
    user the wrong way. Called only where that step would fail anyway; it compares the
    code objects of the frames above (never their locals, which Python 3.11 would keep
    alive) with the containers' methods.

    Raises:
        RuntimeError: naming the container, with :data:`CHAINING`.
    """
    codes = _container_code()
    frame: FrameType | None = sys._getframe(1)
    for _ in range(frames):
        frame = frame.f_back if frame is not None else None
        if frame is None:
            return
        container = codes.get(frame.f_code)
        if container is not None:
            raise RuntimeError(f"GreedyLR is stepped by {container}, without a loss. "
                               f"{CHAINING}")


def check_lrs_are_ours(groups: Sequence[dict[str, Any]], marks: Sequence[Any]) -> None:
    """Refuse to go on if something else wrote an LR since GreedyLR's last write.

    Raises:
        RuntimeError: naming the group, the LR written and the one found.
    """
    for i, (group, mark) in enumerate(zip(groups, marks)):
        lr = group["lr"]
        if isinstance(lr, torch.Tensor):
            same = isinstance(mark, tuple) and mark[0] is lr and mark[1] == lr._version
            if not same and isinstance(mark, tuple) and mark[0] is not lr:
                # another tensor (optimizer.load_state_dict puts in its own): fine if it
                # holds the value GreedyLR wrote into the one it replaced (read only here)
                written = mark[0]
                same = written._version == mark[1] and float(written) == float(lr)
        else:
            same = not isinstance(mark, tuple) and lr == mark
        if not same:
            before = float(mark[0]) if isinstance(mark, tuple) else mark
            raise RuntimeError(
                f"the LR of parameter group {i} was changed outside GreedyLR since its "
                f"last step ({before!r} -> {float(lr)!r}): by another scheduler, a manual "
                "write, or optimizer.load_state_dict without GreedyLR.load_state_dict. "
                f"{CHAINING}"
            )


def warn_order() -> None:
    """Warn that ``step()`` came before any ``optimizer.step()`` (the caller warns once)."""
    warnings.warn(
        "Detected call of `GreedyLR.step()` before `optimizer.step()` (or the first "
        "optimizer steps were skipped, e.g. by a GradScaler): call `optimizer.step()` "
        "first, then `GreedyLR.step(loss)` with the loss of that step; otherwise the "
        "first decision is made before the initial LR was used.",
        UserWarning,
        stacklevel=3,
    )


def warn_zero_lrs(base_lrs: Sequence[float], first: int) -> None:
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

"""Between the caller's numbers and the rule's floats: a loss read as a float, LRs
written into parameter groups (tensor LRs in place)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["HELD_OUT", "as_float", "write_lrs"]

#: what ``observe_eval`` is given, in error messages
HELD_OUT = "the held-out value"


def as_float(loss: Any, what: str = "loss") -> float:
    """A loss (or the value ``what`` names) as a Python float: a number, or any
    one-element tensor or array.

    Raises:
        TypeError: for a string, a bool or an object that is not a number.
        ValueError: for a tensor or array with more than one element.
    """
    if isinstance(loss, (str, bytes, bool)) or loss is None:
        raise TypeError(f"{what} must be a number or a one-element tensor, got {loss!r}")
    shape = getattr(loss, "shape", None)
    if shape is not None:
        if math.prod(shape) != 1:
            raise ValueError(
                f"{what} must be a scalar, got a tensor of shape {tuple(shape)}; "
                "reduce it (e.g. loss.mean()) first"
            )
        # item() takes any one-element tensor or array; float() refuses arrays of ndim > 0
        item = loss.detach().item if isinstance(loss, torch.Tensor) else getattr(loss, "item", None)
        if item is not None:
            value = item()
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            raise TypeError(f"{what} must be a number or a one-element tensor, got {loss!r}")
    try:
        return float(loss)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be a number or a one-element tensor, got {loss!r}") from exc


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

"""Device mode's tensor work: a step's values as one small tensor on their device, and
the buffered rows back to the host in one transfer.

torch is imported here only when a tensor is recorded: the trace itself loads without it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from greedylr.trace.rows import _is_tensor


def row_tensor(loss: Any, smoothed: Any, lrs: Any, code: Any, extra: Any) -> tuple[Any, int]:
    """One row as one tensor (loss, smoothed, LRs, code, extra) and how many LRs it holds.

    One small kernel (``cat`` promotes the dtypes) and a copy: the caller may go on
    updating its own buffers in place.
    """
    import torch

    parts = [loss.reshape(1)]
    parts.append(smoothed.reshape(1) if _is_tensor(smoothed)
                 else torch.full((1,), math.nan if smoothed is None else float(smoothed),
                                 device=loss.device, dtype=loss.dtype))
    count = lrs.numel() if _is_tensor(lrs) else len(lrs)
    if _is_tensor(lrs):
        parts.append(lrs.reshape(-1))
    else:
        parts.extend(v.reshape(1) if _is_tensor(v)
                     else torch.full((1,), float(v), device=loss.device, dtype=loss.dtype)
                     for v in lrs)
    if _is_tensor(code):
        parts.append(code.reshape(1))
    else:
        parts.append(torch.full((1,), int(code or 0), device=loss.device, dtype=loss.dtype))
    if extra is not None:
        parts.append(extra.reshape(-1) if _is_tensor(extra) else torch.as_tensor(
            extra, device=loss.device, dtype=loss.dtype).reshape(-1))
    return torch.cat(parts), count


def rows_to_host(rows: list[Any], signal_rows: list[dict[str, Any]]) -> np.ndarray:
    """The buffered row tensors as one float64 array (one transfer); tensor-valued
    signals in ``signal_rows`` are replaced by floats in place (one transfer per name)."""
    import torch

    stacked = torch.stack(rows).reshape(len(rows), -1)
    values = stacked.to("cpu", torch.float64).numpy()
    tensors: dict[str, list[tuple[int, Any]]] = {}
    for i, signals in enumerate(signal_rows):
        for name, value in signals.items():
            if _is_tensor(value):
                tensors.setdefault(name, []).append((i, value))
    for name, items in tensors.items():
        host = torch.stack([v.reshape(()) for _, v in items]).to("cpu", torch.float64)
        for (i, _), value in zip(items, host.tolist(), strict=True):
            signal_rows[i][name] = value
    return values

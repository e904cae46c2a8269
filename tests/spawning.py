"""Start the ranks of a multi-process test and wait for them, never forever."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch.multiprocessing as mp

# Small patience and no smoothing: the rank-local losses of a multi-process test lead to
# different decisions within a few steps, so agreement is a real property, not a coincidence.
RANK_CONFIG = {
    "factor": 0.5,
    "patience": 1,
    "smoothing": "none",
    "min_lr_ratio": 1e-3,
    "max_lr_ratio": 1e3,
}


def spawn_ranks(fn: Callable[..., None], args: tuple[Any, ...], timeout: float,
                nprocs: int = 2) -> None:
    """Run ``fn(rank, *args)`` in ``nprocs`` spawned processes and join them.

    Raises the child's exception (``ProcessRaisedException``, with its traceback) if a
    rank fails, and ``TimeoutError`` if they have not all finished within ``timeout``
    seconds; every rank still alive is killed on the way out.
    """
    context = mp.start_processes(fn, args=args, nprocs=nprocs, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    try:
        # join() returns False while a rank is still running
        while not context.join(timeout=max(deadline - time.monotonic(), 0.0)):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the ranks did not finish within {timeout} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()

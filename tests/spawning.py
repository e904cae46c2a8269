"""Start the ranks of a multi-process test and wait for them, never forever."""

from __future__ import annotations

import socket
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


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a group's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loopback_rank_environment(rank: int, port: int, world: int = 2) -> dict[str, str]:
    """The environment variables that put a process in a torch.distributed group on
    127.0.0.1 only (what torchrun would set, and gloo's interface: loopback)."""
    return {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world),
            "RANK": str(rank), "LOCAL_RANK": str(rank), "GLOO_SOCKET_IFNAME": "lo"}

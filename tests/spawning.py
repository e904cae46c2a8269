"""Start the ranks of a multi-process test and wait for them, never forever."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch.distributed as dist
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
    context = mp.start_processes(_run_then_leave, args=(fn, *args), nprocs=nprocs, join=False,
                                 start_method="spawn")
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


def _run_then_leave(rank: int, fn: Callable[..., None], *args: Any) -> None:
    """Run ``fn(rank, *args)``; once it has returned, leave the process at once, without
    the interpreter's finalization.

    A gloo thread can still hold a tensor then (the group outlives destroy_process_group
    wherever something still references it); releasing it takes the GIL, which a
    finalizing interpreter refuses by ending the thread, and the process aborts
    ("terminate called without an active exception", pytorch PR 179291): a SIGABRT after
    the rank had passed, in CI three times in four stops. An exception from ``fn`` still
    goes to torch's spawn wrapper, which reports it to the parent."""
    fn(rank, *args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@contextlib.contextmanager
def gloo_group(rank: int, init_file: str, world: int = 2) -> Iterator[None]:
    """A gloo process group on 127.0.0.1 for the body, rendezvous through ``init_file``.

    On the way out, where the body succeeded, the collector runs first (a DDP model sits
    in a reference cycle that holds the group) and the ranks meet at a barrier (on torch
    2.3 a rank whose peer had already destroyed the group could hang in
    destroy_process_group); the group is destroyed in any case."""
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        yield
        gc.collect()
        dist.barrier()
    finally:
        dist.destroy_process_group()


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

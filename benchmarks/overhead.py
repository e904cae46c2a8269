"""Per-step cost of GreedyLR.step beside the schedulers people use today, in one run.

    python benchmarks/overhead.py [--steps 5000] [--rounds 15] [--no-compile]

Each scheduler steps ``--steps`` times per round on a one-group SGD optimizer (the
optimizer itself is not stepped: only the scheduler's cost is measured). Rounds are
interleaved so that machine noise hits every row alike; the table shows the median
microseconds per step: the fastest round (the one least disturbed by other processes,
as ``timeit`` advises; the ratio to CosineAnnealingLR is of these) and the median round,
the events that ``torch.profiler`` records per step (aten ops, nested ones included, and
for a compiled function its few wrapper events; compiled kernels are not ops), and the
aten ops a ``TorchDispatchMode`` sees per step (top-level calls only; ``-`` for the
compiled row: dynamo does not run under a user dispatch mode).

Rows with a tensor LR on this CPU: the automatic choice (float mode, the LR tensor
filled in place), to be within 3x of the float-LR step (the ratio is printed), and
device mode forced, eager and with ``compile_rule=True`` (inductor: the first step
compiles, tens of seconds; ``--no-compile`` leaves that row out).
It also prints the memory that 1,000,000 traced steps take.
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.profiler import profile
from torch.utils._python_dispatch import TorchDispatchMode

from greedylr import GreedyLR

FLOAT_ROW = "GreedyLR.step(loss), defaults (EMA span 50), trace on"
TENSOR_ROW = "GreedyLR.step(loss), tensor LR on the CPU (float mode), trace on"
COMPILED_ROW = "GreedyLR.step(loss), tensor LR, device mode compiled, trace on"


def _optimizer(tensor_lr: bool = False) -> torch.optim.Optimizer:
    lr = torch.tensor(0.1) if tensor_lr else 0.1
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(4))], lr=lr)


def _losses(n: int) -> list[float]:
    g = torch.Generator().manual_seed(0)
    walk = torch.cumsum(torch.randn(n, generator=g) * 0.01, 0) + 2.0
    return walk.abs().tolist()


def candidates(compiled: bool = True) -> dict[str, Callable[[], Callable[[float], None]]]:
    """name -> factory of a fresh ``step(loss)`` callable.

    Args:
        compiled: include the device-mode row with ``compile_rule=True``.
    """

    def cosine():
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(_optimizer(), T_max=10**9)
        return lambda loss: sched.step()

    def plateau():
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(_optimizer())
        return sched.step

    def greedy(tensor_lr: bool = False, **kwargs):
        def make():
            return GreedyLR(_optimizer(tensor_lr), **kwargs).step

        return make

    out = {
        "CosineAnnealingLR.step()": cosine,
        "ReduceLROnPlateau.step(loss)": plateau,
    }
    try:
        import transformers

        def hf():
            return transformers.GreedyLR(_optimizer(), smooth=True, window_size=50).step

        def hf_window(window):
            return lambda: transformers.GreedyLR(_optimizer(), smooth=True, window_size=window).step

        out["transformers.GreedyLR.step(loss), window 50"] = hf
        out["transformers.GreedyLR.step(loss), window 1000"] = hf_window(1000)
    except ImportError:  # the benchmark still runs without the hf extra
        pass
    out["GreedyLR.step(loss), defaults, trace off"] = greedy(trace=False)
    out[FLOAT_ROW] = greedy()
    # the spike guard (a knob, off by default) tests every raw loss against the first
    out["GreedyLR.step(loss), spike_ratio=10, trace on"] = greedy(spike_ratio=10.0)
    out[TENSOR_ROW] = greedy(tensor_lr=True)
    out["GreedyLR.step(loss), tensor LR, device mode (forced), trace on"] = greedy(
        tensor_lr=True, device_mode=True)
    if compiled:
        out[COMPILED_ROW] = greedy(
            tensor_lr=True, compile_rule=True)
    for window in (10, 50, 1000):  # the ring buffer must cost the same at any size
        out[f"GreedyLR.step(loss), window mean {window}, trace on"] = greedy(
            smoothing="window", window=window
        )
    return out


def _per_step(factory: Callable[[], Callable[[float], None]], steps: int, counter: Any,
              count: Callable[[Any], int]) -> float:
    """``count(counter)`` per step for ``steps`` steps run under ``counter``, after a
    warm-up (and compilation)."""
    step = factory()
    losses = _losses(steps + 10)
    for loss in losses[:10]:
        step(loss)
    with counter:
        for loss in losses[10:]:
            step(loss)
    return count(counter) / steps


def ops_per_step(factory: Callable[[], Callable[[float], None]], steps: int = 100) -> float:
    """Events that ``torch.profiler`` records per step, after a warm-up (and compilation)."""
    return _per_step(factory, steps, profile(), lambda prof: len(prof.events()))


class _CountOps(TorchDispatchMode):
    """Counts the aten ops dispatched while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def dispatched_per_step(factory: Callable[[], Callable[[float], None]], steps: int = 100) -> float:
    """Aten ops per step seen by a ``TorchDispatchMode``, after a warm-up."""
    return _per_step(factory, steps, _CountOps(), lambda counter: counter.count)


def measure(steps: int, rounds: int, compiled: bool = True) -> dict[str, list[float]]:
    """name -> microseconds per step of each round."""
    losses = _losses(steps)
    factories = candidates(compiled)
    for factory in factories.values():  # compile once, before the clock runs
        factory()(losses[0])
    times: dict[str, list[float]] = {name: [] for name in factories}
    for _ in range(rounds):
        for name, factory in factories.items():
            step = factory()
            gc.collect()
            start = time.perf_counter()
            for loss in losses:
                step(loss)
            times[name].append((time.perf_counter() - start) / steps * 1e6)
    return times


def traced_memory(steps: int = 1_000_000) -> float:
    """MiB held by the trace after ``steps`` traced steps (tracemalloc, trace only)."""
    sched = GreedyLR(_optimizer(), window=50)
    losses = _losses(10_000)
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for i in range(steps):
        sched.step(losses[i % len(losses)])
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (current - base) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--memory-steps", type=int, default=1_000_000)
    parser.add_argument("--no-compile", dest="compiled", action="store_false",
                        help="leave out the compile_rule=True row (inductor compiles for seconds)")
    args = parser.parse_args()
    # the optimizer is never stepped here, on purpose: silence the call-order warnings
    for scheduler in ("lr_scheduler", "GreedyLR"):
        warnings.filterwarnings("ignore",
                                message=re.escape(f"Detected call of `{scheduler}.step()`"))
    torch.set_num_threads(1)
    result = measure(args.steps, args.rounds, args.compiled)
    factories = candidates(args.compiled)
    reference = min(result["CosineAnnealingLR.step()"])
    width = max(map(len, result))
    print(f"{'scheduler':<{width}}  us/step  x cosine  median  ops/step  aten/step")
    for name, micros in result.items():
        best = min(micros)
        aten = "-" if name == COMPILED_ROW else f"{dispatched_per_step(factories[name]):.1f}"
        print(f"{name:<{width}}  {best:7.2f}  {best / reference:8.2f}  "
              f"{statistics.median(micros):6.2f}  {ops_per_step(factories[name]):8.1f}  "
              f"{aten:>9}")
    ratio = min(result[TENSOR_ROW]) / min(result[FLOAT_ROW])
    print(f"tensor LR on the CPU vs float LR, trace on: {ratio:.2f}x (goal: <= 3x)")
    if args.memory_steps:
        mib = traced_memory(args.memory_steps)
        print(f"trace memory for {args.memory_steps:,} steps: {mib:.1f} MiB "
              f"({mib * 2**20 / args.memory_steps:.1f} bytes/step)")


if __name__ == "__main__":
    main()

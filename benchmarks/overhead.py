"""Per-step cost of GreedyLR.step beside the schedulers people use today, in one run.

    python benchmarks/overhead.py [--steps 5000] [--rounds 15]

Each scheduler steps ``--steps`` times per round on a one-group SGD optimizer (the
optimizer itself is not stepped: only the scheduler's cost is measured). Rounds are
interleaved so that machine noise hits every row alike; the table shows the median
microseconds per step: the fastest round (the one least disturbed by other processes,
as ``timeit`` advises; the ratio to CosineAnnealingLR is of these) and the median round.
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

import torch

from greedylr import GreedyLR


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(4))], lr=0.1)


def _losses(n: int) -> list[float]:
    g = torch.Generator().manual_seed(0)
    walk = torch.cumsum(torch.randn(n, generator=g) * 0.01, 0) + 2.0
    return walk.abs().tolist()


def candidates() -> dict[str, Callable[[], Callable[[float], None]]]:
    """name -> factory of a fresh ``step(loss)`` callable."""

    def cosine():
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(_optimizer(), T_max=10**9)
        return lambda loss: sched.step()

    def plateau():
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(_optimizer())
        return sched.step

    def greedy(**kwargs):
        def make():
            return GreedyLR(_optimizer(), **kwargs).step

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
    out["GreedyLR.step(loss), defaults (EMA span 50), trace on"] = greedy()
    for window in (10, 50, 1000):  # the ring buffer must cost the same at any size
        out[f"GreedyLR.step(loss), window mean {window}, trace on"] = greedy(
            smoothing="window", window=window
        )
    return out


def measure(steps: int, rounds: int) -> dict[str, list[float]]:
    """name -> microseconds per step of each round."""
    losses = _losses(steps)
    factories = candidates()
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
    args = parser.parse_args()
    # the optimizer is never stepped here, on purpose: silence torch's call-order warning
    warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()`"))
    torch.set_num_threads(1)
    result = measure(args.steps, args.rounds)
    reference = min(result["CosineAnnealingLR.step()"])
    width = max(map(len, result))
    print(f"{'scheduler':<{width}}  us/step  x cosine  median")
    for name, micros in result.items():
        best = min(micros)
        print(f"{name:<{width}}  {best:7.2f}  {best / reference:8.2f}  "
              f"{statistics.median(micros):6.2f}")
    if args.memory_steps:
        mib = traced_memory(args.memory_steps)
        print(f"trace memory for {args.memory_steps:,} steps: {mib:.1f} MiB "
              f"({mib * 2**20 / args.memory_steps:.1f} bytes/step)")


if __name__ == "__main__":
    main()

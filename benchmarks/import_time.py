"""What importing greedylr costs beside importing torch, measured side by side in one run.

    python benchmarks/import_time.py [--rounds 7]

Each statement runs in a fresh interpreter (``python -c``) that times only the statement
itself, so the interpreter's own start-up is not counted. Rounds are interleaved (torch,
then each greedylr statement, then torch again...) so that machine noise hits every row
alike. The table shows the fastest round (the least disturbed, as ``timeit`` advises) and
the median round, and each row's ratio to ``import torch``. The target: ``from greedylr
import GreedyLR, ...`` costs at most 1.1x ``import torch`` (the scheduler needs torch, and
nothing heavy beyond it, such as ``torch._dynamo``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

STATEMENTS = {
    "import torch": "import torch",
    "import greedylr": "import greedylr",
    "from greedylr import GreedyLR, Trace, diagnose":
        "from greedylr import GreedyLR, Trace, diagnose",
    "import greedylr.rule": "import greedylr.rule",
}
BASELINE = "import torch"

_TIMER = (
    "import time\n"
    "start = time.perf_counter()\n"
    "{statement}\n"
    "print(time.perf_counter() - start)\n"
)


def time_once(statement: str) -> float:
    """Seconds that ``statement`` takes in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _TIMER.format(statement=statement)],
        capture_output=True, text=True, check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def measure(rounds: int) -> dict[str, list[float]]:
    """Every statement ``rounds`` times, interleaved."""
    times: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    for _ in range(rounds):
        for name, statement in STATEMENTS.items():
            times[name].append(time_once(statement))
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    args = parser.parse_args(argv)
    import torch

    import greedylr  # the versions for the header; timed in fresh interpreters only

    times = measure(args.rounds)
    best = {name: min(values) for name, values in times.items()}
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, greedylr "
          f"{greedylr.__version__}; {args.rounds} interleaved rounds, fresh interpreters")
    width = max(map(len, STATEMENTS))
    print(f"{'statement':<{width}}  {'min s':>7}  {'median s':>8}  "
          f"{'/ torch (min)':>13}  {'/ torch (median)':>16}")
    for name in STATEMENTS:
        print(f"{name:<{width}}  {best[name]:7.3f}  {median[name]:8.3f}  "
              f"{best[name] / best[BASELINE]:13.2f}  {median[name] / median[BASELINE]:16.2f}")


if __name__ == "__main__":
    main()

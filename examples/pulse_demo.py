"""The pulse of a real run: GreedyLR through a bad data shard, traced, diagnosed, plotted.

    pip install 'greedylr[compare]'               # scikit-learn's digits, matplotlib
    python examples/pulse_demo.py                 # writes runs/pulse/pulse.jsonl and .png
    python examples/pulse_demo.py --clean         # the same seed without the bad shard
    greedylr diagnose runs/pulse/pulse.jsonl      # the episodes
    greedylr plot runs/pulse/pulse.jsonl -o runs/pulse/pulse.png   # the two-panel figure

A small MLP learns scikit-learn's bundled digits with AdamW under GreedyLR. For a stretch
of steps the batches come from a "bad shard": the same images with their labels shuffled,
as a corrupted data source would deliver them. The loss jumps, GreedyLR contracts the LR,
and :func:`greedylr.diagnose` finds the episode. The batch's source is logged on the trace
with the gradient norm, so the diagnosis can tell that the loss moved for data reasons.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import greedylr
from greedylr import GreedyLR, Trace
from greedylr.plot import plot_trace

logger = logging.getLogger("pulse_demo")

#: The injected bad shard of the default run: steps 300..319 (inclusive).
BAD_SHARD = (300, 320)


def run(
    *,
    steps: int = 800,
    seed: int = 0,
    bad_shard: tuple[int, int] | None = BAD_SHARD,
    batch_size: int = 64,
    lr: float = 1e-3,
) -> tuple[Trace, float]:
    """Train and trace one run; return the trace and the held-out accuracy.

    Args:
        steps: optimizer steps.
        seed: seeds the split, the initialisation, the batches and the shuffle.
        bad_shard: ``(first, stop)``: the optimizer steps ``first <= step < stop`` (counted
            from 1) train on batches whose labels are shuffled; None for a clean run. The
            clean and the bad run of a seed draw the same batches.
        batch_size: examples per step.
        lr: AdamW's base learning rate.
    """
    torch.manual_seed(seed)
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x / 16.0, y, test_size=0.25, random_state=seed, stratify=y
    )
    x_train, x_test = (torch.tensor(a, dtype=torch.float32) for a in (x_train, x_test))
    y_train, y_test = (torch.tensor(a) for a in (y_train, y_test))

    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    scheduler = GreedyLR(optimizer)  # the defaults
    trace = scheduler.trace
    assert trace is not None

    batches = torch.Generator().manual_seed(seed)
    shuffles = torch.Generator().manual_seed(seed + 1)
    for step in range(1, steps + 1):
        index = torch.randint(len(x_train), (batch_size,), generator=batches)
        labels = y_train[index]
        # drawn on every step so that the clean run sees exactly the same batches
        permutation = torch.randperm(batch_size, generator=shuffles)
        bad = bad_shard is not None and bad_shard[0] <= step < bad_shard[1]
        if bad:
            labels = labels[permutation]
        loss = torch.nn.functional.cross_entropy(model(x_train[index]), labels)
        optimizer.zero_grad()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
        optimizer.step()
        trace.log(grad_norm=float(grad_norm), source="bad-shard" if bad else "train")
        scheduler.step(loss)

    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return trace, accuracy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clean", action="store_true", help="no bad shard")
    parser.add_argument("--out", type=Path, default=Path("runs/pulse"),
                        help="output folder (default: runs/pulse, ignored by git)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # a 10k-parameter model: one thread is fastest, and polite on a shared machine
    torch.set_num_threads(1)

    trace, accuracy = run(steps=args.steps, seed=args.seed,
                          bad_shard=None if args.clean else BAD_SHARD)
    name = "pulse-clean" if args.clean else "pulse"
    args.out.mkdir(parents=True, exist_ok=True)
    path = trace.save(args.out / f"{name}.jsonl")
    diagnosis = greedylr.diagnose(trace)
    title = (f"MLP on digits, GreedyLR defaults, seed {args.seed}"
             + ("" if args.clean else f"; labels shuffled in steps {BAD_SHARD[0]}-"
                f"{BAD_SHARD[1] - 1}"))
    figure = plot_trace(trace, args.out / f"{name}.png", diagnosis=diagnosis,
                                      title=title)
    logger.info("held-out accuracy %.3f; trace %s; figure %s", accuracy, path, figure)
    logger.info("%s", diagnosis)


if __name__ == "__main__":
    main()

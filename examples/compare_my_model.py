"""A/B GreedyLR against your current schedule, on your own training loop.

``train`` below is an ordinary PyTorch loop (a small MLP on scikit-learn's bundled
handwritten digits: 1,437 training images, 180 validation and 180 test images) with three
added lines, marked ``# 1``, ``# 2`` and ``# 3``. The harness calls it once per schedule
and seed with a ``trial`` that

1. builds the schedule under test for your optimizer (at your optimizer's LR, or at
   ``--lr``, which it sets on your optimizer: an LR grid needs no change here),
2. steps it with the loss (and records the loss and the LR),
3. records your held-out metric (on the test images) and gives the schedule the
   validation loss (``feed=``), as ``scheduler.observe_eval`` would get it in your own
   loop: GreedyLR and ``reduce_on_plateau_eval`` react to it, the other schedules ignore
   it. The schedule is fed data the reported metric never sees, or it would be tuned on
   what it is judged on.

Run the comparison from the command line (``pip install 'greedylr[compare]'`` first: the
harness and scikit-learn)::

    greedylr compare examples/compare_my_model.py:train \\
        --schedules greedy,cosine --seeds 5 --steps 500 --eval-every 50 --out runs/compare-digits

To judge every schedule on an average of its weights (what the README recommends for
GreedyLR: ``greedylr.averaged_model``), add ``--set workload_power_ema=7`` and run again
into the same folder: the report then has an arm per schedule and way of scoring
(``greedy``, ``greedy(workload_power_ema=7)``, ...). The training runs are the same (the
schedule is fed the trained weights' validation loss either way); only what is scored
changes (the lines marked ``# average``).

Or from Python (``python examples/compare_my_model.py``), which does the same through
the API. Both store one result file per trial in the output folder (rerun to resume an
interrupted comparison), write ``report.md`` with figures there, and print the table.
``runs/`` is ignored by git: results stay out of your commits.
"""

from __future__ import annotations

import functools

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import greedylr


@functools.cache
def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    # a fixed split: every schedule and seed is judged on the same held-out images
    x_train, x_test, y_train, y_test = train_test_split(
        x / 16.0, y, test_size=0.2, random_state=0, stratify=y
    )
    as_x = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return as_x(x_train), torch.tensor(y_train), as_x(x_test), torch.tensor(y_test)


def _halves(x: torch.Tensor, y: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], ...]:
    """The held-out images as a validation half (odd rows, fed to the schedule) and a
    test half (even rows, the reported metric)."""
    return (x[1::2], y[1::2]), (x[0::2], y[0::2])


def train(trial) -> None:  # type: ignore[no-untyped-def]
    """Your training function; the harness seeds torch with ``trial.seed`` first."""
    x_train, y_train, x_held, y_held = _data()
    (x_val, y_val), (x_test, y_test) = _halves(x_held, y_held)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    trial.scheduler(optimizer)  # 1: was scheduler = CosineAnnealingLR(optimizer, ...)
    gamma = trial.options.get("workload_power_ema")  # average: --set workload_power_ema=7
    averaged = None if gamma is None else greedylr.averaged_model(model, gamma)  # average
    scored = model if averaged is None else averaged.module  # average

    for _ in range(trial.steps):
        batch = torch.randint(len(x_train), (64,))
        loss = torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if averaged is not None:  # average
            averaged.update_parameters(model)  # average
        trial.step(loss)  # 2: was scheduler.step()

        if trial.should_eval():
            with trial.evaluating(scored):  # eval mode, no grad, then back to training
                accuracy = (scored(x_test).argmax(1) == y_test).float().mean().item()
            with trial.evaluating(model):  # the weights it trains: the same runs either way
                val_loss = torch.nn.functional.cross_entropy(model(x_val), y_val).item()
            trial.report(accuracy=accuracy, feed=val_loss)  # 3: metric, and a value to react to


# optional facts for the harness, read from the function: the headline metric and its
# direction (otherwise the first reported name, and a guess from it)
train.metric = "accuracy"  # type: ignore[attr-defined]
train.higher_is_better = True  # type: ignore[attr-defined]


def main(out: str = "runs/compare-digits", seeds: int = 5, steps: int = 500) -> None:
    """The same comparison as the command in the module docstring, through the API."""
    from greedylr.studies.report import print_summary, write_report
    from greedylr.studies.runner import make_specs, run_trials

    specs = make_specs(
        "compare",
        [f"{__file__}:train"],
        ["greedy", "cosine"],
        range(seeds),
        steps=steps,
        eval_every=50,
    )
    results = run_trials(specs, out, progress=True)
    print(f"report: {write_report(out)}")
    print_summary(results, title=f"digits MLP, {steps} steps, {seeds} seeds")


if __name__ == "__main__":
    main()

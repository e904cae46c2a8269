"""A tiny real training function for the studies' tests (sklearn's diabetes data).

Referenced by file path (``.../toy_train.py:train``) so that worker processes and Ray
workers import it the way they import user code. Options, through the settings:
``workload_fail_at`` raises at that step, ``workload_nan_at`` reports a NaN loss there,
``workload_sleep`` sleeps that long per step (to interrupt a study mid-run),
``workload_kill_at`` kills its own process with SIGKILL at that step (a worker that dies),
``workload_exit_at`` ends it with ``os._exit(3)`` there (code that ends its process),
``workload_running_dir`` holds a file ``<node>-<pid>`` there while it trains (``node``:
the Ray node id under Ray, else ``local``), so that a test sees where trials run now;
``workload_feed`` feeds the schedule the held-out mse (``trial.report(feed=...)``);
``trial_range_test`` (the protocol's) runs an LR range test before the schedule.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

metric = "mse"
higher_is_better = False
lr = 0.05


def _diabetes() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's bundled diabetes data, read without importing sklearn (slow to import)."""
    package = importlib.util.find_spec("sklearn").submodule_search_locations[0]  # type: ignore[union-attr]
    data = Path(package) / "datasets" / "data"
    x = np.loadtxt(data / "diabetes_data_raw.csv.gz")
    y = np.loadtxt(data / "diabetes_target.csv.gz")
    return (x - x.mean(0)) / x.std(0), y


@contextlib.contextmanager
def _running(folder: str | None) -> Iterator[None]:
    if folder is None:
        yield
        return
    ray = sys.modules.get("ray")
    node = ray.get_runtime_context().get_node_id() if ray and ray.is_initialized() else "local"
    marker = Path(folder, f"{node}-{os.getpid()}")
    marker.touch()
    try:
        yield
    finally:
        marker.unlink()


def train(trial) -> None:  # type: ignore[no-untyped-def]
    with _running(trial.options.get("workload_running_dir")):
        _train(trial)


def _train(trial) -> None:  # type: ignore[no-untyped-def]
    x, y = _diabetes()
    x = torch.tensor(x, dtype=torch.float32)
    y = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32)
    x_train, y_train, x_test, y_test = x[:350], y[:350], x[350:], y[350:]
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    optimizer = trial.optimizer(model.parameters())
    generator = torch.Generator().manual_seed(trial.seed)

    def sweep_step() -> torch.Tensor:  # with trial_range_test=true: the range test's steps
        batch = torch.randint(len(x_train), (32,), generator=generator)
        loss = torch.nn.functional.mse_loss(model(x_train[batch]).squeeze(1), y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    trial.range_test(model, optimizer, sweep_step)
    trial.scheduler(optimizer)
    options = trial.options
    for step in range(1, trial.steps + 1):
        batch = torch.randint(len(x_train), (32,), generator=generator)
        loss = torch.nn.functional.mse_loss(model(x_train[batch]).squeeze(1), y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == options.get("workload_kill_at"):
            os.kill(os.getpid(), signal.SIGKILL)
        if step == options.get("workload_exit_at"):
            os._exit(3)
        if step == options.get("workload_fail_at"):
            raise ValueError(f"boom at step {step}")
        trial.step(float("nan") if step == options.get("workload_nan_at") else loss)
        if options.get("workload_sleep"):
            time.sleep(options["workload_sleep"])
        if trial.should_eval():
            with trial.evaluating(model):
                mse = torch.nn.functional.mse_loss(model(x_test).squeeze(1), y_test)
                fed = {"feed": float(mse)} if options.get("workload_feed") else {}
                trial.report(mse=float(mse), **fed)


train.metric = metric  # type: ignore[attr-defined]
train.higher_is_better = higher_is_better  # type: ignore[attr-defined]
train.lr = lr  # type: ignore[attr-defined]

"""MLPs on bundled tabular datasets: sklearn's wine, breast cancer (classification) and
diabetes, and mlxtend's Auto MPG (regression, held-out RMSE in target standard deviations
and R^2)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import tabular
from greedylr.evidence.workloads.loop import batch_sampler, fit_classifier, run, split_evaluator

__all__ = ["train_autompg", "train_breast_cancer", "train_diabetes", "train_wine"]


def _mlp(n_in: int, n_out: int, hidden: int = 64) -> nn.Module:
    return nn.Sequential(
        nn.Linear(n_in, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_out),
    )


def _train_classifier(trial, name: str, classes: int) -> None:
    data = tabular(name)
    fit_classifier(trial, _mlp(data.x_train.shape[1], classes), data, 32)


def train_wine(trial) -> None:
    _train_classifier(trial, "wine", 3)


def train_breast_cancer(trial) -> None:
    _train_classifier(trial, "breast_cancer", 2)


def _train_regression(trial, name: str) -> None:
    data = tabular(name)

    def metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        mse = F.mse_loss(model(x).squeeze(-1), y).item()
        var = y.var(unbiased=False).item()
        return {"rmse": mse**0.5, "r2": 1.0 - mse / var, "loss": mse}

    run(
        trial,
        _mlp(data.x_train.shape[1], 1),
        batch_sampler(data.x_train, data.y_train, 32),
        lambda m, b: F.mse_loss(m(b[0]).squeeze(-1), b[1]),
        split_evaluator(trial, metrics, data.x_test, data.y_test),
    )


def train_diabetes(trial) -> None:
    _train_regression(trial, "diabetes")


def train_autompg(trial) -> None:
    _train_regression(trial, "autompg")


_COMMON: dict[str, Any] = {"family": "mlp", "eval_every": 50}
register(
    Workload(
        name="wine_mlp",
        train=train_wine,
        task="classification",
        data="sklearn wine (13 features, 3 classes, 134 train / 44 held out)",
        lr=0.01,
        steps=200,
        optimizer="adagrad",
        quick_steps=150,
        lrs=(("adamw", 1e-3), ("sgd", 0.01)),
        **_COMMON,
    )
)
register(
    Workload(
        name="breast_cancer_mlp",
        train=train_breast_cancer,
        task="classification",
        data="sklearn breast cancer (30 features, 2 classes, 427 train / 142 held out)",
        lr=0.01,
        steps=300,
        optimizer="adagrad",
        quick_steps=150,
        lrs=(("adamw", 1e-3), ("sgd", 0.01)),
        **_COMMON,
    )
)
register(
    Workload(
        name="diabetes_mlp",
        train=train_diabetes,
        task="regression",
        data="sklearn diabetes (10 features, 332 train / 110 held out)",
        lr=1e-3,
        steps=400,
        optimizer="adamw",
        metric="rmse",
        higher_is_better=False,
        quick_steps=200,
        lrs=(("adagrad", 0.01), ("sgd", 0.01)),
        **_COMMON,
    )
)
register(
    Workload(
        name="autompg_mlp",
        train=train_autompg,
        task="regression",
        data="mlxtend Auto MPG (7 features, 294 train / 98 held out)",
        lr=0.0316,
        steps=300,
        optimizer="sgd",
        metric="rmse",
        higher_is_better=False,
        quick_steps=150,
        **_COMMON,
    )
)

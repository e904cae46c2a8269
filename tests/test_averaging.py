"""The power-function EMA of the weights (:mod:`greedylr.averaging`), by hand."""

from __future__ import annotations

import math

import pytest
import torch

import greedylr
from greedylr.averaging import averaged_model, power_ema


@pytest.mark.parametrize(("gamma", "expected"), [
    (0.0, 7 / 3),  # the plain mean of 1, 2, 4 (SWA)
    # EDM2's update: by 1 - (1/2)**2 = 3/4 to 1.75, then by 1 - (2/3)**2 = 5/9 to 3.0
    (1.0, 3.0),
])
def test_power_ema_by_hand(gamma: float, expected: float) -> None:
    model = torch.nn.Linear(1, 1, bias=False)
    averaged = torch.optim.swa_utils.AveragedModel(model, avg_fn=power_ema(gamma))
    for value in (1.0, 2.0, 4.0):
        model.weight.data.fill_(value)
        averaged.update_parameters(model)
    assert averaged.module.weight.item() == pytest.approx(expected)


def test_default_covers_the_last_tenth_of_the_run() -> None:
    """gamma 7 after 1000 constant-then-jumping steps: the average has moved by about
    the share of the profile tau**7 in the last 10% of the run (1 - 0.9**8 = 0.57)."""
    model = torch.nn.Linear(1, 1, bias=False)
    averaged = averaged_model(model)
    for step in range(1, 1001):
        model.weight.data.fill_(0.0 if step <= 900 else 1.0)
        averaged.update_parameters(model)
    assert averaged.module.weight.item() == pytest.approx(1 - 0.9**8, abs=0.01)


def test_averaged_model_averages_batchnorm_statistics() -> None:
    model = torch.nn.BatchNorm1d(2)
    averaged = greedylr.averaged_model(model, gamma=0)
    for shift in (0.0, 4.0):
        model.running_mean.fill_(shift)
        averaged.update_parameters(model)
    assert averaged.module.running_mean.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("gamma", [-1.0, math.nan, math.inf, True, "7"])
def test_bad_gamma_is_refused_with_its_value(gamma: object) -> None:
    with pytest.raises(ValueError, match="gamma must be a finite number >= 0"):
        power_ema(gamma)  # type: ignore[arg-type]

"""The LR range test (:mod:`greedylr.range_test`): its reading by hand, and a sweep that
leaves no trace but the suggestion."""

from __future__ import annotations

import math

import pytest
import torch

import greedylr
from greedylr.range_test import RangeTest, lr_range_test


def test_reading_by_hand() -> None:
    """beta 0.5, cut at 2x the best. Averages 2, 2, 1.5, 4.75 over the bias corrections
    0.5, 0.75, 0.875, 0.9375: 4, 8/3, 12/7, 76/15; the last is above 2 * 12/7, so the
    sweep is cut there and the fifth loss is never read."""
    test = RangeTest.read([0.1], [1, 10, 100, 1000, 10000], [4, 2, 1, 8, 100],
                          beta=0.5, stop=2)
    assert test.smoothed == pytest.approx((4, 8 / 3, 12 / 7, 76 / 15))
    assert test.stopped
    assert test.best_multiplier == 100
    assert test.multiplier == 10  # valley / 10
    assert test.lrs == pytest.approx([1.0])


def test_reading_stops_at_a_non_finite_loss_and_needs_a_first_one() -> None:
    test = RangeTest.read([1.0], [1, 2, 3, 4], [3, 2, math.nan, 0.1], beta=0)
    assert test.smoothed == (3, 2) and test.stopped and test.best_multiplier == 2
    unfinished = RangeTest.read([1.0], [1, 2, 3, 4], [3, 2], beta=0)
    assert not unfinished.stopped
    with pytest.raises(ValueError, match="first loss is not finite"):
        RangeTest.read([1.0], [1, 2], [math.inf, 1.0])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"steps": 1}, "steps must be an int >= 2"),
    ({"steps": 10.0}, "steps must be an int >= 2"),
    ({"start": 0.0}, "0 < start < end"),
    ({"start": 1.0, "end": 1.0}, "0 < start < end"),
    ({"end": math.inf}, "0 < start < end"),
    ({"beta": 1.0}, "beta must be in"),
    ({"stop": 1.0}, "stop must be above 1"),
])
def test_arguments_are_checked_before_any_step(kwargs: dict, match: str) -> None:
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=match):
        lr_range_test(model, optimizer, lambda: pytest.fail("stepped"), **kwargs)


def _regression(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 8, generator=generator)
    return x, x @ torch.randn(8, 1, generator=generator) + 0.1 * torch.randn(
        256, 1, generator=generator)


class _Loop:
    """A user's loop: a model with dropout (it draws on torch's generator), Adam with
    momentum state, minibatches in order."""

    def __init__(self, lr: float) -> None:
        torch.manual_seed(0)
        self.model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.1),
                                         torch.nn.Linear(16, 1))
        self.optimizer = torch.optim.Adam(
            [{"params": self.model[0].parameters()},
             {"params": self.model[2].parameters(), "lr": lr / 2}], lr=lr)
        self.x, self.y = _regression()
        self.k = 0
        self.seen_lrs: list[list[float]] = []

    def step(self) -> torch.Tensor:
        i = self.k % 8
        self.k += 1
        self.seen_lrs.append([g["lr"] for g in self.optimizer.param_groups])
        loss = torch.nn.functional.mse_loss(self.model(self.x[32 * i:32 * i + 32]),
                                            self.y[32 * i:32 * i + 32])
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss


def test_the_sweep_leaves_model_optimizer_and_generators_as_they_were() -> None:
    """Range test, apply, train: bit for bit the run trained at the suggested LR from
    the same state, with the same dropout draws."""
    loop = _Loop(1e-2)
    for _ in range(5):  # Adam's moments are not empty when the test starts
        loop.step()
    before = {k: v.clone() for k, v in loop.model.state_dict().items()}
    before_moments = [s["exp_avg"].clone() for s in loop.optimizer.state.values()]
    rng = torch.get_rng_state()
    test = lr_range_test(loop.model, loop.optimizer, loop.step, steps=50)
    assert all(torch.equal(before[k], v) for k, v in loop.model.state_dict().items())
    assert all(torch.equal(m, s["exp_avg"]) for m, s in
               zip(before_moments, loop.optimizer.state.values()))
    assert torch.equal(torch.get_rng_state(), rng)
    assert [g["lr"] for g in loop.optimizer.param_groups] == [1e-2, 5e-3]
    # the sweep multiplied both groups by the same geometric multiples
    assert [lrs[0] / 1e-2 for lrs in loop.seen_lrs[5:]] == pytest.approx(
        list(test.multipliers[:len(test.losses)]))
    assert all(lrs[1] == pytest.approx(lrs[0] / 2) for lrs in loop.seen_lrs[5:])

    test.apply(loop.optimizer)
    loop.k = 0
    after = [loop.step().item() for _ in range(20)]

    fresh = _Loop(1e-2)
    for _ in range(5):
        fresh.step()
    for group, lr in zip(fresh.optimizer.param_groups, test.lrs):
        group["lr"] = lr
    fresh.k = 0
    assert [fresh.step().item() for _ in range(20)] == after


def test_the_sweep_stops_where_the_loss_blows_up_and_suggests_a_stable_lr() -> None:
    """Plain gradient descent on a least-squares problem diverges above 2 / L (L the
    largest eigenvalue of the Hessian): the sweep stops past it and the suggestion is
    below it."""
    x, y = _regression()
    model = torch.nn.Linear(8, 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    curvature = torch.linalg.eigvalsh(2 * x.T @ x / len(x)).max().item()

    def step() -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    test = lr_range_test(model, optimizer, step)
    assert test.stopped and len(test.losses) < 100
    assert 0.1 * test.multipliers[len(test.losses) - 1] > 2 / curvature
    assert test.lrs[0] < 2 / curvature < 0.1 * test.best_multiplier * 10


def test_a_failing_step_still_puts_everything_back() -> None:
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []

    def step() -> float:
        calls.append(1)
        model.weight.data.add_(1.0)
        if len(calls) == 3:
            raise RuntimeError("out of memory")
        return 1.0

    with pytest.raises(RuntimeError, match="out of memory"):
        lr_range_test(model, optimizer, step)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert optimizer.param_groups[0]["lr"] == 0.1


def test_apply_sets_lr_and_a_schedulers_initial_lr_and_checks_the_groups() -> None:
    test = RangeTest.read([0.1, 0.01], [1.0, 2.0, 4.0], [3.0, 2.0, 1.0], beta=0)
    assert test.multiplier == pytest.approx(0.4)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(
        [{"params": [model.weight]}, {"params": [model.bias], "lr": 0.01}], lr=0.1)
    greedylr.GreedyLR(optimizer)  # sets initial_lr
    test.apply(optimizer)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.04, 0.004])
    assert [g["initial_lr"] for g in optimizer.param_groups] == pytest.approx([0.04, 0.004])
    tensor_lr = torch.optim.SGD(model.parameters(), lr=torch.tensor(0.1))
    RangeTest.read([0.1], [1.0, 2.0], [2.0, 1.0], beta=0).apply(tensor_lr)
    assert isinstance(tensor_lr.param_groups[0]["lr"], torch.Tensor)
    assert tensor_lr.param_groups[0]["lr"].item() == pytest.approx(0.02)
    with pytest.raises(ValueError, match="swept 2 param groups; this optimizer has 1"):
        test.apply(tensor_lr)

"""The LR range test (:mod:`greedylr.range_test`): its reading by hand, and a sweep that
leaves no trace but the suggestion."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

import greedylr
from greedylr.range_test import RangeTest, lr_range_test, set_lrs


def test_reading_by_hand() -> None:
    """beta 0.5, every step read (skip 0), cut at a rise of (2 - 1) times the spread of
    the losses up to the best. Averages 2, 2, 1.5, 4.75 over the bias corrections 0.5,
    0.75, 0.875, 0.9375: 4, 8/3, 12/7, 76/15; the last is 352/105 above the best, 12/7,
    more than the spread of the losses up to it, 4 - 1: the sweep is cut there and the
    fifth loss is never read."""
    test = RangeTest.read([0.1], [1, 10, 100, 1000, 10000], [4, 2, 1, 8, 100],
                          beta=0.5, stop=2, skip=0)
    assert test.smoothed == pytest.approx((4, 8 / 3, 12 / 7, 76 / 15))
    assert test.stopped
    assert test.best_multiplier == 100
    assert test.suggested_multiplier == 10  # valley / 10
    assert test.suggested_lrs == pytest.approx([1.0])


def test_the_swept_lrs_are_the_first_moving_groups() -> None:
    """A group frozen at LR 0 before the others is swept at 0: the curve to plot is read
    from the first group with a positive LR."""
    test = RangeTest.read([0.0, 0.01], [1, 10, 100], [3, 2, 1], skip=0)
    assert test.swept_lrs == pytest.approx([0.01, 0.1, 1.0])
    assert test.suggested_lrs == pytest.approx([0.0, 0.1])
    assert test.suggested_lr == pytest.approx(0.1)
    # the default LR (a group added later starts from it) moves by the suggested multiple
    frozen, moving = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [frozen], "lr": 0.0}, {"params": [moving]}],
                                lr=0.01)
    test.apply(optimizer)
    assert optimizer.defaults["lr"] == pytest.approx(0.1)
    set_lrs(optimizer, [0.0, 0.05])
    assert optimizer.defaults["lr"] == pytest.approx(0.05)


def test_reading_stops_at_a_non_finite_loss_and_needs_a_first_one() -> None:
    test = RangeTest.read([1.0], [1, 2, 3, 4], [3, 2, math.nan, 0.1], beta=0)
    assert test.smoothed == (3, 2) and test.stopped and test.best_multiplier == 2
    unfinished = RangeTest.read([1.0], [1, 2, 3, 4], [3, 2], beta=0)
    assert not unfinished.stopped and unfinished.saturated  # still falling at its end
    assert not test.saturated
    assert not RangeTest.read([1.0], [1, 2, 3], [3, 2, 2.5], beta=0).saturated
    with pytest.raises(ValueError, match="first loss is not finite"):
        RangeTest.read([1.0], [1, 2], [math.inf, 1.0])


def _curve(k: int, steps: int = 100) -> float:
    """A sweep's loss without noise: level at small LRs, lowest near the LR given times
    10 (step 83 of 100), blowing up past it."""
    x = -4 + 6 * k / (steps - 1)  # log10 of the multiple of the LR given
    return 2.0 - 1.5 / (1 + math.exp(-3 * x)) + (0 if x < 1 else 50 * (x - 1) ** 2)


CURVE = [_curve(k) for k in range(100)]
MULTIPLIERS = greedylr.range_test.sweep_multipliers()


def test_one_lucky_first_batch_does_not_make_the_valley() -> None:
    """The bias-corrected average of the first steps holds one to a few losses: a low
    first one would be the smoothed minimum, and the suggestion a tenth of the sweep's
    start. The reading starts at step 10 (as Lightning's suggestion does), where the
    average holds ten."""
    lucky = [0.05, *CURVE[1:]]
    test = RangeTest.read([1.0], MULTIPLIERS, lucky)
    assert test.smoothed[0] == 0.05  # the smoothed minimum, which is not read
    assert abs(test.valley - RangeTest.read([1.0], MULTIPLIERS, CURVE).valley) <= 2
    assert test.valley > 80
    # noisy batches (lognormal, sigma 0.3): the smoothed minimum from step 0 was in the
    # first ten steps in about a fifth of such sweeps
    rng = np.random.default_rng(0)
    for _ in range(200):
        noisy = CURVE * np.exp(rng.normal(0.0, 0.3, 100) - 0.3 ** 2 / 2)
        test = RangeTest.read([1.0], MULTIPLIERS, noisy.tolist())
        assert 0.3 < test.suggested_multiplier < 3, test.valley


def test_a_shifted_or_scaled_loss_is_read_the_same() -> None:
    """The cut compares differences of losses only: a negative loss (a Gaussian NLL, a
    -ELBO) is not cut at step 3 as it was when the cut was four times the best, and the
    same curve minus 10, or times 3 plus 5, is read the same."""
    test = RangeTest.read([1.0], MULTIPLIERS, CURVE)
    assert test.stopped and 85 < len(test.smoothed) < 100
    for moved in ([c - 10 for c in CURVE], [3 * c + 5 for c in CURVE]):
        again = RangeTest.read([1.0], MULTIPLIERS, moved)
        assert (len(again.smoothed), again.stopped, again.valley) == (
            len(test.smoothed), test.stopped, test.valley)


def test_a_gaussian_nll_below_zero_is_swept_as_the_same_loss_above_it() -> None:
    """End to end, the same regression (full batch: the same steps) with its Gaussian
    NLL shifted below zero and above it: the same sweep, cut at the same step, the same
    suggestion."""
    results = []
    for offset in (-3.0, 10.0):
        torch.manual_seed(0)
        x = torch.randn(512, 4)
        y = x @ torch.randn(4, 1) + 0.01 * torch.randn(512, 1)
        model = torch.nn.Linear(4, 2)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step() -> float:
            out = model(x)  # noqa: B023 (each pass's own, used within it)
            loss = torch.nn.functional.gaussian_nll_loss(out[:, :1], y,  # noqa: B023
                                                         out[:, 1:].exp())
            optimizer.zero_grad()  # noqa: B023
            loss.backward()
            optimizer.step()  # noqa: B023
            return loss.item() + offset  # noqa: B023

        results.append(lr_range_test(model, optimizer, step))
    below, above = results
    assert min(below.losses) < 0 and len(below.losses) > 10
    assert len(below.losses) == len(above.losses)
    assert below.suggested_multiplier == above.suggested_multiplier


def test_mode_max_reads_a_value_to_raise() -> None:
    """A reward (the loss's negative) read with mode="max": the same reading as the
    loss's; read as a loss it would suggest the LR where the reward was worst."""
    loss = RangeTest.read([1.0], MULTIPLIERS, CURVE)
    reward = RangeTest.read([1.0], MULTIPLIERS, [-c for c in CURVE], mode="max")
    assert (len(reward.smoothed), reward.stopped, reward.valley) == (
        len(loss.smoothed), loss.stopped, loss.valley)
    assert reward.suggested_multiplier == loss.suggested_multiplier
    misread = RangeTest.read([1.0], MULTIPLIERS, [-c for c in CURVE])
    assert misread.suggested_multiplier != loss.suggested_multiplier
    # end to end: the step returns the negative of its loss
    x, y = _regression()
    suggestions = []
    for mode, sign in (("min", 1.0), ("max", -1.0)):
        model = torch.nn.Linear(8, 1, bias=False)
        with torch.no_grad():
            model.weight.zero_()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        step = _full_batch_step(model, optimizer, x, y)
        suggestions.append(lr_range_test(
            model, optimizer, lambda: sign * step().item(), mode=mode,  # noqa: B023
        ).suggested_multiplier)
    assert suggestions[0] == suggestions[1]


def test_a_loss_not_finite_before_the_reading_starts_is_read_from_what_there_is(
        caplog: pytest.LogCaptureFixture) -> None:
    losses = iter([3.0, 2.0, 1.0, math.nan])
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    with caplog.at_level("WARNING", logger="greedylr"):
        test = lr_range_test(model, optimizer, lambda: next(losses))
    assert test.stopped and len(test.smoothed) == 3 and test.valley == 2
    assert "before the reading starts (step 10)" in caplog.text


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"steps": 1}, "steps must be an int >= 2"),
    ({"steps": 10.0}, "steps must be an int >= 2"),
    ({"start": 0.0}, "0 < start < end"),
    ({"start": 1.0, "end": 1.0}, "0 < start < end"),
    ({"end": math.inf}, "0 < start < end"),
    ({"beta": 1.0}, "beta must be in"),
    ({"stop": 1.0}, "stop must be above 1"),
    ({"mode": "maximum"}, "mode must be 'min' or 'max'"),
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


def _full_batch_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     x: torch.Tensor, y: torch.Tensor):  # type: ignore[no-untyped-def]
    """One step of plain least squares on the whole of ``(x, y)``: a train_step."""

    def step() -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return step


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
    for group, lr in zip(fresh.optimizer.param_groups, test.suggested_lrs):
        group["lr"] = lr
    fresh.k = 0
    assert [fresh.step().item() for _ in range(20)] == after


def test_the_sweep_puts_back_pythons_and_numpys_generators() -> None:
    """A loader or collator that draws from ``random`` or NumPy's global generator (an
    augmentation, a masking collator) draws after the sweep what it would have drawn
    without it."""
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)

    def step() -> torch.Tensor:
        x = torch.full((8, 4), random.random() + float(np.random.rand()))
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    random.seed(3)
    np.random.seed(3)
    expected = (random.random(), float(np.random.rand()))
    random.seed(3)
    np.random.seed(3)
    lr_range_test(model, optimizer, step, steps=20)
    assert (random.random(), float(np.random.rand())) == expected


def test_the_sweep_stops_where_the_loss_blows_up_and_suggests_a_stable_lr() -> None:
    """Plain gradient descent on a least-squares problem diverges above 2 / L (L the
    largest eigenvalue of the Hessian): the sweep stops past it and the suggestion is
    below it."""
    x, y = _regression()
    model = torch.nn.Linear(8, 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    curvature = torch.linalg.eigvalsh(2 * x.T @ x / len(x)).max().item()

    step = _full_batch_step(model, optimizer, x, y)

    test = lr_range_test(model, optimizer, step)
    assert test.stopped and len(test.losses) < 100
    assert 0.1 * test.multipliers[len(test.losses) - 1] > 2 / curvature
    assert test.suggested_lrs[0] < 2 / curvature < 0.1 * test.best_multiplier * 10


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
    assert test.suggested_multiplier == pytest.approx(0.4)
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


def test_a_warmup_built_before_the_test_is_swept_from_its_initial_lr() -> None:
    """A warmup scheduler built before the test (transformers' linear warmup) sets the
    LR to 0: the sweep multiplies the ``initial_lr`` it left, and ``apply`` sets
    ``initial_lr`` to the suggestion (which a scheduler built after it reads), ``lr``
    moving by the same factor: still 0 at the start of the warmup, still half of it
    halfway."""
    x, y = _regression()
    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: step / 100)  # LR 0 now
    seen: list[float] = []
    step = _full_batch_step(model, optimizer, x, y)

    def watched_step() -> torch.Tensor:
        seen.append(optimizer.param_groups[0]["lr"])
        return step()

    test = lr_range_test(model, optimizer, watched_step, steps=30)
    assert test.base_lrs == (1e-3,)
    assert seen == pytest.approx([1e-3 * m for m in test.multipliers[:len(seen)]])
    assert optimizer.param_groups[0]["lr"] == 0.0  # put back: the warmup's
    test.apply(optimizer)
    group = optimizer.param_groups[0]
    assert group["initial_lr"] > 0
    assert group["initial_lr"] == pytest.approx(1e-3 * test.suggested_multiplier)
    assert group["lr"] == 0.0
    group["lr"] = group["initial_lr"] / 2  # halfway through the warmup
    test.apply(optimizer)
    assert group["initial_lr"] == pytest.approx(1e-3 * test.suggested_multiplier)
    assert group["lr"] == pytest.approx(group["initial_lr"] / 2)
    assert optimizer.defaults["lr"] == pytest.approx(group["initial_lr"])


def test_an_lr_of_zero_is_refused_before_any_step() -> None:
    """Every group at LR 0 and no ``initial_lr`` to sweep from: there is nothing to
    sweep, and a suggestion would be 0 times whatever it read."""
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    with pytest.raises(ValueError, match="it needs a positive one"):
        lr_range_test(model, optimizer, lambda: pytest.fail("stepped"))


def test_a_sweep_still_falling_at_its_end_says_so(caplog: pytest.LogCaptureFixture) -> None:
    """From an LR far too small the loss falls all the way: the suggestion is capped at a
    tenth of the sweep's end, and a warning says to keep it unless the LR given may be
    far too small (sweeping on overshot in round 24)."""
    x, y = _regression()
    model = torch.nn.Linear(8, 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)

    step = _full_batch_step(model, optimizer, x, y)

    with caplog.at_level("WARNING", logger="greedylr"):
        test = lr_range_test(model, optimizer, step)
    assert test.saturated and test.suggested_multiplier == pytest.approx(10.0)
    assert "still falling at the sweep's end" in caplog.text
    assert "Keep it unless the LR given may be more than ~30 times too small" in caplog.text


class _FakeGenerators:
    """An accelerator's generators with no accelerator: each draw advances a counter per
    device, which ``get_all``/``set_all`` read and write as the backend's functions do."""

    def __init__(self, devices: int) -> None:
        self.states = [torch.tensor([d]) for d in range(devices)]

    def draw(self) -> None:
        self.states = [state + 1 for state in self.states]

    def get_all(self) -> list[torch.Tensor]:
        return [state.clone() for state in self.states]

    def set_all(self, states: list[torch.Tensor]) -> None:
        self.states = [state.clone() for state in states]


@pytest.mark.parametrize("backend", ["cuda", "xpu", "mps"])
def test_an_accelerators_generators_come_back(backend: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep's draws on CUDA, XPU or MPS (dropout on the device) are undone: each
    backend's generator state, as its own functions read and write it, is put back (the
    backends faked here)."""
    fake = _FakeGenerators(devices=1 if backend == "mps" else 2)
    if backend == "mps":
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
        monkeypatch.setattr(torch.mps, "get_rng_state", lambda: fake.get_all()[0])
        monkeypatch.setattr(torch.mps, "set_rng_state", lambda state: fake.set_all([state]))
    else:
        module = getattr(torch, backend)
        monkeypatch.setattr(module, "is_initialized", lambda: True)
        monkeypatch.setattr(module, "get_rng_state_all", fake.get_all)
        monkeypatch.setattr(module, "set_rng_state_all", fake.set_all)
    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _regression()
    step = _full_batch_step(model, optimizer, x, y)

    def drawing_step() -> torch.Tensor:
        fake.draw()
        return step()

    before = fake.get_all()
    test = lr_range_test(model, optimizer, drawing_step, steps=20)
    assert len(test.losses) == 20  # twenty draws to undo
    assert [int(s) for s in fake.states] == [int(s) for s in before]


@pytest.mark.parametrize("backend", ["cuda", "xpu"])
def test_an_uninitialized_backend_is_left_alone(backend: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A CUDA or XPU build that never used its device: reading its generators would
    initialize the device for nothing, so the sweep does not."""
    module = getattr(torch, backend)
    monkeypatch.setattr(module, "is_initialized", lambda: False)
    monkeypatch.setattr(module, "get_rng_state_all", lambda: pytest.fail("read"))
    monkeypatch.setattr(module, "set_rng_state_all", lambda states: pytest.fail("written"))
    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _regression()
    assert len(lr_range_test(model, optimizer, _full_batch_step(model, optimizer, x, y),
                             steps=5).losses) == 5


class _Counting(torch.nn.Module):
    """A linear layer with a non-persistent buffer its forward counts in (not in the
    state dict) and extra state."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(8, 1)
        self.register_buffer("calls", torch.zeros(()), persistent=False)
        self.note = "before"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.note = "changed"
        return self.linear(x)

    def get_extra_state(self) -> str:
        return self.note

    def set_extra_state(self, state: str) -> None:
        self.note = state


def test_everything_is_put_back_in_place() -> None:
    """The same tensors hold the same values after the sweep: parameters, buffers the
    state dict leaves out, gradients (none before, none after), the optimizer's moments
    (their dtype kept) and a tensor LR, filled during the sweep rather than replaced;
    and the state of a GradScaler handed in with ``also_restore``."""
    x, y = _regression()
    model = _Counting()
    lr = torch.tensor(0.01)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16, growth_interval=1)

    def step() -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss

    step()
    optimizer.zero_grad(set_to_none=True)
    moments = [s["exp_avg"] for s in optimizer.state.values()]
    values = [m.clone() for m in moments]
    scale = scaler.get_scale()
    lr_seen: list[torch.Tensor] = []

    scales: list[float] = []

    def watched_step() -> torch.Tensor:
        lr_seen.append(optimizer.param_groups[0]["lr"])
        loss = step()
        scales.append(scaler.get_scale())
        return loss

    test = lr_range_test(model, optimizer, watched_step, steps=30, also_restore=[scaler])
    assert all(seen is lr for seen in lr_seen)  # filled in place, never replaced
    assert optimizer.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(0.01)
    assert [s["exp_avg"] for s in optimizer.state.values()] == moments  # same tensors
    assert all(torch.equal(m, v) for m, v in zip(moments, values))
    assert model.calls.item() == 1 and model.note == "changed"
    assert all(p.grad is None for p in model.parameters())
    assert max(scales) > scale == scaler.get_scale()  # the sweep moved it; it is back
    test.apply(optimizer)
    assert optimizer.param_groups[0]["lr"] is lr
    assert lr.item() == pytest.approx(0.01 * test.suggested_multiplier)


def test_a_tensor_the_optimizer_trains_outside_the_model_comes_back() -> None:
    """A learnable temperature the optimizer trains but the model does not hold (CLIP's
    logit scale): its value, in the same tensor, and its gradient are put back."""
    model = torch.nn.Linear(4, 1)
    log_temp = torch.nn.Parameter(torch.zeros(()))
    optimizer = torch.optim.SGD([*model.parameters(), log_temp], lr=0.01)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 4, generator=generator), torch.randn(64, 1, generator=generator)
    log_temp.grad = torch.full((), 0.5)
    data = log_temp.data

    def step() -> torch.Tensor:
        loss = ((model(x) * log_temp.exp() - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    test = lr_range_test(model, optimizer, step, steps=30)
    assert len(test.losses) == 30  # it trained log_temp for 30 steps
    assert log_temp.data.data_ptr() == data.data_ptr() and log_temp.item() == 0.0
    assert log_temp.grad is not None and log_temp.grad.item() == 0.5


def test_extra_state_comes_back() -> None:
    model = _Counting()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _regression()

    step = _full_batch_step(model, optimizer, x, y)

    lr_range_test(model, optimizer, step, steps=np.int64(5))
    assert model.note == "before" and model.calls.item() == 0


def test_a_loss_rising_from_the_start_says_so(caplog: pytest.LogCaptureFixture) -> None:
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    losses = iter(range(1, 101))
    with caplog.at_level("WARNING", logger="greedylr"):
        test = lr_range_test(model, optimizer, lambda: float(next(losses)), steps=10)
    # the first step read: the sixth (of 10, half the sweep), not the first of all
    assert test.skip == 5 and test.valley == 5 and not test.saturated
    assert test.best_multiplier == test.multipliers[5]
    assert "rose from the sweep's first step read (step 5" in caplog.text


def _ddp_sweep(rank: int, average_in_step: bool) -> dict[str, object]:
    """The rank's sweep, its step returning the loss averaged over the ranks or its own
    rank's (the all-reduce left to the test); returns plain data only.

    The DDP model is created here and sits in a reference cycle, which the caller's
    ``gloo_group`` collects before it destroys the group."""
    from greedylr.distributed import mean_across_ranks

    torch.manual_seed(0)  # the same initial weights on both ranks, as DDP requires
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(8, 1))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _regression(seed=rank)  # each rank its own data, so its own loss
    y = y * (1 + 9 * rank)  # and a loss of its own scale: their own sweeps would part

    local_step = _full_batch_step(model, optimizer, x, y)

    def step() -> torch.Tensor:
        loss = local_step().detach()
        return mean_across_ranks(loss) if average_in_step else loss

    test = lr_range_test(model, optimizer, step)
    return {"suggested": test.suggested_multiplier, "losses": list(test.losses),
            "restored": all(torch.equal(a, b) for a, b in zip(before, model.parameters()))}


def _ddp_worker(rank: int, init_file: str, out_dir: str) -> None:
    import json
    from pathlib import Path

    from spawning import gloo_group

    with gloo_group(rank, init_file):
        result = {"averaged": _ddp_sweep(rank, average_in_step=True),
                  "rank-local": _ddp_sweep(rank, average_in_step=False)}
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))


@pytest.mark.timeout(300)
def test_two_ddp_ranks_read_the_same_sweep(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every rank reads the loss averaged over the ranks, stops at the same step and
    takes the same suggestion, whether the step returns the mean or its rank's loss
    (lr_range_test averages it: without that the ranks stopped at different steps and
    DDP's next all-reduce found one rank gone)."""
    import json

    from spawning import spawn_ranks

    spawn_ranks(_ddp_worker, (str(tmp_path / "init"), str(tmp_path)), timeout=240)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0 == r1
    assert r0["averaged"] == r0["rank-local"]  # the mean of a mean is the mean
    assert r0["averaged"]["restored"] and len(r0["averaged"]["losses"]) < 100

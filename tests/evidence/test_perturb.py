"""Perturbations must reach training: the gradients and the loss the scheduler sees.

The paper's robustness code added its noise to the loss as a constant; the first tests
here would have caught it: under the same seed and the same weights, a perturbed run's
gradient and observed loss must differ from the clean run's.
"""

from __future__ import annotations

import math

import pytest
import torch

from greedylr.evidence.perturb import (
    FAMILIES,
    BatchPerturber,
    Perturbation,
    Streams,
    conditions,
)
from greedylr.evidence.robustness import RunSpec, train_family
from greedylr.evidence.robustness.optim import FlatLayout
from greedylr.evidence.robustness.task import FamilyTask

STEPS = 40


def _first_active_step(task: FamilyTask, run: int, losses: list[float]) -> int:
    """The first step at which run ``run``'s perturbation acts."""
    pert = task.perturber
    p = pert.perturbations[run]
    if p.family == "gaussian":
        return 0
    if p.family == "shard_shift":
        return pert.shift_at
    if p.family == "adversarial":
        return 1  # the first observed loss is always a new best
    steps = torch.nonzero(pert.scheduled[run]).flatten()
    assert steps.numel(), f"{p.name} never fires in {STEPS} steps"
    return int(steps[0])


def _grads_and_losses(family: str, pert: Perturbation, seed: int = 0):
    """Clean and perturbed run of one seed, at the same weights, at the step where the
    perturbation acts: (clean loss, perturbed loss, clean grad, perturbed grad)."""
    specs = [RunSpec("constant", Perturbation("clean"), seed), RunSpec("constant", pert, seed)]
    task = FamilyTask(family, specs, 200)  # the study's run length: every spike kind fires
    init = task.init_params()
    layout = FlatLayout(init)
    flat = layout.pack(init)
    assert torch.equal(flat[0], flat[1]), "same seed must mean the same initial weights"
    step = _first_active_step(task, 1, [])
    inf = torch.full((2,), math.inf)
    last = torch.zeros(2) if step > 0 else inf
    corrupt = task.perturber.corrupt_mask(step, last, inf)
    flat = flat.clone().requires_grad_()
    loss = task.train_loss(step, layout.views(flat), corrupt)
    loss.sum().backward()
    return loss.detach(), flat.grad


@pytest.mark.parametrize("family", ["mlp", "rosenbrock"])
@pytest.mark.parametrize("pert", [c for c in conditions() if c.strength == 1.0],
                         ids=lambda c: c.name)
def test_perturbation_changes_gradient_and_observed_loss(family: str, pert: Perturbation):
    loss, grad = _grads_and_losses(family, pert)
    assert loss[0] != loss[1], f"{pert.name}: the scheduler would see the clean loss"
    assert not torch.allclose(grad[0], grad[1]), f"{pert.name}: the update is unchanged"


def test_control_clean_against_clean_is_identical():
    # the detector above must not fire on two clean runs of one seed
    specs = [RunSpec("constant", Perturbation("clean"), 3)] * 2
    task = FamilyTask("mlp", specs, STEPS)
    init = task.init_params()
    layout = FlatLayout(init)
    flat = layout.pack(init).requires_grad_()
    inf = torch.full((2,), math.inf)
    loss = task.train_loss(5, layout.views(flat), task.perturber.corrupt_mask(5, inf, inf))
    loss.sum().backward()
    assert loss[0] == loss[1]
    assert torch.equal(flat.grad[0], flat.grad[1])


def test_the_papers_injection_would_be_caught():
    # what the paper did: add a constant to the loss. Gradients do not move at all.
    w = torch.randn(5, requires_grad=True)
    x = torch.randn(5)
    (w @ x).backward()
    clean = w.grad.clone()
    w.grad = None
    ((w @ x) + torch.tensor(3.7)).backward()
    assert torch.equal(clean, w.grad)


def test_perturbed_run_trajectory_and_schedule_differ_from_clean():
    """End to end: the losses GreedyLR observes, and so its LRs, differ from the clean run."""
    pert = Perturbation("periodic_spike", 1.0)
    specs = [RunSpec("greedy_p1", Perturbation("clean"), 0), RunSpec("greedy_p1", pert, 0)]
    result = train_family("mlp", specs, steps=STEPS)
    period = pert.period(STEPS)
    assert torch.equal(result.observed[0, :period], result.observed[1, :period])
    assert result.observed[1, period] > result.observed[0, period]
    assert not torch.equal(result.lr[0], result.lr[1])
    assert result.corrupt[1].sum() == 3 and result.corrupt[0].sum() == 0


def test_conditions_and_validation():
    conds = conditions()
    assert len(conds) == 16
    assert {c.family for c in conds} == set(FAMILIES)
    assert [Perturbation("periodic_spike", s).period(200) for s in (0.1, 0.5, 1.0)] == [
        55, 75, 100]
    assert Perturbation.parse("random_spike@0.5") == Perturbation("random_spike", 0.5)
    with pytest.raises(ValueError, match="family must be one of"):
        Perturbation("loss_noise", 0.5)
    with pytest.raises(ValueError, match=r"strength must be in \(0, 1\]"):
        Perturbation("gaussian", 1.5)
    with pytest.raises(ValueError, match="clean takes strength 0"):
        Perturbation("clean", 0.1)


def test_streams_are_per_seed_and_reproducible():
    a = Streams.draw([0, 1], steps=10, item_shape=(4,), batch=3, n_train=50, n_classes=10)
    b = Streams.draw([1], steps=10, item_shape=(4,), batch=3, n_train=50, n_classes=10)
    assert torch.equal(a.noise[1], b.noise[0]) and torch.equal(a.batch_idx[1], b.batch_idx[0])
    assert not torch.equal(a.noise[0], a.noise[1])
    c = Streams.draw([1], steps=10, item_shape=(4,), batch=3, n_train=50, n_classes=10, salt=1)
    assert not torch.equal(b.noise, c.noise)


def test_random_spikes_hit_about_two_percent_of_steps():
    seeds = list(range(50))
    streams = Streams.draw(seeds, steps=200, item_shape=(2,))
    perts = [Perturbation("random_spike", 0.5)] * len(seeds)
    pert = BatchPerturber(perts, torch.arange(len(seeds)), streams, steps=200)
    rate = pert.scheduled.float().mean().item()
    assert 0.012 < rate < 0.03


def test_batch_perturbations_do_what_they_say():
    steps, batch = 60, 400
    streams = Streams.draw([0] * 5, steps=steps, item_shape=(64,), batch=batch, n_train=100,
                           n_classes=10)
    perts = [Perturbation("clean"), Perturbation("gaussian", 0.5),
             Perturbation("random_spike", 0.5), Perturbation("shard_shift", 1.0),
             Perturbation("adversarial", 1.0)]
    pert = BatchPerturber(perts, torch.arange(5), streams, steps=steps)
    x = torch.randn(5, batch, 64)
    y = torch.randint(0, 10, (5, batch))
    corrupt = torch.tensor([False, False, True, False, False])

    def mirror(v: torch.Tensor) -> torch.Tensor:
        return -v

    x2, y2 = pert.perturb_batch(10, x, y, corrupt, shift=mirror)
    assert torch.equal(x2[0], x[0]) and torch.equal(y2[0], y[0])
    assert (x2[1] - x[1]).std().item() == pytest.approx(0.5, rel=0.1)
    assert torch.equal(y2[1], y[1])
    # about half of the labels are redrawn (a redrawn label equals the old one 10% of
    # the time)
    changed = (y2[2] != y[2]).float().mean().item()
    assert 0.35 < changed < 0.55
    assert torch.equal(x2[3], x[3])  # before the shift
    x3, _ = pert.perturb_batch(pert.shift_at, x, y, corrupt, shift=mirror)
    assert torch.equal(x3[3], -x[3])  # after it, and it stays
    assert pert.final_shift_weight().tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]
    # adversarial strikes right after a new best, and only then
    inf = torch.full((5,), math.inf)
    assert pert.corrupt_mask(5, torch.full((5,), 1.0), torch.full((5,), 2.0))[4]
    assert not pert.corrupt_mask(5, torch.full((5,), 3.0), torch.full((5,), 2.0))[4]
    assert not pert.corrupt_mask(0, inf, inf).any()

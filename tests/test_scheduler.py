"""GreedyLR as a torch LRScheduler: the contract, resume, errors, transformers parity."""

from __future__ import annotations

import gc
import io
import logging
import math
import random
import weakref

import numpy as np
import pytest
import torch

from greedylr import GreedyLR
from greedylr.rule import GreedyConfig, init, update


def make_optimizer(lrs=(0.1,), tensor_lr=False):
    groups = []
    for lr in lrs:
        p = torch.nn.Parameter(torch.zeros(2))
        groups.append({"params": [p], "lr": torch.tensor(lr) if tensor_lr else lr})
    return torch.optim.SGD(groups, lr=0.1)


def drive(sched, opt, losses):
    out = []
    for loss in losses:
        opt.step()
        sched.step(loss)
        out.append(list(sched.get_last_lr()))
    return out


@pytest.fixture(autouse=True)
def _quiet_order_warning(recwarn):
    yield


def test_is_a_torch_lr_scheduler_and_matches_the_rule():
    opt = make_optimizer((0.1, 0.01))
    sched = GreedyLR(opt, factor=0.5, patience=1, smoothing="none")
    assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler)
    assert sched.base_lrs == [0.1, 0.01]
    losses = [1.0, 0.5, 0.4, 0.4, 0.4, 0.3]
    got = drive(sched, opt, losses)
    cfg = GreedyConfig(factor=0.5, patience=1, smoothing="none")
    state = init(cfg, [0.1, 0.01])
    want = [list(update(cfg, state, x).lrs) for x in losses]
    assert got == want
    assert [g["lr"] for g in opt.param_groups] == want[-1]
    assert sched.last_epoch == len(losses)


def test_loss_types():
    opt = make_optimizer()
    sched = GreedyLR(opt)
    for loss in (1.0, 2, torch.tensor(1.0), torch.tensor([1.0]), np.float32(1.0), np.array(1.0),
                 torch.tensor(1.0, requires_grad=True) * 2):
        opt.step()
        sched.step(loss)
    assert sched.state.step == 7


@pytest.mark.parametrize(
    ("loss", "error", "message"),
    [
        ("0.5", TypeError, "loss must be a number or a one-element tensor, got '0.5'"),
        (True, TypeError, "got True"),
        (torch.ones(3), ValueError, "loss must be a scalar, got a tensor of shape (3,)"),
        (np.ones((2, 2)), ValueError, "shape (2, 2)"),
    ],
)
def test_bad_loss_is_a_clear_error(loss, error, message):
    sched = GreedyLR(make_optimizer())
    with pytest.raises(error) as info:
        sched.step(loss)
    assert message in str(info.value)


def test_what_is_not_an_optimizer_is_refused_before_anything_is_written():
    # a model gave "'Linear' object has no attribute 'param_groups'", and an object with
    # param_groups got an initial_lr written into them before torch refused it
    model = torch.nn.Linear(2, 1)
    with pytest.raises(TypeError, match="Linear is not an Optimizer: pass the optimizer, "
                                        "not the model"):
        GreedyLR(model)

    class Lookalike:
        def __init__(self):
            self.param_groups = [{"params": [], "lr": 0.1}]

    lookalike = Lookalike()
    with pytest.raises(TypeError, match="Lookalike is not an Optimizer"):
        GreedyLR(lookalike)
    assert lookalike.param_groups == [{"params": [], "lr": 0.1}]


def test_an_optimizer_subclass_wrapping_another_is_scheduled():
    # Accelerate's AcceleratedOptimizer, Lightning's LightningOptimizer: Optimizer
    # subclasses that hold the optimizer that steps (Accelerate's without the hook
    # registry of its own, which Optimizer.__init__ would make)
    class Wrapper(torch.optim.Optimizer):
        def __init__(self, optimizer):
            self.optimizer = optimizer

        @property
        def param_groups(self):
            return self.optimizer.param_groups

        @property
        def state(self):
            return self.optimizer.state

        def step(self, closure=None):
            return self.optimizer.step(closure)

    inner = make_optimizer()
    opt = Wrapper(inner)
    sched = GreedyLR(opt, factor=0.5, patience=0, smoothing="none")
    assert drive(sched, opt, [1.0, 0.5]) == [[0.2], [0.4]]
    sched.step(0.1)  # no optimizer step since: ignored
    assert sched.state.step == 2 and inner.param_groups[0]["lr"] == 0.4


def test_step_without_a_loss_needs_observe():
    opt = make_optimizer()
    sched = GreedyLR(opt, smoothing="none")
    with pytest.raises(TypeError, match=r"needs the loss: call step\(loss\), or observe\(loss\)"):
        sched.step()
    sched.observe(1.0)
    sched.observe(torch.tensor(3.0))
    opt.step()
    sched.step()
    assert sched.trace.losses[-1] == 2.0  # the mean of the observations
    opt.step()
    with pytest.raises(TypeError):
        sched.step()  # the observations were consumed


def test_repeated_calls_without_an_optimizer_step_count_once():
    """Accelerate calls step() once per process; GradScaler may skip optimizer steps."""
    opt = make_optimizer()
    sched = GreedyLR(opt, patience=0, factor=0.5, smoothing="none")
    opt.step()
    for _ in range(4):
        sched.step(1.0)
    assert sched.state.step == 1 and sched._step_count == 2
    opt.step()
    sched.step(2.0)
    assert sched.state.step == 2


@pytest.mark.parametrize("feed", ["step", "observe"])
def test_a_step_refused_for_a_nonfinite_loss_can_be_retried(feed):
    # with on_nonfinite="raise" the refused loss still counted as a step of the rule, and
    # the scheduler took the optimizer step as seen: a retry was ignored as a repeated
    # call, and the warmup ran one step ahead of the optimizer
    opt = make_optimizer()
    sched = GreedyLR(opt, on_nonfinite="raise", warmup=4, smoothing="none")
    drive(sched, opt, [1.0])
    opt.step()
    with pytest.raises(FloatingPointError, match="non-finite loss nan at step 2"):
        if feed == "observe":
            sched.observe(0.5)
            sched.observe(math.nan)
            sched.step()
        else:
            sched.step(math.nan)
    assert (sched.state.step, sched.last_epoch, len(sched.trace.rows())) == (1, 1, 1)
    assert sched.get_last_lr() == [0.025]
    sched.step(0.9)  # the retry: the step it was meant to be
    lrs = [sched.get_last_lr(), *drive(sched, opt, [0.8])]
    plain_opt = make_optimizer()
    plain = drive(GreedyLR(plain_opt, warmup=4, smoothing="none"), plain_opt, [1.0, 0.9, 0.8])
    assert lrs == plain[1:] == [[0.05], [pytest.approx(0.075)]]
    assert (sched.state.step, sched.last_epoch, len(sched.trace.rows())) == (3, 3, 3)
    # the same, the refused step given up instead of retried: the next one is step 2
    opt = make_optimizer()
    sched = GreedyLR(opt, on_nonfinite="raise", warmup=4, smoothing="none")
    drive(sched, opt, [1.0])
    opt.step()
    with pytest.raises(FloatingPointError):
        sched.step(math.inf)
    assert drive(sched, opt, [0.9, 0.8]) == plain[1:]
    assert sched.trace.steps.tolist() == [1, 2, 3]


def test_tensor_lr_is_updated_in_place():
    opt = make_optimizer((0.1, 0.2), tensor_lr=True)
    lr_objects = [g["lr"] for g in opt.param_groups]
    sched = GreedyLR(opt, factor=0.5, patience=0, smoothing="none")
    drive(sched, opt, [1.0, 2.0, 3.0])
    assert all(g["lr"] is t for g, t in zip(opt.param_groups, lr_objects))
    assert [float(t) for t in lr_objects] == pytest.approx([0.05, 0.1])
    last = sched.get_last_lr()
    assert all(isinstance(x, torch.Tensor) and x is not t for x, t in zip(last, lr_objects))


def test_a_tensor_lr_is_written_only_when_the_rule_changes_it():
    """A step that keeps the LRs leaves the tensors alone (their version counters stay),
    one that changes them writes them, and a foreign write in between is still caught."""
    opt = make_optimizer((0.1, 0.2), tensor_lr=True)
    sched = GreedyLR(opt, factor=0.5, patience=1, smoothing="none", max_lr_ratio=None)
    lr_objects = [g["lr"] for g in opt.param_groups]
    versions = [t._version for t in lr_objects]
    drive(sched, opt, [1.0])  # the first value beats +inf: one improving step, no change
    assert [t._version for t in lr_objects] == versions
    drive(sched, opt, [0.5])  # two improving steps > patience 1: an increase
    assert [float(t) for t in lr_objects] == pytest.approx([0.2, 0.4])
    assert [t._version for t in lr_objects] != versions
    versions = [t._version for t in lr_objects]
    drive(sched, opt, [0.5])  # not better: the LRs stay
    assert [t._version for t in lr_objects] == versions
    lr_objects[0].fill_(0.2)  # the same value, written by someone else
    opt.step()
    with pytest.raises(RuntimeError, match="changed outside GreedyLR"):
        sched.step(0.5)


def test_warmup_ramp_is_applied_at_construction():
    opt = make_optimizer((0.4,))
    sched = GreedyLR(opt, warmup=4)
    assert opt.param_groups[0]["lr"] == 0.0 and sched.get_last_lr() == [0.0]
    assert drive(sched, opt, [1.0, 1.0])[-1] == [0.2]


def test_no_reference_cycles():
    gc.collect()
    gc.disable()
    try:
        opt = make_optimizer()
        sched = GreedyLR(opt)
        drive(sched, opt, [1.0, 0.5])
        ref = weakref.ref(sched)
        del sched
        assert ref() is None, "GreedyLR is kept alive by a reference cycle"
    finally:
        gc.enable()


def roundtrip(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("tensor_lr", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_resume_at_a_random_step_is_bit_identical(seed, tensor_lr):
    rng = random.Random(seed)
    kwargs = dict(
        factor=rng.choice([0.5, 0.9, 0.95]), patience=rng.randint(0, 4), window=rng.randint(2, 9),
        smoothing=rng.choice(["window", "ema"]), cooldown=rng.randint(0, 3),
        hold_after_increase=rng.randint(0, 2), warmup=rng.randint(0, 6), reset_patience=2,
        min_lr_ratio=0.2, max_lr_ratio=5.0,
    )
    losses = [rng.choice([rng.gauss(1, 0.3), 1.0, math.nan]) for _ in range(120)]
    cut = rng.randint(1, 119)

    opt = make_optimizer((0.1, 0.03), tensor_lr)
    full = drive(GreedyLR(opt, **kwargs), opt, losses)

    opt = make_optimizer((0.1, 0.03), tensor_lr)
    sched = GreedyLR(opt, **kwargs)
    first = drive(sched, opt, losses[:cut])
    saved = roundtrip(sched.state_dict())
    opt_saved = roundtrip(opt.state_dict())

    opt2 = make_optimizer((0.1, 0.03), tensor_lr)
    sched2 = GreedyLR(opt2, **kwargs)
    opt2.load_state_dict(opt_saved)
    sched2.load_state_dict(saved)
    assert sched2.get_last_lr() == sched.get_last_lr()
    rest = drive(sched2, opt2, losses[cut:])
    as_floats = [[float(x) for x in row] for row in first + rest]
    assert as_floats == [[float(x) for x in row] for row in full]


def drive_with_evals(sched, opt, losses, every=7):
    """``drive``, with a held-out value (the loss plus a bump) after every 7th step."""
    out = []
    for i, loss in enumerate(losses, 1):
        opt.step()
        sched.step(loss)
        if i % every == 0 and math.isfinite(loss):
            sched.observe_eval(loss + 0.1 * (i % 3))
        out.append([float(x) for x in sched.get_last_lr()])
    return out


@pytest.mark.parametrize("tensor_lr", [False, True])
@pytest.mark.parametrize("cut", [1, 79, 80, 81, 95])
def test_resume_across_the_final_cooldown_is_bit_identical(cut, tensor_lr):
    """Every 0.2 knob on; cut before, at and after the cooldown's start (step 80)."""
    kwargs = dict(factor=0.7, patience=2, window=5, total_steps=100, anneal_fraction=0.2,
                  noise_threshold=0.5, payoff_patience=3, eval_patience=0)
    rng = random.Random(cut)
    losses = [rng.choice([rng.gauss(1, 0.3), 1.0, math.nan]) for _ in range(110)]
    opt = make_optimizer((0.1, 0.03), tensor_lr)
    full_sched = GreedyLR(opt, **kwargs)
    full = drive_with_evals(full_sched, opt, losses)
    assert any(e.kind == "anneal" and e.step == 80 for e in full_sched.events)

    opt = make_optimizer((0.1, 0.03), tensor_lr)
    sched = GreedyLR(opt, **kwargs)
    first = drive_with_evals(sched, opt, losses[:cut])
    saved, opt_saved = roundtrip(sched.state_dict()), roundtrip(opt.state_dict())
    opt2 = make_optimizer((0.1, 0.03), tensor_lr)
    sched2 = GreedyLR(opt2, **kwargs)
    opt2.load_state_dict(opt_saved)
    sched2.load_state_dict(saved)
    rest = []
    for i, loss in enumerate(losses[cut:], cut + 1):
        opt2.step()
        sched2.step(loss)
        if i % 7 == 0 and math.isfinite(loss):
            sched2.observe_eval(loss + 0.1 * (i % 3))
        rest.append([float(x) for x in sched2.get_last_lr()])
    assert first + rest == full
    assert sched2.state == full_sched.state


@pytest.mark.parametrize("device_mode", [False, True])
def test_a_resume_with_a_larger_budget_goes_on_as_set_total_steps_would(device_mode, caplog):
    """A Trainer run continued with a larger max_steps: its GreedyLR is built with the new
    budget and loads a state saved under the old one, before the old cooldown began."""
    kwargs = dict(factor=0.7, patience=2, window=5, anneal_fraction=0.2, eval_patience=0)
    rng = random.Random(3)
    losses = [rng.gauss(1, 0.3) for _ in range(160)]
    opt = make_optimizer((0.1, 0.03), tensor_lr=True)
    told = GreedyLR(opt, device_mode=device_mode, total_steps=100, **kwargs)
    want = drive(told, opt, losses[:50])
    told.set_total_steps(160)
    want += drive(told, opt, losses[50:])

    opt = make_optimizer((0.1, 0.03), tensor_lr=True)
    first = GreedyLR(opt, device_mode=device_mode, total_steps=100, **kwargs)
    got = drive(first, opt, losses[:50])
    saved, opt_saved = roundtrip(first.state_dict()), roundtrip(opt.state_dict())
    opt2 = make_optimizer((0.1, 0.03), tensor_lr=True)
    resumed = GreedyLR(opt2, device_mode=device_mode, total_steps=160, **kwargs)
    opt2.load_state_dict(opt_saved)
    with caplog.at_level(logging.WARNING, logger="greedylr"):
        resumed.load_state_dict(saved)
    assert "saved with total_steps=100; the run goes on with total_steps=160" in caplog.text
    got += drive(resumed, opt2, losses[50:])
    assert [[float(x) for x in row] for row in got] == [[float(x) for x in row] for row in want]
    assert [e.step for e in resumed.events if e.kind == "anneal"] == [128]


def test_a_resume_with_another_budget_is_refused_where_the_lr_would_jump():
    annealing = GreedyLR(make_optimizer(), total_steps=40, anneal_fraction=0.2)
    drive(annealing, annealing.optimizer, [1.0] * 35)  # its cooldown began at step 32
    fresh = GreedyLR(make_optimizer(), total_steps=80, anneal_fraction=0.2)
    before = fresh.state_dict()
    with pytest.raises(ValueError, match=r"saved with total_steps=40, this GreedyLR has 80: "
                       r"the final cooldown has started.*build it with total_steps=40"):
        fresh.load_state_dict(annealing.state_dict())
    assert fresh.state_dict() == before  # nothing was loaded

    long = GreedyLR(make_optimizer(), total_steps=100)
    drive(long, long.optimizer, [1.0] * 30)
    with pytest.raises(ValueError, match="its final cooldown starts at step 16, and this run "
                       "has made 30 steps"):
        GreedyLR(make_optimizer(), total_steps=20).load_state_dict(long.state_dict())
    # no budget at all, or the budget and another knob: another configuration, as before
    with pytest.raises(ValueError, match=r"another configuration.*'total_steps': \(100, None\)"):
        GreedyLR(make_optimizer()).load_state_dict(long.state_dict())
    with pytest.raises(ValueError, match=r"another configuration.*'window'.*'total_steps'"):
        GreedyLR(make_optimizer(), total_steps=200, window=7).load_state_dict(long.state_dict())


def test_a_warmup_of_the_new_budget_is_taken_once_past_both_ramps(caplog):
    """A ``warmup_ratio`` of a larger ``max_steps`` is a longer warmup: past both ramps
    nothing reads it any more; inside either ramp the LR would jump."""
    run = GreedyLR(make_optimizer(), total_steps=100, warmup=10)
    drive(run, run.optimizer, [1.0] * 15)
    inside = run.state_dict()
    drive(run, run.optimizer, [1.0] * 35)
    longer = GreedyLR(make_optimizer(), total_steps=200, warmup=20)
    with caplog.at_level(logging.WARNING, logger="greedylr"):
        longer.load_state_dict(run.state_dict())
    assert "saved with warmup=10; the run goes on with warmup=20" in caplog.text
    drive(longer, longer.optimizer, [1.0] * 150)
    assert [e.step for e in longer.events if e.kind == "anneal"] == [160]
    with pytest.raises(ValueError, match=r"saved with warmup=10 at step 15, this GreedyLR has "
                       r"warmup=20: a run can change its warmup only once past both ramps"):
        GreedyLR(make_optimizer(), total_steps=200, warmup=20).load_state_dict(inside)


def _cosine(**kwargs):
    opt = make_optimizer()
    knobs = dict(base_schedule="cosine", total_steps=100, warmup=10, smoothing="none",
                 patience=1000, eval_patience=None)
    return GreedyLR(opt, **{**knobs, **kwargs})


def test_another_warmup_is_refused_under_a_decaying_base_schedule():
    # cosine decays over the steps after the warmup: at step 50 of 100 a warmup of 20
    # instead of 10 moved its factor from 0.57 to 0.67, an 18% jump of the LR
    run = _cosine()
    drive(run, run.optimizer, [1.0] * 50)
    resumed = _cosine(warmup=20)
    before = resumed.state_dict()
    with pytest.raises(ValueError, match=r"saved with warmup=10, this GreedyLR has warmup=20: "
                       r"base_schedule='cosine' decays over the steps after the warmup"):
        resumed.load_state_dict(run.state_dict())
    assert resumed.state_dict() == before
    same = _cosine()
    same.load_state_dict(run.state_dict())  # the same warmup resumes bit for bit
    assert drive(same, same.optimizer, [1.0] * 5) == drive(run, run.optimizer, [1.0] * 5)


@pytest.mark.parametrize("device_mode", [False, True])
def test_set_total_steps_under_cosine_refuses_a_budget_already_made(device_mode, caplog):
    # accepted, it dropped the LR from 0.05 to 0 at once
    opt = make_optimizer(tensor_lr=device_mode)
    sched = GreedyLR(opt, device_mode=device_mode, base_schedule="cosine", total_steps=100,
                     smoothing="none", patience=1000, eval_patience=None)
    drive(sched, opt, [1.0] * 50)
    for total in (40, 50):
        with pytest.raises(ValueError, match=rf"total_steps={total}: this run has made 50 steps "
                           r"already, and base_schedule='cosine' decays to 0"):
            sched.set_total_steps(total)
    assert sched.config.total_steps == 100
    lr = float(opt.param_groups[0]["lr"])
    # a budget still ahead is taken, and the LR's jump is said
    with caplog.at_level(logging.WARNING, logger="greedylr"):
        sched.set_total_steps(200)
    assert ("total_steps 100 -> 200 at step 50 moves the decay of base_schedule='cosine': the "
            "LR jumps from 0.4843 to 0.848") in caplog.text
    drive(sched, opt, [1.0])
    assert float(opt.param_groups[0]["lr"]) > 1.5 * lr


def test_a_resume_under_cosine_with_a_budget_already_made_is_refused():
    run = _cosine(warmup=0)
    drive(run, run.optimizer, [1.0] * 50)
    with pytest.raises(ValueError, match=r"saved with total_steps=100, this GreedyLR has 40: "
                       r"total_steps=40: this run has made 50 steps already"):
        _cosine(warmup=0, total_steps=40).load_state_dict(run.state_dict())

def cut_and_resume(kwargs, losses, cut, save_on_device, resume_on_device,
                   run=lambda sched, opt, losses, start: drive(sched, opt, losses)):
    """``losses`` run to ``cut`` by one scheduler (``device_mode=save_on_device``), its
    state dict and the optimizer's loaded into another (``resume_on_device``), which runs
    the rest (``run(sched, opt, losses, start)``, ``start`` the first step's number).
    Returns both halves' LRs as floats, the first scheduler and the second."""
    opt = make_optimizer((0.1, 0.03), tensor_lr=True)
    sched = GreedyLR(opt, device_mode=save_on_device, **kwargs)
    first = run(sched, opt, losses[:cut], 1)
    saved, opt_saved = roundtrip(sched.state_dict()), roundtrip(opt.state_dict())
    opt2 = make_optimizer((0.1, 0.03), tensor_lr=True)
    sched2 = GreedyLR(opt2, device_mode=resume_on_device, **kwargs)
    opt2.load_state_dict(opt_saved)
    sched2.load_state_dict(saved)
    rest = run(sched2, opt2, losses[cut:], cut + 1)
    return [[float(x) for x in row] for row in first + rest], sched, sched2


BLOWUP_KWARGS = dict(factor=0.7, patience=1, window=4, blowup_ratio=1.5, total_steps=100,
                     anneal_fraction=0.2, min_lr_ratio=0.01)


def surging_losses(n=110):
    """Noisy around 1 (a NaN now and then), three times that over steps 31-50 (a blow-up
    that passes) and from step 71 on (the final cooldown, from step 80, starts in one)."""
    rng = random.Random(5)
    losses = []
    for t in range(1, n + 1):
        x = rng.gauss(1.0, 0.1) * (3.0 if 31 <= t <= 50 or t >= 71 else 1.0)
        losses.append(math.nan if rng.random() < 0.03 else x)
    return losses


@pytest.mark.parametrize(("save_on_device", "resume_on_device"),
                         [(False, False), (True, True), (True, False), (False, True)])
@pytest.mark.parametrize("cut", [36, 79, 80, 81, 95])
def test_resume_in_a_blowup_and_its_cooldown_to_zero_is_bit_identical(
        cut, save_on_device, resume_on_device):
    """The blow-up guard's state (its first value, the decreases so far, a cooldown to 0)
    travels in the state dict, in either mode: cut in a blow-up whose next decrease
    squares the factor again, and before, at and after the cooldown's start."""
    losses = surging_losses()
    opt = make_optimizer((0.1, 0.03), tensor_lr=True)
    full_sched = GreedyLR(opt, device_mode=False, **BLOWUP_KWARGS)
    full = [[float(x) for x in row] for row in drive(full_sched, opt, losses)]
    assert full_sched.state.anneal_to_zero and full[-1] == [0.0, 0.0]
    assert any(e.kind == "anneal" and e.step == 80 and "towards 0" in e.reason
               for e in full_sched.events)

    lrs, sched, sched2 = cut_and_resume(BLOWUP_KWARGS, losses, cut, save_on_device,
                                        resume_on_device)
    if cut == 36:
        assert sched.state.blowup_cuts == 2
    assert sched2.device_mode is resume_on_device
    assert lrs == full
    assert sched2.state == full_sched.state


FLOOR_KWARGS = dict(factor=0.5, patience=1, window=4, total_steps=100, anneal_fraction=0.2)


@pytest.mark.parametrize(("save_on_device", "resume_on_device"),
                         [(False, False), (True, True), (True, False), (False, True)])
@pytest.mark.parametrize("cut", [40, 79, 80, 81, 95])
def test_resume_in_a_cooldown_from_the_floor_is_bit_identical(
        cut, save_on_device, resume_on_device):
    """A loss that only worsens takes both groups to their lower bounds long before the
    final cooldown (step 80), which then ends at 0 (``floor_anneals_to_zero``): where it
    goes travels in the state dict, in either mode, cut before, at and after its start."""
    rng = random.Random(3)
    losses = [1.0 + 0.01 * t + rng.gauss(0.0, 0.001) for t in range(110)]
    opt = make_optimizer((0.1, 0.03), tensor_lr=True)
    full_sched = GreedyLR(opt, device_mode=False, **FLOOR_KWARGS)
    full = [[float(x) for x in row] for row in drive(full_sched, opt, losses)]
    assert full[78] == pytest.approx([0.01, 0.003]) and full[-1] == [0.0, 0.0]
    assert any(e.kind == "anneal" and e.step == 80 and "every group stands at it" in e.reason
               for e in full_sched.events)

    lrs, _, sched2 = cut_and_resume(FLOOR_KWARGS, losses, cut, save_on_device,
                                    resume_on_device)
    assert lrs == full
    assert sched2.state == full_sched.state


STALLED_KWARGS = dict(factor=0.9, patience=2, window=4, total_steps=100, anneal_fraction=0.2)


def drive_stalling(sched, opt, losses, start=1):
    """``drive``, with a held-out value after every 10th step: improving to step 70,
    then, at step 77, a worse one that blocks increases when the cooldown starts (80)."""
    out = []
    for i, loss in enumerate(losses, start):
        opt.step()
        sched.step(loss)
        if i % 10 == 0 or i == 77:
            sched.observe_eval(2.0 if i >= 77 else 1.0 - 0.01 * i)
        out.append([float(x) for x in sched.get_last_lr()])
    return out


@pytest.mark.parametrize(("save_on_device", "resume_on_device"),
                         [(False, False), (True, True), (True, False), (False, True)])
@pytest.mark.parametrize("cut", [70, 77, 79, 80, 81, 95])
def test_resume_in_a_stalled_cooldown_to_zero_is_bit_identical(
        cut, save_on_device, resume_on_device):
    """A final cooldown that starts with increases blocked by a worse held-out value ends
    at 0 (``stalled_anneals_to_zero``, 0.11's default): the block and where the cooldown
    goes travel in the state dict, in either mode, cut before, at and after its start."""
    rng = random.Random(4)
    losses = [1.0 - 0.003 * t + rng.gauss(0.0, 0.01) for t in range(110)]
    opt = make_optimizer((0.1, 0.03), tensor_lr=True)
    full_sched = GreedyLR(opt, device_mode=False, **STALLED_KWARGS)
    full = drive_stalling(full_sched, opt, losses)
    assert full[78][0] > 0.01 and full[-1] == [0.0, 0.0]  # off its floor, then to 0
    assert any(e.kind == "anneal" and e.step == 80 and "blocking increases" in e.reason
               for e in full_sched.events)

    lrs, _, sched2 = cut_and_resume(STALLED_KWARGS, losses, cut, save_on_device,
                                    resume_on_device, run=drive_stalling)
    assert lrs == full
    assert sched2.state == full_sched.state


RAMP_KWARGS = dict(factor=0.8, patience=2, window=3, warmup=6, eval_patience=0)
# after steps 2 and 3 the best (0.5, 0.45), after 4 and 5 worse values, after step 6 (the
# ramp's last) a worse one again, then one every 5 steps
RAMP_EVALS = {2: 0.5, 3: 0.45, 4: 0.6, 5: 0.7, 6: 0.55, 10: 0.5, 15: 0.4, 20: 0.6, 25: 0.3}


def drive_through_the_ramp(sched, opt, losses, start=1):
    """``drive``, with the held-out values of ``RAMP_EVALS``."""
    out = []
    for i, loss in enumerate(losses, start):
        opt.step()
        sched.step(loss)
        if i in RAMP_EVALS:
            sched.observe_eval(RAMP_EVALS[i])
        out.append([float(x) for x in sched.get_last_lr()])
    return out


@pytest.mark.parametrize(("save_on_device", "resume_on_device"),
                         [(False, False), (True, True), (True, False), (False, True)])
@pytest.mark.parametrize("cut", [3, 4, 5, 6, 12])
def test_resume_after_a_held_out_value_in_the_warmup_ramp_is_bit_identical(
        cut, save_on_device, resume_on_device):
    """Held-out values during the warmup ramp only record the best: the LRs follow the
    ramp, and the first worse value after its last step (step 6) cuts. A state dict saved
    right after one, in the ramp, at its end and after it, resumes bit-identically in
    either mode."""
    rng = random.Random(6)
    losses = [1.0 - 0.01 * t + rng.gauss(0.0, 0.01) for t in range(30)]
    opt = make_optimizer((0.1, 0.03), tensor_lr=True)
    full_sched = GreedyLR(opt, device_mode=False, **RAMP_KWARGS)
    full = drive_through_the_ramp(full_sched, opt, losses)
    bases = [float(torch.tensor(b)) for b in (0.1, 0.03)]  # the float32 LRs it starts from
    assert full[:5] == [[float(torch.tensor(b * (t / 6))) for b in bases] for t in range(1, 6)]
    assert full[5] == [float(torch.tensor(b * 0.7)) for b in bases]  # cut after step 6
    assert next(e.step for e in full_sched.events if e.kind == "eval_decrease") == 6

    lrs, _, sched2 = cut_and_resume(RAMP_KWARGS, losses, cut, save_on_device,
                                    resume_on_device, run=drive_through_the_ramp)
    assert lrs == full
    assert sched2.state == full_sched.state


def test_observe_eval_lowers_the_lr_and_blocks_increases():
    opt = make_optimizer((0.1,))
    sched = GreedyLR(opt, factor=0.5, patience=5, increase_patience=0, smoothing="none",
                     eval_patience=0)
    drive(sched, opt, [1.0])  # an increase: 0.2
    sched.observe_eval(0.5)
    sched.observe_eval(0.6)  # worse: times eval_factor (0.7 by default), from the next step on
    assert opt.param_groups[0]["lr"] == sched.get_last_lr()[0] == 0.2 * 0.7
    assert drive(sched, opt, [0.9]) == [[0.2 * 0.7]]  # would have increased: blocked
    assert [e.kind for e in sched.events] == ["increase", "eval_decrease"]


def test_a_0_1_checkpoint_loads_with_the_new_knobs_off(caplog):
    sched = GreedyLR(make_optimizer(), blowup_ratio=None, blowup_raw_check=False,
                     floor_anneals_to_zero=False)
    drive(sched, sched.optimizer, [1.0, 0.9, 0.8])
    saved = sched.state_dict()
    old_keys = set(saved["rule"]) - {"noise_var", "noise_count", "anneal_from", "payoff_left",
                                     "payoff_ref", "penalty", "eval_best", "eval_bad",
                                     "eval_block", "rule_lrs", "first", "blowup_cuts",
                                     "anneal_to_zero", "eval_train", "eval_worse_cuts"}
    saved = {**saved, "format": 1,
             "rule": {k: v for k, v in saved["rule"].items() if k in old_keys},
             "config": {k: v for k, v in saved["config"].items()
                        if k not in ("total_steps", "anneal_fraction", "anneal_shape",
                                     "noise_threshold", "payoff_patience", "eval_mode",
                                     "eval_factor", "eval_patience", "base_schedule",
                                     "blowup_ratio", "blowup_raw_check",
                                     "floor_anneals_to_zero")}}
    again = GreedyLR(make_optimizer(), anneal_fraction=0.0, eval_patience=None,
                     blowup_ratio=None, blowup_raw_check=False, floor_anneals_to_zero=False)
    again.load_state_dict(saved)
    assert again.state == sched.state
    # 0.1 knew no budget: a run continued with one says so (its key is absent there)
    budget = GreedyLR(make_optimizer(), anneal_fraction=0.0, eval_patience=None,
                      blowup_ratio=None, blowup_raw_check=False, floor_anneals_to_zero=False,
                      total_steps=100)
    with caplog.at_level(logging.WARNING, logger="greedylr"):
        budget.load_state_dict(saved)
    assert "saved with total_steps=None; the run goes on with total_steps=100" in caplog.text


def test_a_0_10_checkpoint_resumes_with_its_cooldown_and_names_it_otherwise():
    """0.10 saved neither ``anneal_to_zero`` nor ``stalled_anneals_to_zero``: both load
    as False, what it ran, so 0.11's defaults refuse it by name instead of changing where
    its cooldown ends mid-run, and so does a scheduler that ends every cooldown at 0."""
    old = GreedyLR(make_optimizer(), total_steps=20, stalled_anneals_to_zero=False)
    drive(old, old.optimizer, [1.0, 0.9, 0.8])
    saved = old.state_dict()
    saved = {**saved, "config": {k: v for k, v in saved["config"].items()
                                 if k not in ("anneal_to_zero", "stalled_anneals_to_zero")}}
    with pytest.raises(ValueError, match=r"another configuration.*"
                                         r"'stalled_anneals_to_zero': \(False, True\)"):
        GreedyLR(make_optimizer(), total_steps=20).load_state_dict(saved)
    again = GreedyLR(make_optimizer(), total_steps=20, stalled_anneals_to_zero=False)
    again.load_state_dict(saved)
    assert again.state == old.state
    with pytest.raises(ValueError,
                       match=r"another configuration.*'anneal_to_zero': \(False, True\)"):
        GreedyLR(make_optimizer(), total_steps=20, anneal_to_zero=True,
                 stalled_anneals_to_zero=False).load_state_dict(saved)


def test_a_0_3_checkpoint_resumes_with_its_eval_factor_and_names_it_otherwise():
    old = GreedyLR(make_optimizer(), eval_factor=0.5)  # 0.3's default
    drive(old, old.optimizer, [1.0, 0.9, 0.8])
    saved = old.state_dict()
    with pytest.raises(ValueError, match=r"another configuration.*'eval_factor': \(0.5, 0.7\)"):
        GreedyLR(make_optimizer()).load_state_dict(saved)
    again = GreedyLR(make_optimizer(), eval_factor=0.5)
    again.load_state_dict(saved)
    assert again.state == old.state


def test_a_0_4_checkpoint_resumes_without_the_guard_and_names_it_otherwise():
    """0.4 had no blow-up guard and saved no ``blowup_ratio``: it loads as None, what it
    ran, so 0.5's defaults refuse it by name instead of switching the guard on mid-run."""
    old = GreedyLR(make_optimizer(), blowup_ratio=None, blowup_raw_check=False,
                   floor_anneals_to_zero=False)
    drive(old, old.optimizer, [1.0, 0.9, 0.8])
    saved = old.state_dict()
    saved = {**saved,
             "config": {k: v for k, v in saved["config"].items()
                        if k not in ("blowup_ratio", "blowup_raw_check",
                                     "floor_anneals_to_zero")},
             "rule": {k: v for k, v in saved["rule"].items()
                      if k not in ("first", "blowup_cuts", "anneal_to_zero")}}
    with pytest.raises(ValueError,
                       match=r"another configuration.*'blowup_ratio': \(None, 100.0\)"):
        GreedyLR(make_optimizer()).load_state_dict(saved)
    again = GreedyLR(make_optimizer(), blowup_ratio=None, blowup_raw_check=False,
                     floor_anneals_to_zero=False)
    again.load_state_dict(saved)
    assert again.state == old.state


def test_a_0_5_checkpoint_resumes_without_the_raw_check_and_names_it_otherwise():
    """0.5's guard had no raw-loss check and saved no ``blowup_raw_check``: it loads as
    False, what it ran, so 0.6's defaults refuse it by name."""
    old = GreedyLR(make_optimizer(), blowup_raw_check=False, floor_anneals_to_zero=False)
    drive(old, old.optimizer, [1.0, 0.9, 0.8])
    saved = old.state_dict()
    saved = {**saved, "config": {k: v for k, v in saved["config"].items()
                                 if k not in ("blowup_raw_check", "floor_anneals_to_zero")}}
    with pytest.raises(ValueError,
                       match=r"another configuration.*'blowup_raw_check': \(False, True\)"):
        GreedyLR(make_optimizer()).load_state_dict(saved)
    again = GreedyLR(make_optimizer(), blowup_raw_check=False, floor_anneals_to_zero=False)
    again.load_state_dict(saved)
    assert again.state == old.state


def test_a_0_6_checkpoint_resumes_with_its_cooldown_and_names_it_otherwise():
    """0.6's final cooldown ended at the lower bound wherever it started, and 0.6 saved no
    ``floor_anneals_to_zero``: it loads as False, what it ran, so 0.7's defaults refuse
    it by name instead of changing where a cooldown under way ends."""
    old = GreedyLR(make_optimizer(), floor_anneals_to_zero=False, total_steps=20)
    drive(old, old.optimizer, [1.0, 0.9, 0.8])
    saved = old.state_dict()
    saved = {**saved, "config": {k: v for k, v in saved["config"].items()
                                 if k != "floor_anneals_to_zero"}}
    with pytest.raises(ValueError, match=r"another configuration.*"
                                         r"'floor_anneals_to_zero': \(False, True\)"):
        GreedyLR(make_optimizer(), total_steps=20).load_state_dict(saved)
    again = GreedyLR(make_optimizer(), floor_anneals_to_zero=False, total_steps=20)
    again.load_state_dict(saved)
    assert again.state == old.state


def test_a_0_8_checkpoint_resumes_without_compounding_and_names_it_otherwise():
    """0.8's held-out cuts never compounded, and 0.8 saved no ``eval_compound_margin``
    (nor the count of compounding cuts): it loads as None, what it ran, so 0.9's
    defaults refuse it by name instead of compounding the cuts of a run under way."""
    old = GreedyLR(make_optimizer(), eval_compound_margin=None)
    drive(old, old.optimizer, [1.0, 0.9, 0.8])
    old.observe_eval(1.0)
    old.observe_eval(1.5)
    saved = old.state_dict()
    saved = {**saved,
             "config": {k: v for k, v in saved["config"].items() if k != "eval_compound_margin"},
             "rule": {k: v for k, v in saved["rule"].items() if k != "eval_worse_cuts"}}
    with pytest.raises(ValueError, match=r"another configuration.*"
                                         r"'eval_compound_margin': \(None, 0.03\)"):
        GreedyLR(make_optimizer()).load_state_dict(saved)
    again = GreedyLR(make_optimizer(), eval_compound_margin=None)
    again.load_state_dict(saved)
    assert again.state == old.state


def test_incompatible_state_dict_is_rejected():
    sched = GreedyLR(make_optimizer(), window=10)
    saved = sched.state_dict()
    with pytest.raises(ValueError, match=r"another configuration.*'window': \(10, 50\)"):
        GreedyLR(make_optimizer()).load_state_dict(saved)
    with pytest.raises(ValueError, match="has 1 parameter groups, the optimizer has 2"):
        GreedyLR(make_optimizer((0.1, 0.1)), window=10).load_state_dict(saved)
    with pytest.raises(ValueError, match=r"not a greedylr\.GreedyLR state dict"):
        GreedyLR(make_optimizer()).load_state_dict({"best": 1.0})


# -- parity with transformers.GreedyLR --------------------------------------------


def random_transformers_kwargs(rng: random.Random, groups: int) -> dict:
    def bound(low, high):
        if rng.random() < 0.3:
            return [rng.uniform(low, high) for _ in range(groups)]
        return rng.uniform(low, high)

    kwargs = dict(
        mode=rng.choice(["min", "max"]),
        factor=rng.choice([0.1, 0.5, 0.9, 0.95, rng.uniform(0.05, 0.99)]),
        patience=rng.randint(0, 5),
        threshold=rng.choice([0.0, 1e-6, 1e-3, 0.05]),
        threshold_mode=rng.choice(["rel", "abs"]),
        cooldown=rng.randint(0, 3),
        warmup=rng.randint(0, 3),
        min_lr=bound(1e-4, 0.05),
        max_lr=bound(0.2, 2.0),
        eps=rng.choice([1e-8, 0.0, 1e-3]),
        smooth=rng.random() < 0.5,
        window_size=rng.randint(1, 12),
        reset_start=rng.randint(-1, 6),
    )
    # unspecified keys fall back to the defaults on both sides
    return {k: v for k, v in kwargs.items() if rng.random() < 0.85}


def random_losses(rng: random.Random, n: int) -> list[float]:
    level, out = rng.uniform(0.5, 5), []
    for _ in range(n):
        r = rng.random()
        if r < 0.15:
            out.append(out[-1] if out else level)  # exact repeats hit the strict comparison
        elif r < 0.55:
            level *= rng.uniform(0.9, 1.0)
            out.append(level)
        else:
            out.append(level * rng.uniform(0.8, 1.25))
    return out


def first_transformers_mismatch(transformers, lrs, kwargs, losses):
    """The first step where ``from_transformers`` and ``transformers.GreedyLR`` built with
    ``kwargs`` set other LRs on ``losses``, with both LRs; None where they never do."""
    theirs_opt, ours_opt = make_optimizer(lrs), make_optimizer(lrs)
    theirs = transformers.GreedyLR(theirs_opt, **kwargs)
    ours = GreedyLR.from_transformers(ours_opt, **kwargs)
    for step, loss in enumerate(losses):
        theirs.step(loss)
        ours_opt.step()
        ours.step(loss)
        a = [g["lr"] for g in theirs_opt.param_groups]
        b = [g["lr"] for g in ours_opt.param_groups]
        if a != b:
            return step, a, b
    return None


def test_from_transformers_reproduces_its_trajectory_exactly():
    transformers = pytest.importorskip("transformers")
    mismatches = []
    for case in range(1000):
        rng = random.Random(case)
        groups = rng.choice([1, 2])
        lrs = [rng.choice([0.1, 0.05, 0.01, 1e-3]) for _ in range(groups)]
        kwargs = random_transformers_kwargs(rng, groups)
        losses = random_losses(rng, rng.randint(20, 120))
        mismatch = first_transformers_mismatch(transformers, lrs, kwargs, losses)
        if mismatch is not None:
            mismatches.append((case, kwargs, *mismatch))
    assert not mismatches, mismatches[:3]


@pytest.mark.parametrize("mode", ["min", "max"])
def test_from_transformers_reproduces_a_relative_threshold_on_negative_values(mode):
    """transformers' ``rel`` bar is the product ``best * (1 - threshold)`` (``1 +`` in max
    mode) whatever the sign, as torch's ReduceLROnPlateau's: below 0 a slightly worse
    value passes it. greedylr's ``rel`` is sign-aware; from_transformers maps transformers'
    ``rel`` to ``rel_product`` (a review found 45 of 600 random configurations apart)."""
    transformers = pytest.importorskip("transformers")
    rng = random.Random(0)
    # a negative log-likelihood or reward drifting by less than 1% of its size: every
    # step beats the product bar, none the sign-aware one
    drift = [-(5.0 + 0.01 * rng.random()) for _ in range(200)]
    kwargs = dict(mode=mode, threshold=1e-2, threshold_mode="rel", patience=2, min_lr=1e-4,
                  max_lr=1.0)
    assert first_transformers_mismatch(transformers, [0.1], kwargs, drift) is None
    ours = GreedyLR.from_transformers(make_optimizer(), **kwargs)
    assert ours.config.threshold_mode == "rel_product"
    assert drive(ours, ours.optimizer, drift)[-1] == [1.0]  # up to max_lr, as transformers
    signed = GreedyLR(make_optimizer(), **{**ours.config.to_dict(), "threshold_mode": "rel"})
    assert drive(signed, signed.optimizer, drift)[-1] == [pytest.approx(0.003387, rel=1e-3)]
    mismatches = []
    for case in range(300):
        rng = random.Random(case)
        groups = rng.choice([1, 2])
        lrs = [rng.choice([0.1, 0.05, 0.01, 1e-3]) for _ in range(groups)]
        kwargs = {**random_transformers_kwargs(rng, groups), "mode": mode,
                  "threshold_mode": "rel", "threshold": rng.choice([1e-3, 0.01, 0.05, 0.1])}
        losses = [-x for x in random_losses(rng, rng.randint(20, 120))]
        mismatch = first_transformers_mismatch(transformers, lrs, kwargs, losses)
        if mismatch is not None:
            mismatches.append((case, kwargs, *mismatch))
    assert not mismatches, mismatches[:3]


def test_from_transformers_resumes_a_state_saved_with_the_sign_aware_rel(caplog):
    """A from_transformers(threshold_mode="rel") state of 0.11.8, which kept greedylr's
    "rel", loads, and the run goes on with transformers' bar; a plain GreedyLR refuses it."""
    kwargs = dict(threshold_mode="rel", threshold=0.01, patience=1, factor=0.5)
    losses = [2.0, 1.5, 1.6, 1.4, 1.45, -0.5, -0.498, -0.52, -0.51, -0.6]
    whole = GreedyLR.from_transformers(make_optimizer(), **kwargs)
    want = drive(whole, whole.optimizer, losses)
    first = GreedyLR.from_transformers(make_optimizer(), **kwargs)
    drive(first, first.optimizer, losses[:5])
    saved = first.state_dict()
    saved["config"]["threshold_mode"] = "rel"  # as 0.11.8 saved it
    resumed = GreedyLR.from_transformers(make_optimizer(), **kwargs)
    with caplog.at_level(logging.WARNING, logger="greedylr"):
        resumed.load_state_dict(saved)
    assert "saved with threshold_mode='rel'" in caplog.text
    assert resumed.config.threshold_mode == "rel_product"
    assert drive(resumed, resumed.optimizer, losses[5:]) == want[5:]
    plain = GreedyLR(make_optimizer(), **resumed.config.to_dict())
    with pytest.raises(ValueError, match=r"'threshold_mode': \('rel', 'rel_product'\)"):
        plain.load_state_dict(saved)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_rel_product_is_torchs_reduce_on_plateau_relative_threshold(mode):
    """``threshold_mode="rel_product"`` decides "better" as torch's ReduceLROnPlateau does
    with ``threshold_mode="rel"``, on values either side of 0: with patience 0 every value
    that is not better cuts the LR in both (greedylr raises it on the others)."""
    rng = random.Random(5)
    values, x = [], -3.0
    for _ in range(300):
        x += rng.gauss(0.0, 0.2)
        values.append(x)
    knobs = dict(mode=mode, factor=0.5, patience=0, threshold=0.05, eps=0.0)
    plateau_opt = make_optimizer()
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        plateau_opt, threshold_mode="rel", min_lr=0.0, **knobs)
    cuts = {"rel_product": [], "rel": []}
    schedulers = {k: GreedyLR(make_optimizer(), threshold_mode=k, compare="best",
                              smoothing="none", increase_patience=0, min_lr_ratio=None,
                              max_lr_ratio=None, blowup_ratio=None, trace=False, **knobs)
                  for k in cuts}
    theirs = []
    for value in values:
        before = plateau_opt.param_groups[0]["lr"]
        plateau.step(value)
        theirs.append(plateau_opt.param_groups[0]["lr"] < before)
        for k, sched in schedulers.items():
            before = sched.get_last_lr()[0]
            sched.optimizer.step()
            sched.step(value)
            cuts[k].append(sched.get_last_lr()[0] < before)
    assert cuts["rel_product"] == theirs
    assert cuts["rel"] != theirs  # the sign-aware bar decides otherwise below 0


def test_from_transformers_ignores_a_budget_and_held_out_values_as_transformers_does():
    # the HF Trainer and Lightning integrations pass both to any GreedyLR they find
    plain = GreedyLR.from_transformers(make_optimizer(), patience=2, factor=0.5)
    told = GreedyLR.from_transformers(make_optimizer(), patience=2, factor=0.5)
    told.set_total_steps(12)
    losses = [1.0, 0.9, 0.8, 0.85, 0.9, 0.95, 1.0, 0.7, 0.6, 0.5, 0.4, 0.3]
    for step, loss in enumerate(losses):
        if step % 4 == 3:
            told.observe_eval(10.0 + step)  # always worse: would lower the LR
        assert drive(told, told.optimizer, [loss]) == drive(plain, plain.optimizer, [loss])
    assert not [e for e in told.events if e.kind in ("eval_decrease", "anneal")]


@pytest.mark.parametrize("kind", ["numpy", "tensor"])
def test_from_transformers_takes_per_group_bounds_as_arrays_as_greedylr_does(kind):
    # an array or a 1-d tensor raised numpy's (or torch's) "truth value is ambiguous"
    # from the per-group test, where GreedyLR(min_lr=...) takes it as one value per group
    as_array = np.array if kind == "numpy" else torch.tensor
    opt = make_optimizer((0.1, 0.01))
    sched = GreedyLR.from_transformers(opt, min_lr=as_array([1e-3, 1e-4]),
                                       max_lr=as_array([1.0, 0.5]))
    assert sched.state.min_lrs == [pytest.approx(1e-3), pytest.approx(1e-4)]
    assert sched.state.max_lrs == [1.0, 0.5]
    with pytest.raises(ValueError, match="expected 2 min_lrs, got 3"):
        GreedyLR.from_transformers(opt, min_lr=as_array([1e-3, 1e-3, 1e-3]))


def test_from_transformers_still_warns_for_a_floor_above_the_initial_lr(caplog):
    with caplog.at_level(logging.WARNING, logger="greedylr"):
        GreedyLR.from_transformers(make_optimizer((0.1, 0.01)), min_lr=np.array([0.05, 0.05]))
    assert "min_lr [0.05, 0.05] is above the initial lr [0.1, 0.01]" in caplog.text


def test_from_transformers_rejects_unknown_arguments():
    message = r"unexpected transformers.GreedyLR arguments: \['smoothing'\]"
    with pytest.raises(TypeError, match=message):
        GreedyLR.from_transformers(make_optimizer(), smoothing=True)
    with pytest.raises(ValueError, match="expected 1 min_lrs, got 2"):
        GreedyLR.from_transformers(make_optimizer(), min_lr=[0.1, 0.2])
    # transformers knows "rel" and "abs" only (its "rel" is greedylr's "rel_product")
    for mode in ("rel_product", "relative"):
        with pytest.raises(ValueError, match=f"threshold mode {mode} is unknown!"):
            GreedyLR.from_transformers(make_optimizer(), threshold_mode=mode)


@pytest.mark.parametrize("tensor_lr", [False, True])
def test_events_above_the_first_byte_reach_the_trace(tensor_lr):
    """``undo`` (bit 8) and ``anneal`` (bit 7) in the per-step code column."""
    from greedylr.rule import EVENT_BITS

    opt = make_optimizer((0.1,), tensor_lr)
    sched = GreedyLR(opt, factor=0.5, patience=5, increase_patience=0, smoothing="none",
                     payoff_patience=2, min_lr_ratio=None, max_lr_ratio=None,
                     total_steps=10, anneal_fraction=0.2)
    drive(sched, opt, [1.0, 0.9, 0.95, 1.2, 1.1, 1.0, 0.9, 0.8, 0.7, 0.6])
    kinds = [e.kind for e in sched.events]
    assert "undo" in kinds and "anneal" in kinds
    codes = sched.trace.codes
    assert codes[3] == EVENT_BITS["undo"] and codes[7] == EVENT_BITS["anneal"]

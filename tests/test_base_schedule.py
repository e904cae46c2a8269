"""``base_schedule="cosine"``: the rule's own LRs move as without a budget, and the LRs
applied are those times cosine's decay. Trajectories by hand in all three implementations:
``tests/test_rule_knobs.py``; parity and resume with every other knob drawn:
``tests/test_parity.py`` (its cosine families)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import greedylr
from greedylr import GreedyConfig, GreedyLR, rule
from greedylr import tensor_rule as tr
from greedylr.studies import schedules

LOSSES = [1.0, 0.8, 0.9, 0.7, 0.95, 0.6, 0.65, 0.5]
KNOBS = {"factor": 0.5, "patience": 0, "smoothing": "none", "min_lr_ratio": None,
         "max_lr_ratio": None, "eval_patience": None}


def test_base_factor_is_one_through_the_warmup_then_cosine_to_zero() -> None:
    c = GreedyConfig(total_steps=10, warmup=2, base_schedule="cosine")
    assert [c.base_factor(s) for s in (0, 1, 2)] == [1.0, 1.0, 1.0]
    assert c.base_factor(4) == pytest.approx(0.5 * (1 + math.cos(math.pi * 2 / 8)))
    assert c.base_factor(6) == pytest.approx(0.5)
    assert c.base_factor(10) == pytest.approx(0.0) and c.base_factor(12) == pytest.approx(0.0)
    assert c.base_table() == [c.base_factor(s) for s in range(11)]
    assert GreedyConfig(total_steps=10).base_factor(6) == 1.0  # "constant"
    assert GreedyConfig(total_steps=10).base_table() == []
    # the decay replaces the final cooldown
    assert GreedyConfig(total_steps=10, base_schedule="cosine").anneal_start is None


def test_a_budget_inside_the_warmup_decays_in_one_step_after_it() -> None:
    """``total_steps <= warmup``: the ramp, then 0 (the table runs past the budget)."""
    config = GreedyConfig(total_steps=3, warmup=5, base_schedule="cosine", **KNOBS)
    assert config.base_table() == [1.0] * 6 + [pytest.approx(0.0)]
    state, tstate = rule.init(config, [0.1]), tr.init(config, [0.1])
    for loss in LOSSES:
        want = rule.update(config, state, loss).lrs
        tstate, d = tr.update(config, tstate, loss)
        assert tuple(d.lrs.tolist()) == want
    assert state.lrs == [0.0] and state.rule_lrs[0] > 0.1


def test_a_budget_is_needed() -> None:
    with pytest.raises(ValueError, match="total_steps"):
        GreedyConfig(base_schedule="cosine")
    with pytest.raises(ValueError, match="base_schedule"):
        GreedyConfig(total_steps=10, base_schedule="linear")  # type: ignore[arg-type]
    # a study trial passes its own budget: the settings are checked with a stand-in
    assert schedules.check_settings("greedy", {"base_schedule": "cosine"}) == {
        "base_schedule": "cosine"}


def test_cosine_mode_is_the_measured_setting_for_every_implementation() -> None:
    """The knobs rounds 8-12 measured: the held-out rule off, patience grown with the
    budget (never below the default 10), usable by the scheduler, the config and the
    optax port, with any knob overridden after it."""
    assert greedylr.cosine_mode(300) == {"total_steps": 300, "base_schedule": "cosine",
                                         "eval_patience": None, "patience": 10}
    assert greedylr.cosine_mode(100)["patience"] == 10
    assert greedylr.cosine_mode(1200)["patience"] == 40
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = GreedyLR(opt, **{**greedylr.cosine_mode(900), "warmup": 5})
    assert sched.config == GreedyConfig(total_steps=900, base_schedule="cosine",
                                        eval_patience=None, patience=30, warmup=5)
    for bad in (0, -5, 2.5, None, True):
        with pytest.raises(ValueError, match="total_steps"):
            greedylr.cosine_mode(bad)  # type: ignore[arg-type]
    # a NumPy count, as GreedyConfig(total_steps=...) takes it (refused before)
    assert greedylr.cosine_mode(np.int64(300)) == greedylr.cosine_mode(300)  # type: ignore[arg-type]
    optax = pytest.importorskip("greedylr.integrations.optax")
    jnp = pytest.importorskip("jax.numpy")
    transform = optax.greedy_lr(0.1, **greedylr.cosine_mode(900))  # raises on a knob it lacks
    state = transform.init({"w": jnp.zeros(2)})
    assert float(state.lr) == pytest.approx(0.1)


def test_the_defaults_digest_moves_with_a_default_not_with_a_neutral_knob() -> None:
    """A knob added at its neutral value (0.3's ``base_schedule``) keeps stored trials
    valid; a changed default (0.4's ``eval_factor``, 0.5's ``blowup_ratio``, 0.6's
    ``blowup_raw_check``, 0.7's ``floor_anneals_to_zero``, 0.8's ``eval_pace``, 0.9's
    ``eval_compound_margin``, 0.11's ``stalled_anneals_to_zero``) makes them run again."""
    assert schedules.greedy_defaults_digest() == "bf7ab17b1e"  # 0.11.0's
    nine = {"stalled_anneals_to_zero": False}  # 0.10's cooldown
    assert schedules._config_digest(GreedyConfig(**nine)) == "ed19f0a50a"  # 0.9.0's
    eight = {"eval_compound_margin": None, **nine}  # held-out cuts that never compound
    assert schedules._config_digest(GreedyConfig(**eight)) == "02b2b05de3"  # 0.8's
    assert schedules._config_digest(GreedyConfig(eval_pace=0.0, **eight)) == "839ce1beda"  # 0.7's
    six = {"floor_anneals_to_zero": False, "eval_pace": 0.0, **eight}  # 0.6's cooldown
    assert schedules._config_digest(GreedyConfig(**six)) == "2116512b49"  # 0.6's
    assert schedules._config_digest(GreedyConfig(blowup_raw_check=False, **six)) == "e1ed963bca"
    off = {"blowup_ratio": None, "blowup_raw_check": False, **six}  # no guard: what 0.4 ran
    assert schedules._config_digest(GreedyConfig(**off)) == "6ad7ad76df"  # 0.4's
    # 0.2.4's to 0.3's: the same knobs with 0.5, base_schedule at its neutral value
    assert schedules._config_digest(GreedyConfig(eval_factor=0.5, **off)) == "a6d001892d"


def test_the_rule_moves_as_without_a_budget_and_applies_cosine_on_top() -> None:
    based = GreedyConfig(total_steps=len(LOSSES), base_schedule="cosine", **KNOBS)
    anytime = GreedyConfig(**KNOBS)  # no budget: no cooldown, the same moves
    a, b = rule.init(based, [0.1]), rule.init(anytime, [0.1])
    moved = False
    for step, loss in enumerate(LOSSES, start=1):
        applied = rule.update(based, a, loss).lrs[0]
        own = rule.update(anytime, b, loss).lrs[0]
        moved |= own != 0.1
        assert a.rule_lrs == [own]
        # cosine over 8 steps: 0.5 * (1 + cos(pi * step / 8)), by hand
        assert applied == pytest.approx(own * 0.5 * (1 + math.cos(math.pi * step / 8)))
        assert a.lrs == [applied]
    assert moved and applied == pytest.approx(0.0)


@pytest.mark.parametrize("device_mode", [False, True])
def test_the_scheduler_writes_the_decayed_lr_and_its_events_quote_the_rules(
        device_mode: bool) -> None:
    param = torch.nn.Parameter(torch.zeros(2))
    lr = torch.tensor(0.1, dtype=torch.float64) if device_mode else 0.1
    opt = torch.optim.SGD([param], lr=lr)
    sched = GreedyLR(opt, total_steps=len(LOSSES), base_schedule="cosine",
                     device_mode=device_mode, trace=True, **KNOBS)
    assert sched.device_mode is device_mode
    anytime = rule.init(GreedyConfig(**KNOBS), [0.1])
    for step, loss in enumerate(LOSSES, start=1):
        opt.step()
        sched.step(loss)
        own = rule.update(GreedyConfig(**KNOBS), anytime, loss)
        assert sched.state.rule_lrs == list(own.lrs)
        assert float(opt.param_groups[0]["lr"]) == own.lrs[0] * sched.config.base_factor(step)
        # the events are those of the rule without a budget: its own LRs, not the decay's
        assert [e.to_dict() for e in sched.events if e.step == step] == [
            e.to_dict() for e in own.events]
    assert sched.trace.lrs[0][-1] == pytest.approx(0.0)  # the trace has the LRs applied


@pytest.mark.parametrize("device_mode", [False, True])
def test_a_group_added_mid_decay_starts_at_its_lr_times_the_factor(device_mode: bool) -> None:
    def lr(value: float) -> float | torch.Tensor:
        return torch.tensor(value, dtype=torch.float64) if device_mode else value

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr(0.1))
    sched = GreedyLR(opt, total_steps=8, base_schedule="cosine", device_mode=device_mode,
                     **KNOBS)
    for loss in LOSSES[:4]:
        opt.step()
        sched.step(loss)
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr(0.02)})
    factor = sched.config.base_factor(4)
    assert float(sched.get_last_lr()[1]) == 0.02 * factor
    assert sched.state.rule_lrs[1] == 0.02
    opt.step()
    sched.step(0.4)  # better: both groups' own LRs double, then the factor of step 5
    factor = sched.config.base_factor(5)
    assert [float(g["lr"]) for g in opt.param_groups] == [
        own * factor for own in sched.state.rule_lrs]
    assert sched.state.rule_lrs[1] == 0.04


def test_a_0_2_state_dict_resumes_with_the_lrs_it_applied() -> None:
    """A state saved without ``rule_lrs`` (0.2's format) starts them from its LRs."""
    config = GreedyConfig(total_steps=8, base_schedule="cosine", **KNOBS)
    state = rule.init(config, [0.1])
    old = {k: v for k, v in state.to_dict().items() if k != "rule_lrs"}
    loaded = rule.RuleState.from_dict(old)
    assert rule.update(config, loaded, 1.0).lrs == rule.update(config, state, 1.0).lrs
    tloaded = tr.from_rule_state(config, rule.RuleState.from_dict(old))
    assert tloaded.rule_lrs.tolist() == [0.1]

"""The tensor rule by hand, batched, and its checks (its parity with the float rule on
random cases: tests/test_parity.py)."""

from __future__ import annotations

import math
import random
import warnings

import pytest
import torch

from greedylr import rule
from greedylr import tensor_rule as tr
from greedylr.rule import GreedyConfig

NONFINITE = [math.nan, math.inf, -math.inf]


def test_hand_computed_codes() -> None:
    config = GreedyConfig(factor=0.5, patience=0, smoothing="none", min_lr_ratio=0.5,
                          max_lr_ratio=None, cooldown=1, reset_patience=1)
    state = tr.init(config, [0.1])
    codes, lrs = [], []
    for loss in [1.0, 2.0, 3.0, 4.0, math.nan]:
        state, decision = tr.update(config, state, loss)
        codes.append(int(decision.code))
        lrs.append(decision.lrs.item())
    # 1.0 beats +inf: increase to 0.2, no hold after increase; 2.0: decrease to 0.1,
    # cooldown armed; 3.0: in cooldown; 4.0: decrease to the floor 0.05, the
    # reset_patience-th floor hit: reset to the base 0.1, cooldown armed; NaN: skipped.
    assert codes == [
        tr.INCREASE,
        tr.DECREASE | tr.HOLD,
        0,
        tr.DECREASE | tr.RESET | tr.HOLD,
        tr.NONFINITE,
    ]
    assert lrs == [0.2, 0.1, 0.1, 0.1, 0.1]


def test_code_bits_are_the_trace_bits() -> None:
    from greedylr.trace import EVENT_BITS

    ours = [tr.INCREASE, tr.DECREASE, tr.CLIPPED, tr.HOLD, tr.WARMUP_END, tr.RESET,
            tr.NONFINITE]
    assert ours == [1 << i for i in range(7)]  # update() builds the code by shifting
    kinds = ["increase", "decrease", "clipped", "hold", "warmup_end", "reset", "nonfinite"]
    assert [EVENT_BITS[k] for k in kinds] == ours


def test_clipped_increase_is_flagged() -> None:
    config = GreedyConfig(factor=0.5, patience=0, smoothing="none", max_lr_ratio=1.0)
    state = tr.init(config, [0.1])
    state, decision = tr.update(config, state, 1.0)
    assert int(decision.code) == tr.INCREASE | tr.CLIPPED
    assert decision.lrs.item() == 0.1


# the blow-up guard on the falling walks below: mode="max" makes them blow-ups, the
# final cooldown (from step 200) starts in some
GUARD = {"blowup_ratio": 1.2, "mode": "max", "total_steps": 250, "anneal_fraction": 0.2}


@pytest.mark.parametrize(("smoothing", "guard"),
                         [("window", False), ("ema", False), ("none", False), ("ema", True)])
def test_batched_runs_equal_separate_float_runs(smoothing: str, guard: bool) -> None:
    """R runs with their own factor, base LRs, patience, holds and threshold, in one call.
    With the blow-up guard, each run squares its own factor."""
    runs, groups, steps = 24, 2, 250
    rng = random.Random(11)
    shared = {"smoothing": smoothing, "window": 4, "reset_patience": 3, "warmup": 3,
              "min_lr_ratio": 0.2, "max_lr_ratio": 4.0, "on_nonfinite": "decrease",
              "threshold_mode": "rel", **(GUARD if guard else {})}
    per_run = [
        {
            "factor": rng.choice([0.5, 0.8, 0.95]),
            "patience": rng.randint(0, 3),
            "increase_patience": rng.randint(0, 3),
            "cooldown": rng.randint(0, 2),
            "hold_after_increase": rng.randint(0, 2),
            "threshold": rng.choice([0.0, 0.01]),
            "eps": rng.choice([0.0, 1e-9]),
        }
        for _ in range(runs)
    ]
    bases = [[rng.choice([0.1, 0.03, 0.5]) for _ in range(groups)] for _ in range(runs)]
    configs_ = [GreedyConfig(**shared, **knobs) for knobs in per_run]
    states = [rule.init(c, b) for c, b in zip(configs_, bases, strict=True)]

    def column(name: str) -> torch.Tensor:
        values = [k[name] for k in per_run]
        # float64 from the start: a float32 tensor would round the factors
        return torch.tensor(values, dtype=torch.float64 if isinstance(values[0], float) else None)

    batch_config = GreedyConfig(**shared)
    tstate = tr.init(
        batch_config, torch.tensor(bases, dtype=torch.float64),
        factor=column("factor"), patience=column("patience"),
        increase_patience=column("increase_patience"), cooldown=column("cooldown"),
        hold_after_increase=column("hold_after_increase"),
        threshold=column("threshold"), eps=column("eps"),
    )
    walks = [1.0] * runs
    squared = set()  # the runs whose factor was squared
    for step in range(steps):
        losses = []
        for r in range(runs):
            walks[r] += rng.gauss(-0.003, 0.03)
            losses.append(math.nan if rng.random() < 0.01 else walks[r])
        tstate, decision = tr.update(batch_config, tstate,
                                     torch.tensor(losses, dtype=torch.float64))
        expected = [rule.update(c, s, v).lrs
                    for c, s, v in zip(configs_, states, losses, strict=True)]
        got = [tuple(row) for row in decision.lrs.tolist()]
        assert got == expected, f"step {step + 1}"
        squared |= {r for r, s in enumerate(states) if s.blowup_cuts >= 2}
    for r in range(runs):
        assert tr.to_rule_state(tr.select(tstate, r)) == states[r]
    if guard:
        assert len({per_run[r]["factor"] for r in squared}) > 1
        assert any(s.anneal_to_zero for s in states) and not all(s.anneal_to_zero for s in states)


def test_rule_state_round_trip_mid_window() -> None:
    config = GreedyConfig(window=5, patience=1)
    state = rule.init(config, [0.1, 0.2])
    for loss in [3.0, 2.0, 2.5, 2.4, 2.6, 2.2, 2.1]:
        rule.update(config, state, loss)
    tstate = tr.from_rule_state(config, state)
    assert tr.to_rule_state(tstate) == state
    for loss in [2.0, 1.9, 2.3]:
        decision = rule.update(config, state, loss)
        tstate, tdecision = tr.update(config, tstate, loss)
        assert tuple(tdecision.lrs.tolist()) == decision.lrs
    assert tr.to_rule_state(tstate) == state


def test_update_does_not_modify_its_input_state() -> None:
    config = GreedyConfig(patience=0, smoothing="window", window=3)
    state = tr.init(config, [0.1])
    before = [t.clone() for t in state]
    tr.update(config, state, 1.0)
    for old, new in zip(before, state, strict=True):
        assert torch.allclose(old, new, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"factor": torch.tensor([0.5, 1.5])}, "factor must be in"),
        ({"patience": torch.tensor([1, -1])}, "patience must be"),
        ({"cooldown": torch.tensor([0.5, 1.0])}, "cooldown must be"),
        ({"factor": torch.tensor([0.5, 0.5, 0.5])}, "does not broadcast"),
        # a fraction of the reference with threshold_mode="rel" (the default), as
        # GreedyConfig requires: 1 or more made no value better, or every one
        ({"threshold": torch.tensor([0.5, 1.0])}, r"threshold must be in \[0, 1\)"),
    ],
)
def test_bad_per_run_knobs_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tr.init(GreedyConfig(), [[0.1], [0.1]], **kwargs)


def test_a_per_run_threshold_is_a_fraction_with_the_product_bar_too() -> None:
    config = GreedyConfig(threshold_mode="rel_product")
    message = r"threshold must be in \[0, 1\) with threshold_mode='rel_product'"
    with pytest.raises(ValueError, match=message):
        tr.init(config, [[0.1], [0.1]], threshold=torch.tensor([0.5, 1.0]))
    # an absolute margin has no upper limit
    tr.init(GreedyConfig(threshold_mode="abs"), [[0.1], [0.1]], threshold=torch.tensor([0.5, 2.0]))


@pytest.mark.parametrize("name", ["factor", "threshold", "eps"])
def test_a_per_run_knob_less_precise_than_the_state_is_warned_about(name: str) -> None:
    """A float32 tensor of 0.9 holds 0.8999999761581421: the run would not decide as
    the float rule with 0.9 (it did so silently), so init says so, as for base_lrs."""
    values = {"factor": [0.9, 0.5], "threshold": [0.01, 0.0], "eps": [1e-8, 0.0]}[name]
    held = torch.tensor(values[0], dtype=torch.float32).item()
    with pytest.warns(UserWarning, match=rf"{name} is a torch.float32 tensor, less precise "
                      r"than the state's torch.float64: its values are taken as they are "
                      rf"\({values[0]!r} is {held!r}\)"):
        state = tr.init(GreedyConfig(), [[0.1], [0.1]], **{name: torch.tensor(values)})
    assert getattr(state, name).tolist() == torch.tensor(values).double().tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # exact: Python floats, a float64 tensor, integers, or a float32 state
        tr.init(GreedyConfig(), [[0.1], [0.1]], **{name: values})
        tr.init(GreedyConfig(), [[0.1], [0.1]],
                **{name: torch.tensor(values, dtype=torch.float64)})
        tr.init(GreedyConfig(), [[0.1], [0.1]], dtype=torch.float32,
                **{name: torch.tensor(values)})
        tr.init(GreedyConfig(), [[0.1], [0.1]], patience=torch.tensor([1, 2]))
        # values a float32 holds exactly
        tr.init(GreedyConfig(), torch.tensor([[0.5], [0.25]]), factor=torch.tensor([0.5, 0.75]))


def test_base_lrs_less_precise_than_the_state_are_warned_about() -> None:
    with pytest.warns(UserWarning, match=r"base_lrs is a torch.float32 tensor.*"
                      r"\(0.1 is 0.10000000149011612, 0.2 is 0.20000000298023224\)"):
        tr.init(GreedyConfig(), torch.tensor([[0.1], [0.2]]))


def test_an_absolute_per_run_threshold_may_be_1_or_more() -> None:
    config = GreedyConfig(threshold_mode="abs")
    state = tr.init(config, [[0.1], [0.1]], threshold=torch.tensor([0.5, 2.0]))
    assert state.threshold.tolist() == [0.5, 2.0]


def test_the_blowup_guard_state_is_allocated_only_when_on() -> None:
    """Off, its factors take no room and update leaves its fields alone (the same
    tensors); on, a run's factors are GreedyConfig.blowup_table of its own factor."""
    off = GreedyConfig(patience=0, smoothing="none", blowup_ratio=None)
    state = tr.init(off, [[0.1], [0.2]], factor=torch.tensor([0.5, 0.9], dtype=torch.float64))
    assert state.blowup_factors.shape == (2, 0)
    new, _ = tr.update(off, state, torch.tensor([1.0, 2.0]))
    for name in ("first", "blowup_cuts", "anneal_to_zero", "blowup_factors"):
        assert getattr(new, name) is getattr(state, name)
    on = GreedyConfig(patience=0, smoothing="none", blowup_ratio=2.0)
    state = tr.init(on, [[0.1], [0.2]], factor=torch.tensor([0.5, 0.9], dtype=torch.float64))
    assert state.blowup_factors.tolist() == [on.blowup_table(0.5), on.blowup_table(0.9)]
    assert on.blowup_table(0.9) == [0.9, 0.9**2, 0.9**4, 0.9**8, 0.9**16]
    assert tr.select(state, 1).blowup_factors.tolist() == on.blowup_table(0.9)
    new, _ = tr.update(on, state, torch.tensor([1.0, 2.0]))
    assert new.first.tolist() == [1.0, 2.0]


def test_rejects_what_needs_a_host_read_and_bad_lrs() -> None:
    with pytest.raises(ValueError, match="on_nonfinite='raise'"):
        tr.init(GreedyConfig(on_nonfinite="raise"), [0.1])
    with pytest.raises(ValueError, match="finite and >= 0"):
        tr.init(GreedyConfig(), [math.nan])
    with pytest.raises(ValueError, match="outside their bounds"):
        tr.init(GreedyConfig(min_lr=0.5, min_lr_ratio=None), [0.1])
    with pytest.raises(ValueError, match="at least one parameter group"):
        tr.init(GreedyConfig(), torch.zeros(3, 0))

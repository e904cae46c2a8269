"""Parity of the tensor rule with the float rule: every LR, smoothed value and event."""

from __future__ import annotations

import math
import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greedylr import rule
from greedylr import tensor_rule as tr
from greedylr.rule import GreedyConfig

NONFINITE = [math.nan, math.inf, -math.inf]


def _events(config: GreedyConfig, state: tr.TensorState, decision: tr.TensorDecision,
            loss: float) -> list[rule.Event]:
    return tr.decode_events(
        config,
        step=int(state.step),
        code=int(decision.code),
        loss=loss,
        smoothed=float(decision.smoothed),
        reference=float(decision.reference),
        lrs_before=decision.lrs_before.tolist(),
        lrs_changed=decision.lrs_changed.tolist(),
        lrs_after=decision.lrs.tolist(),
        min_lrs=state.min_lrs.tolist(),
        max_lrs=state.max_lrs.tolist(),
        penalty=int(decision.penalty),
    )


def _same(a: object, b: object) -> bool:
    # repr round-trips floats exactly and prints NaN as nan: a bit-exact comparison
    return repr(a) == repr(b)


def _run_both(config: GreedyConfig, base: list[float], losses: list[float]) -> None:
    """Step both rules on ``losses``; assert identical LRs, smoothed values, events, state."""
    state = rule.init(config, base)
    tstate = tr.init(config, base)
    assert tuple(tstate.lrs.tolist()) == tuple(state.lrs)
    for i, loss in enumerate(losses):
        decision = rule.update(config, state, loss)
        tstate, tdecision = tr.update(config, tstate, torch.tensor(loss, dtype=torch.float64))
        where = f"step {i + 1}, loss {loss!r}, config {config}"
        assert tuple(tdecision.lrs.tolist()) == decision.lrs, where
        smoothed = float(tdecision.smoothed)
        expected = math.nan if decision.smoothed is None else decision.smoothed
        assert _same(smoothed, expected), where
        got = [e.to_dict() for e in _events(config, tstate, tdecision, loss)]
        assert _same(got, [e.to_dict() for e in decision.events]), where
    assert tr.to_rule_state(tstate) == state


@st.composite
def configs(draw: st.DrawFn) -> GreedyConfig:
    bounds = draw(st.sampled_from(["ratio", "absolute", "none"]))
    kwargs: dict = {}
    if bounds == "ratio":
        low = draw(st.sampled_from([None, 0.1, 0.5, 1.0]))
        high = draw(st.sampled_from([None, 1.0, 2.0, 10.0]))
        kwargs.update(min_lr_ratio=low, max_lr_ratio=high)
    elif bounds == "absolute":
        kwargs.update(min_lr=draw(st.sampled_from([0.0, 0.01, 0.05])),
                      max_lr=draw(st.sampled_from([0.2, 1.0])), check_bounds=False)
    else:
        kwargs.update(min_lr_ratio=None, max_lr_ratio=None)
    return GreedyConfig(
        factor=draw(st.sampled_from([0.5, 0.9, 0.95, 0.3])),
        patience=draw(st.integers(0, 3)),
        increase_patience=draw(st.sampled_from([None, 0, 1, 2])),
        compare=draw(st.sampled_from(["best", "recent_best", "previous"])),
        threshold=draw(st.sampled_from([0.0, 1e-3, 0.05])),
        threshold_mode=draw(st.sampled_from(["rel", "abs"])),
        mode=draw(st.sampled_from(["min", "max"])),
        smoothing=draw(st.sampled_from(["window", "ema", "none"])),
        window=draw(st.integers(1, 6)),
        warmup=draw(st.sampled_from([0, 0, 1, 4])),
        warmup_start_factor=draw(st.sampled_from([0.0, 0.1])),
        cooldown=draw(st.integers(0, 2)),
        hold_after_increase=draw(st.integers(0, 2)),
        reset_patience=draw(st.sampled_from([None, 1, 2])),
        eps=draw(st.sampled_from([0.0, 1e-8, 1e-3])),
        on_nonfinite=draw(st.sampled_from(["skip", "decrease"])),
        total_steps=draw(st.sampled_from([None, 20, 60])),
        anneal_fraction=draw(st.sampled_from([0.0, 0.1, 0.5])),
        anneal_shape=draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
        noise_threshold=draw(st.sampled_from([0.0, 0.0, 0.5, 2.0])),
        payoff_patience=draw(st.sampled_from([None, None, 1, 3])),
        **kwargs,
    )


losses_st = st.lists(
    st.one_of(
        st.floats(-5, 5, allow_nan=False, allow_infinity=False),
        st.sampled_from([0.0, 1.0, 1.0, 2.0, 0.5, *NONFINITE]),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs(), base=st.lists(st.sampled_from([0.1, 0.02, 0.3]), min_size=1,
                                       max_size=3), losses=losses_st)
def test_parity_with_the_float_rule(config: GreedyConfig, base: list[float],
                                    losses: list[float]) -> None:
    _run_both(config, base, losses)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"smoothing": "ema", "window": 50},
        {"smoothing": "window", "window": 7, "compare": "previous", "patience": 1},
        {"smoothing": "none", "patience": 0, "reset_patience": 2, "cooldown": 2,
         "hold_after_increase": 1, "warmup": 5, "on_nonfinite": "decrease",
         "min_lr_ratio": 0.5, "max_lr_ratio": 2.0},
    ],
)
def test_long_noisy_runs_match_bit_for_bit(kwargs: dict) -> None:
    """1,200 steps of a noisy descent with spikes: long enough to pass the EMA table end."""
    config = GreedyConfig(**kwargs)
    rng = random.Random(7)
    losses, x = [], 2.0
    for _ in range(1200):
        x = max(x + rng.gauss(-0.002, 0.05), 0.01)
        losses.append(rng.choice(NONFINITE) if rng.random() < 0.01 else x)
    _run_both(config, [0.1, 0.01], losses)


def test_the_transformers_preset_parity() -> None:
    config = GreedyConfig(
        factor=0.95, patience=10, threshold=1e-6, threshold_mode="abs", min_lr=1e-3,
        max_lr=1.0, min_lr_ratio=None, max_lr_ratio=None, eps=1e-8, smoothing="window",
        window=50, reset_patience=500, check_bounds=False,
    )
    rng = random.Random(3)
    losses = [1.0 / (1 + 0.01 * i) + rng.gauss(0, 0.05) for i in range(600)]
    _run_both(config, [0.01], losses)


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


@pytest.mark.parametrize("smoothing", ["window", "ema", "none"])
def test_batched_runs_equal_separate_float_runs(smoothing: str) -> None:
    """R runs with their own factor, base LRs, patience, holds and threshold, in one call."""
    runs, groups, steps = 24, 2, 250
    rng = random.Random(11)
    shared = {"smoothing": smoothing, "window": 4, "reset_patience": 3, "warmup": 3,
              "min_lr_ratio": 0.2, "max_lr_ratio": 4.0, "on_nonfinite": "decrease",
              "threshold_mode": "rel"}
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
    for r in range(runs):
        assert tr.to_rule_state(tr.select(tstate, r)) == states[r]


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
    ],
)
def test_bad_per_run_knobs_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tr.init(GreedyConfig(), [[0.1], [0.1]], **kwargs)


def test_rejects_what_needs_a_host_read_and_bad_lrs() -> None:
    with pytest.raises(ValueError, match="on_nonfinite='raise'"):
        tr.init(GreedyConfig(on_nonfinite="raise"), [0.1])
    with pytest.raises(ValueError, match="finite and >= 0"):
        tr.init(GreedyConfig(), [math.nan])
    with pytest.raises(ValueError, match="outside their bounds"):
        tr.init(GreedyConfig(min_lr=0.5, min_lr_ratio=None), [0.1])
    with pytest.raises(ValueError, match="at least one parameter group"):
        tr.init(GreedyConfig(), torch.zeros(3, 0))

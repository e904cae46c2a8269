"""The rule, knob by knob, against trajectories computed by hand (its invariants and its
checkpoint on random cases: tests/test_parity.py)."""

from __future__ import annotations

import math

import pytest

from greedylr.rule import GreedyConfig, init, update

PLAIN = dict(smoothing="none", min_lr_ratio=None, max_lr_ratio=None)


def run(config: GreedyConfig, losses, base=(1.0,)):
    state = init(config, list(base))
    lrs, kinds = [], []
    for loss in losses:
        decision = update(config, state, loss)
        lrs.append(decision.lrs[0] if len(base) == 1 else decision.lrs)
        kinds.append([e.kind for e in decision.events])
    return state, lrs, kinds


def test_patience_acts_on_the_observation_that_exceeds_it():
    cfg = GreedyConfig(factor=0.5, patience=2, **PLAIN)
    # 1.0 beats +inf (good 1); 0.9 good 2; 0.8 good 3 > 2 -> increase
    _, lrs, kinds = run(cfg, [1.0, 0.9, 0.8, 0.8, 0.8, 0.8])
    assert lrs == [1.0, 1.0, 2.0, 2.0, 2.0, 1.0]
    assert kinds[2] == ["increase"] and kinds[5] == ["decrease"]


def test_patience_zero_acts_on_every_observation():
    cfg = GreedyConfig(factor=0.5, patience=0, **PLAIN)
    _, lrs, _ = run(cfg, [1.0, 0.5, 0.7, 0.7, 0.1])
    assert lrs == [2.0, 4.0, 2.0, 1.0, 2.0]


def test_increase_patience_is_separate():
    cfg = GreedyConfig(factor=0.5, patience=0, increase_patience=2, **PLAIN)
    _, lrs, _ = run(cfg, [3.0, 2.0, 1.0, 1.0])
    assert lrs == [1.0, 1.0, 2.0, 1.0]


def test_compare_best_versus_previous():
    losses = [1.0, 2.0, 1.5, 1.2, 1.1]
    best = GreedyConfig(factor=0.5, patience=1, compare="best", **PLAIN)
    prev = GreedyConfig(factor=0.5, patience=1, compare="previous", **PLAIN)
    # best: 1.0 good; 2.0, 1.5 bad -> decrease at obs 3; 1.2, 1.1 bad (vs 1.0) -> decrease at obs 5
    assert run(best, losses)[1] == [1.0, 1.0, 0.5, 0.5, 0.25]
    # previous: 1.0 good; 2.0 bad; 1.5 good; 1.2 good -> increase at obs 4; 1.1 good
    assert run(prev, losses)[1] == [1.0, 1.0, 1.0, 2.0, 2.0]


def test_recent_best_rebaselines_at_each_decrease():
    losses = [1.0, 2.0, 1.5, 1.8, 1.4]
    recent = GreedyConfig(factor=0.5, patience=1, compare="recent_best", **PLAIN)
    best = GreedyConfig(factor=0.5, patience=1, compare="best", **PLAIN)
    # both decrease at obs 3; recent_best then compares with 1.5, so 1.4 is an improvement
    state, lrs, _ = run(recent, losses)
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5] and state.reference == 1.4
    assert run(best, losses)[1] == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_relative_and_absolute_threshold():
    losses = [1.0, 0.95, 0.9]
    rel = GreedyConfig(factor=0.5, patience=1, threshold=0.1, threshold_mode="rel", **PLAIN)
    absolute = GreedyConfig(factor=0.5, patience=1, threshold=0.04, threshold_mode="abs", **PLAIN)
    # rel: needs < 0.9 * best: 0.95 no, 0.9 no (not strictly) -> decrease on obs 3
    assert run(rel, losses)[1] == [1.0, 1.0, 0.5]
    # abs: needs < best - 0.04: 0.95 < 0.96 yes, 0.9 < 0.91 yes -> increase on obs 2
    assert run(absolute, losses)[1] == [1.0, 2.0, 2.0]


def test_max_mode_for_rewards():
    cfg = GreedyConfig(factor=0.5, patience=1, mode="max", **PLAIN)
    _, lrs, _ = run(cfg, [0.1, 0.2, 0.2, 0.2])
    assert lrs == [1.0, 2.0, 2.0, 1.0]


def test_window_mean_smoothing():
    cfg = GreedyConfig(smoothing="window", window=3, min_lr_ratio=None, max_lr_ratio=None)
    state = init(cfg, [1.0])
    smoothed = [update(cfg, state, x).smoothed for x in [3.0, 6.0, 9.0, 12.0, 0.0]]
    assert smoothed == [3.0, 4.5, 6.0, 9.0, 7.0]
    assert len(state.window_values) == 3  # a ring buffer: O(1) per step


def test_ema_smoothing_is_bias_corrected():
    cfg = GreedyConfig(smoothing="ema", window=3, min_lr_ratio=None, max_lr_ratio=None)
    state = init(cfg, [1.0])
    # span 3 -> beta 0.5: m1 = 1, debiased 1 / 0.5 = 2; m2 = 0.5 + 2 = 2.5, / 0.75
    assert update(cfg, state, 2.0).smoothed == pytest.approx(2.0)
    assert update(cfg, state, 4.0).smoothed == pytest.approx(2.5 / 0.75)


def test_warmup_is_a_linear_ramp_then_the_rule_starts():
    cfg = GreedyConfig(factor=0.5, patience=0, warmup=4, **PLAIN)
    state = init(cfg, [0.8])
    assert state.lrs == [0.0]
    _, lrs, kinds = run(cfg, [5.0, 4.0, 3.0, 2.0, 1.0, 2.0], base=(0.8,))
    assert lrs == [0.2, 0.4, 0.6000000000000001, 0.8, 1.6, 0.8]
    assert kinds[3] == ["warmup_end"] and kinds[4] == ["increase"]


def test_warmup_start_factor():
    cfg = GreedyConfig(warmup=2, warmup_start_factor=0.5, **PLAIN)
    state = init(cfg, [1.0])
    assert state.lrs == [0.5]
    assert update(cfg, state, 1.0).lrs == (0.75,)
    assert update(cfg, state, 1.0).lrs == (1.0,)


def test_cooldown_ignores_observations_after_a_decrease():
    cfg = GreedyConfig(factor=0.5, patience=0, cooldown=2, **PLAIN)
    _, lrs, kinds = run(cfg, [1.0, 2.0, 3.0, 4.0, 5.0])
    # 1.0 good -> x2; 2.0 bad -> /2 and hold 2; 3.0, 4.0 ignored; 5.0 bad -> /2
    assert lrs == [2.0, 1.0, 1.0, 1.0, 0.5]
    assert kinds[1] == ["decrease", "hold"]


def test_hold_after_increase():
    cfg = GreedyConfig(factor=0.5, patience=0, hold_after_increase=1, **PLAIN)
    _, lrs, _ = run(cfg, [3.0, 2.0, 1.0])
    assert lrs == [2.0, 2.0, 4.0]


def test_relative_bounds_and_clipped_event():
    cfg = GreedyConfig(factor=0.5, patience=0, smoothing="none", min_lr_ratio=0.3, max_lr_ratio=2.0)
    _, lrs, kinds = run(cfg, [1.0, 0.5, 0.4, 0.3, 1.0, 1.0, 1.0])
    assert lrs == [2.0, 2.0, 2.0, 2.0, 1.0, 0.5, 0.3]
    assert kinds[1] == ["clipped"]
    _, lrs, kinds = run(cfg, [1.0, 1.0, 1.0, 1.0, 1.0], base=(1.0,))
    assert lrs[-1] == 0.3 and kinds[-1] == ["clipped"]


def test_absolute_bounds_per_group():
    cfg = GreedyConfig(factor=0.5, patience=0, smoothing="none", min_lr=[0.1, 0.4], max_lr=10.0)
    state = init(cfg, [1.0, 1.0])
    for loss in [1.0, 2.0, 3.0, 4.0, 5.0]:  # x2, then four halvings
        update(cfg, state, loss)
    assert state.lrs == [0.125, 0.4]
    update(cfg, state, 6.0)
    assert state.lrs == [0.1, 0.4]


def test_reset_after_decreases_at_the_floor():
    cfg = GreedyConfig(
        factor=0.5, patience=0, smoothing="none", min_lr_ratio=0.25, max_lr_ratio=None,
        reset_patience=2,
    )
    _, lrs, kinds = run(cfg, [1.0, 2.0, 3.0, 4.0, 5.0])
    # 1.0 good -> 2; then 1, 0.5, 0.25 (floor hit 1), 0.25 (floor hit 2) -> reset to 1
    assert lrs == [2.0, 1.0, 0.5, 0.25, 1.0]
    assert kinds[-1] == ["clipped", "reset"]


def test_nonfinite_is_skipped_and_never_poisons_the_window():
    cfg = GreedyConfig(factor=0.5, patience=0, window=4, min_lr_ratio=None, max_lr_ratio=None)
    state = init(cfg, [1.0])
    update(cfg, state, 2.0)
    before = (list(state.window_values), state.window_sum, state.lrs[:])
    for bad in (math.nan, math.inf, -math.inf):
        decision = update(cfg, state, bad)
        assert [e.kind for e in decision.events] == ["nonfinite"]
    assert (state.window_values, state.window_sum, state.lrs) == before
    assert update(cfg, state, 2.0).smoothed == 2.0


def test_nonfinite_decrease_and_raise():
    cfg = GreedyConfig(factor=0.5, patience=5, on_nonfinite="decrease", cooldown=1, **PLAIN)
    _, lrs, kinds = run(cfg, [1.0, math.nan])
    assert lrs == [1.0, 0.5] and kinds[1] == ["nonfinite", "decrease", "hold"]
    cfg = GreedyConfig(on_nonfinite="raise", **PLAIN)
    with pytest.raises(FloatingPointError, match="nan"):
        run(cfg, [math.nan])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_refused_nonfinite_loss_leaves_the_state_as_it_was(bad):
    # the step was counted before the raise: a warmup, a budget and a cooldown all
    # counted the refused loss as a step, and a retry as the next one
    cfg = GreedyConfig(on_nonfinite="raise", warmup=4, factor=0.5, patience=0, **PLAIN)
    state = init(cfg, [1.0])
    update(cfg, state, 1.0)
    before = state.to_dict()
    with pytest.raises(FloatingPointError, match="at step 2"):
        update(cfg, state, bad)
    assert state.to_dict() == before
    retried = [update(cfg, state, x).lrs[0] for x in (0.9, 0.8)]
    _, plain, _ = run(cfg, [1.0, 0.9, 0.8])
    assert retried == plain[1:] == [0.5, 0.75]


def test_eps_suppresses_tiny_changes():
    cfg = GreedyConfig(factor=0.5, patience=0, eps=0.3, **PLAIN)
    _, lrs, kinds = run(cfg, [1.0, 2.0, 3.0], base=(0.5,))
    # 0.5 -> 1.0 (change 0.5 > 0.3); 1.0 -> 0.5 (0.5); 0.5 -> 0.25 blocked (0.25 <= 0.3)
    assert lrs == [1.0, 0.5, 0.5] and kinds[2] == ["clipped"]


def test_event_reason_names_the_numbers():
    cfg = GreedyConfig(factor=0.5, patience=1, **PLAIN)
    state = init(cfg, [1.0])
    events = [e for x in (0.4, 0.5, 0.6) for e in update(cfg, state, x).events]
    assert events[0].reason == (
        "decrease at step 3: 2 non-improving steps > patience 1; "
        "smoothed loss 0.6 vs best since the last decrease 0.4; lr 1 -> 0.5"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(factor=1.5), "factor must be in (0, 1), got 1.5"),
        (dict(factor=0.0), "factor must be in (0, 1), got 0.0"),
        (dict(patience=-1), "patience must be an int >= 0, got -1"),
        (dict(patience=2.5), "patience must be an int >= 0, got 2.5"),
        (dict(window=0), "window must be an int >= 1, got 0"),
        (dict(mode="maximum"), "mode must be one of ('min', 'max'), got 'maximum'"),
        (dict(threshold=-1e-3), "threshold must be >= 0, got -0.001"),
        (dict(min_lr_ratio=2.0, max_lr_ratio=1.0), "min_lr_ratio (2.0) is above max_lr_ratio"),
        (dict(reset_patience=0), "reset_patience must be an int >= 1 or None, got 0"),
        (dict(min_lr=-1.0), "min_lr must be >= 0, got -1.0"),
    ],
)
def test_bad_configuration_names_the_value(kwargs, message):
    with pytest.raises(ValueError) as info:
        GreedyConfig(**kwargs)
    assert message in str(info.value)


def test_bad_bounds_against_the_initial_lr():
    with pytest.raises(ValueError, match=r"min_lr 0.5 is above max_lr 0.1"):
        init(GreedyConfig(min_lr=0.5, max_lr=0.1), [0.2])
    with pytest.raises(ValueError, match=r"initial lr 0.01 is outside its bounds \[0.1, 1.0\]"):
        init(GreedyConfig(min_lr=0.1, max_lr=1.0), [0.01])
    with pytest.raises(ValueError, match="min_lr has 3 values for 2 parameter groups"):
        init(GreedyConfig(min_lr=[0.0, 0.0, 0.0]), [0.1, 0.1])


@pytest.mark.parametrize("lr", [2e-5, 3e-4, 0.1])
def test_defaults_are_never_a_silent_no_op(lr):
    """At common learning rates the defaults can both raise and lower the LR."""
    cfg = GreedyConfig()
    state = init(cfg, [lr])
    for i in range(400):  # a falling loss: the LR must rise
        update(cfg, state, 1.0 / (1 + i))
    assert state.lrs[0] > lr
    high = state.lrs[0]
    for _ in range(400):  # a flat loss: the LR must fall
        update(cfg, state, 1.0)
    assert state.lrs[0] < high

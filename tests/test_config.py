"""GreedyConfig's checks of single knobs and of the budget: every value that cannot mean
what it says is refused, naming the knob (a review's config probe)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from greedylr.config import GreedyConfig, budget_after_warmup


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # a bool is not a number: eps=True and noise_threshold=True were taken as 1.0,
        # check_bounds="no" as True
        ({"check_bounds": "no"}, "check_bounds must be a bool, got 'no'"),
        ({"check_bounds": 0}, "check_bounds must be a bool, got 0"),
        ({"eps": True}, r"eps must be a number \(an int or a float\), got True of type bool"),
        ({"noise_threshold": True}, r"noise_threshold must be a number \(an int or a float\)"),
        ({"threshold": True, "threshold_mode": "abs"}, r"threshold must be a number \(an int"),
        ({"min_lr": True}, r"min_lr must be a number \(an int or a float\), a list"),
        ({"max_lr": [0.1, False]}, r"max_lr must be a number .*, got \[0.1, False\]"),
        ({"min_lr": "1e-3"}, r"min_lr must be a number .*, got '1e-3'"),
        ({"min_lr": -1.0}, "min_lr must be >= 0, got -1.0"),
        ({"min_lr_ratio": True}, r"min_lr_ratio must be a number \(an int or a float\) or None"),
        ({"eval_pace": False}, r"eval_pace must be a number \(an int or a float\), got False"),
        # infinities that freeze or poison every LR: eps=inf applied no change ever
        ({"eps": math.inf}, "eps must be finite and >= 0, got inf"),
        ({"threshold": math.inf, "threshold_mode": "abs"}, "threshold must be finite, got inf"),
        # a fraction of the reference with either relative bar
        ({"threshold": 1.0, "threshold_mode": "rel_product"},
         "threshold must be < 1 with threshold_mode='rel_product'"),
        ({"threshold_mode": "product"},
         r"threshold_mode must be one of \('rel', 'abs', 'rel_product'\), got 'product'"),
        ({"min_lr": math.inf, "max_lr": None, "max_lr_ratio": None, "check_bounds": False},
         "min_lr must be finite, got inf"),
        ({"min_lr_ratio": math.inf, "max_lr_ratio": None}, "min_lr_ratio must be finite"),
        # a raw TypeError ('<=' not supported) before
        ({"warmup_start_factor": "0.5"}, r"warmup_start_factor must be a number \(an int or a "
                                         r"float\), got '0.5' of type str"),
        ({"warmup_start_factor": None}, r"warmup_start_factor must be a number \(an int or a "
                                        r"float\), got None"),
        # a type reported as a type, not as a range (factor="0.5" is no number in (0, 1))
        ({"factor": "0.5"}, r"factor must be a number \(an int or a float\), got '0.5'"),
        ({"warmup_start_factor": 1.5}, "warmup_start_factor must be a number in \\[0, 1\\]"),
    ],
)
def test_a_value_that_cannot_mean_what_it_says_is_refused_naming_the_knob(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GreedyConfig(**kwargs)


def test_numbers_of_other_types_and_unbounded_upper_bounds_are_still_taken():
    assert GreedyConfig(factor=np.float32(0.5)).factor == 0.5
    assert GreedyConfig(patience=np.int64(3)).patience == 3
    assert GreedyConfig(eps=0, threshold=1, threshold_mode="abs").eps == 0
    assert GreedyConfig(max_lr=math.inf).max_lr == math.inf  # no upper bound
    assert GreedyConfig(max_lr_ratio=math.inf).max_lr_ratio == math.inf
    assert GreedyConfig(min_lr=[0.0, 1e-3], max_lr=[1.0, math.inf]).min_lr == (0.0, 1e-3)
    assert GreedyConfig(check_bounds=False).check_bounds is False


@pytest.mark.parametrize("warmup", [40, 41, 50, 100])
def test_a_warmup_as_long_as_the_budget_is_refused_as_one_into_the_cooldown_is(warmup):
    # accepted before: the cooldown never ran inside the budget, and after it the LR fell
    # straight from the ramp's end to the lower bound
    with pytest.raises(ValueError, match=rf"the warmup \({warmup} steps\) lasts the whole "
                                         r"budget, total_steps=40: the final cooldown \(from "
                                         r"step 32, anneal_fraction=0.2\) would never run"):
        GreedyConfig(total_steps=40, warmup=warmup)
    with pytest.raises(ValueError, match=r"the warmup \(35 steps\) runs into the final "
                                         "cooldown, which starts at step 32 of total_steps=40"):
        GreedyConfig(total_steps=40, warmup=35)
    GreedyConfig(total_steps=40, warmup=32)  # ends where the cooldown starts
    # no cooldown in the budget: nothing for the ramp to run into
    GreedyConfig(total_steps=40, warmup=warmup, anneal_fraction=0.0)
    GreedyConfig(warmup=warmup)


def test_a_framework_budget_the_warmup_outlasts_gets_none_and_a_warning(caplog):
    # a smoke run (max_steps=20) of a recipe with warmup_steps=100: no budget, no
    # cooldown, rather than a refused configuration
    with caplog.at_level(logging.WARNING, logger="greedylr"):
        assert budget_after_warmup(20, 100, 0.2, "constant") is None
    assert "the warmup (100 steps) runs into the final cooldown of this 20-step run" in (
        caplog.text)
    assert budget_after_warmup(20, 100, 0.0, "constant") == 20
    assert budget_after_warmup(100, 80, 0.2, "constant") == 100


def test_a_budget_too_short_for_one_cooldown_step_has_none():
    # documented (anneal_fraction): int(0.2 * 4) = 0 steps
    assert GreedyConfig(total_steps=4).anneal_steps == 0
    assert GreedyConfig(total_steps=4).anneal_start is None
    assert GreedyConfig(total_steps=5).anneal_steps == 1

"""The 0.2 knobs (final cooldown, noise threshold, pay-off, held-out values), 0.3's
base schedule, the blow-up guard and the spike guard, by hand, in all three
implementations: the float rule, the tensor rule and the optax port."""

from __future__ import annotations

import math
import random
import sys
from dataclasses import replace

import pytest
import torch

from greedylr import rule
from greedylr import tensor_rule as tr
from greedylr.rule import GreedyConfig
from parity_cases import decoded_events

# (kind, value): "loss" feeds update(), "eval" feeds observe_eval()
Script = list[tuple[str, float]]

ANNEAL = (
    GreedyConfig(factor=0.5, patience=0, smoothing="none", min_lr_ratio=0.1, max_lr_ratio=None,
                 total_steps=6, anneal_fraction=0.5, anneal_shape="linear"),
    [("loss", v) for v in (1.0, 0.5, 9.0, 9.0, 9.0, 9.0, 9.0)],
    # two increases; from step 3 (= 6 - 3) the LR goes linearly from 4.0 to the floor 0.1
    [2.0, 4.0, 4.0, 0.1 + 3.9 * (1 - 1 / 3), 0.1 + 3.9 * (1 / 3), 0.1, 0.1],
    {1: ("increase",), 2: ("increase",), 3: ("anneal",)},
)
NOISE = (
    GreedyConfig(factor=0.5, patience=0, smoothing="none", window=3, noise_threshold=1.0,
                 min_lr_ratio=None, max_lr_ratio=None),
    [("loss", v) for v in (1.0, 2.0, 1.5, 0.1)],
    # 1.0 beats inf (no noise measured yet); 2.0: error 1, variance 1, worse: decrease;
    # 1.5 beats 2.0 by 0.5 < sqrt(0.5 * 1 + 0.5 * 0.25) = 0.79: not better, decrease;
    # 0.1 beats 1.5 by 1.4 > sqrt(0.5 * 0.625 + 0.5 * 1.96) = 1.14: increase
    [0.2, 0.1, 0.05, 0.1],
    {1: ("increase",), 2: ("decrease",), 3: ("decrease",), 4: ("increase",)},
)
PAYOFF = (
    GreedyConfig(factor=0.5, patience=5, increase_patience=0, smoothing="none",
                 payoff_patience=2, min_lr_ratio=None, max_lr_ratio=None),
    [("loss", v) for v in (1.0, 0.9, 0.95, 1.2, 1.1, 1.0, 0.9, 0.8)],
    # the increase at step 2 (smoothed 0.9) is checked at step 4: 1.2 is worse, undone,
    # penalty 1, so the next increase needs 2 improving steps (steps 5 and 6); the one
    # at step 6 (1.0) pays off at step 8 (0.8): penalty back to 0, one step is enough
    [0.2, 0.4, 0.4, 0.2, 0.2, 0.4, 0.4, 0.8],
    {1: ("increase",), 2: ("increase",), 4: ("undo",), 6: ("increase",), 8: ("increase",)},
)
EVAL = (
    GreedyConfig(factor=0.5, patience=5, increase_patience=0, smoothing="none",
                 min_lr_ratio=0.1, max_lr_ratio=None, eval_patience=0),
    [("loss", 1.0), ("eval", 0.5), ("eval", 0.6), ("loss", 0.9), ("eval", 0.4), ("loss", 0.8)],
    # a worse held-out value multiplies the LR by 0.7 (the default eval_factor) and
    # blocks the increase of the next loss; a better one lifts the block
    [2.0, 2.0, 1.4, 1.4, 1.4, 2.8],
    {1: ("increase",), 3: ("eval_decrease",), 6: ("increase",)},
)
PACE = (
    GreedyConfig(factor=0.5, patience=5, increase_patience=0, smoothing="none",
                 min_lr_ratio=0.1, max_lr_ratio=None, eval_patience=0, eval_pace=0.5),
    [("loss", 1.0), ("eval", 0.5), ("loss", 0.5), ("eval", 0.45), ("loss", 0.45),
     ("eval", 0.4), ("loss", 0.44)],
    # the training loss fell by half (1.0 -> 0.5) between the held-out values, so 0.45
    # must beat 0.5 by 0.5 * 0.5 * 0.5 = 0.125: it lags, is handled as a worse value (the
    # LR times 0.7, increases blocked) and is the new best; then the training loss fell
    # by 10% (0.5 -> 0.45): 0.4 needs to beat 0.45 by 0.5 * 0.1 * 0.45 = 0.0225, it does
    [2.0, 2.0, 4.0, 2.8, 2.8, 2.8, 5.6],
    {1: ("increase",), 3: ("increase",), 4: ("eval_decrease",), 7: ("increase",)},
)


def _cuts(lr: float, *cuts: tuple[float, ...]) -> list[float]:
    """The LR after each of ``cuts``, each the factors it multiplies the LR by, in turn."""
    out = []
    for factors in cuts:
        for f in factors:
            lr *= f
        out.append(lr)
    return out


_COMPOUNDED = _cuts(2.0, (0.7,), (0.7,), (0.7, 0.7), (0.7, 0.7**3), (0.7, 0.7**7))
_AGAIN = _cuts(_COMPOUNDED[-1], (0.7,), (0.7, 0.7), (0.7, 0.7**3), (0.7, 0.7**7),
               (0.7, 0.7**15), (0.7, 0.7**15))
_HELD_OUT = (1.0, 1.02, 1.1, 1.2, 1.5, 1.04, 0.9, 1.0, 1.0, 1.3, 2.0, 3.0, 3.0)
COMPOUND = (
    GreedyConfig(factor=0.5, patience=50, increase_patience=0, smoothing="none",
                 min_lr_ratio=1e-30, max_lr_ratio=None, eval_patience=0, eval_pace=0.0,
                 eval_compound_margin=0.03),
    [("loss", 1.0), *(("eval", v) for v in _HELD_OUT)],
    # against the best 1.0: 1.02 is within the 3% margin, a plain cut (0.7); 1.1 is the
    # first clearly worse value, 0.7 still; each clearly worse one after it squares the
    # factor (0.49, 0.24 in all), 1.04 too (4%: 0.7**8); 0.9 is better and starts the
    # count again: 1.0 is 11% worse than it, 0.7, then 0.7**2, 0.7**4, 0.7**8, 0.7**16,
    # and 0.7**16 again (at most four squarings, as the blow-up guard's)
    [2.0, 2.0, *_COMPOUNDED, _COMPOUNDED[-1], *_AGAIN],
    {1: ("increase",), **{i: ("eval_decrease",) for i in (3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14)}},
)
# the same held-out values for a metric where higher is better (2 - v: 1.0, 0.98, 0.9, ...)
COMPOUND_MAX = (replace(COMPOUND[0], eval_mode="max"),
                [("loss", 1.0), *(("eval", 2.0 - v) for v in _HELD_OUT)], *COMPOUND[2:])
# 0.8's rule: every held-out cut is 0.7
COMPOUND_OFF = (replace(COMPOUND[0], eval_compound_margin=None), COMPOUND[1],
                [2.0, 2.0, *_cuts(2.0, *[(0.7,)] * 5), 2.0 * 0.7**5, *_cuts(2.0 * 0.7**5,
                                                                         *[(0.7,)] * 6)],
                COMPOUND[3])
# a plain cut (1.02: within the margin) inside a streak leaves the count: the next clearly
# worse value squares on
COMPOUND_MIX = (COMPOUND[0], [("loss", 1.0), *(("eval", v) for v in (1.0, 1.1, 1.2, 1.02, 1.5))],
                [2.0, 2.0, *_cuts(2.0, (0.7,), (0.7, 0.7), (0.7,), (0.7, 0.7**3))],
                {1: ("increase",), 3: ("eval_decrease",), 4: ("eval_decrease",),
                 5: ("eval_decrease",), 6: ("eval_decrease",)})
# so does a value that beats the best but lags the training loss (eval_pace): the training
# loss halves before 0.99, which needs to beat 1.0 by 0.5 * 0.5 * 1.0; it is cut by 0.7
# and is the new best, and 1.2, 21% above it, takes the second squaring
COMPOUND_PACE = (replace(COMPOUND[0], eval_pace=0.5),
                 [("loss", 1.0), ("eval", 1.0), ("eval", 1.1), ("loss", 0.5), ("eval", 0.99),
                  ("eval", 1.2)],
                 [2.0, 2.0, *_cuts(2.0, (0.7,)), 2.0 * 0.7, *_cuts(2.0 * 0.7, (0.7,), (0.7, 0.7))],
                 {1: ("increase",), 3: ("eval_decrease",), 5: ("eval_decrease",),
                  6: ("eval_decrease",)})
_C1, _C3 = 0.5 * (1 + math.cos(math.pi / 4)), 0.5 * (1 + math.cos(3 * math.pi / 4))
BASE = (
    GreedyConfig(factor=0.5, patience=0, smoothing="none", min_lr_ratio=None, max_lr_ratio=None,
                 total_steps=4, base_schedule="cosine", eval_patience=0, eval_factor=0.5),
    [("loss", 1.0), ("eval", 0.5), ("eval", 0.6), ("loss", 2.0), ("loss", 0.5), ("eval", 0.3),
     ("loss", 0.4), ("loss", 0.3)],
    # the rule's own LR moves as without a budget (0.2, held-out 0.1, 0.05, blocked, the
    # held-out value recovers, 0.1, 0.2); the one applied is it times cosine's factor
    # after the step's observations: 0.5 * (1 + cos(pi * step / 4)), 0 from step 4 on
    [0.2 * _C1, 0.2 * _C1, 0.1 * _C1, 0.05 * 0.5, 0.05 * _C3, 0.05 * _C3, 0.0, 0.0],
    {1: ("increase",), 3: ("eval_decrease",), 4: ("decrease",), 7: ("increase",),
     8: ("increase",)},
)
BLOWUP = (
    GreedyConfig(factor=0.5, patience=0, smoothing="none", blowup_ratio=2.0, min_lr_ratio=None,
                 max_lr_ratio=None),
    [("loss", v) for v in (1.0, 3.0, 1.5, 0.9, 1.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5)],
    # the first value 1.0 beats +inf: increase to 0.2; a blow-up starts above 2 * 1.0.
    # 3.0 blows up: decrease by 0.5. 1.5 beats that 3.0 (recent_best) but the blow-up
    # lasts until the loss is back below the first value 1.0: worse, decrease by 0.5**2.
    # 0.9 ends it (the cuts start again) and beats 1.5: increase to 0.05. 1.5 is no
    # blow-up now (below 2.0): a plain decrease by 0.5. Then a lasting blow-up: 0.5,
    # 0.5**2, 0.5**4, 0.5**8, 0.5**16 and 0.5**16 again (at most 4 squarings)
    [0.2, 0.1, 0.025, 0.05, 0.025, 0.025 * 2**-1, 0.025 * 2**-3, 0.025 * 2**-7,
     0.025 * 2**-15, 0.025 * 2**-31, 0.025 * 2**-47],
    {1: ("increase",), 2: ("decrease",), 3: ("decrease",), 4: ("increase",),
     **{i: ("decrease",) for i in range(5, 12)}},
)
BLOWUP_ANNEAL = (
    GreedyConfig(factor=0.5, patience=0, smoothing="none", blowup_ratio=2.0, min_lr_ratio=0.1,
                 max_lr_ratio=None, total_steps=6, anneal_fraction=0.5, anneal_shape="linear"),
    [("loss", v) for v in (1.0, 3.0, 1.5, 0.5, 0.5, 0.5, 0.5)],
    # ANNEAL's budget: an increase to 2.0, a blow-up (3.0 > 2 * 1.0): decrease to 1.0; the
    # final cooldown starts at step 3 still in the blow-up (1.5 is above the first value
    # 1.0), so it goes linearly from 1.0 to 0 instead of the floor 0.1, whatever the
    # losses after it
    [2.0, 1.0, 1.0, 1 - 1 / 3, 1 / 3, 0.0, 0.0],
    {1: ("increase",), 2: ("decrease",), 3: ("anneal",)},
)
BLOWUP_LINE = (
    GreedyConfig(factor=0.5, patience=0, smoothing="none", blowup_ratio=1.2, min_lr_ratio=None,
                 max_lr_ratio=None),
    [("loss", 1.5), ("loss", 1.8)],
    # 1.8 is above 1.2 * 1.5 == 1.7999999999999998 in double precision (not above it with
    # the ratio rounded to float32, 1.2000000477): a blow-up, the decrease says so
    [0.2, 0.1],
    {1: ("increase",), 2: ("decrease",)},
)
BLOWUP_RAW = (
    GreedyConfig(factor=0.5, patience=0, smoothing="window", window=2, blowup_ratio=2.0,
                 blowup_raw_check=True, min_lr_ratio=None, max_lr_ratio=None),
    [("loss", v) for v in (1.0, 9.0, 0.4, 0.4, 4.0, 3.0, 0.8, 2.0, 0.5)],
    # the mean of the last two; the first value 1.0 beats +inf: increase to 0.2. 9.0:
    # mean 5.0 > 2 * 1.0, a blow-up, the loss itself above half the first value:
    # decrease by 0.5. 0.4: mean 4.7, still in the blow-up (above 1.0 after a decrease),
    # but the loss is at or below 0.5: neither better nor worse, no change (without the
    # check a decrease by 0.5**2). 0.4: mean 0.4 ends it and beats 5.0 (recent_best):
    # increase. 4.0: mean 2.2 > 2.0, a new blow-up: decrease by 0.5; 3.0 (mean 3.5) by
    # 0.5**2; 0.8 (mean 1.9) is above 0.5 itself: by 0.5**4; 2.0 (mean 1.4) by 0.5**8;
    # 0.5 (mean 1.25) at half the first value: neutral
    [0.2, 0.1, 0.1, 0.2, 0.1, 0.025, 0.025 * 2**-4, 0.025 * 2**-12, 0.025 * 2**-12],
    {1: ("increase",), 2: ("decrease",), 4: ("increase",), 5: ("decrease",), 6: ("decrease",),
     7: ("decrease",), 8: ("decrease",)},
)
FLOOR_ANNEAL = (
    GreedyConfig(factor=0.5, patience=0, smoothing="none", min_lr_ratio=0.5, max_lr_ratio=None,
                 total_steps=8, anneal_fraction=0.5, anneal_shape="linear"),
    [("loss", v) for v in (1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0)],
    # an increase to 2.0, two decreases to the lower bound 0.5; the final cooldown starts
    # at step 4 (8 - 4) with the LR at that bound, so it goes linearly from 0.5 to 0
    # (floor_anneals_to_zero; 0.6 stayed at 0.5 to the end)
    [2.0, 1.0, 0.5, 0.5, 0.375, 0.25, 0.125, 0.0, 0.0],
    {1: ("increase",), 2: ("decrease",), 3: ("decrease",), 4: ("anneal",)},
)
ZERO_ANNEAL = (
    replace(FLOOR_ANNEAL[0], anneal_to_zero=True),
    [("loss", v) for v in (1.0, 2.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5)],
    # FLOOR_ANNEAL's budget: an increase to 2.0, a decrease to 1.0, an increase to 2.0;
    # the final cooldown starts at step 4 with the LR at 2.0, four times its bound 0.5,
    # and goes linearly to 0 all the same (anneal_to_zero; 0.10 ends at 0.5:
    # 2.0, 1.625, 1.25, 0.875, 0.5)
    [2.0, 1.0, 2.0, 2.0, 1.5, 1.0, 0.5, 0.0, 0.0],
    {1: ("increase",), 2: ("decrease",), 3: ("increase",), 4: ("anneal",)},
)
_STALLED_SCRIPT = (
    [("loss", 1.0), ("loss", 2.0), ("loss", 0.5), ("eval", 1.0), ("eval", 2.0)]
    + [("loss", 0.5)] * 6)
STALLED_ANNEAL = (
    replace(FLOOR_ANNEAL[0], stalled_anneals_to_zero=True, eval_patience=5, eval_pace=0.0),
    _STALLED_SCRIPT,
    # ZERO_ANNEAL's losses, with two held-out values before the cooldown: 1.0, then 2.0,
    # worse, which blocks increases (eval_patience=5: no cut). The cooldown starts at
    # step 4 with the LR at 2.0 and increases blocked, so it goes linearly to 0
    # (stalled_anneals_to_zero; 0.10 ends at the bound 0.5)
    [2.0, 1.0, 2.0, 2.0, 2.0, 2.0, 1.5, 1.0, 0.5, 0.0, 0.0],
    {1: ("increase",), 2: ("decrease",), 3: ("increase",), 6: ("anneal",)},
)
STALLED_CLEAR = (
    STALLED_ANNEAL[0],
    [*_STALLED_SCRIPT[:4], ("eval", 0.9), *_STALLED_SCRIPT[5:]],
    # the same with a better second held-out value (0.9): nothing blocks increases when
    # the cooldown starts, so it ends at the bound 0.5 as 0.10's does
    [2.0, 1.0, 2.0, 2.0, 2.0, 2.0, 1.625, 1.25, 0.875, 0.5, 0.5],
    {1: ("increase",), 2: ("decrease",), 3: ("increase",), 6: ("anneal",)},
)
_SPIKES = (1.0, 20.0, 0.5, 20.0, 30.0, 40.0, 50.0, 60.0, 0.9)
SPIKE = (
    GreedyConfig(factor=0.5, patience=1, smoothing="none", blowup_ratio=None, spike_ratio=10.0,
                 min_lr_ratio=0.1, max_lr_ratio=None),
    [("loss", v) for v in _SPIKES],
    # the first value 1.0 is the yardstick: a spike step is above 10. 20 is one, alone:
    # nothing (0.5 after it is none). 20 and 30 are two in a row: at 30 the patience's
    # own decrease (two worse values > patience 1: 0.5), then the spike cut (0.5 more),
    # two decreases, to 0.25, and the streaks restart. 40 and 50 cut again at once, to
    # 0.125 and to the floor 0.1; 60 finds every LR at the floor (no event); 0.9 ends it
    [1.0, 1.0, 1.0, 1.0, 0.25, 0.125, 0.1, 0.1, 0.1],
    {5: ("decrease", "decrease"), 6: ("decrease",), 7: ("decrease",)},
)
# the same for a value where higher is better (1 / v): a spike step is below 1/10 of 1.0
SPIKE_MAX = (replace(SPIKE[0], mode="max"), [("loss", 1.0 / v) for v in _SPIKES], *SPIKE[2:])
SPIKE_INCREASE = (
    GreedyConfig(factor=0.5, patience=0, smoothing="none", compare="previous", spike_ratio=1.5,
                 blowup_ratio=None, min_lr_ratio=None, max_lr_ratio=None),
    [("loss", v) for v in (1.0, 10.0, 5.0)],
    # 10 and 5 are spike steps (above 1.5 * 1.0): 5 beats 10, an increase to 0.2, and on
    # the second spike step in a row the cut to 0.1: two events, each with its own LRs
    [0.2, 0.1, 0.1],
    {1: ("increase",), 2: ("decrease",), 3: ("increase", "decrease")},
)
SPIKE_RESET = (
    GreedyConfig(factor=0.5, patience=0, smoothing="none", spike_ratio=1.5, blowup_ratio=None,
                 min_lr_ratio=0.5, max_lr_ratio=None, reset_patience=1),
    [("loss", v) for v in (1.0, 2.0, 3.0, 4.0)],
    # an increase to 2.0, a decrease to 1.0 (2.0 is a spike step, alone); at 3.0 the
    # decrease to the floor 0.5 resets to the base 1.0, then the spike cut takes 0.5; at
    # 4.0 (the reference reset: it beats +inf) an increase to 1.0 and the cut to 0.5
    [2.0, 1.0, 0.5, 0.5],
    {1: ("increase",), 2: ("decrease",), 3: ("decrease", "reset", "decrease"),
     4: ("increase", "decrease")},
)
SPIKE_PHASES = (
    GreedyConfig(factor=0.5, patience=5, smoothing="none", blowup_ratio=None, spike_ratio=10.0,
                 min_lr_ratio=0.1, max_lr_ratio=None, warmup=2, total_steps=8,
                 anneal_fraction=0.25, anneal_shape="linear"),
    [("loss", v) for v in (1.0, 20.0, 30.0, math.nan, 0.5, 40.0, 50.0, 60.0, 70.0)],
    # the ramp (0.5, 1.0) counts the spike at step 2 but cuts nothing; 30 at step 3 is
    # the second in a row: 0.5; a non-finite value is a spike step too: 0.25; the final
    # cooldown (from step 6, linearly to the floor 0.1) counts 40, 50, 60 but cuts nothing
    [0.5, 1.0, 0.5, 0.25, 0.25, 0.25, 0.175, 0.1, 0.1],
    {2: ("warmup_end",), 3: ("decrease",), 4: ("nonfinite", "decrease"), 6: ("anneal",)},
)
_RAMP_SCRIPT = [("loss", 1.0), ("eval", 0.5), ("loss", 1.0), ("eval", 0.45), ("loss", 1.0),
                ("eval", 0.6), ("loss", 1.0), ("eval", 0.55), ("loss", 1.0), ("eval", 0.4),
                ("loss", 0.9)]
EVAL_RAMP = (
    GreedyConfig(factor=0.5, patience=5, increase_patience=0, smoothing="none",
                 min_lr_ratio=0.1, max_lr_ratio=None, warmup=4, eval_patience=0, eval_pace=0.0),
    _RAMP_SCRIPT,
    # the ramp sets the LR (0.25, 0.5, 0.75, 1.0) until its last update (step 4): held-out
    # values given before it only record the best, 0.5 then 0.45; 0.6, worse, after step 3
    # counts for nothing (a cut would be undone by step 4). 0.55, right after step 4, is
    # the first to count: worse than 0.45, a cut to 0.7 that stays, and increases blocked
    # (step 5 beats +inf) until 0.4 is better; then 0.9 beats 1.0: an increase to 1.4
    [0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1.0, 0.7, 0.7, 0.7, 1.4],
    {7: ("warmup_end",), 8: ("eval_decrease",), 11: ("increase",)},
)
# with eval_patience=1, 0.6 (in the ramp) is not the first of two worse values in a row:
# 0.55 only blocks increases
EVAL_RAMP_PATIENCE = (
    replace(EVAL_RAMP[0], eval_patience=1), _RAMP_SCRIPT,
    [0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1.0, 1.0, 1.0, 1.0, 2.0],
    {7: ("warmup_end",), 11: ("increase",)},
)
EVAL_RAMP_PACE = (
    replace(EVAL_RAMP[0], warmup=3, eval_pace=0.5),
    [("loss", 2.0), ("eval", 0.5), ("loss", 1.0), ("eval", 0.45), ("loss", 0.5),
     ("eval", 0.44)],
    # in the ramp (1/3, 2/3, 1.0) 0.45 beats 0.5 by less than 0.5 * 0.5 * 0.5 (the training
    # loss halved): it is the best, and nothing else; the training loss halves again
    # before 0.44, the first value after the ramp, which lags 0.45 (needs 0.1125): a cut
    [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1.0, 0.7],
    {5: ("warmup_end",), 6: ("eval_decrease",)},
)
NONFINITE_RAMP = (
    GreedyConfig(factor=0.5, patience=5, smoothing="none", min_lr_ratio=0.1,
                 max_lr_ratio=None, warmup=2, on_nonfinite="decrease"),
    [("loss", math.nan), ("loss", math.nan), ("loss", math.nan)],
    # on_nonfinite="decrease" leaves the ramp alone (a non-finite last step of it ends it
    # without the event); the first non-finite loss after it halves the LR
    [0.5, 1.0, 0.5],
    {1: ("nonfinite",), 2: ("nonfinite",), 3: ("nonfinite", "decrease")},
)
_NEGATIVE = (-10.0, -9.5, -11.5, -12.0, 0.5, 0.4, 0.38)
NEGATIVE_REL = (
    GreedyConfig(factor=0.5, patience=0, smoothing="none", threshold=0.1, threshold_mode="rel",
                 min_lr_ratio=None, max_lr_ratio=None, blowup_ratio=None),
    [("loss", v) for v in _NEGATIVE],
    # a negative loss (a Gaussian NLL): better means below the reference by 10% of its
    # size, ref - 0.1 * |ref|. -10 beats +inf: increase. -9.5 is worse than -10: decrease
    # (ref * 0.9 = -9 would have taken it as better). -11.5 beats -9.5 - 0.95: increase;
    # -12 misses -11.5 - 1.15: decrease; 0.5 is worse than -12: decrease; 0.4 beats
    # 0.5 - 0.05: increase; 0.38 misses 0.4 - 0.04: decrease
    [0.2, 0.1, 0.2, 0.1, 0.05, 0.1, 0.05],
    {1: ("increase",), 2: ("decrease",), 3: ("increase",), 4: ("decrease",), 5: ("decrease",),
     6: ("increase",), 7: ("decrease",)},
)
# the mirror for a value where higher is better: better means above ref + 0.1 * |ref|
# (at the last step -0.38 misses -0.4 + 0.04; ref * 1.1 = -0.44 would have taken it)
NEGATIVE_REL_MAX = (replace(NEGATIVE_REL[0], mode="max"), [("loss", -v) for v in _NEGATIVE],
                    *NEGATIVE_REL[2:])
# threshold_mode="rel_product", torch's and transformers' rel: the product bar
# ref * (1 - 0.1) whatever the sign. -10 beats +inf: increase. -9.5 beats -10 * 0.9 = -9
# (worse than -10, better under the product): increase; -11.5 beats -8.55 and -12 beats
# -10.35: increases; 0.5 misses -10.8: decrease; 0.4 beats 0.45: increase; 0.38 misses
# 0.36: decrease
NEGATIVE_PRODUCT = (
    replace(NEGATIVE_REL[0], threshold_mode="rel_product"),
    [("loss", v) for v in _NEGATIVE],
    [0.2, 0.4, 0.8, 1.6, 0.8, 1.6, 0.8],
    {1: ("increase",), 2: ("increase",), 3: ("increase",), 4: ("increase",),
     5: ("decrease",), 6: ("increase",), 7: ("decrease",)},
)
# in max mode the bar is ref * 1.1: -9.5 beats -11: increase; -11.5 misses -10.45:
# decrease; -12 beats -11.5 * 1.1 = -12.65 (worse than -11.5, better under the product):
# increase; 0.5 beats -13.2: increase; 0.4 misses 0.55, 0.38 misses 0.44: decreases
NEGATIVE_PRODUCT_MAX = (
    replace(NEGATIVE_PRODUCT[0], mode="max"),
    [("loss", v) for v in _NEGATIVE],
    [0.2, 0.4, 0.2, 0.4, 0.8, 0.4, 0.2],
    {1: ("increase",), 2: ("increase",), 3: ("decrease",), 4: ("increase",),
     5: ("increase",), 6: ("decrease",), 7: ("decrease",)},
)
NOISE_OVERFLOW = (
    GreedyConfig(factor=0.5, patience=0, smoothing="none", window=3, noise_threshold=1.0,
                 min_lr_ratio=None, max_lr_ratio=None, blowup_ratio=None),
    [("loss", v) for v in (1.0, 1e200, 1.0)],
    # 1.0 beats +inf; 1e200 is worse (its error squares to inf: the variance stops at the
    # largest float, 1.8e308); 1.0 beats 1e200 by far more than the margin sqrt(1.8e308)
    # = 1.3e154: an increase (an inf variance blocked every improvement from then on)
    [0.2, 0.1, 0.2],
    {1: ("increase",), 2: ("decrease",), 3: ("increase",)},
)
CASES = {"anneal": ANNEAL, "noise": NOISE, "payoff": PAYOFF, "eval": EVAL, "pace": PACE,
         "base": BASE, "compound": COMPOUND, "compound_max": COMPOUND_MAX,
         "compound_off": COMPOUND_OFF, "compound_mix": COMPOUND_MIX,
         "compound_pace": COMPOUND_PACE,
         "blowup": BLOWUP, "blowup_anneal": BLOWUP_ANNEAL, "blowup_line": BLOWUP_LINE,
         "blowup_raw": BLOWUP_RAW, "floor_anneal": FLOOR_ANNEAL,
         "zero_anneal": ZERO_ANNEAL, "stalled_anneal": STALLED_ANNEAL,
         "stalled_clear": STALLED_CLEAR, "spike": SPIKE,
         "spike_max": SPIKE_MAX, "spike_increase": SPIKE_INCREASE,
         "spike_reset": SPIKE_RESET, "spike_phases": SPIKE_PHASES, "eval_ramp": EVAL_RAMP,
         "eval_ramp_patience": EVAL_RAMP_PATIENCE, "eval_ramp_pace": EVAL_RAMP_PACE,
         "nonfinite_ramp": NONFINITE_RAMP, "negative_rel": NEGATIVE_REL,
         "negative_rel_max": NEGATIVE_REL_MAX, "negative_product": NEGATIVE_PRODUCT,
         "negative_product_max": NEGATIVE_PRODUCT_MAX, "noise_overflow": NOISE_OVERFLOW}


def _drive(call, script: Script) -> tuple[list[float], dict]:
    lrs, events = [], {}
    for i, (kind, value) in enumerate(script, 1):
        decision = call(kind, value)
        lrs.append(decision.lrs[0])
        if decision.events:
            events[i] = tuple(e.kind for e in decision.events)
    return lrs, events


def _base(config: GreedyConfig) -> float:
    return 0.1 if config.min_lr_ratio is None else 1.0


@pytest.mark.parametrize("name", list(CASES))
def test_hand_computed_float_rule(name: str) -> None:
    config, script, lrs, events = CASES[name]
    state = rule.init(config, [_base(config)])
    got = _drive(
        lambda kind, v: (rule.update if kind == "loss" else rule.observe_eval)(config, state, v),
        script,
    )
    assert got == (pytest.approx(lrs, rel=1e-15), events)


@pytest.mark.parametrize("name", list(CASES))
def test_hand_computed_tensor_rule(name: str) -> None:
    config, script, lrs, events = CASES[name]
    float_state = rule.init(config, [_base(config)])
    tstate = tr.init(config, [_base(config)])
    got_lrs, got_events = [], {}
    for i, (kind, value) in enumerate(script, 1):
        fn = tr.update if kind == "loss" else tr.observe_eval
        tstate, d = fn(config, tstate, value)
        expected = (rule.update if kind == "loss" else rule.observe_eval)(
            config, float_state, value)
        got_lrs.append(d.lrs.item())
        decoded = decoded_events(config, tstate, d, value)
        # the same events as the float rule, reasons included
        assert [e.to_dict() for e in decoded] == [e.to_dict() for e in expected.events]
        if decoded:
            got_events[i] = tuple(e.kind for e in decoded)
    assert got_lrs == pytest.approx(lrs, rel=1e-15)
    assert got_events == events
    assert tr.to_rule_state(tstate) == float_state


@pytest.mark.parametrize("name", list(CASES))
def test_hand_computed_optax(name: str) -> None:
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    from greedylr.integrations import optax as gopt

    config, script, lrs, events = CASES[name]
    with jax.enable_x64(True):
        static, knobs = gopt._resolve(config, _base(config))
        state = gopt._init(static, knobs, jnp.float64)
        got_lrs, got_events = [], {}
        for i, (kind, value) in enumerate(script, 1):
            x = jnp.asarray(value, jnp.float64)
            if kind == "loss":
                state = gopt._observe(static, knobs, state, x)
            else:
                state = gopt._observe_eval(static, knobs, state, x)
            got_lrs.append(float(state.scale) * _base(config))  # the LR applied
            kinds = gopt.event_kinds(int(state.events))
            if kinds:
                got_events[i] = kinds
    assert got_lrs == pytest.approx(lrs, rel=1e-12)
    assert got_events == events


def test_the_noise_variance_stops_at_the_largest_float() -> None:
    config, script = NOISE_OVERFLOW[:2]
    state = rule.init(config, [0.1])
    for _, value in script:
        rule.update(config, state, value)
    assert state.noise_var == sys.float_info.max


# The held-out state after each item of EVAL_RAMP and EVAL_RAMP_PATIENCE: (the best,
# worse values in a row, increases blocked). None of the ramp's values counts as worse
# (0.6 leaves 0, False); 0.55, right after the ramp, does: with eval_patience=0 a cut
# (the count back to 0), with 1 the first of two
_RAMP_HELD_OUT = {
    "eval_ramp": [(None, 0, False), *[(0.5, 0, False)] * 2, *[(0.45, 0, False)] * 4,
                  *[(0.45, 0, True)] * 2, *[(0.4, 0, False)] * 2],
    "eval_ramp_patience": [(None, 0, False), *[(0.5, 0, False)] * 2, *[(0.45, 0, False)] * 4,
                           *[(0.45, 1, True)] * 2, *[(0.4, 0, False)] * 2],
}


def _held_out(implementation: str, config: GreedyConfig, script: Script) -> list[tuple]:
    """``(eval_best, eval_bad, eval_block)`` after each item of ``script``."""
    out: list[tuple] = []
    if implementation == "float":
        state = rule.init(config, [_base(config)])
        for kind, value in script:
            (rule.update if kind == "loss" else rule.observe_eval)(config, state, value)
            out.append((state.eval_best, state.eval_bad, state.eval_block))
    elif implementation == "tensor":
        tstate = tr.init(config, [_base(config)])
        for kind, value in script:
            tstate, _ = (tr.update if kind == "loss" else tr.observe_eval)(config, tstate, value)
            state = tr.to_rule_state(tstate)
            out.append((state.eval_best, state.eval_bad, state.eval_block))
    else:
        jax = pytest.importorskip("jax")
        import jax.numpy as jnp

        from greedylr.integrations import optax as gopt

        with jax.enable_x64(True):
            static, knobs = gopt._resolve(config, _base(config))
            ostate = gopt._init(static, knobs, jnp.float64)
            for kind, value in script:
                step = gopt._observe if kind == "loss" else gopt._observe_eval
                ostate = step(static, knobs, ostate, jnp.asarray(value, jnp.float64))
                best = float(ostate.eval_best)
                out.append((None if math.isnan(best) else best, int(ostate.eval_bad),
                            bool(ostate.eval_block)))
    return out


@pytest.mark.parametrize("implementation", ["float", "tensor", "optax"])
@pytest.mark.parametrize("name", list(_RAMP_HELD_OUT))
def test_held_out_values_during_the_warmup_ramp_only_record_the_best(
        name: str, implementation: str) -> None:
    """The ramp sets the LR until its last update, so a held-out value given before that
    update (``step < warmup``) never counts as worse: no block, no count, no cut left to
    be undone; one given right after it (``step == warmup``) counts as usual."""
    config, script = CASES[name][:2]
    assert _held_out(implementation, config, script) == _RAMP_HELD_OUT[name]


# The observations where the blow-up guard acted in BLOWUP and BLOWUP_ANNEAL: the
# decreases in a blow-up, and the final cooldown that starts in one.
BLOWN = {"blowup": {2, 3, 6, 7, 8, 9, 10, 11}, "blowup_anneal": {2, 3}, "blowup_line": {2},
         "blowup_raw": {2, 5, 6, 7, 8}}


@pytest.mark.parametrize("name", list(BLOWN))
def test_the_blowup_guard_says_where_it_acted(name: str) -> None:
    """The float rule's reasons, the tensor rule's BLOWUP bit and the optax port's."""
    config, script, _, _ = CASES[name]
    state = rule.init(config, [_base(config)])
    tstate = tr.init(config, [_base(config)])
    in_reasons, in_codes = set(), set()
    for i, (_, value) in enumerate(script, 1):
        events = rule.update(config, state, value).events
        if any("a blow-up (" in e.reason for e in events):
            in_reasons.add(i)
        tstate, d = tr.update(config, tstate, value)
        if int(d.code) & tr.BLOWUP:
            in_codes.add(i)
    assert in_reasons == in_codes == BLOWN[name]
    assert state.anneal_to_zero is (name == "blowup_anneal")
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    from greedylr.integrations import optax as gopt

    with jax.enable_x64(True):
        static, knobs = gopt._resolve(config, _base(config))
        ostate = gopt._init(static, knobs, jnp.float64)
        flagged = set()
        for i, (_, value) in enumerate(script, 1):
            ostate = gopt._observe(static, knobs, ostate, jnp.asarray(value, jnp.float64))
            if int(ostate.events) & gopt.BLOWUP:
                flagged.add(i)
    assert flagged == BLOWN[name]


# Where the scripts of the blow-up guard's configurations surge (every loss times
# BLOWUP_SURGE, or divided by it with mode="max"): a transient blow-up, then one that
# the final cooldown (from step 200 of 250) starts in.
SURGES = ((60, 110), (170, 300))
BLOWUP_SURGE = 4.0


def _random_script(rng: random.Random, n: int = 300, surge: float = 1.0,
                   settle: float = 1.0) -> Script:
    """A noisy descent from 2.0, NaN and inf included, a held-out value every 25 losses;
    times ``surge`` within :data:`SURGES`, times ``settle`` between and after them."""
    out: Script = []
    x = 2.0
    for t in range(n):
        x = max(x + rng.gauss(-0.004, 0.08), 0.01)
        y = (x * surge if any(a <= t < b for a, b in SURGES)
             else x * settle if t >= SURGES[0][1] else x)
        out.append(("loss", rng.choice([math.nan, math.inf]) if rng.random() < 0.01 else y))
        if t % 25 == 24:
            out.append(("eval", y + rng.gauss(0.0, 0.05)))
    return out


@pytest.mark.parametrize(
    "kwargs",
    [
        {"total_steps": 250, "anneal_fraction": 0.2},
        {"total_steps": 250, "anneal_fraction": 0.15, "anneal_shape": "cosine", "warmup": 10},
        {"noise_threshold": 0.5, "patience": 3, "eval_patience": 0},
        {"noise_threshold": 2.0, "smoothing": "window", "window": 7, "mode": "min"},
        {"payoff_patience": 5, "patience": 2, "increase_patience": 1, "cooldown": 2},
        {"payoff_patience": 3, "increase_patience": 0, "reset_patience": 1, "min_lr_ratio": 0.5,
         "on_nonfinite": "decrease", "smoothing": "none"},
        {"eval_patience": 1, "eval_factor": 0.7, "total_steps": 280, "anneal_fraction": 0.1,
         "noise_threshold": 1.0, "payoff_patience": 4, "patience": 4},
        # the same run, whose final cooldown starts at the lower bound: to 0 and (0.6) not
        *({"eval_patience": 1, "eval_factor": 0.7, "total_steps": 280, "anneal_fraction": 0.1,
           "noise_threshold": 1.0, "payoff_patience": 4, "patience": 4,
           "floor_anneals_to_zero": floor} for floor in (True, False)),
        # a cooldown that starts above the lower bound, to 0 all the same
        {"total_steps": 250, "anneal_fraction": 0.2, "anneal_to_zero": True},
        {"blowup_ratio": 1.5, "total_steps": 250, "anneal_fraction": 0.2, "patience": 3},
        {"blowup_ratio": 2.0, "mode": "max", "smoothing": "window", "window": 5,
         "total_steps": 250, "anneal_fraction": 0.2, "anneal_shape": "cosine", "patience": 2,
         "compare": "previous", "eval_patience": 1},
        {"blowup_ratio": 3.0, "smoothing": "none", "patience": 1, "increase_patience": 0,
         "reset_patience": 1, "min_lr_ratio": 0.5, "on_nonfinite": "decrease", "cooldown": 1,
         "payoff_patience": 2, "noise_threshold": 0.5},
        {"blowup_ratio": 1.5, "blowup_raw_check": True, "total_steps": 250,
         "anneal_fraction": 0.2, "patience": 3},
        {"blowup_ratio": 2.0, "blowup_raw_check": True, "mode": "max", "patience": 2,
         "compare": "previous"},
    ],
)
def test_tensor_rule_matches_bit_for_bit_with_every_knob(kwargs: dict) -> None:
    """Long noisy runs with held-out values interleaved: LRs, events and state all equal.
    Where a case sets the blow-up guard's ratio the script surges: decreases square the
    factor (the cuts reach 2 at least), and with a budget the final cooldown starts in a
    blow-up. The others run the default guard (100x), which such a run never trips."""
    config = GreedyConfig(**kwargs)
    guarded = "blowup_ratio" in kwargs
    surge = 1.0 if not guarded else BLOWUP_SURGE if config.mode == "min" else 1 / BLOWUP_SURGE
    # with blowup_raw_check the loss settles well below its first value after the first
    # surge (a spike the model got over) while the smoothed loss still carries it
    raw_check = kwargs.get("blowup_raw_check", False)  # the cases of it set it
    settle = (1.0 if not raw_check else 0.4 if config.mode == "min" else 2.5)
    script = _random_script(random.Random(11), surge=surge, settle=settle)
    state = rule.init(config, [0.1, 0.01])
    tstate = tr.init(config, [0.1, 0.01])
    squared, trajectory = False, []
    for kind, value in script:
        f = (rule.update if kind == "loss" else rule.observe_eval)(config, state, value)
        trajectory.append((f.lrs, [e.kind for e in f.events]))
        tstate, d = (tr.update if kind == "loss" else tr.observe_eval)(config, tstate, value)
        assert tuple(d.lrs.tolist()) == f.lrs
        decoded = decoded_events(config, tstate, d, value)
        assert repr([e.to_dict() for e in decoded]) == repr([e.to_dict() for e in f.events])
        squared |= bool(int(d.code) & tr.BLOWUP) and state.blowup_cuts >= 2
    assert tr.to_rule_state(tstate) == state
    assert squared is guarded
    # the cooldown ends at 0 where it started in the surge, or at the lower bound
    at_floor = config.floor_anneals_to_zero and all(
        lr <= lo for lr, lo in zip(state.anneal_from, state.min_lrs))
    assert state.anneal_to_zero is (config.anneal_start is not None
                                    and (guarded or at_floor or config.anneal_to_zero))
    if kwargs.get("floor_anneals_to_zero") is not None:  # the twins: at the floor, both ways
        assert all(lr <= lo for lr, lo in zip(state.anneal_from, state.min_lrs))
    if raw_check:  # the check acted: the run is not the one without it
        plain = replace(config, blowup_raw_check=False)
        other = rule.init(plain, [0.1, 0.01])
        decisions = [(rule.update if k == "loss" else rule.observe_eval)(plain, other, v)
                     for k, v in script]
        assert [(d.lrs, [e.kind for e in d.events]) for d in decisions] != trajectory


def test_a_held_out_cut_clipped_at_the_bound_does_not_count_towards_compounding() -> None:
    """A cut that finds the LR at its lower bound moves nothing and leaves the count of
    compounding cuts as it is, in all three implementations."""
    config = replace(COMPOUND[0], min_lr_ratio=0.5)
    script = [("loss", 1.0), *(("eval", v) for v in (1.0, 1.1, 1.2, 1.3, 1.4))]
    # 2.0 -> 1.4 (the first clearly worse value), -> 1.4 * 0.7 * 0.7 (the second squares);
    # the third stops at the bound 0.5 (0.686 * 0.7 = 0.48) and counts, since it moved the
    # LR; the fourth finds the LR at the bound: clipped, and the count stays 3
    state, tstate = rule.init(config, [1.0]), tr.init(config, [1.0])
    seen = []
    for kind, value in script:
        (rule.update if kind == "loss" else rule.observe_eval)(config, state, value)
        tstate, d = (tr.update if kind == "loss" else tr.observe_eval)(config, tstate, value)
        seen.append((state.lrs[0], state.eval_worse_cuts, int(tstate.eval_worse_cuts)))
    assert seen == [(2.0, 0, 0), (2.0, 0, 0), (1.4, 1, 1), (1.4 * 0.7 * 0.7, 2, 2),
                    (0.5, 3, 3), (0.5, 3, 3)]
    assert int(d.code) & tr.CLIPPED
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return
    from greedylr.integrations import optax as gopt

    with jax.enable_x64(True):
        static, knobs = gopt._resolve(config, 1.0)
        ostate = gopt._init(static, knobs, jnp.float64)
        for kind, value in script:
            step = gopt._observe if kind == "loss" else gopt._observe_eval
            ostate = step(static, knobs, ostate, jnp.asarray(value, jnp.float64))
        assert float(ostate.lr) == 0.5 and int(ostate.eval_worse_cuts) == 3


def test_anneal_to_zero_says_so_in_the_cooldowns_reason() -> None:
    """ZERO_ANNEAL's cooldown names its end, 0 and not the bound, and why."""
    config, script, _, _ = ZERO_ANNEAL
    state = rule.init(config, [1.0])
    reasons = [e.reason for _, v in script for e in rule.update(config, state, v).events
               if e.kind == "anneal"]
    assert len(reasons) == 1
    assert reasons[0].endswith("from lr 2 towards 0, not the lower bound 0.5 (anneal_to_zero)")
    assert state.anneal_to_zero


def test_stalled_anneals_to_zero_says_so_in_the_cooldowns_reason() -> None:
    """STALLED_ANNEAL's cooldown names its end, 0 and not the bound, and why; the tensor
    rule and the optax port set the STALLED bit there and nowhere else, and neither
    does anyone in STALLED_CLEAR."""
    for case, stalled in ((STALLED_ANNEAL, True), (STALLED_CLEAR, False)):
        config, script, _, _ = case
        state, tstate = rule.init(config, [1.0]), tr.init(config, [1.0])
        reasons, bits = [], []
        for i, (kind, value) in enumerate(script, 1):
            events = (rule.update if kind == "loss" else rule.observe_eval)(
                config, state, value).events
            reasons += [e.reason for e in events if e.kind == "anneal"]
            tstate, d = (tr.update if kind == "loss" else tr.observe_eval)(config, tstate, value)
            if int(d.code) & tr.STALLED:
                bits.append(i)
        assert len(reasons) == 1 and state.anneal_to_zero is stalled
        assert bits == ([6] if stalled else [])
        assert reasons[0].endswith(
            "from lr 2 towards 0, not the lower bound 0.5: the held-out rule was blocking "
            "increases (the last held-out value was worse than the best, or lagged the "
            "training loss; stalled_anneals_to_zero)" if stalled
            else "from lr 2 towards the lower bound 0.5")
        jax = pytest.importorskip("jax")
        import jax.numpy as jnp

        from greedylr.integrations import optax as gopt

        with jax.enable_x64(True):
            static, knobs = gopt._resolve(config, 1.0)
            ostate = gopt._init(static, knobs, jnp.float64)
            obits = []
            for i, (kind, value) in enumerate(script, 1):
                step = gopt._observe if kind == "loss" else gopt._observe_eval
                ostate = step(static, knobs, ostate, jnp.asarray(value, jnp.float64))
                if int(ostate.events) & gopt.STALLED:
                    obits.append(i)
        assert obits == bits


def test_a_cooldown_ends_at_0_only_with_every_group_at_its_bound() -> None:
    """FLOOR_ANNEAL's run with two groups whose bounds differ: the first reaches its
    bound, the second does not, so the cooldown ends at the bounds (float and tensor rule,
    the same events); with both at their bounds it ends at 0 and its reason says why."""
    config = replace(FLOOR_ANNEAL[0], min_lr_ratio=None)
    losses = [v for _, v in FLOOR_ANNEAL[1]]
    for bounds, ends in (([0.5, 0.1], [0.5, 0.1]), ([0.5, 0.5], [0.0, 0.0])):
        c = replace(config, min_lr=bounds)
        state, tstate = rule.init(c, [1.0, 1.0]), tr.init(c, [1.0, 1.0])
        reasons = []
        for v in losses:
            d = rule.update(c, state, v)
            tstate, td = tr.update(c, tstate, v)
            assert tuple(td.lrs.tolist()) == d.lrs
            decoded = decoded_events(c, tstate, td, v)
            assert [e.to_dict() for e in decoded] == [e.to_dict() for e in d.events]
            reasons += [e.reason for e in d.events if e.kind == "anneal"]
        assert list(d.lrs) == ends
        assert state.anneal_to_zero is (ends == [0.0, 0.0])
        zero = "towards 0, not the lower bound 0.5, 0.5: every group stands at it"
        assert (zero in reasons[0]) is (ends == [0.0, 0.0]), reasons
    off = replace(FLOOR_ANNEAL[0], floor_anneals_to_zero=False)
    state = rule.init(off, [1.0])
    assert [rule.update(off, state, v).lrs[0] for v in losses][-1] == 0.5  # 0.6's end


def test_anneal_only_with_a_budget_and_old_state_loads() -> None:
    """No total_steps: the fraction changes nothing (anytime); a 0.1 state dict loads."""
    losses = [1.0 / (1 + 0.05 * i) for i in range(60)]
    a = rule.init(GreedyConfig(anneal_fraction=0.2), [0.1])
    b = rule.init(GreedyConfig(), [0.1])
    for x in losses:
        assert rule.update(GreedyConfig(anneal_fraction=0.2), a, x).lrs == rule.update(
            GreedyConfig(), b, x).lrs
    old = {k: v for k, v in b.to_dict().items() if k in (
        "base_lrs", "min_lrs", "max_lrs", "lrs", "step", "reference", "num_good", "num_bad",
        "hold", "floor_hits", "smoothed", "window_values", "window_pos", "window_sum", "ema",
        "ema_count")}
    assert rule.RuleState.from_dict(old) == replace(b, first=None)  # 0.1 kept no first value
    old_config = {k: v for k, v in GreedyConfig().to_dict().items() if k not in (
        "total_steps", "anneal_fraction", "anneal_shape", "noise_threshold", "payoff_patience",
        "eval_mode", "eval_factor", "eval_patience", "base_schedule", "blowup_ratio",
        "blowup_raw_check")}
    # a key added since takes its default, except where that is not what the old version
    # ran: before 0.5 there was no blow-up guard, before 0.6 no raw-loss check in it
    assert GreedyConfig.from_dict(old_config) == GreedyConfig(blowup_ratio=None,
                                                              blowup_raw_check=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"total_steps": 0}, "total_steps must be an int >= 1"),
        ({"anneal_fraction": 1.5}, "anneal_fraction must be in"),
        ({"anneal_shape": "step"}, "anneal_shape must be one of"),
        ({"noise_threshold": -1.0}, "noise_threshold must be finite"),
        ({"payoff_patience": 0}, "payoff_patience must be an int >= 1"),
        ({"eval_factor": 1.0}, "eval_factor must be in"),
        ({"eval_mode": "up"}, "eval_mode must be one of"),
        ({"eval_patience": -1}, "eval_patience must be an int >= 0 or None"),
        *(({"eval_pace": p}, "eval_pace must be finite and >= 0") for p in (-0.1, math.inf)),
        *(({"eval_compound_margin": m}, "eval_compound_margin must be finite and >= 0, or None")
          for m in (-0.1, math.inf)),
        ({"eval_compound_margin": "0.03"}, "eval_compound_margin must be a number"),
        *(({"blowup_ratio": r}, "blowup_ratio must be finite and > 1, or None")
          for r in (1.0, 0.5, math.inf, math.nan)),
        ({"blowup_raw_check": 1}, "blowup_raw_check must be a bool"),
        *(({"spike_ratio": r}, "spike_ratio must be finite and > 1, or None")
          for r in (1.0, 0.5, math.inf, math.nan)),
        ({"spike_ratio": "10"}, "spike_ratio must be a number"),
        ({"floor_anneals_to_zero": None}, "floor_anneals_to_zero must be a bool"),
        ({"anneal_to_zero": 1}, "anneal_to_zero must be a bool"),
    ],
)
def test_bad_new_knobs_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GreedyConfig(**kwargs)


def test_anneal_table_is_the_float_rule_shape() -> None:
    config = GreedyConfig(total_steps=100, anneal_fraction=0.2, anneal_shape="1-sqrt")
    table = config.anneal_table()
    assert len(table) == 21 and table[0] == 1.0 and table[-1] == 0.0
    assert table[5] == 1.0 - math.sqrt(0.25)
    state = tr.init(config, [0.1])
    assert state.anneal_table.tolist() == table
    assert torch.equal(tr.select(tr.init(config, [[0.1], [0.2]]), 0).anneal_table,
                       state.anneal_table)


def test_held_out_values_are_ignored_without_eval_patience() -> None:
    """The 0.1 behaviour, for integrations that feed held-out values automatically."""
    config = GreedyConfig(factor=0.5, smoothing="none", eval_patience=None)
    state = rule.init(config, [0.1])
    rule.update(config, state, 1.0)
    for value in (0.5, 0.9, 2.0):
        assert rule.observe_eval(config, state, value).events == ()
    assert state.eval_best is None and not state.eval_block
    tstate, d = tr.observe_eval(config, tr.init(config, [0.1]), 0.5)
    assert int(d.code) == 0 and math.isnan(float(tstate.eval_best))

"""greedylr.events: the event kinds, their bits, and the one function that words them."""

from __future__ import annotations

import math
import pickle
import random
import subprocess
import sys
from copy import deepcopy
from pathlib import Path

import pytest

from greedylr import events, rule
from greedylr import tensor_rule as tr
from greedylr.events import EventFlag, describe, kinds_of
from greedylr.rule import GreedyConfig

ANNEAL, CLIPPED, DECREASE, EVAL_DECREASE = (EventFlag.ANNEAL, EventFlag.CLIPPED,
                                            EventFlag.DECREASE, EventFlag.EVAL_DECREASE)
BLOWUP, EVAL_CLIPPED, SPIKE = events.BLOWUP, events.EVAL_CLIPPED, events.SPIKE
HOLD, INCREASE, NONFINITE, RESET, UNDO, WARMUP_END = (
    EventFlag.HOLD, EventFlag.INCREASE, EventFlag.NONFINITE, EventFlag.RESET, EventFlag.UNDO,
    EventFlag.WARMUP_END)

# The bits stored in traces and returned by the twins: renumbering one breaks every
# trace written before.
STORED_BITS = {
    "increase": 1, "decrease": 2, "clipped": 4, "hold": 8, "warmup_end": 16, "reset": 32,
    "nonfinite": 64, "anneal": 128, "undo": 256, "eval_decrease": 512,
}


def test_every_kind_keeps_its_stored_bit() -> None:
    assert {flag.kind: int(flag) for flag in EventFlag} == STORED_BITS
    assert events.EVENT_BITS == STORED_BITS
    assert rule.EVENT_BITS is events.EVENT_BITS
    for name in ("INCREASE", "DECREASE", "CLIPPED", "HOLD", "WARMUP_END", "RESET",
                 "NONFINITE", "ANNEAL", "UNDO", "EVAL_DECREASE"):
        assert getattr(tr, name) == getattr(events, name) == EventFlag[name]
        assert type(getattr(tr, name)) is int  # as before: plain ints, fast to OR


def test_the_rule_reexports_what_moved() -> None:
    assert rule.Event is events.Event
    assert rule.COMPARE_NAMES is events.COMPARE_NAMES
    import greedylr

    assert greedylr.Event is events.Event


@pytest.mark.parametrize(
    ("code", "kinds"),
    [
        (0, ()),
        (INCREASE, ("increase",)),
        (INCREASE | HOLD, ("increase", "hold")),
        (INCREASE | CLIPPED, ("clipped",)),
        (DECREASE | RESET | HOLD, ("decrease", "reset", "hold")),
        (NONFINITE | DECREASE | CLIPPED | HOLD, ("nonfinite", "clipped", "hold")),
        (UNDO | HOLD, ("undo", "hold")),
        (WARMUP_END, ("warmup_end",)),
        (NONFINITE | ANNEAL, ("nonfinite", "anneal")),
        (EVAL_DECREASE, ("eval_decrease",)),
        (EVAL_DECREASE | CLIPPED, ("clipped",)),
        # the optax port ORs a held-out decrease into the next update's code
        (EVAL_DECREASE | DECREASE | CLIPPED | HOLD, ("eval_decrease", "clipped", "hold")),
        # a trace stores the kinds' bits: a blocked change is CLIPPED alone
        (CLIPPED | HOLD, ("clipped", "hold")),
        # a spike cut is a decrease of its own, the step's last, beside its own decision
        (SPIKE, ("decrease",)),
        (INCREASE | SPIKE, ("increase", "decrease")),
        (INCREASE | HOLD | SPIKE, ("increase", "hold", "decrease")),
        (DECREASE | RESET | HOLD | SPIKE, ("decrease", "reset", "hold", "decrease")),
        (DECREASE | BLOWUP | SPIKE, ("decrease", "decrease")),
        (NONFINITE | DECREASE | SPIKE, ("nonfinite", "decrease", "decrease")),
        (NONFINITE | SPIKE, ("nonfinite", "decrease")),
        (UNDO | SPIKE, ("undo", "decrease")),
        # the optax port: a blocked held-out decrease ORed into the next update's code
        (EVAL_CLIPPED, ("clipped",)),
        (EVAL_CLIPPED | INCREASE, ("clipped", "increase")),
        (EVAL_CLIPPED | INCREASE | CLIPPED, ("clipped", "clipped")),
        (EVAL_DECREASE | INCREASE | CLIPPED, ("eval_decrease", "clipped")),
        (EVAL_CLIPPED | SPIKE, ("clipped", "decrease")),
    ],
)
def test_kinds_of_reads_decision_and_stored_codes(code: int, kinds: tuple[str, ...]) -> None:
    assert kinds_of(code) == kinds


CONFIG = GreedyConfig(factor=0.5, patience=2, increase_patience=1, warmup=4, cooldown=3,
                      hold_after_increase=1, total_steps=100, anneal_fraction=0.2,
                      payoff_patience=5, eval_patience=1, reset_patience=2)
LRS = {"lrs_before": [0.4, 0.2], "min_lrs": [0.1, 0.05], "max_lrs": [0.8, 0.4]}


def _reasons(code: int, **numbers: object) -> list[tuple[str, str]]:
    values: dict = {"step": 7, "loss": 1.5, "smoothed": 1.25, "reference": 1.0,
                    "lrs_changed": [0.2, 0.1], "lrs_after": [0.2, 0.1], **LRS, **numbers}
    return [(e.kind, e.reason) for e in describe(CONFIG, code=code, **values)]


def test_the_reason_of_every_kind() -> None:
    versus = "smoothed loss 1.25 vs best since the last decrease 1"
    assert _reasons(INCREASE | HOLD, lrs_changed=[0.8, 0.4], lrs_after=[0.8, 0.4]) == [
        ("increase", f"increase at step 7: 2 improving steps > patience 1; {versus}; "
                     "lr 0.4, 0.2 -> 0.8, 0.4; group(s) [0, 1] reached the upper bound"),
        ("hold", "hold after increase: the next 1 observations are not counted"),
    ]
    assert _reasons(DECREASE | RESET | HOLD, lrs_after=[0.4, 0.2]) == [
        ("decrease", f"decrease at step 7: 3 non-improving steps > patience 2; {versus}; "
                     "lr 0.4, 0.2 -> 0.2, 0.1"),
        ("reset", "reset at step 7: 2 decrease(s) found every group at its lower bound; "
                  "lr back to 0.4, 0.2, statistics cleared"),
        ("hold", "cooldown: the next 3 observations are not counted"),
    ]
    assert _reasons(DECREASE | CLIPPED, lrs_before=[0.1, 0.05], lrs_changed=[0.1, 0.05]) == [
        ("clipped", f"decrease blocked at step 7: 3 non-improving steps > patience 2; "
                    f"{versus}, but every group is at its lower bound (0.1, 0.05)"),
    ]
    assert _reasons(UNDO, penalty=1) == [
        ("undo", "undo at step 7: smoothed loss 1.25 is worse than 1 at the increase 5 steps "
                 "ago; the next increase needs 4 improving steps; lr 0.4, 0.2 -> 0.2, 0.1"),
    ]
    assert _reasons(NONFINITE | DECREASE, loss=math.nan) == [
        ("nonfinite", "non-finite loss nan at step 7: not fed to the statistics"),
        ("decrease", "decrease at step 7: non-finite loss; lr 0.4, 0.2 -> 0.2, 0.1"),
    ]
    assert _reasons(WARMUP_END) == [("warmup_end", "warmup ramp of 4 steps ended at step 7; "
                                                   "lr 0.2, 0.1")]
    assert _reasons(ANNEAL) == [
        ("anneal", "final cooldown from step 7: the last 20 of 100 steps anneal (1-sqrt) "
                   "from lr 0.4, 0.2 towards the lower bound 0.1, 0.05"),
    ]
    assert _reasons(EVAL_DECREASE, loss=1.02) == [
        ("eval_decrease", "eval_decrease at step 7: held-out value 1.02 is not better than "
                          "the best 1 (2 time(s) in a row); lr 0.4, 0.2 -> 0.2, 0.1"),
    ]
    assert _reasons(EVAL_DECREASE, loss=2.5) == [
        ("eval_decrease", "eval_decrease at step 7: held-out value 2.5 is worse than the best "
                          "1 by more than eval_compound_margin 0.03 of it (2 time(s) in a "
                          "row): the LR times 0.5 (cuts on such values compound, each "
                          "squaring the last one's factor, until a held-out value counts as "
                          "better); lr 0.4, 0.2 -> 0.2, 0.1"),
    ]
    assert _reasons(EVAL_DECREASE | CLIPPED, loss=2.5, lrs_before=[0.1, 0.05],
                    lrs_changed=[0.1, 0.05]) == [
        ("clipped", "eval_decrease blocked at step 7: held-out value 2.5 is not better than "
                    "the best 1 (2 time(s) in a row), but every group is at its lower bound "
                    "(0.1, 0.05)"),
    ]


def test_a_change_blocked_by_eps_says_so() -> None:
    """A group that is not at its bound did not move because the change was no more than
    eps: the reason says that, not that the group is at its bound."""
    versus = "smoothed loss 1.25 vs best since the last decrease 1"
    tiny = {"lrs_before": [1e-7, 2e-7], "lrs_changed": [1e-7, 2e-7], "lrs_after": [1e-7, 2e-7],
            "min_lrs": [0.0, 0.0], "max_lrs": [math.inf, math.inf]}
    assert _reasons(INCREASE | CLIPPED, eps=1e-8, **tiny) == [
        ("clipped", f"increase blocked at step 7: 2 improving steps > patience 1; {versus}, "
                    "but no group would move by more than eps 1e-08 (lr 1e-07, 2e-07; the "
                    "upper bound inf, inf)"),
    ]
    # the config's eps where none is given (CONFIG's: 0)
    assert _reasons(DECREASE | CLIPPED, **tiny)[0][1].endswith(
        "but no group would move by more than eps 0 (lr 1e-07, 2e-07; the lower bound 0, 0)")
    # one group at its bound, the other blocked by eps
    mixed = {**tiny, "max_lrs": [1e-7, 1.0]}
    assert _reasons(INCREASE | CLIPPED, eps=1e-6, **mixed)[0][1].endswith(
        "but group(s) [0] are at their upper bound and the others would move by no more "
        "than eps 1e-06 (lr 1e-07, 2e-07; the upper bound 1e-07, 1)")
    # a held-out decrease too
    assert _reasons(EVAL_DECREASE | CLIPPED, loss=1.02, eps=1e-6, **tiny)[0][1].endswith(
        "but no group would move by more than eps 1e-06 (lr 1e-07, 2e-07; the lower bound "
        "0, 0)")


def test_the_float_rule_says_when_eps_blocked_a_change() -> None:
    config = GreedyConfig(factor=0.95, patience=0, smoothing="none", eps=1e-8,
                          min_lr_ratio=None, max_lr_ratio=None)
    state = rule.init(config, [1e-7])
    reasons = [e.reason for loss in (1.0, 0.9, 1.0)
               for e in rule.update(config, state, loss).events]
    assert len(reasons) == 3 and state.lrs == [1e-7]
    assert all("but no group would move by more than eps 1e-08 (lr 1e-07" in r for r in reasons)
    assert not any("at its" in r for r in reasons)


SPIKY = GreedyConfig(factor=0.5, patience=0, smoothing="none", compare="previous",
                     spike_ratio=1.5, blowup_ratio=None, min_lr_ratio=None, max_lr_ratio=None)


def test_a_spike_cut_is_its_own_event_beside_the_steps_decision() -> None:
    """10 and 5 are spike steps (above 1.5 times the first value 1): on the second, 5
    beats 10, an increase 0.1 -> 0.2, then the spike cut 0.2 -> 0.1, each its own event
    with its own LRs (they were one 'increase' from 0.1 to 0.1)."""
    state = rule.init(SPIKY, [0.1])
    for loss in (1.0, 10.0):
        rule.update(SPIKY, state, loss)
    got = rule.update(SPIKY, state, 5.0).events
    assert [(e.kind, e.lrs_before, e.lrs_after) for e in got] == [
        ("increase", (0.1,), (0.2,)), ("decrease", (0.2,), (0.1,))]
    assert got[0].reason == ("increase at step 3: 1 improving steps > patience 0; smoothed "
                             "loss 5 vs previous 10; lr 0.1 -> 0.2")
    assert got[1].reason == ("decrease at step 3: the raw loss 5 is 5x its first value 1, "
                             "above 1.5x (spike_ratio) on a second step in a row or more: the "
                             "LR times 0.5 at once; lr 0.2 -> 0.1")


def test_a_spike_cut_after_a_reset_quotes_the_lrs_of_each() -> None:
    """A decrease to the lower bound that resets to the base LRs, then the spike cut: the
    decrease ends at the bound, the reset at the base LRs, the cut starts from them."""
    values: dict = {"step": 7, "loss": 1.5, "smoothed": 1.25, "reference": 1.0,
                    "lrs_before": [0.15, 0.04], "lrs_changed": [0.4, 0.2],
                    "lrs_after": [0.2, 0.1], "min_lrs": [0.1, 0.05], "max_lrs": [0.8, 0.4]}
    got = describe(CONFIG, code=DECREASE | RESET | HOLD | SPIKE, **values)
    assert [(e.kind, e.lrs_before, e.lrs_after) for e in got] == [
        ("decrease", (0.15, 0.04), (0.1, 0.04)),  # group 1 (below its bound) stayed
        ("reset", (0.1, 0.04), (0.4, 0.2)),
        ("hold", (0.4, 0.2), (0.4, 0.2)),
        ("decrease", (0.4, 0.2), (0.2, 0.1)),
    ]
    assert [e.reason.split(": ")[0] for e in got] == [
        "decrease at step 7", "reset at step 7", "cooldown", "decrease at step 7"]
    assert got[0].reason.endswith("lr 0.15, 0.04 -> 0.1, 0.04; group(s) [0] reached the "
                                  "lower bound")
    assert got[1].reason.endswith("lr back to 0.4, 0.2, statistics cleared")
    assert got[3].reason.endswith("at once; lr 0.4, 0.2 -> 0.2, 0.1")


def test_the_rule_reports_each_decision_of_a_step_with_a_spike_cut() -> None:
    """Random runs with the spike guard and resets: on a step with a spike cut, the
    decision's event ends at the LRs the rule's own change left (seen from inside), the
    reset at the base LRs, and the cut goes from the LRs before it to those applied."""
    seen: list[list[float]] = []
    original = rule._reset

    def spy(config: GreedyConfig, state: rule.RuleState) -> None:
        seen.append(list(state.lrs))
        original(config, state)

    found = 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rule, "_reset", spy)
        for seed in range(60):
            rng = random.Random(seed)
            config = GreedyConfig(
                factor=rng.choice([0.5, 0.9]), patience=rng.choice([0, 1]), smoothing="none",
                spike_ratio=1.5, blowup_ratio=None, compare=rng.choice(["previous", "best"]),
                min_lr_ratio=rng.choice([0.3, 0.6]), max_lr_ratio=4.0, reset_patience=1,
                on_nonfinite=rng.choice(["skip", "decrease"]), mode=rng.choice(["min", "max"]))
            state = rule.init(config, [0.1, 0.02])
            for _ in range(80):
                loss = rng.choice([1.0, 1.2, 2.0, 3.0, 0.4, math.nan])
                lrs_before, count = list(state.lrs), len(seen)
                got = rule.update(config, state, loss).events
                if not any("(spike_ratio)" in e.reason or "spiked" in e.reason for e in got):
                    continue
                cut = got[-1]
                assert cut.kind == "decrease" and cut.lrs_after == tuple(state.lrs)
                own = [e for e in got[:-1] if e.kind in ("increase", "decrease", "clipped")]
                if own:
                    assert own[0].lrs_before == tuple(lrs_before)
                reset = [e for e in got if e.kind == "reset"]
                if reset:
                    found += 1
                    assert len(seen) == count + 1
                    assert own[0].lrs_after == reset[0].lrs_before == tuple(seen[-1])
                    assert reset[0].lrs_after == cut.lrs_before == tuple(state.base_lrs)
                elif own:
                    assert own[0].lrs_after == cut.lrs_before
    assert found >= 5


def test_without_a_config_the_reasons_leave_out_what_only_it_knows() -> None:
    got = describe(None, step=3, code=CLIPPED | HOLD, loss=2.0, smoothed=math.nan,
                   reference=None, lrs_before=[0.1], lrs_changed=[0.1], lrs_after=[0.1])
    assert [(e.kind, e.reason, e.smoothed) for e in got] == [
        ("clipped", "change blocked at step 3: a change was due, but no group moved (lr "
                    "0.1): each is at its bound or would move by no more than eps", None),
        ("hold", "hold: the next observations are not counted", None),
    ]
    got = describe(None, step=3, code=INCREASE | WARMUP_END, loss=2.0, smoothed=1.0,
                   reference=None, lrs_before=[0.1], lrs_changed=[0.2], lrs_after=[0.2])
    assert [e.reason for e in got] == [
        "warmup ramp ended at step 3; lr 0.2",
        "increase at step 3: the smoothed loss kept improving; lr 0.1 -> 0.2",
    ]


def test_a_reason_worded_late_reads_the_numbers_of_its_decision() -> None:
    # the reason is worded when first read: what the caller passed is copied at once,
    # so changing it afterwards changes nothing
    values: dict = {"step": 7, "loss": 1.5, "smoothed": 1.25, "reference": 1.0,
                    "lrs_before": [0.1, 0.05], "lrs_changed": [0.1, 0.05],
                    "lrs_after": [0.1, 0.05], "min_lrs": [0.1, 0.05], "max_lrs": [0.8, 0.4]}
    late = describe(CONFIG, code=DECREASE | CLIPPED, **values)
    for key in ("lrs_before", "lrs_changed", "min_lrs"):
        values[key][0] = 9.0
    values["min_lrs"].append(0.01)  # a group added since
    assert [e.reason for e in late] == [
        "decrease blocked at step 7: 3 non-improving steps > patience 2; smoothed loss 1.25 "
        "vs best since the last decrease 1, but every group is at its lower bound (0.1, 0.05)"]


def test_an_event_copies_and_pickles_with_its_reason() -> None:
    (event,) = describe(CONFIG, code=INCREASE, step=7, loss=1.5, smoothed=1.25, reference=1.0,
                        lrs_changed=[0.8, 0.4], lrs_after=[0.8, 0.4], **LRS)
    worded = rule.Event(**event.to_dict())  # the reason a plain string
    assert worded == event and event == worded
    for copy in (pickle.loads(pickle.dumps(event)), deepcopy(event)):
        assert copy == event
        assert isinstance(copy.to_dict()["reason"], str)
    assert repr(event) == repr(worded) and "reason='increase at step 7" in repr(event)
    assert event != rule.Event(**{**event.to_dict(), "reason": "another"})
    with pytest.raises(TypeError):
        hash(event)


def test_events_loads_without_torch_or_numpy() -> None:
    code = ("import sys, greedylr.events, greedylr.rule; "
            "assert not {'torch', 'numpy'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_reasons_are_worded_only_in_events_py() -> None:
    src = Path(events.__file__).parent
    wording = ("improving steps > patience", "blocked at step", "observations are not counted",
               "not fed to the statistics", "final cooldown from step", "statistics cleared",
               "time(s) in a row", "ramp of")
    for path in src.rglob("*.py"):
        if path.name != "events.py":
            text = path.read_text()
            assert not [w for w in wording if w in text], path


# Scripted runs that reach every kind; each twin must produce the reference rule's events.
SCRIPTED = [
    dict(factor=0.5, patience=1, warmup=3, cooldown=1, min_lr_ratio=0.5, max_lr_ratio=2.0,
         reset_patience=1, on_nonfinite="decrease", smoothing="none"),
    dict(factor=0.8, patience=2, increase_patience=0, payoff_patience=3, eval_patience=0,
         hold_after_increase=1, total_steps=200, anneal_fraction=0.2, smoothing="window",
         window=3),
    dict(factor=0.7, patience=0, compare="best", mode="max", eval_mode="max",
         eval_patience=1, noise_threshold=0.5, smoothing="ema", window=4,
         on_nonfinite="decrease", cooldown=2, min_lr_ratio=0.25),
    dict(factor=0.7, patience=1, blowup_ratio=1.3, total_steps=220, anneal_fraction=0.1,
         smoothing="ema", window=5, reset_patience=2, min_lr_ratio=0.05),
]


def _script(seed: int, n: int = 220) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    out, x = [], 2.0
    for t in range(n):
        x = max(x + rng.gauss(0.0, 0.15), 0.01)
        out.append(("loss", rng.choice([math.nan, math.inf]) if rng.random() < 0.03 else x))
        if t % 9 == 8:
            out.append(("eval", x + rng.gauss(0.0, 0.1)))
    return out


def _rule_run(config: GreedyConfig, script: list[tuple[str, float]]) -> list[list[rule.Event]]:
    state = rule.init(config, [0.1, 0.02])
    return [list((rule.update if kind == "loss" else rule.observe_eval)(config, state, v).events)
            for kind, v in script]


@pytest.mark.parametrize("index", range(len(SCRIPTED)))
def test_the_tensor_twin_decodes_the_rules_events(index: int) -> None:
    config = GreedyConfig(**SCRIPTED[index])
    script = _script(index)
    tstate = tr.init(config, [0.1, 0.02])
    for (kind, value), expected in zip(script, _rule_run(config, script), strict=True):
        tstate, d = (tr.update if kind == "loss" else tr.observe_eval)(config, tstate, value)
        decoded = tr.decode_events(
            config, step=int(tstate.step), code=int(d.code), loss=value,
            smoothed=float(d.smoothed), reference=float(d.reference),
            lrs_before=d.lrs_before.tolist(), lrs_changed=d.lrs_changed.tolist(),
            lrs_after=d.rule_lrs.tolist(), min_lrs=tstate.min_lrs.tolist(),
            max_lrs=tstate.max_lrs.tolist(), penalty=int(d.penalty), first=float(d.first))
        assert repr([e.to_dict() for e in decoded]) == repr([e.to_dict() for e in expected])
        assert kinds_of(int(d.code)) == tuple(e.kind for e in expected)


def test_the_scripted_runs_reach_every_kind() -> None:
    seen = {e.kind for i, kw in enumerate(SCRIPTED)
            for step in _rule_run(GreedyConfig(**kw), _script(i)) for e in step}
    assert seen == set(STORED_BITS)


@pytest.mark.parametrize("index", range(len(SCRIPTED)))
def test_the_optax_twin_names_the_rules_events(index: int) -> None:
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    from greedylr.integrations.optax import event_kinds, greedy_lr

    config = GreedyConfig(**SCRIPTED[index])
    script = _script(index)
    expected = _rule_run(config, script)
    with jax.enable_x64(True):
        tx = greedy_lr(0.1, config=config)
        state = tx.init({})
        # a held-out value goes in with the next loss, as eval_value: its events (a
        # blocked one 'clipped', as the rule's) come first (GreedyLRState.events)
        pending: list[str] = []
        eval_value = None
        for (kind, value), events_ in zip(script, expected, strict=True):
            if kind == "eval":
                eval_value, pending = value, [e.kind for e in events_]
                continue
            _, state = tx.update({}, state, value=jnp.asarray(value), eval_value=eval_value)
            assert event_kinds(int(state.events)) == (
                *pending, *(e.kind for e in events_)), (kind, value)
            eval_value, pending = None, []


def test_the_examples_run() -> None:
    import doctest

    result = doctest.testmod(events)
    assert result.attempted >= 2 and result.failed == 0

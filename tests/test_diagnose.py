"""diagnose(): stress episodes on real runs (a bad data shard) and on constructed traces."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from greedylr import Trace, diagnose
from greedylr.cli import main
from greedylr.rule import GreedyConfig, init, update
from greedylr.trace import Diagnosis
from recorded_runs import scheduler_run

DEMO = Path(__file__).resolve().parents[1] / "examples" / "pulse_demo.py"


def load_demo():
    spec = importlib.util.spec_from_file_location("pulse_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def one_thread():
    # a 10k-parameter MLP: on a shared 2-core machine two threads only contend
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_bad_shard_is_found_and_the_clean_run_is_quiet(one_thread, seed):
    """Real training (digits MLP, AdamW, GreedyLR defaults), labels shuffled in 300..319."""
    demo = load_demo()
    first, stop = demo.BAD_SHARD
    clean, clean_accuracy = demo.run(seed=seed, steps=500, bad_shard=None)
    bad, _ = demo.run(seed=seed, steps=500)
    assert clean_accuracy > 0.9  # a healthy run, so "no episode" means something

    quiet = diagnose(clean)
    assert len(quiet) == 0, str(quiet)
    assert "no stress episode" in quiet.summary

    found = diagnose(bad)
    spikes = [e for e in found if e.kind == "loss_spike"]
    assert len(spikes) == 1, str(found)
    [spike] = spikes
    assert spike.covers(first, stop - 1), str(found)
    assert spike.start == first  # the first bad batch, not a lagging median
    assert spike.severity > 20  # in pre-episode sigma: far above the threshold of 8
    assert spike.cause == "data"
    assert f"'train' -> 'bad-shard' at step {first}" in spike.notes[0]
    # the LR reacted: the rule lowered it during the spike...
    assert any(e.kind == "decrease" and spike.start <= e.step <= spike.end for e in bad.events)
    # ...but, comparing with the best since its last decrease (the default), did not
    # keep cutting it for the rest of the run chasing the pre-shard best
    assert not [e for e in found if e.kind == "contraction"], str(found)
    assert "1 loss spike" in found.summary


def noisy_run(steps=600, seed=0, spike=None, source_change=None):
    """A decaying loss with multiplicative noise, optionally a spike and a tag change."""
    rng = np.random.default_rng(seed)
    loss = (2.0 / (1 + 0.02 * np.arange(steps)) + 0.05) * rng.lognormal(0, 0.15, steps)
    if spike is not None:
        a, b = spike
        loss[a:b] += 3.0
    cfg = GreedyConfig()
    state = init(cfg, [0.01])
    trace = Trace(1, meta={"config": cfg.to_dict(), "min_lrs": state.min_lrs})
    for i, value in enumerate(loss):
        decision = update(cfg, state, float(value))
        if source_change is not None:
            trace.log(source="A" if i < source_change else "B")
        trace.record(state.step, float(value), decision.smoothed, decision.lrs,
                     decision.events)
    return trace


def test_noise_alone_makes_no_episode():
    for seed in range(5):
        assert len(diagnose(noisy_run(seed=seed))) == 0


def test_a_spike_with_and_without_a_change_of_source():
    data = diagnose(noisy_run(spike=(400, 415), source_change=400))
    [spike] = [e for e in data if e.kind == "loss_spike"]
    assert (spike.start, spike.cause) == (401, "data")  # steps count from 1
    assert spike.end >= 415

    training = diagnose(noisy_run(spike=(400, 415), source_change=100))
    [spike] = [e for e in training if e.kind == "loss_spike"]
    assert spike.cause == "training"
    assert "no change of source near the start" in spike.notes[0]

    untagged = diagnose(noisy_run(spike=(400, 415)))
    assert [e.cause for e in untagged] == [None] * len(untagged)


def test_recovery_is_counted_on_the_smoothed_loss():
    trace = noisy_run(spike=(400, 415))
    [spike] = [e for e in diagnose(trace) if e.kind == "loss_spike"]
    smoothed = trace.smoothed
    level = smoothed[spike.start - 2]  # the step before the start (steps count from 1)
    back = spike.start - 1 + spike.recovery_steps
    assert smoothed[back] <= level < smoothed[back - 1]
    assert spike.recovery_steps > 15  # the window mean carries the spike for a while


def test_each_continuation_after_a_rollback_is_diagnosed_on_its_own():
    # a run to step 450 rolled back to its checkpoint at step 300 (load_state_dict in the
    # same process) that goes on to step 600: the trace holds steps 301-450 twice. A spike
    # before the checkpoint is history both continuations share; one at the end of the
    # abandoned continuation never recovers in it (the next rows are the other's)
    rng = np.random.default_rng(0)
    steps = [*range(1, 451), *range(301, 601)]
    loss = 1.0 + 0.05 * rng.standard_normal(len(steps))
    loss[100:110] += 3.0  # steps 101-110
    loss[440:450] += 3.0  # steps 441-450, abandoned
    trace = Trace(1)
    for i, (step, value) in enumerate(zip(steps, loss.tolist(), strict=True)):
        trace.log(source="B" if 440 <= i < 450 else "A", grad_norm=5.0 if i >= 440 else 1.0)
        trace.record(step, value, value, [0.1])
    result = diagnose(trace)
    spikes = [e for e in result if e.kind == "loss_spike"]
    assert [(e.start, e.end) for e in spikes] == [(101, 110), (441, 450)]  # each once
    assert spikes[0].recovery_steps >= 10 and spikes[1].recovery_steps is None  # -1 before
    assert spikes[1].cause == "data" and "grad_norm peaked at 5 against a median of 1" in (
        "".join(spikes[1].notes))
    assert "a rollback went back over: the run went on again from step 300" in (
        spikes[1].notes[-1])
    assert not any("rollback" in note for note in spikes[0].notes)
    assert result.summary.startswith("750 rows (steps 1-600, 1 rollback(s)")


@pytest.mark.parametrize(("kept", "expected"), [(40, (296, 340, 50)), (0, (296, 300, 15))])
def test_an_episode_across_the_rollback_point_is_reported_as_the_run_that_went_on_saw_it(
        kept, expected):
    # steps 1-450 rolled back to the checkpoint at step 300, then 301-600: a spike from
    # step 296 lasts to 305 in the abandoned continuation and to 300 + kept in the one
    # that went on: it is reported once, as the run that went on saw it (it used to be
    # reported from the abandoned continuation, 296-305 and no note). A spike wholly in
    # the abandoned steps keeps its note
    rng = np.random.default_rng(0)
    steps = [*range(1, 451), *range(301, 601)]
    loss = 1.0 + 0.05 * rng.standard_normal(len(steps))
    loss[295:305] += 3.0  # steps 296-305, the last five abandoned
    loss[450:450 + kept] += 3.0  # steps 301 to 300 + kept, the run that went on
    loss[360:370] += 3.0  # steps 361-370, abandoned
    trace = Trace(1)
    for step, value in zip(steps, loss.tolist(), strict=True):
        trace.record(step, value, value, [0.1])
    kept_alone = Trace(1)
    for i in [*range(300), *range(450, 750)]:
        kept_alone.record(steps[i], float(loss[i]), float(loss[i]), [0.1])
    alone = [(e.start, e.end, e.recovery_steps) for e in diagnose(kept_alone)]
    assert alone == [expected]

    spikes = [e for e in diagnose(trace) if e.kind == "loss_spike"]
    assert [(e.start, e.end, e.recovery_steps) for e in spikes] == [expected, (361, 370, 10)]
    assert spikes[0].notes == []
    assert spikes[1].notes == ["reaches into steps a rollback went back over: the run went "
                               "on again from step 300"]


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_a_lasting_jump_without_a_smoothed_loss_is_not_recovered(noise):
    # a hand-built trace (smoothed None): the fallback, the median of the last few raw
    # losses, still sat at the old level the step after the jump ("recovered in 1 steps")
    for seed in range(30 if noise else 1):
        rng = np.random.default_rng(seed)
        trace = Trace(1)
        for step in range(1, 301):
            value = 1.0 + noise * rng.standard_normal() + (4.0 if step >= 200 else 0.0)
            trace.record(step, value, None, [0.1])
        [spike] = diagnose(trace)
        assert (spike.kind, spike.start, spike.recovery_steps) == ("loss_spike", 200, None)


def rule_run(losses, **config):
    cfg = GreedyConfig(**config)
    state = init(cfg, [0.1])
    trace = Trace(1, meta={"config": cfg.to_dict(), "min_lrs": state.min_lrs})
    for value in losses:
        decision = update(cfg, state, value)
        trace.record(state.step, value, decision.smoothed, decision.lrs, decision.events)
    return trace


def test_floor_stagnation_and_reset_episodes():
    # a loss that only grows: decreases to the floor, blocked there, then a reset
    losses = [1.0 + 0.01 * i for i in range(80)]
    trace = rule_run(losses, factor=0.5, patience=2, smoothing="none", min_lr_ratio=0.1,
                     reset_patience=4)
    found = diagnose(trace, window=20)
    kinds = [e.kind for e in found]
    assert "floor" in kinds and "reset" in kinds and "contraction" in kinds, str(found)
    floor = next(e for e in found if e.kind == "floor")
    reset = next(e for e in found if e.kind == "reset")
    assert floor.end < reset.start or floor.start > reset.start
    assert floor.severity >= 6 and floor.severity_unit == "steps"
    contraction = next(e for e in found if e.kind == "contraction")
    # 0.1 -> 0.05 -> 0.025 -> 0.0125 -> 0.01, the last one stopped by the floor: /10
    assert contraction.severity == pytest.approx(10.0)
    assert reset.recovery_steps is None  # a rising loss never comes back


def test_floor_without_bounds_in_meta():
    losses = [1.0 + 0.01 * i for i in range(40)]
    trace = rule_run(losses, factor=0.5, patience=2, smoothing="none", min_lr_ratio=0.1)
    trace.meta.clear()
    assert any(e.kind == "floor" for e in diagnose(trace, window=20))


def test_nonfinite_losses_are_one_episode_per_burst():
    losses = [1.0] * 100
    losses[50] = losses[52] = float("nan")
    losses[90] = float("inf")
    found = diagnose(rule_run(losses))
    bursts = [(e.start, e.end, e.severity) for e in found if e.kind == "nonfinite"]
    assert bursts == [(51, 53, 2.0), (91, 91, 1.0)]
    assert "nan" in found[0].detail


def test_a_numeric_signal_is_summarised():
    trace = noisy_run(spike=(400, 415))
    rows = Trace(1)
    for i, (s, loss) in enumerate(zip(trace.steps, trace.losses, strict=True)):
        rows.log(grad_norm=10.0 if 400 <= i < 415 else 1.0)
        rows.record(int(s), float(loss), float(trace.smoothed[i]), [0.1])
    [spike] = [e for e in diagnose(rows) if e.kind == "loss_spike"]
    assert any("grad_norm peaked at 10 against a median of 1 before (10x)" in n
               for n in spike.notes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0}, "threshold must be > 0, got 0"),
        ({"window": 2}, "window must be an int >= 4, got 2"),
        ({"short": 0}, "short must be an int >= 1, got 0"),
        ({"max_lr_cut": 1.5}, "max_lr_cut must be in (0, 1], got 1.5"),
        ({"min_decreases": 0}, "min_decreases must be an int >= 1, got 0"),
        ({"coincide": -1}, "coincide must be an int >= 0, got -1"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError) as info:
        diagnose(Trace(1), **kwargs)
    assert str(info.value) == message


def test_empty_trace_and_path_input(tmp_path):
    assert diagnose(Trace(1)).summary == "empty trace: nothing to diagnose"
    trace = noisy_run(spike=(400, 415), source_change=400)
    path = trace.save(tmp_path / "t.jsonl")
    from_file = diagnose(path)
    assert isinstance(from_file, Diagnosis)
    assert from_file.to_dict() == diagnose(trace).to_dict()
    assert "loss_spike" in str(from_file)


def test_cli_diagnose_table_and_json(tmp_path, capsys):
    path = noisy_run(spike=(400, 415), source_change=400).save(tmp_path / "t.jsonl")
    assert main(["diagnose", str(path)]) == 0
    out = capsys.readouterr().out
    assert "loss spike" in out and "401-" in out and "1 loss spike" in out
    assert main(["diagnose", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["episodes"][0]["kind"] == "loss_spike" and data["episodes"][0]["cause"] == "data"


# -- mode="max": a metric to maximise is read in its own direction ----------------------


def accuracy_run(seed, steps=500, bad_shard=(300, 320)):
    """Real training (the demo's digits MLP, AdamW) under ``GreedyLR(mode="max")`` fed the
    held-out accuracy after every step; labels shuffled in ``bad_shard`` as in the demo."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import greedylr

    torch.manual_seed(seed)
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x / 16.0, y, test_size=0.25, random_state=seed, stratify=y)
    x_train, x_test = (torch.tensor(a, dtype=torch.float32) for a in (x_train, x_test))
    y_train, y_test = torch.tensor(y_train), torch.tensor(y_test)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = greedylr.GreedyLR(optimizer, mode="max")
    draws = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        index = torch.randint(len(x_train), (64,), generator=draws)
        permutation = torch.randperm(64, generator=draws)  # drawn always: same batches
        labels = y_train[index]
        if bad_shard is not None and bad_shard[0] <= step < bad_shard[1]:
            labels = labels[permutation]
        loss = torch.nn.functional.cross_entropy(model(x_train[index]), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
        scheduler.step(accuracy)
    return scheduler.trace


def test_mode_max_a_collapse_of_accuracy_is_the_episode(one_thread, tmp_path):
    """Before the fix the collapse was missed and the clean run's rise of accuracy could
    read as a loss spike: diagnose took every trace as a loss to minimise."""
    clean, bad = accuracy_run(seed=1, bad_shard=None), accuracy_run(seed=1)
    assert bad.meta["config"]["mode"] == "max"
    assert float(np.median(clean.losses[-50:])) > 0.9  # a healthy run
    quiet = diagnose(clean)
    assert len(quiet) == 0, str(quiet)

    found = diagnose(bad)
    [spike] = [e for e in found if e.kind == "loss_spike"]
    # held-out accuracy falls a few steps into the shard, and stays down past its end
    assert 300 <= spike.start < 320 and spike.end >= 320, str(found)
    assert spike.severity > 20, str(found)
    assert spike.detail.startswith("maximised metric fell to "), spike.detail
    level = bad.smoothed[spike.start - 2]  # the step before the start (steps count from 1)
    assert spike.recovery_steps is not None  # seed 1 gets back to its pre-shard accuracy
    back = spike.start - 1 + spike.recovery_steps
    assert bad.smoothed[back] >= level > bad.smoothed[back - 1]
    assert "a drop of the maximised metric" in found.summary
    # a saved trace carries the mode: the same diagnosis from either file format
    for name in ("acc.jsonl", "acc.csv"):
        assert diagnose(bad.save(tmp_path / name)).to_dict() == found.to_dict()


def test_mode_max_a_lasting_improvement_is_no_episode():
    rng = np.random.default_rng(0)
    metric = 0.5 + 0.01 * rng.standard_normal(600)
    metric[300:] += 0.3  # accuracy jumps 0.5 -> 0.8 and stays
    assert len(diagnose(scheduler_run(metric, mode="max"))) == 0
    # the same numbers as a loss to minimise are a lasting spike
    as_loss = diagnose(scheduler_run(metric))
    assert [(e.kind, e.start) for e in as_loss if e.kind == "loss_spike"] == [("loss_spike", 301)]


# -- a parameter group added during the run: NaN in its LR column before --------------


def test_a_group_added_after_a_mild_streak_makes_no_nan_contraction(tmp_path, capsys):
    """Five 0.95x cuts (to 0.77x, above max_lr_cut) before the group was added: no
    episode, where the NaN column made a contraction of severity NaN and --json a bare NaN."""
    losses = [1.0] * 5 + [1.0 + 1e-6 * i for i in range(60)] + [0.5 - 0.001 * i
                                                                 for i in range(50)]
    trace = scheduler_run(losses, add_group_at=65)
    assert np.isnan(trace.lrs[1][0]) and sum(e.kind == "decrease" for e in trace.events) == 5
    found = diagnose(trace)
    assert len(found) == 0, str(found)
    path = trace.save(tmp_path / "added.jsonl")
    assert main(["diagnose", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out, parse_constant=pytest.fail)  # no NaN, no Infinity
    assert data["episodes"] == []


def test_a_group_added_mid_run_neither_hides_a_contraction_nor_a_floor():
    # a loss that only grows for 60 steps: the LR halved to its floor (0.01x), blocked
    # there; then the loss falls and a second group is added
    losses = [1.0 + 0.001 * i for i in range(60)] + [0.5 - 0.001 * i for i in range(60)]
    trace = scheduler_run(losses, add_group_at=60, factor=0.5, patience=3, min_lr_ratio=0.01)
    found = diagnose(trace)
    [contraction] = [e for e in found if e.kind == "contraction"]
    assert contraction.severity == pytest.approx(100.0), str(found)
    assert "lr 0.1 -> 0.001 (/100)" in contraction.detail
    assert "added" not in contraction.detail  # the second group came after it
    [floor] = [e for e in found if e.kind == "floor"]
    assert (floor.start, floor.end) == (29, 60), str(found)
    assert "LR at its lower bound (0.001, not added yet)" in floor.detail
    assert json.dumps(found.to_dict(), allow_nan=False)


def test_stagnation_at_the_floor_before_a_group_was_added():
    losses = [1.0 + 0.001 * i for i in range(120)]  # never improves: to the floor, blocked
    alone = diagnose(scheduler_run(losses, patience=2, min_lr_ratio=0.9))
    added = diagnose(scheduler_run(losses, add_group_at=100, patience=2, min_lr_ratio=0.9))
    assert [(e.kind, e.start, e.end) for e in alone] == [("floor", 10, 120)]
    # the new group starts above its own floor, and reaches it later
    assert [(e.kind, e.start, e.end) for e in added] == [("floor", 10, 100), ("floor", 109, 120)]


def test_a_contraction_to_zero_is_null_in_json():
    from greedylr.rule import EVENT_BITS

    trace = Trace(1, meta={"base_lrs": [0.1]})
    for step in range(1, 41):
        lr = 0.0 if step >= 30 else 0.1 * 0.5 ** max(0, step - 25)
        trace.record(step, 1.0, 1.0, [lr], code=EVENT_BITS["decrease"] if step >= 26 else 0)
    found = diagnose(trace, window=20)
    [contraction] = [e for e in found if e.kind == "contraction"]
    assert contraction.severity == float("inf") and "-> 0 (/inf)" in contraction.detail
    [data] = [e for e in found.to_dict()["episodes"] if e["kind"] == "contraction"]
    assert data["severity"] is None
    json.dumps(found.to_dict(), allow_nan=False)

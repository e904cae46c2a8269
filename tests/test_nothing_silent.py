"""GreedyLR fails loudly or works: copies, new parameter groups, chaining, misuse, bad input.

Each test here failed on the code before the fix it covers (issue 14, "nothing silent").
"""

from __future__ import annotations

import copy
import gc
import io
import json
import logging
import pickle
import warnings
import weakref

import numpy as np
import pytest
import torch

from greedylr import GreedyLR
from greedylr.rule import GreedyConfig

CONFIG = {"factor": 0.5, "patience": 0, "smoothing": "none"}


def make_optimizer(lrs=(0.1,), tensor_lr=False):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))],
               "lr": torch.tensor(lr) if tensor_lr else lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=0.1)


def drive(sched, losses):
    out = []
    for loss in losses:
        sched.optimizer.step()
        sched.step(loss)
        out.append([float(lr) for lr in sched.get_last_lr()])
    return out


IMPROVING = [1.0, 0.9, 0.8, 0.7, 0.6]


# -- copies -----------------------------------------------------------------------------


def _torch_save_load(sched):
    buffer = io.BytesIO()
    torch.save(sched, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("device_mode", [False, True])
@pytest.mark.parametrize("how", ["deepcopy", "pickle", "torch.save"])
def test_a_copied_scheduler_keeps_changing_the_lr(how, device_mode):
    opt = make_optimizer(tensor_lr=device_mode)
    sched = GreedyLR(opt, device_mode=device_mode, max_lr_ratio=100.0, **CONFIG)
    drive(sched, [2.0, 1.5])
    copy_of = {"deepcopy": copy.deepcopy, "pickle": lambda s: pickle.loads(pickle.dumps(s)),
               "torch.save": _torch_save_load}[how](sched)
    assert copy_of.optimizer is not opt
    expected = drive(sched, IMPROVING)
    got = drive(copy_of, IMPROVING)
    assert got == expected
    assert got[-1][0] > got[0][0]  # the copy's LR moved (it froze before the fix)
    assert [float(g["lr"]) for g in copy_of.optimizer.param_groups] == got[-1]
    assert copy_of.state.step == sched.state.step == 7


def test_a_copy_with_an_open_file_sink_is_refused_clearly(tmp_path):
    from greedylr import Trace

    opt = make_optimizer()
    sched = GreedyLR(opt, trace=Trace(sinks=[tmp_path / "run.jsonl"], flush_every=1), **CONFIG)
    drive(sched, [1.0])
    with pytest.raises(TypeError, match=r"run\.jsonl cannot be copied or pickled"):
        copy.deepcopy(sched)


# -- no reference cycles, both modes (torch's test_lrscheduler pattern) -------------------


@pytest.mark.parametrize("device_mode", [False, True])
def test_no_reference_cycles_in_either_mode(device_mode):
    gc.collect()
    gc.disable()
    try:
        opt = make_optimizer((0.1, 0.2), tensor_lr=device_mode)
        sched = GreedyLR(opt, device_mode=device_mode, **CONFIG)
        drive(sched, [1.0, 0.5, 2.0, 3.0])
        assert sched.device_mode is device_mode
        refs = [weakref.ref(sched), weakref.ref(opt), weakref.ref(opt.param_groups[0]["params"][0])]
        del sched, opt
        assert [r() for r in refs] == [None, None, None], "kept alive by a reference cycle"
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        assert not [o for o in gc.garbage if isinstance(o, GreedyLR)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


# -- optimizer.add_param_group ------------------------------------------------------------


@pytest.mark.parametrize("device_mode", [False, True])
def test_an_added_param_group_is_scheduled_saved_and_restored(device_mode):
    def build(groups):
        opt = make_optimizer(groups, tensor_lr=device_mode)
        return opt, GreedyLR(opt, device_mode=device_mode, **CONFIG)

    opt, sched = build((0.1,))
    drive(sched, [2.0, 1.0])
    lr = torch.tensor(0.01) if device_mode else 0.01
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr})
    assert len(sched.get_last_lr()) == 2
    rows = drive(sched, [0.5, 0.4, 3.0])
    # scheduled from its own LR, with bounds relative to it (0.1x .. 10x of 0.01)
    assert [r[1] for r in rows] == pytest.approx([0.02, 0.04, 0.02])
    assert sched.state.min_lrs[1] == pytest.approx(0.001)
    assert sched.state.max_lrs[1] == pytest.approx(0.1)
    assert sched.trace.lrs[1][-1] == pytest.approx(0.02)
    assert np.isnan(sched.trace.lrs[1][0])  # before the group existed

    saved, opt_saved = sched.state_dict(), opt.state_dict()
    # the rebuilt optimizer has both groups from the start
    opt2, _ = build((0.1, 0.01))
    opt2.load_state_dict(opt_saved)
    sched2 = GreedyLR(opt2, device_mode=device_mode, **CONFIG)
    sched2.load_state_dict(saved)
    tail = [0.3, 0.2, 5.0, 6.0]
    assert drive(sched2, tail) == drive(sched, tail)


def test_a_new_group_during_warmup_joins_the_ramp():
    opt = make_optimizer((0.4,))
    sched = GreedyLR(opt, warmup=4)
    drive(sched, [1.0, 1.0])
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.8})
    assert sched.get_last_lr() == [0.2, 0.4]  # half way up the ramp, each from its own LR
    assert drive(sched, [1.0, 1.0])[-1] == [0.4, 0.8]


@pytest.mark.parametrize("device_mode", [False, True])
def test_a_group_added_after_a_clipped_decision_keeps_its_reason(device_mode):
    # device mode decodes the rows it buffered when a group is added, after the bounds
    # grew: the clipped reason of a row of one group was given the bounds of two
    opt = make_optimizer(tensor_lr=device_mode)
    sched = GreedyLR(opt, device_mode=device_mode, **CONFIG)
    drive(sched, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])  # to the lower bound 0.01, then held
    lr = torch.tensor(0.05) if device_mode else 0.05
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr})
    drive(sched, [8.0])
    clipped = [e for e in sched.events if e.kind == "clipped"]
    assert [e.step for e in clipped] == [7]
    assert clipped[0].reason.endswith("every group is at its lower bound (0.01)")
    assert len(clipped[0].lrs_after) == 1
    assert [e.kind for e in sched.events if e.step == 8] == ["decrease"]  # the new group


@pytest.mark.parametrize("device_mode", [False, True])
@pytest.mark.parametrize("call", ["observe_eval", "observe"])
def test_a_group_added_just_before_a_held_out_cut_takes_it(device_mode, call):
    # observe_eval (or observe, then step) right after add_param_group: the new group
    # was left out of the held-out cut and joined at its full LR at the next step
    opt = make_optimizer(tensor_lr=device_mode)
    sched = GreedyLR(opt, device_mode=device_mode, **{**CONFIG, "patience": 100})
    drive(sched, [1.0, 1.0, 1.0])
    sched.observe_eval(1.0)  # the best so far
    lr = torch.tensor(0.1) if device_mode else 0.1
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr})
    if call == "observe":
        sched.observe(1.0)
        assert len(sched.base_lrs) == 2  # scheduled from the call on
    sched.observe_eval(2.0)  # worse: every group's LR times eval_factor
    assert [float(g["lr"]) for g in opt.param_groups] == pytest.approx([0.07, 0.07])
    if call == "observe":
        opt.step()
        sched.step()
    else:
        drive(sched, [1.0, 1.0])
    assert [float(g["lr"]) for g in opt.param_groups] == pytest.approx([0.07, 0.07])
    (cut,) = [e for e in sched.events if e.kind == "eval_decrease"]
    assert cut.lrs_after == pytest.approx((0.07, 0.07))


@pytest.mark.parametrize("device_mode", [False, True])
def test_a_new_group_during_the_final_cooldown_joins_it_and_resumes_exactly(device_mode):
    # the cooldown is the last 5 of 10 steps, linear, towards 0.1x of each group's LR
    knobs = {**CONFIG, "total_steps": 10, "anneal_fraction": 0.5, "anneal_shape": "linear"}
    opt = make_optimizer(tensor_lr=device_mode)
    sched = GreedyLR(opt, device_mode=device_mode, **knobs)
    drive(sched, [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])  # two steps into the cooldown
    lr = torch.tensor(0.05) if device_mode else 0.05
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr})
    # where a cooldown from 0.05 stands after 2 of 5 steps: 0.005 + 0.045 * 3/5
    assert float(sched.get_last_lr()[1]) == pytest.approx(0.032)
    saved, opt_saved = sched.state_dict(), opt.state_dict()
    rows = drive(sched, [0.3, 0.2, 0.1])
    assert [r[1] for r in rows] == pytest.approx([0.023, 0.014, 0.005])

    opt2 = make_optimizer((0.1, 0.05), tensor_lr=device_mode)
    opt2.load_state_dict(opt_saved)
    sched2 = GreedyLR(opt2, device_mode=device_mode, **knobs)
    sched2.load_state_dict(saved)
    assert drive(sched2, [0.3, 0.2, 0.1]) == rows


def test_a_state_dict_kept_in_memory_is_not_changed_by_a_later_group():
    opt = make_optimizer()
    sched = GreedyLR(opt, **CONFIG)
    drive(sched, [1.0])
    saved = copy.deepcopy(sched.state_dict())
    kept = sched.state_dict()
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.05})
    sched.get_last_lr()
    assert kept == saved


def test_a_budget_or_warmup_that_would_start_the_cooldown_late_is_refused():
    # the LR would jump: the cooldown's shape is counted from its start
    with pytest.raises(ValueError, match=r"warmup \(90 steps\) runs into the final cooldown"):
        GreedyConfig(total_steps=100, warmup=90)
    GreedyConfig(total_steps=100, warmup=80)
    # a ramp as long as the run, or longer: the cooldown would never run inside the budget
    for warmup in (100, 120):
        with pytest.raises(ValueError, match=rf"warmup \({warmup} steps\) lasts the whole"):
            GreedyConfig(total_steps=100, warmup=warmup)
    opt = make_optimizer()
    sched = GreedyLR(opt, **CONFIG)
    drive(sched, [1.0] * 50)
    for total in (40, 60):  # cooldowns from steps 32 and 48
        with pytest.raises(ValueError, match="this run has made 50 steps already"):
            sched.set_total_steps(total)
    assert sched.config.total_steps is None
    sched.set_total_steps(62)  # from step 50 (0.8 x 62 = 49.6): on time
    assert sched.config.anneal_start == 50


def test_tensor_lrs_in_float_mode_resume_whichever_state_is_loaded_first():
    opt = make_optimizer(tensor_lr=True)
    sched = GreedyLR(opt, **CONFIG)
    drive(sched, [1.0, 0.5])
    # a checkpoint: copies (the optimizer's state dict holds its live LR tensors)
    saved, opt_saved = copy.deepcopy((sched.state_dict(), opt.state_dict()))
    tail = drive(sched, [0.4, 0.3])
    opt2 = make_optimizer(tensor_lr=True)
    sched2 = GreedyLR(opt2, **CONFIG)
    sched2.load_state_dict(saved)
    opt2.load_state_dict(opt_saved)  # puts in LR tensors of its own, of the same values
    assert drive(sched2, [0.4, 0.3]) == tail
    opt2.param_groups[0]["lr"] = torch.tensor(0.123)  # another value: still refused
    with pytest.raises(RuntimeError, match="changed outside GreedyLR"):
        drive(sched2, [0.2])


def test_a_new_group_in_device_mode_needs_a_tensor_lr():
    opt = make_optimizer(tensor_lr=True)
    sched = GreedyLR(opt, device_mode=True)
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.01})
    with pytest.raises(ValueError, match=r"new parameter group\(s\) \[1\] need a tensor lr"):
        sched.get_last_lr()


# -- chaining -----------------------------------------------------------------------------


@pytest.mark.parametrize("tensor_lr", [False, True])
def test_a_new_greedylr_restarts_from_the_lr_set_as_the_chaining_error_advises(tensor_lr):
    # the first GreedyLR left initial_lr=0.1 in the group: the second took it, not 0.01
    opt = make_optimizer(tensor_lr=tensor_lr)
    drive(GreedyLR(opt, **CONFIG), [1.0, 1.0])
    for group in opt.param_groups:
        group["lr"] = torch.tensor(0.01) if tensor_lr else 0.01
    sched = GreedyLR(opt, **CONFIG)
    assert float(opt.param_groups[0]["lr"]) == pytest.approx(0.01)
    assert sched.base_lrs == sched.state.base_lrs == [pytest.approx(0.01)]
    assert sched.state.min_lrs == [pytest.approx(0.001)]
    assert float(opt.param_groups[0]["initial_lr"]) == pytest.approx(0.01)
    assert sched.trace.meta["base_lrs"] == [pytest.approx(0.01)]
    # from 0.01 (up, then down), not from 0.1
    assert drive(sched, [1.0, 2.0]) == [[pytest.approx(0.02)], [pytest.approx(0.01)]]


def _ramp_run(min_lr):
    opt = make_optimizer()
    return opt, GreedyLR(opt, warmup=10, min_lr=min_lr, max_lr=1.0, **CONFIG)


def test_resume_with_the_optimizer_loaded_first_inside_a_ramp_below_the_floor():
    # the optimizer restored before GreedyLR is built: its lr (0.02, on the ramp) is below
    # min_lr and cannot start a run; its initial_lr can, and load_state_dict replaces both
    opt, sched = _ramp_run(0.05)
    drive(sched, [1.0, 1.0])
    saved, opt_saved = copy.deepcopy((sched.state_dict(), opt.state_dict()))
    meta = dict(sched.trace.meta)
    tail = drive(sched, [1.0] * 3)
    opt2 = make_optimizer()
    opt2.load_state_dict(opt_saved)
    sched2 = GreedyLR(opt2, warmup=10, min_lr=0.05, max_lr=1.0, **CONFIG)
    sched2.load_state_dict(saved)
    assert sched2.trace.meta["base_lrs"] == meta["base_lrs"]
    assert opt2.param_groups[0]["initial_lr"] == 0.1
    assert drive(sched2, [1.0] * 3) == tail
    # the same optimizer, no load: the first step says why it cannot start from 0.02
    opt3 = make_optimizer()
    opt3.load_state_dict(opt_saved)
    sched3 = GreedyLR(opt3, warmup=10, min_lr=0.05, max_lr=1.0, **CONFIG)
    for call in (lambda: drive(sched3, [1.0]), lambda: sched3.observe(1.0),
                 lambda: sched3.observe_eval(1.0)):
        with pytest.raises(ValueError, match=r"initial lr 0.02\d* is outside its bounds .*carry "
                                             r"an initial_lr other than their lr"):
            call()


def test_resume_with_the_optimizer_loaded_first_keeps_its_trace_file(tmp_path):
    # the constructor's meta came from the restored lr: the trace file of the run it
    # resumes would have been started anew, its rows lost
    path = tmp_path / "run.jsonl"
    from greedylr import Trace

    opt = make_optimizer()
    sched = GreedyLR(opt, trace=Trace(sinks=[str(path)], flush_every=1), **CONFIG)
    drive(sched, [1.0, 2.0, 2.0])
    saved, opt_saved = copy.deepcopy((sched.state_dict(), opt.state_dict()))
    sched.trace.close()
    opt2 = make_optimizer()
    opt2.load_state_dict(opt_saved)
    sched2 = GreedyLR(opt2, trace=Trace(sinks=[str(path)], flush_every=1), **CONFIG)
    sched2.load_state_dict(saved)
    drive(sched2, [2.0])
    sched2.trace.close()
    rows = [line for line in path.read_text().splitlines() if line.startswith('{"step"')]
    assert [json.loads(row)["step"] for row in rows] == [1, 2, 3, 4]


def _warmup(opt):
    return torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5)


def test_chained_scheduler_with_a_warmup_is_refused():
    opt = make_optimizer()
    chained = torch.optim.lr_scheduler.ChainedScheduler([_warmup(opt), GreedyLR(opt)])
    opt.step()
    with pytest.raises(RuntimeError, match=r"changed outside GreedyLR.*use GreedyLR\s+alone "
                                           r"with warmup=N"):
        chained.step()


def test_greedylr_built_after_a_linearlr_refuses_at_its_first_step():
    opt = make_optimizer()
    warm = _warmup(opt)
    sched = GreedyLR(opt)
    opt.step()
    warm.step()
    with pytest.raises(RuntimeError, match="group 0 was changed outside GreedyLR"):
        sched.step(1.0)


def test_sequential_lr_is_refused_before_warmup_losses_leak():
    opt = make_optimizer()
    sched = GreedyLR(opt)
    torch.optim.lr_scheduler.SequentialLR(opt, [_warmup(opt), sched], milestones=[5])
    opt.step()
    with pytest.raises(RuntimeError, match="warmup=N"):
        sched.observe(1.0)  # the loss of a warmup step


def test_sequential_lr_switching_to_greedylr_is_refused_in_device_mode():
    opt = make_optimizer(tensor_lr=True)
    sched = GreedyLR(opt, device_mode=True)
    seq = torch.optim.lr_scheduler.SequentialLR(opt, [_warmup(opt), sched], milestones=[2])
    with pytest.raises(RuntimeError, match="cannot be switched to by SequentialLR"):
        for _ in range(3):
            opt.step()
            seq.step()


@pytest.mark.parametrize("device_mode", [False, True])
def test_greedylr_first_in_a_torch_container_is_refused_as_chained(device_mode: bool):
    """Held first by SequentialLR (stepped in its constructor) or ChainedScheduler, GreedyLR
    is stepped without a loss: the error names the chaining, not the missing loss (which
    sent users to observe(), and from there to the chaining error a few steps later)."""
    opt = make_optimizer(tensor_lr=device_mode)
    with pytest.raises(RuntimeError, match=r"stepped by SequentialLR.*warmup=N"):
        torch.optim.lr_scheduler.SequentialLR(
            opt, [GreedyLR(opt, device_mode=device_mode), _warmup(opt)], milestones=[3])
    opt = make_optimizer(tensor_lr=device_mode)
    chained = torch.optim.lr_scheduler.ChainedScheduler(
        [GreedyLR(opt, device_mode=device_mode), torch.optim.lr_scheduler.ExponentialLR(opt, 0.9)])
    opt.step()
    with pytest.raises(RuntimeError, match=r"stepped by ChainedScheduler.*warmup=N"):
        chained.step()


def test_a_step_without_a_loss_still_asks_for_the_loss():
    opt = make_optimizer()
    sched = GreedyLR(opt)
    opt.step()
    with pytest.raises(TypeError, match="needs the loss"):
        sched.step()


class _PassingOn(torch.optim.lr_scheduler.LRScheduler):
    """A user's own scheduler that hands the loss on to GreedyLR: no chaining container."""

    def __init__(self, inner: GreedyLR) -> None:
        self.inner = inner

    def step(self, loss=None):  # type: ignore[override]
        self.inner.step(loss)


def test_a_users_own_wrapper_is_not_taken_for_a_chaining_container():
    """Only SequentialLR and ChainedScheduler get the chaining error: a wrapper's repeated
    step without an optimizer step is still ignored, and one without a loss still asks
    for the loss."""
    opt = make_optimizer()
    wrapper = _PassingOn(GreedyLR(opt))
    opt.step()
    wrapper.step(1.0)
    wrapper.step()  # no optimizer step since the last: ignored, as without the wrapper
    opt.step()
    with pytest.raises(TypeError, match="needs the loss"):
        wrapper.step()


@pytest.mark.parametrize("eval_patience", [None, 0])
@pytest.mark.parametrize("tensor_lr", [False, True])
def test_observe_eval_refuses_an_lr_written_outside_greedylr(eval_patience, tensor_lr):
    # observe_eval wrote the rule's LRs back over the foreign write, and the next step
    # found its own LR again: the write was undone without a word (float mode; device
    # mode makes no such check, as documented)
    opt = make_optimizer(tensor_lr=tensor_lr)
    sched = GreedyLR(opt, eval_patience=eval_patience, device_mode=False)
    drive(sched, [1.0])
    if tensor_lr:
        opt.param_groups[0]["lr"].fill_(0.05)
    else:
        opt.param_groups[0]["lr"] = 0.05
    with pytest.raises(RuntimeError, match="group 0 was changed outside GreedyLR"):
        sched.observe_eval(0.7)
    assert float(opt.param_groups[0]["lr"]) == pytest.approx(0.05)  # left as found


@pytest.mark.parametrize("call", ["step", "observe", "observe_eval"])
def test_a_foreign_write_is_refused_also_when_a_group_was_added_since(call):
    # the new group's scheduling marked every LR it found as GreedyLR's own, the foreign
    # one included, and the call then overwrote it
    opt = make_optimizer()
    sched = GreedyLR(opt, **CONFIG)
    drive(sched, [1.0])
    opt.param_groups[0]["lr"] = 0.05
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.3})
    opt.step()
    with pytest.raises(RuntimeError, match="group 0 was changed outside GreedyLR"):
        {"step": sched.step, "observe": sched.observe, "observe_eval": sched.observe_eval}[call](
            0.5)
    assert opt.param_groups[0]["lr"] == 0.05


def test_greedylr_alone_is_not_refused_after_its_own_writes_and_a_resume():
    opt = make_optimizer((0.1, 0.2))
    sched = GreedyLR(opt, **CONFIG)
    drive(sched, [1.0, 2.0])
    saved, opt_saved = sched.state_dict(), opt.state_dict()
    opt2 = make_optimizer((0.1, 0.2))
    sched2 = GreedyLR(opt2, **CONFIG)
    opt2.load_state_dict(opt_saved)  # writes the LRs: the scheduler's load follows
    sched2.load_state_dict(saved)
    assert drive(sched2, [3.0]) == drive(sched, [3.0])


# -- warnings -----------------------------------------------------------------------------


def test_step_before_optimizer_step_warns_once():
    opt = make_optimizer()
    sched = GreedyLR(opt)
    with pytest.warns(UserWarning, match=r"GreedyLR.step\(\)` before `optimizer.step\(\)`"):
        sched.step(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step(1.0)
        opt.step()
        sched.step(1.0)


def test_an_lr_of_zero_warns_at_construction():
    with pytest.warns(UserWarning, match=r"group\(s\) \[1\] start with lr 0.*stay at 0"):
        GreedyLR(make_optimizer((0.1, 0.0)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GreedyLR(make_optimizer((0.1, 0.2)))


# -- load_state_dict validates everything first --------------------------------------------


@pytest.mark.parametrize("key", ["last_epoch", "_step_count", "_last_lr", "base_lrs", "pending"])
def test_a_state_dict_with_a_missing_key_changes_nothing(key):
    source = GreedyLR(make_optimizer(), **CONFIG)
    drive(source, [1.0, 0.5, 0.4])
    saved = source.state_dict()
    del saved[key]
    target = GreedyLR(make_optimizer(), **CONFIG)
    before = target.state_dict()
    with pytest.raises(ValueError, match=rf"has no \['{key}'\]; nothing was loaded"):
        target.load_state_dict(saved)
    assert target.state_dict() == before
    assert target.optimizer.param_groups[0]["lr"] == 0.1


def test_a_malformed_rule_entry_is_a_clear_error():
    saved = GreedyLR(make_optimizer()).state_dict()
    del saved["rule"]["lrs"]
    with pytest.raises(ValueError, match="malformed 'rule' entry"):
        GreedyLR(make_optimizer()).load_state_dict(saved)


# -- config values and losses ----------------------------------------------------------------


@pytest.mark.parametrize("make", [np.float32, np.float64, torch.tensor],
                         ids=["np.float32", "np.float64", "tensor"])
def test_numpy_scalars_and_0d_tensors_are_numbers_in_the_config(make):
    config = GreedyConfig(factor=make(0.5), patience=np.int64(3), threshold=make(0.0),
                          min_lr=[make(0.01)], window=torch.tensor(7))
    assert type(config.factor) is float and config.factor == 0.5
    assert type(config.patience) is int and type(config.window) is int
    assert config.min_lr == (pytest.approx(0.01),)
    # the config of a checkpoint loads with weights_only=True
    buffer = io.BytesIO()
    torch.save(config.to_dict(), buffer)
    buffer.seek(0)
    assert GreedyConfig.from_dict(torch.load(buffer, weights_only=True)) == config


def test_a_float_numpy_value_for_an_int_knob_is_refused_as_such():
    with pytest.raises(ValueError, match=r"patience must be an int >= 0, got 3\.0"):
        GreedyConfig(patience=np.float64(3.0))


def test_a_relative_threshold_of_one_or_more_is_refused():
    with pytest.raises(ValueError, match=r"threshold must be < 1 with threshold_mode='rel'"):
        GreedyConfig(threshold=1.0)
    assert GreedyConfig(threshold=2.0, threshold_mode="abs").threshold == 2.0


def test_a_one_element_numpy_array_is_a_loss():
    opt = make_optimizer()
    sched = GreedyLR(opt, **CONFIG)
    for loss in (np.array([0.5]), np.array([[0.25]], dtype=np.float32)):
        opt.step()
        sched.step(loss)
    assert sched.trace.losses.tolist() == [0.5, 0.25]
    opt.step()
    with pytest.raises(TypeError, match="got array"):
        sched.step(np.array(["x"]))


# -- transformers' call form ----------------------------------------------------------------


def test_from_transformers_accepts_step_metrics_epoch():
    opt = make_optimizer()
    sched = GreedyLR.from_transformers(opt, patience=0, factor=0.5)
    opt.step()
    sched.step(1.0, 3)
    opt.step()
    sched.step(metrics=0.5, epoch=4)
    opt.step()
    sched.step(loss=0.25)
    assert sched.state.step == 3 and sched.last_epoch == 5
    assert isinstance(sched, GreedyLR)
    assert pickle.loads(pickle.dumps(sched)).last_epoch == 5
    with pytest.raises(TypeError, match="both loss and metrics"):
        sched.step(1.0, metrics=1.0)


def test_observe_eval_in_device_mode_writes_into_the_state_a_captured_step_reads():
    # a CUDA graph captured around step() replays on the state's tensors of that moment,
    # as load_state_dict keeps them: a held-out cut and its block must land there too
    opt = make_optimizer(tensor_lr=True)
    sched = GreedyLR(opt, device_mode=True, **CONFIG)
    drive(sched, [1.0])
    captured = list(sched._device_state)
    sched.observe_eval(1.0)
    sched.observe_eval(2.0)  # worse: a cut, and increases blocked
    assert all(a is b for a, b in zip(captured, sched._device_state, strict=True))
    assert bool(sched._device_state.eval_block.all())
    assert float(sched.get_last_lr()[0]) == pytest.approx(0.2 * 0.7)  # eval_factor's cut


def test_groups_added_together_with_one_refused_leave_the_state_as_it_was():
    opt = make_optimizer()
    sched = GreedyLR(opt, max_lr=1.0, **CONFIG)
    drive(sched, [1.0])
    for lr in (0.05, 5.0):  # the second above its upper bound
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr})
    for _ in range(2):
        with pytest.raises(ValueError, match="cannot schedule parameter group 2"):
            drive(sched, [1.0])
    assert len(sched.state.base_lrs) == len(sched.base_lrs) == 1
    opt.param_groups[2]["lr"] = opt.param_groups[2]["initial_lr"] = 0.5  # fixed
    drive(sched, [1.0])
    assert len(sched.state.base_lrs) == len(sched.get_last_lr()) == 3


def test_a_new_group_that_per_group_bounds_cannot_cover_is_refused_naming_the_group():
    opt = make_optimizer()
    sched = GreedyLR(opt, min_lr=[0.01], max_lr=[1.0], **CONFIG)
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.05})
    with pytest.raises(ValueError, match=r"cannot schedule parameter group 1, added by "
                                         r"optimizer.add_param_group: min_lr has 1 values"):
        drive(sched, [1.0])


@pytest.mark.parametrize("device_mode", [False, True])
def test_a_bad_held_out_value_is_named_as_such(device_mode):
    sched = GreedyLR(make_optimizer(tensor_lr=device_mode), device_mode=device_mode, **CONFIG)
    drive(sched, [1.0])
    with pytest.raises(TypeError, match="the held-out value must be a number"):
        sched.observe_eval("x")
    with pytest.raises(ValueError, match="the held-out value must be a scalar"):
        sched.observe_eval(torch.ones(2))


@pytest.mark.parametrize("device_mode", [False, True])
def test_a_held_out_value_under_mode_max_with_the_default_eval_mode_warns_once(
        device_mode, caplog):
    # an accuracy fed to observe_eval with eval_mode left at "min": each improvement cut
    # the LR, without a word
    opt = make_optimizer(tensor_lr=device_mode)
    sched = GreedyLR(opt, device_mode=device_mode, mode="max", **CONFIG)
    drive(sched, [0.1, 0.2])
    with caplog.at_level(logging.WARNING, logger="greedylr"):
        for accuracy in (0.5, 0.6, 0.7):
            sched.observe_eval(accuracy)
    assert caplog.text.count("mode='max' with eval_mode='min'") == 1
    assert "pass eval_mode='max'" in caplog.text
    caplog.clear()
    for knobs in ({"eval_mode": "max"}, {"eval_patience": None}):  # said, or ignored
        other = GreedyLR(make_optimizer(tensor_lr=device_mode), device_mode=device_mode,
                         mode="max", **knobs, **CONFIG)
        drive(other, [0.1])
        with caplog.at_level(logging.WARNING, logger="greedylr"):
            other.observe_eval(0.5)
    mode_min = GreedyLR(make_optimizer(), **CONFIG)
    drive(mode_min, [1.0])
    with caplog.at_level(logging.WARNING, logger="greedylr"):
        mode_min.observe_eval(0.5)
    assert "eval_mode" not in caplog.text

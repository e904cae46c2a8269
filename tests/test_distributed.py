"""Distributed agreement: a real 2-process gloo group on CPU, no mocks.

Rank 0 sees a falling loss and rank 1 a flat one. With ``sync_ranks`` (the default)
both ranks must hold the same LR at every step, equal to one process fed the mean
loss; without it they must drift apart (the control that shows the test can fail).
"""

from __future__ import annotations

import faulthandler
import functools
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from greedylr import GreedyLR, distributed
from greedylr.distributed import (
    RanksDisagree,
    is_distributed,
    mean_across_ranks,
    mean_where_given,
)
from spawning import RANK_CONFIG as CONFIG
from spawning import gloo_group, spawn_ranks

WORLD = 2
WORKER_TIMEOUT = 200  # seconds
STEPS = 30


def _losses(rank: int) -> list[float]:
    """Rank 0: a falling loss with a plateau; rank 1: flat with a little noise."""
    if rank == 0:
        return [2.0 * 0.9**i if i < 18 else 2.0 * 0.9**18 for i in range(STEPS)]
    noise = torch.Generator().manual_seed(1)
    return [1.0 + 1e-3 * float(torch.rand((), generator=noise)) for _ in range(STEPS)]


def _trajectory(losses: list[float], **kwargs: object) -> list[float]:
    """The LR after each step of a single process fed ``losses``."""
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = GreedyLR(opt, **CONFIG, **kwargs)
    lrs = []
    for loss in losses:
        opt.step()
        sched.step(loss)
        lrs.append(sched.get_last_lr()[0])
    return lrs


def _train(rank: int) -> dict[str, object]:
    """The rank's part of the test; returns plain data only.

    Everything that holds the process group (the DDP model above all) is created here,
    so that the caller's ``gloo_group`` collects it (DDP sits in a reference cycle) before
    it destroys the group: a DDP reducer that outlived its gloo group hung the process at
    exit about one run in four.
    """
    result: dict[str, object] = {"is_distributed": is_distributed()}
    # The bare helper: float and tensor paths, SUM then divide on gloo.
    result["mean_float"] = mean_across_ranks(float(rank + 1))
    mean_tensor = mean_across_ranks(torch.tensor(rank + 1.0, dtype=torch.float64))
    result["mean_tensor"] = [float(mean_tensor), str(mean_tensor.dtype)]
    result["mean_bf16"] = float(mean_across_ranks(torch.tensor(rank + 1.0, dtype=torch.bfloat16)))

    torch.manual_seed(0)  # same initial weights on both ranks, as DDP requires
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(3, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    synced = GreedyLR(opt, **CONFIG)
    # A second optimizer and an unsynced scheduler: the control run.
    control_opt = torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), lr=0.1)
    control = GreedyLR(control_opt, sync_ranks=False, **CONFIG)
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(rank))
    lrs, control_lrs = [], []
    for i, loss in enumerate(_losses(rank)):
        model(x).tanh().mean().backward()  # bounded gradients at any LR
        opt.step()
        opt.zero_grad()
        # Alternate between a float and a 0-d tensor: both paths must agree.
        synced.step(loss if i % 2 else torch.tensor(loss))
        synced.step(loss)  # a repeated call (as Accelerate makes): ignored
        lrs.append(synced.get_last_lr()[0])
        control_opt.step()
        control.step(loss)
        control_lrs.append(control.get_last_lr()[0])
    result["lrs"] = lrs
    result["control_lrs"] = control_lrs
    result["decisions"] = synced.state.step
    result["params"] = [p.detach().double().flatten().tolist() for p in model.parameters()]
    return result


# -- the held-out value, and ranks that are not in the same call ------------------------

EVAL_LOSSES = [1.0, 0.9, 0.8]


def _eval_values(rank: int) -> list[float]:
    """Each rank's held-out values (a sharded evaluation set): the mean worsens by 12%."""
    return [1.0, 0.95 if rank == 0 else 1.2]


def _held_out(rank: int) -> dict[str, object]:
    """The rank's part of the held-out test; plain data only (see :func:`_train`)."""
    result: dict[str, object] = {}
    for device_mode in (False, True):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=torch.tensor(0.125))
        sched = GreedyLR(opt, device_mode=device_mode, **CONFIG)
        for loss in EVAL_LOSSES:
            opt.step()
            sched.step(loss)
        for value in _eval_values(rank):
            sched.observe_eval(torch.tensor(value) if device_mode else value)
        opt.step()
        sched.step(0.7)
        result[f"eval_device={device_mode}"] = [
            float(sched.get_last_lr()[0]), [e.kind for e in sched.events if "eval" in e.kind]]
    # observe_eval on rank 0 only: its all-reduce met rank 1's step; both raise
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.125)
    sched = GreedyLR(opt, **CONFIG)
    opt.step()
    try:
        if rank == 0:
            sched.observe_eval(1.0)
        sched.step(1.0)
        result["rank0_only"] = "no error"
    except RanksDisagree as exc:
        result["rank0_only"] = str(exc)
    # a rank with no loss: it raises its own error, the other is told (no hang)
    opt.step()
    try:
        sched.step(1.0 if rank == 0 else None)
        result["no_loss"] = "no error"
    except (RanksDisagree, TypeError) as exc:
        result["no_loss"] = f"{type(exc).__name__}: {exc}"
    opt.step()
    sched.step(1.0)  # every rank goes on together
    result["steps_after"] = sched.state.step
    # a metric only some ranks hold (Lightning's rank_zero_only logging): their mean
    result["where_given"] = [mean_where_given(2.0 if rank == 0 else None),
                             mean_where_given(None), mean_where_given(float(rank))]
    return result


def _refused_then_retried(rank: int) -> dict[str, object]:
    """on_nonfinite="raise" with a NaN on rank 1 only: the mean is NaN on both, every rank
    raises, and each retry (a collective again) is a normal step on every rank."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    sched = GreedyLR(opt, on_nonfinite="raise", warmup=4, smoothing="none")
    opt.step()
    sched.step(1.0)
    opt.step()
    try:
        sched.step(math.nan if rank == 1 else 0.5)
        raised = "no error"
    except FloatingPointError as exc:
        raised = str(exc)
    counts = [sched.state.step, sched.last_epoch, len(sched.trace.rows())]
    sched.step(0.9)  # the retry, on every rank
    lrs = [sched.get_last_lr()[0]]
    for loss in (0.8, 0.7):
        opt.step()
        sched.step(loss)
        lrs.append(sched.get_last_lr()[0])
    return {"raised": raised, "counts": counts, "lrs": lrs, "steps": sched.state.step}


ALIKE_LOSSES = [1.0, 0.8, 0.6, 0.7, 0.8, 0.9, 0.5, 0.4, 0.3, 0.35, 0.4, 0.45]


def _step(sched: GreedyLR, loss: float = 1.0) -> GreedyLR:
    sched.optimizer.step()
    sched.step(loss)
    return sched


def _differs(sched: GreedyLR | Callable[[], GreedyLR]) -> str:
    """What building ``sched`` (given a callable) and a step of it raised, or "no
    error"."""
    try:
        _step(sched if isinstance(sched, GreedyLR) else sched())
        return "no error"
    except RanksDisagree as exc:
        return str(exc)


def _opt(lr: float, device_mode: bool) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))],
                           lr=torch.tensor(lr, dtype=torch.float64) if device_mode else lr)


def _alike(rank: int) -> dict[str, object]:
    """Ranks whose GreedyLR differ (configuration, base LRs, a budget set or a state
    loaded on one rank): every rank raises where it can tell; changes made on every rank
    alike (a group added, a budget, a resume) go on as one process."""
    result: dict[str, object] = {}
    for device_mode in (False, True):
        mode = f"device={device_mode}"

        def make(lr: float = 0.1, dm: bool = device_mode, **knobs: Any) -> GreedyLR:
            return GreedyLR(_opt(lr, dm), device_mode=dm, **{**CONFIG, **knobs})

        result[f"total_steps {mode}"] = _differs(
            functools.partial(make, total_steps=10 if rank == 0 else 20))
        result[f"factor {mode}"] = _differs(functools.partial(make, factor=0.5 + 0.1 * rank))
        result[f"base_lrs {mode}"] = _differs(functools.partial(make, lr=0.1 * (rank + 1)))
        # a state dict of another run loaded on rank 1 only: other base LRs
        saved = _step(make(lr=0.2)).state_dict()
        sched = _step(make())
        if rank == 1:
            sched.load_state_dict(saved)
        result[f"resumed apart {mode}"] = _differs(sched)
        # the budget set on rank 0 only, mid-run
        sched = _step(_step(make(total_steps=100)))
        if rank == 0:
            sched.set_total_steps(200)
        result[f"budget apart {mode}"] = _differs(sched)
        result[f"budget apart steps {mode}"] = sched.state.step
        # a device-mode GreedyLR built on rank 0 only: its check meets rank 1's step
        if device_mode:
            sched = _step(make(dm=False))
            result["built on one rank"] = _differs(
                functools.partial(make, dm=True) if rank == 0 else sched)

        # every change made on every rank alike: no error, the LRs of one process
        sched = make(total_steps=100)
        lrs = []
        for i, loss in enumerate(ALIKE_LOSSES):
            if i == 2:
                sched.optimizer.add_param_group(
                    {"params": [torch.nn.Parameter(torch.zeros(1))],
                     "lr": torch.tensor(0.3, dtype=torch.float64) if device_mode else 0.3})
            if i == 5:
                sched.set_total_steps(50)
            if i == 8:
                state = sched.state_dict()
                sched = make(total_steps=50)
                sched.optimizer.add_param_group(
                    {"params": [torch.nn.Parameter(torch.zeros(1))],
                     "lr": torch.tensor(0.3, dtype=torch.float64) if device_mode else 0.3})
                sched.load_state_dict(state)
            _step(sched, loss + 0.1 * rank)  # rank-local losses: their mean decides
            lrs.append([float(lr) for lr in sched.get_last_lr()])
        result[f"alike {mode}"] = lrs
    return result


def _worker(rank: int, init_file: str, out_dir: str, part: str) -> None:
    """One rank of a test: ``_train`` or ``_held_out`` in a gloo group, its result written
    to ``rank{rank}.json``."""
    # A rank that hangs prints where, then exits: the parent's join() then reports it.
    faulthandler.dump_traceback_later(WORKER_TIMEOUT, exit=True)
    with gloo_group(rank, init_file, WORLD):
        result = {"train": _train, "held_out": _held_out,
                  "refused": _refused_then_retried, "alike": _alike}[part](rank)
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    faulthandler.cancel_dump_traceback_later()


def _ranks_results(tmp_path: Path, part: str) -> list[Any]:
    """Run ``part`` of :func:`_worker` on ``WORLD`` gloo ranks; each rank's result."""
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    spawn_ranks(_worker, (str(tmp_path / "init"), str(tmp_path), part), timeout=240,
                nprocs=WORLD)
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]


@pytest.mark.timeout(300)
def test_two_gloo_ranks_judge_the_mean_held_out_value_and_say_when_out_of_step(
        tmp_path: Path) -> None:
    r0, r1 = _ranks_results(tmp_path, "held_out")
    # each rank judged its own held-out value before: LR 0.25 on rank 0, 0.175 on rank 1
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=torch.tensor(0.125))
    one = GreedyLR(opt, **CONFIG)
    for loss in EVAL_LOSSES:
        opt.step()
        one.step(loss)
    for a, b in zip(_eval_values(0), _eval_values(1), strict=True):
        one.observe_eval((a + b) / 2)
    opt.step()
    one.step(0.7)
    want = [float(one.get_last_lr()[0]), [e.kind for e in one.events if "eval" in e.kind]]
    assert want[1] == ["eval_decrease"]  # the mean worsened: a cut
    for r in (r0, r1):
        assert r["eval_device=False"] == r["eval_device=True"] == want
    assert "observe_eval: 1 of 2 ranks were in observe_eval, the others in step" in (
        r0["rank0_only"])
    assert "step: 1 of 2 ranks were in observe_eval, the others in step" in r1["rank0_only"]
    assert r0["no_loss"].startswith("RanksDisagree: GreedyLR.step: 1 of 2 ranks had no value")
    assert r1["no_loss"].startswith("TypeError: GreedyLR.step() needs the loss")
    assert r0["steps_after"] == r1["steps_after"] == 1
    assert r0["where_given"] == r1["where_given"] == [2.0, None, 0.5]


def test_mean_across_ranks_is_identity_without_a_group() -> None:
    assert not is_distributed()
    assert mean_across_ranks(1.25) == 1.25
    t = torch.tensor(3.0)
    assert mean_across_ranks(t) is t


# Generous: a hang is what this catches, and a shared CI box can be slow to spawn.
@pytest.mark.timeout(300)
def test_two_gloo_ranks_make_the_same_decision(tmp_path: Path) -> None:
    r0, r1 = _ranks_results(tmp_path, "train")

    assert r0["is_distributed"] and r1["is_distributed"]
    for r in (r0, r1):
        assert r["mean_float"] == 1.5
        assert r["mean_tensor"] == [1.5, "torch.float64"]
        assert r["mean_bf16"] == 1.5
        assert r["decisions"] == STEPS  # the repeated calls were ignored

    # The same LR on both ranks at every step ...
    assert r0["lrs"] == r1["lrs"]
    # ... equal to a single process fed the mean loss (the same float64 arithmetic).
    mean = [(a + b) / 2 for a, b in zip(_losses(0), _losses(1), strict=True)]
    assert r0["lrs"] == _trajectory(mean)
    assert len(set(r0["lrs"])) > 2, "the LR never moved: the test would prove nothing"
    # Control: deciding on the local loss drifts apart, each rank on its own trajectory.
    assert r0["control_lrs"] == _trajectory(_losses(0))
    assert r1["control_lrs"] == _trajectory(_losses(1))
    assert r0["control_lrs"] != r1["control_lrs"]
    # The replicas stayed replicas.
    assert r0["params"] == r1["params"]
    assert all(math.isfinite(v) for p in r0["params"] for v in p)


@pytest.mark.timeout(300)
def test_two_gloo_ranks_raise_together_for_a_nonfinite_loss_and_retry_as_one_step(
        tmp_path: Path) -> None:
    # with on_nonfinite="raise" the refused loss counted as a step on every rank and each
    # rank's retry was ignored as a repeated call: the warmup ran a step ahead
    r0, r1 = _ranks_results(tmp_path, "refused")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    one = GreedyLR(opt, on_nonfinite="raise", warmup=4, smoothing="none")
    want = []
    for loss in (1.0, 0.9, 0.8, 0.7):
        opt.step()
        one.step(loss)
        want.append(one.get_last_lr()[0])
    for r in (r0, r1):
        assert r["raised"] == "non-finite loss nan at step 2"
        assert r["counts"] == [1, 1, 1]  # nothing counted the refused step
        assert r["lrs"] == want[1:]
        assert r["steps"] == 4


@pytest.mark.timeout(300)
def test_two_gloo_ranks_whose_greedylr_differ_raise_naming_what_differs(tmp_path: Path) -> None:
    # a total_steps, a factor or base LRs that differ between ranks gave each rank its own
    # LR from the same mean loss (total_steps 10 and 20: the same LRs until the cooldown
    # of rank 0 began, then apart), without a word
    r0, r1 = _ranks_results(tmp_path, "alike")
    for mode in ("device=False", "device=True"):
        # device mode compares the ranks' digests when it is built (a read there, none in
        # its steps); float mode in every step's all-reduce
        call = "__init__" if mode == "device=True" else "step"
        differ = f"GreedyLR.{call}: the GreedyLR configuration or base LRs differ across ranks: "
        for r in (r0, r1):
            assert r[f"total_steps {mode}"].startswith(differ + "the configuration "
                                                      "(total_steps).")
            assert r[f"factor {mode}"].startswith(differ + "the configuration (factor).")
            assert r[f"base_lrs {mode}"].startswith(
                differ + "the base LRs (each parameter group's initial lr).")
        # a state loaded, or a budget set, on one rank only, mid-run: float mode reads
        # every verdict, both ranks raise; device mode reads it at the first step after
        # the rank's own changed, so the rank that changed raises and the other, which
        # has no read to make, takes a NaN (skipped) step
        differ = "GreedyLR.step: the GreedyLR configuration or base LRs differ across ranks: "
        assert r1[f"resumed apart {mode}"].startswith(differ + "the base LRs")
        assert r0[f"resumed apart {mode}"] == (
            "no error" if mode == "device=True" else r0[f"resumed apart {mode}"])
        if mode == "device=False":
            assert r0[f"resumed apart {mode}"].startswith(differ + "the base LRs")
        assert r0[f"budget apart {mode}"].startswith(differ + "the configuration "
                                                     "(total_steps).")
        assert r0[f"budget apart steps {mode}"] == 2
        if mode == "device=False":
            assert r1[f"budget apart {mode}"].startswith(differ + "the configuration "
                                                         "(total_steps).")
            assert r1[f"budget apart steps {mode}"] == 2
        else:
            assert r1[f"budget apart {mode}"] == "no error"
            assert r1[f"budget apart steps {mode}"] == 3
    assert r0["built on one rank"].startswith(
        "GreedyLR.__init__: of 2 ranks, 1 were building a device-mode GreedyLR (which checks "
        "that every rank's is the same), 0 in observe_eval and 1 in step")
    assert r1["built on one rank"].startswith("GreedyLR.step: of 2 ranks, 1 were building")
    # changes made alike on every rank: the LRs of one process fed the mean loss
    for mode in ("device=False", "device=True"):
        assert r0[f"alike {mode}"] == r1[f"alike {mode}"]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    one = GreedyLR(opt, total_steps=100, **CONFIG)
    want = []
    for i, loss in enumerate(ALIKE_LOSSES):
        if i == 2:
            opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.3})
        if i == 5:
            one.set_total_steps(50)
        opt.step()
        one.step(loss + 0.05)
        want.append(list(one.get_last_lr()))
    assert r0["alike device=False"] == want
    assert r0["alike device=True"] == want  # float64 LR tensors: bit for bit
    assert len({tuple(lrs) for lrs in want}) > 3, "the LR never moved: the test proves nothing"


def _rank_sums(ranks: list[tuple[int, int]]) -> list[float]:
    """The all-reduce's sums of one digest ``d`` and of ``d*d``, over ranks given as
    ``(d, how many ranks have it)``."""
    return [float(sum(d * n for d, n in ranks)), float(sum(d * d * n for d, n in ranks))]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_digest_verdict_is_exact_on_the_host_and_the_device(dtype: torch.dtype) -> None:
    # ranks whose digests have the same sum but differ (4 + 6 = 5 + 5) are told apart by
    # the squares, exactly, up to the largest digests at the largest world documented
    top = 0xFFFF if dtype == torch.float64 else 0xFF
    for world in (2, 3, 2**20) if dtype == torch.float64 else (2, 3, 255):
        cases = [
            ([(top, world)], True),
            ([(0, world)], True),
            ([(top, world - 1), (top - 1, 1)], False),
            ([(top, 1), (top - 1, world - 1)], False),
            ([(top - 1, 1), (top - 3, 1), (top - 2, world - 2)]
             if world >= 3 else [(top - 1, 1), (top - 3, 1)], False),  # the same sum at 3+
        ]
        for ranks, alike in cases:
            sums = _rank_sums(ranks)
            assert (distributed._disagreeing(sums, world, [0]) == []) == alike, (world, ranks)
            on_device = distributed._alike_on_device(torch.tensor(sums, dtype=dtype), world)
            assert bool(on_device) == alike, (world, ranks, dtype)


def test_a_digest_tells_each_knob_and_the_base_lrs_apart() -> None:
    from greedylr.rule import GreedyConfig

    base = distributed.Digest(GreedyConfig().to_dict(), [0.1, 0.01])
    assert distributed.Digest(GreedyConfig().to_dict(), [0.1, 0.01]).values == base.values
    budget = distributed.Digest(GreedyConfig(total_steps=20).to_dict(), [0.1, 0.01])
    lrs = distributed.Digest(GreedyConfig().to_dict(), [0.1, 0.02])
    groups = distributed.Digest(GreedyConfig().to_dict(), [0.1, 0.01, 0.01])
    knob = distributed._DECIDING + distributed._KNOBS.index("total_steps")
    changed = [i for i, (a, b) in enumerate(zip(base.values, budget.values, strict=True))
               if a != b]
    assert changed == [*distributed._CONFIG, knob]
    assert [i for i, (a, b) in enumerate(zip(base.values, lrs.values, strict=True))
            if a != b] == list(distributed._BASE_LRS)
    assert groups.values[distributed._GROUPS] == 3
    # nothing to check (a caller of agreed_mean without a digest) agrees with itself
    assert distributed.Digest().values == (0,) * distributed._PAIRS
    assert len(base.parts()) == distributed._SIZE - distributed._HEAD

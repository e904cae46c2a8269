"""GreedyLR under ``torch.compile``: compiled once, the eager LRs, no recompilation.

Three uses:

* ``compile_rule=True``: the rule alone, compiled with inductor (C++ on this CPU), as an
  eager GPU loop would use it. Compiled once for the module (tens of seconds on a
  loaded 2-core machine; inductor's cache makes a rerun faster); 200 steps with NaN,
  inf and bound-hitting losses must match the eager rule bit for bit.
* the whole training step compiled, the rule traced into it (device mode);
* float mode with a tensor LR and a compiled optimizer step.

Whether a graph is recompiled is decided by dynamo's guards, before any backend runs,
so the last two use the ``aot_eager`` backend (dynamo + AOT autograd, no code
generation): it sees every recompilation inductor would, in seconds.
``benchmarks/gpu_check.py`` runs the whole step with inductor on a GPU.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from greedylr import GreedyLR, rule, tensor_rule

# The oldest torch these guarantees are verified on (CI runs 2.13 and 2.14). Older
# dynamo (seen on 2.2) recompiles the step as the LR changes and cannot trace the rule's
# dict.update.
pytestmark = pytest.mark.skipif(
    tuple(int(part) for part in torch.__version__.split(".")[:2]) < (2, 13),
    reason=f"compiled device mode is verified from torch 2.13; this is {torch.__version__}",
)

STEPS = 200
WARMUP = 5  # dynamo marks the changing host counters dynamic after one recompile


def _compiled_counts() -> tuple[int, int]:
    return counters["frames"]["total"], counters["stats"]["unique_graphs"]


@pytest.mark.timeout(300)
def _fresh_model_and_tensor_lr_sgd() -> tuple[torch.nn.Linear, torch.optim.SGD]:
    """A seeded linear model and SGD with a tensor LR of 0.01, dynamo's caches and counters
    cleared. SGD without foreach takes a tensor lr on the CPU; on a GPU use fused or
    capturable Adam."""
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    return model, torch.optim.SGD(model.parameters(), lr=torch.tensor(0.01), foreach=False)


@pytest.mark.parametrize("device_mode", [True, None], ids=["device-mode", "float-mode"])
def test_no_recompilation_after_warmup_over_200_steps(device_mode: bool | None) -> None:
    """The whole training step compiled; on this CPU the automatic choice is float mode,
    whose step runs outside the graph (eagerly) instead of being traced into it."""
    model, opt = _fresh_model_and_tensor_lr_sgd()
    lr = opt.param_groups[0]["lr"]
    # compare="best" on this noisy loss changes the LR at most steps: many LR values
    config = {"patience": 0, "smoothing": "window", "window": 3, "min_lr_ratio": 0.01,
              "max_lr_ratio": 100.0, "compare": "best"}
    sched = GreedyLR(opt, device_mode=device_mode, **config)
    assert sched.device_mode is bool(device_mode)
    x, y = torch.randn(32, 4), torch.randn(32, 1)

    @torch.compile(backend="aot_eager")
    def train_step(inputs: torch.Tensor) -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(model(inputs), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        sched.step(loss)
        return loss.detach()

    noise = torch.randn(STEPS, 32, 4)
    losses, lrs = [], []
    after_warmup = None
    for i in range(STEPS):
        losses.append(train_step(x + 0.3 * noise[i]))
        lrs.append(lr.item())
        if i + 1 == WARMUP:
            after_warmup = _compiled_counts()
    assert after_warmup is not None and after_warmup[0] > 0
    assert _compiled_counts() == after_warmup, "recompiled after warm-up"
    assert opt.param_groups[0]["lr"] is lr  # updated in place, never replaced
    assert len(set(lrs)) > 20  # the LR really moved

    # and the compiled decisions are the float rule's on the same losses
    cfg = rule.GreedyConfig(**config)
    state = rule.init(cfg, [float(torch.tensor(0.01))])
    want = [rule.update(cfg, state, float(v)).lrs[0] for v in losses]
    assert lrs == [float(torch.tensor(v, dtype=torch.float32)) for v in want]
    assert len(sched.events) > 20



# EMA smoothing (the table lookup that crashed inductor), a warmup ramp, cooldown, both
# bounds, resets at the floor, NaN losses decreasing the LR: every branch of the rule
RULE_CONFIG = {"patience": 1, "smoothing": "ema", "window": 4, "warmup": 3, "cooldown": 1,
               "reset_patience": 2, "min_lr_ratio": 0.25, "max_lr_ratio": 4.0,
               "on_nonfinite": "decrease", "factor": 0.7}
RULE_STEPS = 200


def _rule_losses() -> list[float]:
    """Falling, then rising, then noisy: the LR reaches its ceiling, then its floor."""
    rng = random.Random(7)
    losses = [2.0 - 0.03 * i for i in range(50)]  # improving: increases up to max_lr
    losses += [0.5 + 0.02 * i for i in range(50)]  # worsening: decreases to the floor, resets
    losses += [rng.uniform(0.2, 1.0) for _ in range(RULE_STEPS - 100)]
    for i in (4, 20, 60, 61, 120, 170):
        losses[i] = math.nan
    losses[90] = losses[150] = math.inf
    return losses


def _tensor_lr_optimizer(device: str = "cpu") -> torch.optim.SGD:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2, device=device))],
               "lr": torch.tensor(lr, device=device)} for lr in (0.125, 0.03125)]
    return torch.optim.SGD(groups, foreach=False)


def _run(sched: GreedyLR, losses: list[float]) -> list[list[float]]:
    lrs = []
    for loss in losses:
        sched.optimizer.step()
        # float32, as a model's loss, on the LRs' device
        sched.step(torch.tensor(loss, device=sched.optimizer.param_groups[0]["lr"].device))
        lrs.append([float(g["lr"]) for g in sched.optimizer.param_groups])
    return lrs


@pytest.fixture(scope="module")
def inductor_run() -> dict[str, Any]:
    """One inductor compilation for the module: the compiled, eager and float runs."""
    torch._dynamo.reset()
    counters.clear()
    losses = _rule_losses()
    compiled = GreedyLR(_tensor_lr_optimizer(), compile_rule=True, **RULE_CONFIG)
    eager = GreedyLR(_tensor_lr_optimizer(), device_mode=True, **RULE_CONFIG)
    on_host = GreedyLR(_tensor_lr_optimizer(), **RULE_CONFIG)
    graphs = []
    lrs: dict[str, list[list[float]]] = {"compiled": [], "eager": [], "float": []}
    for loss in losses:
        for name, sched in (("compiled", compiled), ("eager", eager), ("float", on_host)):
            lrs[name] += _run(sched, [loss])
        graphs.append(counters["stats"]["unique_graphs"])
    return {"scheds": (compiled, eager, on_host), "lrs": lrs, "graphs": graphs,
            "backend_calls": counters["aot_autograd"]["total"]}


@pytest.mark.timeout(600)
def test_compile_rule_with_inductor_matches_the_eager_rule(inductor_run: dict) -> None:
    compiled, eager, on_host = inductor_run["scheds"]
    assert compiled.device_mode and eager.device_mode and not on_host.device_mode
    lrs = inductor_run["lrs"]
    assert lrs["compiled"] == lrs["eager"] == lrs["float"]
    assert compiled.state == eager.state == on_host.state
    # repr: bit-exact floats, and the NaN loss of a nonfinite event equal to itself
    want = repr([e.to_dict() for e in eager.events])
    assert repr([e.to_dict() for e in compiled.events]) == want
    assert repr([e.to_dict() for e in on_host.events]) == want
    kinds = {e.kind for e in compiled.events}
    assert {"warmup_end", "increase", "decrease", "clipped", "reset", "hold",
            "nonfinite"} <= kinds
    bounds = compiled.state.min_lrs[0], compiled.state.max_lrs[0]
    assert {min(r[0] for r in lrs["compiled"]), max(r[0] for r in lrs["compiled"])} == {
        float(torch.tensor(b, dtype=torch.float32)) for b in bounds}


@pytest.mark.timeout(600)
def test_compile_rule_compiles_once(inductor_run: dict) -> None:
    """One graph from the first step on, NaN and inf losses included; one backend call."""
    assert inductor_run["graphs"] == [1] * RULE_STEPS
    assert inductor_run["backend_calls"] == 1
    assert len({tuple(r) for r in inductor_run["lrs"]["compiled"]}) > 10  # the LR moved


@pytest.mark.timeout(600)
def test_compile_rule_writes_the_same_lr_tensors(inductor_run: dict) -> None:
    compiled = inductor_run["scheds"][0]
    lr_tensors = [g["lr"] for g in compiled.optimizer.param_groups]
    compiled.optimizer.step()
    compiled.step(torch.tensor(0.1))
    assert all(g["lr"] is lr for g, lr in zip(compiled.optimizer.param_groups, lr_tensors,
                                              strict=True))
    last = compiled.get_last_lr()
    assert [float(v) for v in last] == [float(v) for v in lr_tensors]
    assert all(v is not lr for v, lr in zip(last, lr_tensors, strict=True))
    assert counters["stats"]["unique_graphs"] == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.timeout(600)
def test_compile_rule_on_cuda_matches_the_eager_rule() -> None:
    """On CUDA, Triton may fuse a multiply-add and inductor divides by a constant with a
    reciprocal (see greedylr.tensor_rule): the float64 state may then differ in the last
    places, and the float32 LR tensors not at all on these well-separated losses."""
    torch._dynamo.reset()
    counters.clear()
    losses = _rule_losses()
    compiled = GreedyLR(_tensor_lr_optimizer("cuda"), compile_rule=True, **RULE_CONFIG)
    eager = GreedyLR(_tensor_lr_optimizer("cuda"), **RULE_CONFIG)
    assert compiled.device_mode and eager.device_mode
    assert _run(compiled, losses) == _run(eager, losses)
    assert counters["stats"]["unique_graphs"] == 1
    got, want = compiled.state, eager.state
    assert (got.step, got.num_good, got.num_bad, got.hold) == (
        want.step, want.num_good, want.num_bad, want.hold)
    torch.testing.assert_close(got.lrs, want.lrs, rtol=1e-14, atol=0)
    assert [e.kind for e in compiled.events] == [e.kind for e in eager.events]


@pytest.mark.timeout(600)
def test_compile_rule_moves_a_zero_dim_float64_lr_tensor() -> None:
    """An LR built as ``torch.tensor(lr, dtype=torch.float64)`` (or under a float64 default
    dtype): inductor drops an in-place write to a 0-d float64 CPU input (torch 2.13), so
    the rule's state moved and the optimizer's LR stayed where it started."""
    torch._dynamo.reset()
    param = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([param], lr=torch.tensor(0.1, dtype=torch.float64), foreach=False)
    sched = GreedyLR(opt, compile_rule=True, factor=0.5, patience=0, smoothing="none")
    for loss in (1.0, 0.5, 0.25):  # three improvements: 0.1 -> 0.2 -> 0.4 -> 0.8
        opt.step()
        sched.step(torch.tensor(loss))
    assert float(opt.param_groups[0]["lr"]) == sched.state.lrs[0] == pytest.approx(0.8)
    assert [float(v) for v in sched.get_last_lr()] == [pytest.approx(0.8)]


def test_compile_step_on_a_batch_of_runs() -> None:
    """tensor_rule.step_ on a batch: the state advances in place, as update() computes."""
    config = rule.GreedyConfig(**RULE_CONFIG)
    start = tensor_rule.init(config, [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    state = tensor_rule.TensorState(*(t.clone() for t in start))
    reference = start
    losses = torch.tensor(_rule_losses()[:40], dtype=torch.float64)
    for i, loss in enumerate(losses):
        batch_loss = loss + torch.tensor([0.0, 0.1, -0.1], dtype=torch.float64) * (i % 3)
        row, copies = tensor_rule.step_(config, state, batch_loss)
        reference, decision = tensor_rule.update(config, reference, batch_loss)
        assert copies == ()
        assert torch.equal(row[:, 2:4], decision.lrs)
        for field, want in zip(state, reference, strict=True):
            torch.testing.assert_close(field, want, rtol=0, atol=0, equal_nan=True)
    assert not torch.equal(state.lrs, start.lrs)  # advanced in place; start untouched
    assert not torch.equal(state.lrs[0], state.lrs[1])


def test_float_mode_tensor_lr_and_a_compiled_optimizer_do_not_recompile() -> None:
    """CPU tensor LR, float mode: filled in place, so the compiled opt.step keeps its graph."""
    model, opt = _fresh_model_and_tensor_lr_sgd()
    lr = opt.param_groups[0]["lr"]
    sched = GreedyLR(opt, patience=0, smoothing="none", min_lr_ratio=0.01, max_lr_ratio=100.0)
    assert not sched.device_mode

    @torch.compile(backend="aot_eager")
    def opt_step() -> None:
        opt.step()

    x, y = torch.randn(32, 4), torch.randn(32, 1)
    rng = random.Random(1)
    seen = set()
    for i in range(60):
        # up and down: increases and decreases alike
        loss = torch.nn.functional.mse_loss(model(x), y) + rng.uniform(0, 0.1) + (i % 6 < 3)
        loss.backward()
        opt_step()
        opt.zero_grad()
        sched.step(loss)
        seen.add(lr.item())
        if i == 1:
            graphs = counters["stats"]["unique_graphs"]
    assert opt.param_groups[0]["lr"] is lr
    assert len(seen) > 5
    assert counters["stats"]["unique_graphs"] == graphs == 1


@pytest.mark.timeout(600)
def test_compile_rule_with_a_decaying_base_schedule_matches_the_float_rule() -> None:
    """base_schedule="cosine" under inductor: the factor's table lookup compiles into the
    one graph, and the LRs and events are float mode's, held-out values included."""
    torch._dynamo.reset()
    counters.clear()
    config = {**RULE_CONFIG, "total_steps": 40, "base_schedule": "cosine", "eval_patience": 0}
    compiled = GreedyLR(_tensor_lr_optimizer(), compile_rule=True, **config)
    on_host = GreedyLR(_tensor_lr_optimizer(), **config)
    lrs: dict[str, list[list[float]]] = {"compiled": [], "float": []}
    for i, loss in enumerate(_rule_losses()[:45]):
        for name, sched in (("compiled", compiled), ("float", on_host)):
            lrs[name] += _run(sched, [loss])
            if i % 10 == 9:
                sched.observe_eval(1.0 + (i == 19))  # the one at step 20 is worse
    assert lrs["compiled"] == lrs["float"]
    assert lrs["compiled"][-1] == [0.0, 0.0]  # past the budget
    assert compiled.state == on_host.state
    assert repr([e.to_dict() for e in compiled.events]) == repr(
        [e.to_dict() for e in on_host.events])
    assert "eval_decrease" in {e.kind for e in compiled.events}
    assert counters["stats"]["unique_graphs"] == 1


@pytest.mark.timeout(600)
def test_compile_rule_with_the_blowup_guard_matches_the_float_rule() -> None:
    """blowup_ratio under inductor: the squared factors' lookup and the final cooldown
    towards 0 compile into the one graph, and the LRs and events (reasons included) are
    float mode's. The losses surge six-fold twice: decreases in a blow-up, a reset in
    one, and a cooldown (from step 96) that starts in one."""
    torch._dynamo.reset()
    counters.clear()
    config = {**RULE_CONFIG, "blowup_ratio": 1.5, "total_steps": 120, "anneal_fraction": 0.2}
    losses = [x * 6 if 40 <= i < 60 or i >= 85 else x
              for i, x in enumerate(_rule_losses()[:125])]
    compiled = GreedyLR(_tensor_lr_optimizer(), compile_rule=True, **config)
    on_host = GreedyLR(_tensor_lr_optimizer(), **config)
    lrs = {"compiled": _run(compiled, losses), "float": _run(on_host, losses)}
    assert lrs["compiled"] == lrs["float"]
    assert lrs["compiled"][-1] == [0.0, 0.0]  # towards 0, not the lower bounds
    assert compiled.state == on_host.state
    assert repr([e.to_dict() for e in compiled.events]) == repr(
        [e.to_dict() for e in on_host.events])
    blown = {e.kind for e in compiled.events if "a blow-up (" in e.reason}
    assert blown == {"decrease", "clipped", "anneal"}
    assert counters["stats"]["unique_graphs"] == 1

"""GreedyLR in device mode: no host read per step, the LR tensor kept, float-mode parity.

Device mode is automatic for LRs on an accelerator only; on this CPU the tests ask for
it with ``device_mode=True``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from greedylr import GreedyLR
from spawning import gloo_group, spawn_ranks

# what a host read of a tensor goes through in Python
_HOST_READS = ("item", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__")


class _ForbidScalarReads(TorchDispatchMode):
    """Fails on ``aten._local_scalar_dense``, the op behind every tensor-to-number read.

    It also catches reads made inside C++ (indexing with a 0-d tensor, ``fill_`` from a
    tensor on another device), which patching the Python methods cannot see.
    """

    def __init__(self, seen: list[str]) -> None:
        super().__init__()
        self.seen = seen

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.nonzero.default):
            self.seen.append(str(func))
            raise AssertionError(f"host read: {func} during GreedyLR.step")
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def no_host_reads() -> Iterator[list[str]]:
    """Make every host read of a tensor raise; yields the attempts seen.

    Two nets: the Python methods (``float(t)``, ``t.item()``, ...) are patched, and a
    dispatch mode fails on the aten op that any read, from Python or C++, ends in.
    """
    seen: list[str] = []
    saved = {name: getattr(torch.Tensor, name) for name in _HOST_READS}

    def forbid(name: str):  # one closure per method, so the message names it
        def read(self: torch.Tensor, *args: object, **kwargs: object) -> object:
            seen.append(name)
            raise AssertionError(f"host read: Tensor.{name} during GreedyLR.step")

        return read

    try:
        for name in _HOST_READS:
            setattr(torch.Tensor, name, forbid(name))
        with _ForbidScalarReads(seen):
            yield seen
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


def _optimizer(tensor_lr: bool, lrs: tuple[float, ...] = (0.125, 0.03125)) -> torch.optim.SGD:
    groups = []
    for lr in lrs:
        value = torch.tensor(lr) if tensor_lr else lr
        groups.append({"params": [torch.nn.Parameter(torch.zeros(2))], "lr": value})
    return torch.optim.SGD(groups, foreach=False)


def test_the_guard_itself_catches_host_reads() -> None:
    t = torch.tensor(1.5)
    table = torch.arange(4.0)
    with no_host_reads() as seen:
        for read in (float, int, bool, lambda v: v.item(), lambda v: v.tolist()):
            with pytest.raises(AssertionError, match="host read"):
                read(t)
        # a read inside C++: indexing with a 0-d tensor unpacks it to an int
        with pytest.raises(AssertionError, match="_local_scalar_dense"):
            table[torch.tensor(2)]
    assert len(seen) == 6
    assert float(t) == 1.5  # restored


# the blow-up guard, and a final cooldown (from step 30) that starts in a blow-up (the
# losses surge in the test)
GUARD = {"blowup_ratio": 1.2, "total_steps": 40, "anneal_fraction": 0.25}


@pytest.mark.parametrize(("smoothing", "trace", "guard"),
                         [("window", True, False), ("ema", True, False), ("none", True, False),
                          ("window", False, False), ("none", True, True)])
def test_device_step_makes_no_host_read(smoothing: str, trace: bool, guard: bool) -> None:
    opt = _optimizer(tensor_lr=True)
    # compare="best" on this sequence reaches every event kind, the reset included
    sched = GreedyLR(opt, device_mode=True, patience=0, smoothing=smoothing, window=3,
                     warmup=2, cooldown=1, reset_patience=1, min_lr_ratio=0.5,
                     on_nonfinite="decrease", trace=trace, compare="best",
                     **(GUARD if guard else {}))
    assert sched.device_mode
    rng = random.Random(0)
    values = [torch.tensor(rng.gauss(1.0, 0.3)) for _ in range(40)]
    values[7] = torch.tensor(math.nan)
    values[20] = torch.tensor(math.inf)
    if guard:  # a surge: blow-ups from step 16 on
        values[15:] = [v * 4 for v in values[15:]]
    for i, loss in enumerate(values):
        opt.step()
        with no_host_reads() as seen:
            if i % 5 == 0:  # the observe() path as well
                sched.observe(loss)
                sched.observe(loss * 2)
                sched.step()
            else:
                sched.step(loss)
            sched.step(loss)  # a repeated call: de-duplicated, also without a read
        assert seen == []
    assert sched.state.step == 40
    if trace and not guard:
        kinds = {e.kind for e in sched.events}
        assert {"increase", "decrease", "nonfinite", "warmup_end", "reset", "hold"} <= kinds
    if guard:  # the blow-up guard's decreases (the factor squared) and cooldown to 0
        blown = {e.kind for e in sched.events if "a blow-up (" in e.reason}
        assert blown == {"decrease", "anneal"} and sched.state.anneal_to_zero


def test_float_mode_step_is_caught_reading_the_host() -> None:
    """The control: the same guard fails float mode, which calls float(loss)."""
    opt = _optimizer(tensor_lr=True)
    sched = GreedyLR(opt, device_mode=False)
    opt.step()
    with no_host_reads() as seen, pytest.raises(AssertionError, match="host read"):
        sched.step(torch.tensor(1.0))
    assert seen


def test_lr_tensor_is_updated_in_place_and_not_aliased() -> None:
    opt = _optimizer(tensor_lr=True)
    lr_objects = [g["lr"] for g in opt.param_groups]
    sched = GreedyLR(opt, device_mode=True, patience=0, smoothing="none")
    seen = set()
    for loss in [1.0, 0.5, 0.7, 0.9, 0.2, 0.1]:
        opt.step()
        sched.step(torch.tensor(loss))
        seen.add(opt.param_groups[0]["lr"].item())
        assert [g["lr"] for g in opt.param_groups] == lr_objects
        assert all(g["lr"] is lr for g, lr in zip(opt.param_groups, lr_objects, strict=True))
        last = sched.get_last_lr()
        assert all(isinstance(v, torch.Tensor) for v in last)
        assert all(v is not lr for v, lr in zip(last, lr_objects, strict=True))
    assert len(seen) >= 3


def test_mode_selection() -> None:
    # tensor LRs on the CPU: float mode, unless asked (device_mode, or the compiled rule)
    assert not GreedyLR(_optimizer(tensor_lr=True)).device_mode
    assert GreedyLR(_optimizer(tensor_lr=True), device_mode=True).device_mode
    assert GreedyLR(_optimizer(tensor_lr=True), compile_rule="aot_eager").device_mode
    assert not GreedyLR(_optimizer(tensor_lr=False)).device_mode
    assert not GreedyLR(_optimizer(tensor_lr=True), device_mode=False).device_mode
    # on an accelerator: automatic (a meta tensor stands for one; only its device is read)
    sched = GreedyLR(_optimizer(tensor_lr=True))
    on_meta = SimpleNamespace(param_groups=[{"lr": torch.tensor(0.1, device="meta")}] * 2)
    assert sched._choose_device(on_meta, None, False) == torch.device("meta")
    assert sched._choose_device(on_meta, False, False) is None
    # raising on a NaN needs the host: the automatic choice falls back to float mode
    raising = GreedyLR(_optimizer(tensor_lr=True), on_nonfinite="raise")
    assert raising._choose_device(on_meta, None, False) is None
    with pytest.raises(ValueError, match="compile_rule needs device mode"):
        GreedyLR(_optimizer(tensor_lr=True), on_nonfinite="raise", compile_rule="aot_eager")
    with pytest.raises(ValueError, match="compile_rule needs device mode"):
        GreedyLR(_optimizer(tensor_lr=False), compile_rule=True)
    with pytest.raises(ValueError, match="on_nonfinite='raise'"):
        GreedyLR(_optimizer(tensor_lr=True), on_nonfinite="raise", device_mode=True)
    with pytest.raises(ValueError, match="needs a tensor lr"):
        GreedyLR(_optimizer(tensor_lr=False), device_mode=True)


CONFIGS = [
    {"patience": 1, "smoothing": "window", "window": 3, "warmup": 3, "reset_patience": 2,
     "cooldown": 1, "min_lr_ratio": 0.5, "on_nonfinite": "decrease"},
    {"patience": 2, "smoothing": "ema", "window": 5, "compare": "previous",
     "hold_after_increase": 2, "threshold": 0.01, "max_lr_ratio": 2.0},
    {"patience": 0, "smoothing": "none", "mode": "max", "threshold_mode": "abs",
     "threshold": 0.05, "warmup": 4, "warmup_start_factor": 0.1, "eps": 1e-4},
    # the blow-up guard (mode="max": the falling loss blows up), into the final cooldown
    {"patience": 1, "smoothing": "ema", "window": 4, "mode": "max", "blowup_ratio": 1.25,
     "total_steps": 250, "anneal_fraction": 0.2, "min_lr_ratio": 0.3, "reset_patience": 2},
]


def _drive(opt: torch.optim.Optimizer, sched: GreedyLR, losses: list[float]) -> list[list]:
    lrs = []
    for i, loss in enumerate(losses):
        opt.step()
        if i % 7 == 3:
            sched.observe(torch.tensor(loss))
            sched.observe(torch.tensor(loss / 2))
            sched.step()
        else:
            sched.step(torch.tensor(loss))
        lrs.append([float(g["lr"]) for g in opt.param_groups])
    return lrs


def _losses(seed: int, n: int = 250) -> list[float]:
    rng = random.Random(seed)
    out, x = [], 1.0
    for _ in range(n):
        x += rng.gauss(-0.002, 0.05)
        out.append(rng.choice([math.nan, math.inf]) if rng.random() < 0.02 else x)
    return out


@pytest.mark.parametrize("config", CONFIGS)
def test_device_mode_equals_float_mode(config: dict) -> None:
    """Same LRs at every step, same events (reasons included), same trace, same state.

    Base LRs are powers of two, exact in float32, so the float-mode scheduler over
    Python-float LRs and the device-mode one over float32 tensors start equal.
    """
    losses = _losses(seed=len(str(config)))
    float_opt, device_opt = _optimizer(tensor_lr=False), _optimizer(tensor_lr=True)
    on_float = GreedyLR(float_opt, **config)
    on_device = GreedyLR(device_opt, device_mode=True, **config)
    assert on_device.device_mode and not on_float.device_mode
    want = _drive(float_opt, on_float, losses)
    got = _drive(device_opt, on_device, losses)
    # float mode writes Python floats; the LR tensor holds them rounded to float32
    rounded = [[float(torch.tensor(v, dtype=torch.float32)) for v in row] for row in want]
    assert got == rounded
    assert on_device.state == on_float.state
    assert repr([e.to_dict() for e in on_device.events]) == repr(
        [e.to_dict() for e in on_float.events]
    )
    assert len(on_float.events) > 10
    for column in ("steps", "losses", "smoothed", "lrs", "codes"):
        np.testing.assert_array_equal(getattr(on_device.trace, column),
                                      getattr(on_float.trace, column))


def test_same_tensor_lr_optimizer_in_both_modes_gives_identical_tensors() -> None:
    losses = _losses(seed=5)
    a, b = _optimizer(tensor_lr=True, lrs=(0.1, 0.02)), _optimizer(True, lrs=(0.1, 0.02))
    sa = GreedyLR(a, device_mode=True, **CONFIGS[0])
    sb = GreedyLR(b, device_mode=False, **CONFIGS[0])
    assert _drive(a, sa, losses) == _drive(b, sb, losses)


def test_transformers_preset_in_device_mode() -> None:
    losses = _losses(seed=9, n=400)
    a, b = _optimizer(tensor_lr=True), _optimizer(tensor_lr=False)
    sb = GreedyLR.from_transformers(b, patience=3, smooth=True, window_size=10,
                                    min_lr=0.01, reset_start=3)
    sa = GreedyLR(a, device_mode=True, **sb.config.to_dict())
    assert sa.device_mode
    got, want = _drive(a, sa, losses), _drive(b, sb, losses)
    assert got == [[float(torch.tensor(v, dtype=torch.float32)) for v in r] for r in want]


@pytest.mark.parametrize(("save_on_device", "resume_into_device"),
                         [(True, True), (True, False), (False, True)])
def test_checkpoint_round_trip_mid_window(save_on_device: bool, resume_into_device: bool) -> None:
    """Save in one mode, load in either with weights_only=True, continue bit-identically."""
    config = CONFIGS[0]
    losses = _losses(seed=2, n=120)
    opt = _optimizer(tensor_lr=True)
    sched = GreedyLR(opt, device_mode=save_on_device, **config)
    _drive(opt, sched, losses[:61])
    sched.observe(torch.tensor(0.8))  # a pending observation travels too
    buffer = io.BytesIO()
    torch.save(sched.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    opt2 = _optimizer(tensor_lr=True)
    resumed = GreedyLR(opt2, device_mode=resume_into_device, **config)
    resumed.load_state_dict(saved)
    assert resumed.device_mode is resume_into_device
    assert resumed.state == sched.state
    assert [float(g["lr"]) for g in opt2.param_groups] == [
        float(g["lr"]) for g in opt.param_groups
    ]
    assert _drive(opt2, resumed, losses[61:]) == _drive(opt, sched, losses[61:])


def test_held_out_values_during_the_warmup_ramp_only_record_the_best() -> None:
    """A held-out value given before the ramp's last step (4) only records the best: a
    worse one (0.6) leaves the ramp's LR and the block alone. The first after it (0.55,
    worse than 0.45) cuts the LR by 0.7, and the cut stays (tests/test_rule_knobs.py,
    EVAL_RAMP, by hand)."""
    opt = _optimizer(tensor_lr=True, lrs=(1.0,))
    sched = GreedyLR(opt, device_mode=True, factor=0.5, patience=5, increase_patience=0,
                     smoothing="none", min_lr_ratio=0.1, max_lr_ratio=None, warmup=4,
                     eval_patience=0, eval_pace=0.0)
    lrs, held_out = [], []
    for loss, value in ((1.0, 0.5), (1.0, 0.45), (1.0, 0.6), (1.0, 0.55), (1.0, 0.4),
                        (0.9, None)):
        opt.step()
        sched.step(torch.tensor(loss))
        lrs.append(float(opt.param_groups[0]["lr"]))
        if value is not None:
            sched.observe_eval(value)
            lrs.append(float(opt.param_groups[0]["lr"]))
            held_out.append((sched.state.eval_best, sched.state.eval_block))
    assert lrs == [float(torch.tensor(v)) for v in (0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1.0,
                                                     0.7, 0.7, 0.7, 1.4)]
    assert held_out == [(0.5, False), (0.45, False), (0.45, False), (0.45, True),
                        (0.4, False)]
    assert [(e.kind, e.step) for e in sched.events] == [
        ("warmup_end", 4), ("eval_decrease", 4), ("increase", 6)]


def test_repeated_step_without_optimizer_step_is_ignored() -> None:
    opt = _optimizer(tensor_lr=True)
    sched = GreedyLR(opt, device_mode=True, patience=0, smoothing="none")
    opt.step()
    sched.step(torch.tensor(1.0))
    sched.step(torch.tensor(5.0))  # Accelerate's second call: ignored
    assert sched.state.step == 1
    opt.step()
    sched.step(torch.tensor(2.0))
    assert sched.state.step == 2


def test_device_state_keeps_its_storage() -> None:
    """What a CUDA graph needs: every step writes the same tensors, none is replaced."""
    opt = _optimizer(tensor_lr=True)
    sched = GreedyLR(opt, device_mode=True, **CONFIGS[0])
    state = sched._device_state
    addresses = [t.data_ptr() for t in state]
    before = [t.clone() for t in state]
    lrs = [g["lr"] for g in opt.param_groups]
    _drive(opt, sched, _losses(seed=4, n=30))
    assert sched._device_state is state
    assert [t.data_ptr() for t in state] == addresses
    assert sum(not torch.equal(a, b) for a, b in zip(before, state, strict=True)) >= 8
    assert all(g["lr"] is lr for g, lr in zip(opt.param_groups, lrs, strict=True))
    saved = sched.state_dict()  # and a load writes into the same tensors too
    _drive(opt, sched, _losses(seed=5, n=10))
    sched.load_state_dict(saved)
    assert sched._device_state is state
    assert [t.data_ptr() for t in state] == addresses
    assert sched.state.to_dict() == saved["rule"]


def _capture_run(compile_rule: bool, graphed: bool, batches: list) -> tuple[list, list]:
    """Adam(capturable) + device-mode GreedyLR: eager steps, or 3 eager then graph replays."""
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=torch.tensor(0.01, device="cuda"),
                           capturable=True)
    sched = GreedyLR(opt, trace=False, compile_rule=compile_rule, patience=0,
                     smoothing="window", window=3, factor=0.7, min_lr_ratio=0.1)
    assert sched.device_mode
    static_x, static_y = (t.clone() for t in batches[0])

    def step() -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(model(static_x), static_y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)
        sched.step(loss)
        return loss

    lrs, losses = [], []
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up (and compilation) off the capture stream
        for x, y in batches[:3]:
            static_x.copy_(x)
            static_y.copy_(y)
            losses.append(step().detach().clone())
            lrs.append(opt.param_groups[0]["lr"].clone())
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    if graphed:
        with torch.cuda.graph(graph):
            static_loss = step()
    for x, y in batches[3:]:
        static_x.copy_(x)
        static_y.copy_(y)
        if graphed:
            graph.replay()
            losses.append(static_loss.detach().clone())
        else:
            losses.append(step().detach().clone())
        lrs.append(opt.param_groups[0]["lr"].clone())
    return torch.stack(lrs).tolist(), torch.stack(losses).tolist()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("compile_rule", [False, True])
def test_cuda_graph_capture_matches_eager(compile_rule: bool) -> None:
    """integration.md #17: captured with a capturable optimizer, replays match eager."""
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(16, 8, generator=gen).cuda(), torch.randn(16, 1, generator=gen).cuda())
               for _ in range(40)]
    eager_lrs, eager_losses = _capture_run(compile_rule, False, batches)
    graph_lrs, graph_losses = _capture_run(compile_rule, True, batches)
    assert len(set(eager_lrs)) > 3  # the LR moved during the replays
    assert graph_lrs == eager_lrs
    torch.testing.assert_close(graph_losses, eager_losses)


def test_bad_losses_are_rejected_without_a_read() -> None:
    sched = GreedyLR(_optimizer(tensor_lr=True), device_mode=True)
    with pytest.raises(ValueError, match="scalar"):
        sched.step(torch.ones(3))
    # refused as float mode refuses them (True was read as 1.0, 0.5+3j as 0.5)
    for loss in (torch.tensor(True), torch.tensor(0.5 + 3j)):
        with pytest.raises(TypeError, match=r"dtype torch\.(bool|complex64)"):
            sched.step(loss)
        with pytest.raises(TypeError, match=r"dtype torch\.(bool|complex64)"):
            sched.observe(loss)
    sched.optimizer.step()
    with pytest.raises(TypeError, match="needs the loss"):
        sched.step()


# -- distributed: the loss is averaged on the device, every rank decides the same -------

DIST_STEPS = 30
DIST_CONFIG = {"factor": 0.5, "patience": 1, "smoothing": "none", "min_lr_ratio": 1e-3,
               "max_lr_ratio": 1e3}


def _rank_losses(rank: int) -> list[float]:
    rng = random.Random(rank)
    return [(2.0 * 0.9**i if rank == 0 else 1.0) + 1e-3 * rng.random()
            for i in range(DIST_STEPS)]


def _float32_losses(rank: int) -> list[float]:
    """Rank 0 flat at 1.0, rank 1 falling by one float32 ulp per step: the mean falls."""
    return [1.0 if rank == 0 else 1.0 - i * 2.0**-24 for i in range(10)]


def _dist_worker(rank: int, init_file: str, out_dir: str) -> None:
    with gloo_group(rank, init_file):
        opt = _optimizer(tensor_lr=True, lrs=(0.125,))
        sched = GreedyLR(opt, device_mode=True, **DIST_CONFIG)
        lrs = []
        for loss in _rank_losses(rank):
            opt.step()
            with no_host_reads() as seen:
                sched.step(torch.tensor(loss, dtype=torch.float64))
            assert seen == []
            lrs.append(float(opt.param_groups[0]["lr"]))
        result: dict[str, Any] = {"device_mode": sched.device_mode, "lrs": lrs}
        # float32 losses that differ in their last bit: float mode sums them in float64;
        # a float32 sum rounded the difference away (the LRs parted after 2 steps)
        for mode in ("float", "device"):
            opt = _optimizer(tensor_lr=True, lrs=(0.125,))
            sched = GreedyLR(opt, device_mode=mode == "device", **DIST_CONFIG)
            f32 = []
            for loss in _float32_losses(rank):
                opt.step()
                with no_host_reads() if mode == "device" else contextlib.nullcontext():
                    sched.step(torch.tensor(loss, dtype=torch.float32))
                f32.append(float(opt.param_groups[0]["lr"]))
            result[f"float32_{mode}"] = f32
        # a rank with no loss to give: it raises, the other takes the step as a NaN
        # (skipped) rather than wait in the all-reduce for it
        sched.optimizer.step()
        try:
            with no_host_reads():
                sched.step(torch.tensor(1.0) if rank == 0 else None)
            result["no_loss"] = [sched.trace.losses[-1], sched.state.step]
        except TypeError as exc:
            result["no_loss"] = str(exc)
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))


@pytest.mark.timeout(120)
def test_two_gloo_ranks_agree_in_device_mode(tmp_path: Path) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    spawn_ranks(_dist_worker, (str(tmp_path / "init"), str(tmp_path)), timeout=100)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["device_mode"] and r1["device_mode"]
    assert r0["lrs"] == r1["lrs"]
    # equal to one float-mode process fed the float64 mean (all-reduce SUM, then / 2)
    mean = [(a + b) / 2 for a, b in zip(_rank_losses(0), _rank_losses(1), strict=True)]
    opt = _optimizer(tensor_lr=False, lrs=(0.125,))
    sched = GreedyLR(opt, **DIST_CONFIG)
    want = []
    for loss in mean:
        opt.step()
        sched.step(loss)
        want.append(float(torch.tensor(opt.param_groups[0]["lr"], dtype=torch.float32)))
    assert r0["lrs"] == want
    assert len(set(want)) > 2
    # float32 losses: device mode reduces in the state's float64, as float mode does
    for r in (r0, r1):
        assert r["float32_device"] == r["float32_float"] == r0["float32_float"]
    assert r0["float32_float"][-1] == 4.0  # the mean fell at every step: raised 5 times
    # no loss on rank 1: it raised; rank 0 was not left waiting, and skipped the step
    assert "needs the loss" in r1["no_loss"]
    assert math.isnan(r0["no_loss"][0]) and r0["no_loss"][1] == 11

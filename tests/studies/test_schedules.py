"""Every schedule of the studies: built by name, same warmup, right trajectories."""

from __future__ import annotations

import math

import pytest
import torch

from greedylr import GreedyConfig, GreedyLR
from greedylr.studies.schedules import (
    HELD_OUT_BASELINES,
    LOSS_DRIVEN,
    SCHEDULES,
    build_optimizer,
    build_schedule,
    current_lr,
    is_loss_driven,
    step_schedule,
)

WARMED = (
    "constant_warmup",
    "linear",
    "cosine",
    "cosine_restarts",
    "polynomial",
    "exponential",
    "greedy",
    "schedule_free",
    "reduce_on_plateau_eval",
)


def _run(
    name: str,
    losses: list[float],
    *,
    lr: float = 0.1,
    warmup: int = 0,
    optimizer: str = "sgd",
    **settings: object,
) -> list[float]:
    """Step schedule ``name`` through ``losses`` (real optimizer steps); return the LRs."""
    model = torch.nn.Linear(2, 1)
    opt = build_optimizer(optimizer, model.parameters(), lr=lr, schedule=name, warmup=warmup)
    sched = build_schedule(name, opt, total_steps=len(losses), warmup=warmup, **settings)
    lrs = []
    for loss in losses:
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
        opt.zero_grad()
        step_schedule(sched, loss)
        lrs.append(current_lr(opt))
    return lrs


@pytest.mark.parametrize("name", SCHEDULES + HELD_OUT_BASELINES)
def test_every_schedule_steps_with_finite_positive_lrs(name: str) -> None:
    lrs = _run(name, [1.0 / (t + 1) for t in range(40)], warmup=4)
    assert len(lrs) == 40
    assert all(math.isfinite(v) and v >= 0 for v in lrs)
    assert max(lrs) > 0


def test_schedules_with_a_warmup_share_the_same_ramp() -> None:
    ramps = {name: _run(name, [1.0] * 20, warmup=5)[:4] for name in WARMED}
    # after step t (1-based) of a 5-step ramp the LR is t/5 of the peak 0.1
    for name, ramp in ramps.items():
        assert ramp == pytest.approx([0.02, 0.04, 0.06, 0.08]), name


def test_no_warmup_schedules_start_at_the_initial_lr() -> None:
    for name in ("constant", "reduce_on_plateau", "transformers_greedy"):
        assert _run(name, [1.0] * 5, warmup=5)[0] == pytest.approx(0.1), name


def test_linear_and_cosine_trajectories_by_hand() -> None:
    # 10 steps, no warmup: after step t the multiplier is 1 - t/10 (linear) and
    # (1 + cos(pi t / 10)) / 2 (cosine)
    lin = _run("linear", [1.0] * 10)
    cos = _run("cosine", [1.0] * 10)
    assert lin == pytest.approx([0.1 * (1 - t / 10) for t in range(1, 11)])
    assert cos == pytest.approx([0.05 * (1 + math.cos(math.pi * t / 10)) for t in range(1, 11)])


def test_the_held_out_plateau_moves_only_on_fed_values_by_hand() -> None:
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = build_schedule("reduce_on_plateau_eval", opt, total_steps=20, warmup=2,
                           factor=0.5, patience=1)
    assert not is_loss_driven(sched)  # the training loss never reaches it
    lrs = []
    for feed in (None, None, 1.0, None, 1.0, 1.0, None, 0.5, 0.6, 0.7, None):
        if feed is None:
            opt.step()
            step_schedule(sched, 123.0)  # a training loss it ignores
        else:
            sched.observe_eval(feed)  # torch's ReduceLROnPlateau decides, at once
        lrs.append(current_lr(opt))
    # ramp 0.05, 0.1; 1.0 the best; two evaluations not better (patience 1): halved;
    # 0.5 a new best; 0.6 and 0.7 not: halved again
    assert lrs == pytest.approx([0.05, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025,
                                 0.025])


def test_the_held_out_plateau_resumes_exactly_from_a_saved_state() -> None:
    import io

    def build() -> tuple[torch.optim.Optimizer, object]:
        opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
        return opt, build_schedule("reduce_on_plateau_eval", opt, total_steps=20, warmup=2)

    def drive(opt: torch.optim.Optimizer, sched: object, feeds: list[float]) -> list[float]:
        lrs = []
        for feed in feeds:
            opt.step()
            step_schedule(sched, 1.0)
            sched.observe_eval(feed)  # type: ignore[attr-defined]
            lrs.append(current_lr(opt))
            assert sched.get_last_lr() == [current_lr(opt)]  # type: ignore[attr-defined]
        return lrs

    opt, sched = build()
    drive(opt, sched, [1.0, 0.9, 1.2])  # a best of 0.9, one reduction
    buffer = io.BytesIO()
    torch.save({"sched": sched.state_dict(), "opt": opt.state_dict()},  # type: ignore[attr-defined]
               buffer)
    rest = [1.1, 0.95, 0.8, 0.85]
    expected = drive(opt, sched, rest)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    opt2, sched2 = build()
    opt2.load_state_dict(saved["opt"])
    sched2.load_state_dict(saved["sched"])  # type: ignore[attr-defined]
    assert drive(opt2, sched2, rest) == expected
    assert expected[0] == pytest.approx(0.1 * 0.7 ** 2)  # 1.1 is not better than 0.9
    assert sched2._shadow is not sched._shadow  # type: ignore[attr-defined]  # nothing shared


def test_the_held_out_plateau_defaults_to_greedylrs_held_out_reaction() -> None:
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = build_schedule("reduce_on_plateau_eval", opt, total_steps=10)
    for value in (1.0, 2.0):
        sched.observe_eval(value)
    config = GreedyConfig()
    assert config.eval_patience == 0  # a worse value reduces at once, by eval_factor
    assert current_lr(opt) == pytest.approx(0.1 * config.eval_factor)
    with pytest.raises(ValueError, match="min_lr"):  # its floor would be a fraction
        build_schedule("reduce_on_plateau_eval", opt, total_steps=10, min_lr=1e-4)


# our torch-native build of each, transformers.get_scheduler's name, and its extra options
_AS_IN_TRANSFORMERS = [
    ("constant_warmup", "constant_with_warmup", {}),
    ("linear", "linear", {}),
    ("cosine", "cosine", {}),
    ("cosine_restarts", "cosine_with_restarts", {"num_cycles": 4}),
    ("cosine_restarts", "cosine_with_restarts", {"num_cycles": 3}),
    ("polynomial", "polynomial", {}),
    ("polynomial", "polynomial", {"power": 2.0, "lr_end": 1e-4}),
]


@pytest.mark.parametrize(("name", "hf_name", "options"), _AS_IN_TRANSFORMERS)
@pytest.mark.parametrize(("total", "warmup"), [(37, 0), (37, 5), (12, 12), (1, 0)])
def test_torch_native_schedules_give_transformers_lrs_bit_for_bit(
    name: str, hf_name: str, options: dict[str, float], total: int, warmup: int
) -> None:
    """Stored study results came from transformers.get_scheduler: the LRs must not move."""
    transformers = pytest.importorskip("transformers")
    if name == "polynomial" and warmup == total:
        pytest.skip("transformers' polynomial divides by zero when the warmup is the run")

    def optimizer() -> torch.optim.Optimizer:
        # two groups at different LRs: the multiplier applies to each group's own LR
        a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
        return torch.optim.AdamW(
            [{"params": a.parameters()}, {"params": b.parameters(), "lr": 3e-4}], lr=0.07
        )

    ours_opt, theirs_opt = optimizer(), optimizer()
    ours = build_schedule(name, ours_opt, total_steps=total, warmup=warmup, **options)
    theirs = transformers.get_scheduler(
        hf_name, theirs_opt, num_warmup_steps=warmup, num_training_steps=total,
        scheduler_specific_kwargs=options or None,
    )
    assert type(ours).__module__.startswith("torch.")
    for step in range(total + 3):  # past the end too
        mine = [g["lr"] for g in ours_opt.param_groups]
        assert mine == [g["lr"] for g in theirs_opt.param_groups], (step, mine)
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()


def test_exponential_ends_at_its_final_ratio_and_accepts_gamma() -> None:
    lrs = _run("exponential", [1.0] * 20, warmup=4)
    assert lrs[-1] == pytest.approx(0.1 * 0.01)
    assert _run("exponential", [1.0] * 3, gamma=0.5) == pytest.approx([0.05, 0.025, 0.0125])


def test_cosine_restarts_restarts() -> None:
    lrs = _run("cosine_restarts", [1.0] * 40, num_cycles=4)
    # back to (almost) the peak right after each of the 3 inner cycle ends
    jumps = [t for t in range(1, 40) if lrs[t] > lrs[t - 1] * 1.5]
    assert len(jumps) == 3


def test_loss_driven_schedules_lower_the_lr_when_the_loss_rises() -> None:
    rising = [1.0 + 0.01 * t for t in range(200)]
    for name in sorted(LOSS_DRIVEN):
        lrs = _run(name, rising)
        assert lrs[-1] < 0.1, name


def test_transformers_greedy_uses_the_papers_floor_of_ten_percent() -> None:
    lrs = _run("transformers_greedy", [1.0 + 0.01 * t for t in range(600)], lr=2e-5)
    # stock min_lr=1e-3 would sit above 2e-5 and freeze the LR; the paper's 10% does not
    assert min(lrs) == pytest.approx(2e-6)
    stock = _run("transformers_greedy", [1.0 + 0.01 * t for t in range(100)], lr=2e-5, min_lr=1e-3)
    assert min(stock) == pytest.approx(2e-5)


def test_greedy_is_ours_with_its_settings() -> None:
    opt = build_optimizer("adamw", torch.nn.Linear(2, 1).parameters(), lr=0.1)
    sched = build_schedule("greedy", opt, total_steps=10, warmup=3, factor=0.5, patience=2)
    assert isinstance(sched, GreedyLR)
    assert (sched.config.factor, sched.config.patience, sched.config.warmup) == (0.5, 2, 3)
    assert sched.config.total_steps == 10  # told the budget, as cosine is
    assert is_loss_driven(sched)


def test_unknown_settings_raise_but_prefixed_ones_pass() -> None:
    opt = build_optimizer("adamw", torch.nn.Linear(2, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"cosine.*\['factor'\]"):
        build_schedule("cosine", opt, total_steps=10, factor=0.5)
    with pytest.raises(ValueError, match="unknown schedule 'nope'"):
        build_schedule("nope", opt, total_steps=10)
    with pytest.raises(ValueError, match="warmup"):
        build_schedule("cosine", opt, total_steps=10, warmup=11)
    build_schedule("cosine", opt, total_steps=10, workload_width=8, optimizer_eps=1e-6)


def test_schedule_free_needs_its_optimizer() -> None:
    opt = torch.optim.AdamW(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="schedulefree"):
        build_schedule("schedule_free", opt, total_steps=10)


def test_build_optimizer() -> None:
    import schedulefree
    from transformers import Adafactor

    def params() -> list[torch.nn.Parameter]:
        return list(torch.nn.Linear(2, 1).parameters())

    assert isinstance(build_optimizer("adamw", params(), lr=1e-3), torch.optim.AdamW)
    sgd = build_optimizer("sgd", params(), lr=1e-3)
    assert sgd.param_groups[0]["momentum"] == 0.9
    ada = build_optimizer("adafactor", params(), lr=1e-3)
    assert isinstance(ada, Adafactor) and ada.param_groups[0]["relative_step"] is False
    assert isinstance(build_optimizer("adagrad", params(), lr=1e-3), torch.optim.Adagrad)
    # outside the studies' grid, for the workloads that train with them
    assert isinstance(build_optimizer("nadam", params(), lr=1e-3), torch.optim.NAdam)
    assert isinstance(build_optimizer("rmsprop", params(), lr=1e-3), torch.optim.RMSprop)
    assert isinstance(build_optimizer("adamax", params(), lr=1e-3), torch.optim.Adamax)
    assert isinstance(build_optimizer("radam", params(), lr=1e-3), torch.optim.RAdam)
    assert isinstance(build_optimizer("adadelta", params(), lr=1.0), torch.optim.Adadelta)
    assert isinstance(build_optimizer("asgd", params(), lr=1e-2), torch.optim.ASGD)
    adam = build_optimizer("adam", params(), lr=1e-3)
    assert type(adam) is torch.optim.Adam and adam.param_groups[0]["weight_decay"] == 0
    assert isinstance(build_optimizer("sparse_adam", iter(params()), lr=1e-2),
                      torch.optim.SparseAdam)
    sf = build_optimizer("adamw", params(), lr=1e-3, schedule="schedule_free", warmup=7)
    assert isinstance(sf, schedulefree.AdamWScheduleFree)
    assert sf.param_groups[0]["warmup_steps"] == 7 and sf.param_groups[0]["train_mode"]
    assert isinstance(
        build_optimizer("sgd", params(), lr=1e-3, schedule="schedule_free"),
        schedulefree.SGDScheduleFree,
    )
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        build_optimizer("lion", params(), lr=1e-3)
    with pytest.raises(ValueError, match="lr must be"):
        build_optimizer("adamw", params(), lr=0.0)


def test_muon_is_torchs_on_torch_2_9_and_a_clear_error_before() -> None:
    model = torch.nn.Linear(4, 3, bias=False)  # Muon takes matrices only
    if not hasattr(torch.optim, "Muon"):
        with pytest.raises(RuntimeError, match=r"muon optimizer needs torch 2\.9"):
            build_optimizer("muon", model.parameters(), lr=0.02)
        return
    muon = build_optimizer("muon", model.parameters(), lr=0.02, weight_decay=0.0)
    assert type(muon) is torch.optim.Muon and muon.param_groups[0]["lr"] == 0.02
    # GreedyLR drives Muon's LR as any other's: a run of worse losses lowers it
    scheduler = GreedyLR(muon, patience=0, smoothing="none", warmup=0, cooldown=0)
    for loss in (1.0, 2.0, 3.0):
        model(torch.ones(1, 4)).sum().backward()
        muon.step()
        scheduler.step(loss)
    assert muon.param_groups[0]["lr"] < 0.02


def test_prodigy_is_an_optimizer_based_arm_with_no_schedule() -> None:
    from greedylr.studies.schedules import LR_FREE

    assert "prodigy" in LR_FREE and "prodigy" not in SCHEDULES  # no other study changes
    lrs = _run("prodigy", [1.0] * 5, lr=1.0, optimizer="adamw")
    assert lrs == [1.0] * 5  # the multiplier stays; Prodigy estimates the step size
    opt = build_optimizer("sgd", torch.nn.Linear(2, 1).parameters(), lr=1.0,
                          schedule="prodigy")
    assert type(opt).__module__.startswith("prodigyopt")
    with pytest.raises(ValueError, match="prodigyopt"):
        build_schedule("prodigy", torch.optim.AdamW(torch.nn.Linear(2, 1).parameters()),
                       total_steps=5)

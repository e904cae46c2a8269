"""The power-function EMA of the weights (:mod:`greedylr.averaging`), by hand."""

from __future__ import annotations

import math

import pytest
import torch

import greedylr
from greedylr.averaging import averaged_model, power_ema


@pytest.mark.parametrize(("gamma", "expected"), [
    (0.0, 7 / 3),  # the plain mean of 1, 2, 4 (SWA)
    # EDM2's update: by 1 - (1/2)**2 = 3/4 to 1.75, then by 1 - (2/3)**2 = 5/9 to 3.0
    (1.0, 3.0),
])
def test_power_ema_by_hand(gamma: float, expected: float) -> None:
    model = torch.nn.Linear(1, 1, bias=False)
    averaged = torch.optim.swa_utils.AveragedModel(model, avg_fn=power_ema(gamma))
    for value in (1.0, 2.0, 4.0):
        model.weight.data.fill_(value)
        averaged.update_parameters(model)
    assert averaged.module.weight.item() == pytest.approx(expected)


def test_default_covers_the_last_tenth_of_the_run() -> None:
    """gamma 7 after 1000 constant-then-jumping steps: the average has moved by about
    the share of the profile tau**7 in the last 10% of the run (1 - 0.9**8 = 0.57)."""
    model = torch.nn.Linear(1, 1, bias=False)
    averaged = averaged_model(model)
    for step in range(1, 1001):
        model.weight.data.fill_(0.0 if step <= 900 else 1.0)
        averaged.update_parameters(model)
    assert averaged.module.weight.item() == pytest.approx(1 - 0.9**8, abs=0.01)


def test_averaged_model_averages_batchnorm_statistics() -> None:
    model = torch.nn.BatchNorm1d(2)
    averaged = greedylr.averaged_model(model, gamma=0)
    for shift in (0.0, 4.0):
        model.running_mean.fill_(shift)
        averaged.update_parameters(model)
    assert averaged.module.running_mean.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("gamma", [-1.0, math.nan, math.inf, True, "7"])
def test_bad_gamma_is_refused_with_its_value(gamma: object) -> None:
    with pytest.raises(ValueError, match="gamma must be a finite number >= 0"):
        power_ema(gamma)  # type: ignore[arg-type]


def test_the_step_is_exact_however_long_the_run() -> None:
    """The t-th update moves by 1 - (1 - 1/t)**8: computed as n/(n+1) in float32 it was
    19% off at 10 million updates and 0 (the average frozen) from 2**25 on."""
    average = power_ema()
    for n in (10**5, 10**7, 2**25, 10**9):
        moved = average(torch.zeros(1), torch.ones(1), torch.tensor(n))
        assert moved.item() == pytest.approx(-math.expm1(8 * math.log1p(-1 / (n + 1))),
                                             rel=1e-5)
    moved = average(torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64),
                    torch.tensor(10**9))
    assert moved.item() == pytest.approx(-math.expm1(8 * math.log1p(-1 / (10**9 + 1))),
                                         rel=1e-12)


def test_a_count_buffer_is_copied_not_averaged() -> None:
    model = torch.nn.BatchNorm1d(2)
    averaged = greedylr.averaged_model(model)
    for _ in range(5):
        model(torch.randn(4, 2))
        averaged.update_parameters(model)
    assert averaged.module.num_batches_tracked.item() == 5  # 4 when truncated


def test_a_bfloat16_model_is_averaged_in_float32_as_the_docs_say() -> None:
    model = torch.nn.Linear(1, 1, bias=False).to(torch.bfloat16)
    averaged = greedylr.averaged_model(model, gamma=0)
    averaged.module.float()
    for step in range(1, 2001):
        model.weight.data.fill_(step * 1e-3)
        averaged.update_parameters(model)
    bf16 = [float(torch.tensor(t * 1e-3, dtype=torch.bfloat16)) for t in range(1, 2001)]
    assert averaged.module.weight.dtype == torch.float32
    assert averaged.module.weight.item() == pytest.approx(sum(bf16) / len(bf16), rel=1e-4)


def _ddp_average_worker(rank: int, init_file: str, out_dir: str) -> None:
    import json
    from pathlib import Path

    from spawning import gloo_group

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    with gloo_group(rank, init_file):
        ddp = torch.nn.parallel.DistributedDataParallel(net)
        averaged = averaged_model(ddp)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
        for step in range(3):
            x = torch.randn(8, 3, generator=torch.Generator().manual_seed(10 * step + rank))
            ddp(x).pow(2).mean().backward()
            optimizer.step()
            optimizer.zero_grad()
            averaged.update_parameters(ddp)
        keys_match = set(averaged.module.state_dict()) == set(net.state_dict())
        wrapped = isinstance(averaged.module, torch.nn.parallel.DistributedDataParallel)
        if rank == 0 and not wrapped:  # one rank alone evaluates: no collective may run
            averaged.module.eval()
            averaged.module(torch.ones(2, 3))
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(
            {"wrapped": wrapped, "keys_match": keys_match,
             "weight": averaged.module.state_dict()["0.weight"].tolist()}))


@pytest.mark.timeout(180)
def test_a_ddp_model_is_averaged_unwrapped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``averaged_model(ddp_model)`` averages the wrapped module: a copied DDP broadcast its
    buffers at every forward, so one rank evaluating the average alone hung or failed, and
    its state_dict's keys had a second ``module.`` that a plain model's average refused."""
    import json

    from spawning import spawn_ranks

    spawn_ranks(_ddp_average_worker, (str(tmp_path / "init"), str(tmp_path)), timeout=150)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert not r0["wrapped"] and r0["keys_match"]
    assert r0["weight"] == r1["weight"]  # DDP kept the ranks' weights, and averages, equal


def test_a_data_parallel_model_is_averaged_unwrapped() -> None:
    net = torch.nn.Linear(2, 2)
    averaged = averaged_model(torch.nn.DataParallel(net))
    assert isinstance(averaged.module, torch.nn.Linear)
    assert set(averaged.module.state_dict()) == set(net.state_dict())

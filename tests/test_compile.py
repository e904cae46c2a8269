"""A compiled training step with GreedyLR in device mode does not recompile as the LR moves.

Recompilation is decided by dynamo's guards, before any backend runs, so the test uses
the ``aot_eager`` backend (dynamo + AOT autograd, no code generation): it sees every
recompilation inductor would, in seconds instead of minutes on a CI CPU.
``benchmarks/gpu_check.py`` runs the same step with inductor on a GPU.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from greedylr import GreedyLR, rule

STEPS = 200
WARMUP = 5  # dynamo marks the changing host counters dynamic after one recompile


def _compiled_counts() -> tuple[int, int]:
    return counters["frames"]["total"], counters["stats"]["unique_graphs"]


@pytest.mark.timeout(300)
def test_no_recompilation_after_warmup_over_200_steps() -> None:
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    lr = torch.tensor(0.01)
    # SGD without foreach takes a tensor lr on the CPU; on a GPU use fused or capturable Adam
    opt = torch.optim.SGD(model.parameters(), lr=lr, foreach=False)
    config = {"patience": 0, "smoothing": "window", "window": 3, "min_lr_ratio": 0.01,
              "max_lr_ratio": 100.0}
    sched = GreedyLR(opt, **config)
    assert sched.device_mode
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

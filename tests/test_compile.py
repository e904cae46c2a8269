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

# The oldest torch these guarantees are verified on (CI runs 2.13 and 2.14). torch 2.2's
# dynamo recompiles the step as the LR changes and cannot trace the rule's dict.update.
pytestmark = pytest.mark.skipif(
    tuple(int(part) for part in torch.__version__.split(".")[:2]) < (2, 13),
    reason=f"compiled device mode is verified from torch 2.13; this is {torch.__version__}",
)

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
    # compare="best" on this noisy loss changes the LR at most steps: many LR values
    config = {"patience": 0, "smoothing": "window", "window": 3, "min_lr_ratio": 0.01,
              "max_lr_ratio": 100.0, "compare": "best"}
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


@pytest.mark.timeout(200)
def test_compile_rule_gives_one_graph_and_the_eager_lrs() -> None:
    """``compile_rule``: the rule alone compiled, stepped from an eager loop."""
    torch._dynamo.reset()
    counters.clear()
    config = {"patience": 1, "smoothing": "ema", "window": 4, "reset_patience": 2,
              "min_lr_ratio": 0.25, "on_nonfinite": "decrease"}
    params = [torch.nn.Parameter(torch.zeros(2))]
    compiled_opt = torch.optim.SGD(params, lr=torch.tensor(0.125), foreach=False)
    eager_opt = torch.optim.SGD(params, lr=torch.tensor(0.125), foreach=False)
    compiled = GreedyLR(compiled_opt, compile_rule="aot_eager", **config)
    eager = GreedyLR(eager_opt, **config)
    gen = torch.Generator().manual_seed(3)
    losses = (torch.rand(120, generator=gen) + torch.linspace(1.0, 0.0, 120)).tolist()
    losses[50] = float("nan")
    graphs = []
    for loss in losses:
        for opt, sched in ((compiled_opt, compiled), (eager_opt, eager)):
            opt.step()
            sched.step(torch.tensor(loss))
        assert compiled_opt.param_groups[0]["lr"].item() == eager_opt.param_groups[0]["lr"].item()
        graphs.append(counters["stats"]["unique_graphs"])
    # One graph; on the CPU only, dynamo specialises a 0-d float64 CPU tensor input on
    # "not NaN" (torch/_subclasses/fake_tensor.py, from_real_tensor), so the first NaN
    # loss compiles a second graph, once. CUDA tensors are not specialised that way.
    assert graphs[49] == 1 and graphs[-1] == 2 and graphs[51:] == [2] * (len(losses) - 51)
    assert compiled.state == eager.state
    # repr: bit-exact floats, and the NaN loss of the nonfinite event equal to itself
    assert repr([e.to_dict() for e in compiled.events]) == repr([e.to_dict() for e in eager.events])
    assert len(compiled.events) > 10
    with pytest.raises(ValueError, match="compile_rule needs device mode"):
        GreedyLR(torch.optim.SGD(params, lr=0.1), compile_rule=True)

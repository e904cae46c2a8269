"""GreedyLR through ``accelerator.prepare`` with 2 real CPU processes, no mocks.

Accelerate's ``AcceleratedScheduler.step`` calls the wrapped scheduler once per process
(``num_processes`` times per optimizer step, with ``split_batches=False``); a plateau
scheduler then runs through its patience ``num_processes`` times too fast. GreedyLR
must advance exactly once per optimizer step, and must accept the wrapper's
``_step_count += 1`` (``adjust_scheduler=True``).

The launcher is ``accelerate.debug_launcher``'s recipe (a FileStore rendezvous, gloo on
loopback), started with ``spawn`` rather than ``fork``: the pytest process has already
run torch's thread pools, which a forked child must not inherit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
accelerate = pytest.importorskip("accelerate")

from accelerate.utils import patch_environment  # noqa: E402
from accelerate.utils.launch import PrepareForLaunch  # noqa: E402

from greedylr import GreedyLR  # noqa: E402
from spawning import spawn_ranks  # noqa: E402

WORLD = 2
ACCUMULATION = 2
CONFIG = {"factor": 0.5, "patience": 1, "smoothing": "none"}


def _worker(out_dir: str, x: torch.Tensor, y: torch.Tensor) -> None:
    from accelerate import Accelerator
    from accelerate.utils import GradientAccumulationPlugin

    accelerator = Accelerator(
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=ACCUMULATION, adjust_scheduler=True
        )
    )
    result = _train(accelerator, x, y)
    Path(out_dir, f"rank{accelerator.process_index}.json").write_text(json.dumps(result))
    # The prepared DDP model freed, then the gloo group destroyed before interpreter exit,
    # where a live group can abort the process (as examples/accelerate_loop.py does).
    accelerator.free_memory()
    accelerator.end_training()


def _train(accelerator, x: torch.Tensor, y: torch.Tensor,
           scaler: torch.amp.GradScaler | None = None) -> dict:
    """The loop of docs/frameworks/accelerate.md; ``scaler``: a GradScaler handed to the
    prepared Accelerator and optimizer (Accelerate builds none on CPU)."""
    import torch.nn.functional as F

    data = torch.utils.data.TensorDataset(x, y)
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    greedy = GreedyLR(optimizer, **CONFIG)
    loader = torch.utils.data.DataLoader(data, batch_size=16, shuffle=False)
    model, optimizer, scheduler, loader = accelerator.prepare(model, optimizer, greedy, loader)
    if scaler is not None:
        accelerator.scaler = scaler
        optimizer.__setstate__({"scaler": scaler})

    micro: list[float] = []
    lrs: list[float] = []
    skipped: list[bool] = []
    losses: list[torch.Tensor] = []
    for batch_x, batch_y in loader:
        with accelerator.accumulate(model):
            loss = F.cross_entropy(model(batch_x), batch_y)
            accelerator.backward(loss)
            optimizer.step()
            losses.append(loss.detach())
            micro.append(loss.item())
            if accelerator.sync_gradients:  # the optimizer has stepped, or skipped
                if not accelerator.optimizer_step_was_skipped:
                    greedy.observe(torch.stack(losses).mean())
                losses.clear()
                skipped.append(accelerator.optimizer_step_was_skipped)
            scheduler.step()  # Accelerate calls greedy.step() num_processes times
            optimizer.zero_grad()
        if accelerator.sync_gradients:
            lrs.append(greedy.get_last_lr()[0])
    return {
        "num_processes": accelerator.num_processes,
        "wrapper": type(scheduler).__name__,
        "micro": micro,
        "lrs": lrs,
        "skipped": skipped,
        "fed": list(greedy.trace.losses),
        "decisions": greedy.state.step,
        "step_count": greedy._step_count,
    }


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    # Loaded once here rather than in each child: importing sklearn there costs seconds.
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return torch.tensor(x[:512] / 16.0, dtype=torch.float32), torch.tensor(y[:512])


def _launch(out_dir: Path, timeout: float) -> None:
    """``accelerate.debug_launcher``, with the spawn start method and a timeout."""
    # The FileStore creates this file and deletes it when the group is done.
    with patch_environment(
        world_size=WORLD,
        master_addr="127.0.0.1",
        accelerate_mixed_precision="no",
        accelerate_debug_rdv_file=str(out_dir / "rendezvous"),
        accelerate_use_cpu="yes",
        gloo_socket_ifname="lo",
        omp_num_threads=1,
    ):
        spawn_ranks(PrepareForLaunch(_worker, debug=True), (str(out_dir), *_digits()),
                    timeout=timeout, nprocs=WORLD)


@pytest.mark.timeout(300)
def test_prepared_greedylr_advances_once_per_optimizer_step(tmp_path: Path) -> None:
    _launch(tmp_path, timeout=240)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    r0, r1 = ranks
    steps = len(r0["micro"]) // ACCUMULATION
    assert steps == 8  # 512 samples / 16 per batch / 2 ranks / 2 micro-batches per step

    for r in ranks:
        assert r["num_processes"] == WORLD
        assert r["wrapper"] == "AcceleratedScheduler"
        assert r["decisions"] == steps  # not steps * num_processes
        # adjust_scheduler=True bumped _step_count on the accumulating micro-batches.
        assert r["step_count"] > steps
    assert r0["micro"] != r1["micro"], "both ranks saw the same data: nothing to agree on"
    assert r0["lrs"] == r1["lrs"]
    assert r0["fed"] == r1["fed"]

    # Each decision was fed the mean over the micro-batches, then over the ranks ...
    def per_rank(r: dict) -> list[float]:
        m = r["micro"]
        return [sum(m[i : i + ACCUMULATION]) / ACCUMULATION for i in range(0, len(m), ACCUMULATION)]

    expected = [(a + b) / 2 for a, b in zip(per_rank(r0), per_rank(r1), strict=True)]
    assert r0["fed"] == pytest.approx(expected, rel=1e-6)
    # ... and the LRs are those of one process fed that sequence once per step.
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.05)
    single = GreedyLR(opt, **CONFIG)
    replay = []
    for value in r0["fed"]:
        opt.step()
        single.step(value)
        replay.append(single.get_last_lr()[0])
    assert r0["lrs"] == replay
    assert len(set(replay)) > 1, "the LR never moved: the test would prove nothing"


def test_a_skipped_optimizer_step_feeds_nothing() -> None:
    """fp16 overflow: Accelerate skips the optimizer step, and its scheduler wrapper does
    not call GreedyLR.step. The documented loop observes a window's losses only once its
    step was taken, so the skipped window's do not reach the next decision. A real
    GradScaler whose scale overflows every other step (after each good step it grows to
    2**127, where these gradients overflow; the overflow brings it back to 2**20), in
    this process."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import GradientAccumulationPlugin

    x, y = _digits()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**20, growth_factor=2.0**107,
                                  backoff_factor=2.0**-107, growth_interval=1)
    try:
        accelerator = Accelerator(cpu=True, gradient_accumulation_plugin=(
            GradientAccumulationPlugin(num_steps=ACCUMULATION, adjust_scheduler=True)))
        # raw pixels (0-16), not scaled to 0-1: gradients large enough to overflow
        result = _train(accelerator, x[:128] * 16.0, y[:128], scaler)
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    assert result["skipped"] == [False, True, False, True]
    m = result["micro"]
    assert result["decisions"] == 2
    assert result["fed"] == pytest.approx([(m[0] + m[1]) / 2, (m[4] + m[5]) / 2], rel=1e-6)

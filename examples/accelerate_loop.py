"""GreedyLR through ``accelerator.prepare``, on scikit-learn's wine data.

    pip install 'greedylr[hf,compare]'   # accelerate; scikit-learn, for its wine data
    python examples/accelerate_loop.py
    torchrun --standalone --nproc_per_node=2 examples/accelerate_loop.py --cpu  # 2 CPU processes
    accelerate launch --multi_gpu --num_processes 2 examples/accelerate_loop.py  # 2 GPUs

Accelerate's scheduler wrapper calls ``step`` once per process on every optimizer step.
GreedyLR counts optimizer steps itself and ignores the repeated calls, so its patience
means the same thing on 1 or 8 processes. Keep a reference to the GreedyLR you built:
``observe`` the mean loss of each accumulation window once its optimizer step was taken,
then the prepared scheduler's ``step()`` decides on it, averaged across the processes.
"""

from __future__ import annotations

import argparse

import torch
from accelerate import Accelerator
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader, TensorDataset

from greedylr import GreedyLR


def main(epochs: int = 30, accumulation: int = 2, cpu: bool = False) -> None:
    accelerator = Accelerator(gradient_accumulation_steps=accumulation, cpu=cpu)
    train(accelerator, epochs)
    # Free the prepared (DDP) model, then destroy the process group while the interpreter
    # is alive: a gloo group left to interpreter exit can abort the process there
    # ("terminate called without an active exception"), and a DDP reducer that outlives
    # its group can hang it.
    accelerator.free_memory()
    accelerator.end_training()


def train(accelerator: Accelerator, epochs: int) -> None:
    x, y = load_wine(return_X_y=True)
    data = TensorDataset(
        torch.tensor(StandardScaler().fit_transform(x), dtype=torch.float32), torch.tensor(y)
    )
    loader = DataLoader(
        data, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0)
    )

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(13, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    greedy = GreedyLR(optimizer, patience=3, window=5)
    model, optimizer, scheduler, loader = accelerator.prepare(model, optimizer, greedy, loader)

    losses: list[torch.Tensor] = []
    for _ in range(epochs):
        for xb, yb in loader:
            with accelerator.accumulate(model):
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
                accelerator.backward(loss)
                optimizer.step()
                losses.append(loss.detach())
                if accelerator.sync_gradients:  # the optimizer stepped, or skipped the step
                    # a skipped step (an fp16 overflow) feeds nothing: Accelerate's wrapper
                    # then does not call GreedyLR.step, and its loss would join the next
                    if not accelerator.optimizer_step_was_skipped:
                        greedy.observe(torch.stack(losses).mean())
                    losses.clear()
                scheduler.step()  # a no-op until the optimizer really steps
                optimizer.zero_grad()

    kinds = [e.kind for e in greedy.events]
    accelerator.print(
        f"{greedy.state.step} decisions for {accelerator.num_processes} process(es); "
        f"final lr {greedy.get_last_lr()[0]:.3g}; "
        f"{kinds.count('increase')} increases, {kinds.count('decrease')} decreases"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--accumulation", type=int, default=2)
    parser.add_argument("--cpu", action="store_true", help="CPU processes (gloo) under torchrun")
    args = parser.parse_args()
    main(args.epochs, args.accumulation, args.cpu)

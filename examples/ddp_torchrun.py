"""GreedyLR in a plain DDP loop, launched with torchrun, on scikit-learn's digits.

    pip install 'greedylr[compare]'   # scikit-learn, for its digits
    torchrun --standalone --nproc_per_node=2 examples/ddp_torchrun.py
    python examples/ddp_torchrun.py            # one process works too

Each rank trains on its own shard (DistributedSampler), so each rank has its own loss.
``GreedyLR`` averages the loss across ranks before deciding (``sync_ranks=True``, the
default: one all-reduce of one scalar per step), so every rank applies the same LR and
the replicas stay replicas. The script checks that at the end.
"""

from __future__ import annotations

import argparse
import gc
import os

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from greedylr import GreedyLR


def main(epochs: int = 5, accumulation: int = 2) -> None:
    distributed = "WORLD_SIZE" in os.environ  # set by torchrun
    if not distributed:
        train(torch.device("cpu"), epochs, accumulation)
        return
    use_cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    device = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
    try:
        # The DDP model lives inside train(), so it is freed before the group is
        # destroyed: a DDP reducer that outlives its process group can hang at exit.
        train(device, epochs, accumulation)
        # and freed for sure: a reference cycle would keep DDP's reducer (and gloo work it
        # holds) alive until interpreter shutdown, where gloo can abort the process
        gc.collect()
        # every rank done with the group before any rank tears it down (gloo can abort
        # a rank whose peer closed the connection under it)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def train(device: torch.device, epochs: int, accumulation: int) -> None:
    distributed = dist.is_initialized()
    rank = dist.get_rank() if distributed else 0
    x, y = load_digits(return_X_y=True)
    data = TensorDataset(torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y))
    sampler = DistributedSampler(data, seed=0) if distributed else None
    loader = DataLoader(data, batch_size=32, sampler=sampler, shuffle=sampler is None)

    torch.manual_seed(0)  # the same initial weights on every rank
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    ).to(device)
    if distributed:
        model = DistributedDataParallel(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = GreedyLR(optimizer, patience=5, window=10)  # sync_ranks=True by default

    lrs = []
    for epoch in range(epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        for i, (xb, yb) in enumerate(loader):
            loss = torch.nn.functional.cross_entropy(model(xb.to(device)), yb.to(device))
            (loss / accumulation).backward()
            # The mean over the micro-batches of this step; step() decides on it.
            scheduler.observe(loss.detach())
            if (i + 1) % accumulation == 0:
                optimizer.step()
                optimizer.zero_grad()
                scheduler.step()  # on every rank: it is a collective
                lrs.append(scheduler.get_last_lr()[0])

    kinds = [e.kind for e in scheduler.events]
    if distributed:
        # Every rank holds the same trajectory: compare with rank 0's.
        mine = torch.tensor(lrs, dtype=torch.float64, device=device)
        reference = mine.clone()
        dist.broadcast(reference, src=0)
        agree = torch.equal(mine, reference)
        flags = torch.tensor([float(agree)], device=device)
        dist.all_reduce(flags, op=dist.ReduceOp.MIN)
        if rank == 0:
            print(f"all ranks hold the same LR at every step: {bool(flags.item())}")
    if rank == 0:
        print(
            f"{len(lrs)} optimizer steps, final lr {lrs[-1]:.3g}; "
            f"{kinds.count('increase')} increases, {kinds.count('decrease')} decreases"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--accumulation", type=int, default=2)
    args = parser.parse_args()
    main(args.epochs, args.accumulation)

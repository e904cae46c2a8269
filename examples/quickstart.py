"""GreedyLR in a plain PyTorch loop, on real bundled data (scikit-learn's digits).

    pip install 'greedylr[compare]'   # scikit-learn, for its digits
    python examples/quickstart.py

Trains a small MLP for a few hundred AdamW steps, steps GreedyLR with the training loss
after every optimizer step, and prints the held-out accuracy and what the scheduler did.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from greedylr import GreedyLR


def main(steps: int = 600, seed: int = 0) -> float:
    torch.manual_seed(seed)
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x / 16.0, y, test_size=0.25, random_state=seed, stratify=y
    )
    x_train, x_test = (torch.tensor(a, dtype=torch.float32) for a in (x_train, x_test))
    y_train, y_test = (torch.tensor(a) for a in (y_train, y_test))

    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = GreedyLR(optimizer)  # the defaults: F 0.95, patience 10, EMA span 50

    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randint(len(x_train), (64,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step(loss)  # the one line GreedyLR needs

    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    kinds = [e.kind for e in scheduler.events]
    print(f"held-out accuracy {accuracy:.3f} after {steps} steps")
    print(f"final lr {scheduler.get_last_lr()[0]:.3g}; "
          f"{kinds.count('increase')} increases, {kinds.count('decrease')} decreases")
    for event in scheduler.events[-3:]:
        print("  ", event.reason)
    return accuracy


if __name__ == "__main__":
    main()

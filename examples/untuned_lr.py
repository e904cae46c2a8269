"""An LR nobody tuned: an LR range test first, then GreedyLR (scikit-learn's digits).

    pip install 'greedylr[compare]'   # scikit-learn, for its digits
    python examples/untuned_lr.py [LR]

SGD with momentum at an LR far too large (1.0 by default), trained twice from the same
start: GreedyLR at that LR, and GreedyLR after ``greedylr.lr_range_test`` placed it.
Prints the suggestion and both held-out accuracies. The range test puts the model, the
optimizer and the random generators back, so the second run starts where the first did;
only its LR differs. From an LR far too small (``python examples/untuned_lr.py 0.001``)
the sweep's loss still falls at its end, and it suggests ten times the LR given, its
most: keep that unless the LR may be more than about thirty times too small, and then
run the test again from the suggestion.
"""

from __future__ import annotations

import sys

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import greedylr


def train(data: list[torch.Tensor], lr: float, range_test: bool, steps: int,
          seed: int) -> float:
    """GreedyLR from ``lr`` (after a range test if asked); the held-out accuracy."""
    x_train, x_test, y_train, y_test = data
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)

    def train_step() -> torch.Tensor:  # one step of the loop, on the next batch
        batch = torch.randint(len(x_train), (64,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    if range_test:
        result = greedylr.lr_range_test(model, optimizer, train_step)
        result.apply(optimizer)
        print(f"range test: {len(result.losses)} steps, suggested lr {result.suggested_lr:.3g} "
              f"({result.suggested_multiplier:.3g}x the lr given)")
        generator.manual_seed(seed)  # the same batches as the run without the test
    scheduler = greedylr.GreedyLR(optimizer, total_steps=steps)
    for _ in range(steps):
        scheduler.step(train_step())
    with torch.no_grad():
        return (model(x_test).argmax(1) == y_test).float().mean().item()


def main(lr: float = 1.0, steps: int = 400, seed: int = 0) -> dict[str, float]:
    x, y = load_digits(return_X_y=True)
    splits = train_test_split(x / 16.0, y, test_size=0.25, random_state=seed, stratify=y)
    data = [torch.tensor(a, dtype=torch.float32 if i < 2 else torch.int64)
            for i, a in enumerate(splits)]
    accuracies = {}
    for range_test in (False, True):
        name = "after the range test" if range_test else f"at lr {lr:g}"
        accuracies[name] = train(data, lr, range_test, steps, seed)
        print(f"GreedyLR {name}: held-out accuracy {accuracies[name]:.3f}")
    return accuracies


if __name__ == "__main__":
    main(*(float(a) for a in sys.argv[1:2]))

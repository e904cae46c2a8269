"""Naive baselines on the scored halves (the even held-out rows) of the fifteenth probe
split's two table workloads, beside which its models' held-out metrics are read:

- the docstring retrieval: chance (the log of the half's number of pairs), and TF-IDF
  cosine between a first line's words and each signature's (idf from the training pairs'
  two sides), as a softmax at its best temperature of a few;
- the complex functions: the training mean, each function's training mean, the nearest
  training argument of the same function, and its five nearest, weighted by inverse
  distance (on the standardized arguments; RMSE of the standardized value)::

    python results/defaults/round41/baselines.py
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from greedylr.evidence.workloads import data


def retrieval() -> None:
    pairs, ids = data.transformers_docstrings()
    code, doc = pairs.x_test[0::2], pairs.y_test[0::2]

    def bag(x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(x), ids).scatter_(1, x, 1.0)
        out[:, :2] = 0  # padding and rare words carry nothing
        return out

    seen = torch.cat([bag(pairs.x_train), bag(pairs.y_train)]).clamp(max=1)
    idf = torch.log((len(seen) + 1) / (seen.sum(0) + 1))
    similarity = F.normalize(bag(doc) * idf, dim=1) @ F.normalize(bag(code) * idf, dim=1).T
    target = torch.arange(len(similarity))
    nll = min(F.cross_entropy(scale * similarity, target).item()
              for scale in (5, 10, 15, 20, 25, 30, 40))
    print(f"docstrings, {len(target)} scored pairs: chance {math.log(len(target)):.2f} nats, "
          f"TF-IDF {nll:.2f} (recall at 1 "
          f"{(similarity.argmax(1) == target).float().mean().item():.0%})")


def complex_functions() -> None:
    values = data.complex_values()
    x, y = values.x_test[0::2], values.y_test[0::2]

    def rmse(prediction: torch.Tensor) -> float:
        return ((y - prediction) ** 2).mean().sqrt().item()

    function = values.x_train[:, 0]
    means = torch.stack([values.y_train[function == f].mean(0) for f in x[:, 0]])
    nearest, five = [], []
    for row in x:
        same = function == row[0]
        distance = (values.x_train[same, 1:] - row[1:]).norm(dim=1)
        near = distance.topk(5, largest=False)
        weight = 1 / (near.values + 1e-6)
        targets = values.y_train[same]
        nearest.append(targets[near.indices[0]])
        five.append((targets[near.indices] * weight[:, None]).sum(0) / weight.sum())
    print(f"complex values, {len(y)} scored rows: training mean "
          f"{rmse(values.y_train.mean(0)):.3f}, each function's {rmse(means):.3f}, nearest "
          f"{rmse(torch.stack(nearest)):.3f}, five nearest {rmse(torch.stack(five)):.3f}")


if __name__ == "__main__":
    retrieval()
    complex_functions()

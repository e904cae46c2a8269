"""Checked by mypy in ``.ci/run`` (``warn_unused_ignores``), never run.

Each ``type: ignore`` marks a line that MUST be a type error: if the API stops refusing
it, the ignore becomes unused and mypy fails.
"""

import torch

from greedylr import GreedyLR

optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
GreedyLR(optimizer, patience=5, smoothing="window", min_lr=[1e-5])  # fine
GreedyLR(optimizer, patince=5)  # type: ignore[call-arg]
GreedyLR(optimizer, smoothing="windows")  # type: ignore[arg-type]
GreedyLR(optimizer, factor="0.5")  # type: ignore[arg-type]

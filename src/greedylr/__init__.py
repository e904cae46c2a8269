"""greedylr: the loss-driven learning-rate scheduler, production-grade.

>>> import torch, greedylr
>>> opt = torch.optim.AdamW(torch.nn.Linear(4, 1).parameters(), lr=3e-4)
>>> sched = greedylr.GreedyLR(opt)
"""

from greedylr.rule import Decision, Event, GreedyConfig
from greedylr.scheduler import GreedyLR
from greedylr.trace import Trace, diagnose, load_trace

__version__ = "0.2.0"

__all__ = [
    "Decision",
    "Event",
    "GreedyConfig",
    "GreedyLR",
    "Trace",
    "__version__",
    "diagnose",
    "load_trace",
]

"""greedylr: the loss-driven learning-rate scheduler, production-grade.

>>> import torch, greedylr
>>> opt = torch.optim.AdamW(torch.nn.Linear(4, 1).parameters(), lr=3e-4)
>>> sched = greedylr.GreedyLR(opt)

The names below are imported when first used, so that ``import greedylr.rule`` (standard
library only) and ``greedylr.integrations.optax`` work without torch installed, and
``import greedylr`` costs nothing until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from greedylr.averaging import averaged_model, power_ema
    from greedylr.config import cosine_mode
    from greedylr.diagnosis import diagnose
    from greedylr.range_test import RangeTest, lr_range_test
    from greedylr.rule import Decision, Event, GreedyConfig
    from greedylr.scheduler import GreedyLR
    from greedylr.trace import Trace, load_trace

__version__ = "0.11.10"

_HOMES = {
    "Decision": "greedylr.rule",
    "Event": "greedylr.rule",
    "GreedyConfig": "greedylr.rule",
    "GreedyLR": "greedylr.scheduler",
    "RangeTest": "greedylr.range_test",
    "Trace": "greedylr.trace",
    "averaged_model": "greedylr.averaging",
    "cosine_mode": "greedylr.config",
    "diagnose": "greedylr.diagnosis",
    "load_trace": "greedylr.trace",
    "lr_range_test": "greedylr.range_test",
    "power_ema": "greedylr.averaging",
}

__all__ = [
    "Decision",
    "Event",
    "GreedyConfig",
    "GreedyLR",
    "RangeTest",
    "Trace",
    "__version__",
    "averaged_model",
    "cosine_mode",
    "diagnose",
    "load_trace",
    "lr_range_test",
    "power_ema",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'greedylr' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})

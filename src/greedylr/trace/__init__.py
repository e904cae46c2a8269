"""The pulse: what GreedyLR saw and did at every step, why, and where the run was stressed.

A package of small modules, re-exported here (``from greedylr.trace import ...`` is the
public path): ``rows`` (the row chunk and event decoding), ``sinks`` (where rows go),
``recorder`` (:class:`Trace`), ``device`` (device-mode tensors), ``files`` (saving and
loading) and ``fileformat``. :func:`diagnose` and its classes live in
``greedylr.diagnosis``; they are imported from there on first use, because that module
reads traces (an import here would be circular). The guide: docs/guides/pulse.md.

Examples:
    >>> trace = Trace(1)
    >>> for step, loss in enumerate([2.0, 1.5, 1.2], start=1):
    ...     trace.log(source="train-a")
    ...     trace.record(step, loss, loss, [0.1])
    >>> len(trace), trace.losses.tolist()
    (3, [2.0, 1.5, 1.2])
    >>> trace.signal("source")
    ['train-a', 'train-a', 'train-a']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from greedylr.rule import EVENT_BITS
from greedylr.trace.files import load_trace
from greedylr.trace.recorder import Trace
from greedylr.trace.rows import Rows, decode_events

# the class path of a pickled trace's signal columns from before the split (old pickles load)
from greedylr.trace.rows import _Signal as _Signal
from greedylr.trace.sinks import (
    CallableSink,
    CSVSink,
    JSONLSink,
    LoggingSink,
    Sink,
    TensorBoardSink,
)

if TYPE_CHECKING:
    from greedylr.diagnosis import Diagnosis, Episode, diagnose

__all__ = [
    "EVENT_BITS",
    "CSVSink",
    "CallableSink",
    "Diagnosis",
    "Episode",
    "JSONLSink",
    "LoggingSink",
    "Rows",
    "Sink",
    "TensorBoardSink",
    "Trace",
    "decode_events",
    "diagnose",
    "load_trace",
]

_LAZY = {"Diagnosis", "Episode", "diagnose"}

def __getattr__(name: str) -> Any:
    """Import the diagnosis names on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'greedylr.trace' has no attribute {name!r}")
    value = getattr(importlib.import_module("greedylr.diagnosis"), name)
    globals()[name] = value
    return value

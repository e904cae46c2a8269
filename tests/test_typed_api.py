"""The public constructor is typed: every knob an explicit keyword, in step with GreedyConfig.

``tests/typing/check_api.py`` is the type checker's half: ``.ci/run`` runs mypy on it
with ``warn_unused_ignores``, so a misspelt knob that stopped being a type error fails CI.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch

from greedylr import GreedyConfig, GreedyLR

ADAPTER_OPTIONS = {"sync_ranks", "trace", "device_mode", "compile_rule"}


def _keywords() -> dict[str, inspect.Parameter]:
    params = inspect.signature(GreedyLR.__init__).parameters
    return {n: p for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def test_every_config_field_is_a_keyword_with_its_default_and_type() -> None:
    keywords = _keywords()
    knobs = {n: p for n, p in keywords.items() if n not in ADAPTER_OPTIONS}
    config_fields = dataclasses.fields(GreedyConfig)
    assert set(knobs) == {f.name for f in config_fields}
    for f in config_fields:
        assert knobs[f.name].default == f.default, f.name
        assert knobs[f.name].annotation == f.type, f.name  # both as written in the source
    assert not any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        for p in inspect.signature(GreedyLR.__init__).parameters.values()
    )


def test_the_keywords_reach_the_config() -> None:
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    assert GreedyLR(opt).config == GreedyConfig()
    chosen = {"factor": 0.5, "patience": 3, "smoothing": "window", "window": 7,
              "min_lr": [0.01], "on_nonfinite": "decrease", "check_bounds": False}
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    assert GreedyLR(opt, **chosen).config == GreedyConfig(**chosen)


def test_a_misspelt_knob_is_a_type_error_at_runtime() -> None:
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'patince'"):
        GreedyLR(opt, patince=5)  # type: ignore[call-arg]

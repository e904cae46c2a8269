"""benchmarks/gpu_check.py runs on a CPU in seconds and reports the CPU table."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(240)
def test_quick_run_on_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gpu_check = _load()
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--quick", "--cpu-only", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "CUDA parts skipped (--cpu-only)" in printed
    assert "Training steps per second on cpu" in printed
    results = json.loads(out.read_text())
    rows = results["throughput"]["cpu"]
    assert set(rows) == {"none", "float", "device", "transformers"}
    assert all(rate > 0 for rate in rows.values())
    assert "One sched.step(loss) on cpu" in printed
    costs = results["costs"]["cpu"]
    assert set(costs) == {"float", "device", "transformers"}  # compile_rule: with --compile
    # the eager tensor rule is about a hundred ops; float mode a handful
    assert costs["device"]["cpu_ops"] > 50 > 10 > costs["float"]["cpu_ops"]
    assert all("us_added" in row for row in costs.values())
    assert results["failed"] == []

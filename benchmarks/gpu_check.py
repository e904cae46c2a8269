"""Proof that device-mode GreedyLR never syncs the GPU, and what each scheduler costs.

    python benchmarks/gpu_check.py                 # one CUDA GPU: about 2-4 minutes
    python benchmarks/gpu_check.py --quick         # seconds (CI runs this on a CPU)
    python benchmarks/gpu_check.py --json out.json # also write the figures

Three parts, each on every device that is there (the CPU always, CUDA if available):

1. **Sync check** (CUDA only). Training steps of a small MLP with fused AdamW whose LR is
   a tensor on the GPU run under ``torch.cuda.set_sync_debug_mode("error")``, where any
   device-to-host synchronisation raises. First without a scheduler (if that already
   syncs, the check is inconclusive and says so), then with device-mode GreedyLR, which
   must pass; then two controls that must fail: GreedyLR forced to float mode and
   transformers' ``GreedyLR``, which both call ``float(loss)``.
2. **Compile check** (CUDA by default, CPU with ``--compile``). The whole training step
   (forward, backward, ``opt.step()``, ``sched.step(loss)``) under ``torch.compile``
   (inductor), stepped while the LR moves: no recompilation after warm-up, counted with
   dynamo's counters; the LRs are replayed through the float rule and compared. On CUDA
   the steady-state compiled steps, and an eager step with ``compile_rule=True`` (the
   rule alone compiled), also run under the sync check.
3. **Throughput**. Training steps per second of the same model with no scheduler,
   GreedyLR in float mode (Python float LR), GreedyLR in device mode (tensor LR), and
   transformers' ``GreedyLR``; rounds are interleaved and the median is shown with the
   overhead relative to no scheduler. With the compile check on, three more rows: the
   eager step with ``compile_rule=True``, and the compiled step without a scheduler and
   with device-mode GreedyLR (compared with each other).
4. **Cost of one ``sched.step(loss)``** in an eager loop, for float mode, device mode
   eager, device mode with ``compile_rule=True`` (with the compile check on) and
   transformers' ``GreedyLR``: the GPU activities it launches (kernels and copies) and
   the CPU ops it records, counted with ``torch.profiler`` around that call alone, and
   the microseconds it adds to a training step (from the throughput rows).

The exit status is 1 if device mode synced or recompiled, 0 otherwise (also when the
CUDA parts were skipped: no GPU is not a failure; the message says so).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from greedylr import GreedyLR


@dataclass
class Settings:
    """Sizes of one run; ``--quick`` shrinks them to seconds."""

    width: int = 256
    depth: int = 3
    batch: int = 64
    features: int = 64
    classes: int = 10
    warmup: int = 30
    steps: int = 300
    rounds: int = 3
    sync_steps: int = 60
    compile_steps: int = 200
    budget_s: float = 270.0


QUICK = Settings(width=32, depth=2, batch=16, features=16, warmup=3, steps=15, rounds=1,
                 sync_steps=10, compile_steps=20)


@dataclass
class Report:
    """Everything measured, printed at the end and optionally written as JSON."""

    checks: dict[str, str] = field(default_factory=dict)
    throughput: dict[str, dict[str, float]] = field(default_factory=dict)
    costs: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


# -- the workload ------------------------------------------------------------------------


class Run:
    """One model, optimizer and (optional) scheduler, with pre-made batches on the device."""

    def __init__(self, kind: str, device: torch.device, s: Settings, *, compiled: bool = False,
                 backend: str = "inductor", **greedy: Any):
        torch.manual_seed(0)
        layers: list[nn.Module] = [nn.Linear(s.features, s.width), nn.ReLU()]
        for _ in range(s.depth - 2):
            layers += [nn.Linear(s.width, s.width), nn.ReLU()]
        layers.append(nn.Linear(s.width, s.classes))
        self.model = nn.Sequential(*layers).to(device)
        self.batches = [
            (torch.randn(s.batch, s.features, device=device),
             torch.randint(0, s.classes, (s.batch,), device=device))
            for _ in range(8)
        ]
        self.device = device
        lr: float | torch.Tensor = 1e-3
        if kind in ("device", "device-rule"):
            lr = torch.tensor(1e-3, device=device)
        cuda = device.type == "cuda"
        # fused AdamW takes a tensor LR on the GPU without a sync; on the CPU the
        # single-tensor path does (foreach rejects a tensor LR)
        options: dict[str, Any] = {"fused": True} if cuda else {"foreach": False}
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=lr, **options)
        self.lr = lr
        self.sched: Any = None
        if kind in ("float", "device", "device-rule"):
            self.sched = GreedyLR(self.opt, device_mode=kind != "float",
                                  compile_rule=backend if kind == "device-rule" else False,
                                  **greedy)
        elif kind == "transformers":
            from transformers.optimization import GreedyLR as HFGreedyLR

            self.sched = HFGreedyLR(self.opt)
        self.i = 0
        self.record = False
        self.losses: list[torch.Tensor] = []  # device tensors: recording does not sync
        self.lrs: list[torch.Tensor] = []
        self._step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = self._train_step
        if compiled:
            self._step = torch.compile(self._train_step, backend=backend)

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.model_step(x, y)
        if self.sched is not None:
            self.sched.step(loss.detach())
        return loss

    def model_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training step without the scheduler."""
        loss = nn.functional.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss

    def step(self) -> None:
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        loss = self._step(x, y)
        if self.record:
            self.losses.append(loss.detach())
            self.lrs.append(torch.as_tensor(self.opt.param_groups[0]["lr"]).detach().clone())

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


@contextlib.contextmanager
def sync_errors() -> Iterator[None]:
    """Every device-to-host synchronisation raises inside this block."""
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


# -- 1. sync check ------------------------------------------------------------------------


def _syncs(kind: str, device: torch.device, s: Settings, *, compiled: bool = False,
           backend: str = "inductor") -> str | None:
    """None if ``sync_steps`` steps of ``kind`` ran without a sync, else the error."""
    run = Run(kind, device, s, compiled=compiled, backend=backend)
    for _ in range(s.warmup):  # allocator, cuBLAS and optimizer state set-up may sync
        run.step()
    run.sync()
    try:
        with sync_errors():
            for _ in range(s.sync_steps):
                run.step()
    except RuntimeError as exc:
        return str(exc).splitlines()[0]
    finally:
        run.sync()
    return None


def sync_check(device: torch.device, s: Settings, report: Report) -> None:
    baseline = _syncs("none", device, s)
    if baseline is not None:
        report.checks["sync: no scheduler"] = f"syncs ({baseline}): check inconclusive"
        report.failed.append("baseline training step syncs")
        return
    report.checks["sync: no scheduler"] = f"no sync in {s.sync_steps} steps"
    error = _syncs("device", device, s)
    if error is None:
        report.checks["sync: GreedyLR device mode"] = f"no sync in {s.sync_steps} steps: PASS"
    else:
        report.checks["sync: GreedyLR device mode"] = f"SYNCS: {error}"
        report.failed.append("device mode syncs")
    for kind, name in (("float", "GreedyLR float mode"), ("transformers", "transformers GreedyLR")):
        try:
            error = _syncs(kind, device, s)
        except ImportError:
            report.checks[f"sync: {name} (control)"] = "transformers not installed"
            continue
        report.checks[f"sync: {name} (control)"] = (
            f"syncs, as expected ({error})" if error else "no sync detected (unexpected)"
        )


# -- 2. compile check ---------------------------------------------------------------------


def compile_check(device: torch.device, s: Settings, report: Report, backend: str) -> None:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    # a short patience and window, so that the LR moves many times during the check
    run = Run("device", device, s, compiled=True, backend=backend, patience=2, window=5)
    run.record = True
    start = time.perf_counter()
    for _ in range(max(s.warmup, 5)):
        run.step()
    run.sync()
    warm_s = time.perf_counter() - start
    before = (counters["frames"]["total"], counters["stats"]["unique_graphs"])
    values = set()
    for _ in range(s.compile_steps):
        run.step()
        values.add(run.lr.item() if isinstance(run.lr, torch.Tensor) else run.lr)
    after = (counters["frames"]["total"], counters["stats"]["unique_graphs"])
    name = f"compile ({device.type}): recompiles after warm-up"
    result = (f"{after[0] - before[0]} over {s.compile_steps} steps, {len(values)} distinct "
              f"LRs; warm-up compile {warm_s:.1f} s")
    if after != before:
        report.failed.append(f"compiled step recompiled on {device.type}")
        result += ": FAIL"
    elif len(values) < 2:
        result += " (the LR did not move: nothing proven)"
    else:
        result += ": PASS"
    report.checks[name] = result
    if device.type == "cuda":
        try:
            with sync_errors():
                for _ in range(s.sync_steps):
                    run.step()
            report.checks["sync: compiled step, device mode"] = (
                f"no sync in {s.sync_steps} steps: PASS")
        except RuntimeError as exc:
            report.checks["sync: compiled step, device mode"] = f"SYNCS: {exc}"
            report.failed.append("compiled device mode syncs")
        run.sync()
        error = _syncs("device-rule", device, s, backend=backend)
        report.checks["sync: eager step, compile_rule=True"] = (
            f"no sync in {s.sync_steps} steps: PASS" if error is None else f"SYNCS: {error}")
        if error is not None:
            report.failed.append("compile_rule syncs")
    report.checks[f"compile ({device.type}): LRs vs the float rule"] = _parity(run)


def _parity(run: Run) -> str:
    """Replay the compiled run's losses through the float rule; compare every LR."""
    from greedylr import rule

    losses = torch.stack(run.losses).double().cpu().tolist()
    got = torch.stack(run.lrs).float().cpu().tolist()
    config = run.sched.config
    state = rule.init(config, [float(torch.tensor(1e-3))])
    want = [float(torch.tensor(rule.update(config, state, v).lrs[0], dtype=torch.float32))
            for v in losses]
    diff = [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
    changes = sum(1 for a, b in itertools.pairwise(want) if a != b)
    if not diff:
        return f"identical over {len(want)} steps ({changes} LR changes)"
    i = diff[0]
    return (f"{len(diff)} of {len(want)} steps differ, first at step {i + 1}: "
            f"{got[i]!r} vs {want[i]!r} (see greedylr.tensor_rule on FMA contraction)")


# -- 3. throughput ------------------------------------------------------------------------


def throughput(device: torch.device, s: Settings, report: Report, compiled: bool,
               deadline: float, backend: str = "inductor") -> None:
    kinds = [("none", False), ("float", False), ("device", False), ("transformers", False)]
    if compiled:
        kinds += [("device-rule", False), ("none", True), ("device", True)]
    runs: dict[str, Run] = {}
    for kind, comp in kinds:
        label = {"device-rule": "device, compile_rule"}.get(kind, kind) + (
            ", compiled step" if comp else "")
        try:
            runs[label] = Run(kind, device, s, compiled=comp, backend=backend)
        except ImportError:
            report.skipped.append(f"{label} on {device.type}: transformers not installed")
            continue
        for _ in range(s.warmup):
            runs[label].step()
        runs[label].sync()
    rates: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(s.rounds):  # interleaved, so that machine noise hits every row alike
        for label, run in runs.items():
            if time.perf_counter() > deadline:
                report.skipped.append(f"throughput round on {device.type}: time budget")
                break
            run.sync()
            start = time.perf_counter()
            for _ in range(s.steps):
                run.step()
            run.sync()
            rates[label].append(s.steps / (time.perf_counter() - start))
    report.throughput[device.type] = {
        label: statistics.median(values) for label, values in rates.items() if values
    }


# -- 4. cost of one scheduler step ----------------------------------------------------------

SCHEDULER_ROWS = {"float": "float", "device": "device", "device, compile_rule": "device-rule",
                  "transformers": "transformers"}


def _launches(run: Run, steps: int) -> tuple[float, float]:
    """GPU activities and CPU ops that ``torch.profiler`` records per ``sched.step(loss)``."""
    from torch.profiler import DeviceType, ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if run.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    gpu = cpu = 0
    for i in range(steps):
        x, y = run.batches[i % len(run.batches)]
        loss = run.model_step(x, y).detach()
        run.sync()
        with profile(activities=activities) as prof:
            run.sched.step(loss)
            run.sync()
        events = prof.events()
        gpu += sum(1 for e in events if e.device_type != DeviceType.CPU)
        cpu += sum(1 for e in events if e.device_type == DeviceType.CPU
                   and not e.name.startswith(("cuda", "Activity Buffer")))
    return gpu / steps, cpu / steps


def scheduler_costs(device: torch.device, s: Settings, report: Report, compiled: bool,
                    backend: str = "inductor") -> None:
    """Launches and ops of one ``sched.step(loss)``; the microseconds it adds to a step."""
    rates = report.throughput.get(device.type, {})
    base = rates.get("none")
    costs: dict[str, dict[str, float]] = {}
    for label, kind in SCHEDULER_ROWS.items():
        if kind == "device-rule" and not compiled:
            continue
        try:
            run = Run(kind, device, s, backend=backend)
        except ImportError:
            continue
        for _ in range(s.warmup):  # and the compilation, for compile_rule
            run.step()
        gpu, cpu = _launches(run, steps=5)
        row = {"gpu_activities": gpu, "cpu_ops": cpu}
        if base and label in rates:
            row["us_added"] = 1e6 / rates[label] - 1e6 / base
        costs[label] = row
    report.costs[device.type] = costs


# -- driver -------------------------------------------------------------------------------


def _table(report: Report) -> str:
    lines = []
    for device, rows in report.throughput.items():
        base = rows.get("none")
        lines.append(f"\nTraining steps per second on {device} (median of rounds)")
        lines.append(f"  {'scheduler':<22} {'steps/s':>10} {'vs none':>9}")
        for label, rate in rows.items():
            ref = rows.get("none, compiled step") if label.endswith("compiled step") else base
            rel = f"{100 * (rate / ref - 1):+.1f}%" if ref else ""
            lines.append(f"  {label:<22} {rate:>10.1f} {rel:>9}")
    for device, rows in report.costs.items():
        lines.append(f"\nOne sched.step(loss) on {device} (eager loop; torch.profiler)")
        lines.append(f"  {'scheduler':<22} {'GPU launches':>12} {'CPU ops':>8} {'us added':>9}")
        for label, row in rows.items():
            gpu = f"{row['gpu_activities']:.1f}" if device == "cuda" else "-"
            added = f"{row['us_added']:.1f}" if "us_added" in row else "-"
            lines.append(f"  {label:<22} {gpu:>12} {row['cpu_ops']:>8.1f} {added:>9}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--compile", dest="compile", action="store_true", default=None,
                        help="run the compile check and rows (default: on CUDA only)")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--backend", default="inductor",
                        help="torch.compile backend of the compile check (default inductor; "
                        "aot_eager checks the same guards in seconds)")
    parser.add_argument("--cpu-only", action="store_true", help="ignore a CUDA device")
    parser.add_argument("--cpu-threads", type=int, default=1,
                        help="torch threads for the CPU rows (default 1: a small model gains "
                        "nothing from more, and the figures stay stable on a shared machine)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.cpu_threads)
    s = QUICK if args.quick else Settings()
    deadline = time.perf_counter() + s.budget_s
    report = Report()
    warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*")

    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.insert(0, torch.device("cuda"))
        print(f"CUDA: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    else:
        reason = "--cpu-only" if args.cpu_only else "no CUDA device"
        report.skipped.append(
            f"CUDA parts skipped ({reason}): the sync check needs a GPU; "
            "CPU figures only")
        print(f"{report.skipped[-1]}; torch {torch.__version__}")
    print(f"model: MLP {s.features}-{'-'.join([str(s.width)] * (s.depth - 1))}-{s.classes}, "
          f"batch {s.batch}, AdamW; CPU threads {args.cpu_threads}")

    for device in devices:
        if device.type == "cuda":
            sync_check(device, s, report)
        if args.compile if args.compile is not None else device.type == "cuda":
            compile_check(device, s, report, args.backend)
            compile_rows = True
        else:
            compile_rows = False
        throughput(device, s, report, compile_rows, deadline, args.backend)
        scheduler_costs(device, s, report, compile_rows, args.backend)

    for name, result in report.checks.items():
        print(f"{name}: {result}")
    print(_table(report))
    for line in report.skipped:
        print(f"skipped: {line}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report.__dict__, f, indent=2)
    if report.failed:
        print("FAILED: " + "; ".join(report.failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``greedylr`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="greedylr", description="GreedyLR: loss-driven learning rates, with the evidence."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_bench(commands)
    _add_plot(commands)
    _add_diagnose(commands)
    _add_report(commands)
    _add_compare(commands)
    return parser


def _add_bench(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        "bench",
        help="run the study suites and write the report (quick by default)",
        description="Run every study (small models, fine-tuning, pre-training, F-sweep, "
        "robustness) and write the report. Without --full: the quick suite, a "
        "representative slice of each study (about 10 minutes on 2 cores). Resumable: "
        "rerun on the same --out to finish an interrupted run.",
    )
    bench.add_argument("--full", action="store_true", help="run the full suite")
    bench.add_argument(
        "--out",
        default=None,
        help="results and report folder (default: bench-quick/ or bench-full/)",
    )
    bench.add_argument("--jobs", type=int, default=2, help="trials at a time (default: 2)")
    bench.add_argument(
        "--study",
        action="append",
        dest="studies",
        metavar="NAME",
        help="run only this study (repeatable; e.g. small_models, robustness)",
    )
    bench.set_defaults(run=_run_bench)
    # one sub-subcommand per study that has its own runner; `greedylr bench --full`
    # (no study named) still runs the whole suite
    studies = bench.add_subparsers(dest="bench_study", metavar="STUDY")
    _add_bench_robustness(studies)


def _add_bench_robustness(studies: argparse._SubParsersAction) -> None:
    robust = studies.add_parser(
        "robustness",
        help="the robustness study: perturbations that act on training, batched runs",
        description="Train every model family x perturbation x schedule x seed (8,192 "
        "runs, 200 steps; --quick: one seed, strength 1, 50 steps), many runs at once per "
        "family, then write runs.csv, events.csv, summary.json, report.md and figures/. "
        "Reports the wall time and the speed-up over training one run at a time.",
    )
    robust.add_argument("--quick", action="store_true", help="the quick design (~2 min)")
    robust.add_argument("--out", default=None,
                        help="output folder (default: bench-quick/robustness or "
                        "bench-full/robustness)")
    robust.add_argument("--report-only", action="store_true",
                        help="rewrite report.md and figures from the stored tables")
    robust.set_defaults(run=_run_bench_robustness)


def _run_bench_robustness(args: argparse.Namespace) -> int:
    from rich.console import Console

    from greedylr.studies.robustness import run_robustness, write_report

    console = Console()
    out = args.out or ("bench-quick/robustness" if args.quick else "bench-full/robustness")
    if args.report_only:
        console.print(f"report: {write_report(out)}")
        return 0
    summary = run_robustness(out, args.quick, progress=console.print)
    speed = summary["speed"]
    console.print(
        f"{summary['design']['runs']:,} runs in {summary['wall_s']:.0f} s; batched "
        f"{speed['batched_runs_per_s']:.1f} runs/s vs one at a time "
        f"{speed['one_at_a_time_runs_per_s']:.2f} runs/s: {speed['speedup']:.1f}x; "
        f"report: {out}/report.md"
    )
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    from greedylr.studies.suites import bench

    out = args.out or ("bench-full" if args.full else "bench-quick")
    summary = bench(out, quick=not args.full, jobs=args.jobs, studies=args.studies)
    logging.getLogger("greedylr").info(
        "%s suite done in %.0f s; report: %s",
        summary["suite"],
        summary["wall_s"],
        summary["report"],
    )
    return (
        0
        if all(not study.get("statuses", {}).get("failed") for study in summary["studies"].values())
        else 1
    )


def _add_plot(commands: argparse._SubParsersAction) -> None:
    plot = commands.add_parser(
        "plot",
        help="draw the pulse of a run from its trace (PNG)",
        description="Two aligned panels: raw and smoothed loss; the learning rate on a log "
        "scale with a marker at every event. Stress episodes are shaded, changes of a "
        "logged data-source tag drawn as dotted lines.",
    )
    plot.add_argument("trace", help="a trace file (.jsonl or .csv) written by Trace.save")
    plot.add_argument("-o", "--output", default="pulse.png", help="PNG path (default: pulse.png)")
    plot.add_argument("--title", default=None, help="figure title")
    plot.add_argument("--signal", default=None, help="the tag signal whose changes are drawn")
    plot.add_argument("--no-episodes", action="store_true", help="do not shade episodes")
    plot.set_defaults(run=_run_plot)


def _run_plot(args: argparse.Namespace) -> int:
    from greedylr.plot import plot_trace

    path = plot_trace(args.trace, args.output, diagnosis=not args.no_episodes,
                      title=args.title, signal=args.signal)
    logging.getLogger("greedylr").info("wrote %s", path)
    return 0


def _add_diagnose(commands: argparse._SubParsersAction) -> None:
    diagnose = commands.add_parser(
        "diagnose",
        help="list the stress episodes of a run from its trace",
        description="Loss spikes, contraction streaks, stagnation at the LR floor, resets "
        "and non-finite losses, each with its steps, severity, recovery and whether it "
        "coincides with a change of data source.",
    )
    diagnose.add_argument("trace", help="a trace file (.jsonl or .csv) written by Trace.save")
    diagnose.add_argument("--json", action="store_true", help="print JSON instead of a table")
    diagnose.add_argument("--threshold", type=float, default=8.0,
                          help="sigma above the pre-episode level for a loss spike (default 8)")
    diagnose.set_defaults(run=_run_diagnose)


def _run_diagnose(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from greedylr.trace import diagnose

    result = diagnose(args.trace, threshold=args.threshold)
    console = Console()
    if args.json:
        console.print_json(json.dumps(result.to_dict()))
        return 0
    table = Table(title=f"stress episodes: {args.trace}", show_lines=True)
    for column in ("kind", "steps", "severity", "recovery", "cause"):
        table.add_column(column, no_wrap=True)
    table.add_column("what happened", overflow="fold", ratio=1, min_width=30)
    for e in result:
        recovery = "not recovered" if e.recovery_steps is None else f"{e.recovery_steps} steps"
        table.add_row(e.kind.replace("_", " "), f"{e.start}-{e.end}",
                      f"{e.severity:.3g} {e.severity_unit}", recovery, e.cause or "-",
                      "\n".join([e.detail, *e.notes]))
    if len(result):
        console.print(table)
    console.print(result.summary)
    return 0


def _add_report(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="write the markdown report and figures of stored study results",
        description="Read every trial result under DIR (a study folder or a results root) "
        "and write DIR/report.md with tables and PNG figures. Uses stored results only.",
    )
    report.add_argument("dir", help="folder holding trials/*.json (searched recursively)")
    report.add_argument("--output", default=None, help="markdown path (default DIR/report.md)")
    report.add_argument("--title", default="", help="report title")
    report.set_defaults(run=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from greedylr.studies.report import write_report

    try:
        path = write_report(args.dir, output=args.output, title=args.title)
    except FileNotFoundError as exc:
        logging.getLogger("greedylr").error("%s", exc)
        return 1
    logging.getLogger("greedylr").info("wrote %s", path)
    return 0


def _add_compare(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare",
        help="A/B GreedyLR against other schedules on your own training function",
        description="Run TARGET (MODULE:FUNCTION or FILE.py:FUNCTION, a function "
        "train(trial)) under each schedule and seed, store one result per trial in OUT "
        "(resumable: rerun to finish an interrupted comparison), then write OUT/report.md "
        "and print the headline table. See examples/compare_my_model.py.",
    )
    compare.add_argument("target", help="MODULE:FUNCTION or path/to/file.py:FUNCTION")
    compare.add_argument("--schedules", default="greedy,cosine",
                         help="comma-separated schedule names (default: greedy,cosine)")
    compare.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    compare.add_argument("--steps", type=int, default=None,
                         help="optimizer steps (default: the function's `steps` or 300)")
    compare.add_argument("--lr", default=None, metavar="LR[,LR...]|LOW:HIGH:POINTS",
                         help="initial LR, or an LR grid that every schedule runs at with "
                              "the same seeds: a list (1e-3,3e-3,1e-2) or a log grid "
                              "(1e-4:1e-1:7); set on your optimizer even if your function "
                              "builds it (default: its own; trial.optimizer() takes the "
                              "function's `lr` or 1e-3)")
    compare.add_argument("--margin", type=float, default=0.02,
                         help="LR tolerance: a grid point counts if its final held-out "
                              "metric is within this fraction of the best-tuned baseline's "
                              "(default 0.02)")
    compare.add_argument("--warmup", type=int, default=0, help="warmup steps (default 0)")
    compare.add_argument("--optimizer", default="adamw",
                         help="adamw, adafactor, adagrad or sgd, for trial.optimizer()")
    compare.add_argument("--eval-every", type=int, default=0,
                         help="steps between held-out evaluations (0: only at the end)")
    compare.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="a setting for every trial, VALUE as JSON (repeatable; "
                         "schedule options such as factor=0.5, or workload_* for you)")
    compare.add_argument("--out", default="compare-results", help="results and report folder")
    compare.add_argument("--study", default="compare", help="study name in the results")
    compare.add_argument("--jobs", type=int, default=1, help="trials at a time (default 1)")
    compare.add_argument("--executor", choices=("local", "ray"), default="local",
                         help="local processes (default) or Ray")
    compare.add_argument("--address", default=None,
                         help="Ray cluster address (default: start a local Ray)")
    compare.add_argument("--retry-failed", action="store_true",
                         help="rerun trials that failed with an exception last time")
    compare.set_defaults(run=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    import json

    from greedylr.studies.report import print_summary, write_report
    from greedylr.studies.runner import make_specs, resolve_workload, run_trials
    from greedylr.studies.tuning import parse_lr_grid

    log = logging.getLogger("greedylr")
    try:
        lrs: list[float | None] = [None] if args.lr is None else list(parse_lr_grid(args.lr))
    except ValueError as exc:
        log.error("--lr: %s", exc)
        return 2
    if not 0 <= args.margin < 1:
        log.error("--margin must be in [0, 1), got %g", args.margin)
        return 2
    settings = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            log.error("--set expects KEY=VALUE, got %r", item)
            return 2
        try:
            settings[key] = json.loads(value)
        except ValueError:
            settings[key] = value  # a bare string
    train = resolve_workload(args.target).train
    steps = args.steps or int(getattr(train, "steps", 300))
    schedules = [s.strip() for s in args.schedules.split(",") if s.strip()]
    # every schedule at every LR with the same seeds: the LR is part of each trial's key
    specs = [
        spec
        for lr in lrs
        for spec in make_specs(args.study, [args.target], schedules, range(args.seeds),
                               optimizer=args.optimizer, steps=steps, lr=lr,
                               warmup=args.warmup, eval_every=args.eval_every,
                               settings=settings)
    ]
    try:
        results = run_trials(specs, args.out, jobs=args.jobs, executor=args.executor,
                             address=args.address, retry_failed=args.retry_failed,
                             progress=True)
    except KeyboardInterrupt:
        log.warning("interrupted: finished trials are kept in %s; rerun the same command "
                    "to resume", args.out)
        return 130
    path = write_report(args.out, title=f"greedylr compare: {args.target}", margin=args.margin)
    grid = "" if len(lrs) == 1 else f", {len(lrs)} LRs"
    print_summary(results, title=f"{args.target}, {steps} steps, {args.seeds} seeds{grid}",
                  margin=args.margin)
    log.info("report: %s", path)
    return 1 if any(r["status"] == "failed" for r in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

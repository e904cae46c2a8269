"""The ``greedylr`` command line.

Every command checks what it was given before it runs anything: a user error (a file
that cannot be read, an unknown workload, schedule or study, a setting a schedule does
not take, a bad value) is one line on stderr, ``greedylr: error: ...`` (or
``greedylr COMMAND: error: ...``), and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from greedylr._extras import MissingExtra, requires_extra

__all__ = ["UsageError", "main"]

log = logging.getLogger("greedylr")


class UsageError(Exception):
    """A mistake in what the user asked for: reported in one line, exit code 2.

    Args:
        message: what is wrong, in one sentence.
        prog: the command it concerns, which starts the line (``greedylr compare``).
    """

    def __init__(self, message: str, prog: str = "greedylr") -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other user error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)", prog=self.prog)


def _number(
    kind: Callable[[str], Any], test: Callable[[Any], bool], what: str
) -> Callable[[str], Any]:
    """An argparse ``type`` that parses with ``kind`` and accepts only values passing ``test``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
_count = _number(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number(float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")
_nonnegative_float = _number(float, lambda v: math.isfinite(v) and v >= 0,
                             "a finite number >= 0")
_fraction = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def _version() -> str:
    from greedylr import __version__

    return __version__


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="greedylr", description="GreedyLR: loss-driven learning rates, with the evidence."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_bench(commands)
    _add_plot(commands)
    _add_diagnose(commands)
    _add_report(commands)
    _add_compare(commands)
    _add_study(commands)
    return parser


# -- bench ------------------------------------------------------------------------------


def _add_suite_options(parser: argparse.ArgumentParser, *, inherited: bool) -> None:
    """``--full``/``--quick`` and ``--out``, on ``bench`` and again on its studies.

    On a study (``inherited``) they default to nothing, so that ``greedylr bench --out X
    robustness`` keeps the X given before the study's name.
    """
    default: Any = argparse.SUPPRESS if inherited else False
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", dest="full", action="store_true", default=default,
                      help="the full suite: every study whose report is under results/")
    size.add_argument("--quick", dest="full", action="store_false", default=default,
                      help="the quick suite, a representative slice (the default)")
    parser.add_argument("--out", default=argparse.SUPPRESS if inherited else None,
                        help="results and report folder (default: bench-quick/, or "
                        "bench-full/ with --full); a study writes into OUT/<study>/")


def _add_jobs(parser: argparse.ArgumentParser) -> None:
    """``--jobs``: trials at a time, two by default (the studies' machine has two cores)."""
    parser.add_argument("--jobs", type=_positive_int, default=2,
                        help="trials at a time (default: 2)")


def _add_bench(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        "bench",
        help="run the study suites and write the report (quick by default)",
        description="Run every study (small models, the LR grid, fine-tuning, pre-training, "
        "F-sweep, robustness) and write the report. By default the quick suite, a "
        "representative slice of each study (1.5 to 3.5 minutes on a 2-core machine; "
        "longer when the cores are shared); --full runs everything. Resumable: rerun "
        "on the same --out to finish an interrupted run.",
    )
    _add_suite_options(bench, inherited=False)
    _add_jobs(bench)
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
        description="Train every model family x perturbation x schedule x seed, many runs "
        "at once per family, into OUT/robustness/: runs.csv, events.csv, summary.json, "
        "report.md and figures/. Quick by default (576 runs: one seed, strength 1, 50 "
        "steps; 24 s on an idle 2-core machine); --full: 8,192 runs of 200 steps (278 s). "
        "Reports the wall time and the speed-up over training one run at a time.",
    )
    _add_suite_options(robust, inherited=True)
    robust.add_argument("--report-only", action="store_true",
                        help="rewrite report.md and figures from the stored tables")
    robust.add_argument("--average", type=_nonnegative_float, default=None, metavar="GAMMA",
                        help="score every run on a power-function EMA of its weights "
                        "(greedylr.averaged_model's gamma, e.g. 7) instead of the weights")
    robust.set_defaults(run=_run_bench_robustness)


def _suite_dir(args: argparse.Namespace) -> str:
    return args.out or ("bench-full" if args.full else "bench-quick")


def _run_bench_robustness(args: argparse.Namespace) -> int:
    from pathlib import Path

    with requires_extra("bench", "greedylr bench"):
        from rich.console import Console

    from greedylr.evidence.robustness import run_robustness, write_report

    console = Console()
    out = Path(_suite_dir(args)) / "robustness"
    if args.report_only:
        if not (out / "runs.csv").is_file():
            raise UsageError(f"no stored robustness study in {out} (no runs.csv)")
        console.print(f"report: {write_report(out)}")
        return 0
    summary = run_robustness(out, not args.full, average=args.average,
                             progress=console.print)
    speed = summary["speed"]
    console.print(
        f"{summary['design']['runs']:,} runs in {summary['wall_s']:.0f} s; batched "
        f"{speed['batched_runs_per_s']:.1f} runs/s vs one at a time "
        f"{speed['one_at_a_time_runs_per_s']:.2f} runs/s: {speed['speedup']:.1f}x; "
        f"report: {out}/report.md"
    )
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    from greedylr.evidence.suites import STUDIES, bench

    unknown = [name for name in args.studies or () if name not in {*STUDIES, "robustness"}]
    if unknown:
        raise UsageError(f"unknown study {unknown[0]!r}; known: "
                         f"{', '.join([*sorted(STUDIES), 'robustness'])}")
    summary = bench(_suite_dir(args), quick=not args.full, jobs=args.jobs, studies=args.studies)
    log.info("%s suite done in %.0f s; report: %s",
             summary["suite"], summary["wall_s"], summary["report"])
    return (
        0
        if all(not study.get("statuses", {}).get("failed") for study in summary["studies"].values())
        else 1
    )


# -- plot, diagnose, report ----------------------------------------------------------------


def _read_trace(path: str) -> Any:
    """The trace saved at ``path``; a file that cannot be read is a :class:`UsageError`."""
    from greedylr.trace import load_trace

    try:
        return load_trace(path)
    except OSError as exc:
        raise UsageError(f"cannot read trace {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # not a trace, another version, malformed JSON
        raise UsageError(f"cannot read trace {path}: {exc}") from exc
    except OverflowError as exc:  # an event code out of range: a corrupt row
        raise UsageError(f"cannot read trace {path}: a corrupt greedylr trace "
                         f"({type(exc).__name__} {exc})") from exc


def _add_plot(commands: argparse._SubParsersAction) -> None:
    plot = commands.add_parser(
        "plot",
        help="draw the pulse of a run from its trace (PNG)",
        description="Two aligned panels: raw and smoothed loss; the learning rate on a log "
        "scale with a marker at every event. Stress episodes are shaded, changes of a "
        "logged data-source tag drawn as dotted lines.",
    )
    plot.add_argument("trace", help="a trace file (.jsonl or .csv) written by Trace.save")
    plot.add_argument("-o", "--output", default="pulse.png",
                      help="the file to write, in the format its suffix names (.png, .svg, "
                      ".pdf, ...; .png is added to a name without one), or a folder to write "
                      "pulse.png into (default: pulse.png)")
    plot.add_argument("--title", default=None, help="figure title")
    plot.add_argument("--signal", default=None, help="the tag signal whose changes are drawn")
    plot.add_argument("--no-episodes", action="store_true", help="do not shade episodes")
    plot.set_defaults(run=_run_plot)


def _run_plot(args: argparse.Namespace) -> int:
    from greedylr.plot import _figure_path, plot_trace

    try:
        output = _figure_path(args.output)
    except ValueError as exc:  # a format matplotlib does not write
        raise UsageError(f"-o {exc}") from exc
    trace = _read_trace(args.trace)
    # checked before drawing: plot_trace's ValueError would be a traceback here
    if not len(trace):
        raise UsageError(f"trace {args.trace} is empty: nothing to plot")
    if args.signal is not None:
        tags = [name for name in trace.signal_names if isinstance(trace.signal(name), list)]
        if args.signal not in tags:
            what = ("a numeric signal in {}, not a tag" if args.signal in trace.signal_names
                    else "no such signal in {}")
            raise UsageError(f"--signal {args.signal!r}: {what.format(args.trace)}; its tag "
                             f"signals: {', '.join(tags) or 'none'}")
    try:
        path = plot_trace(trace, output, diagnosis=not args.no_episodes,
                          title=args.title, signal=args.signal)
    except OSError as exc:  # the trace is in memory: this is the figure that cannot be written
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    log.info("wrote %s", path)
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
    diagnose.add_argument("--threshold", type=_positive_float, default=8.0,
                          help="sigma above the pre-episode level for a loss spike (default 8)")
    diagnose.set_defaults(run=_run_diagnose)


def _run_diagnose(args: argparse.Namespace) -> int:
    import json

    from greedylr.trace import diagnose

    result = diagnose(_read_trace(args.trace), threshold=args.threshold)
    # plain text: diagnose is a core command, and the core needs no extra
    # to_dict writes None for a non-finite number: the output is strict JSON
    print(json.dumps(result.to_dict(), indent=2, allow_nan=False) if args.json else result)
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
    except FileNotFoundError as exc:  # no results, or no folder to write the report in
        raise UsageError(str(exc)) from exc
    except OSError as exc:  # an --output where a file is in the way, or not writable
        where = f" ({exc.filename})" if exc.filename else ""
        raise UsageError(f"cannot write the report {args.output or args.dir}: "
                         f"{exc.strerror or exc}{where}") from exc
    log.info("wrote %s", path)
    return 0


# -- compare --------------------------------------------------------------------------------


def _add_compare(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare",
        help="A/B GreedyLR against other schedules on your own training function",
        description="Run TARGET (MODULE:FUNCTION or FILE.py:FUNCTION, a function "
        "train(trial); or a registered workload's name; MODULE is imported as `python -m` "
        "would, the current folder first) under each schedule and seed, "
        "store one result per trial in OUT (resumable: rerun to finish an interrupted "
        "comparison), then write OUT/report.md and print the headline table. See "
        "examples/compare_my_model.py.",
    )
    compare.add_argument("target", help="MODULE:FUNCTION, path/to/file.py:FUNCTION or a "
                         "registered workload")
    compare.add_argument("--schedules", default="greedy,cosine",
                         help="comma-separated schedule names (default: greedy,cosine)")
    compare.add_argument("--seeds", type=_positive_int, default=3,
                         help="seeds 0..N-1 (default 3)")
    compare.add_argument("--steps", type=_positive_int, default=None,
                         help="optimizer steps (default: the function's `steps` or 300; a "
                         "registered workload's own)")
    compare.add_argument("--lr", default=None, metavar="LR[,LR...]|LOW:HIGH:POINTS",
                         help="initial LR, or an LR grid that every schedule runs at with "
                              "the same seeds: a list (1e-3,3e-3,1e-2) or a log grid "
                              "(1e-4:1e-1:7); set on your optimizer even if your function "
                              "builds it (default: its own; trial.optimizer() takes the "
                              "function's `lr` or 1e-3)")
    compare.add_argument("--margin", type=_fraction, default=0.02,
                         help="LR tolerance: a grid point counts if its final held-out "
                              "metric is within this fraction of the best-tuned baseline's "
                              "(default 0.02)")
    compare.add_argument("--warmup", type=_count, default=None,
                         help="warmup steps, at most --steps (default 0; a registered "
                         "workload's own)")
    compare.add_argument("--optimizer", default=None,
                         help="the optimizer trial.optimizer() builds: adamw (default; a "
                         "registered workload's own), adafactor, adagrad, sgd, ...")
    compare.add_argument("--eval-every", type=_count, default=None,
                         help="steps between held-out evaluations (default 0: only at the "
                         "end; a registered workload's own)")
    compare.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="a setting for every trial, VALUE as JSON (repeatable; "
                         "schedule options such as factor=0.5, or workload_* for you)")
    compare.add_argument("--out", default="compare-results", help="results and report folder")
    compare.add_argument("--study", default="compare", help="study name in the results")
    compare.add_argument("--jobs", type=_positive_int, default=1,
                         help="trials at a time (default 1)")
    compare.add_argument("--executor", choices=("local", "ray"), default="local",
                         help="local processes (default) or Ray")
    compare.add_argument("--address", default=None,
                         help="Ray cluster address, with --executor ray (default: start a "
                         "local Ray)")
    compare.add_argument("--retry-failed", action="store_true",
                         help="rerun trials that failed with an exception, or stopped "
                         "early, last time")
    compare.add_argument("--trial-timeout", type=_positive_float, default=None, metavar="SECONDS",
                         help="stop a trial that runs longer (its process is killed) and "
                         "store it as 'timeout'; it runs again under a higher limit or none "
                         "(default: no limit)")
    compare.set_defaults(run=_run_compare)


def _settings(items: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as a dict, each VALUE parsed as JSON or kept a string."""
    import json

    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            settings[key] = json.loads(value)
        except ValueError:
            settings[key] = value  # a bare string
    return settings


def _checked_schedules(text: str, settings: dict[str, Any], steps: int = 1,
                       warmup: int = 0) -> list[str]:
    """The schedule names in ``text``, each known and taking every one of ``settings``
    over a run of ``steps`` with ``warmup`` (a stand-in before they are known)."""
    from greedylr.studies.schedules import check_settings

    schedules = [s.strip() for s in text.split(",") if s.strip()]
    if not schedules:
        raise UsageError(f"--schedules names no schedule: {text!r}")
    for name in schedules:
        try:
            check_settings(name, settings, total_steps=steps, warmup=warmup)
        except (ValueError, TypeError) as exc:
            raise UsageError(str(exc)) from exc
    return schedules


def _load_target(target: str) -> Any:
    """The training function ``target`` names; one that cannot be found is a UsageError.

    A ``MODULE:FUNCTION`` is looked for in the current folder first, as ``python -m``
    would (the console script's own folder is not the user's): this process's
    ``sys.path`` is what the local worker processes start with.
    """
    import os

    from greedylr.studies.runner import resolve_workload
    from greedylr.studies.targets import user_module

    if user_module(target) and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return resolve_workload(target).train
    except (KeyError, ImportError, AttributeError, OSError, ValueError, TypeError) as exc:
        # a KeyError's str() is its repr; its message is the first argument
        reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise UsageError(f"cannot load {target}: {reason}") from exc


def _run_options(args: argparse.Namespace, train: Any) -> dict[str, Any]:
    """Steps, optimizer, warmup and evaluation pace: as given, else a registered
    workload's own (what the studies run it with, scaled to ``--steps``), else the
    defaults for user code (the function's ``steps`` attribute or 300 steps, AdamW, no
    warmup, one evaluation)."""
    from greedylr.studies.targets import builtin_workload, scaled_lengths

    if ":" in args.target:
        defaults = {"steps": int(getattr(train, "steps", 300)), "optimizer": "adamw",
                    "warmup": 0, "eval_every": 0}
    else:  # at another length, its warmup and evaluation pace keep their share of the run
        w = builtin_workload(args.target)
        defaults = {"optimizer": w.optimizer,
                    **scaled_lengths(w, w.steps if args.steps is None else args.steps)}
    given = {"steps": args.steps, "optimizer": args.optimizer, "warmup": args.warmup,
             "eval_every": args.eval_every}
    return {k: defaults[k] if given[k] is None else given[k] for k in defaults}


def _run_compare(args: argparse.Namespace) -> int:
    with requires_extra("compare", "greedylr compare"):
        import rich  # noqa: F401  (the summary is a rich table)

    from greedylr.studies.report import print_summary, write_report
    from greedylr.studies.runner import load_results, make_specs, run_trials
    from greedylr.studies.schedules import OPTIMIZERS
    from greedylr.studies.tuning import parse_lr_grid

    # everything is checked before the first trial runs, so that no failed trial is stored
    if args.address is not None and args.executor != "ray":
        raise UsageError("--address is the Ray cluster's: give it with --executor ray")
    try:
        lrs: list[float | None] = [None] if args.lr is None else list(parse_lr_grid(args.lr))
    except ValueError as exc:
        raise UsageError(f"--lr: {exc}") from exc
    settings = _settings(args.set)
    schedules = _checked_schedules(args.schedules, settings)
    if args.optimizer is not None and args.optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {args.optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    train = _load_target(args.target)
    run = _run_options(args, train)
    if run["warmup"] > run["steps"]:
        raise UsageError(f"the warmup ({run['warmup']} steps) is longer than the run "
                         f"({run['steps']} steps): set --warmup or --steps")
    # with the budget now
    _checked_schedules(args.schedules, settings, run["steps"], run["warmup"])
    # every schedule at every LR with the same seeds: the LR is part of each trial's key
    specs = [
        spec
        for lr in lrs
        for spec in make_specs(args.study, [args.target], schedules, range(args.seeds),
                               lr=lr, settings=settings, **run)
    ]
    _results_folder(args.out)
    try:
        results = run_trials(specs, args.out, jobs=args.jobs, executor=args.executor,
                             address=args.address, retry_failed=args.retry_failed,
                             trial_timeout=args.trial_timeout, progress=True)
    except KeyboardInterrupt:
        log.warning("interrupted: finished trials are kept in %s; rerun the same command "
                    "to resume", args.out)
        return 130
    if not load_results(args.out):  # not one stored: each trial was lost with its worker
        log.error("no trial stored a result in %s (each one's worker process died: see the "
                  "log above); nothing to report", args.out)
        return 1
    path = write_report(args.out, title=f"greedylr compare: {args.target}", margin=args.margin)
    grid = "" if len(lrs) == 1 else f", {len(lrs)} LRs"
    print_summary(results, title=f"{args.target}, {run['steps']} steps, {args.seeds} seeds{grid}",
                  margin=args.margin)
    log.info("report: %s", path)
    return 1 if any(r["status"] in ("failed", "short", "timeout") for r in results) else 0


def _results_folder(out: str) -> None:
    """Make the results folder ``out``; a path where it cannot be (a file is in the way,
    no permission) is a :class:`UsageError`."""
    from pathlib import Path

    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "a file is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError)) \
            else exc.strerror or str(exc)
        raise UsageError(f"--out {out}: cannot make the results folder there ({reason})"
                         ) from exc


# -- study: our evidence's own studies -----------------------------------------------------


def _add_study(commands: argparse._SubParsersAction) -> None:
    study = commands.add_parser(
        "study",
        help="run one of our evidence studies (the defaults study, the LLM studies)",
        description="The studies behind GreedyLR's defaults and the paper's LLM claims, "
        "each resumable: rerun the same command to finish an interrupted run.",
    )
    kinds = study.add_subparsers(dest="study", metavar="STUDY", required=True)
    _add_study_defaults(kinds)
    _add_study_llm(kinds)


#: The defaults study's stages, as ``greedylr.evidence.defaults.STAGES`` (not imported
#: here: the parser stays light; a test keeps the two equal).
_DEFAULTS_STAGES = (
    "tune", "check", "report", "heldout-tune", "heldout-check", "heldout-fresh",
    "heldout-probe", "heldout-report", "heldout-lr-grid", "heldout-lr-grid-report",
    "heldout-lr-grid-check", "heldout-lr-grid-check-report",
    "heldout-lr-grid-fresh", "heldout-lr-grid-fresh-report",
    "heldout-lr-grid-probe", "heldout-lr-grid-probe-report",
    "heldout-probe2", "heldout-lr-grid-probe2", "heldout-lr-grid-probe2-report",
    "heldout-probe3", "heldout-lr-grid-probe3", "heldout-lr-grid-probe3-report",
    "heldout-probe4", "heldout-lr-grid-probe4", "heldout-lr-grid-probe4-report",
    "heldout-probe5", "heldout-lr-grid-probe5", "heldout-lr-grid-probe5-report",
    "heldout-probe6", "heldout-lr-grid-probe6", "heldout-lr-grid-probe6-report",
    "heldout-probe7", "heldout-lr-grid-probe7", "heldout-lr-grid-probe7-report",
    "heldout-probe8", "heldout-lr-grid-probe8", "heldout-lr-grid-probe8-report",
    "heldout-probe9", "heldout-lr-grid-probe9", "heldout-lr-grid-probe9-report",
    "heldout-probe10", "heldout-lr-grid-probe10", "heldout-lr-grid-probe10-report",
    "heldout-probe11", "heldout-lr-grid-probe11", "heldout-lr-grid-probe11-report",
    "heldout-probe12", "heldout-lr-grid-probe12", "heldout-lr-grid-probe12-report",
    "heldout-probe13", "heldout-lr-grid-probe13", "heldout-lr-grid-probe13-report",
    "heldout-probe14", "heldout-lr-grid-probe14", "heldout-lr-grid-probe14-report",
    "heldout-probe15", "heldout-lr-grid-probe15", "heldout-lr-grid-probe15-report",
    "heldout-probe16", "heldout-lr-grid-probe16", "heldout-lr-grid-probe16-report",
)


class _WholeNames(argparse.HelpFormatter):
    """Help wrapped at spaces only, so that a stage's name (``heldout-lr-grid-probe4-report``)
    is never cut at one of its hyphens and reads, and is found, whole."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False,
                             break_long_words=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(indent + line for line in self._split_lines(text, width - len(indent)))


def _add_study_defaults(kinds: argparse._SubParsersAction) -> None:
    defaults = kinds.add_parser(
        "defaults",
        formatter_class=_WholeNames,
        help="choose GreedyLR's defaults: tune on some workloads, check on the others",
        description="Run one stage of the defaults study into OUT/<stage>/ or write its "
        "report: tune, check (of the candidate given with --set), report; the held-out "
        "protocol's heldout-tune, heldout-check, heldout-fresh (round 7's workloads that "
        "neither split has), heldout-probe (round 9's), heldout-probe2 (round 12's), "
        "heldout-probe3 (round 13's), heldout-probe4 (round 14's), heldout-probe5 (round "
        "15's), heldout-probe6 (round 16's), heldout-probe7 (round 18's), heldout-probe8 "
        "(round 19's), heldout-probe9 (round 20's), heldout-probe10 (round 21's), "
        "heldout-probe11 (round 23's), heldout-probe12 (round 30's), heldout-probe13 "
        "(round 33's), heldout-probe14 (round 40's), heldout-probe15 (round 41's), "
        "heldout-probe16 (round 43's), heldout-report; its LR "
        "grid on the tuning split, heldout-lr-grid and heldout-lr-grid-report, and on "
        "another split, heldout-lr-grid-SPLIT and heldout-lr-grid-SPLIT-report (SPLIT: "
        "check, fresh, probe, probe2, probe3, probe4, probe5, probe6, probe7, probe8, "
        "probe9, probe10, probe11, probe12, probe13, probe14, probe15, probe16).",
    )
    defaults.add_argument("stage", metavar="STAGE", help=f"one of: {', '.join(_DEFAULTS_STAGES)}")
    defaults.add_argument("--out", default="runs/defaults",
                          help="the study's results folder (default: runs/defaults)")
    _add_jobs(defaults)
    defaults.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="check: a setting of the candidate defaults, VALUE as JSON "
                          "(repeatable)")
    defaults.add_argument("--baselines", default=None, metavar="DIR",
                          help="report: the small-model study's results (the paper's "
                          "baselines)")
    defaults.add_argument("--report", default="results/defaults", metavar="DIR",
                          help="report stages: where the report goes (default: "
                          "results/defaults)")
    defaults.add_argument("--arms", type=_positive_int, default=None, metavar="N",
                          help="heldout-tune, heldout-check, heldout-fresh, heldout-probe, "
                          "heldout-probe2, heldout-probe3, heldout-probe4, heldout-probe5, "
                          "heldout-probe6, heldout-probe7, heldout-probe8, heldout-probe9, "
                          "heldout-probe10, heldout-probe11, heldout-probe12, "
                          "heldout-probe13, heldout-probe14, heldout-probe15, "
                          "heldout-probe16: only the "
                          "first N arms")
    defaults.set_defaults(run=_run_study_defaults)


def _run_study_defaults(args: argparse.Namespace) -> int:
    from pathlib import Path

    from greedylr.evidence.defaults import STAGES, check_specs, report_inputs, run_stage
    from greedylr.studies.schedules import check_settings

    if args.stage not in STAGES:
        raise UsageError(f"unknown stage {args.stage!r}; known: {', '.join(STAGES)}")
    candidate = _settings(args.set)
    if args.stage == "check" and not candidate:
        raise UsageError("check needs the candidate defaults: --set KEY=VALUE")
    if args.stage != "check" and candidate:
        raise UsageError(f"--set is the check stage's candidate; {args.stage} takes none "
                         "(its arms are the study's own)")
    try:
        # with each check workload's own budget and warmup, as its trials will run
        for steps, warmup in sorted({(s.steps, s.warmup) for s in check_specs(candidate)}):
            check_settings("greedy", candidate, total_steps=steps, warmup=warmup)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc
    out = Path(args.out)
    folders = report_inputs(args.stage)
    if folders and not any((out / folder).is_dir() for folder in folders):
        raise UsageError(f"nothing to report in {out} (no {' or '.join(folders)} folder)")
    baselines = None if args.baselines is None else Path(args.baselines)
    if baselines is not None and not baselines.is_dir():
        raise UsageError(f"--baselines: no such folder {baselines}")
    path = run_stage(args.stage, out, jobs=args.jobs, candidate=candidate, baselines=baselines,
                     report=Path(args.report), arms=args.arms)
    if path is not None:
        log.info("wrote %s", path)
    return 0


def _add_study_llm(kinds: argparse._SubParsersAction) -> None:
    llm = kinds.add_parser(
        "llm",
        help="the LLM studies: fine-tuning, pre-training and the F-sweep",
        description="Run the LLM studies (paper sections 4.2-4.3) into OUT/<study>/, then "
        "write each study's report and compact summaries. The full studies by default; "
        "--quick runs a slice of each.",
    )
    llm.add_argument("--out", default="results", help="results folder (default: results)")
    llm.add_argument("--quick", action="store_true", help="a slice of each study")
    _add_jobs(llm)
    llm.add_argument("--studies", nargs="+", default=["pretrain", "finetune", "f_sweep"],
                     metavar="NAME", help="pretrain, finetune, f_sweep (default: all three)")
    llm.add_argument("--report-only", action="store_true",
                     help="rewrite the reports from stored results")
    llm.set_defaults(run=_run_study_llm)


def _run_study_llm(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from greedylr.evidence.llm_studies import STUDIES, run, write_reports

    unknown = [name for name in args.studies if name not in STUDIES]
    if unknown:
        raise UsageError(f"unknown study {unknown[0]!r}; known: {', '.join(sorted(STUDIES))}")
    if args.report_only:
        stored = [Path(args.out) / name for name in args.studies
                  if (Path(args.out) / name).is_dir()]
        if not stored:
            raise UsageError(f"no stored study in {args.out}")
        for folder in stored:
            write_reports(folder)
        return 0
    summary = run(args.out, quick=args.quick, jobs=args.jobs, studies=args.studies,
                  progress=sys.stderr.isatty())
    log.info("done: %s", json.dumps(summary))
    return 1 if any(s["statuses"].get("failed") for s in summary.values()) else 0


# -- main -----------------------------------------------------------------------------------


def _configure_logging(verbose: bool) -> None:
    """Time, level and message (and the logger's name with ``--verbose``), on stderr."""
    name = " %(name)s" if verbose else ""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=f"%(asctime)s %(levelname)s{name}: %(message)s",
        datefmt="%H:%M:%S",
    )


def _log_warning(message: Warning | str, *_: Any, **__: Any) -> None:
    """``warnings.showwarning`` for the command: a warning is a log line like the others
    (a trace's cut last line), not Python's report with a file name and source line."""
    logging.getLogger("py.warnings").warning("%s", message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``greedylr`` command line; returns the exit code.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        0 on success, 1 if some trial failed, 2 for a user error (one line on stderr),
        130 when interrupted.
    """
    with warnings.catch_warnings():  # the caller's own display is back after the command
        warnings.showwarning = _log_warning
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        _configure_logging(args.verbose)
        if not getattr(args, "run", None):
            parser.print_help()
            return 0
        return int(args.run(args) or 0)
    except UsageError as exc:
        log.debug("the error in full:", exc_info=True)  # shown with --verbose
        message = " ".join(str(exc).split())  # one line, whatever the message held
        print(f"{exc.prog}: error: {message}", file=sys.stderr)
        return 2
    except MissingExtra as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: what was kept, and how to resume, is logged
        return 130
    except (OSError, RuntimeError) as exc:
        # the results store's errors, looked up only once the store, which imports torch,
        # has been imported: StoreError (disk full, read-only folder; what is stored is
        # kept), and StudyInUse (another process writes the folder: a user error)
        store = sys.modules.get("greedylr.studies.store")
        if store is None or not isinstance(exc, (store.StoreError, store.StudyInUse)):
            raise
        print(f"greedylr: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, store.StudyInUse) else 1


if __name__ == "__main__":
    sys.exit(main())

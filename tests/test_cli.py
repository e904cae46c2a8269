"""The command line: ``--version``, one-line user errors with exit code 2, ``--out``, logs.

Every user error is checked before anything runs: a ``compare`` that is refused leaves
no trial behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import greedylr
from greedylr.cli import _parser, main
from greedylr.trace import Trace

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "compare_my_model.py"


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI, expect exit code 2 and one line on stderr; return that line."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert re.match(r"greedylr( [a-z]+)*: error: ", captured.err)
    assert captured.err.count("\n") == 1 and captured.err.endswith("\n")
    return captured.err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"greedylr {greedylr.__version__}\n"


def _saved_trace(tmp_path: Path) -> Path:
    trace = Trace(1)
    for step in range(1, 40):
        trace.record(step, 1.0 / step, 1.0 / step, [0.1])
    return trace.save(tmp_path / "run.jsonl")


@pytest.mark.parametrize("command", ["diagnose", "plot"])
def test_a_trace_that_cannot_be_read_is_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    err = _fails([command, str(missing)], capsys)
    assert f"cannot read trace {missing}: No such file or directory" in err
    err = _fails([command, str(tmp_path)], capsys)  # a folder
    assert f"cannot read trace {tmp_path}: Is a directory" in err
    garbage = tmp_path / "notes.jsonl"
    garbage.write_text("{not json\n")
    err = _fails([command, str(garbage)], capsys)
    assert f"cannot read trace {garbage}: {garbage} is not a greedylr trace" in err
    cut = tmp_path / "cut.csv"
    cut.write_text(Trace(1).save(tmp_path / "whole.csv").read_text().splitlines()[0] + "\n")
    err = _fails([command, str(cut)], capsys)  # "(StopIteration )" before
    assert f"cannot read trace {cut}: {cut}: a greedylr trace cut short before its" in err
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # root reads everything
        unreadable = _saved_trace(tmp_path)
        unreadable.chmod(0)
        assert "Permission denied" in _fails([command, str(unreadable)], capsys)


@pytest.mark.parametrize("code", ["-1", "99999999999999999999999"])
@pytest.mark.parametrize("command", ["diagnose", "plot"])
def test_a_trace_with_a_corrupt_event_code_is_one_line(
    command: str, code: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An event code out of range raised OverflowError: a traceback and exit code 1."""
    path = _saved_trace(tmp_path)
    lines = path.read_text().splitlines()
    lines[5] = re.sub(r'"code": \d+', f'"code": {code}', lines[5])
    path.write_text("\n".join(lines) + "\n")
    err = _fails([command, str(path), *(["-o", str(tmp_path / "p.png")] * (command == "plot"))],
                 capsys)
    assert f"cannot read trace {path}: " in err
    assert not (tmp_path / "p.png").exists()


def test_plot_of_an_empty_trace_is_one_line(tmp_path: Path, capsys) -> None:
    """An empty trace (a run stopped before its first row) printed a ValueError traceback
    and exit code 1; diagnose answers that there is nothing to diagnose."""
    empty = Trace(1).save(tmp_path / "empty.jsonl")
    output = tmp_path / "p.png"
    err = _fails(["plot", str(empty), "-o", str(output)], capsys)
    assert f"trace {empty} is empty: nothing to plot" in err
    assert not output.exists()
    assert main(["diagnose", str(empty)]) == 0
    assert "empty trace: nothing to diagnose" in capsys.readouterr().out
    assert main(["diagnose", str(empty), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == []


def test_plot_refuses_a_signal_that_is_not_a_tag(tmp_path: Path, capsys) -> None:
    """An unknown --signal printed a ValueError traceback and exit code 1."""
    trace = Trace(1)
    for step in range(1, 40):
        trace.log(source="a" if step < 20 else "b", grad_norm=float(step))
        trace.record(step, 1.0 / step, 1.0 / step, [0.1])
    path = trace.save(tmp_path / "run.jsonl")
    output = tmp_path / "p.png"
    err = _fails(["plot", str(path), "-o", str(output), "--signal", "nosuch"], capsys)
    assert f"--signal 'nosuch': no such signal in {path}; its tag signals: source" in err
    err = _fails(["plot", str(path), "-o", str(output), "--signal", "grad_norm"], capsys)
    assert f"--signal 'grad_norm': a numeric signal in {path}, not a tag" in err
    assert not output.exists()
    assert main(["plot", str(path), "-o", str(output), "--signal", "source"]) == 0
    assert output.exists()


def test_plot_to_a_path_that_cannot_be_written(tmp_path: Path, capsys) -> None:
    output = tmp_path / "run.jsonl" / "pulse.png"  # under a file, not a folder
    err = _fails(["plot", str(_saved_trace(tmp_path)), "-o", str(output)], capsys)
    assert f"cannot write {output}: " in err  # its folder is a file


def test_plot_names_the_file_it_wrote_and_refuses_a_format_before_reading(
        tmp_path: Path, capsys) -> None:
    trace = _saved_trace(tmp_path)
    err = _fails(["plot", str(tmp_path / "missing.jsonl"), "-o", "pulse.xyz"], capsys)
    assert "error: -o pulse.xyz: matplotlib writes no .xyz file; it writes " in err
    (tmp_path / "figures").mkdir()
    for given, written in [("noext", "noext.png"), ("figures", "figures/pulse.png")]:
        done = subprocess.run([sys.executable, "-m", "greedylr.cli", "plot", str(trace), "-o",
                               str(tmp_path / given)], capture_output=True, text=True,
                              timeout=120, check=True)
        assert done.stderr.endswith(f"INFO: wrote {tmp_path / written}\n")  # "wrote noext"
    assert not (tmp_path / "figures.png").exists()


def test_diagnose_refuses_a_bad_threshold(tmp_path: Path, capsys) -> None:
    err = _fails(["diagnose", str(_saved_trace(tmp_path)), "--threshold", "-1"], capsys)
    assert "argument --threshold: expected a finite number > 0, got '-1'" in err


def test_report_of_a_missing_folder(tmp_path: Path, capsys) -> None:
    assert "nothing" in _fails(["report", str(tmp_path / "nothing")], capsys)


def _compare(tmp_path: Path, *extra: str, target: str = f"{EXAMPLE}:train") -> list[str]:
    return ["compare", target, "--seeds", "1", "--steps", "5",
            "--out", str(tmp_path / "cmp"), *extra]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--schedules", "greedy,cosnie"], "unknown schedule 'cosnie'; known: constant,"),
        (["--schedules", " , "], "--schedules names no schedule"),
        (["--schedules", "cosine", "--set", "factor=0.5"],
         "schedule 'cosine' does not take setting(s) ['factor']"),
        (["--schedules", "greedy", "--set", "patince=5"],
         "schedule 'greedy' does not take setting(s) ['patince']"),
        (["--schedules", "greedy", "--set", "total_steps=None"],
         "for GreedyLR without a budget set anneal_fraction=0.0"),
        (["--set", "factor=1.5"], "factor must be in (0, 1), got 1.5"),
        (["--set", "factor"], "--set expects KEY=VALUE, got 'factor'"),
        (["--address", "auto"], "--address is the Ray cluster's: give it with --executor ray"),
        (["--steps", "0"], "greedylr compare: error: argument --steps: expected an integer >= 1, "
                           "got '0' (see greedylr compare --help)"),
        (["--seeds", "0"], "argument --seeds: expected an integer >= 1, got '0'"),
        (["--jobs", "0"], "argument --jobs: expected an integer >= 1, got '0'"),
        (["--lr", "-0.1"], "--lr: learning rates must be finite and > 0; got [-0.1]"),
        (["--lr", "nan"], "--lr: learning rates must be finite and > 0; got [nan]"),
        (["--warmup", "6"], "the warmup (6 steps) is longer than the run (5 steps)"),
        (["--steps", "10", "--warmup", "9"],
         "the warmup (9 steps) runs into the final cooldown, which starts at step 8 of "
         "total_steps=10"),
        (["--eval-every", "x"], "argument --eval-every: expected an integer >= 0, got 'x'"),
        (["--optimizer", "adam"], "unknown optimizer 'adam'; known: adamw,"),
    ],
)
def test_compare_refuses_a_bad_request_before_any_trial(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in _fails(_compare(tmp_path, *extra), capsys)
    assert not (tmp_path / "cmp").exists()  # nothing ran, nothing was stored


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_workload", "no workload named 'no_such_workload'; registered: "),
        ("missing/train.py:train", "no such file: "),
        (f"{EXAMPLE}:nope", "has no attribute 'nope'"),
        ("no_such_module_here:train", "No module named 'no_such_module_here'"),
        ("train", "no workload named 'train'"),
    ],
)
def test_compare_refuses_an_unknown_workload(
    target: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _fails(_compare(tmp_path, target=target), capsys)
    assert f"cannot load {target}: " in err and message in err
    assert not (tmp_path / "cmp").exists()


def test_bench_refuses_an_unknown_study(tmp_path: Path, capsys) -> None:
    err = _fails(["bench", "--out", str(tmp_path / "b"), "--study", "small_modles"], capsys)
    assert "unknown study 'small_modles'; known: " in err and "robustness" in err
    assert not (tmp_path / "b").exists()
    assert "argument --jobs" in _fails(["bench", "--jobs", "0"], capsys)


def test_an_interrupted_bench_exits_130_without_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Ctrl-C: the study runner has logged what it kept; the command ends with 130, as
    the CLI guide says, not with KeyboardInterrupt's traceback."""
    from greedylr.evidence import suites

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(suites, "bench", interrupted)
    assert main(["bench", "--out", str(tmp_path)]) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_bench_robustness_report_of_nothing(tmp_path: Path, capsys) -> None:
    err = _fails(["bench", "--out", str(tmp_path), "robustness", "--report-only"], capsys)
    assert f"no stored robustness study in {tmp_path / 'robustness'}" in err


def test_bench_robustness_refuses_a_negative_average(tmp_path: Path, capsys) -> None:
    err = _fails(["bench", "--out", str(tmp_path), "robustness", "--average", "-1"], capsys)
    assert "argument --average: expected a finite number >= 0, got '-1'" in err
    assert not (tmp_path / "robustness").exists()


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("study", "the following arguments are required: STUDY"),
        ("study defualts --out {out}", "argument STUDY: invalid choice: 'defualts'"),
        ("study defaults --out {out}", "the following arguments are required: STAGE"),
        ("study defaults tnue --out {out}", "unknown stage 'tnue'; known: tune, check, report"),
        ("study defaults tune --jobs 0 --out {out}", "argument --jobs"),
        ("study defaults heldout-tune --arms -1 --out {out}", "argument --arms"),
        ("study defaults check --out {out}", "check needs the candidate defaults: --set"),
        ("study defaults check --set factor --out {out}", "--set expects KEY=VALUE"),
        # checked with each check workload's own budget (before: a stand-in, and every
        # trial of the warmed-up workloads failed)
        ("study defaults check --set anneal_fraction=0.95 --out {out}",
         "the warmup (20 steps) runs into the final cooldown, which starts at step 10"),
        ("study defaults heldout-tune --set factor=0.5 --out {out}",
         "--set is the check stage's candidate; heldout-tune takes none"),
        ("study defaults check --set factr=0.9 --out {out}",
         "schedule 'greedy' does not take setting(s) ['factr']"),
        ("study llm --studies pretrian --out {out}", "unknown study 'pretrian'; known: f_sweep"),
        ("study llm --jobs x --out {out}", "argument --jobs"),
    ],
)
def test_study_refuses_a_bad_request_before_any_trial(
    command: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "study"
    assert message in _fails(command.format(out=out).split(), capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("study defaults report --out {out}", "nothing to report in {out} (no tune or check"),
        ("study defaults heldout-report --out {out}", "nothing to report in {out} (no heldout_"),
        ("study defaults heldout-lr-grid-report --out {out}",
         "nothing to report in {out} (no heldout_lr_grid folder)"),
        ("study defaults heldout-lr-grid-probe2-report --out {out}",
         "nothing to report in {out} (no heldout_lr_grid_probe2 folder)"),
        ("study llm --report-only --out {out}", "no stored study in {out}"),
    ],
)
def test_study_report_of_nothing(
    command: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _fails(command.format(out=tmp_path).split(), capsys)
    assert message.format(out=tmp_path) in err


def test_study_defaults_report_needs_its_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tune").mkdir()
    err = _fails(["study", "defaults", "report", "--out", str(tmp_path), "--baselines",
                  str(tmp_path / "nope")], capsys)
    assert f"--baselines: no such folder {tmp_path / 'nope'}" in err


def test_an_unknown_command_or_option_is_one_line(capsys) -> None:
    assert _fails(["bnech"], capsys).startswith("greedylr: error: argument COMMAND: invalid "
                                                "choice: 'bnech'")
    assert "unrecognized arguments: --sedes" in _fails(["compare", "x:y", "--sedes", "2"],
                                                        capsys)


@pytest.mark.parametrize(
    ("argv", "out", "full"),
    [
        (["bench", "--out", "X", "robustness"], "X", False),
        (["bench", "robustness", "--out", "X"], "X", False),
        (["bench", "--full", "--out", "X", "robustness"], "X", True),
        (["bench", "robustness", "--full"], None, True),
        (["bench", "robustness"], None, False),  # quick by default, like bench itself
        (["bench"], None, False),
        (["bench", "--full"], None, True),
        (["bench", "--full", "robustness", "--quick"], None, False),
    ],
)
def test_bench_out_and_size_are_honoured_wherever_given(
    argv: list[str], out: str | None, full: bool
) -> None:
    args = _parser().parse_args(argv)
    assert args.out == out and args.full is full


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_help_texts_state_what_runs_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _help(["bench"], capsys)
    assert "By default the quick suite" in bench
    assert "1.5 to 3.5 minutes on a 2-core machine" in bench
    assert "10 minutes" not in bench
    robustness = _help(["bench", "robustness"], capsys)
    assert "Quick by default (576 runs" in robustness and "--full: 8,192 runs" in robustness


def test_the_defaults_study_help_names_every_stage(capsys: pytest.CaptureFixture[str]) -> None:
    from greedylr.cli import _DEFAULTS_STAGES
    from greedylr.evidence.defaults import STAGES

    assert _DEFAULTS_STAGES == STAGES
    text = _help(["study", "defaults"], capsys)
    assert all(stage in text for stage in STAGES)


def test_log_lines_are_readable(tmp_path: Path) -> None:
    trace = _saved_trace(tmp_path)
    png = tmp_path / "p.png"
    done = subprocess.run(
        [sys.executable, "-m", "greedylr.cli", "plot", str(trace), "-o", str(png)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert re.fullmatch(rf"\d\d:\d\d:\d\d INFO: wrote {re.escape(str(png))}\n", done.stderr)


def test_a_warning_is_a_log_line(tmp_path: Path) -> None:
    # a trace whose last line a killed process cut: Python's own report before, with the
    # file name and source line of the code that warned
    cut = tmp_path / "cut.jsonl"
    cut.write_text(_saved_trace(tmp_path).read_text()[:-20])
    done = subprocess.run([sys.executable, "-m", "greedylr.cli", "diagnose", str(cut)],
                          capture_output=True, text=True, timeout=120, check=True)
    assert re.fullmatch(rf"\d\d:\d\d:\d\d WARNING: {re.escape(str(cut))}: line 40 is cut "
                        r"short \(.*\); it is dropped and the 38 rows before it are kept\n",
                        done.stderr)
    shown = warnings.showwarning
    main(["diagnose", str(cut)])
    assert warnings.showwarning is shown  # the caller's display is left as it was


def test_compare_stores_a_function_that_calls_sys_exit_as_a_failed_trial(tmp_path: Path) -> None:
    # in the process that runs it (--jobs 1): before, the whole comparison ended there
    script = tmp_path / "quits.py"
    script.write_text(
        "import sys\n\nimport torch\n\n"
        "def train(trial):\n    sys.exit('out of patience')\n\n"
        "def done(trial):\n    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))])\n"
        "    trial.scheduler(opt)\n    for _ in range(trial.steps):\n"
        "        opt.step()\n        trial.step(1.0)\n    sys.exit(0)\n")
    out = tmp_path / "cmp"
    assert main(_compare(tmp_path, "--schedules", "greedy", target=f"{script}:train")) == 1
    from greedylr.studies.runner import load_results

    (result,) = load_results(out)
    assert result["status"] == "failed"
    assert result["error"] == ("RuntimeError: the training function called "
                               "sys.exit('out of patience')")
    assert (out / "report.md").exists()
    # sys.exit(0) after training: a return
    assert main(["compare", f"{script}:done", "--schedules", "greedy", "--seeds", "1",
                 "--steps", "5", "--out", str(tmp_path / "done")]) == 0
    assert [r["status"] for r in load_results(tmp_path / "done")] == ["ok"]


def test_compare_runs_a_registered_workload_as_the_studies_do(tmp_path: Path) -> None:
    # its optimizer (Adagrad), length and evaluation pace, not compare's defaults for
    # user code (AdamW, 300 steps, one evaluation)
    from greedylr.evidence.workloads import get
    from greedylr.studies.runner import load_results

    wine = get("wine_mlp")
    assert (wine.optimizer, wine.eval_every) != ("adamw", 0)
    out = tmp_path / "wine"
    assert main(["compare", "wine_mlp", "--schedules", "constant", "--seeds", "1",
                 "--out", str(out)]) == 0
    (result,) = load_results(out)
    spec = result["spec"]
    assert (spec["optimizer"], spec["steps"], spec["warmup"], spec["eval_every"]) == (
        wine.optimizer, wine.steps, wine.warmup, wine.eval_every)
    assert result["optimizer_used"].endswith(".Adagrad")
    assert result["lr"] == wine.lr_for("adagrad")
    assert [row["step"] for row in result["metrics"]] == list(
        range(wine.eval_every, wine.steps + 1, wine.eval_every))
    # what is given still wins; at another length its evaluation pace keeps its share
    assert main(["compare", "wine_mlp", "--schedules", "constant", "--seeds", "1",
                 "--steps", "20", "--optimizer", "sgd", "--out", str(tmp_path / "given")]) == 0
    (given,) = load_results(tmp_path / "given")
    assert (given["spec"]["optimizer"], given["spec"]["steps"],
            given["spec"]["eval_every"]) == ("sgd", 20, round(wine.eval_every * 20 / wine.steps))


def test_compare_knows_a_file_however_it_is_spelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a rerun that names the file another way resumes: no trial runs twice, and the
    # report has one workload
    from greedylr.studies.runner import load_results

    (tmp_path / "runs").mkdir()
    script = tmp_path / "train.py"
    script.write_text(Path(EXAMPLE).read_text())
    (tmp_path / "link").symlink_to(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "cmp"
    for here, target in ((tmp_path, "train.py:train"), (tmp_path, "./runs/../train.py:train"),
                         (tmp_path / "runs", "../train.py:train"),
                         (tmp_path / "link", f"{tmp_path / 'link' / '..' / 'train.py'}:train"),
                         (tmp_path, f"{script}:train")):
        monkeypatch.chdir(here)
        assert main(["compare", target, "--schedules", "constant", "--seeds", "1",
                     "--steps", "5", "--out", str(out)]) == 0
    (result,) = load_results(out)
    assert result["spec"]["workload"] == f"{os.path.realpath(script)}:train"


def test_compare_into_a_folder_another_process_writes_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; "
         "from greedylr.studies.store import exclusive\n"
         "with exclusive(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)",
         str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        err = _fails(_compare(tmp_path), capsys)
    finally:
        holder.kill()
        holder.wait()
    assert f"{out} is being written by pid {holder.pid} on " in err


def test_compare_into_a_path_that_is_a_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    for out in (taken, taken / "below"):
        err = _fails(["compare", f"{EXAMPLE}:train", "--seeds", "1", "--steps", "5",
                      "--out", str(out)], capsys)
        assert f"--out {out}: cannot make the results folder there (a file is in the way)" \
            in err
    assert taken.read_text() == "not a folder"


_SHORT = (
    "import torch\n\n"
    "def train(trial):\n"
    "    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=trial.lr)\n"
    "    trial.scheduler(opt)\n"
    "    for step in range(trial.steps):\n"
    "        opt.step()\n        trial.step(1.0 / (step + 1))\n"
    "        if trial.spec.schedule == 'greedy' and trial.options.get('workload_early'):\n"
    "            trial.report(accuracy=1.0)\n            return\n"
    "    trial.report(accuracy=0.5)\n"
)


def test_compare_with_a_trial_that_stopped_early_exits_1(tmp_path: Path) -> None:
    from greedylr.studies.runner import load_results

    script = tmp_path / "quick.py"
    script.write_text(_SHORT)
    argv = ["compare", f"{script}:train", "--seeds", "1", "--steps", "5"]
    assert main([*argv, "--out", str(tmp_path / "full")]) == 0
    assert main([*argv, "--set", "workload_early=true", "--out", str(tmp_path / "cmp")]) == 1
    statuses = {r["spec"]["schedule"]: r["status"] for r in load_results(tmp_path / "cmp")}
    assert statuses == {"greedy": "short", "cosine": "ok"}


def test_reports_written_into_one_folder_keep_their_own_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # two studies of the same name (compare's default), reported into one folder
    script = tmp_path / "quick.py"
    script.write_text(_SHORT)
    for name in ("a", "b"):
        assert main(["compare", f"{script}:train", "--seeds", "1", "--steps", str(4 + len(name)),
                     "--out", str(tmp_path / name)]) == 0
    shared = tmp_path / "reports"
    for name in ("a", "b", "a"):
        assert main(["report", str(tmp_path / name), "--output", str(shared / f"{name}.md")]) == 0
    for name in ("a", "b"):
        text = (shared / f"{name}.md").read_text()
        links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
        assert links and all(link.startswith(f"{name}-figures/") for link in links)
        assert all((shared / link).is_file() for link in links)
    # a report's figures folder holds its figures alone
    assert not (shared / "figures").exists()
    # a file where the report must go: one line
    capsys.readouterr()
    assert "cannot write the report" in _fails(
        ["report", str(tmp_path / "a"), "--output", str(tmp_path / "a" / "report.md" / "x.md")],
        capsys)


def test_compare_imports_a_module_of_the_current_folder(tmp_path: Path) -> None:
    # the console script's sys.path starts with its own folder, not the user's: a
    # MODULE:FUNCTION in the folder it runs from is imported as `python -m` would
    (tmp_path / "my_quick_train.py").write_text(_SHORT)
    script = Path(sys.executable).with_name("greedylr")
    done = subprocess.run(
        [str(script), "compare", "my_quick_train:train", "--seeds", "1", "--steps", "3",
         "--schedules", "constant", "--jobs", "2", "--out", "cmp"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (trial,) = (tmp_path / "cmp" / "trials").glob("*.json")
    assert json.loads(trial.read_text())["status"] == "ok"

"""Streaming the trace to files: appending, resuming, rollbacks, copies, failing sinks,
a second writer, dropped traces and SIGTERM. Real files in tmp_path; real processes where
an exit matters."""

from __future__ import annotations

import copy
import gc
import json
import logging
import math
import os
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from greedylr import GreedyLR, Trace, load_trace
from greedylr.events import DECREASE, describe
from greedylr.trace import JSONLSink

SUFFIXES = [".jsonl", ".csv"]


def run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args],
                          capture_output=True, text=True, timeout=timeout)


def file_rows(path) -> list[int]:
    return load_trace(path).steps.tolist()


def event_rows(trace: Trace) -> list[tuple[int, int, str]]:
    """(row index, step, kind) of every event, read from the code column and the events."""
    rows = trace.rows()
    return [(i, e.step, e.kind) for i, events in sorted(rows.events_by_row().items())
            for e in events]


# -- 1. a file is started once; a closed trace appends; no copy writes it -----------


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_closed_trace_that_goes_on_appends_to_its_file(tmp_path, suffix):
    path = tmp_path / f"closed{suffix}"
    trace = Trace(1, sinks=[path])
    for step in range(1, 101):
        trace.log(source="a")
        trace.record(step, 1.0 / step, 1.0 / step, [0.1])
    trace.close()
    for step in range(101, 201):
        trace.log(source="b")
        trace.record(step, 1.0 / step, 1.0 / step, [0.1])
    trace.close()
    loaded = load_trace(path)
    assert loaded.steps.tolist() == list(range(1, 201))  # 101..200 only before the fix
    assert loaded.signal("source") == ["a"] * 100 + ["b"] * 100


_COPYING_RUN = """
import copy, sys, torch, greedylr
p = torch.nn.Parameter(torch.zeros(1)); opt = torch.optim.SGD([p], lr=0.1)
sched = greedylr.GreedyLR(opt, trace=greedylr.Trace(sinks=[sys.argv[1]]))
for i in range(5):
    opt.step(); sched.step(1.0 / (i + 1))
try:
    snapshot = copy.deepcopy(sched)  # before the first flush: the file is not open yet
except TypeError as exc:
    print("refused:", exc)
for i in range(5, 3000):
    opt.step(); sched.step(1.0 / (i + 1))
sched.trace.close()
"""


def test_a_scheduler_streaming_to_a_file_cannot_be_copied_even_before_it_opens(tmp_path):
    path = tmp_path / "copied.jsonl"
    done = run(_COPYING_RUN, str(path))
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout and "state_dict()" in done.stdout
    # after the exit, the file is the run's (a copy wrote its 5 rows over it before)
    assert file_rows(path) == list(range(1, 3001))


def test_no_copy_of_a_trace_with_a_file_sink_but_of_its_rows(tmp_path):
    trace = Trace(1, sinks=[tmp_path / "t.jsonl"], flush_every=0)
    trace.record(1, 1.0, 1.0, [0.1])
    for clone in (copy.deepcopy, pickle.dumps, copy.copy):
        with pytest.raises(TypeError, match=r"t\.jsonl cannot be copied or pickled, whether"):
            clone(trace)
    trace.close()  # closed: still refused (a copy would start the file anew)
    with pytest.raises(TypeError, match="second writer"):
        copy.deepcopy(trace)
    rows = Trace()
    rows.extend(trace.rows())
    assert copy.deepcopy(rows).steps.tolist() == [1]


# -- 2. a trace dropped without close() -----------------------------------------------


def test_a_trace_dropped_without_close_writes_its_rows(tmp_path):
    path = tmp_path / "dropped.jsonl"

    def train() -> None:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        sched = GreedyLR(opt, trace=Trace(sinks=[path]))
        for i in range(500):  # fewer than flush_every, well under flush_interval
            opt.step()
            sched.step(1.0 / (i + 1))

    train()
    gc.collect()
    assert file_rows(path) == list(range(1, 501))  # no file before the fix


_FORKED_GC = """
import gc, os, sys
from greedylr import Trace
trace = Trace(1, sinks=[sys.argv[1]], flush_every=1000)
trace.record(1, 1.0, 1.0, [0.1])
trace.flush()
trace.record(2, 1.0, 1.0, [0.1])
if os.fork() == 0:
    del trace
    gc.collect()  # the child's copy dies: it must not write the parent's rows
    os._exit(0)
os.wait()
trace.record(3, 1.0, 1.0, [0.1])
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_trace_dying_in_a_forked_child_writes_nothing(tmp_path):
    path = tmp_path / "fork.jsonl"
    done = run(_FORKED_GC, str(path))
    assert done.returncode == 0, done.stderr
    assert file_rows(path) == [1, 2, 3]


# -- 3. a resumed run keeps the crashed run's rows up to its checkpoint ------------------


_RESUMABLE_RUN = """
import os, sys, torch, greedylr
path, ckpt, crash = sys.argv[1], sys.argv[2], sys.argv[3] == "crash"
p = torch.nn.Parameter(torch.zeros(1)); opt = torch.optim.SGD([p], lr=0.1)
sched = greedylr.GreedyLR(opt, trace=greedylr.Trace(sinks=[path]), patience=3,
                          smoothing="none")
sched.trace.log(source="x")
start = 0
if os.path.exists(ckpt):
    sched.load_state_dict(torch.load(ckpt)); start = sched.state.step
losses = [1.0 / (1 + i % 40) for i in range(300)]  # a saw: decreases and increases
for i in range(start, 300):
    opt.step(); sched.trace.log(source=f"s{i // 100}"); sched.step(losses[i])
    if i + 1 == 200 and ckpt != "-": torch.save(sched.state_dict(), ckpt)
    if i + 1 == 250 and crash: raise RuntimeError("node died")
sched.trace.close()
"""


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_resumed_run_keeps_the_rows_before_its_checkpoint(tmp_path, suffix):
    path, ckpt = tmp_path / f"resumed{suffix}", tmp_path / "ckpt.pt"
    crashed = run(_RESUMABLE_RUN, str(path), str(ckpt), "crash")
    assert crashed.returncode == 1 and "node died" in crashed.stderr
    assert file_rows(path) == list(range(1, 251))
    resumed = run(_RESUMABLE_RUN, str(path), str(ckpt), "go")
    assert resumed.returncode == 0, resumed.stderr
    assert "kept its 200 rows up to that step, dropped 50 rows after it" in resumed.stderr
    whole = tmp_path / f"whole{suffix}"
    assert run(_RESUMABLE_RUN, str(whole), "-", "go").returncode == 0
    loaded, expected = load_trace(path), load_trace(whole)
    assert loaded.steps.tolist() == list(range(1, 301))  # 201..300 before the fix
    np.testing.assert_array_equal(loaded.losses, expected.losses)
    np.testing.assert_array_equal(loaded.lrs[0], expected.lrs[0])
    np.testing.assert_array_equal(loaded.codes, expected.codes)
    assert loaded.signal("source") == expected.signal("source")
    assert [(e.step, e.kind, e.reason) for e in loaded.events] == [
        (e.step, e.kind, e.reason) for e in expected.events]
    assert event_rows(loaded) == event_rows(expected)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_fresh_run_over_an_old_trace_starts_anew_and_says_so(tmp_path, suffix, caplog):
    path = tmp_path / f"old{suffix}"
    old = Trace(1, sinks=[path])
    old.record(1, 1.0, 1.0, [0.1])
    old.close()
    trace = Trace(1, sinks=[path])
    trace.record(7, 1.0, 1.0, [0.1])
    with caplog.at_level(logging.WARNING, logger="greedylr"):
        trace.close()
    assert "held a greedylr trace with rows; it is overwritten" in caplog.text
    assert file_rows(path) == [7]


def test_a_resumed_trace_keeps_rows_up_to_the_last_row_of_its_step(tmp_path, caplog):
    # a file that already repeats steps (a rollback in the crashed run): the cut follows
    # the last row of the step resumed from, the one the checkpoint was saved at
    path = tmp_path / "repeats.jsonl"
    old = Trace(1, sinks=[path])
    for step in [*range(1, 11), *range(5, 9)]:
        old.record(step, 1.0, 1.0, [0.1])
    old.close()
    trace = Trace(1, sinks=[path])
    trace.resume(7)
    trace.record(8, 0.5, 0.5, [0.1])
    with caplog.at_level(logging.INFO, logger="greedylr"):
        trace.close()
    assert file_rows(path) == [*range(1, 11), 5, 6, 7, 8]
    assert "kept its 13 rows up to that step, dropped 1 rows" in caplog.text


@pytest.mark.parametrize(("resume", "missing"), [(15, "steps 11-15"), (11, "step 11")])
def test_a_resume_past_the_last_row_written_names_the_missing_steps(tmp_path, caplog, resume,
                                                                    missing):
    # a run killed after its checkpoint but before it flushed the rows after step 10
    path = tmp_path / "gap.jsonl"
    old = Trace(1, sinks=[path])
    for step in range(1, 11):
        old.record(step, 1.0, 1.0, [0.1])
    old.close()
    trace = Trace(1, sinks=[path])
    trace.resume(resume)
    trace.record(resume + 1, 0.5, 0.5, [0.1])
    with caplog.at_level(logging.INFO, logger="greedylr"):
        trace.close()
    assert file_rows(path) == [*range(1, 11), resume + 1]
    assert [r.levelname for r in caplog.records] == ["WARNING"]  # an INFO line before
    assert f"kept its 10 rows up to that step; {missing} never reached it" in caplog.text
    assert "dropped" not in caplog.text  # nothing was: no run went on past the checkpoint


# -- 4, 5, 10. signal columns ------------------------------------------------------------


def test_a_csv_signal_named_like_an_lr_column(tmp_path):
    trace = Trace(1, meta={"base_lrs": [0.1]})
    for step in range(1, 6):
        event = describe(None, step=step, code=DECREASE, loss=1.0, smoothed=1.0,
                         reference=None, lrs_before=[0.1], lrs_changed=[0.09],
                         lrs_after=[0.09]) if step == 3 else []
        trace.log(lr_scale=0.5 * step, reasons="r")  # "reasons" is no reserved name
        trace.record(step, 1.0, 1.0, [0.09 if step >= 3 else 0.1], event)
    loaded = load_trace(trace.save(tmp_path / "lr_signal.csv"))
    assert loaded.num_groups == 1  # 2 before the fix
    assert loaded.signal_names == ["lr_scale", "reasons"]
    np.testing.assert_array_equal(loaded.signal("lr_scale"), [0.5, 1.0, 1.5, 2.0, 2.5])
    assert [e.kind for e in loaded.events] == ["decrease"]  # a ValueError before the fix


@pytest.mark.parametrize("streamed", [False, True])
def test_a_numeric_signal_that_starts_at_inf_stays_numeric(tmp_path, streamed):
    path = tmp_path / "inf.jsonl"
    trace = Trace(1, sinks=[path] if streamed else [], flush_every=2)
    for step, norm in enumerate([math.inf, -math.inf, 1.5, math.nan, 2.0], start=1):
        trace.log(grad_norm=norm)
        trace.record(step, 1.0, 1.0, [0.1])
    if streamed:
        trace.close()
    else:
        trace.save(path)
    loaded = load_trace(path).signal("grad_norm")
    assert isinstance(loaded, np.ndarray)  # a tag column of 'inf' strings before the fix
    np.testing.assert_array_equal(loaded, [math.inf, -math.inf, 1.5, math.nan, 2.0])


def test_an_older_file_without_signal_types_reads_inf_as_a_number(tmp_path):
    path = tmp_path / "old.jsonl"
    lines = [{"format": "greedylr.trace", "version": 1, "num_groups": 1, "meta": {}}]
    for step, (norm, tag) in enumerate([("inf", "a"), (2.0, "inf")], start=1):
        lines.append({"step": step, "loss": 1.0, "smoothed": 1.0, "lrs": [0.1], "code": 0,
                      "signals": {"grad_norm": norm, "source": tag}})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    loaded = load_trace(path)
    np.testing.assert_array_equal(loaded.signal("grad_norm"), [math.inf, 2.0])
    assert loaded.signal("source") == ["a", "inf"]  # another string makes it a tag


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_tag_first_logged_as_none_stays_a_tag(tmp_path, suffix):
    trace = Trace(1)
    trace.log(source=None, norm=None)
    trace.record(1, 1.0, 1.0, [0.1])
    trace.log(source="shard-1", norm=None)  # a TypeError before the fix
    trace.record(2, 1.0, 1.0, [0.1])
    trace.log(norm=3.0)
    trace.record(3, 1.0, 1.0, [0.1])
    assert trace.signal("source") == [None, "shard-1", None]
    np.testing.assert_array_equal(trace.signal("norm"), [math.nan, math.nan, 3.0])
    loaded = load_trace(trace.save(tmp_path / f"none{suffix}"))
    assert loaded.signal("source") == [None, "shard-1", None]


# -- 6. a rollback in one process: every event stays at its row --------------------------


def _rolled_back(path, device: bool) -> GreedyLR:
    lr = torch.tensor(0.1) if device else 0.1
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = GreedyLR(opt, trace=Trace(sinks=[path]), device_mode=device)
    losses = [1.0] * 5 + [2.0] * 40  # a plateau: decreases at steps 13, 24, 35

    def go(values: list[float]) -> None:
        for value in values:
            opt.step()
            sched.step(torch.tensor(value) if device else value)

    go(losses[:10])
    checkpoint = sched.state_dict()
    go(losses[10:])
    sched.load_state_dict(checkpoint)  # roll back: steps 11..45 again, in the same chunk
    go(losses[10:])
    sched.trace.close()
    return sched


@pytest.mark.parametrize("device", [False, True])
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_rollback_keeps_every_event_at_its_row(tmp_path, suffix, device):
    path = tmp_path / f"rollback{suffix}"
    earlier = Trace(1, sinks=[path])  # an earlier run's file: a rollback does not resume it
    earlier.record(1, 1.0, 1.0, [0.1])
    earlier.close()
    sched = _rolled_back(path, device)
    memory, loaded = sched.trace, load_trace(path)
    assert memory.steps.tolist() == [*range(1, 46), *range(11, 46)]
    assert [(e.step, e.kind) for e in memory.events] == [
        (13, "decrease"), (24, "decrease"), (35, "decrease")] * 2
    expected = [(12, 13, "decrease"), (23, 24, "decrease"), (34, 35, "decrease"),
                (47, 13, "decrease"), (58, 24, "decrease"), (69, 35, "decrease")]
    assert event_rows(memory) == expected
    assert event_rows(loaded) == expected  # each event twice (JSONL) or misplaced before
    np.testing.assert_array_equal(loaded.codes, memory.codes)
    assert sum(len(r["events"]) for r in memory.rows().dicts()) == 6


# -- 7. a sink added late ---------------------------------------------------------------


@pytest.mark.parametrize("rows", [999, 1001, 2500])
def test_a_late_sink_gets_every_row_still_in_memory(tmp_path, rows):
    trace = Trace(2)
    for step in range(1, rows + 1):
        trace.record(step, 1.0 / step, 1.0 / step, [0.1, 0.01])
    trace.add_sink(tmp_path / "late.jsonl")
    trace.close()
    assert file_rows(tmp_path / "late.jsonl") == list(range(1, rows + 1))  # 1 or 500 before


def test_a_late_sink_gets_the_events_and_only_the_rows_in_memory(tmp_path):
    trace = Trace(1, max_rows=10, flush_every=5)
    for step in range(1, 31):
        event = describe(None, step=step, code=DECREASE, loss=1.0, smoothed=1.0,
                         reference=None, lrs_before=[0.1], lrs_changed=[0.09],
                         lrs_after=[0.09]) if step % 7 == 0 else []
        trace.record(step, 1.0, 1.0, [0.1], event)
    first = int(trace.steps[0])
    trace.add_sink(tmp_path / "late.jsonl")
    trace.close()
    loaded = load_trace(tmp_path / "late.jsonl")
    assert loaded.steps.tolist() == list(range(first, 31))
    assert [e.step for e in loaded.events] == [s for s in (7, 14, 21, 28) if s >= first]


# -- 8. a failing sink -------------------------------------------------------------------


def test_a_failing_sink_is_logged_once_and_no_sink_gets_a_row_twice(tmp_path, caplog):
    calls = {"n": 0}
    got: list[int] = []

    def flaky(row: dict) -> None:
        calls["n"] += 1
        if calls["n"] in (3, 4):  # two failures in a row, after two rows passed
            raise ConnectionError("metrics server hiccup")
        got.append(row["step"])

    path = tmp_path / "f.jsonl"
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    trace = Trace(sinks=[path, flaky], flush_every=10)
    sched = GreedyLR(opt, trace=trace)
    with caplog.at_level(logging.WARNING, logger="greedylr"):
        for i in range(30):
            opt.step()
            sched.step(1.0 / (i + 1))  # raised ConnectionError at step 10 before the fix
        trace.close()
    assert file_rows(path) == list(range(1, 31))  # 40 rows before the fix
    assert got == list(range(1, 31))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "metrics server hiccup" in errors[0].getMessage()
    assert "works again" in caplog.text


def test_rows_trimmed_while_a_sink_fails_are_said_once_and_counted(caplog):
    """``max_rows`` drops rows a failing sink never got: one error says so (not one at
    every flush), and the last word counts them with the rows still undelivered."""
    def down(row: dict) -> None:
        raise OSError("server down")

    trace = Trace(1, sinks=[down], flush_every=1, max_rows=10)
    with caplog.at_level(logging.ERROR, logger="greedylr"):
        for step in range(1, 41):
            trace.record(step, 1.0, 1.0, [0.1])
        trace._finish("test")
    said = [r.getMessage() for r in caplog.records]
    assert sum("misses rows" in m for m in said) == 1
    assert said[-1].endswith("still fails: 40 rows are lost")


def test_the_error_of_a_with_block_is_not_masked_by_a_failing_sink():
    def down(row: dict) -> None:
        raise OSError("server down")

    with pytest.raises(KeyError, match="the block's"):
        with Trace(1, sinks=[down]) as trace:
            trace.record(1, 1.0, 1.0, [0.1])
            raise KeyError("the block's")
    with pytest.raises(OSError, match="server down"):  # without one, close() raises
        with Trace(1, sinks=[down]) as trace:
            trace.record(1, 1.0, 1.0, [0.1])

@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_leaves_the_scheduler_consistent_and_close_raises(tmp_path, caplog):
    path = tmp_path / "full.jsonl"
    path.symlink_to("/dev/full")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = GreedyLR(opt, trace=Trace(sinks=[path], flush_every=13), patience=3)
    with caplog.at_level(logging.ERROR, logger="greedylr"):
        for value in [1.0] * 5 + [2.0] * 20:
            opt.step()
            sched.step(value)  # an OSError escaped before the fix, the LR not written
            assert opt.param_groups[0]["lr"] == sched.state.lrs[0] == sched.get_last_lr()[0]
    assert sched.state.lrs[0] < 0.1  # the rule went on deciding
    assert sum("No space left" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(OSError, match="No space left"):
        sched.trace.close()  # an explicit close says it
    # the sink comes back: every row, once
    path.unlink()
    sched.trace.close()
    assert file_rows(path) == list(range(1, 26))


def test_an_explicit_flush_raises_after_the_other_sinks_got_their_rows(tmp_path):
    def broken(row: dict) -> None:
        raise ValueError("broken sink")

    trace = Trace(1, sinks=[broken, tmp_path / "ok.jsonl"], flush_every=0)
    trace.record(1, 1.0, 1.0, [0.1])
    with pytest.raises(ValueError, match="broken sink"):
        trace.flush()
    assert file_rows(tmp_path / "ok.jsonl") == [1]


# -- 11. a second writer ------------------------------------------------------------------


_SECOND_WRITER = """
import sys, time
from greedylr import Trace
trace = Trace(1, sinks=[sys.argv[1]], flush_every=1)
trace.record(1000, 1.0, 1.0, [0.1])  # flushed: the sink opens the file
"""


@pytest.mark.skipif(sys.platform == "win32", reason="no fcntl")
def test_a_second_writer_is_refused_and_the_file_is_left_whole(tmp_path, caplog):
    path = tmp_path / "shared.jsonl"
    first = Trace(1, sinks=[path], flush_every=1)
    for step in range(1, 4):
        first.record(step, 1.0, 1.0, [0.1])
    # another process (a second rank) streaming to the same path
    other = run(_SECOND_WRITER, str(path))
    assert "give each writer its own path" in other.stderr.lower()
    assert "f'run.rank{rank}.jsonl'" in other.stderr
    # another trace in this process: the recording goes on, an explicit close raises
    second = Trace(1, sinks=[path], flush_every=1)
    with caplog.at_level(logging.ERROR, logger="greedylr"):
        second.record(2000, 1.0, 1.0, [0.1])
    assert "is being written by another trace sink" in caplog.text
    with pytest.raises(RuntimeError, match="Give each writer its own path"):
        second.close()
    first.record(4, 1.0, 1.0, [0.1])
    first.close()
    assert file_rows(path) == [1, 2, 3, 4]  # the first writer's rows, whole
    # the refused writer outlives the first: the file, free now, stays the first's
    second.record(2001, 1.0, 1.0, [0.1])
    with pytest.raises(RuntimeError, match="Give each writer its own path"):
        second.flush()
    del second
    gc.collect()
    assert file_rows(path) == [1, 2, 3, 4]


# -- 9. SIGTERM --------------------------------------------------------------------------


_PREEMPTED_RUN = """
import signal, sys, time, greedylr
if sys.argv[2] == "recipe":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the recipe in docs/guides/pulse.md
trace = greedylr.Trace(1, sinks=[sys.argv[1]], flush_interval=None)
for step in range(1, 501):
    trace.record(step, 1.0 / step, 1.0 / step, [0.1])
print("trained", flush=True)
time.sleep(60)  # an evaluation: no step for a while
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("recipe", [False, True])
def test_sigterm_keeps_the_rows_with_the_guides_recipe(tmp_path, recipe):
    path = tmp_path / "preempted.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", _PREEMPTED_RUN, str(path), "recipe" if recipe else "-"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "trained"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    if recipe:  # sys.exit runs the exit handlers: every row reaches the file
        assert proc.returncode == 143
        assert file_rows(path) == list(range(1, 501))
    else:  # the default action kills the process: no exit handler runs
        assert proc.returncode == -signal.SIGTERM
        assert not path.exists() or path.stat().st_size == 0


# -- the file sink on its own -----------------------------------------------------------


def test_a_failed_chunk_is_cut_off_so_a_retry_writes_it_once(tmp_path):
    path = tmp_path / "partial.jsonl"
    sink = JSONLSink(path, num_groups=1)
    trace = Trace(1, flush_every=0)
    trace.record(1, 1.0, 1.0, [0.1])
    sink.write(trace.rows())
    original = sink._open()

    class Half:
        """A file that writes half of what it is given, then fails (a disk filling up)."""

        def write(self, data):
            original.write(data[:len(data) // 2])
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(original, name)

    sink._file = Half()  # type: ignore[assignment]
    trace.record(2, 1.0, 1.0, [0.1])
    with pytest.raises(OSError):
        sink.write(trace.rows(1))
    sink._file = original
    sink.write(trace.rows(1))
    sink.close()
    assert file_rows(path) == [1, 2]


# -- from the second review --------------------------------------------------------------


def _stream(path, steps, *, groups=1, meta=None, resume=None, signal=None):
    """A trace streaming ``steps`` to ``path``, closed; ``signal``: a value per step."""
    trace = Trace(groups, sinks=[path], flush_every=1, flush_interval=None, meta=meta)
    if resume is not None:
        trace.resume(resume)
    for step in steps:
        if signal is not None:
            trace.log(gn=signal(step))
        trace.record(step, 1.0 / step, 1.0 / step, [0.1] * groups)
    trace.close()


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_resume_over_another_runs_file_starts_it_anew(tmp_path, suffix, caplog):
    path = tmp_path / f"other{suffix}"
    with caplog.at_level(logging.WARNING, logger="greedylr"):
        # another experiment left the file: 2 groups, where this run has 1
        _stream(path, range(1, 11), groups=2)
        _stream(path, range(4, 7), resume=3)  # the file could not be read back before
        assert "holds the trace of another run" in caplog.text
        assert file_rows(path) == [4, 5, 6]
        # another meta, and a signal of the other type
        caplog.clear()
        _stream(path, range(1, 6), meta={"run": "A"}, signal=float)
        _stream(path, range(3, 4), meta={"run": "B"}, resume=2, signal=lambda s: f"s{s}")
        assert "meta 'run'" in caplog.text
        _stream(path, range(1, 6), meta={"run": "B"}, signal=float)
        _stream(path, range(3, 5), meta={"run": "B"}, resume=2, signal=lambda s: f"s{s}")
        assert "signal 'gn' is a number there, a tag here" in caplog.text
    trace = load_trace(path)
    assert trace.steps.tolist() == [3, 4] and trace.signal("gn") == ["s3", "s4"]
    assert trace.meta == {"run": "B"}


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_resume_with_another_budget_keeps_the_rows_and_the_first_header(tmp_path, suffix):
    path = tmp_path / f"budget{suffix}"
    config = {"patience": 3, "total_steps": 100}
    _stream(path, range(1, 11), meta={"config": config, "base_lrs": [0.1]})
    _stream(path, range(6, 9), resume=5,
            meta={"config": {**config, "total_steps": 200}, "base_lrs": [0.1], "note": 1})
    trace = load_trace(path)
    assert trace.steps.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert trace.meta["config"]["total_steps"] == 100  # the first header, as documented


def test_a_copy_of_a_trace_does_not_feed_the_originals_sinks():
    seen: list[int] = []
    trace = Trace(1, sinks=[lambda row: seen.append(row["step"])], flush_every=10,
                  flush_interval=None)
    for step in range(1, 6):
        trace.record(step, 1.0, 1.0, [0.1])
    for clone in (copy.deepcopy, copy.copy):
        other = clone(trace)
        assert other.steps.tolist() == [1, 2, 3, 4, 5]
        other.close()
        del other
        gc.collect()  # the copy's finalizer delivered the 5 rows again before the fix
    trace.close()
    assert seen == [1, 2, 3, 4, 5]


_COPY_AT_EXIT = """
import atexit
seen = []
atexit.register(lambda: print("seen", seen))  # before greedylr's: runs after it
import copy, logging, greedylr
trace = greedylr.Trace(1, sinks=[logging.getLogger("x"), lambda row: seen.append(row["step"])],
                       flush_every=10, flush_interval=None)
for step in range(1, 6):
    trace.record(step, 1.0, 1.0, [0.1])
keep = copy.deepcopy(trace)  # alive at exit, like the original
"""


def test_a_copy_alive_at_exit_delivers_nothing_twice():
    done = run(_COPY_AT_EXIT)
    assert done.returncode == 0, done.stderr
    assert "seen [1, 2, 3, 4, 5]\n" in done.stdout  # each row twice before the fix


@pytest.mark.skipif(sys.platform == "win32", reason="no fcntl")
def test_a_closed_trace_does_not_append_to_a_file_another_writer_started(tmp_path, caplog):
    path = tmp_path / "taken.jsonl"
    first = Trace(1, sinks=[path], flush_every=1, flush_interval=None)
    first.record(1, 1.0, 1.0, [0.1])
    first.close()  # the lock is released: another run may start the file
    _stream(path, [1, 2])
    with caplog.at_level(logging.ERROR, logger="greedylr"):
        first.record(2, 1.0, 1.0, [0.1])  # appended to the other run's file before
        first.record(3, 1.0, 1.0, [0.1])
    assert sum("was changed since this sink closed it" in r.getMessage()
               for r in caplog.records) == 1
    with pytest.raises(RuntimeError, match=r"it has .* bytes, this sink left"):
        first.close()
    assert load_trace(path).losses.tolist() == [1.0, 0.5]  # the other run's, whole
    # a file removed in between is not recreated by the old writer either
    path.unlink()
    with pytest.raises(RuntimeError, match="it was removed"):
        first.flush()
    assert not path.exists()


_DEVICE_RUNS = """
import gc, sys, weakref, torch
from greedylr import GreedyLR, Trace
gc.disable()  # only reference counting: what a long training step sees between collections
def train(base):
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=torch.tensor(0.1))
    trace = Trace(sinks=[sys.argv[1]], flush_every=4, flush_interval=None)
    sched = GreedyLR(opt, device_mode=True, trace=trace)
    for i in range(6):
        opt.step(); sched.step(torch.tensor(base + i))
    return weakref.ref(trace)
print("alive", train(100.0)() is not None)
"""


def test_a_dropped_device_mode_run_releases_its_file_at_once(tmp_path):
    path = tmp_path / "device.jsonl"
    done = run(_DEVICE_RUNS, str(path))
    assert done.returncode == 0, done.stderr
    assert "alive False" in done.stdout  # kept until the cyclic GC before the fix
    assert file_rows(path) == [1, 2, 3, 4, 5, 6]


def test_a_callable_sink_skips_only_the_rows_it_passed_on_after_trimming(caplog):
    seen: list[int] = []
    failing = [True]

    def sink(row: dict) -> None:
        if failing[0] and row["step"] == 4:
            raise OSError("down")
        seen.append(row["step"])

    trace = Trace(1, sinks=[sink], flush_every=2, flush_interval=None, max_rows=4)
    with caplog.at_level(logging.ERROR, logger="greedylr"):
        for step in range(1, 13):
            failing[0] = step < 9
            trace.record(step, 1.0, 1.0, [0.1])
        trace.close()
    # step 4 was dropped from memory while the sink failed (logged); step 5 was still
    # in memory and was skipped before the fix
    assert seen == [1, 2, 3, *range(5, 13)]
    assert "dropped from memory" in caplog.text


_FORKED_CLOSE = """
import fcntl, os, sys
from greedylr import Trace, load_trace
path = sys.argv[1]
trace = Trace(1, sinks=[path], flush_every=1, flush_interval=None)
trace.record(1, 1.0, 1.0, [0.1])
trace.flush_every = 0
trace.record(2, 1.0, 1.0, [0.1])
if os.fork() == 0:
    trace.record(99, 9.0, 9.0, [0.9])
    trace.flush()
    trace.close()
    os._exit(0)
os.wait()
fd = os.open(path, os.O_RDONLY)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("lock lost")
except BlockingIOError:
    print("lock kept")
os.close(fd)
trace.record(3, 1.0, 1.0, [0.1])
trace.close()
print("rows", load_trace(path).steps.tolist())
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_childs_close_leaves_the_parents_file_alone(tmp_path):
    done = run(_FORKED_CLOSE, str(tmp_path / "forked.jsonl"))
    assert done.returncode == 0, done.stderr
    assert "lock kept" in done.stdout and "rows [1, 2, 3]" in done.stdout
    assert "no longer streams to its file sinks" in done.stderr


def test_saving_onto_the_file_a_sink_streams_to_is_refused(tmp_path):
    path = tmp_path / "run.jsonl"
    trace = Trace(1, sinks=[path], flush_every=2, flush_interval=None)
    for step in range(1, 5):
        trace.record(step, 1.0, 1.0, [0.1])
    with pytest.raises(ValueError, match="a sink of this trace streams to"):
        trace.save(tmp_path / "." / "run.jsonl")
    trace.record(5, 1.0, 1.0, [0.1])
    trace.close()
    assert file_rows(path) == [1, 2, 3, 4, 5]

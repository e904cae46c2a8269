"""The trace: columns, signals, memory bounds, sinks and files, device-mode buffering."""

from __future__ import annotations

import json
import logging
import math
import re
import tracemalloc

import numpy as np
import pytest
import torch

import greedylr
from greedylr import GreedyLR, Trace, load_trace
from greedylr.rule import Event, GreedyConfig, init, update
from greedylr.trace import EVENT_BITS, CSVSink, LoggingSink, Rows, TensorBoardSink

# a loss sequence that makes the rule increase, decrease, hit its bounds, reset and see
# non-finite values: every kind of event the trace must carry
LOSSES = [1.0, 0.9, 0.8, 0.7, 0.6, 0.65, 0.7, 0.8, float("nan"), 0.9, 1.0, 1.1, 1.2,
          float("inf"), 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 0.5, 0.4]
CONFIG = dict(factor=0.5, patience=1, smoothing="none", min_lr_ratio=0.25, max_lr_ratio=2.0,
              reset_patience=2, cooldown=1, on_nonfinite="skip")


def rule_trace(trace: Trace, losses=LOSSES, **config) -> list[Event]:
    """Feed ``losses`` through the pure rule, recording into ``trace``; return the events."""
    cfg = GreedyConfig(**{**CONFIG, **config})
    state = init(cfg, [0.1, 0.01])
    events = []
    for i, loss in enumerate(losses):
        decision = update(cfg, state, loss)
        trace.log(grad_norm=1.0 + i, source="a" if i < 10 else "b")
        trace.record(state.step, loss, decision.smoothed, decision.lrs, decision.events)
        events += decision.events
    return events


def assert_same(a: Trace, b: Trace) -> None:
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.losses, b.losses)  # NaN == NaN for this assert
    np.testing.assert_array_equal(a.smoothed, b.smoothed)
    for x, y in zip(a.lrs, b.lrs, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.codes, b.codes)
    assert a.signal_names == b.signal_names
    for name in a.signal_names:
        x, y = a.signal(name), b.signal(name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y


def same_events(a: list[Event], b: list[Event]) -> bool:
    # repr, because a non-finite loss makes two equal events compare unequal (nan != nan)
    return [repr(e.to_dict()) for e in a] == [repr(e.to_dict()) for e in b]


def test_record_keeps_columns_events_and_codes():
    trace = Trace(2)
    events = rule_trace(trace)
    kinds = {e.kind for e in events}
    assert {"increase", "decrease", "clipped", "hold", "reset", "nonfinite"} <= kinds
    assert len(trace) == len(LOSSES)
    assert trace.steps.tolist() == list(range(1, len(LOSSES) + 1))
    np.testing.assert_array_equal(trace.losses, np.array(LOSSES))
    assert same_events(trace.events, events)
    for event in events:  # the code column is the OR of each step's event kinds
        assert trace.codes[event.step - 1] & EVENT_BITS[event.kind]
    assert trace.codes[[e.step - 1 for e in events]].all()
    assert int(np.count_nonzero(trace.codes)) == len({e.step for e in events})
    assert trace.lrs[1][-1] == pytest.approx(trace.lrs[0][-1] / 10)


def test_signals_numeric_and_tags_with_missing_values():
    trace = Trace(1)
    trace.log(grad_norm=2.0, source="s1")
    trace.record(1, 1.0, 1.0, [0.1])
    trace.record(2, 0.9, 0.9, [0.1])  # nothing logged
    trace.log(val=torch.tensor(0.5), source="s2")  # a new signal appears late
    trace.record(3, 0.8, 0.8, [0.1])
    np.testing.assert_array_equal(trace.signal("grad_norm"), [2.0, np.nan, np.nan])
    np.testing.assert_array_equal(trace.signal("val"), [np.nan, np.nan, 0.5])
    assert trace.signal("source") == ["s1", None, "s2"]
    with pytest.raises(TypeError, match="signal 'source' is a tag"):
        trace.log(source=3.0)
    with pytest.raises(TypeError, match="signal 'grad_norm' is numeric"):
        trace.log(grad_norm="high")
    with pytest.raises(TypeError, match="must be a number"):
        trace.log(flag=[1, 2])
    with pytest.raises(ValueError, match="reserved"):
        trace.log(loss=1.0)
    for name in ("source", "other"):  # a known tag and a new one
        with pytest.raises(ValueError, match=f"signal '{name}': an empty tag is refused"):
            trace.log(**{name: ""})  # a CSV file read it back as not logged
    with pytest.raises(KeyError, match="no signal 'nope'"):
        trace.signal("nope")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_groups": 0}, "num_groups must be an int >= 1 or None, got 0"),
        ({"flush_every": -1}, "flush_every must be an int >= 0 or None, got -1"),
        ({"max_rows": 0}, "max_rows must be an int >= 1 or None, got 0"),
        ({"sinks": ["trace.txt"]}, "must end in .jsonl or .csv, got 'trace.txt'"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Trace(**kwargs)


def test_a_bad_value_leaves_the_columns_aligned():
    trace = Trace(2)
    trace.record(1, 1.0, None, [0.1, 0.2])
    with pytest.raises(TypeError):
        trace.record(2, 0.5, None, [0.1, "high"])
    with pytest.raises(TypeError):
        trace.record(2, "low", None, [0.1, 0.2])
    trace.record(2, np.float32(0.5), 0.5, (np.float64(0.1), 1))  # NumPy scalars, ints: fine
    assert trace.steps.tolist() == [1, 2] and trace.losses.tolist() == [1.0, 0.5]
    assert [c.tolist() for c in trace.lrs] == [[0.1, 0.1], [0.2, 1.0]]
    assert trace.codes.tolist() == [0, 0]


def test_a_signal_tensor_of_several_values_is_refused_when_logged():
    trace = Trace(1)
    trace.log(a=1.0, z=1.0)
    trace.record(1, 1.0, 1.0, [0.1])
    with pytest.raises(TypeError, match=r"signal 'a' must be .* got a tensor of shape \(3,\)"):
        trace.log(a=torch.ones(3), z=9.0)  # before: the next record raised, one row short
    trace.log(a=torch.ones(1), z=torch.tensor(2.0))  # one element: read as a number
    trace.record(2, 0.9, 0.9, [0.1])
    assert trace.signal("a").tolist() == [1.0, 1.0] and trace.signal("z").tolist() == [1.0, 2.0]


def test_a_signal_that_cannot_be_read_leaves_no_row():
    trace = Trace(1)
    trace.log(a=torch.empty((), device="meta"))  # a tensor without a value to read
    with pytest.raises(RuntimeError, match=r"(?i)meta tensors"):  # "Meta" on torch 2.3
        trace.record(1, 1.0, 1.0, [0.1])
    trace.log(a=2.0)
    trace.record(2, 0.9, 0.9, [0.1])
    assert trace.steps.tolist() == [2] and trace.signal("a").tolist() == [2.0]


def test_wrong_number_of_lrs_is_refused():
    trace = Trace(2)
    with pytest.raises(ValueError, match="expected 2 learning rates, got 1"):
        trace.record(1, 1.0, 1.0, [0.1])


def test_max_rows_bounds_memory_and_the_sinks_see_everything():
    seen = []
    trace = Trace(1, sinks=[lambda row: seen.append(row["step"])], flush_every=100,
                  max_rows=1000)
    for step in range(1, 10_001):
        events = [Event(step, "decrease", "r", 1.0, 1.0, 1.0, (0.1,), (0.05,))] \
            if step % 1000 == 0 else ()
        trace.record(step, 1.0 / step, None, [0.1], events)
    trace.flush()
    assert 1000 <= len(trace) <= 1250
    assert trace.dropped == 10_000 - len(trace)
    assert trace.steps[-1] == 10_000 and trace.steps[0] == trace.dropped + 1
    assert seen == list(range(1, 10_001))  # every row reached the sink, once, in order
    assert [e.step for e in trace.events] == list(range(1000, 10_001, 1000))  # all events


def test_a_million_steps_cost_columns_not_objects():
    """The memory of 20k rows, measured, extrapolates to under 40 MB per million."""
    trace = Trace(1, flush_every=0)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for step in range(20_000):
        trace.record(step, 0.5, 0.5, (0.1,))
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # 4 float64/int64 columns and a byte: 33 bytes a row; array growth adds up to ~12%
    assert used / 20_000 < 40, f"{used / 20_000:.1f} bytes per step"


def test_jsonl_round_trip_is_exact(tmp_path):
    trace = Trace(2, meta={"note": "x"})
    rule_trace(trace)
    path = trace.save(tmp_path / "run.jsonl")
    loaded = load_trace(path)
    assert_same(trace, loaded)
    assert same_events(loaded.events, trace.events)  # reasons, references, LRs: all
    assert loaded.meta == {"note": "x"}
    # the file is standard JSON line by line (no NaN/Infinity tokens)
    for line in path.read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-standard {c}"))


def test_csv_round_trip_keeps_rows_signals_and_event_reasons(tmp_path):
    trace = Trace(2)
    rule_trace(trace)
    loaded = load_trace(trace.save(tmp_path / "run.csv"))
    assert_same(trace, loaded)
    assert [(e.step, e.kind, e.reason) for e in loaded.events] == \
        [(e.step, e.kind, e.reason) for e in trace.events]
    assert all(e.lrs_after == tuple(loaded.lrs[0][e.step - 1:e.step].tolist()
                                    + loaded.lrs[1][e.step - 1:e.step].tolist())
               for e in loaded.events)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_save_in_chunks_and_an_empty_trace(tmp_path, monkeypatch, suffix):
    import greedylr.trace.files

    monkeypatch.setattr(greedylr.trace.files, "_SAVE_CHUNK", 7)  # 24 rows: four chunks
    trace = Trace(2)
    rule_trace(trace)
    loaded = load_trace(trace.save(tmp_path / f"chunks{suffix}"))
    assert_same(trace, loaded)
    assert [(e.step, e.reason) for e in loaded.events] == \
        [(e.step, e.reason) for e in trace.events]
    empty = load_trace(Trace().save(tmp_path / f"empty{suffix}"))
    assert len(empty) == 0 and empty.events == []


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_streaming_file_sinks_equal_the_trace(tmp_path, suffix):
    path = tmp_path / f"stream{suffix}"
    trace = Trace(2, sinks=[path], flush_every=5)
    rule_trace(trace)
    assert path.exists() and len(path.read_text().splitlines()) > 3  # written while running
    trace.close()
    loaded = load_trace(path)
    assert_same(trace, loaded)
    assert [(e.step, e.kind) for e in loaded.events] == [(e.step, e.kind) for e in trace.events]


def test_csv_sink_warns_about_a_late_signal(tmp_path, caplog):
    sink = CSVSink(tmp_path / "late.csv")
    trace = Trace(1, sinks=[sink], flush_every=1)
    trace.record(1, 1.0, 1.0, [0.1])
    trace.log(val=0.3)
    with caplog.at_level(logging.WARNING, logger="greedylr"):
        trace.record(2, 1.0, 1.0, [0.1])
    assert "signal 'val' appeared after the header" in caplog.text
    trace.close()
    assert load_trace(sink.path).signal_names == []


def test_not_a_trace_is_refused(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"hello": 1}\n')
    with pytest.raises(ValueError, match="is not a greedylr trace"):
        load_trace(path)


def test_tensorboard_sink_reads_back_with_tensorboards_reader(tmp_path):
    pytest.importorskip("tensorboard", reason="the TensorBoard sink needs greedylr[tensorboard]")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path))
    trace = Trace(2, sinks=[writer], flush_every=7)
    events = rule_trace(trace)
    trace.close()
    writer.close()
    reader = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "tensors": 0})
    reader.Reload()
    scalars = reader.Tags()["scalars"]
    loss = reader.Scalars("greedylr/loss")
    assert [s.step for s in loss] == trace.steps.tolist()
    finite = np.isfinite(trace.losses)
    got = np.array([s.value for s in loss])
    np.testing.assert_allclose(got[finite], trace.losses[finite], rtol=1e-6)  # float32
    lr1 = reader.Scalars("greedylr/lr/group1")
    np.testing.assert_allclose([s.value for s in lr1], trace.lrs[1], rtol=1e-6)
    for kind in {e.kind for e in events}:
        assert f"greedylr/events/{kind}" in scalars
        assert [s.step for s in reader.Scalars(f"greedylr/events/{kind}")] == \
            [e.step for e in events if e.kind == kind]
    grad = reader.Scalars("greedylr/signals/grad_norm")
    assert [s.value for s in grad] == pytest.approx(trace.signal("grad_norm").tolist())
    texts = reader.Tensors("greedylr/events/text_summary")
    assert len(texts) == len(events)
    assert texts[0].tensor_proto.string_val[0].decode() == events[0].reason


def test_tensorboard_sink_from_a_log_dir_and_every(tmp_path):
    pytest.importorskip("tensorboard", reason="the TensorBoard sink needs greedylr[tensorboard]")
    sink = TensorBoardSink(tmp_path / "tb", every=5)
    trace = Trace(2, sinks=[sink])
    rule_trace(trace)
    trace.close()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    reader = EventAccumulator(str(tmp_path / "tb"))
    reader.Reload()
    assert [s.step for s in reader.Scalars("greedylr/loss")] == [5, 10, 15, 20]
    with pytest.raises(ValueError, match="every must be an int >= 1, got 0"):
        TensorBoardSink(tmp_path, every=0)


def test_logging_sink_logs_every_reason(caplog):
    trace = Trace(2, sinks=[logging.getLogger("pulse.test")], flush_every=3)
    with caplog.at_level(logging.INFO, logger="pulse.test"):
        events = rule_trace(trace)
        trace.close()
    records = [r for r in caplog.records if r.name == "pulse.test"]
    assert [r.getMessage() for r in records] == [e.reason for e in events]
    assert records[0].greedylr_event["kind"] == events[0].kind


def test_logging_sink_rows_at_debug(caplog):
    trace = Trace(2, sinks=[LoggingSink("pulse.rows", every=10)])
    with caplog.at_level(logging.DEBUG, logger="pulse.rows"):
        rule_trace(trace)
        trace.close()
    rows = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert [m.split(":")[0] for m in rows] == ["step 10", "step 20"]


def test_callable_sink_gets_plain_rows():
    rows = []
    trace = Trace(2, sinks=[rows.append], flush_every=4)
    events = rule_trace(trace)
    trace.close()
    assert [r["step"] for r in rows] == trace.steps.tolist()
    assert rows[0]["source"] == "a" and rows[-1]["source"] == "b"
    assert rows[0]["grad_norm"] == 1.0 and rows[0]["lrs"] == [trace.lrs[0][0], trace.lrs[1][0]]
    assert sum(len(r["events"]) for r in rows) == len(events)
    json.dumps(rows)  # plain values only


def test_a_sink_object_and_a_bad_sink():
    class Collect:
        def __init__(self):
            self.chunks: list[Rows] = []
            self.closed = False

        def write(self, rows):
            self.chunks.append(rows)

        def close(self):
            self.closed = True

    sink = Collect()
    trace = Trace(2, sinks=[sink], flush_every=10)
    rule_trace(trace)
    trace.close()
    assert [len(c) for c in sink.chunks] == [10, 10, 4] and sink.closed
    assert sum(len(c.events) for c in sink.chunks) == len(trace.events)
    with pytest.raises(TypeError, match="a sink must be"):
        trace.add_sink(42)


# -- with the scheduler ---------------------------------------------------------------


def test_scheduler_fills_meta_and_streams(tmp_path):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD([{"params": [model.weight]}, {"params": [model.bias], "lr": 0.05}],
                          lr=0.1)
    trace = Trace(sinks=[tmp_path / "run.jsonl"], flush_every=4)
    sched = GreedyLR(opt, trace=trace, patience=1, smoothing="none")
    assert sched.trace is trace
    for loss in [1.0, 0.8, 0.9, 1.0, 1.1, 0.5, 0.4, 0.3, 0.2]:
        opt.step()
        trace.log(source="x")
        sched.step(loss)
    trace.close()
    assert trace.num_groups == 2
    assert trace.meta["base_lrs"] == [0.1, 0.05]
    assert trace.meta["min_lrs"] == pytest.approx([0.01, 0.005])
    assert trace.meta["config"]["patience"] == 1
    loaded = load_trace(tmp_path / "run.jsonl")
    assert loaded.meta["config"] == sched.config.to_dict()
    assert_same(trace, loaded)
    assert same_events(loaded.events, sched.events)


def test_scheduler_trace_argument():
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    assert GreedyLR(opt, trace=False).trace is None
    assert isinstance(GreedyLR(opt).trace, Trace)
    with pytest.raises(TypeError, match=r"trace must be a bool or a greedylr\.Trace, got .x."):
        GreedyLR(opt, trace="x")
    with pytest.raises(ValueError, match="trace has 3 LR columns, the optimizer 1 groups"):
        GreedyLR(opt, trace=Trace(3))


def test_public_names():
    from greedylr import diagnosis
    from greedylr import trace as package

    assert greedylr.load_trace is load_trace
    # the module is not named like the function: importing it leaves greedylr.diagnose be
    assert greedylr.diagnose is diagnosis.diagnose is package.diagnose
    assert package.Diagnosis is diagnosis.Diagnosis
    assert set(package.__all__) <= set(dir(package)) | {"Diagnosis", "Episode", "diagnose"}


# -- device mode ------------------------------------------------------------------------


def test_extend_appends_a_chunk_and_rows_slices_one():
    source = Trace(2)
    rule_trace(source)
    copy = Trace()
    copy.extend(source.rows(0, 10))
    copy.extend(source.rows(10))
    assert_same(source, copy)
    assert same_events(copy.events, source.events)
    part = source.rows(3, 7)
    assert part.step.tolist() == [4, 5, 6, 7]
    assert {e.step for e in part.events} <= {4, 5, 6, 7}


def test_extend_adds_groups_and_signals_and_refuses_fewer_groups():
    trace = Trace(1)
    trace.log(tag="a")
    trace.record(1, 1.0, 1.0, [0.1])
    wider = Trace(2)
    wider.log(norm=2.0)
    wider.record(2, 0.5, 0.5, [0.2, 0.02])
    trace.extend(wider.rows())
    assert trace.num_groups == 2 and math.isnan(trace.lrs[1][0]) and trace.lrs[1][1] == 0.02
    assert trace.signal("tag") == ["a", None]
    np.testing.assert_array_equal(trace.signal("norm"), [math.nan, 2.0])
    with pytest.raises(ValueError, match="rows have 1 learning rates, the trace 2"):
        trace.extend(_one_row(1))


def _one_row(groups: int) -> Rows:
    trace = Trace(groups)
    trace.record(9, 1.0, 1.0, [0.1] * groups)
    return trace.rows()


def test_a_trace_pickled_before_the_package_split_still_loads():
    import pickle

    trace = Trace(1)
    trace.log(source="a", norm=1.0)
    trace.record(1, 1.0, 1.0, [0.1])
    text = pickle.dumps(trace, protocol=2)  # a class is two lines: its module, its name
    # the class paths of a trace pickled when greedylr.trace was one module
    for module in (b"greedylr.trace.recorder", b"greedylr.trace.rows"):
        assert module + b"\n" in text
        text = text.replace(module + b"\n", b"greedylr.trace\n")
    loaded = pickle.loads(text)
    assert_same(trace, loaded)


def test_device_rows_are_buffered_copied_and_decoded():
    trace = Trace(2, flush_every=0)
    lrs = torch.tensor([0.1, 0.01], dtype=torch.float64)
    smoothed = torch.tensor(1.0, dtype=torch.float64)
    code = torch.tensor(0)
    trace.record(1, torch.tensor(1.0, dtype=torch.float64), smoothed, lrs, code=code)
    before = lrs.clone()
    lrs.mul_(0.5)  # the scheduler updates its buffers in place: the row must not change
    smoothed.fill_(0.7)
    code.fill_(EVENT_BITS["decrease"])
    trace.log(grad_norm=torch.tensor(3.0), source="s")
    trace.record(2, torch.tensor(0.9, dtype=torch.float64), smoothed, lrs, code=code)
    assert len(trace) == 2 and len(trace._steps) == 0  # nothing materialised yet
    assert trace.lrs[0].tolist() == [before[0].item(), 0.05]
    assert trace.smoothed.tolist() == [1.0, 0.7]
    assert trace.signal("grad_norm").tolist()[1] == 3.0 and trace.signal("source")[1] == "s"
    [event] = trace.events
    assert (event.step, event.kind) == (2, "decrease")
    assert event.lrs_before == (0.1, 0.01) and event.lrs_after == (0.05, 0.005)
    assert trace.codes.tolist() == [0, EVENT_BITS["decrease"]]


def test_device_blocked_change_becomes_one_clipped_event():
    trace = Trace(1, flush_every=0)
    code = torch.tensor(EVENT_BITS["decrease"] | EVENT_BITS["clipped"])
    trace.record(1, torch.tensor(1.0), None, torch.tensor([0.1]), code=code)
    assert [e.kind for e in trace.events] == ["clipped"]
    assert trace.codes.tolist() == [EVENT_BITS["clipped"]]  # the same meaning as host rows
    assert math.isnan(trace.smoothed[0])


def test_device_flush_every_and_a_registered_decoder_with_extra():
    calls = []

    def decoder(rows):
        calls.append(len(rows))
        return [Event(int(s), "hold", f"hold, extra {rows.extra[i].tolist()}", 0.0, None,
                      None, (), ()) for i, s in enumerate(rows.step) if rows.code[i]]

    trace = Trace(1, flush_every=3)
    trace.set_decoder(decoder)
    for step in range(1, 8):
        trace.record(step, torch.tensor(1.0), torch.tensor(1.0), torch.tensor([0.1]),
                     code=torch.tensor(EVENT_BITS["hold"] if step % 2 else 0),
                     extra=torch.tensor([step, 2.0 * step]))
    assert len(trace._steps) == 6 and calls == [3, 3]  # two chunks moved by flush_every
    events = trace.events  # reading moves the last row
    assert calls == [3, 3, 1]
    assert [e.step for e in events] == [1, 3, 5, 7]
    assert events[-1].reason == "hold, extra [7.0, 14.0]"
    with pytest.raises(TypeError, match="decoder must be callable"):
        trace.set_decoder(None)


def test_device_rows_match_the_host_rule_with_the_tensor_rule_decoder():
    """The real device path: tensor_rule's codes, decoded, give the host rule's events."""
    from greedylr import tensor_rule

    cfg = GreedyConfig(**CONFIG)
    host = Trace(2)
    rule_trace(host)
    device = Trace(2, flush_every=5)
    state = tensor_rule.init(cfg, torch.tensor([0.1, 0.01], dtype=torch.float64))
    bounds = (state.min_lrs.tolist(), state.max_lrs.tolist())

    def decoder(rows):
        out = []
        for i in np.flatnonzero(rows.code):
            extra = rows.extra[i]
            out += tensor_rule.decode_events(
                cfg, step=int(rows.step[i]), code=int(rows.code[i]),
                loss=float(rows.loss[i]), smoothed=float(rows.smoothed[i]),
                reference=float(extra[0]), lrs_before=extra[1:3].tolist(),
                lrs_changed=extra[3:5].tolist(), lrs_after=rows.lrs[i].tolist(),
                min_lrs=bounds[0], max_lrs=bounds[1])
        return out

    device.set_decoder(decoder)
    for i, loss in enumerate(LOSSES):
        state, d = tensor_rule.update(cfg, state, torch.tensor(loss, dtype=torch.float64))
        device.log(grad_norm=torch.tensor(1.0 + i), source="a" if i < 10 else "b")
        device.record(i + 1, torch.tensor(loss, dtype=torch.float64), d.smoothed, d.lrs,
                      code=d.code, extra=torch.cat([d.reference.reshape(1), d.lrs_before,
                                                    d.lrs_changed]))
    assert_same(host, device)
    assert same_events(device.events, host.events)


# -- nothing lost: crashes, truncated files, memory (issue 14) ------------------------------

_CRASHING_RUN = """
import sys, torch
from greedylr import GreedyLR, Trace
device = sys.argv[2] == "device"
lr = torch.tensor(0.1) if device else 0.1
opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
sched = GreedyLR(opt, trace=Trace(sinks=[sys.argv[1]]), device_mode=device)
for step in range(1, 1501):
    opt.step()
    sched.step(torch.tensor(1.0 / step) if device else 1.0 / step)
raise RuntimeError("the training loop crashed at step 1500")
"""


@pytest.mark.parametrize("mode", ["float", "device"])
@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_crashed_run_keeps_the_end_of_its_streamed_trace(tmp_path, suffix, mode):
    import subprocess
    import sys

    path = tmp_path / f"crash{suffix}"
    run = subprocess.run([sys.executable, "-c", _CRASHING_RUN, str(path), mode],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "crashed at step 1500" in run.stderr
    loaded = load_trace(path)
    assert len(loaded) == 1500 and loaded.steps[-1] == 1500  # 1000 before the fix


def test_file_sinks_get_their_rows_every_few_seconds(tmp_path):
    import time

    assert Trace().flush_interval <= 5  # the default loses at most a few seconds of steps
    path = tmp_path / "timed.jsonl"
    trace = Trace(1, sinks=[path], flush_every=1000, flush_interval=0.05)
    for step in range(1, 6):
        trace.record(step, 1.0, 1.0, [0.1])
    time.sleep(0.1)
    trace.record(6, 1.0, 1.0, [0.1])
    assert len(load_trace(path)) == 6  # without waiting for 1000 steps


def test_an_exit_flush_does_not_keep_the_trace_alive(tmp_path):
    import gc
    import weakref

    trace = Trace(1, sinks=[tmp_path / "x.jsonl"])
    ref = weakref.ref(trace)
    del trace
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_load_trace_keeps_the_rows_before_a_cut_last_line(tmp_path, suffix):
    trace = Trace(2)
    rule_trace(trace)
    path = trace.save(tmp_path / f"cut{suffix}")
    text = path.read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    path.write_text(text[:len(text.rstrip("\n")) - len(last) // 2])  # the last line half gone
    lines = text.count("\n")
    with pytest.warns(UserWarning, match=rf"cut{suffix}: line {lines} is cut short") as info:
        loaded = load_trace(path)
    assert "rows before it are kept" in str(info[0].message)
    assert loaded.steps.tolist() == trace.steps.tolist()[:len(loaded)]
    assert len(loaded) >= len(trace) - 1


@pytest.mark.parametrize(("suffix", "keep", "where"), [
    (".csv", lambda lines: lines[0], "before its column header"),  # a StopIteration before
    (".csv", lambda lines: lines[0] + lines[1][:14], "in its column header"),
    (".csv", lambda lines: lines[0][:30], "in its header line"),
    (".jsonl", lambda lines: lines[0][:40], "in its header line"),  # "not a greedylr trace"
])
def test_a_file_cut_in_its_header_says_so(tmp_path, suffix, keep, where):
    trace = Trace(2)
    rule_trace(trace)
    path = trace.save(tmp_path / f"cut{suffix}")
    path.write_text(keep(path.read_text().splitlines(keepends=True)))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: a greedylr trace cut "
                       rf"short {where}$"):
        load_trace(path)


@pytest.mark.parametrize(("suffix", "damage"), [
    (".jsonl", lambda lines: [*lines[:3], '{"step": 3, "loss": 0.8, "smo', *lines[4:]]),
    (".csv", lambda lines: [*lines[:4], "3,0.8", *lines[5:]]),
])
def test_a_bad_line_inside_the_file_names_the_file_and_the_line(tmp_path, suffix, damage):
    trace = Trace(2)
    rule_trace(trace)
    path = trace.save(tmp_path / f"bad{suffix}")
    path.write_text("\n".join(damage(path.read_text().splitlines())) + "\n")
    with pytest.raises(ValueError, match=rf"bad{suffix}, line (4|5): "):
        load_trace(path)


def test_every_read_error_names_the_file(tmp_path):
    path = tmp_path / "binary.jsonl"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match=r"binary\.jsonl"):
        load_trace(path)
    header = tmp_path / "v9.jsonl"
    header.write_text(json.dumps({"format": "greedylr.trace", "version": 9}) + "\n")
    with pytest.raises(ValueError, match=r"v9\.jsonl: unsupported trace version 9"):
        load_trace(header)


def test_the_in_memory_trace_is_bounded_by_default_and_keeps_every_event(tmp_path):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    assert GreedyLR(opt).trace.max_rows == 1_000_000
    assert Trace().max_rows == 1_000_000
    assert load_trace(Trace(1).save(tmp_path / "t.jsonl")).max_rows is None


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_an_added_group_streams_and_loads(tmp_path, suffix, caplog):
    path = tmp_path / f"grow{suffix}"
    trace = Trace(1, sinks=[path], flush_every=1)
    trace.record(1, 1.0, 1.0, [0.1])
    trace.add_group()
    trace.record(2, 0.9, 0.9, [0.1, 0.02])
    trace.close()
    assert trace.num_groups == 2 and np.isnan(trace.lrs[1][0])
    loaded = load_trace(path)
    if suffix == ".jsonl":
        assert loaded.num_groups == 2 and loaded.lrs[1][1] == 0.02
        assert np.isnan(loaded.lrs[1][0])
    else:  # a streaming CSV keeps the columns of its header, and says so
        assert loaded.num_groups == 1 and "groups were added after the header" in caplog.text
    saved = load_trace(trace.save(tmp_path / f"saved{suffix}"))
    assert saved.num_groups == 2 and saved.lrs[1][1] == 0.02


_FORKING_RUN = """
import os, sys
from greedylr import Trace
trace = Trace(1, sinks=[sys.argv[1]], flush_every=1000)
trace.record(1, 1.0, 1.0, [0.1])
trace.flush()  # the file is open when the process forks
trace.record(2, 1.0, 1.0, [0.1])
trace.record(3, 1.0, 1.0, [0.1])
if os.fork() == 0:
    sys.exit(0)  # the child runs the exit handlers
os.wait()
trace.record(4, 1.0, 1.0, [0.1])
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_write_its_parents_rows_at_exit(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "fork.jsonl"
    subprocess.run([sys.executable, "-c", _FORKING_RUN, str(path)], check=True, timeout=60)
    assert load_trace(path).steps.tolist() == [1, 2, 3, 4]


def test_a_group_added_after_the_header_is_read_back_with_its_lrs_before(tmp_path):
    # the streamed header keeps the base LRs of the two groups of its first write; the
    # third group's LR before the first row is that row's own (NaN: not added yet)
    trace = Trace(2, sinks=[tmp_path / "grow.jsonl"], flush_every=1,
                  meta={"base_lrs": [0.1, 0.2]})
    first = Event(1, "decrease", "cut", 1.0, 1.0, None, (0.1, 0.2), (0.05, 0.2))
    trace.record(1, 1.0, 1.0, [0.05, 0.2], [first])
    trace.add_group()
    trace.meta["base_lrs"] = [0.1, 0.2, 0.3]  # as GreedyLR updates it
    trace.record(2, 0.9, 0.9, [0.05, 0.2, 0.3])
    trace.close()
    loaded = load_trace(tmp_path / "grow.jsonl")
    assert loaded.meta["base_lrs"] == [0.1, 0.2]
    np.testing.assert_array_equal(loaded.rows().lrs_before[0], [0.1, 0.2, math.nan])
    greedylr.diagnose(loaded)  # a broadcast error before
    again = load_trace(loaded.save(tmp_path / "grow.csv"))
    np.testing.assert_array_equal(again.rows().lrs_before[0], [0.1, 0.2, math.nan])
    np.testing.assert_array_equal(again.events[0].lrs_before, [0.1, 0.2, math.nan])

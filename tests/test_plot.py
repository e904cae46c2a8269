"""The pulse figure: written, non-trivial, and drawn from what the trace holds."""

from __future__ import annotations

import numpy as np
import pytest

from greedylr import Trace
from greedylr.cli import main
from greedylr.plot import plot_trace
from greedylr.rule import GreedyConfig, init, update
from recorded_runs import scheduler_run


def pulse_trace(steps=400, spike=(250, 265), groups=2):
    """A decaying noisy loss through the rule, with a spike, a NaN and a source change."""
    rng = np.random.default_rng(0)
    loss = (2.0 / (1 + 0.02 * np.arange(steps)) + 0.05) * rng.lognormal(0, 0.15, steps)
    loss[spike[0]:spike[1]] += 3.0
    loss[100] = np.nan
    cfg = GreedyConfig(patience=5, window=20)
    state = init(cfg, [0.01, 0.001][:groups])
    trace = Trace(groups, meta={"min_lrs": state.min_lrs})
    for i, value in enumerate(loss):
        decision = update(cfg, state, float(value))
        trace.log(source="clean" if not spike[0] <= i < spike[1] else "bad", grad_norm=1.0)
        trace.record(state.step, float(value), decision.smoothed, decision.lrs, decision.events)
    return trace


def read_png(path):
    from matplotlib.image import imread

    return imread(path)


def test_png_is_written_and_not_trivial(tmp_path):
    path = plot_trace(pulse_trace(), tmp_path / "out" / "pulse.png", title="t")
    assert path.exists() and path.stat().st_size > 20_000
    image = read_png(path)
    assert image.shape[0] > 400 and image.shape[1] > 800
    # lines, markers and shaded episodes: many colours, not a blank canvas
    colours = np.unique((image[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200
    assert image[..., :3].std() > 0.05


def test_figure_has_two_aligned_panels_with_events_and_episodes():
    trace = pulse_trace()
    figure = plot_trace(trace)
    top, bottom = figure.axes
    assert top.get_shared_x_axes().joined(top, bottom)
    assert bottom.get_yscale() == "log"
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert "raw loss" in labels and "smoothed loss" in labels
    assert "episode: loss spike" in labels and "non-finite loss" in labels
    assert "source changes" in labels
    lr_labels = [t.get_text() for t in bottom.get_legend().get_texts()]
    assert {"lr group 0", "lr group 1", "increase", "decrease"} <= set(lr_labels)
    assert "1 loss spike" in top.get_title(loc="left")
    assert top.get_xlim() == (1.0, 400.0)


def test_no_episodes_and_a_named_signal():
    figure = plot_trace(pulse_trace(), diagnosis=False, signal="source")
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert not any(label.startswith("episode") for label in labels)
    with pytest.raises(ValueError, match="no tag signal 'nope'"):
        plot_trace(pulse_trace(), signal="nope")


def test_long_trace_is_drawn_as_an_envelope(tmp_path):
    trace = Trace(1)
    rng = np.random.default_rng(1)
    loss = 1 + rng.random(200_000)
    loss[123_456] = 50.0  # one spike must survive the decimation
    for step, value in enumerate(loss, start=1):
        trace.record(step, float(value), 1.5, (0.1,))
    figure = plot_trace(trace, diagnosis=False, max_points=2000)
    top = figure.axes[0]
    [band] = top.collections  # fill_between, not 200k points
    assert band.get_paths()[0].vertices.shape[0] < 5000
    assert top.get_ylim()[1] >= 50.0


def test_empty_trace_and_bad_arguments():
    with pytest.raises(ValueError, match="the trace is empty"):
        plot_trace(Trace(1))
    with pytest.raises(ValueError, match="max_points must be an int >= 10, got 3"):
        plot_trace(pulse_trace(), max_points=3)
    with pytest.raises(TypeError, match="diagnosis must be a Diagnosis or a bool"):
        plot_trace(pulse_trace(), diagnosis="yes")


def test_the_path_written_is_the_one_returned(tmp_path, monkeypatch):
    trace = pulse_trace(steps=120, spike=(80, 90), groups=1)
    assert plot_trace(trace, tmp_path / "noext") == tmp_path / "noext.png"  # said "noext"
    (tmp_path / "figures").mkdir()
    assert plot_trace(trace, tmp_path / "figures") == tmp_path / "figures" / "pulse.png"
    assert plot_trace(trace, f"{tmp_path}/new/") == tmp_path / "new" / "pulse.png"
    svg = plot_trace(trace, tmp_path / "p.SVG")
    assert svg == tmp_path / "p.SVG" and svg.read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "noext.png", "p.SVG", "pulse.png", "pulse.png"]
    monkeypatch.setattr("greedylr.plot.diagnose", None)  # refused before anything is drawn
    with pytest.raises(ValueError, match=r"pulse\.xyz: matplotlib writes no \.xyz file; "
                       r"it writes .*\.png"):
        plot_trace(trace, tmp_path / "pulse.xyz")


def test_cli_plot(tmp_path):
    saved = pulse_trace(groups=1).save(tmp_path / "t.csv")
    out = tmp_path / "p.png"
    assert main(["plot", str(saved), "-o", str(out), "--title", "x"]) == 0
    assert out.stat().st_size > 20_000


def test_a_group_added_mid_run_keeps_the_lr_axis_logarithmic(tmp_path):
    """The added group's LR is NaN before it existed: the axis fell back to linear."""
    losses = [1.0 + 0.001 * i for i in range(60)] + [0.5 - 0.001 * i for i in range(60)]
    trace = scheduler_run(losses, add_group_at=60, factor=0.5, patience=3, min_lr_ratio=0.01)
    loaded = trace.load(trace.save(tmp_path / "added.jsonl"))
    figure = plot_trace(loaded)
    top, bottom = figure.axes
    assert bottom.get_yscale() == "log"
    lines = {line.get_label(): line for line in bottom.get_lines()}
    assert np.isnan(lines["lr group 1"].get_ydata()[0])  # drawn from where it was added
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert "episode: contraction" in labels and "episode: floor" in labels


def test_a_group_at_lr_zero_is_drawn_at_zero_below_a_log_scale():
    trace = Trace(2, meta={"base_lrs": [0.1, 0.0]})
    for step in range(1, 101):
        trace.record(step, 1.0 / step, 1.0 / step, [0.1 * 0.99 ** step, 0.0])
    bottom = plot_trace(trace, diagnosis=False).axes[1]
    assert bottom.get_yscale() == "symlog" and bottom.get_ylim()[0] == 0.0


def test_mode_max_labels_the_metric():
    rng = np.random.default_rng(0)
    metric = 0.5 + 0.01 * rng.standard_normal(300)
    metric[200:220] -= 0.3  # a collapse of the maximised metric
    figure = plot_trace(scheduler_run(metric, mode="max"))
    top = figure.axes[0]
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert {"raw maximised metric", "smoothed maximised metric",
            "episode: loss spike"} <= set(labels)
    assert top.get_ylabel() == "maximised metric (higher is better)"
    assert "a drop of the maximised metric" in top.get_title(loc="left")

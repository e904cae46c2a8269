"""The pulse figure: loss above, learning rate below, events and stress episodes marked.

matplotlib is imported only when a figure is drawn, and through its object API with the
Agg canvas: drawing never touches pyplot's global state or the user's backend.

Examples:
    >>> from greedylr import Trace
    >>> from greedylr.plot import plot_trace
    >>> trace = Trace(1)
    >>> for step in range(1, 101):
    ...     trace.record(step, 1.0 / step, 1.0 / step, [0.1])
    >>> figure = plot_trace(trace)          # a matplotlib Figure; pass a path to save a PNG
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from greedylr._extras import requires_extra
from greedylr.events import tag_changes
from greedylr.trace import EVENT_BITS, Diagnosis, Rows, Trace, diagnose, load_trace

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["new_figure", "plot_trace"]

# event kind -> marker, colour, label; kinds not listed are not drawn
_MARKERS = {
    "increase": ("^", "#2a9d3f", "increase"),
    "decrease": ("v", "#d1495b", "decrease"),
    "clipped": ("_", "#6c757d", "blocked at a bound"),
    "reset": ("X", "#7b2cbf", "reset"),
    "warmup_end": ("|", "#1d3557", "warmup end"),
}
_EPISODE_COLOURS = {
    "loss_spike": "#e63946",
    "contraction": "#ffb703",
    "floor": "#8d99ae",
    "reset": "#7b2cbf",
    "nonfinite": "#6a040f",
}


def _envelope(x: np.ndarray, y: np.ndarray, points: int) -> tuple[np.ndarray, ...]:
    """Bucket min and max of ``y``: a million steps drawn as ``points`` buckets keep
    every spike visible, which a plain subsample would not."""
    n = len(x)
    size = math.ceil(n / points)
    usable = (n // size) * size
    xs = x[:usable].reshape(-1, size)[:, 0]
    with np.errstate(all="ignore"):
        blocks = y[:usable].reshape(-1, size)
        lows, highs = np.nanmin(blocks, axis=1), np.nanmax(blocks, axis=1)
    if usable < n:
        xs = np.append(xs, x[usable])
        lows = np.append(lows, np.nanmin(y[usable:]))
        highs = np.append(highs, np.nanmax(y[usable:]))
    return xs, lows, highs


def _subsample(x: np.ndarray, y: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= points:
        return x, y
    index = np.unique(np.append(np.linspace(0, len(x) - 1, points).astype(np.int64),
                                len(x) - 1))
    return x[index], y[index]


def _tag_changes(steps: np.ndarray, tags: list[str | None]) -> list[tuple[int, str]]:
    return [(int(steps[i]), new) for i, _, new in tag_changes(tags)]


def _shade(ax: Axes, diagnosis: Diagnosis, label: bool) -> None:
    seen = set()
    for episode in diagnosis:
        colour = _EPISODE_COLOURS.get(episode.kind, "#adb5bd")
        name = episode.kind.replace("_", " ")
        # a one-step episode (a reset) still needs a visible band
        end = episode.end + 1 if episode.end > episode.start else episode.start + 1
        ax.axvspan(episode.start, end, color=colour, alpha=0.15, lw=0,
                   label=f"episode: {name}" if label and name not in seen else None)
        seen.add(name)


def new_figure(*, size: tuple[float, float], dpi: int = 100, what: str = "a figure") -> Figure:
    """A matplotlib ``Figure`` drawn on its own Agg canvas, for files only.

    Never touches pyplot or the global backend, so a notebook's backend is left as it was;
    save it with ``figure.savefig(path)``. ``what`` names the caller in the error raised
    when matplotlib (the ``plot`` extra) is missing.
    """
    with requires_extra("plot", what):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


_FIGURE_NAME = "pulse.png"  # the file written into a folder given as the path


def _figure_path(path: str | os.PathLike[str]) -> Path:
    """The file a figure asked for at ``path`` is written to: ``path``, with ``.png``
    added where it has no suffix, or ``pulse.png`` in it where it is a folder (one that
    exists, or a path that ends in a separator).

    Raises:
        ValueError: for a suffix matplotlib does not write, naming those it does.
    """
    with requires_extra("plot", "greedylr plot"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

    text = os.fspath(path)
    target = Path(text)
    if text.endswith(("/", os.sep)) or target.is_dir():
        target /= _FIGURE_NAME
    elif not target.suffix:
        target = target.with_suffix(".png")
    formats = FigureCanvasAgg.get_supported_filetypes()
    if target.suffix[1:].lower() not in formats:
        raise ValueError(f"{text}: matplotlib writes no {target.suffix} file; it writes "
                         f"{', '.join(f'.{kind}' for kind in sorted(formats))}")
    return target


def _draw_loss(top: Axes, steps: np.ndarray, loss: np.ndarray, rows: Rows,
               max_points: int, name: str) -> None:
    """The raw loss (or its min-max envelope), the smoothed loss, non-finite marks;
    ``name`` is what the rule watched ("loss", or the metric a ``mode="max"`` rule
    maximised)."""
    smoothed = rows.smoothed
    finite = loss[np.isfinite(loss)]
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 20:
        top.set_yscale("log")
    if len(steps) > max_points:
        xs, lows, highs = _envelope(steps, loss, max_points)
        top.fill_between(xs, lows, highs, color="#8ecae6", lw=0, label=f"raw {name} (min-max)")
    else:
        top.plot(steps, loss, color="#8ecae6", lw=0.8, label=f"raw {name}")
    xs, ys = _subsample(steps, smoothed, max_points)
    if np.any(np.isfinite(ys)):
        top.plot(xs, ys, color="#023047", lw=1.6, label=f"smoothed {name}")
    bad = np.flatnonzero(rows.code & EVENT_BITS["nonfinite"])
    if len(bad):
        top.scatter(steps[bad], np.ones(len(bad)), transform=top.get_xaxis_transform(),
                    marker="x", color="#d00000", s=24, clip_on=False, zorder=5,
                    label=f"non-finite {name}")
    top.set_ylabel(name if name == "loss" else f"{name} (higher is better)")
    top.grid(alpha=0.25)


def _draw_lrs(bottom: Axes, steps: np.ndarray, rows: Rows, max_points: int) -> None:
    """Each group's LR as steps, with a marker per event kind on the first group's.

    A group added during the run (NaN before) starts where it was added. The scale is
    logarithmic where every LR is positive, symmetric-logarithmic where some are 0 (a
    run annealed to 0, a frozen group): 0 at the bottom, the rest on a log scale.
    """
    lrs = rows.lrs
    groups = lrs.shape[1]
    for g in range(groups):
        xs, ys = _subsample(steps, lrs[:, g], max_points)
        bottom.plot(xs, ys, lw=1.3, drawstyle="steps-post",
                    label="lr" if groups == 1 else f"lr group {g}")
    level = lrs[:, 0]
    for kind, (marker, colour, label) in _MARKERS.items():
        where = np.flatnonzero(rows.code & EVENT_BITS[kind])
        if len(where):
            bottom.scatter(steps[where], level[where], marker=marker, color=colour,
                           s=22 if len(where) < 300 else 6, zorder=4, label=label)
    finite = lrs[np.isfinite(lrs)]
    positive = finite[finite > 0]
    if len(positive) and len(positive) == len(finite):
        bottom.set_yscale("log")
    elif len(positive) and np.all(finite >= 0):
        bottom.set_yscale("symlog", linthresh=float(positive.min()))
        bottom.set_ylim(bottom=0)
    bottom.set_ylabel("learning rate")
    bottom.set_xlabel("step")
    bottom.grid(alpha=0.25, which="both")


def _draw_tag_changes(top: Axes, bottom: Axes, rows: Rows, signal: str | None) -> None:
    """A dotted line (and the new tag) wherever a tag signal changes."""
    tags = {name: values for name, values in rows.signals.items() if isinstance(values, list)}
    if signal is not None and signal not in tags:
        raise ValueError(f"no tag signal {signal!r} in the trace; tags: {sorted(tags)}")
    name = signal or next(iter(tags), None)
    if name is not None:
        changes = _tag_changes(rows.step, tags[name])
        if signal is not None or len(changes) <= 30:
            for i, (step, tag) in enumerate(changes):
                for ax in (top, bottom):
                    ax.axvline(step, color="#495057", ls=":", lw=1.0,
                               label=f"{name} changes" if ax is top and i == 0 else None)
                top.annotate(tag, (step, 0.02), xycoords=("data", "axes fraction"),
                             xytext=(2, 0), textcoords="offset points", fontsize=7,
                             rotation=90, va="bottom", color="#495057")


def plot_trace(
    trace: Trace | str | os.PathLike[str],
    path: str | os.PathLike[str] | None = None,
    *,
    diagnosis: Diagnosis | bool = True,
    title: str | None = None,
    signal: str | None = None,
    max_points: int = 4000,
    size: tuple[float, float] = (10.0, 5.2),
    dpi: int = 110,
) -> Figure | Path:
    """Draw the pulse of a run: two aligned panels sharing the step axis.

    Top: the raw loss (thin; drawn as a min/max band on long runs) and the smoothed loss,
    non-finite losses as red crosses on the top edge; for a ``mode="max"`` run, the metric
    it maximised, labelled so. Bottom: the LR of every group on a log scale (0 drawn at
    the bottom of a symmetric-log scale where a group's LR is 0; a group added during the
    run drawn from where it was added), with a marker at every increase, decrease, blocked
    change, reset and the end of the warmup. Stress episodes from
    :func:`greedylr.diagnose` are shaded on both panels; changes of a logged tag signal
    are dotted vertical lines.

    Args:
        trace: a :class:`~greedylr.Trace` or the path of a saved one.
        path: the file to write, in the format its suffix names (``.png``, ``.svg``,
            ``.pdf``, ...; ``.png`` is added to a path without one), or a folder to write
            ``pulse.png`` into; None to return the figure instead.
        diagnosis: a :class:`~greedylr.trace.Diagnosis` to shade, True to compute it,
            False for none.
        title: the figure title (default: the trace's step range).
        signal: the tag signal whose changes are drawn (default: the first tag signal
            logged, if it changes at most 30 times).
        max_points: most points drawn per line.
        size: figure size in inches.
        dpi: resolution of a raster image (PNG, JPEG, ...).

    Returns:
        The path written, or the matplotlib ``Figure`` when ``path`` is None.

    Raises:
        ValueError: for an empty trace or a bad argument (a suffix matplotlib does not
            write, before anything is drawn).
    """
    if not (isinstance(max_points, int) and max_points >= 10):
        raise ValueError(f"max_points must be an int >= 10, got {max_points!r}")
    target = None if path is None else _figure_path(path)
    if not isinstance(trace, Trace):
        trace = load_trace(trace)
    rows = trace.rows()
    if not len(rows):
        raise ValueError("the trace is empty: nothing to plot")
    shaded: Diagnosis | None
    if diagnosis is True:
        shaded = diagnose(trace)
    elif diagnosis is False:
        shaded = None
    elif isinstance(diagnosis, Diagnosis):
        shaded = diagnosis
    else:
        raise TypeError(f"diagnosis must be a Diagnosis or a bool, got {diagnosis!r}")

    steps = rows.step.astype(np.float64)
    loss = np.where(np.isfinite(rows.loss), rows.loss, np.nan)

    config = trace.meta.get("config") or {}
    name = "maximised metric" if config.get("mode") == "max" else "loss"
    figure = new_figure(size=size, dpi=dpi, what="greedylr plot")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(1.25, 1.0))

    _draw_loss(top, steps, loss, rows, max_points, name)
    _draw_lrs(bottom, steps, rows, max_points)
    if shaded is not None:
        _shade(top, shaded, label=True)
        _shade(bottom, shaded, label=False)
    _draw_tag_changes(top, bottom, rows, signal)

    # outside the axes: a legend drawn over the loss would hide what it explains
    for ax in (top, bottom):
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    first, last = int(rows.step[0]), int(rows.step[-1])
    top.set_xlim(first, last)
    figure.suptitle(title or f"GreedyLR pulse, steps {first}-{last}", fontsize=10)
    if shaded is not None:
        top.set_title(shaded.summary, fontsize=7, loc="left", wrap=True)

    if target is None:
        return figure
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=dpi)
    return target


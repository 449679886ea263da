"""The figures of scripts/make_tables.py, drawn from the records one table summarises.

- curves_figure: the current iterate and the best so far per iteration, one line per method (mean
  over seeds, shaded ± s.e. or std), the paper's values in the method's colour: a dashed line where
  the paper gives a curve (more than two points), hollow markers, shifted apart, where it gives two.
- results_figure: one point per table row (per method, and per task): a success rate (1-Optimal)
  with its Wilson 95% interval against what it cost (mean trace tokens), single seeds as faint dots,
  the paper's value hollow where it gives both numbers.
- training_figure: a training curve (train/loss) per row, drawn as `<table>_training.png` beside a
  results figure.
Each function returns its Figure (closed, so nothing accumulates; its artists stay readable for
tests); `table_figures` draws a table's figures and writes them under the table's name.
"""
from __future__ import annotations

import math
import textwrap
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from harness.report import RATE_METRIC, TableSpec, row_interval, sem

TASK_MARKERS = "os^Dvp"
PAPER_MARKERS = "o^sDv<>p"


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a cluster node
    import matplotlib.pyplot as plt

    return plt


def title_chars(fig: Any, fontsize: float = 10.0) -> int:
    """How many characters of a title fit across the figure (an average glyph is ~0.55 em wide)."""
    return int(fig.get_figwidth() * 72 / (0.55 * fontsize))


def fit_title(text: str, fig: Any, fontsize: float = 10.0) -> str:
    return textwrap.fill(text, title_chars(fig, fontsize))


def save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, metadata={"Software": None})  # no version stamp: the bytes depend on the data only
    pyplot().close(fig)
    return path


def method_colour(spec: TableSpec, row: str) -> str:
    """One colour per method, the same for its rows of every task and for its paper values."""
    methods = list(dict.fromkeys(spec.method_of(r) for r in spec.methods))
    return f"C{methods.index(spec.method_of(row)) % 10}"


def curve_matrix(curves: list[list[dict[str, Any]]], key: str) -> np.ndarray:
    """Seeds x steps; a failed evaluation (inf) or a shorter run leaves NaN (drawn as a gap)."""
    width = max(len(c) for c in curves)
    matrix = np.full((len(curves), width), np.nan)
    for i, curve in enumerate(curves):
        values = np.array([float(p.get(key, np.nan)) for p in curve])
        matrix[i, :len(values)] = np.where(np.isfinite(values), values, np.nan)
    return matrix


def plain_log_ticks(ax: Any) -> None:
    """Numbers such as 3 and 20 on a log axis, not 3x10^0; minor labels at 2 and 5 of each decade."""
    from matplotlib.ticker import FuncFormatter

    def minor(value: float, _: Any) -> str:
        return f"{value:g}" if value > 0 and round(value / 10 ** math.floor(math.log10(value))) in (2, 5) else ""

    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def mean_and_spread(matrix: np.ndarray, band: str) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():  # a step that only one seed reached has no spread
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, spread = np.nanmean(matrix, axis=0), np.nanstd(matrix, axis=0, ddof=1)
    if band == "sem":
        spread = spread / np.sqrt(np.sum(np.isfinite(matrix), axis=0))
    return mean, spread


def draw_paper_points(ax: Any, spec: TableSpec, ran: set[str], longest: int) -> None:
    """The paper's values per iteration: a dashed line through them where the paper gives a curve;
    where it gives two points (a start and an end), hollow markers of one shape per method, shifted
    sideways so that methods with the same values (GP and PSO) stay visible side by side."""
    points = {m: p for m, p in (spec.paper_points or {}).items() if m in spec.methods}
    pairs = [m for m, p in points.items() if len(p) <= 2]
    for method, values in points.items():
        label = f"{spec.methods[method]}, paper" + ("" if method in ran else " (not run here)")
        colour, marker = method_colour(spec, method), PAPER_MARKERS[list(spec.methods).index(method) % 8]
        steps, scores = list(values), list(values.values())
        if method in pairs:
            shift = (pairs.index(method) - (len(pairs) - 1) / 2) * max(longest, 10) / 60
            ax.scatter([s + shift for s in steps], scores, marker=marker, s=70, facecolors="none",
                       edgecolors=colour, linewidths=1.6, label=label, zorder=4)
        else:
            ax.plot(steps, scores, "--", marker=marker, markersize=5, fillstyle="none", color=colour,
                    linewidth=1.3, label=label, zorder=4)


def curves_figure(records: pd.DataFrame, spec: TableSpec) -> Any:
    """Two panels, current iterate and best so far, against the iteration; legend below both."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
    longest = max(len(c) for c in records["curve"])
    ran = set(records["method"])
    for (key, title), ax in zip([("score", "current iterate"), ("best", "best so far")], axes):
        for method, label in spec.methods.items():
            curves = list(records.loc[records["method"] == method, "curve"])
            if not curves:
                continue
            mean, spread = mean_and_spread(curve_matrix(curves, key), spec.band)
            steps = np.arange(len(mean))
            if len(mean) == 1:  # a one-shot method (SCATS): a flat reference line
                steps, mean, spread = np.array([0, longest - 1]), mean.repeat(2), spread.repeat(2)
            colour = method_colour(spec, method)
            ax.plot(steps, mean, color=colour, label=f"{label} (n={len(curves)})")
            ax.fill_between(steps, mean - spread, mean + spread, color=colour, alpha=0.2)
        if key == "score":  # the paper plots the current iterate
            draw_paper_points(ax, spec, ran, longest)
        ax.set(title=title, xlabel="iteration", yscale=spec.yscale)
        if spec.yscale == "log":
            plain_log_ticks(ax)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{spec.ylabel}, mean ± {'s.e.' if spec.band == 'sem' else 'std'} over seeds")
    axes[1].set_ylabel(spec.ylabel)
    handles, labels = axes[0].get_legend_handles_labels()
    if labels:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), fontsize="small")
    fig.suptitle(fit_title(spec.title, fig, 12), fontsize="large")
    return fig


@dataclass
class ResultPoint:
    """One table row on the results figure: means over its records, the y interval, each seed."""
    row: str
    label: str
    n: int
    x: float
    x_sem: float
    y: float
    low: float   # the y bar: Wilson 95% for a success rate, else ± s.e. over seeds; NaN: none
    high: float
    seeds_x: list[float] = field(default_factory=list)
    seeds_y: list[float] = field(default_factory=list)


def result_points(records: pd.DataFrame, spec: TableSpec) -> list[ResultPoint]:
    """One point per table row with records that carry both metrics, in the table's row order."""
    x_key, y_key = spec.scatter
    points = []
    for row, label in spec.methods.items():
        runs = records[records["method"] == row]
        if x_key not in runs or y_key not in runs:
            continue
        xs, ys = pd.to_numeric(runs[x_key], errors="coerce"), pd.to_numeric(runs[y_key], errors="coerce")
        keep = np.isfinite(xs) & np.isfinite(ys)
        if not keep.any():
            continue
        runs, xs, ys = runs[keep], xs[keep], ys[keep]
        y = float(ys.mean())
        if RATE_METRIC.search(y_key):
            low, high = row_interval(y_key, runs)
        else:
            low, high = y - sem(ys), y + sem(ys)
        points.append(ResultPoint(row, label, int(keep.sum()), float(xs.mean()), sem(xs), y, low, high,
                                  [float(v) for v in xs], [float(v) for v in ys]))
    return points


def metric_name(spec: TableSpec, key: str) -> str:
    """A column's header, or the key's last part in words where the table has no such column."""
    return spec.columns.get(key) or key.rsplit("/", 1)[-1].replace("_", " ")


def results_caption(points: list[ResultPoint], spec: TableSpec, dodged: bool) -> str:
    x_key, y_key = spec.scatter
    x_name, y_name = metric_name(spec, x_key), metric_name(spec, y_key)
    seeds = any(p.n > 1 for p in points)
    bar = (f"the Wilson 95% interval of {y_name} over the row's test tasks" + (" (pooled over seeds)" if seeds else "")
           if RATE_METRIC.search(y_key) else f"{y_name} ± s.e. over seeds")
    parts = ["One point per row: " + ("the mean over its records (n in the legend); faint dots: single seeds; "
                                      f"horizontal bars: {x_name} ± s.e. over seeds. " if seeds else
                                      "one record each (n = 1 in the legend: no spread over seeds). ")
             + f"Vertical bars: {bar}."
             + (" Hollow markers: the paper's values." if paper_points(spec) else "")]
    if any(y_key in values and row not in paper_points(spec) for row, values in spec.paper.items()):
        parts.append(f"Where the paper gives {y_name} without {x_name}, its value is in the table only.")
    if dodged:
        parts.append(f"Points of (nearly) equal {x_name} are set side by side.")
    bare = [p.label for p in points if math.isnan(p.low) and (RATE_METRIC.search(y_key) or p.n > 1)]
    if bare:
        parts.append(f"No interval: {', '.join(bare)} (the records do not say how many test tasks they used).")
    drawn = {p.row for p in points}
    absent = [label for row, label in spec.methods.items() if row not in drawn]
    if absent:
        parts.append(f"Not run here: {', '.join(absent)}.")
    return " ".join(parts)


def paper_points(spec: TableSpec) -> dict[str, tuple[float, float]]:
    """Row -> (x, y) of the paper, for the rows where it gives both numbers."""
    x_key, y_key = spec.scatter
    return {row: (float(values[x_key]), float(values[y_key])) for row, values in spec.paper.items()
            if row in spec.methods and x_key in values and y_key in values}


def x_limits(xs: list[float]) -> tuple[float, float]:
    """From 0 (a trace length is a count; fast mode writes none) to the largest, at least 10 wide."""
    low = min(0.0, *xs)
    high = max(max(xs), low + 10.0)
    pad = 0.06 * (high - low)
    return low - pad, high + pad


def dodge(points: list[ResultPoint], width: float) -> list[float]:
    """Where shown: points within 2% of the axis of one another sit side by side, not on each other."""
    shown = [p.x for p in points]
    step = 0.02 * width
    for i, p in enumerate(points):
        close = [j for j, q in enumerate(points) if abs(q.x - p.x) < step]
        if len(close) > 1:
            shown[i] = float(np.mean([points[j].x for j in close])) + (close.index(i) - (len(close) - 1) / 2) * step
    return shown


def results_figure(points: Iterable[ResultPoint], spec: TableSpec) -> Any:
    """y (a rate, 0-100) against x (a cost), colour per method, marker per task, legend at the right."""
    plt = pyplot()
    points = list(points)
    x_key, y_key = spec.scatter
    fig, ax = plt.subplots(figsize=(10, 5.6), layout="constrained")
    papers = [x for x, _ in paper_points(spec).values()]
    xs = [v for v in [x for p in points for x in (p.x, *p.seeds_x)] + papers if np.isfinite(v)] or [0.0]
    limits = x_limits(xs)
    shown = dodge(points, limits[1] - limits[0])
    for p, x in zip(points, shown):
        colour = method_colour(spec, p.row)
        task = spec.task_of(p.row)
        marker = TASK_MARKERS[list(spec.tasks).index(task) % 6] if task else "o"
        if p.n > 1:
            ax.scatter(np.array(p.seeds_x) + (x - p.x), p.seeds_y, marker=marker, s=14, color=colour, alpha=0.35,
                       linewidths=0)
        yerr = None if math.isnan(p.low) else [[p.y - p.low], [p.high - p.y]]
        xerr = None if math.isnan(p.x_sem) else [[p.x_sem], [p.x_sem]]
        ax.errorbar(x, p.y, xerr=xerr, yerr=yerr, fmt=marker, color=colour, markersize=7, capsize=3,
                    label=f"{p.label} (n={p.n})")
    drawn = {p.row for p in points}
    for row, (x, y) in paper_points(spec).items():  # every row the paper gives, run here or not
        task = spec.task_of(row)
        ax.scatter([x], [y], marker=TASK_MARKERS[list(spec.tasks).index(task) % 6] if task else "o", s=70,
                   facecolors="none", edgecolors=method_colour(spec, row), linewidths=1.6, zorder=4,
                   label=f"{spec.methods[row]}, paper" + ("" if row in drawn else " (not run here)"))
    ax.set_xlim(*limits)
    if RATE_METRIC.search(y_key):
        ax.set_ylim(-3, 103)
    ax.set(xlabel=metric_name(spec, x_key),
           ylabel=metric_name(spec, y_key) + (" (% of test tasks)" if RATE_METRIC.search(y_key) else ""))
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: ", paper" in labels[i])  # ours first, then the paper's
    if labels:
        fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside right center",
                   fontsize="small")
    fig.suptitle(fit_title(spec.title, fig, 12), fontsize="large")
    dodged = any(abs(x - p.x) > 0 for p, x in zip(points, shown))
    fig.supxlabel(textwrap.fill(results_caption(points, spec, dodged), title_chars(fig, 8.5)), fontsize="small",
                  ha="left", x=0.01)
    return fig


def training_figure(records: pd.DataFrame, spec: TableSpec) -> Any | None:
    """The training curve (`spec.training`) against the logged step, mean over seeds, and beside it
    the held-out curve (`spec.held_out`) where the table names one: a model still learning when its
    budget ran out shows as a curve still rising. None when no row's records carry a training
    curve (each reused a model trained for another table)."""
    plt = pyplot()
    held = spec.held_out and any(spec.held_out[0] in point for curve in records["curve"] for point in curve)
    panels = [spec.training] + ([spec.held_out] if held else [])  # no empty panel where no run evaluated
    fig, axes = plt.subplots(1, len(panels), figsize=(8 if len(panels) == 1 else 12, 4.5), layout="constrained",
                             squeeze=False)
    reused = []
    for method, label in spec.methods.items():
        runs = records.loc[records["method"] == method, "curve"]
        style = "-" if spec.task_of(method) in (None, next(iter(spec.tasks), None)) else "--"
        drawn = [_mean_curve(ax, runs, key, label, method_colour(spec, method), style)
                 for ax, (key, _) in zip(axes[0], panels)]
        if not drawn[0] and len(runs):
            reused.append(label)
    if not axes[0][0].get_lines():
        plt.close(fig)
        return None
    for ax, (_, ylabel) in zip(axes[0], panels):
        ax.set(xlabel="step", ylabel=ylabel, yscale=spec.yscale if ax is axes[0][0] else "linear")
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize="small")
    fig.suptitle(fit_title(f"Training: {spec.title}", fig, 12), fontsize="large")
    if reused:
        fig.supxlabel(textwrap.fill(f"No training curve in the records of: {', '.join(reused)} (they reuse a model "
                                    "trained for another table or round).", title_chars(fig, 8.5)),
                      fontsize="small", ha="left", x=0.01)
    return fig


def _mean_curve(ax: Any, runs: pd.Series, key: str, label: str, colour: Any, style: str) -> bool:
    """Draws the mean over seeds of one curve key (only the points that carry it); False when none does."""
    curves = [c for c in ([p for p in curve if key in p] for curve in runs) if c]
    if not curves:
        return False
    steps = [p["step"] for p in max(curves, key=len)]
    ax.plot(steps, np.nanmean(curve_matrix(curves, key), axis=0), color=colour, linestyle=style,
            label=f"{label} (n={len(curves)})")
    return True


def table_figures(records: pd.DataFrame, spec: TableSpec, path: Path) -> list[Path]:
    """The table's figure at `path` (the results figure where the block names x and y, else the
    curves, or a training curve alone), and a training curve beside a results figure."""
    if spec.scatter:
        written = [save(results_figure(result_points(records, spec), spec), path)]
        training = training_figure(records, spec) if spec.training else None
        if training is not None:
            written.append(save(training, path.with_name(f"{path.stem}_training.png")))
        return written
    if spec.training:
        training = training_figure(records, spec)
        return [save(training, path)] if training is not None else []
    return [save(curves_figure(records, spec), path)]

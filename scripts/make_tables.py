"""Turn run records into the paper's tables and figures, ours beside the paper's numbers.

    python scripts/make_tables.py                                   # every experiment in results/
    python scripts/make_tables.py --experiment fig5b_traffic
    python scripts/make_tables.py --results runs/multirun/2026-11-21/10-00-00 --out /tmp/smoke
    python scripts/make_tables.py --experiment fig5b_traffic --wandb    # and push them to its W&B group

For each experiment, mode and budget found in the records it writes `<out>/tables/<name>.md` and
`.csv` (mean ± s.e. over seeds, n, a Wilson 95% interval for success rates, the paper's value) and
`<out>/figures/<name>.png` (score per iteration and best so far, one line per method, shaded
± s.e.). `<name>` is the experiment for paper-mode records; smoke and quick tables are named
`<experiment>.<mode>` and labelled as such, and a mode with several budgets gets one table each
(harness/report.py). Records repeating one (task, method, seed, config) are refused. What to show
comes from the `table:` block of `configs/experiment/<experiment>.yaml` (or, if that file is gone,
the block saved in the newest record's config); a block with `tasks:` gets one row per task and
method.
"""
from __future__ import annotations

import argparse
import os
import warnings
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a clone without installing

from harness.records import load_records  # noqa: E402
from harness.report import (MODE_LABELS, check_duplicates, rate_interval, sem, table_groups,  # noqa: E402
                            table_name, warn)


@dataclass
class TableSpec:
    title: str
    methods: dict[str, str]            # method name -> label, in display order
    columns: dict[str, str]            # metric key -> column header
    paper: dict[str, dict[str, float]]  # method -> metric -> paper value
    fmt: str = ".1f"
    ylabel: str = "score"
    yscale: str = "linear"
    band: str = "sem"                  # shaded band: "sem" (standard error, the convention) or "std"
    paper_points: dict[str, dict[int, float]] | None = None  # method -> {iteration: paper value}
    curve_key: str | None = None  # a training curve (e.g. train/loss) instead of score / best so far
    scatter: tuple[str, str] | None = None  # (x metric, y metric): one point per row, e.g. accuracy vs trace length
    medians: tuple[str, ...] = ()      # metrics whose cells show the median beside the mean
    formats: dict[str, str] = field(default_factory=dict)  # metric -> its own format (e.g. ".0f" for tokens)

    @classmethod
    def from_block(cls, block: dict[str, Any], records: pd.DataFrame) -> "TableSpec":
        methods = dict(block.get("methods") or {m: m for m in sorted(records["method"].unique())})
        if block.get("tasks"):  # one row per (task, method); records carry "task/method" (by_task)
            methods = {f"{task}/{method}": f"{task_label}: {label}"
                       for task, task_label in block["tasks"].items() for method, label in methods.items()}
        figure = block.get("figure") or {}
        return cls(title=block["title"], methods=methods, columns=dict(block["columns"]),
                   paper={m: dict(v) for m, v in (block.get("paper") or {}).items()},
                   fmt=block.get("format", ".1f"), ylabel=figure.get("ylabel", "score"),
                   yscale=figure.get("yscale", "linear"), band=figure.get("band", "sem"),
                   paper_points={m: {int(k): float(v) for k, v in points.items()}
                                 for m, points in (figure.get("paper_points") or {}).items()},
                   curve_key=figure.get("curve_key"),
                   scatter=(figure["x"], figure["y"]) if "x" in figure else None,
                   medians=tuple(block.get("medians") or ()), formats=dict(block.get("formats") or {}))


def table_block(experiment: str, records: pd.DataFrame, configs: Path) -> dict[str, Any] | None:
    from omegaconf import OmegaConf

    path = configs / f"{experiment}.yaml"
    if path.exists():
        block = OmegaConf.to_container(OmegaConf.load(path)).get("table")
    else:
        from harness.records import read_record

        newest = max(records["path"], key=lambda p: read_record(p).created)
        block = read_record(newest).config.get("table")
    return block or None


def add_curve_metrics(records: pd.DataFrame, block: dict[str, Any]) -> pd.DataFrame:
    """Columns computed from each record's curve, named in the block's `curve_metrics`:
    `{step: k}` is the score at evaluation k (a run that stopped earlier keeps its last score;
    -1 is the last), `{last: n}` the mean score over the last n evaluations (what one noisy
    iteration cannot show); `key:` reads another curve entry than `score` (points without it skipped)."""
    rules = block.get("curve_metrics") or {}
    columns = {}
    for name, rule in rules.items():
        def value(curve: list[dict[str, Any]], rule: dict[str, Any] = rule) -> float:
            key = rule.get("key", "score")
            scores = [float(p[key]) if p[key] is not None else np.nan for p in curve if key in p]
            if not scores:
                return np.nan
            if "step" in rule:
                step = int(rule["step"])
                return scores[min(step, len(scores) - 1)] if step >= 0 else scores[step]
            return float(np.mean(scores[-int(rule["last"]):]))
        columns[name] = records["curve"].map(value)
    return records.assign(**columns) if columns else records


def hold_last_points(records: pd.DataFrame, block: dict[str, Any]) -> pd.DataFrame:
    """With `figure: {hold_last: true}`, a run that stopped early (an exact hit) keeps its last
    point to the longest run's length, so the curves average over every run at every step."""
    if not (block.get("figure") or {}).get("hold_last"):
        return records
    longest = max(len(c) for c in records["curve"])
    padded = records["curve"].map(lambda c: c + [dict(c[-1], step=i) for i in range(len(c), longest)])
    return records.assign(curve=padded)


def protocol_note(runs: pd.DataFrame) -> str:
    """Which protocol the records ran (`protocol:` of their experiment config): paper or harness."""
    from harness.records import read_record

    names = sorted({str(read_record(p).config.get("protocol") or "not recorded") for p in runs["path"]})
    if names == ["not recorded"]:
        return ""  # an experiment without protocol variants
    return f"\nProtocol: {', '.join(names)} (`protocol: paper` is the paper's; `harness` is our variant).\n"


def by_task(records: pd.DataFrame) -> pd.DataFrame:
    """Rows per (task, method), for tables whose block lists `tasks:` (e.g. one row per maze size);
    paper values in such a block are keyed "<task>/<method>"."""
    return records.assign(method=records["task"] + "/" + records["method"])


def summarize(records: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Long form: one row per (method, metric) with n, mean, std, s.e., a 95% interval for
    success rates (ci_low, ci_high) and the paper's value."""
    rows = []
    for method, label in spec.methods.items():
        runs = records[records["method"] == method]
        for metric, header in spec.columns.items():
            values = pd.to_numeric(runs[metric], errors="coerce") if metric in runs else pd.Series([], dtype=float)
            values = values[np.isfinite(values)]
            low, high = rate_interval(metric, runs)
            rows.append({"method": method, "label": label, "metric": metric, "column": header,
                         "n": len(values), "mean": values.mean() if len(values) else np.nan,
                         "std": values.std(ddof=1) if len(values) > 1 else np.nan,
                         **({"median": values.median() if len(values) else np.nan} if spec.medians else {}),
                         "paper": spec.paper.get(method, {}).get(metric, np.nan),
                         "sem": sem(values), "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def cell(row: pd.Series, fmt: str, median: bool = False) -> str:
    if row["n"] == 0:
        text = "–"
    elif np.isnan(row["sem"]):
        text = format(row["mean"], fmt)
    else:
        text = f"{format(row['mean'], fmt)} ± {format(row['sem'], fmt)}"
    if row["n"] and not np.isnan(row["ci_low"]):
        text += f" [{row['ci_low']:.1f}, {row['ci_high']:.1f}]"
    if median and row["n"]:
        text += f", median {format(row['median'], fmt)}"
    if not np.isnan(row["paper"]):
        text += f" (paper {row['paper']:g})"
    return text


def markdown(summary: pd.DataFrame, spec: TableSpec, experiment: str, source: str,
             llm_by_method: dict[str, str], mode: str = "paper", budget: str | None = None,
             unlisted: dict[str, int] | None = None, show_llm: bool = True) -> str:
    headers = ["method", "n", *(["LLM"] if show_llm else []), *spec.columns.values()]
    title = spec.title if mode == "paper" else f"{MODE_LABELS.get(mode, mode.upper())}: {spec.title}"
    where = f"Experiment `{experiment}`" + ("" if mode == "paper" else f", mode `{mode}`") + \
        ("" if budget is None else f", budget `{budget}`")
    rates = summary["ci_low"].notna().any()
    lines = [f"# {title}", "",
             f"{where}; records in `{source}`. Mean ± s.e. over seeds (n records per row); "
             + ("success rates add a Wilson 95% interval [low, high] over all test tasks of the row; " if rates else "")
             + "the paper's value follows ours as (paper x)."
             + (" The LLM column says what answered each method's LLM calls; \"not run here\" rows have "
                "no records yet." if show_llm else ""), "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for method, label in spec.methods.items():
        rows = summary[summary["method"] == method]
        n = int(rows["n"].max()) if len(rows) else 0
        cells = [cell(rows[rows["metric"] == metric].iloc[0], spec.formats.get(metric, spec.fmt),
                      metric in spec.medians) for metric in spec.columns]
        llm = [llm_by_method.get(method, "not run here")] if show_llm else []
        lines.append("| " + " | ".join([label, str(n), *llm, *cells]) + " |")
    if unlisted:
        lines += ["", "Records with no row in this table: " +
                  ", ".join(f"`{m}` ({k})" for m, k in sorted(unlisted.items())) + "."]
    return "\n".join(lines) + "\n"


def curve_matrix(curves: list[list[dict[str, Any]]], key: str) -> np.ndarray:
    """Seeds x steps; a failed evaluation (inf) or a shorter run leaves NaN (drawn as a gap)."""
    width = max(len(c) for c in curves)
    matrix = np.full((len(curves), width), np.nan)
    for i, curve in enumerate(curves):
        values = np.array([float(p.get(key, np.nan)) for p in curve])
        matrix[i, :len(values)] = np.where(np.isfinite(values), values, np.nan)
    return matrix


def save_single_panel(fig: Any, ax: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def training_figure(records: pd.DataFrame, spec: TableSpec, path: Path) -> None:
    """One panel: `spec.curve_key` against the logged step, mean over seeds, one line per method."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for method, label in spec.methods.items():
        curves = [[p for p in c if spec.curve_key in p] for c in records.loc[records["method"] == method, "curve"]]
        curves = [c for c in curves if c]
        if not curves:
            continue
        matrix = curve_matrix(curves, spec.curve_key)
        steps = [p["step"] for p in max(curves, key=len)]
        ax.plot(steps, np.nanmean(matrix, axis=0), label=f"{label} (n={len(curves)})")
    ax.set(title=spec.title, xlabel="step", ylabel=spec.ylabel, yscale=spec.yscale)
    save_single_panel(fig, ax, path)


def scatter_figure(records: pd.DataFrame, spec: TableSpec, path: Path) -> None:
    """One point per row (mean over seeds, bars ± s.e.): where each method sits on two metrics."""
    import matplotlib.pyplot as plt

    x_key, y_key = spec.scatter
    summary = summarize(records, TableSpec(spec.title, spec.methods, {x_key: "x", y_key: "y"}, {}))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, label in spec.methods.items():
        rows = summary[summary["method"] == method].set_index("column")
        if rows["n"].min() == 0:
            continue
        x, y = rows.loc["x", "mean"], rows.loc["y", "mean"]
        ax.errorbar(x, y, xerr=np.nan_to_num(rows.loc["x", "sem"]), yerr=np.nan_to_num(rows.loc["y", "sem"]),
                    fmt="o", capsize=3, label=f"{label} (n={int(rows['n'].min())})")
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize="small")
    ax.set(xlabel=spec.columns.get(x_key, x_key), ylabel=spec.columns.get(y_key, y_key))
    ax.set_title(textwrap.fill(spec.title, 70), fontsize="medium")
    ax.margins(x=0.2, y=0.15)  # room for the point labels
    save_single_panel(fig, ax, path)


def paper_marker_style(index: int, steps: int) -> tuple[float, str]:
    """A small sideways shift and a marker shape per method, so paper points that share a value
    (several methods start at the same delay) stay visible side by side."""
    markers = "xo^sDv<>"
    return (index % 5 - 2) * max(steps, 10) / 150, markers[index % len(markers)]


def figure(records: pd.DataFrame, spec: TableSpec, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if spec.scatter:
        return scatter_figure(records, spec, path)
    if spec.curve_key:
        return training_figure(records, spec, path)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    longest = max(len(c) for c in records["curve"])
    for (key, title), ax in zip([("score", "current iterate"), ("best", "best so far")], axes):
        for method, label in spec.methods.items():
            curves = list(records.loc[records["method"] == method, "curve"])
            if not curves:
                continue
            matrix = curve_matrix(curves, key)
            with warnings.catch_warnings():  # a step that only one seed reached has no spread
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, spread = np.nanmean(matrix, axis=0), np.nanstd(matrix, axis=0, ddof=1)
            if spec.band == "sem":
                spread = spread / np.sqrt(np.sum(np.isfinite(matrix), axis=0))
            steps = np.arange(matrix.shape[1])
            if matrix.shape[1] == 1:  # a one-shot method (SCATS): a flat reference line
                steps, mean, spread = np.array([0, longest - 1]), mean.repeat(2), spread.repeat(2)
            line, = ax.plot(steps, mean, label=f"{label} (n={len(curves)})")
            ax.fill_between(steps, mean - spread, mean + spread, color=line.get_color(), alpha=0.2)
            points = (spec.paper_points or {}).get(method)
            if points and key == "score":  # the paper plots the current iterate
                shift, marker = paper_marker_style(list(spec.methods).index(method), longest)
                ax.scatter([k + shift for k in points], list(points.values()), marker=marker, s=60,
                           color=line.get_color(), label=f"{label}, paper")
        ax.set(title=title, xlabel="iteration", yscale=spec.yscale)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{spec.ylabel}, mean ± {'s.e.' if spec.band == 'sem' else 'std'} over seeds")
    axes[1].set_ylabel(spec.ylabel)
    axes[0].legend(fontsize="small")
    fig.suptitle(spec.title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def make(results: Path, out: Path, configs: Path, experiments: list[str] | None = None) -> list[Path]:
    """Write the tables and figures, one set per (experiment, mode, budget); returns the paths written."""
    records = load_records(results)
    if records.empty:
        raise SystemExit(f"error: no run records under {results}")
    check_duplicates(records)
    for experiment in experiments or []:
        if experiment not in set(records["experiment"]):
            raise SystemExit(f"error: no records of experiment {experiment!r} under {results}")
    written = []
    for experiment, mode, budget, runs in table_groups(records):
        if experiments and experiment not in experiments:
            continue
        block = table_block(experiment, runs, configs)
        if block is None:  # e.g. ad-hoc runs: say so, and go on with the other tables
            if experiments:
                raise SystemExit(f"error: no table: block for experiment {experiment!r}")
            warn(f"no table: block for experiment {experiment!r} ({len(runs)} records): no table")
            continue
        written += write_table(runs, block, experiment, mode, budget, results, out)
    return written


def write_table(runs: pd.DataFrame, block: dict[str, Any], experiment: str, mode: str, budget: str | None,
                results: Path, out: Path) -> list[Path]:
    runs = hold_last_points(add_curve_metrics(runs, block), block)
    if block.get("tasks"):
        runs = by_task(runs)
    spec = TableSpec.from_block(block, runs)
    unlisted = {m: int(k) for m, k in runs["method"].value_counts().items() if m not in spec.methods}
    name = table_name(experiment, mode, budget)
    if unlisted:
        warn(f"{name}: records of methods with no table row: {', '.join(sorted(unlisted))}")
    summary = summarize(runs, spec)
    tables = out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    source = os.path.relpath(results.resolve(), ROOT)
    llm_by_method = {m: ", ".join(sorted(set(g["llm"]))) for m, g in runs.groupby("method")}
    # The LLM column only where a method could ask one: not for trained models (Dualformer, MATH).
    show_llm = not all("model" in config for config in runs["config"])
    (tables / f"{name}.md").write_text(markdown(summary, spec, experiment, source, llm_by_method,
                                                mode, budget, unlisted, show_llm) + protocol_note(runs))
    summary.to_csv(tables / f"{name}.csv", index=False, float_format="%.4f")
    if mode != "paper":
        spec.title = f"{mode.upper()}: {spec.title}"  # the figure says it too
    figure(runs, spec, out / "figures" / f"{name}.png")
    return [tables / f"{name}.md", tables / f"{name}.csv", out / "figures" / f"{name}.png"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"), help="folder of run records")
    parser.add_argument("--out", type=Path, default=None, help="where tables/ and figures/ go (default: --results)")
    parser.add_argument("--configs", type=Path, default=ROOT / "configs" / "experiment")
    parser.add_argument("--experiment", action="append", help="only these experiments (repeatable)")
    parser.add_argument("--wandb", action="store_true",
                        help="also push each table and figure to W&B, in its experiment's group (offline "
                             "unless WANDB_MODE=online; files under <out>/wandb/)")
    args = parser.parse_args(argv)
    out = args.out or args.results
    written = make(args.results, out, args.configs, args.experiment)
    for path in written:
        print(path)
    if args.wandb:
        from harness.wandb_tables import push_tables

        for name in push_tables(written, out):
            print(f"W&B: table {name}")


if __name__ == "__main__":
    main()

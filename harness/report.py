"""What a table may pool, and how sure its numbers are: groups, duplicates, errors, intervals.

scripts/make_tables.py renders tables, harness/figures.py draws figures; this module decides
which records belong in one table (same experiment, mode and budget), refuses records that would
be counted twice, reads what a table shows from its `table:` block (TableSpec), and gives the one
convention every table, figure and results/README.md uses (summarize): mean ± standard error over
the row's records with n beside it, and a Wilson 95% interval for success rates.
"""
from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import pandas as pd

from harness.stats import PAIRED_METRIC, t_interval

# Success rates in percent of test tasks (Dualformer's k-Solved / k-Optimal of n samples).
RATE_METRIC = re.compile(r"(^|/)\d+_(solved|optimal)_\d+$")
MODE_LABELS = {"smoke": "SMOKE TEST, CI-sized (not a result)", "quick": "QUICK LOOK, cut-down grid (not the paper protocol)"}


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def budget_of(config: dict[str, Any]) -> str:
    """The evaluation / training budget a record ran under, e.g. `limit=50` or `steps=3000`."""
    task, model = config.get("task") or {}, config.get("model") or {}
    train = model.get("train") if isinstance(model.get("train"), dict) else {}
    parts = [f"limit={task['limit']}" if task.get("limit") is not None else "",
             f"steps={train['steps']}" if train.get("steps") is not None else "",
             f"epochs={train['epochs']}" if train.get("epochs") is not None else ""]
    return ",".join(p for p in parts if p) or "default"


def check_duplicates(records: pd.DataFrame) -> None:
    """Two records of one config and seed would count one run twice: refuse, naming both files."""
    keys = ["experiment", "mode", "task", "method", "seed", "config_hash"]
    twice = records[records.duplicated(keys, keep=False)]
    if not twice.empty:
        paths = ", ".join(sorted(twice["path"]))
        raise SystemExit(f"error: {len(twice)} records repeat one (task, method, seed, config): {paths}; "
                         "keep one of each")


def table_groups(records: pd.DataFrame) -> Iterator[tuple[str, str, str | None, pd.DataFrame]]:
    """(experiment, mode, budget or None when the mode has one budget, records) per table."""
    records = records.assign(budget=[budget_of(c) for c in records["config"]])
    for (experiment, mode), runs in records.groupby(["experiment", "mode"], sort=True):
        budgets = sorted(runs["budget"].unique())
        if len(budgets) > 1:
            warn(f"{experiment} ({mode}) has records of {len(budgets)} budgets ({', '.join(budgets)}): "
                 "one table each")
        for budget in budgets:
            yield experiment, mode, budget if len(budgets) > 1 else None, runs[runs["budget"] == budget]


def table_name(experiment: str, mode: str, budget: str | None) -> str:
    """Paper tables keep their plain name; any other mode or budget says so in the file name."""
    name = experiment if mode == "paper" else f"{experiment}.{mode}"
    return name if budget is None else f"{name}.{re.sub(r'[^A-Za-z0-9=.-]+', '_', budget)}"


def sem(values: pd.Series) -> float:
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")


def test_tasks(config: dict[str, Any]) -> int | None:
    """How many test tasks a record's rates are over (the task's n_test, cut by its limit)."""
    task = config.get("task") or {}
    n, limit = task.get("n_test"), task.get("limit")
    if n is None:
        return None
    return int(min(n, limit)) if limit is not None else int(n)


def wilson(successes: float, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95% interval for a binomial proportion, in percent."""
    if trials <= 0:
        return float("nan"), float("nan")
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return 100 * (centre - half), 100 * (centre + half)


def rate_interval(metric: str, runs: pd.DataFrame) -> tuple[float, float]:
    """Pooled over the row's records: successes = rate x tasks, summed; NaN when not a rate."""
    if not RATE_METRIC.search(metric) or metric not in runs:
        return float("nan"), float("nan")
    successes, trials = 0.0, 0
    for value, config in zip(pd.to_numeric(runs[metric], errors="coerce"), runs["config"]):
        n = test_tasks(config)
        if n is None or not np.isfinite(value):
            return float("nan"), float("nan")
        successes, trials = successes + round(value * n / 100), trials + n
    return wilson(successes, trials)


def row_interval(metric: str, runs: pd.DataFrame) -> tuple[float, float]:
    """A row's 95% interval for a success rate: a single record's own (`<metric>_ci_low` /
    `_ci_high`, from its per-task outcomes) where it has one, else pooled from the rates and task
    counts (rate_interval); NaN when neither can be had."""
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    if RATE_METRIC.search(metric) and len(runs) == 1 and low in runs and high in runs:
        stored = pd.to_numeric(runs[[low, high]].iloc[0], errors="coerce")
        if stored.notna().all():
            return float(stored[low]), float(stored[high])
    return rate_interval(metric, runs)


@dataclass
class TableSpec:
    """What one table shows, read from its experiment's `table:` block."""
    title: str
    methods: dict[str, str]            # row (method, or "task/method" with `tasks:`) -> label, in display order
    columns: dict[str, str]            # metric key -> column header
    paper: dict[str, dict[str, float]]  # row -> metric -> paper value
    fmt: str = ".1f"
    ylabel: str = "score"
    yscale: str = "linear"
    band: str = "sem"                  # shaded band: "sem" (standard error, the convention) or "std"
    paper_points: dict[str, dict[int, float]] | None = None  # method -> {iteration: paper value}
    scatter: tuple[str, str] | None = None  # (x metric, y metric): one point per row, e.g. 1-Optimal vs trace tokens
    training: tuple[str, str] | None = None  # (curve key, y label): a training curve, e.g. train/loss
    held_out: tuple[str, str] | None = None  # (curve key, y label): drawn beside it, e.g. eval/fast/1_optimal_4
    medians: tuple[str, ...] = ()      # metrics whose cells show the median beside the mean
    formats: dict[str, str] = field(default_factory=dict)  # metric -> its own format (e.g. ".0f" for tokens)
    tasks: dict[str, str] = field(default_factory=dict)    # task -> label, for rows per (task, method)
    seed_interval: str | None = None   # "t": a Student-t 95% interval over seeds beside the Wilson one
    paired: list[tuple[str, str]] = field(default_factory=list)  # method pairs compared task by task
    paired_metric: str | None = None   # the per-task success those pairs are compared on
    compute: bool = False              # a section of what each model's training saw and took

    @classmethod
    def from_block(cls, block: dict[str, Any], records: pd.DataFrame) -> "TableSpec":
        methods = dict(block.get("methods") or {m: m for m in sorted(records["method"].unique())})
        if block.get("tasks"):  # one row per (task, method); records carry "task/method" (by_task)
            methods = {f"{task}/{method}": f"{task_label}: {label}"
                       for task, task_label in block["tasks"].items() for method, label in methods.items()}
        figure = block.get("figure") or {}
        training = figure.get("training") or ({"curve_key": figure["curve_key"], "ylabel": figure.get("ylabel")}
                                              if figure.get("curve_key") else None)
        return cls(title=block["title"], methods=methods, columns=dict(block["columns"]),
                   paper={m: dict(v) for m, v in (block.get("paper") or {}).items()},
                   fmt=block.get("format", ".1f"), ylabel=figure.get("ylabel", "score"),
                   yscale=figure.get("yscale", "linear"), band=figure.get("band", "sem"),
                   paper_points={m: {int(k): float(v) for k, v in points.items()}
                                 for m, points in (figure.get("paper_points") or {}).items()},
                   scatter=(figure["x"], figure["y"]) if "x" in figure else None,
                   training=(training["curve_key"], training.get("ylabel") or training["curve_key"])
                   if training else None,
                   held_out=(training["eval_key"], training.get("eval_ylabel") or training["eval_key"])
                   if training and training.get("eval_key") else None,
                   medians=tuple(block.get("medians") or ()), formats=dict(block.get("formats") or {}),
                   tasks=dict(block.get("tasks") or {}), **stats_settings(block))

    def method_of(self, row: str) -> str:
        """The method part of a row ("maze7/dualformer" -> "dualformer" in a table with `tasks:`)."""
        return row.split("/", 1)[1] if self.tasks else row

    def task_of(self, row: str) -> str | None:
        return row.split("/", 1)[0] if self.tasks else None


def stats_settings(block: dict[str, Any]) -> dict[str, Any]:
    """The block's statistics keys (harness/stats.py), checked: one error line on a bad one."""
    interval, paired = block.get("seed_interval"), [tuple(p) for p in block.get("paired") or []]
    if interval not in (None, "t"):
        raise SystemExit(f"error: table.seed_interval must be t (Student-t over seeds), got {interval!r}")
    methods = block.get("methods") or {}
    for pair in paired:
        if len(pair) != 2 or any(m not in methods for m in pair):
            raise SystemExit(f"error: table.paired takes pairs of the block's methods ({', '.join(methods)}), "
                             f"got {list(pair)}")
    if paired and not block.get("paired_metric"):
        raise SystemExit("error: table.paired needs table.paired_metric (e.g. test/fast/1_optimal_64)")
    if paired and not PAIRED_METRIC.match(block["paired_metric"]):
        raise SystemExit(f"error: table.paired_metric must be test/<mode>/<k>_<solved|optimal>_<n> (a per-task "
                         f"success), got {block['paired_metric']!r}")
    return {"seed_interval": interval, "paired": paired, "paired_metric": block.get("paired_metric"),
            "compute": bool(block.get("compute"))}


def summarize(records: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Long form: one row per (table row, metric) with n, mean, std, s.e., a 95% interval for
    success rates (ci_low, ci_high), the paper's value and, with `seed_interval: t`, the mean's
    Student-t 95% interval over the records (t_low, t_high)."""
    rows = []
    for method, label in spec.methods.items():
        runs = records[records["method"] == method]
        for metric, header in spec.columns.items():
            values = pd.to_numeric(runs[metric], errors="coerce") if metric in runs else pd.Series([], dtype=float)
            values = values[np.isfinite(values)]
            low, high = row_interval(metric, runs)
            rows.append({"method": method, "label": label, "metric": metric, "column": header,
                         "n": len(values), "mean": values.mean() if len(values) else np.nan,
                         "std": values.std(ddof=1) if len(values) > 1 else np.nan,
                         **({"median": values.median() if len(values) else np.nan} if spec.medians else {}),
                         "paper": spec.paper.get(method, {}).get(metric, np.nan),
                         "sem": sem(values), "ci_low": low, "ci_high": high,
                         **(dict(zip(("t_low", "t_high"), t_interval(values))) if spec.seed_interval else {})})
    return pd.DataFrame(rows)

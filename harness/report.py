"""What a table may pool, and how sure its numbers are: groups, duplicates, errors, intervals.

scripts/make_tables.py renders; this module decides which records belong in one table
(same experiment, mode and budget), refuses records that would be counted twice, and gives the
one convention every table, figure and results/README.md uses: mean ± standard error over the
row's records with n beside it, and a Wilson 95% interval for success rates.
"""
from __future__ import annotations

import math
import re
import sys
from typing import Any, Iterator

import numpy as np
import pandas as pd

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

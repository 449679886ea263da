"""The table of records no experiment file describes (an ad hoc sweep, `experiment` = "adhoc"):
every metric the records carry, one row per method (and per setting the sweep varied), mean ± s.e.
over seeds, and each row's paired difference from a reference row over the seeds both ran.

    python -m harness.optimize -m task=numeric optimizer=pso,gp seed=0,1,2 results_dir=runs/cmp
    python scripts/make_tables.py --results runs/cmp       # runs/cmp/tables/adhoc.md and .csv

Paired differences remove what the seed shares between two methods (the problem, the start):
with matching seeds they are usually much tighter than the two rows' own errors.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from harness.identity import identity_config
from harness.report import MODE_LABELS, sem

SKIP_SUFFIXES = ("_ci_low", "_ci_high")  # a record's own interval bounds: not a metric to average


def metric_columns(records: pd.DataFrame) -> list[str]:
    return [c for c in records.columns if "/" in c and not c.startswith("cost/") and not c.endswith(SKIP_SUFFIXES)
            and pd.to_numeric(records[c], errors="coerce").notna().any()]


def _flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def comparison(records: pd.DataFrame) -> pd.DataFrame:
    """The records with a `row` label: the method (`task/method` when several tasks), and the
    settings that vary between its records other than the seed, e.g. `pso (optimizer.w=0.5)`."""
    several_tasks = records["task"].nunique() > 1
    labels = pd.Series("", index=records.index)
    for (task, method), runs in records.groupby(["task", "method"], sort=False):
        flats = {i: _flat(identity_config(c)) for i, c in runs["config"].items()}
        keys = sorted({k for f in flats.values() for k in f}, key=str)
        varied = [k for k in keys if k.split(".")[-1] != "seed"
                  and len({repr(f.get(k)) for f in flats.values()}) > 1]
        base = f"{task}/{method}" if several_tasks else str(method)
        for i, flat in flats.items():
            shown = ", ".join(f"{k}={flat.get(k)}" for k in varied)
            labels[i] = f"{base} ({shown})" if shown else base
    return records.assign(row=labels)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Long form: one line per (row, metric) with n, mean and standard error over its records."""
    lines = []
    for row, runs in sorted(frame.groupby("row"), key=lambda item: item[0]):
        for metric in metric_columns(frame):
            values = pd.to_numeric(runs[metric], errors="coerce")
            values = values[np.isfinite(values)]
            lines.append({"row": row, "method": runs["method"].iloc[0], "task": runs["task"].iloc[0],
                          "metric": metric, "n": len(values), "mean": values.mean() if len(values) else np.nan,
                          "sem": sem(values)})
    return pd.DataFrame(lines)


def paired(frame: pd.DataFrame, reference: str) -> pd.DataFrame:
    """(row - reference) per metric over the seeds both ran: mean and standard error of the differences."""
    lines = []
    base = frame[frame["row"] == reference].groupby("seed")
    for row, runs in sorted(frame[frame["row"] != reference].groupby("row"), key=lambda item: item[0]):
        for metric in metric_columns(frame):
            ours = pd.to_numeric(runs.groupby("seed")[metric].mean(), errors="coerce")
            theirs = pd.to_numeric(base[metric].mean(), errors="coerce")
            both = (ours - theirs).dropna()
            both = both[np.isfinite(both)]
            lines.append({"row": row, "metric": metric, "seeds": sorted(int(s) for s in both.index),
                          "n": len(both), "mean": both.mean() if len(both) else np.nan, "sem": sem(both)})
    return pd.DataFrame(lines)


def _cell(mean: float, error: float) -> str:
    if isinstance(mean, float) and math.isnan(mean):
        return "–"
    return f"{mean:.4g}" if math.isnan(error) else f"{mean:.4g} ± {error:.4g}"


def markdown(frame: pd.DataFrame, experiment: str, mode: str, source: str) -> str:
    table, metrics = summary(frame), metric_columns(frame)
    rows = sorted(frame["row"].unique())
    label = "" if mode == "paper" else f"{MODE_LABELS.get(mode, mode.upper())}: "
    lines = [f"# {label}Comparison: experiment `{experiment}`", "",
             f"Records in `{source}` (no `table:` block: every metric they carry). Mean ± s.e. over seeds, "
             "n records per row; rows differ by method and by any setting the sweep varied.", "",
             "| row | n | LLM | " + " | ".join(metrics) + " |", "|" + "---|" * (len(metrics) + 3)]
    for row in rows:
        cells = table[table["row"] == row].set_index("metric")
        llm = ", ".join(sorted(set(frame.loc[frame["row"] == row, "llm"]))) if "llm" in frame else ""
        lines.append(f"| {row} | {int(cells['n'].max())} | {llm} | "
                     + " | ".join(_cell(cells.at[m, "mean"], cells.at[m, "sem"]) for m in metrics) + " |")
    if len(rows) > 1:
        reference = rows[0]
        differences = paired(frame, reference)
        lines += ["", f"Paired differences from `{reference}` (row minus it, seed by seed): mean ± s.e. over "
                  "the seeds both ran.", "", "| row | seeds | " + " | ".join(metrics) + " |",
                  "|" + "---|" * (len(metrics) + 2)]
        for row in rows[1:]:
            cells = differences[differences["row"] == row].set_index("metric")
            seeds = cells["seeds"].iloc[0] if len(cells) else []
            paired_over = f"paired over seeds {', '.join(map(str, seeds))}" if seeds else "no seed in common"
            lines.append(f"| {row} | {paired_over} | "
                         + " | ".join(_cell(cells.at[m, "mean"], cells.at[m, "sem"]) for m in metrics) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(records: pd.DataFrame, name: str, experiment: str, mode: str, source: str,
                     out: Path) -> list[Path]:
    """`<out>/tables/<name>.md` and `.csv` (the long-form summary) for records without a table block."""
    frame = comparison(records)
    tables = out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    (tables / f"{name}.md").write_text(markdown(frame, experiment, mode, source))
    summary(frame).to_csv(tables / f"{name}.csv", index=False, float_format="%.6g")
    return [tables / f"{name}.md", tables / f"{name}.csv"]

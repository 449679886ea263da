"""The statistics a reviewer asks of a Dualformer table, from the records and the samples beside them.

    p = mcnemar_p(b, c)                          # exact two-sided McNemar on discordant task counts
    low, high = t_interval(per_seed_values)      # Student-t 95% interval of the mean over seeds
    runs = add_sample_metrics(runs, columns)     # samples/<mode>/optimal_per_response, solved_per_response
    table = paired_comparisons(runs, spec)       # per seed and pooled, for the block's `paired` pairs
    text = paired_section(table, spec) + compute_section(runs, spec)

scripts/make_tables.py calls these where a `table:` block asks (`seed_interval: t`, `paired:` with
`paired_metric:`, `compute: true`, `samples/...` columns). A k-of-n metric hides how often a single
response is right (1-Optimal-64 can be 80% while 2% of the responses are optimal), and the pooled
Wilson interval treats every seed's tasks as one sample: the per-response rates and the seed-level
t interval say what those hide. The paired test compares two models on the very tasks both answered:
each seed's test set is its own (drawn from the seed), so tasks pair by id within a seed, and a seed
whose two records answered different tasks is skipped with a warning, never compared.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from harness.samples import read_samples, samples_path

# test/<mode>/<k>_<solved|optimal>_<n>: at least k of a task's n responses solve / are optimal
PAIRED_METRIC = re.compile(r"^test/(?P<mode>[^/]+)/(?P<k>\d+)_(?P<kind>solved|optimal)_(?P<n>\d+)$")
SAMPLE_METRIC = re.compile(r"^samples/(?P<mode>[^/]+)/(?P<kind>solved|optimal)_per_response$")


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar test: under no difference each of the b + c discordant tasks goes
    either way with probability 1/2, so p = 2 P(Binomial(b + c, 1/2) <= min(b, c)), capped at 1."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """The mean's Student-t interval over seeds (n - 1 degrees of freedom); NaN under two values."""
    from scipy.stats import t  # scipy: only the tables that ask for seed intervals need it

    values = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    half = float(t.ppf(0.5 + level / 2, len(values) - 1)) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def is_optimal(response: dict[str, Any], optimal_length: int) -> bool:
    """As dualformer.metrics counts it: a correct plan no longer than the task's optimal one."""
    return bool(response["correct"]) and response["plan_length"] == optimal_length


def mode_rows(record_path: str, mode: str) -> list[dict[str, Any]] | None:
    """The samples of one record in one mode; None when the record has no samples file."""
    if not samples_path(Path(record_path)).exists():
        return None
    return [row for row in read_samples(Path(record_path)) if row["mode"] == mode]


def response_rate(rows: list[dict[str, Any]], kind: str) -> float:
    """% of all responses, over every task and sample, that solve (`solved`) or are optimal."""
    hits = [is_optimal(r, row["optimal_length"]) if kind == "optimal" else bool(r["correct"])
            for row in rows for r in row["responses"]]
    return 100.0 * sum(hits) / len(hits) if hits else float("nan")


def add_sample_metrics(runs: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """The `samples/<mode>/<optimal|solved>_per_response` columns a table lists, per record, from
    its samples file (NaN, shown as a gap, where a record has none)."""
    wanted = {c: SAMPLE_METRIC.match(c) for c in columns if SAMPLE_METRIC.match(c)}
    added: dict[str, list[float]] = {c: [] for c in wanted}
    for path in runs["path"]:
        cache: dict[str, list[dict[str, Any]] | None] = {}
        for column, match in wanted.items():
            rows = cache.setdefault(match["mode"], mode_rows(path, match["mode"]))
            added[column].append(response_rate(rows, match["kind"]) if rows else float("nan"))
    return runs.assign(**added) if added else runs


def task_outcomes(rows: list[dict[str, Any]], k: int, kind: str) -> dict[str, bool]:
    """Task id -> whether at least k of its responses solve / are optimal (the table's k-of-n)."""
    return {row["id"]: sum(is_optimal(r, row["optimal_length"]) if kind == "optimal" else bool(r["correct"])
                           for r in row["responses"]) >= k for row in rows}


def seed_pair(first: pd.DataFrame, second: pd.DataFrame, match: re.Match) -> tuple[dict[str, int], str]:
    """Counts {tasks, both, b, c, neither} for one seed's two records, or ({}, why not)."""
    if len(first) != 1 or len(second) != 1:
        return {}, f"skipped: {len(first)} and {len(second)} records of this seed"
    rows = [mode_rows(p, match["mode"]) for p in (first["path"].iloc[0], second["path"].iloc[0])]
    if any(not r for r in rows):
        return {}, "skipped: no samples file in this mode beside a record"
    if any(len(row["responses"]) != int(match["n"]) for r in rows for row in r):
        return {}, f"skipped: the samples do not hold {match['n']} responses per task"
    a, b = (task_outcomes(r, int(match["k"]), match["kind"]) for r in rows)
    if set(a) != set(b) or len(a) != len(rows[0]) or len(b) != len(rows[1]):
        return {}, f"skipped: the two records' test tasks differ ({len(set(a) & set(b))} shared ids)"
    # the samples must rescore to the records' own rates, or the test would not be of the table's numbers
    stored = [float(r[match.string]) if match.string in r else math.nan for r in (first.iloc[0], second.iloc[0])]
    if any(not math.isclose(100 * sum(o.values()) / len(o), v, abs_tol=1e-6) for o, v in zip((a, b), stored)):
        return {}, f"skipped: the samples do not rescore to the records' {match.string}"
    counts = {"both": sum(a[i] and b[i] for i in a), "b": sum(a[i] and not b[i] for i in a),
              "c": sum(b[i] and not a[i] for i in a), "neither": sum(not (a[i] or b[i]) for i in a)}
    return {"tasks": len(a), **counts}, ""


def paired_comparisons(runs: pd.DataFrame, spec: Any) -> pd.DataFrame:  # spec: report.TableSpec (imports us)
    """One row per (task, pair, seed) and a pooled row per (task, pair): the block's `paired`
    methods compared task by task under `paired_metric`. b counts the tasks only the first method
    gets, c those only the second gets. Pooled: b and c summed over the seeds that pair, tested
    the same exact way (a sign test over every discordant task, pairs formed within a seed)."""
    match = PAIRED_METRIC.match(spec.paired_metric)  # checked when the block was read (report.stats_settings)
    out = []
    for task in list(spec.tasks) or [None]:
        for first, second in spec.paired:
            keys = [m if task is None else f"{task}/{m}" for m in (first, second)]
            mine, theirs = (runs[runs["method"] == k] for k in keys)
            if mine.empty or theirs.empty:  # a method not run on this task: its table row says n = 0
                continue
            task_label = spec.tasks.get(task, task) if task else ""
            # row labels are "<task label>: <method label>" in a table with tasks: the method part
            label = " vs ".join(spec.methods.get(k, k).removeprefix(f"{task_label}: ") for k in keys)
            base = {"task": task_label, "comparison": label}
            pooled = {"tasks": 0, "both": 0, "b": 0, "c": 0, "neither": 0}
            seeds = sorted(set(mine["seed"]) | set(theirs["seed"]))
            paired_seeds = 0
            for seed in seeds:
                counts, note = seed_pair(mine[mine["seed"] == seed], theirs[theirs["seed"] == seed], match)
                p = mcnemar_p(counts["b"], counts["c"]) if counts else float("nan")
                out.append({**base, "seed": seed, **(counts or {"tasks": 0}), "p": p, "note": note})
                if counts:
                    paired_seeds += 1
                    pooled = {k: pooled[k] + counts[k] for k in pooled}
            if paired_seeds > 1:  # one seed's pooled row would only repeat it
                out.append({**base, "seed": f"pooled ({paired_seeds} seed{'s' * (paired_seeds > 1)})", **pooled,
                            "p": mcnemar_p(pooled["b"], pooled["c"]), "note": ""})
    return pd.DataFrame(out, columns=["task", "comparison", "seed", "tasks", "both", "b", "c", "neither", "p", "note"])


def test_sets_said(runs: pd.DataFrame | None, spec: Any) -> str:
    """Whether each task's seeds share one test set (task.test_seed, issue 29) or draw their own."""
    def said(configs: list[Any]) -> str:
        seeds = {(c.get("task") or {}).get("test_seed") for c in configs if isinstance(c, dict)}
        if len(seeds) == 1 and None not in seeds:
            return f"every seed answers the same test tasks: task.test_seed = {seeds.pop()}"
        return "each seed has its own test set"

    if runs is None or "config" not in runs:
        return said([])
    groups = runs.groupby("task")["config"] if "task" in runs else [(None, runs["config"])]
    by_task = {task: said(list(configs)) for task, configs in groups}
    if len(set(by_task.values())) == 1:
        return next(iter(by_task.values()))
    return "; ".join(f"{spec.tasks.get(task, task)}: {text}" for task, text in by_task.items())


def paired_section(table: pd.DataFrame, spec: Any, runs: pd.DataFrame | None = None) -> str:
    """The paired comparisons as a markdown section under the table; `runs` (the table's records)
    say whether the seeds share one test set."""
    metric = spec.columns.get(spec.paired_metric, spec.paired_metric)
    lines = ["", f"## Paired comparisons: {metric} task by task (exact McNemar)", "",
             f"Per seed, the two rows' records are paired by test task id ({test_sets_said(runs, spec)}); "
             f"a task counts as a success under `{spec.paired_metric}`. b: tasks only the first model gets, "
             "c: tasks only the second gets; p: exact two-sided McNemar test (binomial on the b + c discordant "
             "tasks, 1/2 each way). Pooled: b and c summed over the seeds that pair, tested as one exact sign "
             "test over all their discordant tasks; it treats every seed's tasks as one sample, so it says the "
             "trained models differ on these tasks, not that another seed's training would (the seed-to-seed "
             "spread is in the t95 intervals above). Seeds whose two records answered different tasks are "
             "skipped, not compared.", ""]
    by_task = bool(table["task"].any())  # a table without tasks: no task column
    headers = [*(["task"] * by_task), "comparison", "seed", "paired tasks", "both", "b: first only",
               "c: second only", "neither", "p", "note"]
    lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, row in table.iterrows():
        counts = [str(int(row[k])) if row["tasks"] else "–" for k in ("tasks", "both", "b", "c", "neither")]
        p = format(row["p"], ".3g") if np.isfinite(row["p"]) else "–"
        cells = [*([row["task"]] * by_task), row["comparison"], str(row["seed"]), *counts, p, row["note"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def stage_ends(curve: list[dict[str, Any]], key: str) -> list[float]:
    """The last value of `key` in each training stage of a curve: a stage ends where the value
    starts again from less (a bootstrap round's fine-tuning after the base model's training)."""
    ends: list[float] = []
    previous = None
    for point in curve:
        value = point.get(key)
        if value is None or not np.isfinite(value):
            continue
        if previous is not None and value < previous:
            ends.append(previous)
        previous = float(value)
    return ends + ([previous] if previous is not None else [])


def compute_cell(curves: list[list[dict[str, Any]]], key: str, scale: float, fmt: str) -> str:
    """Mean over the records of each stage's last value, stages joined by +; "not recorded" when a
    record's curve lacks the key (records from before it was logged: no number is made up)."""
    stages = [stage_ends(c, key) for c in curves]
    missing = sum(not s for s in stages)
    if missing:
        return "not recorded" if missing == len(stages) else f"not recorded in {missing} of {len(stages)} records"
    if len({len(s) for s in stages}) > 1:
        return "stages differ between records"
    means = np.mean(np.array(stages), axis=0) / scale
    return " + ".join(format(v, fmt) for v in means)


def trained_by(rows: pd.DataFrame) -> str:
    """Which runs trained the row's models: "this run", another run's config hash, or "not recorded"."""
    from harness.records import read_record

    names = set()
    for path, own in zip(rows["path"], rows["config_hash"]):
        by = read_record(path).provenance.get("trained_by") or {}
        names.add("not recorded" if not by.get("config_hash") else
                  "this run" if by["config_hash"] == own else f"`{by['config_hash']}`")
    return ", ".join(sorted(names))


def compute_section(runs: pd.DataFrame, spec: Any) -> str:
    """What training each row's model saw and took, so no one reads the table as compute-matched."""
    lines = ["", "## Training compute per model (not compute-matched)", "",
             "Means over the row's records of the last value in each record's training curve: tokens seen "
             "(`train/tokens_seen`, prompt and target tokens without padding), sequences seen "
             "(`train/sequences_seen`), plan-only sequences seen "
             "(`train/plan_only_seen`, targets with no trace: dropout level 4, or a fast-path response a bootstrap "
             "round kept) and training wall time "
             "(`train/seconds`, held-out evaluations during training included). A run that reuses a "
             "checkpoint carries the curve of the run that trained the model, so its time is that training's, "
             "not this table's evaluation. A bootstrap round's curve holds the base model's training and its "
             "own round's fine-tuning, shown as base + round (earlier rounds and the rounds' sampling are not "
             "in it). Trained by: the run (config hash) that trained the weights, from the record's provenance. "
             "\"not recorded\": the record predates these counts.", "",
             "| model | n | training tokens seen | sequences seen | plan-only sequences seen | training wall time (min) "
             "| trained by |", "|---|---|---|---|---|---|---|"]
    for method, label in spec.methods.items():
        rows = runs[runs["method"] == method]
        curves = list(rows["curve"])
        if not curves:
            continue
        cells = [compute_cell(curves, key, 1, ",.0f") for key in ("train/tokens_seen", "train/sequences_seen",
                                                                   "train/plan_only_seen")]
        cells += [compute_cell(curves, "train/seconds", 60, ".1f"), trained_by(rows)]
        lines.append(f"| {label} | {len(curves)} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"

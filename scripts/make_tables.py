"""Turn run records into the paper's tables and figures, ours beside the paper's numbers.

    python scripts/make_tables.py                                   # every table and figure in results/
    python scripts/make_tables.py --experiment fig5b_traffic
    python scripts/make_tables.py --results runs/multirun/2026-11-21/10-00-00 --out /tmp/smoke
    python scripts/make_tables.py --experiment fig5b_traffic --wandb    # and push them to its W&B group
    python scripts/make_tables.py --no-calls                        # skip the call-count figure

For each experiment, mode and budget found in the records it writes `<out>/tables/<name>.md` and
`.csv` (mean ± s.e. over seeds, n, a Wilson 95% interval for success rates, the paper's value) and
`<out>/figures/<name>.png` (harness/figures.py): where the block's `figure:` names `x` and `y`, the
results figure (e.g. 1-Optimal with its interval against trace tokens, one point per row), with a
`training:` curve beside it as `<name>_training.png`; otherwise score per iteration and best so
far, one line per method, shaded ± s.e., the paper's points or curve in the method's colour.
`<name>` is the experiment for paper-mode records; smoke and quick tables are named
`<experiment>.<mode>` and labelled as such, and a mode with several budgets gets one table each
(harness/report.py). Records repeating one (task, method, seed, config) are refused. What to show
comes from the `table:` block of `configs/experiment/<experiment>.yaml` (or, if that file is gone,
the block saved in the newest record's config); a block with `tasks:` gets one row per task and
method, and its `rows_from: {experiment: [methods]}` takes those rows from another experiment's records
(runs of the same config, e.g. Table 5.4's step 0 is Table 5.3's Searchformer; tests/test_shared_rows.py
checks the configs agree), said under the table. A block may also ask for statistics (harness/stats.py):
`seed_interval: t` (a Student-t 95% interval over seeds beside the pooled Wilson one), `paired: [[a, b]]`
with `paired_metric:` (exact McNemar per seed on the same test tasks, and pooled), `samples/<mode>/
optimal_per_response` / `solved_per_response` columns (from the samples beside the records) and
`compute: true` (tokens, sequences and wall time each model's training took). Records without a `table:` block (an ad hoc sweep,
experiment `adhoc`) get a comparison table instead: every metric, one row per method and varied setting,
mean ± s.e. over seeds and paired differences over shared seeds (harness/comparison.py). With the default --results it also
counts Table 2's LLM calls per optimizer step (scripts/call_counts.py -> figures/textgrad_calls.png and .csv).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a clone without installing

from harness.comparison import write_comparison  # noqa: E402
from harness.figures import table_figures  # noqa: E402
from harness.records import load_records  # noqa: E402
from harness.selection import write_choice  # noqa: E402
from harness.stats import add_sample_metrics, compute_section, paired_comparisons, paired_section  # noqa: E402
from harness.report import (MODE_LABELS, TableSpec, budget_of, check_duplicates, summarize,  # noqa: E402
                            table_groups, table_name, warn)

DEFAULT_RESULTS = ROOT / "results"
# Graph sizes of the call-count figure (scripts/call_counts.py): chains of 1..32 operations, batches of 1..8.
CALL_COUNT_SIZES = {"max_chain": 32, "max_batch": 8}


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


def shared_note(shared: dict[str, list[str]], spec: TableSpec) -> str:
    """Which rows are another experiment's records (`rows_from`), said under the table."""
    lines = [f"Rows {', '.join(spec.methods.get(m, m) for m in methods)}: the records of experiment `{other}` "
             "(the same runs: this table evaluates those models in the same mode with the same config)."
             for other, methods in shared.items()]
    return "".join(f"\n{line}\n" for line in lines)


def by_task(records: pd.DataFrame) -> pd.DataFrame:
    """Rows per (task, method), for tables whose block lists `tasks:` (e.g. one row per maze size);
    paper values in such a block are keyed "<task>/<method>"."""
    return records.assign(method=records["task"] + "/" + records["method"])


def cell(row: pd.Series, fmt: str, median: bool = False, seed_interval: bool = False) -> str:
    if row["n"] == 0:
        text = "–"
    elif np.isnan(row["sem"]):
        text = format(row["mean"], fmt)
    else:
        text = f"{format(row['mean'], fmt)} ± {format(row['sem'], fmt)}"
    if seed_interval and row["n"] and not np.isnan(row["t_low"]):
        text += f" t95 [{format(row['t_low'], fmt)}, {format(row['t_high'], fmt)}]"
    if row["n"] and not np.isnan(row["ci_low"]):
        text += f" {'Wilson ' * seed_interval}[{row['ci_low']:.1f}, {row['ci_high']:.1f}]"
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
    rates, paper = summary["ci_low"].notna().any(), summary["paper"].notna().any()
    empty = (summary.groupby("method")["n"].max() == 0).any()
    parts = ["Mean ± s.e. over seeds (n records per row)",
             "t95 [low, high]: the Student-t 95% interval of the mean over seeds (n − 1 degrees of freedom, "
             "n ≥ 2; not clipped to the metric's range)" if spec.seed_interval else "",
             ("Wilson [low, high]: a success rate's Wilson 95% interval pooled over all test tasks of the row's "
              "records (every seed's tasks as one sample)" if spec.seed_interval else
              "success rates add a Wilson 95% interval [low, high] over all test tasks of the row") if rates else "",
             "the paper's value follows ours as (paper x)" if paper else ""]
    lines = [f"# {title}", "",
             f"{where}; records in `{source}`. " + "; ".join(p for p in parts if p) + "."
             + (" The LLM column says what answered each method's LLM calls; \"not run here\" rows have "
                "no records yet." if show_llm else " Rows with n = 0 have no records yet." if empty else ""), "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for method, label in spec.methods.items():
        rows = summary[summary["method"] == method]
        n = int(rows["n"].max()) if len(rows) else 0
        cells = [cell(rows[rows["metric"] == metric].iloc[0], spec.formats.get(metric, spec.fmt),
                      metric in spec.medians, bool(spec.seed_interval)) for metric in spec.columns]
        llm = [llm_by_method.get(method, "not run here")] if show_llm else []
        lines.append("| " + " | ".join([label, str(n), *llm, *cells]) + " |")
    if unlisted:
        lines += ["", "Records with no row in this table: " +
                  ", ".join(f"`{m}` ({k})" for m, k in sorted(unlisted.items())) + "."]
    return "\n".join(lines) + "\n"


def spending_note(runs: pd.DataFrame, spec: TableSpec) -> str:
    """What each method's LLMs spent, per role (the records' `llm/<role>/*` totals): mean requests
    and tokens per record, and requests per step of the run's loop. Methods spend very different
    budgets (k candidates per step, GEPA's reflections, DSPy's student rollouts), so a score is
    read beside its cost. Empty when no record counts roles."""
    roles = sorted({c.split("/")[1] for c in runs.columns if c.startswith("llm/") and c.endswith("/requests")})
    if not roles:
        return ""
    lines = ["", "## LLM requests and tokens per run", "",
             "Means over each row's records. Requests include replies served from the response cache (a replayed "
             "run counts the same); per step = requests / `train/steps` (the loop's evaluations; a DSPy row "
             "compiles inside its one evaluation).", "",
             "| method | role | requests | prompt tokens | completion tokens | requests per step |", "|---|---|---|---|---|---|"]
    for method, label in spec.methods.items():
        rows = runs[runs["method"] == method]
        spent = {role: [rows[f"llm/{role}/{k}"].dropna() for k in ("requests", "prompt_tokens", "completion_tokens")]
                 for role in roles if f"llm/{role}/requests" in rows and rows[f"llm/{role}/requests"].notna().any()}
        if not spent:
            continue
        steps = rows["train/steps"].mean() if "train/steps" in rows else float("nan")
        total = [sum(v[i].mean() for v in spent.values()) for i in range(3)]
        for role, values in [*spent.items(), *([("all roles", None)] if len(spent) > 1 else [])]:
            means = total if values is None else [v.mean() for v in values]
            per_step = f"{means[0] / steps:.1f}" if steps and steps == steps else "–"
            lines.append(f"| {label} | {role} | {means[0]:.0f} | {means[1]:.0f} | {means[2]:.0f} | {per_step} |")
    return "\n".join(lines) + "\n"


def make(results: Path, out: Path, configs: Path, experiments: list[str] | None = None) -> list[Path]:
    """Write the tables and figures, one set per (experiment, mode, budget); returns the paths written."""
    unreadable: list[str] = []
    records = load_records(results, skipped=unreadable)
    if unreadable:  # one damaged file must not hide every other table: build the rest and name it
        warn(f"skipped {len(unreadable)} unreadable record{'s' * (len(unreadable) > 1)}: {', '.join(unreadable)} "
             f"(move aside or rerun their jobs)")
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
        if block is None:  # e.g. an ad hoc sweep: every metric, method by method, paired over seeds
            source = os.path.relpath(results.resolve(), ROOT)
            written += write_comparison(runs, table_name(experiment, mode, budget), experiment, mode, source, out)
            continue
        runs, shared = with_shared_rows(records, runs, block, mode, budget)
        written += write_table(runs, block, experiment, mode, budget, results, out, shared)
    return written


def with_shared_rows(records: pd.DataFrame, runs: pd.DataFrame, block: dict[str, Any], mode: str,
                     budget: str | None) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The table's records plus the rows its block's `rows_from: {experiment: [methods]}` takes from
    another experiment's records of the same mode and budget: runs that experiment already made
    under the same config (Table 5.4's step-0 Searchformer and Dualformer are Table 5.3's auto-mode
    runs), read rather than computed a second time. Only the tasks this table covers are taken (its
    `tasks`, else those of its own records): Table 5.3's Sokoban rows stay out of the mazes-only 5.4.
    Returns them and {experiment: methods taken}."""
    shared: dict[str, list[str]] = {}
    tasks = set(block.get("tasks") or runs["task"])
    for other, methods in (block.get("rows_from") or {}).items():
        if other not in set(records["experiment"]):
            raise SystemExit(f"error: rows_from names experiment {other!r}, which has no records here")
        rows = records[(records["experiment"] == other) & (records["mode"] == mode)
                       & records["method"].isin(methods) & records["task"].isin(tasks)]
        rows = rows[[budget_of(c) == budget for c in rows["config"]]] if budget is not None else rows
        runs, shared[other] = pd.concat([runs, rows]), list(methods)
    return runs, shared


def write_table(runs: pd.DataFrame, block: dict[str, Any], experiment: str, mode: str, budget: str | None,
                results: Path, out: Path, shared: dict[str, list[str]] | None = None) -> list[Path]:
    written = write_one_table(runs, block, experiment, mode, budget, results, out, shared)
    rules = {json.dumps(c.get("selection"), sort_keys=True) for c in runs["config"] if c.get("selection")}
    if len(rules) > 1:
        raise SystemExit(f"error: the records of {experiment} ran under {len(rules)} different `selection:` rules; "
                         f"a choice needs one (move the older records aside)")
    if rules:  # a setting chosen by the rule the runs carry (harness/selection.py), under the table
        name = table_name(experiment, mode, budget)
        title = block["title"] if mode == "paper" else f"{mode.upper()}: {block['title']}"
        try:
            written += write_choice(runs, json.loads(rules.pop()), title, written[0],
                                    out / "figures" / f"{name}_choice.png", f"configs/experiment/{experiment}.yaml")
        except ValueError as bad:  # the records contradict the rule: one line, not a traceback
            raise SystemExit(f"error: {experiment}: {bad}") from None
    return written


def write_one_table(runs: pd.DataFrame, block: dict[str, Any], experiment: str, mode: str, budget: str | None,
                    results: Path, out: Path, shared: dict[str, list[str]] | None = None) -> list[Path]:
    runs = hold_last_points(add_curve_metrics(add_sample_metrics(runs, block["columns"]), block), block)
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
                                                mode, budget, unlisted, show_llm) + protocol_note(runs)
                                       + shared_note(shared or {}, spec) + spending_note(runs, spec)
                                       + statistics_sections(runs, spec, name))
    summary.to_csv(tables / f"{name}.csv", index=False, float_format="%.4f")
    if mode != "paper":
        spec.title = f"{mode.upper()}: {spec.title}"  # the figure says it too
    figures = table_figures(runs, spec, out / "figures" / f"{name}.png")
    return [tables / f"{name}.md", tables / f"{name}.csv", *figures]


def statistics_sections(runs: pd.DataFrame, spec: TableSpec, name: str) -> str:
    """The sections a block asks for under its table (harness/stats.py): paired comparisons, compute."""
    text = ""
    if spec.paired:
        paired = paired_comparisons(runs, spec)
        for _, row in paired[paired["note"] != ""].iterrows():
            warn(f"{name}: {row['task'] + ', ' if row['task'] else ''}{row['comparison']}, seed {row['seed']}: "
                 f"{row['note']}")
        text += paired_section(paired, spec, runs)
    return text + (compute_section(runs, spec) if spec.compute else "")


def wants_calls(asked: bool | None, results: Path, experiments: list[str] | None) -> bool:
    """The call-count figure is no record's table: rebuilt with results/ (Table 2's companion), not
    with every sweep's tables, unless --calls / --no-calls says otherwise."""
    if asked is not None:
        return asked
    if experiments and "table2_textgrad" not in experiments:
        return False
    return Path(results).resolve() == DEFAULT_RESULTS.resolve()


def build_call_counts(figures: Path) -> list[Path]:
    """Table 2's companion: LLM calls per optimizer step against graph size, OptoPrime vs TextGrad."""
    spec = importlib.util.spec_from_file_location("call_counts", ROOT / "scripts" / "call_counts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write(figures, **CALL_COUNT_SIZES)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="folder of run records")
    parser.add_argument("--out", type=Path, default=None, help="where tables/ and figures/ go (default: --results)")
    parser.add_argument("--configs", type=Path, default=ROOT / "configs" / "experiment")
    parser.add_argument("--experiment", action="append", help="only these experiments (repeatable)")
    parser.add_argument("--wandb", action="store_true",
                        help="also push each table and figure to W&B, in its experiment's group (offline "
                             "unless WANDB_MODE=online; files under <out>/wandb/)")
    parser.add_argument("--calls", action=argparse.BooleanOptionalAction, default=None,
                        help="also count Table 2's LLM calls per step at a loopback server (figures/textgrad_calls"
                             ".png and .csv); default: with the default --results, unless --experiment leaves "
                             "table2_textgrad out")
    args = parser.parse_args(argv)
    out = args.out or args.results
    written = make(args.results, out, args.configs, args.experiment)
    calls = build_call_counts(out / "figures") if wants_calls(args.calls, args.results, args.experiment) else []
    for path in written + calls:
        print(path)
    if args.wandb:
        from harness.wandb_tables import push_tables

        for name in push_tables(written, out):
            print(f"W&B: table {name}")


if __name__ == "__main__":
    main()

"""Choosing a setting by a rule written before the runs: the candidates' validation scores, the
choice, and a figure (issue 29: the Dualformer's trace-dropout p, `planning_dropout_selection`).

The rule is the experiment's `selection:` block, committed before any candidate is scored:

    selection:
      metric: "validation/{mode}/1_optimal_64"   # one metric per mode
      modes: [fast, slow, auto]
      tie_within: 1.0        # candidates this close to the best score are tied ...
      tie_break: min_mode    # ... and the tie goes to the best worst mode
      seeds: [42, 43, 44]    # no choice until every candidate has all of them
      p: {candidate: [p0, p1, p2, p3, p4], ...}   # the candidates, in order; the figure's x is p4

A candidate's score is the mean over seeds of the mean over modes. scripts/make_tables.py calls
`write_choice` for records whose config has `selection:`; the choice goes under their table.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.report import sem


@dataclass
class Choice:
    scores: pd.DataFrame   # one row per candidate: per-mode mean and s.e. over seeds, score, worst mode, seeds
    chosen: str | None     # None until the rule can be applied
    why: str               # the rule's outcome in words, or what it still waits for


def candidate_scores(runs: pd.DataFrame, rule: dict[str, Any]) -> pd.DataFrame:
    """Per candidate (rule order): each mode's mean and s.e. over seeds, the score, the worst mode."""
    rows = []
    for candidate, p in rule["p"].items():
        mine = runs[runs["method"].str.split("/").str[-1] == candidate]
        check_p(candidate, p, mine)
        columns = {mode: rule["metric"].format(mode=mode) for mode in rule["modes"]}
        by_seed = pd.DataFrame({mode: pd.to_numeric(mine[key], errors="coerce").to_numpy() if key in mine
                                else np.full(len(mine), np.nan) for mode, key in columns.items()},
                               index=mine["seed"].to_numpy(), dtype=float)
        complete = by_seed.dropna()
        row = {"candidate": candidate, "p": list(p), "p4": float(p[-1]), "seeds": sorted(int(s) for s in complete.index)}
        for mode in rule["modes"]:
            row[mode], row[f"{mode}_sem"] = complete[mode].mean() if len(complete) else np.nan, sem(complete[mode])
        row["score"] = complete.mean(axis=1).mean() if len(complete) else np.nan
        row["worst_mode"] = min((row[mode] for mode in rule["modes"]), default=np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def check_p(candidate: str, p: list[float], mine: pd.DataFrame) -> None:
    """The rule's `p:` only describes the candidates; the records say what ran. They must agree, or the
    table and the figure would print a p no model was trained with (a model config edited later)."""
    ran = {tuple(float(v) for v in c["model"]["dropout"]["p"]) for c in mine.get("config", [])
           if isinstance(c, dict) and (c.get("model") or {}).get("dropout")}
    for vector in ran - {tuple(float(v) for v in p)}:
        raise ValueError(f"{candidate}'s records ran with p = ({', '.join(f'{v:g}' for v in vector)}), but the "
                         f"rule says ({', '.join(f'{v:g}' for v in p)}): the candidate's model config changed "
                         f"after the rule was written")


def choose(runs: pd.DataFrame, rule: dict[str, Any]) -> Choice:
    scores = candidate_scores(runs, rule)
    wanted = sorted(int(s) for s in rule["seeds"])
    missing = {row.candidate: sorted(set(wanted) - set(row.seeds)) for row in scores.itertuples()
               if set(wanted) - set(row.seeds)}
    if missing:
        waits = "; ".join(f"{c} lacks seed(s) {', '.join(map(str, s))}" for c, s in missing.items())
        return Choice(scores, None, f"not chosen yet: the rule needs seeds {', '.join(map(str, wanted))} "
                                    f"of every candidate ({waits})")
    best = scores["score"].max()
    tied = scores[scores["score"] >= best - float(rule["tie_within"])]
    if len(tied) == 1:
        chosen = tied.iloc[0]
        why = f"the highest score, {chosen.score:.1f}, more than {rule['tie_within']} points above the next"
    else:
        if rule.get("tie_break") != "min_mode":
            raise ValueError(f"selection.tie_break must be min_mode, got {rule.get('tie_break')!r}")
        chosen = tied.loc[tied["worst_mode"].idxmax()]  # first in rule order among equals
        why = (f"{len(tied)} candidates within {rule['tie_within']} points of the best score ({best:.1f}); "
               f"of those, the best worst mode ({chosen.worst_mode:.1f})")
    return Choice(scores, str(chosen.candidate), why)


def choice_markdown(choice: Choice, rule: dict[str, Any], source: str) -> str:
    modes = rule["modes"]
    metric = rule["metric"].format(mode="<mode>")
    lines = ["", "## The choice", "",
             f"Rule (the `selection:` block of {source}, committed before any candidate was scored): the "
             f"score is the mean over seeds {', '.join(map(str, rule['seeds']))} of the mean over modes "
             f"({', '.join(modes)}) of `{metric}`; candidates within {rule['tie_within']} points of the best "
             f"are tied, and a tie goes to the best worst mode. Mean ± s.e. over seeds.", "",
             "| candidate | p | " + " | ".join(modes) + " | score | worst mode | seeds |",
             "|---|---|" + "---|" * len(modes) + "---|---|---|"]
    for row in choice.scores.itertuples():
        cells = [f"{getattr(row, m):.1f} ± {getattr(row, f'{m}_sem'):.1f}" if np.isfinite(getattr(row, m)) else "–"
                 for m in modes]
        mark = " **(chosen)**" if row.candidate == choice.chosen else ""
        score = f"{row.score:.1f}" if np.isfinite(row.score) else "–"
        worst = f"{row.worst_mode:.1f}" if np.isfinite(row.worst_mode) else "–"
        lines.append(f"| {row.candidate}{mark} | ({', '.join(f'{v:g}' for v in row.p)}) | " + " | ".join(cells)
                     + f" | {score} | {worst} | {', '.join(map(str, row.seeds)) or 'none'} |")
    verdict = f"Chosen: **{choice.chosen}**: {choice.why}." if choice.chosen else f"{choice.why[0].upper()}{choice.why[1:]}."
    return "\n".join(lines + ["", verdict, ""])


def choice_figure(choice: Choice, rule: dict[str, Any], path: Path, title: str) -> Path:
    """Validation score per mode (mean ± s.e. over seeds) against p4, the score dashed, the choice marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = choice.scores.sort_values("p4")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    shift = 0.006 * (scores["p4"].max() - scores["p4"].min() or 1)  # modes side by side: equal values stay visible
    for i, mode in enumerate(rule["modes"]):
        ax.errorbar(scores["p4"] + (i - (len(rule["modes"]) - 1) / 2) * shift, scores[mode], yerr=scores[f"{mode}_sem"],
                    marker="o", capsize=3, label=f"{mode} (± s.e. over seeds)")
    ax.plot(scores["p4"], scores["score"], "k--", marker="s", label="score (mean of modes)")
    if choice.chosen:
        chosen = scores[scores["candidate"] == choice.chosen].iloc[0]
        ax.axvline(chosen.p4, color="grey", alpha=0.4, linewidth=6, label=f"chosen: {choice.chosen}")
    ax.set_xlabel("p4 (share of plan-only training sequences)")
    ax.set_ylabel(rule["metric"].format(mode="<mode>") + " (%)")
    ax.set_title(textwrap.fill(title if choice.chosen else f"{title} ({choice.why})", 90), fontsize=7)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, metadata={"Software": None})  # no version stamp: a rerun leaves git clean
    plt.close(fig)
    return path


def write_choice(runs: pd.DataFrame, rule: dict[str, Any], title: str, table: Path, figure: Path,
                 source: str) -> list[Path]:
    """Append the choice to the table's markdown and draw its figure. `rule`: the `selection:`
    block the records ran under (their config carries it, so the choice is the runs' own rule)."""
    choice = choose(runs, rule)
    with table.open("a") as out:
        out.write(choice_markdown(choice, rule, source))
    return [choice_figure(choice, rule, figure, title)]

"""Ad hoc comparisons are first class (issue 25, defect 6): a sweep without an experiment file resumes
when given a results_dir, and make_tables.py builds a comparison table of its records (method x
metric, mean ± s.e. over seeds, paired differences where seeds match) instead of writing nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.comparison import comparison, paired
from support import ROOT


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
    env.pop("HARNESS_SWEEP_LOG", None)
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def sweep(tmp_path: Path, results: Path, name: str) -> subprocess.CompletedProcess:
    return cli("-m", "harness.optimize", "-m", "task=numeric", "optimizer=pso,gp", "seed=43,44", "task.limit=3",
               "logger=none", f"results_dir={results}", f"hydra.sweep.dir={tmp_path / name}", cwd=tmp_path)


def created(results: Path) -> dict[str, str]:
    return {p.name: json.loads(p.read_text())["created"] for p in results.glob("*__seed*.json")}


@pytest.fixture(scope="module")
def adhoc(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    tmp_path = tmp_path_factory.mktemp("adhoc")
    results = tmp_path / "results"
    sweep(tmp_path, results, "first")
    return tmp_path, results, sweep(tmp_path, results, "again")


def test_an_adhoc_sweep_resumes_from_its_results_dir(adhoc):
    tmp_path, results, again = adhoc
    before = created(results)
    assert len(before) == 4
    assert "4 skipped" in again.stdout + again.stderr, "the second sweep found every record"
    assert created(results) == before


def test_make_tables_builds_a_comparison_of_an_adhoc_sweep(adhoc):
    tmp_path, results, _ = adhoc
    out = tmp_path / "out"
    printed = cli(str(ROOT / "scripts" / "make_tables.py"), "--results", str(results), "--out", str(out), cwd=tmp_path)
    table = (out / "tables" / "adhoc.md").read_text()
    assert str(out / "tables" / "adhoc.md") in printed.stdout
    assert "| gp | 2 |" in table and "| pso | 2 |" in table and " ± " in table
    assert "train/best_score" in table and "test/" in table
    assert "paired over seeds 43, 44" in table
    csv = pd.read_csv(out / "tables" / "adhoc.csv")
    assert set(csv["method"]) == {"gp", "pso"} and {"mean", "sem", "n"} <= set(csv.columns)


def records_frame(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"task": "t", "method": m, "seed": s, "config": {"seed": s, "optimizer": {"m": m}},
                          "train/best_score": v} for m, s, v in rows])


def test_paired_differences_use_only_the_seeds_both_ran():
    frame = records_frame([("a", 1, 1.0), ("a", 2, 2.0), ("a", 3, 9.0), ("b", 1, 2.0), ("b", 2, 4.0)])
    [row] = paired(comparison(frame), "a").to_dict("records")
    assert row["row"] == "b" and row["seeds"] == [1, 2]
    assert row["mean"] == pytest.approx(1.5) and row["sem"] == pytest.approx(0.5)


def test_settings_a_sweep_varies_are_separate_rows():
    frame = pd.DataFrame([{"task": "t", "method": "pso", "seed": s, "train/best_score": float(s),
                           "config": {"seed": s, "optimizer": {"w": w, "seed": s}}} for s in (1, 2) for w in (0.5, 1.0)])
    rows = comparison(frame)
    assert sorted(rows["row"].unique()) == ["pso (optimizer.w=0.5)", "pso (optimizer.w=1.0)"]

"""Ordinary mistakes, typed as a user types them: one `error:` line, exit status 2, nothing written.

No flag the user would not type is added (no `progress=false`, no `logger=none`): the environment is
CI's own (`WANDB_MODE=offline` or whatever the caller set), so the defaults are the ones users meet.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT


def run(entry: str, *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT,
        timeout: int = 180) -> subprocess.CompletedProcess:
    flags = [a for a in args if a.startswith("-")]  # Hydra wants flags before overrides
    return subprocess.run([sys.executable, "-m", entry, *flags, *[a for a in args if not a.startswith("-")]],
                          cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def assert_one_error_line(result: subprocess.CompletedProcess, says: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr[-3000:]


def written(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# Root keys, `llm.*` request parameters and step counts are typed: a wrong value is refused by name.
@pytest.mark.parametrize("entry, overrides, says", [
    ("harness.optimize", "optimizer=scats skip_done=maybe", "skip_done: expected a bool (true/false), got 'maybe'"),
    ("harness.optimize", "optimizer=scats progress=maybe", "progress: expected auto, true or false, got 'maybe'"),
    ("harness.optimize", "optimizer=scats log_every=-1", "log_every must be >= 0, got -1"),
    ("harness.optimize", "experiment=fig5a_numeric optimizer=optoprime llm=openai llm.temperature=hot",
     "llm.temperature: expected a number, got 'hot'"),
    ("harness.optimize", "experiment=fig5a_numeric optimizer=optoprime llm=openai +llm.max_tokens=0",
     "llm.max_tokens must be >= 1, got 0"),
    ("harness.train", "task=maze7 model=dualformer model.train.steps=-1", "model.train.steps must be >= 1, got -1"),
    ("harness.train", "task=maze7 model=dualformer log_every=abc", "log_every: expected an integer, got 'abc'"),
    ("harness.optimize", "optimizer=optoprime task=numeric llm=scripted optimizer.optimizer.prompt_file=/nonexistent.txt",
     "optimizer.prompt_file: /nonexistent.txt is not a file"),
    ("harness.optimize", "-m optimizer=scats hydra/launcher=joblib hydra.launcher.n_jobs=0",
     "hydra.launcher.n_jobs must be >= 1, or -1 for all cores, got 0"),
])
def test_a_wrong_value_is_one_error_line_and_nothing_is_written(entry, overrides, says, tmp_path):
    result = run(entry, *overrides.split(), f"results_dir={tmp_path / 'results'}",
                 f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert_one_error_line(result, says)
    assert not written(tmp_path / "results"), "nothing reaches results/"


@pytest.mark.parametrize("variable, value, says", [
    ("WANDB_MODE", "bogus", "WANDB_MODE: 'bogus' is not one of online, offline, disabled"),
    ("TRACE_LLM_CACHE", "/etc/hostname/cache.sqlite", "llm.cache_path: cannot write /etc/hostname/cache.sqlite"),
])
def test_a_wrong_environment_variable_is_one_error_line(variable, value, says, tmp_path):
    overrides = ["optimizer=scats"] if variable == "WANDB_MODE" else [
        "experiment=fig5a_numeric", "optimizer=optoprime", "llm=openai"]
    result = run("harness.optimize", *overrides, f"results_dir={tmp_path / 'results'}",
                 f"hydra.run.dir={tmp_path / 'run'}", env={variable: value})
    assert_one_error_line(result, says)
    assert not written(tmp_path / "results")


def test_a_truncated_record_is_named_with_what_to_do(tmp_path):
    """A record cut short (a full disk, a copy interrupted) blocks its run with one line, not a traceback."""
    results = tmp_path / "results"
    args = ["optimizer=scats", "task.limit=1", f"results_dir={results}", f"hydra.run.dir={tmp_path / 'run'}"]
    assert run("harness.optimize", *args).returncode == 0
    [record] = results.glob("*.json")
    record.write_text(record.read_text()[:200])
    result = run("harness.optimize", *args)
    assert_one_error_line(result, f"{record}: not a readable run record")
    assert "move it aside" in result.stderr


def test_a_corrupted_llm_cache_is_named_with_what_to_do(tmp_path):
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(b"this is not an SQLite file" * 100)
    result = run("harness.optimize", "experiment=fig5a_numeric", "optimizer=optoprime", "llm=openai",
                 f"llm.cache_path={cache}", f"results_dir={tmp_path / 'results'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_error_line(result, f"llm.cache_path: {cache} is not a readable response cache")
    assert "move it aside" in result.stderr
    assert not written(tmp_path / "results")


def test_make_tables_skips_and_lists_an_unreadable_record(tmp_path):
    results = tmp_path / "results"
    assert run("harness.optimize", "-m", "experiment=fig5b_traffic", "mode=smoke", "optimizer=scats", "seed=42,43",
               f"results_dir={results}", f"hydra.sweep.dir={tmp_path / 'sweep'}").returncode == 0
    assert len(list(results.glob("*.json"))) > 1
    broken = sorted(results.glob("*.json"))[0]
    broken.write_text("{\"experiment\": ")
    tables = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_tables.py"), "--results", str(results),
                             "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert tables.returncode == 0, tables.stderr[-3000:]
    assert f"skipped 1 unreadable record: {broken}" in tables.stderr, tables.stderr[-3000:]
    assert list((tmp_path / "out" / "tables").glob("*.md")), "the other records still make a table"


def test_a_cache_file_that_is_sqlite_still_opens(tmp_path):
    """The check for a corrupted cache does not refuse an ordinary (empty or new) cache file."""
    cache = tmp_path / "cache.sqlite"
    sqlite3.connect(cache).close()
    from trace_core.llm.cache import open_cache

    db = open_cache(cache)
    assert db.execute("SELECT count(*) FROM completions").fetchone() == (0,)
    db.close()

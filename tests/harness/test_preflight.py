"""Check before work (issue 25, defect 2): a run whose method talks to an LLM checks the key, the
endpoint, the served model (or the replay cache) before its first evaluation, in one `error:` line
with nothing written; a run that made no LLM call says so and names no model as having answered.

Fig. 5a's problem 42 (the default seed) is solved at its start value: that run asks nothing, so only
a check before work can tell that its LLM was never there. Runs go through the command line, as a
user's do, against a real HTTP server on 127.0.0.1 (tests/fake_openai.py).
"""
from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fake_openai import serving
from harness.records import load_records
from support import ROOT

MODEL = "loopback-model"


def optimize(tmp_path: Path, *extra: str, multirun: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled", **(env or {})}
    environment.pop("HARNESS_SWEEP_LOG", None)
    command = [sys.executable, "-m", "harness.optimize", *(["-m"] if multirun else []), "experiment=fig5a_numeric",
               "optimizer=optoprime", "logger=none", f"results_dir={tmp_path / 'results'}",
               f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
               f"llm.cache_path={tmp_path / 'cache.sqlite'}", "seed=42", *extra]
    return subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)


def refused(result: subprocess.CompletedProcess, tmp_path: Path, *words: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert all(word in lines[0] for word in words), lines[0]
    written = list((tmp_path / "results").glob("*")) if (tmp_path / "results").exists() else []
    assert written == [], "nothing is written to the results folder"
    assert not (tmp_path / "cache.sqlite").exists(), "no cache file is created"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_no_key_for_openai_is_one_line_before_any_work(tmp_path):
    result = optimize(tmp_path, env={"OPENAI_API_KEY": ""})
    refused(result, tmp_path, "OPENAI_API_KEY")


def test_a_named_key_variable_that_is_unset_is_one_line(tmp_path):
    with serving(models=[MODEL]) as server:
        result = optimize(tmp_path, f"llm.base_url={server.url}", f"llm.model={MODEL}", "llm.api_key_env=MY_HOST_KEY",
                          env={"MY_HOST_KEY": ""})
    refused(result, tmp_path, "MY_HOST_KEY")


@pytest.mark.parametrize("multirun", [False, True])
def test_an_endpoint_that_does_not_answer_is_one_line(tmp_path, multirun):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = optimize(tmp_path, f"llm.base_url={url}", f"llm.model={MODEL}", multirun=multirun)
    refused(result, tmp_path, url, "does not answer")


def test_a_model_the_endpoint_does_not_serve_is_one_line(tmp_path):
    with serving(models=["another-model"]) as server:
        result = optimize(tmp_path, f"llm.base_url={server.url}", f"llm.model={MODEL}")
    refused(result, tmp_path, MODEL, "another-model")


def test_a_replay_without_its_cache_file_is_one_line(tmp_path):
    refused(optimize(tmp_path, "llm=replay", f"llm.model={MODEL}"), tmp_path, "cache.sqlite", "does not exist")


def test_a_replay_from_a_cache_without_this_model_is_one_line(tmp_path):
    cache = tmp_path / "other" / "cache.sqlite"
    cache.parent.mkdir()
    with sqlite3.connect(cache) as db:  # a cache with one reply of another model
        db.execute("CREATE TABLE completions (key TEXT PRIMARY KEY, model TEXT NOT NULL, endpoint TEXT)")
        db.execute("INSERT INTO completions VALUES ('k', 'another-model', '')")
    result = optimize(tmp_path, "llm=replay", f"llm.model={MODEL}", f"llm.cache_path={cache}")
    assert result.returncode == 2 and result.stderr.startswith("error: ") and MODEL in result.stderr
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").glob("*"))


def test_a_run_that_asked_nothing_says_so_and_names_no_model(tmp_path):
    with serving(models=[MODEL]) as server:
        result = optimize(tmp_path, f"llm.base_url={server.url}", f"llm.model={MODEL}")
        assert result.returncode == 0, result.stderr[-2000:]
        assert server.seen == 0, "problem 42 is solved at its start: no request"
    [row] = load_records(tmp_path / "results").to_dict("records")
    assert row["cost/llm_calls"] == 0 and row["cost/llm_models"] == ""
    assert row["llm"] == "0 LLM calls" and MODEL not in row["llm"]


def test_a_finished_run_is_skipped_without_asking_its_endpoint(tmp_path):
    """skip_done returns the record of a finished run: it evaluates nothing, so nothing is checked."""
    with serving(models=[MODEL]) as server:
        assert optimize(tmp_path, f"llm.base_url={server.url}", f"llm.model={MODEL}").returncode == 0
    gone = optimize(tmp_path, f"llm.base_url={server.url}", f"llm.model={MODEL}")  # the server has stopped
    assert gone.returncode == 0 and "skipping" in gone.stdout + gone.stderr, gone.stderr[-2000:]

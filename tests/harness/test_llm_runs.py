"""Whole runs against a real OpenAI-compatible server on loopback: record, replay, and failure."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

from fake_openai import serving
from harness.optimize import run
from support import DATA, ROOT, compose_run
from toys import nudge

BASE = [f"hydra.searchpath=[file://{DATA / 'configs'}]", "task=traced_line", "optimizer=optoprime",
        "logger=none", "progress=false", "llm.backoff_s=0.01", "llm.model=loopback-model"]


def without_llm_keys(curve):
    return [{k: v for k, v in point.items() if not k.startswith("llm/")} for point in curve]


def test_replay_reruns_a_recorded_run_exactly_without_any_call(tmp_path):
    cache = tmp_path / "cache.sqlite"
    with serving(responder=nudge) as server:
        recorded = run(compose_run("optimize", BASE + ["llm=openai", f"llm.base_url={server.url}",
                                                      f"llm.cache_path={cache}"], tmp_path / "a"))
        # One call per proposal that is evaluated: none after the tenth (last) evaluation.
        assert server.seen == recorded.cost.llm_calls == len(recorded.curve) - 1 == 9
        assert recorded.cost.prompt_tokens == 9 * 11 and 0 < recorded.cost.llm_seconds < recorded.cost.seconds
        assert recorded.cost.llm_models == "loopback-model x9"
        prompts = [body["messages"][-1]["content"] for body in server.bodies]
    assert "#Code\n" in prompts[0] and "= multiply(x=x" in prompts[0], "the prompt shows the traced graph"
    assert recorded.metrics["test/x"] == 3

    # The server is gone: every reply must come from the cache (keyed on the endpoint it came from).
    replayed = run(compose_run("optimize", BASE + ["llm=replay", f"llm.base_url={server.url}",
                                                  f"llm.cache_path={cache}"], tmp_path / "b"))
    assert replayed.metrics == recorded.metrics
    assert without_llm_keys(replayed.curve) == without_llm_keys(recorded.curve)
    assert replayed.cost.llm_calls == 0 and replayed.cost.cache_hits == 9
    assert replayed.curve == recorded.curve, "replayed steps log the tokens the original calls used"


def test_an_endpoint_that_dies_mid_run_ends_with_one_line_and_keeps_what_was_written(tmp_path):
    cache, run_dir = tmp_path / "cache.sqlite", tmp_path / "run"
    with serving(responder=nudge) as server:
        server.script = ["ok"] * 3 + ["500"] * 50
        result = subprocess.run(
            [sys.executable, "-m", "harness.optimize", *BASE, "llm=openai", f"llm.base_url={server.url}",
             "llm.max_retries=2", f"llm.cache_path={cache}", f"hydra.run.dir={run_dir}"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT / "tests"), "WANDB_MODE": "disabled"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: LLM request failed") and "status=500" in lines[-1]
    assert all(not line.startswith("Traceback") for line in lines)
    journal = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert len(journal) == 4, "the evaluations before the failure are journaled"
    with sqlite3.connect(cache) as db:
        assert db.execute("select count(*) from completions").fetchone()[0] == 3, "and their replies cached"

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


DUMMY_KEY = "sk-dummy-7f3a9c2e41b5d8e6"


def optimize_cli(args, run_dir, env):
    return subprocess.run([sys.executable, "-m", "harness.optimize", *args, f"hydra.run.dir={run_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "tests"), **env})


def test_a_key_never_reaches_a_record_cache_log_hydra_folder_or_wandb_file(tmp_path):
    env = {"LOOPBACK_KEY": DUMMY_KEY, "OPENAI_API_KEY": DUMMY_KEY, "WANDB_MODE": "offline"}
    common = [f"hydra.searchpath=[file://{DATA / 'configs'}]", "task=traced_line", "optimizer=optoprime",
              "progress=false", "llm.model=loopback-model", "llm=openai", f"llm.cache_path={tmp_path / 'c.sqlite'}",
              "task.limit=3"]
    with serving(responder=nudge) as server:
        keyed = common + [f"llm.base_url={server.url}", "llm.api_key_env=LOOPBACK_KEY"]
        done = optimize_cli(keyed + ["logger=wandb"], tmp_path / "ok", env)
        assert done.returncode == 0, done.stderr[-2000:]
        assert server.headers[0]["Authorization"] == f"Bearer {DUMMY_KEY}", "it went where it was named for"
        server.script = ["echo_key"]  # a server that quotes the key back in its error
        failed = optimize_cli(keyed + ["logger=none", "llm.cache_mode=refresh"], tmp_path / "echo", env)
        assert failed.returncode == 2 and "Incorrect API key" in failed.stderr
        unkeyed = optimize_cli(common + [f"llm.base_url={server.url}", "logger=none", "llm.cache_mode=refresh"],
                               tmp_path / "unkeyed", env)
        assert unkeyed.returncode == 0 and server.headers[-1]["Authorization"] == "Bearer not-needed"
    refused = optimize_cli(common + ["logger=none", f"+llm.api_key={DUMMY_KEY}"], tmp_path / "refused", env)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].startswith("error: refusing llm.api_key=...")
    assert "llm.api_key_env" in refused.stderr and not (tmp_path / "refused").exists()

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any("wandb" in str(p) for p in files) and any(p.name == "overrides.yaml" for p in files)
    for path in files:
        assert DUMMY_KEY not in str(path) and DUMMY_KEY.encode() not in path.read_bytes(), path
    for output in (done, failed, unkeyed, refused):
        assert DUMMY_KEY not in output.stdout + output.stderr


def test_a_replay_records_in_its_own_folder_and_says_whether_it_matches_the_original(tmp_path):
    cache, results = tmp_path / "cache.sqlite", tmp_path / "results"
    with serving(responder=nudge) as server:
        llm = ["llm=openai", f"llm.base_url={server.url}", f"llm.cache_path={cache}", f"results_dir={results}"]
        recorded = run(compose_run("optimize", BASE + llm, tmp_path / "a"))
    [original] = list(results.glob("*.json"))

    replay = [o.replace("llm=openai", "llm=replay") for o in llm]
    again = run(compose_run("optimize", BASE + replay, tmp_path / "b"))
    assert again.cost.llm_calls == 0 and again.cost.cache_hits == recorded.cost.llm_calls, "not skipped"
    assert list(results.glob("*.json")) == [original], "the results folder holds the original only"
    assert (tmp_path / "b" / original.name).exists()
    check = json.loads((tmp_path / "b" / "replay_check.json").read_text())
    assert check == {"original": str(original), "identical": True, "differences": {}}

    tampered = json.loads(original.read_text())
    tampered["metrics"]["test/x"] = 99
    original.write_text(json.dumps(tampered))
    run(compose_run("optimize", BASE + replay, tmp_path / "c"))
    check = json.loads((tmp_path / "c" / "replay_check.json").read_text())
    assert check["identical"] is False and check["differences"]["metrics/test/x"] == {"original": 99, "replay": 3}

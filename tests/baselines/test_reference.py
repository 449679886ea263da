"""The reference implementations (Microsoft's OptoPrime from trace-opt, textgrad's TGD) as methods:
the same numeric task, our LLM client against a real server on loopback, the cache and replay."""
from __future__ import annotations

import json
import re

import pytest

from baselines.reference import prepare_environment

prepare_environment()  # before the imports below: no network fetch, no ./logs/ folder
pytest.importorskip("opto", reason="the reference methods need trace-opt (pip install -e '.[reference]')")
pytest.importorskip("textgrad", reason="the reference methods need textgrad (pip install -e '.[reference]')")

from fake_openai import serving  # noqa: E402
from harness.api import ConfigError  # noqa: E402
from harness.optimize import run  # noqa: E402
from support import compose_run  # noqa: E402


def reference_endpoint(messages: list[dict]) -> str:
    """opto's OptoPrime: JSON with a suggestion for x0 one above its current value; textgrad:
    a gradient text, or an update in its tags, also one above."""
    system, user = messages[0]["content"], messages[-1]["content"]
    if "#Variables" in user or "#Variables" in system:
        current = float(re.search(r"\(float\) x0=(-?[\d.]+)", user).group(1))
        return json.dumps({"reasoning": "larger", "answer": "", "suggestion": {"x0": current + 1}})
    if "<IMPROVED_VARIABLE>" in user:
        current = float(re.findall(r"<VARIABLE> (-?[\d.]+) </VARIABLE>", user)[-1])
        return f"<IMPROVED_VARIABLE>{current + 1}</IMPROVED_VARIABLE>"
    return "Increase x: the output must be larger."


def overrides(method, url, cache, llm="llm=openai"):
    return ["task=numeric", "seed=0", f"optimizer={method}", "mode=smoke", llm, f"llm.base_url={url}",
            f"llm.cache_path={cache}", "llm.model=loopback-model", "llm.backoff_s=0.01", "logger=none",
            "progress=false"]


@pytest.mark.parametrize("method, calls_per_step", [("reference_optoprime", 1), ("reference_tgd", 2)])
def test_reference_methods_run_through_our_client_and_replay_from_the_cache(method, calls_per_step, tmp_path):
    cache = tmp_path / "cache.sqlite"
    with serving(responder=reference_endpoint) as server:
        url = server.url
        record = run(compose_run("optimize", overrides(method, url, cache), tmp_path / "a"))
        assert record.cost.llm_calls == server.seen == calls_per_step * len(record.curve)
    xs = [p["params"]["x"] for p in record.curve]
    assert xs == [-1.0, 0.0, 1.0], "each step applied the reference optimizer's update"
    # The server is gone; the replay names the same endpoint (part of every cache key) and needs none.
    again = run(compose_run("optimize", overrides(method, url, cache, "llm=replay"), tmp_path / "b"))
    assert [p["params"] for p in again.curve] == [p["params"] for p in record.curve]
    assert again.cost.llm_calls == 0 and again.cost.cache_hits == record.cost.llm_calls


def test_reference_methods_refuse_a_task_they_cannot_trace(run_dir):
    from hydra.utils import instantiate

    cfg = compose_run("optimize", ["task=traffic", "optimizer=reference_optoprime", "llm=scripted"], run_dir)
    with pytest.raises(ConfigError, match="workflow"):
        instantiate(cfg.optimizer)(task=instantiate(cfg.task))


def test_importing_textgrad_leaves_no_logs_folder_where_the_command_runs(tmp_path):
    import subprocess
    import sys

    from support import ROOT

    code = "from baselines.reference import _import; _import('textgrad')"
    env = {k: v for k, v in __import__("os").environ.items() if k != "TEXTGRAD_LOG_DIR"}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=300,
                   env={**env, "PYTHONPATH": str(ROOT)})
    assert not (tmp_path / "logs").exists()

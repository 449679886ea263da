"""Run logs stay readable: no line per HTTP request (httpx) unless the user asks for them."""
from __future__ import annotations

import os
import subprocess
import sys

from fake_openai import serving
from support import DATA, ROOT
from toys import nudge

BASE = [f"hydra.searchpath=[file://{DATA / 'configs'}]", "task=traced_line", "task.limit=3", "optimizer=optoprime",
        "logger=none", "progress=false", "llm=openai", "llm.backoff_s=0.01", "llm.model=loopback-model"]


def run_log(tmp_path, name: str, *extra: str) -> str:
    run_dir = tmp_path / name
    with serving(responder=nudge) as server:
        result = subprocess.run([sys.executable, "-m", "harness.optimize", *BASE, f"llm.base_url={server.url}",
                                 f"llm.cache_path={tmp_path / name}.sqlite", f"hydra.run.dir={run_dir}", *extra],
                                cwd=ROOT, capture_output=True, text=True, timeout=180,
                                env={**os.environ, "PYTHONPATH": str(ROOT / "tests"), "WANDB_MODE": "disabled"})
        assert result.returncode == 0, result.stderr[-2000:]
        assert server.seen >= 2
    return (run_dir / "optimize.log").read_text() + result.stdout


def test_http_requests_are_not_logged_one_line_each(tmp_path):
    log = run_log(tmp_path, "quiet")
    assert "HTTP Request:" not in log
    assert "traced_line__optoprime" in log, "the harness's own lines are still there"


def test_the_user_can_ask_for_them_back(tmp_path):
    log = run_log(tmp_path, "loud", "hydra.job_logging.loggers.httpx.level=INFO")
    assert "HTTP Request: POST" in log

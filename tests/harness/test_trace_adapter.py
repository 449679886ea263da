"""OptoPrime and OPRO inside the harness loop: records count LLM calls and tokens per step."""
from __future__ import annotations

import pytest
from hydra.utils import instantiate

from harness.api import ConfigError
from harness.optimize import run
from support import DATA, compose_run

SEARCH = f"hydra.searchpath=[file://{DATA / 'configs'}]"


@pytest.mark.parametrize("method", ["optoprime", "opro"])
def test_llm_optimizers_run_in_the_loop_and_record_their_cost(method, run_dir):
    cfg = compose_run("optimize", [SEARCH, "task=traced_line", f"optimizer={method}", "llm=scripted",
                                   "llm.responder=toys:nudge", "logger=none", "progress=false"], run_dir)
    record = run(cfg)
    assert record.metrics["test/x"] == 3 and record.metrics["train/best_score"] == 0
    steps = len(record.curve)
    assert steps == 10 and [p["score"] for p in record.curve[:5]] == [6, 4, 2, 0, 0]
    # One LLM call per proposal that is evaluated: none after the last evaluation.
    assert record.cost.llm_calls == steps - 1 and record.curve[0]["llm/prompt_tokens"] == 0
    assert record.cost.prompt_tokens == sum(p["llm/prompt_tokens"] for p in record.curve) > 0
    assert record.config["llm"]["_target_"] == "trace_core.llm.ScriptedLLM"


def test_trace_optimizers_refuse_untraced_tasks_and_missing_llms(run_dir):
    cfg = compose_run("optimize", [SEARCH, "task=parity", "optimizer=optoprime", "llm=scripted"], run_dir)
    with pytest.raises(ConfigError, match="not a traced task"):
        instantiate(cfg.optimizer)(task=instantiate(cfg.task))
    cfg = compose_run("optimize", [SEARCH, "task=traced_line", "optimizer=optoprime", "llm=none"], run_dir)
    with pytest.raises(ConfigError, match="llm=openai"):
        instantiate(cfg.optimizer)(task=instantiate(cfg.task))

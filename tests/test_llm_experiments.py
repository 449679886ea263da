"""The paper experiments' LLM methods against a real OpenAI-compatible server on loopback that
returns scripted completions: one call per step, the graph in the prompt (hidden when Masked),
and an exact replay from the cache with zero calls."""
from __future__ import annotations

import pytest

from fake_openai import serving
from harness.optimize import run
from support import compose_run
from toys import bump_first_variable

GRAPH_MARKERS = {"fig5b_traffic": "simulate_intersection(ew_green=ew0, ns_green=ns0)",
                 "fig5a_numeric": "(x=x0, y="}


def overrides(experiment, method, cache, llm):
    return [f"experiment={experiment}", "mode=smoke", f"optimizer={method}", llm, f"llm.cache_path={cache}",
            "logger=none", "progress=false", "llm.backoff_s=0.01", "llm.model=loopback-model",
            "seed=0"]  # fig5a: the paper's problem 0, which +1 steps from x = -1 do not solve in 3


@pytest.mark.parametrize("experiment", ["fig5b_traffic", "fig5a_numeric"])
def test_llm_methods_count_one_call_per_step_show_the_graph_and_replay_exactly(experiment, tmp_path):
    cache = tmp_path / "cache.sqlite"
    recorded = {}
    with serving(responder=bump_first_variable) as server:
        for method in ("optoprime", "trace_masked", "opro"):
            before = server.seen
            cfg = compose_run("optimize", overrides(experiment, method, cache, f"llm=openai")
                              + [f"llm.base_url={server.url}"], tmp_path / method)
            record = run(cfg)
            steps = len(record.curve)
            # One call per proposal that is evaluated: none after the last evaluation.
            assert steps == 3 and record.cost.llm_calls == steps - 1 == server.seen - before
            assert record.cost.prompt_tokens == 11 * (steps - 1)
            prompt = server.bodies[-1]["messages"][-1]["content"]
            if method == "optoprime":
                assert GRAPH_MARKERS[experiment] in prompt and "#Documentation\n[" in prompt
            elif method == "trace_masked":
                assert GRAPH_MARKERS[experiment] not in prompt
                assert "#Code\n\n#Documentation\n\n#Variables" in prompt
            else:  # OPRO never sees the graph, only (variables, feedback) pairs
                assert "#Code" not in prompt and '"variables"' in prompt
            assert len({str(p["params"]) for p in record.curve}) == 3, "each step applied an update"
            recorded[method] = record

    for method, first in recorded.items():  # the server is gone: only the cache can answer
        cfg = compose_run("optimize", overrides(experiment, method, cache, "llm=replay")
                          + [f"llm.base_url={server.url}"], tmp_path / f"re-{method}")
        again = run(cfg)
        assert again.metrics == first.metrics
        assert [p["params"] for p in again.curve] == [p["params"] for p in first.curve]
        assert [p["score"] for p in again.curve] == [p["score"] for p in first.curve]
        assert again.cost.llm_calls == 0 and again.cost.cache_hits == 2
        assert [p["llm/prompt_tokens"] for p in again.curve] == [p["llm/prompt_tokens"] for p in first.curve]

"""GEPA and MIPROv2 (real dspy) on Table 1's BBH program, against a real OpenAI-compatible server
on loopback that answers every DSPy request in the format it asks for: each compiles an
instruction that then answers the test split, every role's requests and tokens are in the
record, and `llm=replay` reruns the whole run without one request."""
from __future__ import annotations

import json

import pytest
import yaml

pytest.importorskip("dspy", reason="GEPA and MIPROv2 need dspy (pip install -e '.[bbh]')")

from dspy_doubles import dspy_reply, right_letter  # noqa: E402
from fake_openai import serving  # noqa: E402
from harness.api import ConfigError  # noqa: E402
from harness.optimize import run  # noqa: E402
from support import compose_run  # noqa: E402

INSTRUCTION = "Count the days forward and give the letter of the right option, in parentheses."


def endpoint(messages: list[dict]) -> str:
    """The reflection / prompt model proposes INSTRUCTION (and says something for every other field
    MIPROv2's proposer asks for); the student gives the right letter only under INSTRUCTION."""
    system, user = messages[0]["content"], messages[-1]["content"]
    if "new_instruction" in system or "proposed_instruction" in system or "answer" not in system.split(
            "Your output fields are:")[-1]:
        return dspy_reply(system, {"new_instruction": INSTRUCTION, "proposed_instruction": INSTRUCTION})
    letter = right_letter(user)
    return dspy_reply(system, {"answer": f"({letter})" if INSTRUCTION in system else "no idea",
                               "reasoning": "Count the days."})


def overrides(url: str, tmp_path, optimizer: str, *extra: str) -> list[str]:
    return ["task=bbh", "task.subtask=date_understanding", f"optimizer={optimizer}", "mode=smoke",
            "llm=openai", f"llm.base_url={url}", f"llm.cache_path={tmp_path / 'cache.sqlite'}",
            "llm.model=prompt-model", "task.student.model=student-model", "llm.max_retries=0",
            "logger=none", "progress=false", *extra]


def run_and_replay(tmp_path, optimizer: str, *extra: str):
    with serving(responder=endpoint) as server:
        record = run(compose_run("optimize", overrides(server.url, tmp_path, optimizer, *extra), tmp_path / "a"))
        seen = server.seen
        replayed = run(compose_run("optimize", [o.replace("llm=openai", "llm=replay") for o in
                                                overrides(server.url, tmp_path, optimizer, *extra)], tmp_path / "b"))
        assert server.seen == seen, "the replay asked nothing"
    return record, replayed, server


def assert_replayed(record, replayed, folder) -> None:
    """Zero calls, the same per-role requests and tokens, and a replay check that finds no difference."""
    assert replayed.cost.llm_calls == 0 and replayed.cost.cache_hits > 0
    assert {k: v for k, v in replayed.metrics.items() if k.startswith("llm/")} == \
        {k: v for k, v in record.metrics.items() if k.startswith("llm/")}
    assert json.loads((folder / "replay_check.json").read_text())["identical"] is True


def test_gepa_reflects_on_the_bbh_feedback_and_its_instruction_answers_the_test_split(tmp_path):
    record, replayed, server = run_and_replay(tmp_path, "gepa")
    reflections = [b for b in server.bodies if b["model"] == "prompt-model"]
    assert reflections, "GEPA asked its reflection model"
    assert all("new_instruction" in b["messages"][0]["content"] for b in reflections)
    shown = reflections[0]["messages"][-1]["content"]
    assert 'the expected output is \\"(' in shown, "GEPA's metric feedback is the text Trace receives"
    assert yaml.safe_load((tmp_path / "a" / "dspy-gepa.yaml").read_text())["instruction"] == INSTRUCTION
    assert record.metrics["test/acc"] == 100.0 and record.metrics["test/roles/reflection"] == "prompt-model"
    # every request is counted under its role; network calls (the rest were cache hits) are the server's
    assert record.metrics["llm/reflection/requests"] >= len(reflections)
    assert record.metrics["llm/student/requests"] + record.metrics["llm/reflection/requests"] \
        == record.cost.llm_calls + record.cost.cache_hits
    assert record.cost.llm_calls == server.seen and record.metrics["llm/reflection/prompt_tokens"] > 0
    assert_replayed(record, replayed, tmp_path / "b")


def test_gepa_budget_defaults_to_traces_student_evaluations(run_dir):
    from hydra.utils import instantiate

    cfg = compose_run("optimize", ["task=bbh", "task.subtask=date_understanding", "optimizer=gepa",
                                   "mode=smoke", "task.limit=15"], run_dir)
    method = instantiate(cfg.optimizer)(task=instantiate(cfg.task))
    assert method.max_metric_calls == 15 * (1 + 5), "15 steps x (1 training + 5 validation answers)"
    cfg = compose_run("optimize", ["task=numeric", "optimizer=gepa", "mode=smoke"], run_dir)
    with pytest.raises(ConfigError, match="NumericTask is not a BBH task"):
        instantiate(cfg.optimizer)(task=instantiate(cfg.task))


def test_miprov2_runs_zero_shot_and_replays_without_a_request(tmp_path):
    record, replayed, server = run_and_replay(tmp_path, "miprov2", "optimizer.num_candidates=2",
                                              "optimizer.num_trials=3")
    proposals = [b for b in server.bodies if b["model"] == "prompt-model"]
    assert any("proposed_instruction" in b["messages"][0]["content"] for b in proposals)
    assert yaml.safe_load((tmp_path / "a" / "dspy-miprov2.yaml").read_text())["instruction"] == INSTRUCTION
    assert record.metrics["test/acc"] == 100.0
    assert record.metrics["test/roles/demos"].startswith("0 "), "0-shot: the program holds no demonstrations"
    last_student = [b for b in server.bodies if b["model"] == "student-model"][-1]["messages"]
    assert len(last_student) == 2, "a test question is asked alone: no demonstration turns"
    assert record.metrics["llm/prompt_model/requests"] >= len(proposals) > 0
    assert_replayed(record, replayed, tmp_path / "b")

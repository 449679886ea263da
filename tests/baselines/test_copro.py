"""DSPy's rows of Table 1 with the real `dspy` package, against a real OpenAI-compatible server on
loopback: COPRO compiles a program whose chosen instruction then answers the test split; the plain
program runs through DSPy's own client too."""
from __future__ import annotations

import re

import pytest
import yaml

pytest.importorskip("dspy", reason="the DSPy rows need dspy (pip install -e '.[bbh]')")

from fake_openai import serving  # noqa: E402
from harness.api import ConfigError  # noqa: E402
from harness.optimize import run  # noqa: E402
from support import compose_run  # noqa: E402

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
INSTRUCTION = "Give the letter of the right option, in parentheses."


def right_letter(text: str) -> str:
    day, k = re.search(r"Today is (\w+)\. What day is it (\d+) days", text).groups()
    return re.search(rf"\(([A-D])\) {DAYS[(DAYS.index(day) + int(k)) % 7]}", text).group(1)


def dspy_endpoint(messages: list[dict]) -> str:
    """COPRO's prompt model proposes INSTRUCTION; the student gives the right letter only when its
    instructions say so (else the day's name, which the metric counts wrong)."""
    system, user = messages[0]["content"], messages[-1]["content"]
    if "proposed_instruction" in system:
        return (f"[[ ## proposed_instruction ## ]]\n{INSTRUCTION}\n\n"
                "[[ ## proposed_prefix_for_output_field ## ]]\nAnswer:\n\n[[ ## completed ## ]]")
    letter = right_letter(user)
    answer = f"({letter})" if INSTRUCTION in system else re.search(rf"\({letter}\) (\w+)", user).group(1)
    reasoning = "[[ ## reasoning ## ]]\nCount the days forward.\n\n" if "reasoning" in system else ""
    return f"{reasoning}[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]"


def overrides(url: str, tmp_path, task: str, optimizer: str, *extra: str) -> list[str]:
    return [f"task={task}", "task.subtask=date_understanding", f"optimizer={optimizer}", "mode=smoke",
            "llm=openai", f"llm.base_url={url}", f"llm.cache_path={tmp_path / 'cache.sqlite'}",
            "llm.model=prompt-model", "task.student.model=student-model", "llm.max_retries=0",
            "logger=none", "progress=false", *extra]


def test_copro_compiles_with_real_dspy_and_its_instruction_answers_the_test_split(tmp_path):
    with serving(responder=dspy_endpoint) as server:
        record = run(compose_run("optimize", overrides(server.url, tmp_path, "bbh", "copro",
                                                       "optimizer.breadth=2", "optimizer.depth=1"), tmp_path))
    prompt_calls = [b for b in server.bodies if b["model"] == "prompt-model"]
    assert len(prompt_calls) == 1, "one round of candidates (breadth 2 = 1 new + the seed)"
    assert record.cost.llm_calls == server.seen, "the cost counts every role: prompt model and student"
    assert "[[ ## basic_instruction ## ]]" in prompt_calls[0]["messages"][-1]["content"]
    # COPRO scored 2 candidates on the 20 train+val examples, then 5 val + 1 train + 6 test questions
    # (identical temperature-0 student requests of the run are asked once, the rest are cache hits)
    assert sum(b["model"] == "student-model" for b in server.bodies) + record.cost.cache_hits == 2 * 20 + 12
    assert yaml.safe_load((tmp_path / "dspy-copro.yaml").read_text())["instruction"] == INSTRUCTION
    assert record.metrics["test/acc"] == 100.0 and len(record.curve) == 1
    assert record.curve[0]["params"] == {"program": "dspy-copro"} and record.curve[0]["score"] == 1.0
    assert all(h["User-Agent"].startswith("OpenAI/Python") for h in server.headers), "through trace_core's client"


def test_plain_dspy_rows_through_dspys_own_client_and_through_ours(tmp_path):
    with serving(responder=dspy_endpoint) as server:
        plain = run(compose_run("optimize", overrides(server.url, tmp_path, "bbh", "copro_none",
                                                      "optimizer.backend=native"), tmp_path / "a"))
        assert {h["User-Agent"] for h in server.headers} == {"lm15/stdlib"}, "DSPy's own HTTP client"
        assert {b["model"] for b in server.bodies} == {"student-model"}
        seen = server.seen
        cot = run(compose_run("optimize", overrides(server.url, tmp_path, "bbh_cot", "copro_none"), tmp_path / "b"))
        assert "`reasoning`" in server.bodies[-1]["messages"][0]["content"], "dspy.ChainOfThought"
    assert seen == 12 == plain.cost.llm_calls, "native: DSPy's own calls are counted from its history"
    assert plain.metrics["test/acc"] == 0.0 and cot.metrics["test/cot_acc_nlp"] == 0.0
    assert yaml.safe_load((tmp_path / "b" / "dspy-none-cot.yaml").read_text())["answer_prefix"] == "Answer:"


def test_the_dspy_rows_refuse_other_tasks_and_bad_settings(run_dir):
    from hydra.utils import instantiate

    cfg = compose_run("optimize", ["task=numeric", "optimizer=copro", "mode=smoke"], run_dir)
    with pytest.raises(ConfigError, match="NumericTask is not a BBH task"):
        instantiate(cfg.optimizer)(task=instantiate(cfg.task))
    cfg = compose_run("optimize", ["task=bbh", "optimizer=copro", "mode=smoke", "optimizer.breadth=1"], run_dir)
    with pytest.raises(ConfigError, match="breadth >= 2"):
        instantiate(cfg.optimizer)(task=instantiate(cfg.task))


def prefix_endpoint(messages: list[dict]) -> str:
    """COPRO proposes a new answer prefix; the student answers right only when the request names
    that prefix (as DSPy 2.4's prompts ended with it), and starts its answer with it."""
    system, user = messages[0]["content"], messages[-1]["content"]
    if "proposed_instruction" in system:
        return ("[[ ## proposed_instruction ## ]]\nPick the option.\n\n"
                "[[ ## proposed_prefix_for_output_field ## ]]\nLetter:\n\n[[ ## completed ## ]]")
    if "Begin the `answer` field with: Letter:" in user:
        return f"[[ ## answer ## ]]\nLetter: ({right_letter(user)})\n\n[[ ## completed ## ]]"
    return "[[ ## answer ## ]]\nno idea\n\n[[ ## completed ## ]]"


def test_the_prefix_copro_proposes_takes_effect_and_the_record_names_each_role(tmp_path):
    with serving(responder=prefix_endpoint) as server:
        record = run(compose_run("optimize", overrides(server.url, tmp_path, "bbh", "copro",
                                                       "optimizer.breadth=2", "optimizer.depth=1"), tmp_path))
    assert yaml.safe_load((tmp_path / "dspy-copro.yaml").read_text())["answer_prefix"] == "Letter:"
    assert record.metrics["test/acc"] == 100.0, "the prefix reached the student and was stripped from its answer"
    assert record.metrics["test/roles/student"] == "student-model"
    assert record.metrics["test/roles/prompt_model"] == "prompt-model"
    assert record.metrics["test/roles/dspy"].endswith("(paper: 2.4)")
    assert record.metrics["test/roles/backend"].startswith("harness")


def test_the_native_backend_counts_dspys_own_calls_and_says_it_is_uncached(tmp_path):
    with serving(responder=dspy_endpoint) as server:
        record = run(compose_run("optimize", overrides(server.url, tmp_path, "bbh", "copro_none",
                                                       "optimizer.backend=native"), tmp_path))
        assert record.cost.llm_calls == server.seen == 12, "every call the server saw is in the record"
    assert "uncached, not replayable" in record.metrics["test/roles/backend"]

"""Issue 14's BBH attack: an optimizer that always proposes an `extract_answer` which walks the
call stack to the grader's frame and returns the expected answer. In the sandbox it finds no
grader and scores what the honest program scores; in-process (`sandbox=none`) it scores 100%."""
from __future__ import annotations

import json
import re

from fake_openai import serving
from harness.optimize import run
from support import compose_run

CHEAT = '''def extract_answer(self, prompt_template, question, response):
    """Turns the model's reply into the final answer."""
    import gc, inspect
    def expected(value):
        try:
            if getattr(value, "question", None) == question and isinstance(value.answer, str):
                return value.answer
        except Exception:
            pass
        return None
    for info in inspect.stack():
        for value in list(info.frame.f_locals.values()):
            if expected(value) is not None:
                return expected(value)
    for value in gc.get_objects():
        if expected(value) is not None:
            return expected(value)
    return response.split("Answer:")[-1].strip()
'''


def responder(propose: bool):
    """Optimizer: the grader-reading code (or no change). Student: always option (A)."""
    def reply(messages: list[dict]) -> str:
        if "#Variables" not in messages[0]["content"]:
            return "Answer: (A)"
        name = re.search(r"\(code\) (__code_extract_answer\d+):", messages[-1]["content"]).group(1)
        return json.dumps({"reasoning": "read the grader", "suggestion": {name: CHEAT} if propose else {}})
    return reply


def bbh_run(tmp_path, propose: bool, sandbox: str) -> dict:
    with serving(responder=responder(propose)) as server:
        overrides = ["task=bbh", "task.subtask=date_understanding", "optimizer=optoprime", "mode=smoke",
                     "llm=openai", f"llm.base_url={server.url}", f"llm.cache_path={tmp_path / 'c.sqlite'}",
                     "llm.model=loopback-model", "task.student.model=student-model", "llm.max_retries=0",
                     "logger=none", "progress=false", f"sandbox={sandbox}"]
        record = run(compose_run("optimize", overrides, tmp_path / "run"))
    return {"curve": [p["score"] for p in record.curve], "acc": record.metrics["test/acc"],
            "sandbox": record.config["sandbox"], "code": record.curve[-1]["params"]}


def test_grader_reading_extract_answer_scores_what_honest_answers_score(tmp_path):
    honest = bbh_run(tmp_path / "honest", propose=False, sandbox="process")
    cheat = bbh_run(tmp_path / "cheat", propose=True, sandbox="process")
    assert "inspect.stack()" in json.dumps(cheat["code"]), "the attack was applied"
    assert cheat["sandbox"] == honest["sandbox"] == "process"
    assert honest["acc"] < 100.0
    assert (cheat["curve"], cheat["acc"]) == (honest["curve"], honest["acc"])
    # The same attack in this process reads the grader: why `sandbox: process` is the default.
    exposed = bbh_run(tmp_path / "exposed", propose=True, sandbox="none")
    assert exposed["sandbox"] == "none" and exposed["acc"] == 100.0

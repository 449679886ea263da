"""MATH answers judged by math-verify (what other work reports with) or by ours, as the config says."""
from __future__ import annotations

import threading

import pytest

from harness.api import ConfigError
from tasks.dualformer_paper.math import Attempt, EvalProtocol, Generated, MathQuery, MathTask
from tasks.dualformer_paper.math_data import DataSpec
from tasks.dualformer_paper.math_grader import judge
from support import DATA

pytest.importorskip("math_verify")
FIXTURES = DATA / "math"


def test_math_verify_and_ours_agree_on_plain_equivalences():
    for predicted, truth in [(r"\dfrac12", "0.5"), (r"2\sqrt{2}", r"\sqrt{8}"), ("x=5", "5"), ("3,5", "5,3")]:
        assert judge("math_verify", predicted, truth) and judge("harness", predicted, truth)
    assert not judge("math_verify", "0.333", r"\frac13") and not judge("harness", "0.333", r"\frac13")
    assert not judge("math_verify", None, "5") and not judge("harness", "5", None)


def test_the_graders_differ_where_math_verify_is_stricter():
    # Ours strips a percent sign; math-verify keeps 10% and 10 apart.
    assert judge("harness", r"10\%", "10") and not judge("math_verify", r"10\%", "10")


def test_off_the_main_thread_math_verify_falls_back_to_ours():
    seen = []
    thread = threading.Thread(target=lambda: seen.append(judge("math_verify", r"10\%", "10")))
    thread.start()
    thread.join(timeout=60)
    assert seen == [True]  # math-verify's SIGALRM limit cannot be set there: ours answered


def test_the_task_scores_with_its_grader_and_refuses_an_unknown_one():
    def task(grader: str) -> MathTask:
        return MathTask(train=DataSpec(str(FIXTURES / "train.jsonl")), grader=grader,
                        test_data=DataSpec(str(FIXTURES / "test.jsonl"), split="test"),
                        protocol=EvalProtocol(modes=["slow"], n_samples=0, pass_k=0))

    def percent_answers(query: MathQuery) -> list[Attempt]:
        return [Attempt(Generated(f"{query.prefix} x\nAnswer: $\\boxed{{12\\%}}$", 3), ()) for _ in query.prompts]

    # The first fixture test problem's answer is 12: "12\%" is right for ours only.
    ours, theirs = task("harness").test(percent_answers), task("math_verify").test(percent_answers)
    assert ours["greedy1_slow"] == 25.0 and theirs["greedy1_slow"] == 0.0
    with pytest.raises(ConfigError, match="task.grader must be one of math_verify, harness"):
        task("exact")

r"""Which judge says a MATH answer is right: HuggingFace's `math-verify` (the grader most recent work
reports with, so Table 5.6 numbers compare), or ours (tasks.dualformer_paper.math_answers.is_equiv).

    from tasks.dualformer_paper.math_grader import judge
    judge("math_verify", r"\dfrac12", "0.5")   # True
    judge("harness", r"\dfrac12", "0.5")       # True

`math_verify` falls back to ours for an answer it cannot read, when the package is not installed,
and off the main thread (its time limit is a SIGALRM, which only the main thread can set).
"""
from __future__ import annotations

import threading

from harness.api import ConfigError
from tasks.dualformer_paper.math_answers import is_equiv

GRADERS = ("math_verify", "harness")


def check_grader(name: str) -> str:
    if name not in GRADERS:
        raise ConfigError(f"task.grader must be one of {', '.join(GRADERS)}, got {name!r}")
    return name


def judge(grader: str, predicted: str | None, truth: str | None) -> bool:
    """True when `predicted` states the same final answer as `truth`, by `grader`."""
    if predicted is None or truth is None:
        return False
    if grader == "math_verify":
        verdict = math_verify_equiv(predicted, truth)
        if verdict is not None:
            return verdict
    return is_equiv(predicted, truth)


def math_verify_equiv(predicted: str, truth: str) -> bool | None:
    """math-verify's verdict on two bare answers, or None when it cannot give one."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        from math_verify import parse, verify
    except ImportError:
        return None
    # Both are bare final answers (no surrounding prose): boxing them tells the parser where they are.
    gold, pred = parse(f"\\boxed{{{truth}}}"), parse(f"\\boxed{{{predicted}}}")
    if not gold or not pred:
        return None
    return bool(verify(gold, pred))

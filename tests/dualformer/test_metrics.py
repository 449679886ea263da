from __future__ import annotations

import pytest

from dualformer.metrics import Response, TaskResponses, plan_metrics


def r(plan, correct=True, length=None, trace=0):
    return Response(plan=tuple(plan), correct=correct, plan_length=len(plan) if length is None else length,
                    trace_tokens=trace)


def test_metrics_on_hand_checked_tasks():
    tasks = [
        # optimal 3: two optimal (distinct), one correct but long, one wrong
        TaskResponses(3, [r("abc", trace=10), r("abd", trace=10), r("abcde", trace=20), r("zz", False, trace=0)]),
        # optimal 2: one correct of length 4, the rest wrong
        TaskResponses(2, [r("wxyz"), r("x", False), r("y", False), r("q", False)]),
        # optimal 5: nothing correct
        TaskResponses(5, [r("a", False)] * 4),
    ]
    m = plan_metrics(tasks)
    assert m["1_solved_4"] == pytest.approx(200 / 3) and m["3_solved_4"] == pytest.approx(100 / 3)
    assert m["1_optimal_4"] == pytest.approx(100 / 3) and m["3_optimal_4"] == 0
    assert m["swc"] == pytest.approx((1 + 2 / 4 + 0) / 3)
    assert m["diversity_correct"] == pytest.approx((3 + 1 + 0) / 3)
    assert m["diversity_optimal"] == pytest.approx(2 / 3)
    assert m["trace_tokens"] == pytest.approx(40 / 12)


def test_no_tasks_is_an_error():
    with pytest.raises(ValueError):
        plan_metrics([])


def test_k_solved_and_k_optimal_carry_wilson_95_percent_intervals():
    """50 of 100 tasks optimal: Wilson's interval is 40.38..59.62 (hand-computed, z = 1.96)."""
    good = TaskResponses(3, [Response(plan=(1, 2, 3), correct=True, plan_length=3, trace_tokens=0)])
    bad = TaskResponses(3, [Response(plan=(), correct=False, plan_length=0, trace_tokens=0)])
    scores = plan_metrics([good] * 50 + [bad] * 50, ks=(1,))
    assert scores["1_optimal_1"] == 50
    assert round(scores["1_optimal_1_ci_low"], 2) == 40.38 and round(scores["1_optimal_1_ci_high"], 2) == 59.62
    perfect = plan_metrics([good] * 10, ks=(1,))
    assert perfect["1_solved_1_ci_high"] == 100 and 69 < perfect["1_solved_1_ci_low"] < 73

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

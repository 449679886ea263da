"""The execution report: several feedbacks of one step (a minibatch) each name their output."""
from __future__ import annotations

from trace_core import backward, graph_context, node
from trace_core.optimizers.report import build_report


def test_merged_feedbacks_say_which_output_each_is_about():
    with graph_context():
        x = node(2, trainable=True, name="x")
        first, second = x * 3, x + 10
        report = build_report([backward(first, "too small"), backward(second, "too large")], "improve")
    lines = report.feedback.splitlines()
    assert lines == [f"On {first.py_name}: too small", f"On {second.py_name}: too large"]
    assert "On" not in build_report([backward(first, "too small")], "improve").feedback, \
        "a single feedback stays as it was given"

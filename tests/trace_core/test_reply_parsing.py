"""Replies as real models write them: what is used, what is refused (always with a reason), and
that the parser never raises."""
from __future__ import annotations

import json

import pytest

from trace_core import bundle, graph_context, node
from trace_core.code import check_replacement
from trace_core.llm import ScriptedLLM
from trace_core.optimizers import OptoPrime
from trace_core.optimizers.parsing import convert, parse_suggestion


def step_with(reply, *parameters):
    optimizer = OptoPrime(list(parameters), llm=ScriptedLLM(replies=[reply]))
    optimizer.backward(node(len)(list(parameters)), "f")  # one output computed from them all
    optimizer.step()
    return optimizer.logs[-1]


@pytest.mark.parametrize("value", [2 ** 1024, -(2 ** 2000), "1" + "0" * 400, float("nan"), float("inf"),
                                   "nan", "-inf", "Infinity", "1e999"],
                         ids=["2**1024", "-2**2000", "400 digits", "nan", "inf", "'nan'", "'-inf'", "'Infinity'", "'1e999'"])
def test_float_parameters_refuse_non_finite_and_overflowing_numbers(value):
    with pytest.raises(ValueError):
        convert(value, 1.5)


def test_huge_whole_numbers_stay_exact_for_int_parameters():
    assert convert(2 ** 1024, 0) == 2 ** 1024
    assert convert("123456789012345678901234567890", 0) == 123456789012345678901234567890


def test_a_nan_or_huge_suggestion_in_a_reply_is_refused_not_a_crash():
    for raw in ('{"suggestion": {"x0": NaN}}', '{"suggestion": {"x0": %d}}' % 2 ** 1100):
        with graph_context():
            x = node(1.0, trainable=True, name="x")
            log = step_with(raw, x)
        assert x.data == 1.0 and "x0" in log.refused


@pytest.mark.parametrize("reply", [
    '{"reasoning": "no need to TERMINATE yet", "answer": " TERMINATE", "suggestion": {"a": 2}}',
    'I considered answering TERMINATE, but:\n```json\n{"suggestion": {"a": 2}}\n```',
])
def test_terminate_inside_or_beside_a_suggestion_does_not_drop_it(reply):
    suggestion, note = parse_suggestion(reply)
    assert suggestion == {"a": 2} and note == ""


@pytest.mark.parametrize("reply", ["TERMINATE", " TERMINATE.\n", '"TERMINATE"', "```\nTERMINATE\n```",
                                   "Nothing to change. TERMINATE"])
def test_a_reply_that_is_terminate_ends_the_step(reply):
    suggestion, note = parse_suggestion(reply)
    assert suggestion == {} and "TERMINATE" in note


def test_an_unambiguous_base_name_is_accepted():
    with graph_context():
        x = node(1, trainable=True, name="x")
        log = step_with('{"suggestion": {"x": 5}}', x)
        assert x.data == 5 and log.applied == {"x0": 5}
    with graph_context():
        a, b = node(1, trainable=True, name="w"), node(2, trainable=True, name="w")
        log = step_with('{"suggestion": {"w": 5}}', a, b)
        assert (a.data, b.data) == (1, 2) and "ambiguous" in log.refused["w"]


def test_repeating_the_current_value_is_not_counted_as_applied():
    with graph_context():
        x, y = node(3, trainable=True, name="x"), node("same", trainable=True, name="y")
        log = step_with('{"suggestion": {"x0": 3, "y0": "same"}}', x, y)
    assert log.applied == {} and set(log.unchanged) == {"x0", "y0"}
    assert "current values" in log.note


def test_a_template_must_keep_its_placeholders():
    template = "Answer the question.\n{question}\nThink step by step about {topic}."
    with graph_context():
        t = node(template, trainable=True, name="prompt_template")
        log = step_with(json.dumps({"suggestion": {"prompt_template0": "Q: which is larger, 3 or 5?\n{topic}"}}), t)
        assert t.data == template and "{question}" in log.refused["prompt_template0"]
        better = "Read carefully.\n{question}\nConsider {topic}, then answer."
        step_with(json.dumps({"suggestion": {"prompt_template0": better}}), t)
        assert t.data == better


def test_a_compatible_signature_change_is_accepted():
    current = "def f(a, b=1):\n    return a\n"
    assert check_replacement("def f(a, b=1, scale=2.0):\n    return a * scale\n", current)
    assert check_replacement("def f(a, b=1, *, verbose=False, **extra):\n    return a\n", current)
    for bad in ["def f(a, c, b=1):\n    return a\n", "def f(a):\n    return a\n",
                "def f(b, a=1):\n    return a\n", "def f(a, *, b=1):\n    return a\n"]:
        with pytest.raises(ValueError, match="parameters"):
            check_replacement(bad, current)


def test_code_with_an_added_defaulted_parameter_runs():
    @bundle(trainable=True)
    def scale(x):
        return x

    with graph_context():
        new = "def scale(x, factor=3):\n    return x * factor\n"
        log = step_with(json.dumps({"suggestion": {"__code_scale0": new}}), scale.parameter)
        assert log.applied and scale(node(2)).data == 6

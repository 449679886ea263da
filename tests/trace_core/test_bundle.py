"""Bundled operators, trainable code, errors as feedback, time limits, and @model."""
from __future__ import annotations

import pytest

from trace_core import ExecutionError, backward, bundle, graph_context, model, node
from trace_core.code import check_replacement

SCALE = 10  # a module global the bundled code reads


@bundle()
def scale(x, factor=2):
    """Multiplies x by factor."""
    return x * factor


@bundle(trainable=True, time_limit_s=2.0)  # generous: a loaded machine is slow to start a worker
def policy(obs, bias=0):
    """Turns an observation into an action."""
    return obs + bias


def test_bundle_records_one_operator_with_its_documentation():
    with graph_context():
        x = node(3, trainable=True, name="x")
        y = scale(x, factor=4)
        assert y.data == 12 and y.op.name == "scale"
        assert y.op.doc == "[scale] Multiplies x by factor."
        assert y.inputs["x"] is x and y.inputs["factor"].data == 4


def test_trainable_code_is_a_parameter_and_replacing_it_replaces_the_function():
    original = policy.parameter.data
    try:
        assert original.startswith("def policy(obs, bias=0):") and "@bundle" not in original
        assert policy.parameter.constraint.endswith('"""Turns an observation into an action."""')
        with graph_context():
            out = policy(node(1))
            assert out.data == 1 and out.inputs["__code"] is policy.parameter
            assert backward(out, "f").parameters == [policy.parameter]
            policy.parameter._data = "def policy(obs, bias=0):\n    return obs * SCALE + bias\n"
            assert policy(node(2)).data == 20, "new code runs, with the module's globals"
    finally:
        policy.parameter._data = original


@pytest.mark.parametrize("source, says", [
    ("def policy(obs, bias=0):\n    return obs / 0\n", "(ZeroDivisionError) division by zero\nIt was raised at line 2 of `policy` (marked >>):\n   1 | def policy(obs, bias=0):\n>> 2 |     return obs / 0"),
    ("def policy(obs, bias=0):\n    while True:\n        pass\n", "(TimeoutError) `policy` timed out after 2 s"),
    ("def policy(obs, bias=0):\n    while True: pass\n", "(TimeoutError) `policy` timed out after 2 s"),
    ("def policy(obs, bias=0):\n    return sum(i for i in iter(int, 1))\n", "(TimeoutError)"),
    ("def policy(obs, bias=0)\n    return 1\n", "(CodeError) (SyntaxError)"),
    ("def act(obs, bias=0):\n    return 1\n", "must define a function named `policy`"),
    ("def policy(observation):\n    return 1\n", "must keep its parameters (obs, bias)"),
])
def test_broken_code_becomes_feedback_not_a_crash(source, says):
    original = policy.parameter.data
    try:
        policy.parameter._data = source
        with graph_context(), pytest.raises(ExecutionError) as caught:
            policy(node(2))
        failed = caught.value.exception_node
        assert says in failed.data
        assert policy.parameter in failed.parents, "the error can be backwarded to the code"
        assert backward(failed, failed.data).parameters == [policy.parameter]
    finally:
        policy.parameter._data = original


def test_errors_can_be_left_to_raise():
    @bundle(catch_execution_error=False)
    def boom(x):
        raise KeyError(x)

    with pytest.raises(KeyError):
        boom(1)


def test_check_replacement_accepts_only_the_same_function():
    current = "def f(a, b=1):\n    return a\n"
    assert check_replacement("def f(a, b=1):\n    return a + b", current).endswith("\n")
    assert check_replacement("import math\n\ndef f(a, b=2):\n    return math.sqrt(a)\n", current)
    for bad, why in [("def f(a):\n    return a\n", "keep its parameters"),
                     ("def g(a, b=1):\n    return a\n", "define the function `f`"),
                     ("def f(a, b=1):\nreturn a\n", "does not compile"), (42, "non-empty string")]:
        with pytest.raises(ValueError, match=why):
            check_replacement(bad, current)


def test_model_collects_parameters_per_instance_and_saves_them(tmp_path):
    @model
    class Agent:
        def __init__(self, gain):
            self.gain = node(gain, trainable=True, name="gain")
            self.layers = [node(1.0, trainable=True, name="w")]
            self.label = node("not trainable")

        @bundle(trainable=True)
        def act(self, obs):
            """Acts."""
            return obs * 2

    with graph_context():
        first, second = Agent(1), Agent(2)
        params = first.parameters()
        assert {p.name.split(":")[0] for p in params} == {"gain", "w", "__code_act"}
        assert first.act(3).data == 6
        code_first = next(p for p in params if p.name.startswith("__code_act"))
        code_second = next(p for p in second.parameters() if p.name.startswith("__code_act"))
        assert code_first is not code_second, "each instance owns its code"
        code_first._data = "def act(self, obs):\n    return obs * 3\n"
        assert first.act(3).data == 9 and second.act(3).data == 6
        first.save(tmp_path / "agent.json")
        first.gain._data = 99
        first.load(tmp_path / "agent.json")
        assert first.gain.data == 1 and first.parameters_dict()[code_first.py_name].data.endswith("obs * 3\n")

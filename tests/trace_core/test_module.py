"""@model classes: parameters found by attribute path, saved and loaded by it, copied, called."""
from __future__ import annotations

import copy
import json

import pytest

from trace_core import ExecutionError, bundle, graph_context, model, node


@model
class Encoder:
    def __init__(self):
        self.scale = node(2.0, trainable=True, name="scale")

    @bundle(trainable=True)
    def encode(self, text):
        """Encodes text."""
        return text.lower()


@model
class Agent:
    def __init__(self):
        self.encoder = Encoder()
        self.weights = [node(1, trainable=True, name="w"), node(2, trainable=True, name="w")]
        self.table = {"bias": node(0.5, trainable=True, name="bias")}
        self.label = node("constant")

    @bundle(trainable=True)
    def act(self, obs):
        """Acts."""
        return obs * 2

    def forward(self, obs):
        return self.act(obs) + self.weights[0]


PATHS = {"act", "encoder.encode", "encoder.scale", "weights.0", "weights.1", "table.bias"}


def test_parameters_include_nested_trainable_methods_never_accessed():
    with graph_context():
        agent = Agent()
        assert set(agent.named_parameters()) == PATHS
        assert len(agent.parameters()) == len(PATHS)
        code = agent.named_parameters()["encoder.encode"]
        assert code is agent.encoder.encode.parameter, ".parameter on the bound method"
        assert code is not Agent().encoder.encode.parameter, "each instance owns its code"


def test_save_and_load_by_attribute_path_into_a_fresh_instance(tmp_path):
    with graph_context():
        agent = Agent()
        agent.weights[1]._data = 42
        agent.encoder.encode.parameter._data = "def encode(self, text):\n    return text.upper()\n"
        agent.save(tmp_path / "agent.json")
        assert set(json.loads((tmp_path / "agent.json").read_text())) == PATHS
    with graph_context():
        fresh = Agent()  # new creation-order names: the paths still match
        fresh.load(tmp_path / "agent.json")
        assert fresh.weights[1].data == 42 and fresh.encoder.encode(node("Hi")).data == "HI"


def test_load_refuses_a_file_that_names_no_parameter(tmp_path):
    (tmp_path / "other.json").write_text(json.dumps({"nosuch.path": 1}))
    with graph_context(), pytest.raises(ValueError, match="nosuch.path"):
        Agent().load(tmp_path / "other.json")


def test_deepcopy_after_use_gives_an_independent_model():
    with graph_context():
        agent = Agent()
        assert agent(3).data == 7, "calling a model runs forward"
        twin = copy.deepcopy(agent)
        twin.act.parameter._data = "def act(self, obs):\n    return obs * 10\n"
        twin.weights[0]._data = 0
        assert twin(3).data == 30 and agent(3).data == 7
        assert twin.weights[0] is not agent.weights[0]


def test_a_trainable_function_saves_and_loads_its_code(tmp_path):
    @bundle(trainable=True)
    def count_lines(text):
        """Counts lines."""
        return text.count("\n")

    original = count_lines.parameter.data
    count_lines.parameter._data = "def count_lines(text):\n    return len(text)\n"
    count_lines.save(tmp_path / "fun.json")
    count_lines.parameter._data = original
    assert count_lines(node("a\nb")).data == 1
    count_lines.load(tmp_path / "fun.json")
    assert count_lines(node("a\nb")).data == 3
    assert count_lines.parameters() == [count_lines.parameter]


def test_a_failing_forward_is_an_execution_error():
    with graph_context(), pytest.raises(ExecutionError):
        Agent()("not a number")

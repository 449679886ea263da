"""Nodes behave like their values in the cases Trace programs rely on (each once a crash or a
silent loss of a dependency)."""
from __future__ import annotations

import copy
import gc
import operator

import pytest

from trace_core import ExecutionError, MessageNode, Node, backward, bundle, graph_context, node


def depends_on(result, root):
    return root in backward(result, "f").nodes


def test_calling_a_node_that_holds_a_function():
    with graph_context():
        double = node(lambda v: v * 2, name="double")
        out = double(node(2))
        assert out.data == 4 and out.op.name == "call" and out.inputs["fn"] is double
        assert node(lambda fn: fn + 1)(fn=1).data == 2, "an argument may itself be called fn"


def test_an_attribute_holding_a_node_is_a_recorded_read():
    class Holder:
        pass

    with graph_context():
        w = node(3, trainable=True, name="w")
        holder = Holder()
        holder.weight = w
        read = node(holder).weight
        assert isinstance(read, MessageNode) and read.op.name == "getattr"
        assert read.data == 3 and not isinstance(read.data, Node)
        assert depends_on(read, w)


def test_dict_views_iteration_and_update():
    with graph_context():
        d = node({"a": 1, "b": 2}, name="d")
        assert [k.data for k in d.keys()] == ["a", "b"] and [v.data for v in d.values()] == [1, 2]
        pairs = [(k.data, v.data) for k, v in d.items()]
        assert pairs == [("a", 1), ("b", 2)]
        assert [k.data for k in d] == ["a", "b"], "iterating a dict yields its keys"
        merged = {}
        merged.update(d)
        assert {k.data: v.data for k, v in merged.items()} == {"a": 1, "b": 2}
        assert all(d in v.parents for v in merged.values())


def test_unpacking_a_non_iterable_result_is_an_execution_error():
    @bundle()
    def nothing(x):
        return None

    with graph_context():
        x = node(1, trainable=True, name="x")
        with pytest.raises(ExecutionError) as caught:
            a, b = nothing(x)
        failed = caught.value.exception_node
        assert "TypeError" in failed.data and backward(failed, "f").parameters == [x]
        with pytest.raises(ExecutionError):
            list(node(5))


def test_nodes_never_end_up_inside_data():
    with graph_context():
        n1, n2 = node(1, trainable=True, name="n1"), node(2, name="n2")
        first = node([n1, n2])[0]
        assert first.data == 1 and not isinstance(first.data, Node) and depends_on(first, n1)

        class Box:
            def get(self):
                return n1

        got = node(Box()).get()
        assert got.data == 1 and not isinstance(got.data, Node) and depends_on(got, n1)


def test_nodes_inside_container_arguments_are_unwrapped_and_recorded():
    with graph_context():
        nx, ny = node("x", trainable=True, name="nx"), node("y", name="ny")
        joined = node("+").join([nx, ny])
        assert joined.data == "x+y" and depends_on(joined, nx)
        pairs = node("{a}-{b}").format(**{"a": nx, "b": ny})
        assert pairs.data == "x-y" and depends_on(pairs, nx)
        nested = node(len)({"k": [nx, ny]})
        assert nested.data == 1 and depends_on(nested, nx)


@pytest.mark.parametrize("op", [operator.lshift, operator.rshift, operator.and_, operator.or_, operator.xor])
def test_bitwise_and_shift_operators_and_their_reflected_forms(op):
    with graph_context():
        x = node(6, trainable=True, name="x")
        forward, reflected = op(x, 2), op(2, x)
        assert isinstance(forward, MessageNode) and forward.data == op(6, 2)
        assert isinstance(reflected, MessageNode) and reflected.data == op(2, 6)
        assert depends_on(forward, x) and depends_on(reflected, x)
        assert reflected.inputs["x"].data == 2, "the reflected form keeps the operand order"


def test_clone_copies_the_value_and_records_the_link():
    with graph_context():
        items = node([1, [2]], trainable=True, name="items")
        twin = items.clone()
        assert twin.data == [1, [2]] and twin.data is not items.data and twin.data[1] is not items.data[1]
        assert twin.op.name == "clone" and twin.parents == (items,)


def test_children_link_parents_to_results_without_keeping_them_alive():
    with graph_context():
        x = node(1, trainable=True, name="x")
        y, z = x + 1, x * 2
        assert x.children == [y, z] and y.children == []
        del y
        gc.collect()
        assert x.children == [z], "a child nobody holds is not kept alive by its parent"


def test_deepcopy_of_a_node_copies_its_value_not_its_children():
    with graph_context():
        x = node([1], trainable=True, name="x")
        y = x + [2]
        twin = copy.deepcopy(y)
        assert twin.data == [1, 2] and twin.data is not y.data and twin.parents[0] is not x
        assert copy.deepcopy(x).children == [] and x.children == [y]


def test_an_attribute_that_holds_a_node_is_a_third_parent_so_feedback_reaches_it():
    # Issue 28, defect 4 (decided): upstream records (obj, name); we add the held node.
    class Agent:
        def __init__(self) -> None:
            self.prompt = node("be brief", trainable=True, name="prompt")

    with graph_context():
        agent = Agent()
        read = node(agent, name="agent").prompt
        assert [p.py_name for p in read.parents][0] == "agent0" and len(read.parents) == 3
        assert read.parents[-1] is agent.prompt and read.inputs["held"] is agent.prompt
        assert backward(read, "longer").parameters == [agent.prompt]

"""Recording: nodes behave like their values and remember how they were made."""
from __future__ import annotations

import threading

import pytest

from trace_core import ExecutionError, MessageNode, Node, ParameterNode, graph_context, node


def test_arithmetic_and_comparisons_are_recorded():
    with graph_context():
        x = node(3, trainable=True, name="x")
        y = (x * 2 + 1) / 7
        assert isinstance(y, MessageNode) and y.data == 1.0
        assert y.op.name == "divide" and y.level == 3
        assert [p.data for p in y.parents] == [7, 7]
        less = x < 5
        assert isinstance(less, Node) and less.data is True and less.op.name == "lt"
        assert (10 - x).data == 7 and (-x).data == -3 and abs(node(-2)).data == 2
        assert x == 3 and x in [3], "== stays a plain comparison so `in` works"
        assert x.eq(3).data is True and x.eq(3).op.name == "eq"


def test_indexing_attributes_methods_and_strings_are_recorded():
    with graph_context():
        words = node("hello big world")
        parts = words.split(" ")
        assert parts.op.name == "split" and parts.data == ["hello", "big", "world"]
        assert parts[1].data == "big" and parts[1].op.name == "getitem"
        shout = words.upper() + "!"
        assert shout.data == "HELLO BIG WORLD!" and shout.parents[0].op.name == "upper"
        assert words.replace("big", "small", 1).data == "hello small world"
        assert words.split(maxsplit=1).data == ["hello", "big world"]  # keyword arguments too
        joined = node("-").join(parts)
        assert joined.data == "hello-big-world" and joined.inputs["arg0"] is parts
        point = node(complex(1, 2))
        assert point.real.data == 1.0 and point.real.op.name == "getattr"
        assert [n.data for n in node([4, 5])] == [4, 5]


def test_names_are_per_graph_context_and_per_thread():
    with graph_context():
        assert node(1, name="a").name == "a:0" and node(2, name="a").name == "a:1"
    with graph_context():
        assert node(1, name="a").name == "a:0", "a new run starts its own numbering"
    names = []

    def make():
        with graph_context():
            names.append([node(i, name="t").name for i in range(3)])

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert names == [["t:0", "t:1", "t:2"]] * 4


def test_failing_operation_becomes_an_exception_node():
    with graph_context():
        x = node(1.0, trainable=True, name="x")
        with pytest.raises(ExecutionError) as caught:
            x / 0
        failed = caught.value.exception_node
        assert failed.data.startswith("(ZeroDivisionError)")
        assert failed.parents[0] is x


def test_node_factory():
    with graph_context():
        x = node(5)
        assert node(x) is x and not x.trainable
        p = node(x, trainable=True)
        assert isinstance(p, ParameterNode) and p.data == 5 and p.name.startswith("int:")
        q = node([1], trainable=True, name="w", constraint="non-empty")
        assert q.py_name == "w0" and q.constraint == "non-empty"

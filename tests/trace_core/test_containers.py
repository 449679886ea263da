"""Seq and Map (containers that pickle and list the parameters they hold), NodeContainer and
`broadcast` (one operation applied field by field), `to_data` (nodes out, at any depth)."""
from __future__ import annotations

import pickle

from trace_core import graph_context, node
from trace_core import operators as ops
from trace_core.containers import Map, NodeContainer, Seq, broadcast, to_data


class Pair(NodeContainer):
    def __init__(self, a, b):
        self.a = node(a)
        self.more = {"b": [node(b)], "count": 1}


def test_seq_and_map_pickle_and_list_their_parameters():
    with graph_context():
        p, q = node(1, trainable=True, name="p"), node("k", trainable=True, name="q")
        nested = Map({"a": 1, q: Seq(2, p)})
        assert nested.parameters() == [q, p]
        assert Seq([1, 2]) == [1, 2] and Seq(1, 2) == [1, 2] and Map({"a": 1})["a"] == 1
        for value in (Seq([1, node(2)]), Map({"a": node(1)})):
            back = pickle.loads(pickle.dumps(value))
            assert back == value and type(back) is type(value)


def test_broadcast_applies_the_operation_field_by_field_into_the_output():
    with graph_context():
        left, right, out = Pair("l", "m"), Pair("r", "s"), Pair("o", "p")
        assert broadcast(ops.add, out, left, right) is out
        assert out.a == "lr" and left.a in out.a.parents and right.a in out.a.parents
        assert out.more["b"][0] == "ms" and out.more["count"] == 1
        as_lists = broadcast(lambda *parts: list(parts), Pair("o", "p"), left, right)
        assert [n.data for n in as_lists.a] == ["l", "r"]
        as_dicts = broadcast(dict, Pair("o", "p"), one=left, two=right)
        assert as_dicts.more["b"][0]["two"] == "s"


def test_to_data_takes_the_nodes_out_at_any_depth():
    with graph_context():
        assert to_data(node(1)) == 1 and to_data([node(1), 2]) == [1, 2]
        assert to_data(node([node(1), (node(2),)])) == [1, (2,)]
        assert to_data(({node(1): node("1")},)) == ({1: "1"},)
        assert to_data(Seq(node(1), Map({"k": node(2)}))) == [1, {"k": 2}]

"""The minimal subgraph on hand-checked graphs, and no recursion limit on long chains."""
from __future__ import annotations

from trace_core import backward, graph_context, node


def names(nodes):
    return [n.name for n in nodes]


def test_minimal_subgraph_keeps_paths_from_parameters_plus_one_hop_inputs():
    with graph_context():
        a = node(1, trainable=True, name="a")
        b = node(2, trainable=True, name="b")
        c = node(10, name="c")
        d = node(20, name="d")
        ac = a + c              # on a path from a
        cd = c * d              # no parameter upstream: only an input to `out`
        out = ac - cd
        unused = b + 1          # b never reaches `out`
        sub = backward(out, "make it larger")
    assert sub.parameters == [a] and sub.feedback == "make it larger"
    assert set(names(sub.nodes)) == {"a:0", "c:0", "add:0", "multiply:0", "subtract:0"}
    assert all(n is not b and n is not unused for n in sub.nodes)
    order = sub.nodes
    assert order.index(a) < order.index(ac) < order.index(out), "parents come first"
    assert order[-1] is out


def test_shared_parameter_on_two_paths_appears_once():
    with graph_context():
        x = node(3, trainable=True, name="x")
        y = x * x + x
        sub = backward(y, "f")
    assert [n for n in sub.nodes if n is x] == [x]
    assert sub.parameters == [x]
    assert names(sub.nodes) == ["x:0", "multiply:0", "add:0"]


def test_output_without_parameters_has_no_parameters():
    with graph_context():
        sub = backward(node(1) + 2, "f")
    assert sub.parameters == [] and sub.nodes[-1] is sub.output


def test_long_chain_has_no_recursion_limit():
    with graph_context():
        x = node(0, trainable=True, name="x")
        y = x
        for _ in range(20_000):
            y = y + 1
        sub = backward(y, "f")
    assert y.data == 20_000
    assert len(sub.nodes) == 1 + 2 * 20_000  # x, then an add and its constant per step
    assert sub.nodes[0] is x and sub.nodes[-1] is y

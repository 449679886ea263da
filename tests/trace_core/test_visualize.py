"""Subgraph.to_dot(): the picture of what the optimizer sees, as text that needs no Graphviz."""
from __future__ import annotations

import re

import pytest

from trace_core import backward, bundle, graph_context, node


@bundle(trainable=True)
def shape(x):
    """Shapes x."""
    return x + 1


def test_to_dot_has_every_node_and_input_edge():
    with graph_context():
        w = node(2, trainable=True, name="w")
        out = shape(w * node(3, name="k"))
        sub = backward(out, 'make it "larger"')
        dot = sub.to_dot()
    assert dot.startswith("digraph subgraph {") and dot.rstrip().endswith("}")
    vertices = re.findall(r'^  "([^"]+)" \[label', dot, re.M)
    assert vertices == [n.name for n in sub.nodes]
    assert f'"{w.name}" -> "{out.parents[0].name}" [label="x"];' in dot
    assert f'"{shape.parameter.name}" -> "{out.name}" [label="__code"];' in dot
    assert 'fillcolor="lightyellow"' in dot and 'fillcolor="lightblue"' in dot and "peripheries=2" in dot
    assert 'label="make it \\"larger\\""' in dot, "quotes in labels are escaped"


def test_visualize_gives_a_graphviz_source_without_rendering():
    graphviz = pytest.importorskip("graphviz")
    with graph_context():
        w = node(2, trainable=True, name="w")
        sub = backward(w * 2, "f")
        source = sub.visualize()
    assert isinstance(source, graphviz.Source) and source.source == sub.to_dot()

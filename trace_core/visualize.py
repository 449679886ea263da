"""A subgraph as Graphviz DOT text, for looking at what the optimizer is shown.

    subgraph = backward(y, "feedback")
    print(subgraph.to_dot())           # plain text: no Graphviz needed
    subgraph.visualize()               # a graphviz.Source (pip install graphviz; rendering it
                                       # to an image also needs Graphviz's `dot` program)

Trainable parameters are drawn as filled boxes, code parameters in a second colour, the output
with a double border; each operator node is labelled with its name and operator.
"""
from __future__ import annotations

from typing import Any

from trace_core.graph import ExceptionNode, Node

MAX_LABEL_CHARS = 60  # long values are cut: the picture is for orientation, the report has them whole


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _label(n: Node) -> str:
    value = repr(n._data)
    if len(value) > MAX_LABEL_CHARS:
        value = value[:MAX_LABEL_CHARS - 3] + "..."
    op = f" = {n.op.name}(...)" if n.op is not None else ""
    return f"{n.py_name}{op}\n{value}"


def _style(n: Node, output: Node) -> str:
    if n.trainable:
        colour = "lightblue" if n.name.startswith("__code_") else "lightyellow"
        style = f'shape=box, style=filled, fillcolor="{colour}"'
    elif isinstance(n, ExceptionNode):
        style = 'shape=box, style=filled, fillcolor="mistyrose"'
    else:
        style = "shape=box" if n.op is not None else "shape=ellipse"
    return style + (", peripheries=2" if n is output else "")


def to_dot(nodes: list[Node], output: Node, title: str = "") -> str:
    """DOT text: one vertex per node, one edge per (input -> result), labelled by argument."""
    members = {id(n) for n in nodes}
    lines = ["digraph subgraph {", "  rankdir=TB;", '  node [fontname="monospace", fontsize=10];']
    if title:
        lines.append(f"  label={_quote(title)}; labelloc=t;")
    for n in nodes:
        lines.append(f"  {_quote(n.name)} [label={_quote(_label(n))}, {_style(n, output)}];")
    for n in nodes:
        for argument, parent in n.inputs.items():
            if id(parent) in members:
                lines.append(f"  {_quote(parent.name)} -> {_quote(n.name)} [label={_quote(argument)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def visualize(nodes: list[Node], output: Node, title: str = "") -> Any:
    """A graphviz.Source of to_dot() (shown inline in a notebook; `.render()` needs `dot`)."""
    try:
        import graphviz
    except ImportError:
        raise ImportError("visualize() needs the graphviz package: pip install 'trace-dualformer-harness[viz]' "
                          "(or use to_dot() for the text)") from None
    return graphviz.Source(to_dot(nodes, output, title))

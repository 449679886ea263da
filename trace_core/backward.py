"""`backward`: the part of the graph an optimizer needs to see, with the output's feedback.

The minimal subgraph is every node that lies on a path from a trainable parameter to the output
(ancestors of the output that depend on a parameter), plus the one-hop inputs those operators
read (so each recorded call can be shown with all its arguments). Both walks are iterative and
linear in the number of ancestors: no recursion limit on long chains.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from trace_core.graph import Node, ParameterNode


@dataclass
class Subgraph:
    """What backward hands the optimizer: nodes in topological order (parents first)."""

    output: Node
    feedback: str
    nodes: list[Node]
    parameters: list[ParameterNode]

    def to_dot(self) -> str:
        """The subgraph as Graphviz DOT text (trace_core.visualize)."""
        from trace_core.visualize import to_dot

        return to_dot(self.nodes, self.output, title=self.feedback)

    def visualize(self) -> object:
        """A graphviz.Source of the subgraph (needs the optional graphviz package)."""
        from trace_core.visualize import visualize

        return visualize(self.nodes, self.output, title=self.feedback)


def ancestors(output: Node) -> list[Node]:
    """The output and all its ancestors, parents before children: the post-order of a depth-first
    walk that takes each node's parents in order (iterative, so no recursion limit)."""
    order: list[Node] = []
    seen = {id(output)}
    stack = [(output, iter(output.parents))]
    while stack:
        current, parents = stack[-1]
        for parent in parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append((parent, iter(parent.parents)))
                break
        else:  # every parent is placed: so is this node
            stack.pop()
            order.append(current)
    return order


def backward(output: Node, feedback: str) -> Subgraph:
    order = ancestors(output)
    depends: set[int] = set()  # nodes that are, or are computed from, a trainable parameter
    keep = {id(output)}  # ... and the inputs those read
    for n in order:  # parents come first, so `depends` is complete for them
        if not n.trainable:
            for parent in n.parents:
                if id(parent) in depends:
                    break
            else:
                continue
        depends.add(id(n))
        keep.add(id(n))
        keep.update(map(id, n.parents))
    nodes = [n for n in order if id(n) in keep]
    parameters = [n for n in nodes if isinstance(n, ParameterNode)]
    return Subgraph(output=output, feedback=str(feedback), nodes=nodes, parameters=parameters)


def merge(subgraphs: Iterable[Subgraph]) -> list[Node]:
    """Union of several subgraphs' nodes (e.g. one backward per example of a minibatch), still
    parents before children: ordered by depth, first appearance breaking ties."""
    seen: dict[int, tuple[int, int, Node]] = {}
    for subgraph in subgraphs:
        for n in subgraph.nodes:
            seen.setdefault(id(n), (n.level, len(seen), n))
    return [n for _, _, n in sorted(seen.values(), key=lambda t: (t[0], t[1]))]

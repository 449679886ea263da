"""Trace, written for this harness: record a computation as it runs, hand an optimizer the part
that leads from trainable values and code to the output, and let an LLM propose the update.

    from trace_core import node, bundle, backward
    x = node(2.0, trainable=True, name="x")
    y = x * x - 3
    subgraph = backward(y, "the output should be larger")

Imports nothing of the harness: a user can take this package alone. The LLM clients live in
`trace_core.llm`, the optimizers (OptoPrime and its base) in `trace_core.optimizers`.
"""
from trace_core.backward import Subgraph, backward
from trace_core.bundle import BundledFunction, MissingInputsError, bundle
from trace_core.module import Module, model
from trace_core import operators as _operators  # noqa: F401  installs Node's operators
from trace_core.graph import (ExceptionNode, ExecutionError, Graph, MessageNode, Node, ParameterNode,
                              apply_op, graph_context, node)
from trace_core.reads import stop_tracing

__all__ = ["BundledFunction", "ExceptionNode", "ExecutionError", "Graph", "MessageNode", "MissingInputsError", "Module",
           "Node", "ParameterNode", "Subgraph", "apply_op", "backward", "bundle", "graph_context",
           "model", "node", "stop_tracing"]

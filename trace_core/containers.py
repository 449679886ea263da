"""Containers of nodes, as Trace programs use them.

    params = Seq(node(1.0, trainable=True), Map({"bias": node(0.0, trainable=True)}))
    params.parameters()              # both trainable nodes, found at any depth
    to_data(params)                  # [1.0, {"bias": 0.0}]: the values, no node left
    broadcast(operators.add, out, left, right)   # out.<field> = left.<field> + right.<field>

`Seq` and `Map` are a list and a dict (they pickle and compare as one) that list the trainable
nodes they hold; a node *of* a list is one value, these hold many. `NodeContainer` marks a class
whose attributes `broadcast` walks.
"""
from __future__ import annotations

from typing import Any, Callable

from trace_core.graph import Node, ParameterNode


class Seq(list):
    """A list of values and nodes. `Seq(a, b)` and `Seq([a, b])` are the same."""

    def __init__(self, *items: Any) -> None:
        one_sequence = len(items) == 1 and isinstance(items[0], (list, tuple))
        super().__init__(items[0] if one_sequence else items)

    def parameters(self) -> list[ParameterNode]:
        return parameters_in(self)


class Map(dict):
    """A dict whose keys and values may be nodes (trainable ones included)."""

    def parameters(self) -> list[ParameterNode]:
        return parameters_in(self)


class NodeContainer:
    """Base of a class whose attributes (nodes, lists, dicts, other NodeContainers) `broadcast`
    goes through field by field."""


def parameters_in(value: Any) -> list[ParameterNode]:
    """The trainable nodes held at any depth of lists, tuples, sets and dicts (keys included),
    each once, in the order met."""
    found: dict[int, ParameterNode] = {}
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, ParameterNode):
            found.setdefault(id(item), item)
        elif isinstance(item, dict):
            stack.extend(reversed([part for pair in item.items() for part in pair]))
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(reversed(list(item)))
    return list(found.values())


def to_data(value: Any) -> Any:
    """The value with every node replaced by its data, at any depth (a node's data that holds
    nodes included): lists, tuples, sets and dicts are rebuilt as the plain built-in kind."""
    if isinstance(value, Node):
        return to_data(value._data)
    if isinstance(value, dict):
        return {to_data(k): to_data(v) for k, v in value.items()}
    for kind in (list, tuple, set, frozenset):
        if isinstance(value, kind):
            return kind(to_data(item) for item in value)
    return value


def broadcast(fn: Callable[..., Any], output: Any, *args: Any, **kwargs: Any) -> Any:
    """Apply `fn` where `output` holds a node, to the arguments' parts at the same place, and
    write the result there: through list and tuple positions, dict keys and the attributes of a
    NodeContainer. Other values of `output` stay as they are; an argument that is not a
    container of the same kind is passed whole to every place. Returns `output` (filled in place,
    except a tuple, which is rebuilt)."""
    if isinstance(output, Node):
        return fn(*args, **kwargs)

    def at(item: Any, pick: Callable[[Any], Any]) -> Any:  # broadcast into one place of output
        return broadcast(fn, item, *map(pick, args), **{k: pick(v) for k, v in kwargs.items()})

    if isinstance(output, (list, tuple)):
        parts = [at(item, lambda v, i=i: v[i] if isinstance(v, (list, tuple)) else v)
                 for i, item in enumerate(output)]
        if isinstance(output, tuple):
            return type(output)(parts)
        output[:] = parts
    elif isinstance(output, dict):
        for key, item in output.items():
            output[key] = at(item, lambda v, k=key: v[k] if isinstance(v, dict) else v)
    elif isinstance(output, NodeContainer):
        for name, item in vars(output).items():
            setattr(output, name, at(item, lambda v, n=name: getattr(v, n) if isinstance(v, NodeContainer) else v))
    return output

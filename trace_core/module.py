"""`@model` classes: their trainable values and code, found by attribute path, saved and loaded.

    @model
    class Agent:
        def __init__(self):
            self.gain = node(1.0, trainable=True, name="gain")

        @bundle(trainable=True)
        def act(self, obs):
            return obs * 2

    agent = Agent()
    agent.parameters()          # [the code of act, gain]
    agent.named_parameters()    # {"act": ..., "gain": ...}: keyed by attribute path
    agent.save("agent.json"); Agent().load("agent.json")   # a fresh instance: same paths
    agent(obs)                  # runs agent.forward(obs)

Paths go through attributes, list/tuple indices, dict keys and nested modules ("encoder.act",
"layers.0", "table.bias"). A trainable bundled method is found whether or not it was used yet.
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Iterator

from trace_core.bundle import BundledFunction
from trace_core.graph import ParameterNode
class Module:
    """Parameter discovery, saving and loading for `@model` classes (see the module docstring)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        forward = getattr(self, "forward", None)
        if forward is None:
            raise TypeError(f"{type(self).__name__} has no forward() to call")
        return forward(*args, **kwargs)

    def named_parameters(self) -> dict[str, ParameterNode]:
        """Attribute path -> trainable node (a parameter reachable twice keeps its first path)."""
        found: dict[str, ParameterNode] = {}
        seen: set[int] = set()
        stack: list[tuple[str, Any]] = [("", self)]
        while stack:
            path, value = stack.pop()
            if isinstance(value, ParameterNode) or isinstance(value, BundledFunction):
                parameter = value if isinstance(value, ParameterNode) else value.parameter
                if parameter is not None and id(parameter) not in seen:
                    seen.add(id(parameter))
                    found[path] = parameter
                continue
            if id(value) in seen:
                continue
            children = list(_members(value))
            if children:
                seen.add(id(value))
            # reversed onto the stack, so members are visited (and paths kept) in their order
            stack.extend((f"{path}.{key}" if path else str(key), child) for key, child in reversed(children))
        return found

    def parameters(self) -> list[ParameterNode]:
        return list(self.named_parameters().values())

    def parameters_dict(self) -> dict[str, ParameterNode]:
        """py_name -> parameter (the names the optimizer's prompt uses)."""
        return {p.py_name: p for p in self.parameters()}

    def save(self, path: str | Path) -> None:
        """Parameter values as JSON keyed by attribute path (code parameters are their source)."""
        values = {key: p.data for key, p in self.named_parameters().items()}
        Path(path).write_text(json.dumps(values, indent=1, default=_not_json))

    def load(self, path: str | Path) -> None:
        """Restore what save() wrote; a path the file names that this model lacks is an error."""
        values = json.loads(Path(path).read_text())
        parameters = self.named_parameters()
        unknown = sorted(set(values) - set(parameters))
        if unknown:
            raise ValueError(f"{path} names no parameter of {type(self).__name__} at: {', '.join(unknown)}")
        for key, value in values.items():
            current = parameters[key].data
            parameters[key]._data = tuple(value) if isinstance(current, tuple) and isinstance(value, list) else value


def _members(value: Any) -> Iterator[tuple[Any, Any]]:
    """What a parameter search looks inside: a module's attributes (its trainable bundled
    methods as this instance's own copies) and the items of lists, tuples and dicts."""
    if isinstance(value, Module):
        for name in dir(type(value)):
            attr = inspect.getattr_static(type(value), name, None)
            if isinstance(attr, BundledFunction) and attr.trainable:
                yield name, attr.for_instance(value)
        for name, attr in vars(value).items():
            if not name.startswith("_bundle_"):  # the per-instance copies, already yielded by name
                yield name, attr
    elif isinstance(value, (list, tuple)):
        yield from enumerate(value)
    elif isinstance(value, dict):
        yield from value.items()


def _not_json(value: Any) -> Any:
    raise TypeError(f"save() writes JSON; a parameter holds a {type(value).__name__}, which JSON cannot hold")


def model(cls: type) -> type:
    """Class decorator: the class gains `parameters()`, `named_parameters()`, `save()`, `load()`,
    and calling an instance runs its `forward`."""
    return type(cls.__name__, (cls, Module), {"__module__": cls.__module__,
                                              "__qualname__": cls.__qualname__, "__doc__": cls.__doc__})

"""`@model` classes: their trainable values and code, found by attribute path, saved and loaded.

    @model
    class Agent:
        def __init__(self):
            self.gain = node(1.0, trainable=True, name="gain")

        @bundle(trainable=True)
        def act(self, obs):
            return obs * 2

    agent = Agent()
    agent.parameters()      # [gain, the code of act]
    agent.save("agent.json"); Agent().load("agent.json")
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path

from trace_core.bundle import BundledFunction
from trace_core.graph import ParameterNode
class Module:
    """Parameter discovery for `@model` classes: ParameterNodes held in attributes (also inside
    lists, tuples, dicts and nested modules) and the code of trainable bundled methods."""

    def parameters(self) -> list[ParameterNode]:
        found: dict[int, ParameterNode] = {}
        for name in dir(type(self)):
            attr = inspect.getattr_static(type(self), name, None)
            if isinstance(attr, BundledFunction) and attr.trainable:
                getattr(self, name)  # creates this instance's own copy
        stack: list[Any] = list(vars(self).values())
        while stack:
            value = stack.pop()
            if isinstance(value, ParameterNode):
                found.setdefault(id(value), value)
            elif isinstance(value, BundledFunction) and value.parameter is not None:
                found.setdefault(id(value.parameter), value.parameter)
            elif isinstance(value, Module):
                stack.extend(vars(value).values())
            elif isinstance(value, (list, tuple)):
                stack.extend(value)
            elif isinstance(value, dict):
                stack.extend(value.values())
        return sorted(found.values(), key=lambda p: p.name)

    def parameters_dict(self) -> dict[str, ParameterNode]:
        return {p.py_name: p for p in self.parameters()}

    def save(self, path: str | Path) -> None:
        """Parameter values as JSON (code parameters are their source text)."""
        Path(path).write_text(json.dumps({k: p.data for k, p in self.parameters_dict().items()}, indent=1))

    def load(self, path: str | Path) -> None:
        values = json.loads(Path(path).read_text())
        for name, parameter in self.parameters_dict().items():
            if name in values:
                parameter._data = values[name]


def model(cls: type) -> type:
    """Class decorator: the class gains `parameters()`, `parameters_dict()`, `save()`, `load()`."""
    return type(cls.__name__, (cls, Module), {"__module__": cls.__module__,
                                              "__qualname__": cls.__qualname__, "__doc__": cls.__doc__})

"""`bundle` turns a function into one recorded operator; `model` collects a class's parameters.

    @bundle()
    def clip(x, low, high):
        \"\"\"Clamps x into [low, high].\"\"\"
        return max(low, min(x, high))

    @bundle(trainable=True)          # the *source* becomes a ParameterNode an optimizer rewrites
    def policy(obs):
        \"\"\"Maps an observation to an action.\"\"\"
        return [0, 0, 0, 0]

Calling a bundled function records one MessageNode whose inputs are the call's arguments (and,
when trainable, the code parameter). Its documentation is the docstring. An exception inside
becomes an ExceptionNode raised in an ExecutionError; trainable code also runs with a time limit.
"""
from __future__ import annotations

import copy
import functools
import inspect
import json
from pathlib import Path
from typing import Any, Callable

from trace_core.code import (TRAINABLE_FILENAME, CodeError, CodeTimeout, compile_function,
                             describe_error, function_source, run_with_time_limit, source_header)
from trace_core.graph import ExceptionNode, ExecutionError, MessageNode, Node, Operator, ParameterNode

CODE_PREFIX = "__code_"  # names of code parameters start with this (the optimizer checks it)


class BundledFunction:
    def __init__(self, fn: Callable[..., Any], description: str | None, trainable: bool,
                 catch_execution_error: bool, time_limit_s: float) -> None:
        functools.update_wrapper(self, fn)
        self._fn, self._namespace = fn, fn.__globals__
        self._signature = inspect.signature(fn)
        doc = inspect.getdoc(fn) or ""
        self.op = Operator(fn.__name__, description or f"[{fn.__name__}] {doc}".strip())
        self.catch_execution_error, self.time_limit_s = catch_execution_error, time_limit_s
        self.parameter: ParameterNode | None = None
        if trainable:
            source = function_source(fn)
            self.parameter = ParameterNode(
                source, name=CODE_PREFIX + fn.__name__,
                description=f"[ParameterNode] the source code of `{fn.__name__}`",
                constraint="The code should start with:\n" + source_header(source))
            self._compiled = (source, fn)

    @property
    def trainable(self) -> bool:
        return self.parameter is not None

    def function(self) -> Callable[..., Any]:
        """The function as the code parameter currently says (recompiled when it changed)."""
        if self.parameter is None:
            return self._fn
        source = self.parameter.data
        if source != self._compiled[0]:
            fn = compile_function(source, self._fn.__name__, self._namespace,
                                  list(self._signature.parameters), self.time_limit_s)
            self._compiled = (source, fn)
        return self._compiled[1]

    def __call__(self, *args: Any, **kwargs: Any) -> MessageNode:
        inputs = self._inputs(args, kwargs)
        try:
            fn = self.function()
        except CodeError as exc:
            self._fail(f"(CodeError) {exc}", inputs, exc)
        raw_args = [a.data if isinstance(a, Node) else a for a in args]
        raw_kwargs = {k: v.data if isinstance(v, Node) else v for k, v in kwargs.items()}
        try:
            if self.parameter is None:
                value = fn(*raw_args, **raw_kwargs)
            else:
                value = run_with_time_limit(lambda: fn(*raw_args, **raw_kwargs), self.time_limit_s)
        except CodeTimeout as exc:
            self._fail(f"(TimeoutError) `{self.op.name}` {exc}", inputs, exc)
        except Exception as exc:
            if not self.catch_execution_error:
                raise
            source = self.parameter.data if self.parameter is not None else None
            self._fail(describe_error(exc, source, TRAINABLE_FILENAME.format(self.op.name)), inputs, exc)
        return MessageNode(value.data if isinstance(value, Node) else value, self.op, inputs)

    def _inputs(self, args: tuple, kwargs: dict[str, Any]) -> dict[str, Node]:
        """Argument name -> node (plain values become constant nodes named after the argument)."""
        bound = self._signature.bind(*args, **kwargs)
        inputs: dict[str, Node] = {}
        for name, value in bound.arguments.items():
            kind = self._signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                items = {f"{name}{i}": v for i, v in enumerate(value)}
            elif kind is inspect.Parameter.VAR_KEYWORD:
                items = dict(value)
            else:
                items = {name: value}
            inputs.update({k: v if isinstance(v, Node) else Node(v, name=k) for k, v in items.items()})
        if self.parameter is not None:
            inputs["__code"] = self.parameter
        return inputs

    def _fail(self, message: str, inputs: dict[str, Node], cause: BaseException) -> None:
        raise ExecutionError(ExceptionNode(message, self.op, inputs, name="exception")) from cause

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        """As a method: each instance gets its own copy (so its own code parameter)."""
        if instance is None:
            return self
        if self.parameter is None:
            return functools.partial(self, instance)
        key = f"_bundle_{self.op.name}"
        own = instance.__dict__.get(key)
        if own is None:
            own = copy.copy(self)
            own.parameter = ParameterNode(self.parameter.data, name=CODE_PREFIX + self.op.name,
                                          description=self.parameter.description,
                                          constraint=self.parameter.constraint)
            instance.__dict__[key] = own
        return functools.partial(own, instance)


def bundle(description: str | None = None, trainable: bool = False,
           catch_execution_error: bool = True, time_limit_s: float = 10.0
           ) -> Callable[[Callable[..., Any]], BundledFunction]:
    """Decorator: record calls of the function as one operator (see the module docstring)."""
    def decorate(fn: Callable[..., Any]) -> BundledFunction:
        return BundledFunction(fn, description, trainable, catch_execution_error, time_limit_s)
    return decorate


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

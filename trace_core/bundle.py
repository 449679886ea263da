"""`bundle` turns a function into one recorded operator.

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
becomes an ExceptionNode raised in an ExecutionError, whose text shows the code with the failing
line marked; trainable code also runs with a time limit. An `async def` is bundled the same way:
calling it returns a coroutine that gives the MessageNode.

Every node the function touches must reach it as an argument: one that is (or is computed from)
a trainable parameter but is read from a global or a closure would silently drop out of the
graph, so the call raises MissingInputsError instead (`allow_external_dependencies=True` allows
it). Rewritten code that does this gets the same message back as feedback.
"""
from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Callable

from trace_core.backward import ancestors
from trace_core.sandbox import calls as sandbox_calls
from trace_core.sandbox import check_mode
from trace_core.code import (TRAINABLE_FILENAME, CodeError, CodeTimeout, closure_cells, compile_function,
                             describe_error, run_with_time_limit, source_block, source_header)
from trace_core.graph import ExceptionNode, ExecutionError, MessageNode, Node, Operator, ParameterNode, lift
from trace_core.reads import Reads, is_tracing, note_made, recording_reads

CODE_PREFIX = "__code_"  # names of code parameters start with this (the optimizer checks it)


class MissingInputsError(TypeError):
    """A bundled function used a trainable node it was not given as an argument."""


class BundledFunction:
    def __init__(self, fn: Callable[..., Any], description: str | None = None, trainable: bool = False,
                 catch_execution_error: bool = True, time_limit_s: float = 10.0,
                 allow_external_dependencies: bool = False,
                 enclosing: dict[str, Any] | None = None, sandbox: str | None = None) -> None:
        functools.update_wrapper(self, fn)
        self._fn = fn
        # What rewritten code can see besides its globals: the enclosing function's locals at
        # definition time, and (live, through their cells) the free variables the original reads.
        self._enclosing = enclosing or {}
        self._namespace = {**getattr(inspect.unwrap(fn), "__globals__", {}), **self._enclosing}
        self._cells = closure_cells(fn)
        self._signature = inspect.signature(fn)
        doc = inspect.getdoc(fn) or ""
        self.op = Operator(_operator_name(fn, description, trainable), description or f"[{fn.__name__}] {doc}".strip())
        self.catch_execution_error, self.time_limit_s = catch_execution_error, time_limit_s
        self.allow_external_dependencies = allow_external_dependencies
        self.sandbox = check_mode(sandbox) if sandbox is not None else None  # None: the default mode
        self.parameter: ParameterNode | None = None
        self._source: tuple[str, int, str] | None = None  # the original's source, read on first need
        if trainable:
            self._source = source_block(fn)
            source = self._source[0]
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
        source = self.parameter._data  # not .data: the code is already an input of the call
        if source != self._compiled[0]:
            fn = compile_function(source, self._fn.__name__, self._namespace,
                                  self._signature, self.time_limit_s, self._cells)
            self._compiled = (source, fn)
        return self._compiled[1]

    def parameters(self) -> list[ParameterNode]:
        return [self.parameter] if self.parameter is not None else []

    def save(self, path: str | Path) -> None:
        """The code parameter's source, as JSON."""
        Path(path).write_text(json.dumps({"code": self._own_parameter("save").data}, indent=1))

    def load(self, path: str | Path) -> None:
        self._own_parameter("load")._data = json.loads(Path(path).read_text())["code"]

    def _own_parameter(self, action: str) -> ParameterNode:
        if self.parameter is None:
            raise TypeError(f"`{self.op.name}` is not trainable: it has no code to {action}")
        return self.parameter

    def __deepcopy__(self, memo: dict[int, Any]) -> BundledFunction:
        """A copy with its own code parameter; the function, its globals and closure are shared
        (modules in the globals cannot be copied, and need not be)."""
        twin = copy.copy(self)
        twin.parameter = copy.deepcopy(self.parameter, memo)
        return twin

    def __sandbox__(self) -> tuple[str, Any, Any]:
        """How this function reaches a sandbox worker when trainable code there uses it: as the
        plain function it wraps, or (trainable) its current code (sandbox/transfer.py)."""
        if self.parameter is None:
            return "function", self._fn, None
        return "trainable", sandbox_calls.fields(self), None

    def _note_calls(self, inputs: dict[str, Node], called: list[Any]) -> None:
        """The trainable functions a sandboxed call ran: their code parameters become inputs."""
        _add_code_inputs(inputs, [fn.parameter for fn in called])

    def rewritten(self) -> bool:
        return self.parameter is not None and self.parameter._data != self._source[0]

    # -- calling --------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        inputs, raw_args, raw_kwargs = self._inputs(args, kwargs)
        if sandbox_calls.sandboxed(self):  # trainable code runs in a worker process, never here
            if inspect.iscoroutinefunction(inspect.unwrap(self._fn)):
                return asyncio.to_thread(sandbox_calls.call, self, inputs, raw_args, raw_kwargs)
            return sandbox_calls.call(self, inputs, raw_args, raw_kwargs)
        try:
            fn = self.function()
        except CodeError as exc:
            self._fail(f"(CodeError) {exc}", inputs, exc)
        if inspect.iscoroutinefunction(inspect.unwrap(fn)):
            return self._call_async(fn, raw_args, raw_kwargs, inputs)
        with recording_reads() as reads:
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
                self._fail(self._describe(exc), inputs, exc)
        return self._result(value, inputs, reads)

    async def _call_async(self, fn: Callable[..., Any], raw_args: list, raw_kwargs: dict,
                          inputs: dict[str, Node]) -> MessageNode:
        # Each asyncio task runs in its own copy of the context, so concurrent calls collect apart.
        # Trainable code's time limit holds at its awaits (a busy loop between them runs on).
        with recording_reads() as reads:
            try:
                running = fn(*raw_args, **raw_kwargs)
                value = await (running if self.parameter is None
                               else asyncio.wait_for(running, self.time_limit_s))
            except asyncio.TimeoutError as exc:
                if self.parameter is None:
                    raise
                self._fail(f"(TimeoutError) `{self.op.name}` timed out after {self.time_limit_s:g} s", inputs, exc)
            except Exception as exc:
                if not self.catch_execution_error:
                    raise
                self._fail(self._describe(exc), inputs, exc)
        return self._result(value, inputs, reads)

    def _result(self, value: Any, inputs: dict[str, Node], reads: Reads,
                called: list[ParameterNode] = ()) -> MessageNode:
        if isinstance(value, Node):
            reads.used.append(value)
            value = value._data
        if not is_tracing():  # stop_tracing(): the value alone, and no dependency to check
            return MessageNode(value, self.op, {})
        _add_code_inputs(inputs, [*reads.used, *called])
        missing = self._missing_inputs(reads, inputs)
        if missing:
            message = (f"`{self.op.name}` used {', '.join(missing)} without receiving it as an "
                       "argument, so the graph would not show that the result depends on it. Pass "
                       "it as an argument" + ("." if self.rewritten() else
                                              ", or bundle with allow_external_dependencies=True."))
            if not self.rewritten():  # the developer's code: a bug to fix, not feedback
                raise MissingInputsError(message)
            self._fail(f"(MissingInputsError) {message}", inputs, MissingInputsError(message))
        result = MessageNode(value, self.op, inputs)
        note_made(result, inputs.values())  # for an enclosing bundled call, if any
        return result

    def _missing_inputs(self, reads: Reads, inputs: dict[str, Node]) -> list[str]:
        """py_names of used nodes that came from outside (not inputs, not made in this call) and
        depend on a trainable parameter. Only the outside nodes are walked."""
        if self.allow_external_dependencies or not reads.used:
            return []
        given = {id(n) for n in inputs.values()}
        outside = {id(n): n for n in reads.used if id(n) not in given and id(n) not in reads.made}
        return [n.py_name for n in outside.values() if any(a.trainable for a in ancestors(n))]

    def _describe(self, exc: BaseException) -> str:
        """The error text, with the code that raised and its failing line marked."""
        if self.rewritten():
            source, first, filename = self.parameter._data, 1, TRAINABLE_FILENAME.format(self.op.name)
        else:
            if self._source is None:
                try:
                    self._source = source_block(self._fn)
                except CodeError:
                    self._source = ("", 0, "")
            source, first, filename = self._source
        return describe_error(exc, source or None, filename, first, name=self.op.name)

    def _inputs(self, args: tuple, kwargs: dict[str, Any]) -> tuple[dict[str, Node], tuple, dict]:
        """Argument name -> node (plain values become constant nodes named after the argument;
        containers holding nodes become recorded constructions of them), and the plain values
        to call the function with."""
        bound = self._signature.bind(*args, **kwargs)
        inputs: dict[str, Node] = {}
        for name, value in list(bound.arguments.items()):
            kind = self._signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                nodes = [_as_input(v, f"{name}{i}") for i, v in enumerate(value)]
                inputs.update((f"{name}{i}", n) for i, n in enumerate(nodes))
                bound.arguments[name] = tuple(n._data for n in nodes)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                nodes = {k: _as_input(v, k) for k, v in value.items()}
                inputs.update(nodes)
                bound.arguments[name] = {k: n._data for k, n in nodes.items()}
            elif isinstance(getattr(value, "parameter", None), ParameterNode):
                inputs[name] = value.parameter  # a trainable function passed in: its code is the input
            else:
                inputs[name] = _as_input(value, name)
                bound.arguments[name] = inputs[name]._data
        if self.parameter is not None:
            inputs["__code"] = self.parameter
        return inputs, bound.args, bound.kwargs

    def _fail(self, message: str, inputs: dict[str, Node], cause: BaseException) -> None:
        raise ExecutionError(ExceptionNode(message, self.op, inputs, name="exception")) from cause

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        """As a method: each instance gets its own copy (so its own code parameter)."""
        if instance is None:
            return self
        if self.parameter is None:
            return functools.partial(self, instance)
        return BoundTrainable(self.for_instance(instance), instance)

    def for_instance(self, instance: Any) -> BundledFunction:
        key = f"_bundle_{self.op.name}"
        own = instance.__dict__.get(key)
        if own is None:
            own = copy.copy(self)
            own.parameter = ParameterNode(self.parameter.data, name=CODE_PREFIX + self.op.name,
                                          description=self.parameter.description,
                                          constraint=self.parameter.constraint)
            instance.__dict__[key] = own
        return own


class BoundTrainable(functools.partial):
    """A trainable bundled method bound to its instance: callable, with `.parameter` (the
    instance's own code parameter) as on the bundled function itself."""

    @property
    def parameter(self) -> ParameterNode:
        return self.func.parameter

    @property
    def trainable(self) -> bool:
        return True

    def __sandbox__(self) -> tuple[str, Any, Any]:
        return "trainable", sandbox_calls.fields(self.func), self.args[0]


def _add_code_inputs(inputs: dict[str, Node], used: list[Node]) -> None:
    """Code parameters of the trainable functions the call ran (called from its globals or
    closure, or passed in) become inputs of the call, so feedback reaches their code too."""
    given = {id(n) for n in inputs.values()}
    for n in used:
        if type(n) is ParameterNode and n.name.startswith(CODE_PREFIX) and id(n) not in given:
            inputs[n.py_name] = n
            given.add(id(n))


def _operator_name(fn: Callable[..., Any], description: str | None, trainable: bool) -> str:
    """A description that starts with `[name]` names the operator (upstream Trace's convention),
    so the report's calls and documentation agree. Not for trainable code: its code parameter,
    the sandbox and rewrites all go by the name the function is defined with."""
    if trainable or not description or not description.startswith("["):
        return fn.__name__
    name, closed, _ = description[1:].partition("]")
    return name.strip() if closed and name.strip() else fn.__name__


def _as_input(value: Any, name: str) -> Node:
    value = lift(value)
    return value if isinstance(value, Node) else Node(value, name=name)


def bundle(description: str | None = None, trainable: bool = False,
           catch_execution_error: bool = True, time_limit_s: float = 10.0,
           allow_external_dependencies: bool = False, sandbox: str | None = None
           ) -> Callable[[Callable[..., Any]], BundledFunction]:
    """Decorator: record calls of the function as one operator (see the module docstring).
    Trainable code runs in a sandbox worker process (`sandbox="process"`, the default unless
    trace_core.sandbox.set_default_mode says otherwise) or, with `sandbox="none"`, here."""
    def decorate(fn: Callable[..., Any]) -> BundledFunction:
        enclosing = _enclosing_locals(fn, sys._getframe(1)) if trainable else None
        return BundledFunction(fn, description, trainable, catch_execution_error, time_limit_s,
                               allow_external_dependencies, enclosing, sandbox)
    return decorate


def _enclosing_locals(fn: Callable[..., Any], frame: Any) -> dict[str, Any] | None:
    """The locals of the function `fn` was defined in, when that is the frame decorating it (so
    a rewrite can still use, say, a decorator or helper defined beside it)."""
    inner = inspect.unwrap(fn)
    qualname = getattr(inner, "__qualname__", "")
    if frame is None or not frame.f_code.co_flags & inspect.CO_OPTIMIZED:
        return None  # module level or a class body: globals already cover it
    if qualname != f"{frame.f_code.co_qualname}.<locals>.{inner.__name__}":
        return None
    return dict(frame.f_locals)

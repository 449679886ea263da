"""A trainable bundle's call, run in the sandbox (bundle.py hands over here when its mode is
"process"). The parent only parses the code (a syntax or signature error never runs anything
here); defining and calling it happen in a worker, and its errors come back as feedback text."""
from __future__ import annotations

import ast
import functools
import inspect
import types
from typing import Any

from trace_core.code import TRAINABLE_FILENAME, format_failure, function_parameters, signature_problem
from trace_core.graph import MessageNode, Node
from trace_core.reads import Reads, recording_reads
from trace_core.sandbox import default_executor, default_mode, in_worker
from trace_core.sandbox.executor import FunctionSpec, SandboxError, SandboxTimeout, WorkerCrashed
from trace_core.sandbox.executor import _plain as plain
from trace_core.sandbox.transfer import MUTABLE

# A trace_core.bundle.BundledFunction: bundle hands its calls over to this module, so this module
# does not import bundle back (the type is named in words, not imported).
BundledFunction = Any


def sandboxed(bundled: BundledFunction) -> bool:
    """Does this bundle's trainable code run in a worker process? (Inside a worker, it runs there.)"""
    return bundled.parameter is not None and (bundled.sandbox or default_mode()) == "process" and not in_worker()


def call(bundled: BundledFunction, inputs: dict[str, Node], args: tuple, kwargs: dict[str, Any]
         ) -> MessageNode:
    name, source = bundled.op.name, bundled.parameter._data
    try:
        spec = function_spec(bundled, source)
    except SyntaxError as exc:
        bundled._fail(f"(CodeError) (SyntaxError) {exc.msg} at line {exc.lineno}: "
                      f"{(exc.text or '').strip()}", inputs, exc)
    except ValueError as exc:
        bundled._fail(f"(CodeError) {exc}", inputs, exc)
    outside = Reads()
    outside.used.extend(outside_nodes(bundled, source))  # the worker would read copies: check here
    if bundled._missing_inputs(outside, inputs):
        return bundled._result(None, inputs, outside)  # raises MissingInputsError, or fails as feedback
    with recording_reads() as reads:
        try:
            rebound: dict[str, Any] = {}
            called: list[Any] = []  # trainable functions the code called (their code is an input)
            try:
                value = default_executor().call(spec, args, kwargs, bundled.time_limit_s, current_cells(bundled),
                                                rebound, current_globals(bundled, source), called)
            finally:
                for cell_name, cell_value in rebound.items():  # `nonlocal` writes, as in-process
                    bundled._cells[cell_name].cell_contents = cell_value
                bundled._note_calls(inputs, called)
        except SandboxTimeout as exc:
            bundled._fail(f"(TimeoutError) `{name}` {exc}", inputs, exc)
        except SandboxError as exc:
            if not bundled.catch_execution_error and exc.phase == "call":
                raise
            text = format_failure(source, exc.line, exc.type_name, exc.message, name=name)
            bundled._fail(f"(CodeError) {text}" if exc.phase == "define" else text, inputs, exc)
        except (WorkerCrashed, ValueError) as exc:  # ValueError: a reply that could not be read
            if not bundled.catch_execution_error:
                raise
            bundled._fail(f"({type(exc).__name__}) {exc}", inputs, exc)
    return bundled._result(value, inputs, reads)


def outside_nodes(bundled: BundledFunction, source: str) -> list[Node]:
    """Nodes the code names from its closure or globals. In-process, reading one is noticed as it
    happens; the worker reads copies, so the parent notes them here, and the bundle's check that
    every trainable dependency arrived as an input (MissingInputsError) holds in both modes."""
    if bundled.allow_external_dependencies:
        return []
    module_globals = inspect.unwrap(bundled._fn).__globals__
    found = [_lookup(bundled, module_globals, name) for name in sorted(read_names(source))]
    return [value for value in found if isinstance(value, Node)]


_MISSING = object()


def _lookup(bundled: BundledFunction, module_globals: dict[str, Any], name: str) -> Any:
    """What `name` means to the code now: an enclosing function's local, the closure, or the module's global."""
    if name in bundled._enclosing:
        return bundled._enclosing[name]
    cell = bundled._cells.get(name)
    if cell is not None:
        return cell.cell_contents if _filled(cell) else _MISSING
    return module_globals.get(name, _MISSING)


def function_spec(bundled: BundledFunction, source: str) -> FunctionSpec:
    """What the worker needs for `source`, checked here without running it: it parses, and
    defines the function under its name with the original's parameter names."""
    cached = getattr(bundled, "_sandbox_spec", None)
    if cached is not None and cached.source == source:
        return cached
    name = bundled.op.name
    tree = ast.parse(source, TRAINABLE_FILENAME.format(name))
    found = [s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == name]
    if not found:
        raise ValueError(f"the code must define a function named `{name}`")
    problem = signature_problem(name, list(bundled._signature.parameters.values()), function_parameters(found[-1]))
    if problem:  # the rule code parameters are checked by when a rewrite is accepted
        raise ValueError(problem)
    rebinds = {n for node in ast.walk(tree) if isinstance(node, ast.Nonlocal) for n in node.names}
    inner = inspect.unwrap(bundled._fn)
    spec = FunctionSpec.of(inner, source, TRAINABLE_FILENAME.format(name))
    # Enclosing locals that the original source names (its decorators too), not all of them.
    used = {n.id for n in ast.walk(ast.parse(bundled._source[0])) if isinstance(n, ast.Name)}
    extra = {k: v for k, v in bundled._namespace.items()  # objects go per call (current_globals)
             if k not in inner.__globals__ and k in used and plain(v)}
    bundled._sandbox_spec = FunctionSpec(spec.source, name, spec.filename, spec.module, spec.modules,
                                         spec.globals, extra, {}, tuple(sorted(rebinds & set(bundled._cells))))
    return bundled._sandbox_spec


def fields(bundled: BundledFunction) -> dict[str, Any]:
    """A trainable function as a worker defines it when other trainable code uses it: its
    current code, closure and globals (transfer.py sends it; rebuild.py defines it there)."""
    source = bundled.parameter._data
    try:
        spec = function_spec(bundled, source)
    except (SyntaxError, ValueError):  # defined in the worker, so the error becomes the caller's feedback
        spec = FunctionSpec.of(inspect.unwrap(bundled._fn), source, TRAINABLE_FILENAME.format(bundled.op.name))
    return {**spec.fields(), "cells": current_cells(bundled), "overrides": current_globals(bundled, source)}


def current_globals(bundled: BundledFunction, source: str) -> dict[str, Any]:
    """The names the code reads from its enclosing function or module whose values the worker's
    own import would not hold as they are here now: objects, nodes, functions, and mutable
    containers (their changes come back). Modules and immutable plain values it has."""
    module_globals = inspect.unwrap(bundled._fn).__globals__
    found: dict[str, Any] = {}
    for name in read_names(source):
        if name == bundled.op.name or name in bundled._cells:
            continue
        value = _lookup(bundled, module_globals, name)
        if value is _MISSING or isinstance(value, types.ModuleType) or (plain(value) and type(value) not in MUTABLE):
            continue
        found[name] = value
    return found


@functools.lru_cache(maxsize=256)
def read_names(source: str) -> tuple[str, ...]:
    """The names the code reads (parsed once per source: this runs on every call)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ()
    return tuple(sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}))


def current_cells(bundled: BundledFunction) -> dict[str, Any]:
    """The closure's values now (the worker gets copies; rebinds come back, see call)."""
    return {k: cell.cell_contents for k, cell in bundled._cells.items() if _filled(cell)}


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True

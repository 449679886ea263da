"""Trainable code: turning source text into a function, checking it, and running it with a time limit.

An LLM may write code that does not compile, renames the function, changes its signature or never
returns. Each of these must come back as feedback text, never hang or crash the run.
"""
from __future__ import annotations

import ast
import inspect
import sys
import textwrap
import time
import traceback
import types
from typing import Any, Callable

TRAINABLE_FILENAME = "<trainable {}>"


class CodeError(Exception):
    """The source of a code parameter cannot become the function it must define."""


class CodeTimeout(BaseException):
    """Raised inside code that ran past its time limit. A BaseException, so a bare
    `except Exception` in the generated code cannot swallow it."""


def function_source(fn: Callable[..., Any]) -> str:
    """The function's source without its decorator lines, dedented."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except OSError:
        raise CodeError(f"bundle(trainable=True) needs the source of `{fn.__name__}`: define it in "
                        "a file or a notebook cell, not in exec'd or typed-in code") from None
    tree = ast.parse(source)
    definition = tree.body[0]
    lines = source.splitlines()
    return "\n".join(lines[definition.lineno - 1:]) + "\n"  # lineno of `def`, after decorators


def source_header(source: str) -> str:
    """`def ...:` plus the docstring: what the optimizer must keep (its constraint text)."""
    definition = ast.parse(source).body[0]
    first = definition.body[0]
    keep_docstring = isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant)
    end = first.end_lineno if keep_docstring else definition.body[0].lineno - 1
    return "\n".join(source.splitlines()[: max(end, 1)])


def compile_function(source: str, name: str, namespace: dict[str, Any],
                     parameters: list[str] | None = None, time_limit_s: float = 10.0) -> types.FunctionType:
    """Execute `source` in a copy of `namespace` and return the function called `name`.

    CodeError says what is wrong: a syntax error (with its line), no function of that name, or
    a signature whose parameter names differ from `parameters`.
    """
    filename = TRAINABLE_FILENAME.format(name)
    try:
        compiled = compile(source, filename, "exec")
    except SyntaxError as exc:
        raise CodeError(f"(SyntaxError) {exc.msg} at line {exc.lineno}: {(exc.text or '').strip()}") from None
    scope = dict(namespace)  # redefinitions stay out of the module the function came from
    try:
        run_with_time_limit(lambda: exec(compiled, scope), time_limit_s)
    except CodeTimeout as exc:
        raise CodeError(str(exc)) from None
    except Exception as exc:
        raise CodeError(describe_error(exc, source, filename)) from None
    fn = scope.get(name)
    if not isinstance(fn, types.FunctionType):
        raise CodeError(f"the code must define a function named `{name}`")
    if parameters is not None:
        found = list(inspect.signature(fn).parameters)
        if found != parameters:
            raise CodeError(f"`{name}` must keep its parameters ({', '.join(parameters)}); "
                            f"got ({', '.join(found)})")
    return fn


def run_with_time_limit(call: Callable[[], Any], seconds: float) -> Any:
    """Run `call()`; past `seconds` of wall time the running Python code raises CodeTimeout.

    A trace function checks the clock on every line and call, in this thread only, so it works
    off the main thread (unlike SIGALRM). Cost: generated code runs slower while it is traced;
    time spent inside one long C call is not interrupted until it returns.
    """
    deadline = time.monotonic() + seconds
    previous = sys.gettrace()

    def check_clock(frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "call":
            # Per-opcode events too: a loop on a single line (`while True: pass`) emits no new
            # line event on Python 3.11, so line events alone would never see the deadline pass.
            frame.f_trace_opcodes = True
        if time.monotonic() > deadline:
            raise CodeTimeout(f"timed out after {seconds:g} s")
        return check_clock

    sys.settrace(check_clock)
    try:
        return call()
    finally:
        sys.settrace(previous)


def describe_error(exc: BaseException, source: str | None = None, filename: str | None = None) -> str:
    """`(ErrorType) message`, plus the failing line of trainable code when the error is in it."""
    text = f"({type(exc).__name__}) {exc}"
    if source is None or filename is None:
        return text
    lines = source.splitlines()
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == filename and frame.lineno and frame.lineno <= len(lines):
            return f"{text}\n  at line {frame.lineno}: {lines[frame.lineno - 1].strip()}"
    return text


def check_replacement(source: Any, current: str) -> str:
    """Accept `source` as the new text of a code parameter whose text is now `current`: it must
    parse, and define (at top level) the same function with the same parameter names."""
    if not isinstance(source, str) or not source.strip():
        raise ValueError("code must be a non-empty string of Python source")
    source = textwrap.dedent(source)
    expected = _top_function(ast.parse(current))
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"the code does not compile: {exc.msg} at line {exc.lineno}") from None
    found = _top_function(tree, expected.name)
    if found is None:
        raise ValueError(f"the code must define the function `{expected.name}`")
    if _arg_names(found) != _arg_names(expected):
        raise ValueError(f"`{expected.name}` must keep its parameters ({', '.join(_arg_names(expected))})")
    compile(tree, TRAINABLE_FILENAME.format(expected.name), "exec")
    return source if source.endswith("\n") else source + "\n"


def _top_function(tree: ast.Module, name: str | None = None) -> Any:
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)) and name in (None, statement.name):
            return statement
    return None


def _arg_names(fn: ast.FunctionDef) -> list[str]:
    args = fn.args
    names = [a.arg for a in args.posonlyargs + args.args]
    names += [f"*{args.vararg.arg}"] if args.vararg else []
    names += [a.arg for a in args.kwonlyargs]
    return names + ([f"**{args.kwarg.arg}"] if args.kwarg else [])

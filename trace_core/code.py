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

from trace_core.graph import error_text

TRAINABLE_FILENAME = "<trainable {}>"


class CodeError(Exception):
    """The source of a code parameter cannot become the function it must define."""


class CodeTimeout(BaseException):
    """Raised inside code that ran past its time limit. A BaseException, so a bare
    `except Exception` in the generated code cannot swallow it."""


def source_block(fn: Callable[..., Any]) -> tuple[str, int, str]:
    """(source, first line in its file, file name) of a bundled function, as its code parameter
    holds it: dedented, without `@bundle` and the decorators above it, with the ones below it.

    Decorators below `@bundle` ran before bundle saw the function, so they are part of the code
    the optimizer may rewrite; ours (and any above it) are applied to whatever that code defines.
    """
    inner = inspect.unwrap(fn)
    try:
        source = textwrap.dedent(inspect.getsource(inner))
    except (OSError, TypeError):
        raise CodeError(f"bundle(trainable=True) needs the source of `{fn.__name__}`: define it in "
                        "a file or a notebook cell, not in exec'd or typed-in code") from None
    definition = ast.parse(source).body[0]
    decorators = getattr(definition, "decorator_list", [])
    lines = source.splitlines()
    # The last decorator that names bundle is ours; none (bundle(...)(fn) inline): keep them all.
    ours = [d for d in decorators if "bundle" in ast.get_source_segment(source, d)]
    keep_from = (ours[-1].end_lineno if ours else 0)
    first_line = inner.__code__.co_firstlineno
    return "\n".join(lines[keep_from:]) + "\n", first_line + keep_from, inner.__code__.co_filename


def function_source(fn: Callable[..., Any]) -> str:
    """The source a code parameter starts from (see source_block)."""
    return source_block(fn)[0]


def source_header(source: str) -> str:
    """Decorators, `def ...:` and the docstring: what the optimizer must keep (its constraint text)."""
    definition = ast.parse(source).body[0]
    first = definition.body[0]
    keep_docstring = isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant)
    end = first.end_lineno if keep_docstring else definition.body[0].lineno - 1
    return "\n".join(source.splitlines()[: max(end, 1)])


def closure_cells(fn: Callable[..., Any]) -> dict[str, Any]:
    """The function's free variables (the enclosing function's locals it reads), as live cells."""
    inner = inspect.unwrap(fn)
    code = getattr(inner, "__code__", None)
    if code is None or not code.co_freevars:
        return {}
    return dict(zip(code.co_freevars, inner.__closure__ or ()))


def compile_function(source: str, name: str, namespace: dict[str, Any],
                     signature: inspect.Signature | None = None, time_limit_s: float = 10.0,
                     cells: dict[str, Any] | None = None) -> Callable[..., Any]:
    """Execute `source` in a copy of `namespace` and return what it binds to `name`.

    `cells` are the original function's closure: the new code runs nested in a scope whose names
    are those very cells, so it reads (and `nonlocal` writes) the enclosing function's current
    values. CodeError says what is wrong: a syntax error (with its line), no function of that
    name, or a signature the original's callers could not call (see signature_problem).
    """
    filename = TRAINABLE_FILENAME.format(name)
    try:
        tree = ast.parse(source, filename)
        compiled = compile(_nested_in_cells(tree, cells) if cells else tree, filename, "exec")
    except SyntaxError as exc:
        raise CodeError(f"(SyntaxError) {exc.msg} at line {exc.lineno}: {(exc.text or '').strip()}") from None
    scope = dict(namespace)  # redefinitions stay out of the module the function came from
    run = (lambda: exec(compiled, scope)) if not cells else _cell_runner(compiled, scope, cells)
    try:
        defined = run_with_time_limit(run, time_limit_s)
    except CodeTimeout as exc:
        raise CodeError(str(exc)) from None
    except Exception as exc:
        raise CodeError(describe_error(exc, source, filename)) from None
    fn = (defined if cells else scope).get(name)
    if not callable(fn) or isinstance(fn, type):
        raise CodeError(f"the code must define a function named `{name}`")
    if signature is not None:
        found = list(inspect.signature(fn).parameters.values())
        problem = signature_problem(name, list(signature.parameters.values()), found)
        if problem:
            raise CodeError(problem)
    return fn


_CELLS_TEMPLATE = """
def __trace_cells__():
    def __trace_outer__():
        return locals()
    return __trace_outer__
"""


def _nested_in_cells(tree: ast.Module, cells: dict[str, Any]) -> ast.Module:
    """`tree` as the body of __trace_outer__, nested in a function whose locals are the cells'
    names, so the compiler makes those names free variables of the new code. Line numbers of
    the user's statements are unchanged (tracebacks point into `source`)."""
    wrapper = ast.parse(_CELLS_TEMPLATE)
    cells_def = wrapper.body[0]
    outer = cells_def.body[0]
    outer.body[:0] = tree.body
    cells_def.body[:0] = ast.parse("\n".join(f"{name} = None" for name in cells)).body
    return wrapper


def _cell_runner(compiled: types.CodeType, scope: dict[str, Any], cells: dict[str, Any]) -> Callable[[], dict]:
    """Run __trace_outer__ with the original cells as its closure; returns its locals."""
    cells_code = next(c for c in compiled.co_consts if isinstance(c, types.CodeType))
    outer_code = next(c for c in cells_code.co_consts
                      if isinstance(c, types.CodeType) and c.co_name == "__trace_outer__")
    closure = tuple(cells[var] for var in outer_code.co_freevars)
    return types.FunctionType(outer_code, scope, "__trace_outer__", None, closure)


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


def describe_error(exc: BaseException, source: str | None = None, filename: str | None = None,
                   first_line: int = 1, name: str = "") -> str:
    """`(ErrorType) message`, plus the code with its failing line marked when the error passed
    through `source` (which starts at `first_line` of `filename`)."""
    if source is None or filename is None:
        return error_text(exc)
    last_line = first_line + len(source.splitlines()) - 1
    line = failing_line(exc, filename, first_line, last_line)
    return format_failure(source, line, type(exc).__name__, str(exc), name=name)


def failing_line(exc: BaseException, filename: str, first_line: int, last_line: int) -> int | None:
    """The line (1 = `first_line`) of the deepest traceback frame inside that span of `filename`:
    where the code raised, or the call it made that raised."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename and frame.lineno and first_line <= frame.lineno <= last_line:
            found = frame.lineno - first_line + 1
    return found


def format_failure(source: str, line: int | None, error_type: str, message: str, name: str = "") -> str:
    """The feedback for code that raised: the error, then the code with numbered lines and the
    failing one marked `>>`. Plain data in, so a worker process can hand back just these."""
    head = f"({error_type}) {message}"
    lines = source.splitlines()
    if line is None or not 1 <= line <= len(lines):
        return head
    width = len(str(len(lines)))
    where = f" of `{name}`" if name else ""
    numbered = [f"{'>>' if i == line else '  '} {i:>{width}} | {text}" for i, text in enumerate(lines, 1)]
    return "\n".join([head, f"It was raised at line {line}{where} (marked >>):", *numbered])


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
    problem = signature_problem(expected.name, function_parameters(expected), function_parameters(found))
    if problem:
        raise ValueError(problem)
    compile(tree, TRAINABLE_FILENAME.format(expected.name), "exec")
    return source if source.endswith("\n") else source + "\n"


def _top_function(tree: ast.Module, name: str | None = None) -> Any:
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)) and name in (None, statement.name):
            return statement
    return None


def signature_problem(name: str, expected: list[inspect.Parameter], found: list[inspect.Parameter]) -> str:
    """Why code with parameters `found` cannot replace code with `expected` (empty: it can).

    Every call the original accepted must still work: its parameters stay, with the same kinds,
    in the same order, positional ones first; a parameter added must have a default (or be
    *args / **kwargs).
    """
    def names(params: list[inspect.Parameter]) -> str:
        return ", ".join(str(p).split("=")[0].split(":")[0] for p in params)

    problem = (f"`{name}` must keep its parameters ({names(expected)}), in order and of the same kind; "
               f"a new one needs a default. Got ({names(found)})")
    by_name = {p.name: p for p in found}
    kept = [p.name for p in found if p.name in {e.name for e in expected}]
    if kept != [e.name for e in expected] or any(by_name[e.name].kind != e.kind for e in expected):
        return problem
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    old_positional = [e.name for e in expected if e.kind in positional]
    new_positional = [p.name for p in found if p.kind in positional]
    if new_positional[:len(old_positional)] != old_positional:
        return problem
    added = [p for p in found if p.name not in {e.name for e in expected}]
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    if any(p.default is inspect.Parameter.empty and p.kind not in variadic for p in added):
        return problem
    return ""


def function_parameters(fn: ast.FunctionDef) -> list[inspect.Parameter]:
    """A parsed definition's parameters as inspect.Parameter (defaults as a placeholder)."""
    P, args, given = inspect.Parameter, fn.args, object()
    positional = [(a, P.POSITIONAL_ONLY) for a in args.posonlyargs] + [(a, P.POSITIONAL_OR_KEYWORD) for a in args.args]
    first_default = len(positional) - len(args.defaults)
    params = [P(a.arg, kind, default=given if i >= first_default else P.empty)
              for i, (a, kind) in enumerate(positional)]
    params += [P(args.vararg.arg, P.VAR_POSITIONAL)] if args.vararg else []
    params += [P(a.arg, P.KEYWORD_ONLY, default=P.empty if d is None else given)
               for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    return params + ([P(args.kwarg.arg, P.VAR_KEYWORD)] if args.kwarg else [])

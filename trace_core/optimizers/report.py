"""The execution report: a subgraph written out as pseudo-code sections an LLM can read.

Sections (the paper's): Instruction, Code, Documentation, Variables, Constraints, Inputs, Others,
Outputs, Feedback. Values are written `(type) name=value`; a code parameter as `(code) name:` and
its source. `Style` says how (PAPER: as trace-opt 0.1.3.8 writes them; HARNESS: our variant). Masking a section (the paper's "Trace Masked" hides Documentation, Code, Inputs and
Others) leaves its header with nothing under it.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Iterable

from trace_core.backward import Subgraph, merge
from trace_core.graph import Node

SECTIONS = ("instruction", "code", "documentation", "variables", "constraints", "inputs",
            "others", "outputs", "feedback")
MAX_VALUE_CHARS = 4000  # the harness style cuts long intermediate values in the middle; variables never
EVAL_DOC = ("[eval] eval(__code, *args, **kwargs) defines the function whose source is the code "
            "parameter __code, calls it with the other arguments, and returns what it returns.")


@dataclass(frozen=True)
class Style:
    """How values and calls are written. PAPER is what trace-opt 0.1.3.8 (the paper's code) shows:
    values as str(), code right after `name:`, nothing cut, trainable calls as `eval` with one
    shared documentation line. HARNESS is our variant: strings as repr (quotes and escapes show
    where a value starts and ends), code on its own lines, values over 4,000 characters cut in
    the middle, trainable calls under the function's name, documented by its current docstring."""
    repr_strings: bool = False
    code_on_new_line: bool = False
    cut: int | None = None
    eval_calls: bool = True


PAPER = Style()
HARNESS = Style(repr_strings=True, code_on_new_line=True, cut=MAX_VALUE_CHARS, eval_calls=False)
STYLES = {"paper": PAPER, "harness": HARNESS}


@dataclass
class Report:
    instruction: str = ""
    code: list[str] = field(default_factory=list)
    documentation: dict[str, str] = field(default_factory=dict)
    variables: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    feedback: str = ""

    def render(self, mask: Iterable[str] = ()) -> str:
        hidden = set(mask)
        bodies = {
            "instruction": self.instruction, "code": "\n".join(self.code),
            "documentation": "\n".join(self.documentation.values()),
            "variables": "\n".join(self.variables), "constraints": "\n".join(self.constraints),
            "inputs": "\n".join(self.inputs), "others": "\n".join(self.others),
            "outputs": "\n".join(self.outputs), "feedback": self.feedback,
        }
        return "\n\n".join(f"#{name.capitalize()}\n{'' if name in hidden else bodies[name]}".rstrip()
                           for name in SECTIONS)


def is_code(n: Node) -> bool:
    return n.trainable and n.name.startswith("__code_")


def value_line(n: Node, full: bool = False, style: Style = HARNESS) -> str:
    if is_code(n):
        return f"(code) {n.py_name}:{chr(10) if style.code_on_new_line else ''}{n.data}"
    text = repr(n.data) if style.repr_strings and isinstance(n.data, str) else str(n.data)
    if not full and style.cut is not None and len(text) > style.cut:
        half = style.cut // 2
        text = f"{text[:half]} ...[{len(text) - style.cut} characters cut]... {text[-half:]}"
    return f"({type(n.data).__name__}) {n.py_name}={text}"


def _code_of(n: Node) -> Node | None:
    """The code parameter of a trainable bundled call's result."""
    code = n.inputs.get("__code") if n.inputs else None
    return code if code is not None and is_code(code) else None


def call_line(n: Node, style: Style = HARNESS) -> str:
    args = ", ".join(f"{arg}={parent.py_name}" for arg, parent in n.inputs.items())
    name = "eval" if style.eval_calls and _code_of(n) is not None else n.op.name
    return f"{n.py_name} = {name}({args})"


def documentation(n: Node, style: Style = HARNESS) -> tuple[str, str]:
    """(operator name, its documentation line); a rewritten function's is its current docstring."""
    code = _code_of(n)
    if code is None:
        return n.op.name, n.op.doc
    if style.eval_calls:
        return "eval", EVAL_DOC
    try:
        definition = next(d for d in ast.parse(code.data).body if isinstance(d, (ast.FunctionDef, ast.AsyncFunctionDef)))
        doc = ast.get_docstring(definition) or ""
    except (SyntaxError, StopIteration):
        return n.op.name, n.op.doc
    return n.op.name, f"[{n.op.name}] {doc}".strip()


def build_report(subgraphs: list[Subgraph], instruction: str, parameters: Iterable[Node] | None = None,
                 style: Style = HARNESS) -> Report:
    """Classify the merged subgraph's nodes into the report's sections. Only `parameters` (the
    optimizer's; None: every trainable node) are #Variables: another trainable node is an input
    the optimizer cannot change, as in trace-opt."""
    nodes = merge(subgraphs)
    members = {id(n) for n in nodes}
    outputs = {id(s.output) for s in subgraphs}
    # By name, as trace-opt matches them: a search branch's copy of the optimizer holds copies of the nodes.
    handed = None if parameters is None else {p.py_name for p in parameters}
    report = Report(instruction=instruction, feedback=merged_feedback(subgraphs))
    for n in nodes:
        # An operator whose inputs are all in the subgraph is shown as a call; anything else
        # (roots, and results computed outside it) is a value the optimizer cannot change.
        computed_here = bool(n.parents) and all(id(p) in members for p in n.parents)
        variable = n.trainable and (handed is None or n.py_name in handed)
        if variable:
            report.variables.append(value_line(n, True, style))
            if n.constraint:
                report.constraints.append(f"({'code' if is_code(n) else type(n.data).__name__}) "
                                          f"{n.py_name}: {n.constraint}")
        elif not computed_here:
            report.inputs.append(value_line(n, False, style))
        else:
            report.code.append(call_line(n, style))
            name, doc = documentation(n, style)
            report.documentation.setdefault(name, doc)
            (report.outputs if id(n) in outputs else report.others).append(value_line(n, False, style))
        if id(n) in outputs and not computed_here and not variable:
            report.outputs.append(value_line(n, False, style))
    return report


def merged_feedback(subgraphs: list[Subgraph]) -> str:
    """One feedback as given; several (a minibatch) each prefixed with the output it is about."""
    given = [s for s in subgraphs if s.feedback]
    if len(given) == 1:
        return given[0].feedback
    return "\n".join(f"On {s.output.py_name}: {s.feedback}" for s in given)


def current_values(subgraphs: list[Subgraph]) -> dict[str, Any]:
    """Trainable values by py_name, for memory entries and OPRO's history."""
    return {p.py_name: p.data for s in subgraphs for p in s.parameters}

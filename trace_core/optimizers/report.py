"""The execution report: a subgraph written out as pseudo-code sections an LLM can read.

Sections (the paper's): Instruction, Code, Documentation, Variables, Constraints, Inputs, Others,
Outputs, Feedback. Values are written `(type) name=value`; a code parameter as `(code) name:` and
its source. Masking a section (the paper's "Trace Masked" hides Documentation, Code, Inputs and
Others) leaves its header with nothing under it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from trace_core.backward import Subgraph, merge
from trace_core.graph import Node

SECTIONS = ("instruction", "code", "documentation", "variables", "constraints", "inputs",
            "others", "outputs", "feedback")
MAX_VALUE_CHARS = 4000  # long intermediate values are cut in the middle; variables never are


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


def value_line(n: Node, full: bool = False) -> str:
    if is_code(n):
        return f"(code) {n.py_name}:\n{n.data}"
    text = repr(n.data) if isinstance(n.data, str) else str(n.data)
    if not full and len(text) > MAX_VALUE_CHARS:
        half = MAX_VALUE_CHARS // 2
        text = f"{text[:half]} ...[{len(text) - MAX_VALUE_CHARS} characters cut]... {text[-half:]}"
    return f"({type(n.data).__name__}) {n.py_name}={text}"


def call_line(n: Node) -> str:
    args = ", ".join(f"{arg}={parent.py_name}" for arg, parent in n.inputs.items())
    return f"{n.py_name} = {n.op.name}({args})"


def build_report(subgraphs: list[Subgraph], instruction: str) -> Report:
    """Classify the merged subgraph's nodes into the report's sections."""
    nodes = merge(subgraphs)
    members = {id(n) for n in nodes}
    outputs = {id(s.output) for s in subgraphs}
    report = Report(instruction=instruction, feedback=merged_feedback(subgraphs))
    for n in nodes:
        # An operator whose inputs are all in the subgraph is shown as a call; anything else
        # (roots, and results computed outside it) is a value the optimizer cannot change.
        computed_here = bool(n.parents) and all(id(p) in members for p in n.parents)
        if n.trainable:
            report.variables.append(value_line(n, full=True))
            if n.constraint:
                report.constraints.append(f"({'code' if is_code(n) else type(n.data).__name__}) "
                                          f"{n.py_name}: {n.constraint}")
        elif not computed_here:
            report.inputs.append(value_line(n))
        else:
            report.code.append(call_line(n))
            report.documentation.setdefault(n.op.name, n.op.doc)
            (report.outputs if id(n) in outputs else report.others).append(value_line(n))
        if id(n) in outputs and not computed_here and not n.trainable:
            report.outputs.append(value_line(n))
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

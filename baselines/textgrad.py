"""A TextGrad-style optimizer on trace_core's graph: language "gradients" sent backward edge by
edge, then one update per parameter (Trace's Table 2 compares it with OptoPrime).

    python -m harness.optimize task=bbh_textgrad task.dataset=object_counting optimizer=textgrad llm=openai
    python -m harness.optimize -m experiment=table2_textgrad llm.model=<model>

One step, on the subgraph `backward` collected:
1. each output starts with the user's feedback as its gradient;
2. nodes are visited from the outputs back to the parameters; a node that received more than one
   gradient first has them merged by one LLM call;
3. for every edge parent -> node whose parent depends on a parameter, one LLM call writes the
   parent's gradient (how the parent should change to serve the node's gradient);
4. one LLM call per parameter rewrites it from its gradient.

So a step costs sum(edges into parameter-dependent nodes) + merges + parameters calls, growing
with the graph, where OptoPrime always makes one (scripts/call_counts.py counts both).
`all_edges=True` also sends gradients to inputs that no parameter reaches, as Trace's own port
does. Facts: specs/trace.md §2.2-2.3. All prompts here are our own words.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from trace_core.backward import merge
from trace_core.code import check_replacement
from trace_core.graph import Node, ParameterNode
from trace_core.optimizers.base import Optimizer, StepLog
from trace_core.optimizers.parsing import convert
from trace_core.optimizers.report import is_code

MAX_SHOWN = 3000  # characters of one value in a prompt; longer values are cut in the middle
OPEN, CLOSE = "<NEW_VALUE>", "</NEW_VALUE>"

GRADIENT_SYSTEM = ("You are part of an optimization system that improves a computation by criticism. "
                   "Given one step of the computation, its result, and feedback on that result, you explain "
                   "how one input of the step should change so that the result would better satisfy the "
                   "feedback. Be specific and concise. Give criticism and direction only; do not write a "
                   "complete new value.")
MERGE_SYSTEM = ("You combine several pieces of feedback about the same value into one. Keep every distinct "
                "point, drop repetitions, and be concise.")
UPDATE_SYSTEM = (f"You improve one variable of a system, using feedback about it. Reply with the complete new "
                 f"value between {OPEN} and {CLOSE}, and nothing else inside those tags. Respect the "
                 "variable's constraints.")


@dataclass
class TextGradLog(StepLog):
    """A step's log: every call (kind, messages, reply), and the gradient each parameter got."""

    calls: list[tuple[str, list[dict[str, str]], str]] = field(default_factory=list)
    gradients: dict[str, str] = field(default_factory=dict)


def shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= MAX_SHOWN:
        return text
    half = MAX_SHOWN // 2
    return f"{text[:half]} ...[{len(text) - MAX_SHOWN} characters cut]... {text[-half:]}"


def role(n: Node) -> str:
    """What a node is, in words, for the prompts."""
    if is_code(n):
        return f"the Python source code of the function `{n.name.split(':')[0].removeprefix('__code_')}`"
    if n.trainable:
        return f"the variable `{n.py_name}`" + (f" ({n.constraint})" if n.constraint else "")
    if n.op is not None:
        return f"the result `{n.py_name}` of the operation `{n.op.name}`"
    return f"the input `{n.py_name}`"


class TextGrad(Optimizer):
    def __init__(self, parameters: Iterable[ParameterNode], llm: Any, objective: str | None = None,
                 max_tokens: int = 4096, all_edges: bool = False, memory_size: int = 0, **_: Any) -> None:
        if memory_size:
            raise ValueError("TextGrad keeps no memory of past steps (memory_size must be 0)")
        super().__init__(parameters, memory_size=0)
        self.llm, self.objective = llm, objective or ""
        self.max_tokens, self.all_edges = max_tokens, all_edges

    # -- one step -----------------------------------------------------------------------------
    def propose(self) -> dict[ParameterNode, Any]:
        log = TextGradLog()
        self.logs.append(log)
        nodes = merge(self.subgraphs)
        needs = self._needs_gradient(nodes)
        members = {id(n) for n in nodes}
        gradients: dict[int, list[str]] = {}
        for subgraph in self.subgraphs:
            gradients.setdefault(id(subgraph.output), []).append(subgraph.feedback)
        for n in reversed(nodes):  # children before parents
            received = gradients.get(id(n))
            if not received or id(n) not in needs:
                continue
            gradient = self._merge(n, received, log) if len(received) > 1 else received[0]
            gradients[id(n)] = [gradient]
            for arg, parent in n.inputs.items():
                if id(parent) in needs or (self.all_edges and id(parent) in members):
                    gradients.setdefault(id(parent), []).append(self._backward(n, arg, parent, gradient, log))
        update: dict[ParameterNode, Any] = {}
        for p in self.parameters:
            if gradients.get(id(p)):
                log.gradients[p.py_name] = gradients[id(p)][0]
                self._update(p, gradients[id(p)][0], update, log)
        if not update and not log.note:
            log.note = "no parameter got a usable new value"
        return update

    def _needs_gradient(self, nodes: list[Node]) -> set[int]:
        """Nodes that are, or are computed from, a trainable parameter of this optimizer."""
        mine = {id(p) for p in self.parameters}
        needs: set[int] = set()
        for n in nodes:  # parents first
            if id(n) in mine or any(id(p) in needs for p in n.parents):
                needs.add(id(n))
        return needs

    # -- the three kinds of call --------------------------------------------------------------
    def _ask(self, kind: str, system: str, user: str, log: TextGradLog) -> str:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        reply = self.llm.complete(messages, max_tokens=self.max_tokens)
        log.calls.append((kind, messages, reply.text))
        log.messages, log.reply = messages, reply.text  # the base log keeps the latest call
        log.prompt_tokens += reply.usage.prompt_tokens
        log.completion_tokens += reply.usage.completion_tokens
        return reply.text

    def _context(self) -> str:
        return f"The goal of the whole system: {self.objective}\n\n" if self.objective else ""

    def _backward(self, n: Node, arg: str, parent: Node, gradient: str, log: TextGradLog) -> str:
        inputs = "\n".join(f"- `{a}` = {role(p)}:\n{shown(p.data)}" for a, p in n.inputs.items())
        user = (f"{self._context()}A step of the computation, `{n.op.name}`: {n.op.doc}\n\n"
                f"Its inputs:\n{inputs}\n\nIts result:\n{shown(n.data)}\n\n"
                f"Feedback on the result:\n{gradient}\n\n"
                f"How should the input `{arg}` ({role(parent)}) change so that the result improves "
                "according to the feedback?")
        return self._ask("gradient", GRADIENT_SYSTEM, user, log)

    def _merge(self, n: Node, received: list[str], log: TextGradLog) -> str:
        items = "\n\n".join(f"Feedback {i + 1}:\n{g}" for i, g in enumerate(received))
        user = f"{self._context()}Feedback about {role(n)}:\n\n{items}\n\nCombine them into one."
        return self._ask("merge", MERGE_SYSTEM, user, log)

    def _update(self, p: ParameterNode, gradient: str, update: dict[ParameterNode, Any],
                log: TextGradLog) -> None:
        rules = ("It is Python source code: the new value must define the same function with the same "
                 "parameters." if is_code(p) else f"Its type is {type(p.data).__name__}.")
        user = (f"{self._context()}The variable is {role(p)}. {rules}\n\nIts current value:\n{shown(p.data)}\n\n"
                f"Feedback about it:\n{gradient}\n\nWrite the improved value between {OPEN} and {CLOSE}.")
        text = self._ask("update", UPDATE_SYSTEM, user, log)
        found = re.search(re.escape(OPEN) + r"(.*?)" + re.escape(CLOSE), text, re.DOTALL)
        if found is None:
            log.refused[p.py_name] = f"no {OPEN} ... {CLOSE} in the reply"
            return
        value = found.group(1).strip("\n")
        try:
            new = check_replacement(value, p.data) if is_code(p) else convert(value.strip(), p.data)
        except ValueError as exc:
            log.refused[p.py_name] = str(exc)
            return
        update[p] = new
        log.applied[p.py_name] = new

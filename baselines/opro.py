"""OPRO as Trace runs it: the LLM sees only past (variables, feedback) pairs, never the graph.

A small subclass of OptoPrime that swaps the prompts: no execution report, no glossary; the
history is unbounded and includes the current step. One LLM call per step.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from trace_core.graph import ParameterNode
from trace_core.optimizers.optoprime import OptoPrime
from trace_core.optimizers.report import Report

OPRO_FORMAT = """Reply with a single JSON object and nothing else:
{"suggestion": {"<variable name>": <new value>}}
Use only the variable names shown, with values of the same type. The new value of a code variable must be complete Python source that defines the same function with the same parameters.
If nothing should change, reply with the single word TERMINATE."""

OPRO_INSTRUCTION = "Propose new values for the variables, guided by the feedback."


class OPRO(OptoPrime):
    def __init__(self, parameters: Iterable[ParameterNode], llm: Any, objective: str | None = None,
                 max_tokens: int = 4096, json_mode: bool = True, **_: Any) -> None:
        super().__init__(parameters, llm, objective=objective or OPRO_INSTRUCTION,
                         max_tokens=max_tokens, json_mode=json_mode)
        self.memory_size = -1  # unbounded history (the deque has no maxlen)

    def remember(self, variables: dict[str, Any], feedback: str) -> None:
        self.memory.append((variables, feedback))

    def system_prompt(self) -> str:
        return OPRO_FORMAT

    def user_prompt(self, report: Report, current: tuple[dict[str, Any], str]) -> str:
        history = "\n".join(json.dumps({"variables": v, "feedback": f}, default=str)
                            for v, f in [*self.memory, current])
        return (f"Here are variables you tried and the feedback each received.\n{history}\n"
                f"{'=' * 40}\n{self.objective}\n\nYour reply:")

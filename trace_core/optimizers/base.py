"""The optimizer base: collect feedback with `backward`, `propose` new values, `update` them.

    optimizer.zero_feedback()
    optimizer.backward(output, "the output should be larger")
    optimizer.step()          # = update(propose())

`propose` returns {parameter: new value} and never touches a parameter; `update` writes them.
Every step leaves a `StepLog` (prompt, reply, what was applied, what was refused and why).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

from trace_core.backward import Subgraph, backward
from trace_core.graph import Node, ParameterNode


@dataclass
class StepLog:
    messages: list[dict[str, str]] = field(default_factory=list)
    reply: str = ""
    reasoning: str = ""
    applied: dict[str, Any] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # name -> why it was not applied
    unchanged: list[str] = field(default_factory=list)  # suggested values equal to the current ones
    note: str = ""  # why nothing usable came back, when that happened
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Optimizer:
    def __init__(self, parameters: Iterable[ParameterNode], memory_size: int = 0) -> None:
        self.parameters = [p for p in parameters if p.trainable]
        if not self.parameters:
            raise ValueError("the optimizer got no trainable parameters")
        if memory_size < 0:
            raise ValueError(f"memory_size must be >= 0, got {memory_size}")
        self.memory: deque[tuple[dict[str, Any], str]] = deque(maxlen=memory_size or None)
        self.memory_size = memory_size
        self.subgraphs: list[Subgraph] = []
        self.logs: list[StepLog] = []

    def zero_feedback(self) -> None:
        self.subgraphs.clear()

    def backward(self, output: Node, feedback: str) -> Subgraph:
        subgraph = backward(output, feedback)
        self.subgraphs.append(subgraph)
        return subgraph

    def step(self) -> dict[ParameterNode, Any]:
        if not self.subgraphs:
            raise RuntimeError("step() before backward(): there is no feedback to act on")
        update = self.propose()
        self.update(update)
        return update

    def propose(self) -> dict[ParameterNode, Any]:
        raise NotImplementedError

    def update(self, update: dict[ParameterNode, Any]) -> None:
        for parameter, value in update.items():
            parameter._data = value

    def remember(self, variables: dict[str, Any], feedback: str) -> None:
        if self.memory_size:
            self.memory.append((variables, feedback))

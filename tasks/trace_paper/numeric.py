"""Random numeric programs: the Trace paper's numerical optimization task (Fig. 5a).

    python -m harness.optimize task=numeric optimizer=adam seed=3
    python -m harness.optimize -m experiment=fig5a_numeric

Problem `seed` = k is the paper's problem k: the program y = h(x) (7 steps of +, -, *, protected /
over x, its results and small constants) and goal input x* come from `tasks.trace_paper.numeric_sampler`,
which follows the paper's sampler and problem list. The target is y* = h(x*); x starts at -1; the
optimizer sees only "larger" / "smaller" feedback (the paper's wording) and the run stops on an
exact hit ("Success."). The score is |h(x) - y*|. The program is one list of steps, executed two
ways: on traced nodes (so OptoPrime sees the graph) and on torch tensors (so Adam differentiates
exactly the same program). Facts: specs/trace.md §4.1.
"""
from __future__ import annotations

import math
from typing import Any

from harness.api import Bounds, ConfigError, Feedback
from tasks.trace_paper.numeric_sampler import LENGTH, Program, paper_problem

__all__ = ["NumericTask", "Program", "paper_problem"]


class NumericTask:
    """Minimize |h(x) - y*| from x = -1 with only larger/smaller feedback (problem k per seed k)."""

    higher_is_better = False
    # The paper's numeric runs gave OptoPrime its default objective, not a task-specific one.
    objective = None

    def __init__(self, seed: int, limit: int = 10, length: int = LENGTH, start: float = -1.0,
                 stop_on_success: bool = True) -> None:
        if limit < 1 or length < 1 or seed < 0:
            raise ConfigError(f"task.limit and task.length must be >= 1 and seed >= 0, got {limit}, "
                              f"{length} and {seed}")
        from trace_core import node

        self.limit, self.start, self.stop_on_success = int(limit), float(start), bool(stop_on_success)
        self.program = paper_problem(int(seed), int(length))
        self.target = float(self.program.run(self.program.goal))
        self.space = {"x": Bounds(-1e6, 1e6)}
        self.x = node(self.start, trainable=True, name="x")
        self.finished = False  # True after an exact hit: the paper's runs stop there

    def parameters(self) -> list:
        return [self.x]

    def init_params(self) -> dict[str, float]:
        return {"x": self.start}

    def _value(self, params: dict[str, Any]) -> float:
        (value,) = params.values()  # "x", or the traced name of x when a Trace optimizer asks
        return float(value)

    def feedback_text(self, y: float) -> str:
        if y == self.target:
            return "Success."
        if math.isnan(y):
            return f"The output {y} is not a number; try another input."
        return f"The output {y} needs to be {'larger' if y < self.target else 'smaller'}."

    def evaluate(self, params: dict[str, Any]) -> Feedback:
        from trace_core import ExecutionError

        self.x._data = self._value(params)
        try:
            y = self.program.run(self.x)
        except ExecutionError as error:  # protected division never raises, but x is free
            return Feedback(score=math.inf, text=error.exception_node.data, output=error.exception_node)
        value = float(y.data)
        self.finished = self.stop_on_success and value == self.target
        return Feedback(score=abs(value - self.target), text=self.feedback_text(value), output=y,
                        info={"y": value})

    def workflow(self, x: Any) -> Any:
        """The program on any value with arithmetic (what the reference methods trace with)."""
        return self.program.run(x)

    def torch_loss(self, x: "torch.Tensor") -> "torch.Tensor":  # noqa: F821
        """|h(x) - y*| on a tensor: the same program, differentiable (for Adam)."""
        return (self.program.run(x) - self.target).abs()

    def test(self, params: dict[str, Any]) -> dict[str, float]:
        value = self._value(params)
        return {"abs_error": abs(float(self.program.run(value)) - self.target), "x": value,
                "problem_seed": float(self.program.seed)}

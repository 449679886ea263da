"""Random numeric programs: the Trace paper's numerical optimization task (Fig. 5a).

    python -m harness.optimize task=numeric optimizer=adam seed=3
    python -m harness.optimize -m experiment=fig5a_numeric

A seeded generator builds a small program y = h(x) from +, -, *, / over the input and constants
(about 7 operations), and a target y* = h(x_goal) with x_goal in {±1, ±2, ±3}. The optimizer sees
only "larger" / "smaller" feedback; the score is |h(x) - y*|, x starts at -1. The program is one
list of steps, executed two ways: on traced nodes (so OptoPrime sees the graph) and on torch
tensors (so Adam differentiates exactly the same program). Programs that divide by zero, overflow
or do not depend on x are rejected by the generator, never discovered during a run.
Facts: specs/trace.md §4.1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from harness.api import Bounds, ConfigError, Feedback

OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b,
}
GOALS = (-3, -2, -1, 1, 2, 3)
CHECK_GRID = np.linspace(-10, 10, 81)  # where a program must be finite and bounded
SUCCESS_TOL = 1e-6


@dataclass(frozen=True)
class Operand:
    """A previous value (`ref` = 0 for x, k for the k-th step's result) or a constant."""

    ref: int | None = None
    const: float | None = None


@dataclass(frozen=True)
class Step:
    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Program:
    steps: tuple[Step, ...]
    goal: float

    def run(self, x: Any) -> Any:
        """Evaluate on anything with arithmetic: floats, numpy arrays, traced nodes, tensors."""
        return self.trace(x)[-1]

    def trace(self, x: Any) -> list[Any]:
        """x and every intermediate value, in order."""
        values = [x]
        for step in self.steps:
            a, b = (values[o.ref] if o.ref is not None else o.const for o in (step.left, step.right))
            values.append(OPS[step.op](a, b))
        return values

    def describe(self) -> str:
        names = ["x"] + [f"v{i}" for i in range(1, len(self.steps) + 1)]
        show = lambda o: names[o.ref] if o.ref is not None else f"{o.const:g}"  # noqa: E731
        return "; ".join(f"{names[i + 1]} = {show(s.left)} {s.op} {show(s.right)}"
                         for i, s in enumerate(self.steps))


def generate(rng: np.random.Generator, length: int = 7, max_constants: int = 5,
             constant_share: float = 0.5) -> Program:
    """One candidate program (maybe degenerate: `make_program` filters)."""
    constants: list[float] = []
    derived = 1  # values[0] is x; every step result depends on x
    steps = []
    for _ in range(length):
        weights = np.exp(np.arange(derived, dtype=float))  # later values are favoured
        first = Operand(ref=int(rng.choice(derived, p=weights / weights.sum())))
        if rng.random() < constant_share:
            if not constants or rng.random() < 1 - len(constants) / max_constants:
                constants.append(float(rng.choice([-3, -2, -1, 1, 2, 3])))
            second = Operand(const=float(rng.choice(constants)))
            ops = "+-*/" if second.const > 0 else "+-*"  # no division by a non-positive constant
        else:
            second = Operand(ref=int(rng.choice(derived, p=weights / weights.sum())))
            ops = "+-*/"
        op = str(rng.choice(list(ops)))
        left, right = (first, second) if op == "/" or rng.random() < 0.5 else (second, first)
        steps.append(Step(op, left, right))
        derived += 1
    return Program(tuple(steps), goal=float(rng.choice(GOALS)))


def is_sound(program: Program, start: float, limit: float = 1e5) -> bool:
    """Finite and bounded on the check grid, at the start and at the goal; depends on x."""
    with np.errstate(all="ignore"):
        points = np.concatenate([CHECK_GRID, [start, program.goal, 0.4, 0.6]])
        values = np.array(program.trace(points.astype(float)))
    # Every intermediate value must be finite too: 1 / (1/0) is finite in numpy, an error in Python.
    if not np.all(np.isfinite(values)) or np.max(np.abs(values)) > limit:
        return False
    ys = values[-1]
    return bool(np.ptp(ys) > 1e-6 and abs(ys[-1] - ys[-2]) > 1e-6)  # varies, and not flat at 0.5


def make_program(seed: int, length: int = 7, start: float = -1.0, tries: int = 1000) -> Program:
    rng = np.random.default_rng(seed)
    for _ in range(tries):
        program = generate(rng, length)
        if is_sound(program, start) and abs(program.run(start) - program.run(program.goal)) > SUCCESS_TOL:
            return program
    raise ConfigError(f"task: no sound program of length {length} in {tries} tries for seed {seed}")


class NumericTask:
    """Minimize |h(x) - y*| from x = -1 with only larger/smaller feedback (one problem per seed)."""

    higher_is_better = False
    objective = ("Change x so that the output of the program equals the target. The feedback only "
                 "says whether the output needs to be larger or smaller.")

    def __init__(self, seed: int, limit: int = 10, length: int = 7, start: float = -1.0) -> None:
        if limit < 1 or length < 1:
            raise ConfigError(f"task.limit and task.length must be >= 1, got {limit} and {length}")
        from trace_core import node

        self.limit, self.start = int(limit), float(start)
        self.program = make_program(seed, length, self.start)
        self.target = float(self.program.run(self.program.goal))
        self.space = {"x": Bounds(-1e6, 1e6)}
        self.x = node(self.start, trainable=True, name="x")

    def parameters(self) -> list:
        return [self.x]

    def init_params(self) -> dict[str, float]:
        return {"x": self.start}

    def _value(self, params: dict[str, Any]) -> float:
        (value,) = params.values()  # "x", or the traced name of x when a Trace optimizer asks
        return float(value)

    def evaluate(self, params: dict[str, Any]) -> Feedback:
        from trace_core import ExecutionError

        self.x._data = self._value(params)
        try:
            y = self.program.run(self.x)
        except ExecutionError as error:  # cannot happen for sound programs at sane x, but x is free
            return Feedback(score=math.inf, text=error.exception_node.data, output=error.exception_node)
        error_abs = abs(y.data - self.target)
        if error_abs <= SUCCESS_TOL:
            text = "Success."
        else:
            text = f"The output {y.data:.6g} needs to be {'larger' if y.data < self.target else 'smaller'}."
        return Feedback(score=error_abs, text=text, output=y, info={"y": float(y.data)})

    def torch_loss(self, x: "torch.Tensor") -> "torch.Tensor":  # noqa: F821
        """|h(x) - y*| on a tensor: the same program, differentiable (for Adam)."""
        return (self.program.run(x) - self.target).abs()

    def test(self, params: dict[str, Any]) -> dict[str, float]:
        value = self._value(params)
        return {"abs_error": abs(float(self.program.run(value)) - self.target), "x": value}

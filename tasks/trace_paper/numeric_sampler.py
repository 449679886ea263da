"""The Trace paper's random numeric programs (Fig. 5a): its sampler's rules and its problem list.

    from tasks.trace_paper.numeric_sampler import paper_problem
    program = paper_problem(0)          # the paper's problem 0: steps and goal input
    print(program.describe(), program.goal)

Re-implemented from the rules of the pre-release sampler and driver (specs/trace.md §4.1), drawing
from Python's `random` and numpy's legacy `RandomState` in the same order and with the same calls,
so problem k here is the paper's problem k:

- A program is `length` binary steps over two pools: values derived from x (x itself and every
  step's result) and generated constants. Each step takes (1 derived, 1 constant) or, with
  probability 1/2, (2 distinct derived) values; while only x exists the draw falls back to
  (1 derived, 1 constant). Derived operands favour later values (softmax over their index) once
  there is more than one; the derived value comes first (`v - c`, `v / c`).
- A constant step first adds a new constant from ±1..3 with probability 1 - |pool| / 5, then picks
  one constant of the pool; a non-positive constant allows only +, -, *. Division is protected:
  `a / b if b != 0 else a`.
- The goal input is drawn from ±1..3 (so some problems are solved at x = -1 already, and kept).
- Problem seeds come from one `random.Random(1111)` stream that every sampled program reseeds (the
  driver shares Python's global RNG), and the driver's "hard" filter keeps a program when its goal
  output is at most 1e5 and its output decreases somewhere on x in {0.4, 0.5, 0.6}.
"""
from __future__ import annotations

import random
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np

VALUES = (-3, -2, -1, 1, 2, 3)   # constants and goal inputs
MAX_CONSTANTS = 5                # the driver's max_gen_var
LENGTH = 7                       # the driver's chain length
FIRST_SEED = 1111                # where the driver's problem-seed stream starts
MAX_GOAL_OUTPUT = 1e5            # the hard filter drops larger goal outputs (one-sided: no lower bound)
SEED_RANGE = 99999               # problem seeds are drawn from 0..SEED_RANGE


def protected_divide(a: Any, b: Any) -> Any:
    """Division that returns the dividend for a zero divisor (the paper's programs never raise)."""
    return a / b if b != 0 else a


OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": protected_divide,
}


@dataclass(frozen=True)
class Operand:
    """A derived value (`ref` = 0 for x, k for the k-th step's result) or a constant."""

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
    goal: float          # the goal input x*; the target is run(goal)
    seed: int = -1       # the problem seed it was sampled from

    def run(self, x: Any) -> Any:
        """Evaluate on anything with arithmetic: floats, traced nodes, torch tensors."""
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


def _derived_operands(rs: np.random.RandomState, derived: int, count: int) -> list[Operand]:
    """`count` distinct derived values; later ones favoured once there is more than x."""
    if derived > 1:
        weights = np.exp(np.arange(derived))
        p = weights / np.sum(weights)
    else:
        p = [1 / derived] * derived
    picked = rs.choice(list(range(derived)), count, p=p, replace=False)
    return [Operand(ref=int(i)) for i in picked]


def _constant_operand(rs: np.random.RandomState, py: random.Random, pool: list[int]) -> Operand:
    """Maybe grow the constant pool (less likely as it fills), then pick one of its constants."""
    if rs.rand() < 1 - min(len(pool), MAX_CONSTANTS) / MAX_CONSTANTS:
        pool.append(VALUES[py.randint(0, len(VALUES) - 1)])
    (index,) = rs.choice(list(range(len(pool))), 1, replace=False)
    return Operand(const=float(pool[index]))


def _steps(seed: int, py: random.Random, length: int) -> tuple[Step, ...]:
    """The program's steps; reseeds both RNGs (so every call with one seed builds one program)."""
    py.seed(seed)
    rs = np.random.RandomState(seed)
    derived, pool, steps = 1, [], []
    for _ in range(length):
        two_derived = rs.choice(range(2), p=[0.5, 0.5]) == 1 and derived >= 2
        if two_derived:
            left, right = _derived_operands(rs, derived, 2)
            ops = "+-*/"
        else:
            (left,) = _derived_operands(rs, derived, 1)
            right = _constant_operand(rs, py, pool)
            ops = "+-*/" if right.const > 0 else "+-*"  # never divide by a non-positive constant
        steps.append(Step(str(rs.choice(list(ops))), left, right))
        derived += 1  # every step uses a derived value, so its result is derived too
    return tuple(steps)


def sample_program(seed: int, py: random.Random | None = None, length: int = LENGTH) -> Program:
    """The program and goal input of one problem seed. `py` is the shared Python RNG whose state
    the driver's seed stream continues from; it is left as the sampler leaves it."""
    py = py if py is not None else random.Random()
    py.seed(seed)
    py.choices(string.ascii_lowercase, k=5)  # the sampler names its goal-input node first
    goal = py.choice(VALUES)
    return Program(_steps(seed, py, length), goal=float(goal), seed=seed)


def is_hard(program: Program) -> bool:
    """The driver's filter: goal output at most 1e5, and the output decreases somewhere near 0.5."""
    if program.run(program.goal) > MAX_GOAL_OUTPUT:
        return False
    h, x = 0.1, 0.5
    y0, y1, y2 = (program.run(v) for v in (x - h, x, x + h))
    return bool(y2 < y1 or y1 < y0)


@lru_cache(maxsize=8)
def paper_problem_seeds(count: int, first_seed: int = FIRST_SEED, length: int = LENGTH) -> tuple[int, ...]:
    """The first `count` problem seeds of the driver's stream that pass its hard filter."""
    py, seeds = random.Random(first_seed), []
    while len(seeds) < count:
        seed = py.randint(0, SEED_RANGE)
        if is_hard(sample_program(seed, py, length)):
            seeds.append(seed)
    return tuple(seeds)


def paper_problem(index: int, length: int = LENGTH) -> Program:
    """The paper's problem `index` (0-based) of its Fig. 5a problem list."""
    return sample_program(paper_problem_seeds(index + 1, length=length)[index], length=length)

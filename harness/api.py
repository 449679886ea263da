"""The contracts where tasks meet methods: Feedback, Task, Optimizer, Model.

Tasks and methods never import each other; the runner (`harness.optimize`, `harness.train`)
joins them through these protocols only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

Params = dict[str, Any]


@dataclass(frozen=True)
class Feedback:
    """What one evaluation of a task returns.

    score: the scalar the task is judged on (see `Task.higher_is_better`); `inf`/`-inf` when the
      evaluation failed (then `text` says why).
    text: language feedback for LLM optimizers.
    output: the traced output node (Trace optimizers) or a tensor (Adam); None for black boxes.
    info: secondary metrics and diagnostics, flat `str -> float` where possible.
    """

    score: float
    text: str = ""
    output: Any = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Bounds:
    """A box constraint for one numeric parameter, as black-box searchers need it."""

    low: float
    high: float
    integer: bool = False

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high and (not self.integer or float(value).is_integer())


@runtime_checkable
class Task(Protocol):
    """A problem a method optimizes: parameters in, feedback out."""

    higher_is_better: bool
    limit: int  # evaluation budget of the paper protocol (one optimizer step = one evaluation)

    def init_params(self) -> Params: ...

    def evaluate(self, params: Params) -> Feedback: ...

    def test(self, params: Params) -> dict[str, float]:
        """Held-out metrics of the final parameters (for a model task: of its `solve` function)."""
        ...


@runtime_checkable
class BoxTask(Task, Protocol):
    """A task whose parameters live in a box, so GP / PSO / grid methods can search it."""

    space: Mapping[str, Bounds]


@runtime_checkable
class Optimizer(Protocol):
    """Ask/tell: the runner asks for parameters, evaluates them, tells the feedback back.

    `finished` turns True when the method has nothing more to try (SCATS after its one plan);
    the runner then stops before the task's budget.
    """

    finished: bool

    def ask(self) -> Params: ...

    def tell(self, params: Params, feedback: Feedback) -> None: ...


@runtime_checkable
class Model(Protocol):
    """A learned solver (Searchformer, Dualformer, MATH fine-tuning)."""

    def fit(self, task: Any, logger: Any) -> None: ...

    def solve(self, instance: Any) -> Any: ...


class ConfigError(ValueError):
    """Bad user input (config value, override, parameter); the runner prints it as one line."""


def loss_of(feedback: Feedback, higher_is_better: bool) -> float:
    """The score as a quantity to minimize (what black-box minimizers expect)."""
    return -feedback.score if higher_is_better else feedback.score


def is_better(score: float, than: float | None, higher_is_better: bool) -> bool:
    if than is None:
        return True
    return score > than if higher_is_better else score < than


def box_space(task: Any, method: str) -> Mapping[str, Bounds]:
    """The task's box of parameters, or the one-line reason `method` cannot search this task."""
    space = getattr(task, "space", None)
    if not isinstance(space, Mapping) or not space:
        raise ConfigError(f"optimizer={method} needs a task with a box of parameters (space); "
                          f"{type(task).__name__} has none")
    return space

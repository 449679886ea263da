"""Adam on a task's differentiable loss (torch), behind the ask/tell interface.

The numeric task of Fig. 5a: Adam (lr 0.1) on |h(x) - y*| through the torch version of the very
program the Trace optimizers see as a graph. Each tell takes one gradient step.

    python -m harness.optimize task=numeric optimizer=adam seed=3
"""
from __future__ import annotations

from typing import Any

from harness.api import ConfigError, Feedback, Params


class AdamOptimizer:
    finished = False

    def __init__(self, task: Any, seed: int = 0, lr: float = 0.1) -> None:
        if not callable(getattr(task, "torch_loss", None)):
            raise ConfigError(f"optimizer=adam needs a differentiable task (torch_loss); "
                              f"{type(task).__name__} has none")
        if not lr > 0:
            raise ConfigError(f"optimizer.lr must be > 0, got {lr}")
        import torch

        (self._name, start), = task.init_params().items()
        self._task = task
        self._x = torch.tensor(float(start), dtype=torch.float64, requires_grad=True)
        self._adam = torch.optim.Adam([self._x], lr=lr)

    def ask(self) -> Params:
        return {self._name: float(self._x.detach())}

    def tell(self, params: Params, feedback: Feedback) -> None:
        self._adam.zero_grad()
        self._task.torch_loss(self._x).backward()
        self._adam.step()

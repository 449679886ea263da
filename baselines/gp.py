"""Gaussian-process search with scikit-optimize, behind the ask/tell interface.

Mirrors the paper's traffic baseline (`gp_minimize`, 5 initial Sobol points, start point x0
evaluated first, gp_hedge acquisition), but through skopt's ask/tell `Optimizer` so the harness
loop owns evaluation, logging and records. Unlike the paper we seed it (`seed`), so a rerun is exact.

    python -m harness.optimize task=traffic optimizer=gp seed=42
"""
from __future__ import annotations

import math
import warnings
from harness.api import BoxTask, ConfigError, Feedback, Params, box_space, loss_of


class GpOptimizer:
    def __init__(self, task: BoxTask, seed: int = 0, n_initial_points: int = 5,
                 initial_point_generator: str = "sobol", acq_func: str = "gp_hedge",
                 start_from_init: bool = True) -> None:
        if n_initial_points < 1:
            raise ConfigError(f"optimizer.n_initial_points must be >= 1, got {n_initial_points}")
        box_space(task, "gp")
        from skopt import Optimizer as SkoptOptimizer
        from skopt.space import Integer, Real

        self._names = list(task.space)
        dims = [Integer(int(b.low), int(b.high), name=n) if b.integer else Real(b.low, b.high, name=n)
                for n, b in task.space.items()]
        self._integer = [b.integer for b in task.space.values()]
        with warnings.catch_warnings():
            # skopt notes that 5 Sobol points are not a power of two; the paper uses 5 all the same.
            warnings.filterwarnings("ignore", message="The balance properties of Sobol")
            self._skopt = SkoptOptimizer(
                dims, base_estimator="GP", n_initial_points=n_initial_points,
                initial_point_generator=initial_point_generator, acq_func=acq_func, random_state=seed,
            )
        self._higher_is_better = task.higher_is_better
        # x0 of gp_minimize: the task's start point is evaluated first and counts as an initial point.
        self._pending = [task.init_params()] if start_from_init else []
        self._worst_finite = -math.inf
        self.finished = False

    def ask(self) -> Params:
        if self._pending:
            return dict(self._pending.pop(0))
        with warnings.catch_warnings():
            # Once the GP keeps proposing a point it has already seen, skopt swaps in a random one
            # and warns each time. That is how gp_minimize behaves (and why the paper's GP curve
            # climbs again late in the run); it is expected, so it stays off the progress bars.
            warnings.filterwarnings("ignore", message="The objective has been evaluated at point")
            point = self._skopt.ask()
        return {n: (int(v) if integer else float(v))
                for n, v, integer in zip(self._names, point, self._integer)}

    def tell(self, params: Params, feedback: Feedback) -> None:
        loss = loss_of(feedback, self._higher_is_better)
        if math.isfinite(loss):
            self._worst_finite = max(self._worst_finite, loss)
        else:
            # A GP cannot fit an infinite target: a failed point counts as twice the worst seen.
            loss = 2 * self._worst_finite if self._worst_finite > 0 else 1e6
        self._skopt.tell([params[n] for n in self._names], loss)


"""Particle swarm search with pyswarms' backend operators, behind the ask/tell interface.

The paper's traffic baseline: 5 particles, c1 0.5, c2 0.3, inertia w 1.9 (above 1, so the swarm
keeps exploring almost like random search), periodic boundaries, positions and velocities cast to
integers after every update, global-best (star) topology, first particle at the task's start point.
One swarm iteration = `n_particles` asks; the swarm moves once every particle has been told.

    python -m harness.optimize task=traffic optimizer=pso seed=42
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from harness.api import BoxTask, ConfigError, Feedback, Params, box_space, loss_of


@contextmanager
def _pyswarms_logging_left_alone() -> Iterator[None]:
    """pyswarms configures the root logger (and opens ./report.log) whenever it builds a swarm part
    or imports its backend, unless LOG_CFG names a logging config; name a no-op one meanwhile."""
    saved = os.environ.get("LOG_CFG")
    os.environ["LOG_CFG"] = str(Path(__file__).with_name("pyswarms_logging.yaml"))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("LOG_CFG", None)
        else:
            os.environ["LOG_CFG"] = saved


@contextmanager
def _numpy_global_rng(state: np.random.RandomState) -> Iterator[None]:
    """Run pyswarms (which draws from numpy's global RNG) on our own per-run stream.

    The global state is swapped in and restored afterwards, so runs stay reproducible from their
    seed and nothing process-wide is left changed.
    """
    saved = np.random.get_state()
    np.random.set_state(state.get_state())
    try:
        yield
    finally:
        state.set_state(np.random.get_state())
        np.random.set_state(saved)


class PsoOptimizer:
    def __init__(self, task: BoxTask, seed: int = 0, n_particles: int = 5, c1: float = 0.5,
                 c2: float = 0.3, w: float = 1.9, boundary: str = "periodic",
                 start_from_init: bool = True) -> None:
        if n_particles < 1:
            raise ConfigError(f"optimizer.n_particles must be >= 1, got {n_particles}")
        if min(c1, c2, w) < 0:
            raise ConfigError(f"optimizer c1, c2, w must be >= 0, got c1={c1} c2={c2} w={w}")
        box_space(task, "pso")
        with _pyswarms_logging_left_alone():
            from pyswarms.backend.generators import create_swarm
            from pyswarms.backend.handlers import BoundaryHandler, VelocityHandler
            from pyswarms.backend.topology import Star

            self._topology = Star()
            self._boundary = BoundaryHandler(strategy=boundary)
            self._velocity = VelocityHandler(strategy="unmodified")

        self._names = list(task.space)
        self._integer = np.array([b.integer for b in task.space.values()])
        self._bounds = (np.array([b.low for b in task.space.values()], dtype=float),
                        np.array([b.high for b in task.space.values()], dtype=float))
        self._rng = np.random.RandomState(seed)
        init_pos = self._rng.uniform(*self._bounds, size=(n_particles, len(self._names)))
        if start_from_init:
            start = task.init_params()
            init_pos[0] = [start[n] for n in self._names]
        with _numpy_global_rng(self._rng):
            self._swarm = create_swarm(n_particles, len(self._names), options={"c1": c1, "c2": c2, "w": w},
                                       bounds=self._bounds, init_pos=self._as_grid(init_pos))
        self._swarm.pbest_cost = np.full(n_particles, np.inf)
        self._swarm.best_cost = np.inf
        self._higher_is_better = task.higher_is_better
        self._costs = np.full(n_particles, np.nan)
        self._next = 0  # particle to hand out next
        self.finished = False

    def ask(self) -> Params:
        position = self._swarm.position[self._next]
        return {n: (int(v) if integer else float(v))
                for n, v, integer in zip(self._names, position, self._integer)}

    def tell(self, params: Params, feedback: Feedback) -> None:
        self._costs[self._next] = loss_of(feedback, self._higher_is_better)
        self._next += 1
        if self._next == len(self._costs):
            self._move_swarm()
            self._next = 0

    def _move_swarm(self) -> None:
        from pyswarms.backend.operators import compute_pbest

        swarm = self._swarm
        swarm.current_cost = self._costs.copy()
        swarm.pbest_pos, swarm.pbest_cost = compute_pbest(swarm)
        if np.min(swarm.pbest_cost) < swarm.best_cost:
            swarm.best_pos, swarm.best_cost = self._topology.compute_gbest(swarm)
        with _numpy_global_rng(self._rng):
            swarm.velocity = self._as_grid(self._topology.compute_velocity(swarm, vh=self._velocity,
                                                                           bounds=self._bounds))
            swarm.position = self._as_grid(self._topology.compute_position(swarm, self._bounds,
                                                                           self._boundary))
        self._costs[:] = np.nan

    def _as_grid(self, array: np.ndarray) -> np.ndarray:
        """Truncate integer dimensions (the paper's integer PSO casts with int())."""
        array = np.array(array, dtype=float)
        array[:, self._integer] = np.trunc(array[:, self._integer])
        return array

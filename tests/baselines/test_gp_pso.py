"""GP and PSO behind ask/tell: valid integer proposals, reproducible per seed, better than the start."""
from __future__ import annotations

import numpy as np
import pytest

from baselines.gp import GpOptimizer
from baselines.pso import PsoOptimizer
from harness.api import Bounds, ConfigError, Feedback
from harness.loggers import NullLogger
from harness.optimize import optimize
from tasks.trace_paper.traffic import TrafficSignalTask

METHODS = {"gp": GpOptimizer, "pso": PsoOptimizer}


def drive(make, task, tmp_path):
    return optimize(task, make(task), NullLogger(), tmp_path / "journal.jsonl", show_progress=False)


class Bowl:
    """Seeded toy box task: integer (a, b) in [15, 90]^2, optimum at a random interior point."""

    higher_is_better = False
    space = {"a": Bounds(15, 90, integer=True), "b": Bounds(15, 90, integer=True)}

    def __init__(self, seed: int, limit: int) -> None:
        self.limit = limit
        self.optimum = np.random.RandomState(seed).randint(40, 70, size=2)

    def init_params(self):
        return {"a": 15, "b": 15}

    def evaluate(self, params):
        return Feedback(score=float(np.sum((np.array([params["a"], params["b"]]) - self.optimum) ** 2)))

    def test(self, params):
        return {"score": self.evaluate(params).score}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", sorted(METHODS))
def test_improves_on_the_start_point(name, seed, tmp_path):
    task = Bowl(seed, limit=10)
    trajectory = drive(lambda t: METHODS[name](t, seed=seed), task, tmp_path)
    first = trajectory.curve[0]
    assert first["params"] == {"a": 15, "b": 15}, "both baselines evaluate the start point first"
    assert trajectory.best_score < 0.5 * first["score"]


def test_gp_improves_on_the_traffic_start_point(tmp_path):
    task = TrafficSignalTask(seed=43, limit=15)
    trajectory = drive(lambda t: GpOptimizer(t, seed=43), task, tmp_path)
    assert trajectory.curve[0]["params"] == {"ew": 15, "ns": 15}
    assert trajectory.best_score < 0.8 * trajectory.curve[0]["score"]
    for point in trajectory.curve:
        assert all(isinstance(v, int) and 15 <= v <= 90 for v in point["params"].values())


@pytest.mark.parametrize("name", sorted(METHODS))
def test_same_seed_same_proposals_and_global_rng_untouched(name, tmp_path):
    global_state = np.random.get_state()[1].copy()
    runs = [drive(lambda t: METHODS[name](t, seed=7), TrafficSignalTask(seed=42, limit=7), tmp_path)
            for _ in range(2)]
    assert [p["params"] for p in runs[0].curve] == [p["params"] for p in runs[1].curve]
    assert (np.random.get_state()[1] == global_state).all(), "no process-wide RNG state changes"


def test_pso_moves_the_swarm_after_each_round():
    task = TrafficSignalTask(seed=42)
    pso = PsoOptimizer(task, seed=1, n_particles=3)
    first_round = []
    for _ in range(3):
        params = pso.ask()
        first_round.append(params)
        pso.tell(params, task.evaluate(params))
    assert pso.ask() != first_round[0] or pso.ask() != first_round[1]


@pytest.mark.parametrize("make, bad", [(PsoOptimizer, {"n_particles": 0}), (PsoOptimizer, {"w": -1}),
                                       (GpOptimizer, {"n_initial_points": 0})])
def test_bad_settings_are_config_errors(make, bad):
    with pytest.raises(ConfigError):
        make(TrafficSignalTask(seed=42), **bad)


def test_pso_leaves_logging_and_the_working_directory_alone(tmp_path, monkeypatch):
    import logging

    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    PsoOptimizer(Bowl(0, limit=5), seed=0)
    assert not (tmp_path / "report.log").exists(), "pyswarms must not write ./report.log"
    assert root.handlers == handlers and root.level == level

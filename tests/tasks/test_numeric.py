"""Random numeric programs: seeded, sound, and the same program traced and in torch."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from baselines.adam import AdamOptimizer
from harness.api import ConfigError
from harness.loggers import NullLogger
from harness.optimize import optimize
from tasks.numeric import NumericTask, is_sound, make_program
from trace_core import backward, graph_context


def test_programs_are_seeded_and_sound():
    for seed in range(30):
        program = make_program(seed)
        assert program == make_program(seed), "the same seed gives the same program"
        assert len(program.steps) == 7 and program.goal in (-3, -2, -1, 1, 2, 3)
        assert is_sound(program, -1.0)
        assert math.isfinite(program.run(-1.0)) and program.run(-1.0) != program.run(program.goal)
    assert len({make_program(s).describe() for s in range(30)}) == 30


def test_traced_and_torch_versions_agree_and_the_graph_reaches_x():
    with graph_context():
        task = NumericTask(seed=4)
        for x in (-1.0, 0.5, 2.25):
            fb = task.evaluate({"x": x})
            torch_loss = task.torch_loss(torch.tensor(x, dtype=torch.float64)).item()
            assert fb.score == pytest.approx(torch_loss) == pytest.approx(task.test({"x": x})["abs_error"])
        sub = backward(fb.output, fb.text)
        assert sub.parameters == [task.x] and 1 <= len([n for n in sub.nodes if n.op]) <= 7  # dead steps drop out
        assert {n.op.name for n in sub.nodes if n.op} <= {"add", "subtract", "multiply", "divide"}


def test_feedback_says_larger_smaller_or_success():
    with graph_context():
        task = NumericTask(seed=2)
        goal = task.program.goal
        assert task.evaluate({"x": goal}).text == "Success."
        text = task.evaluate({"x": -1.0}).text
        y = task.program.run(-1.0)
        assert text == f"The output {y:.6g} needs to be {'larger' if y < task.target else 'smaller'}."
        assert task.evaluate({"x0": goal}).score == 0, "a Trace optimizer's key for x works too"


def test_adam_reduces_the_error_on_most_problems(tmp_path):
    improved = 0
    for seed in range(10):
        with graph_context():
            task = NumericTask(seed=seed, limit=11)
            trajectory = optimize(task, AdamOptimizer(task, lr=0.1), NullLogger(),
                                  tmp_path / f"{seed}.jsonl", show_progress=False)
        scores = [p["score"] for p in trajectory.curve]
        assert trajectory.curve[0]["params"] == {"x": -1.0} and len(scores) == 11
        improved += scores[-1] < scores[0]
    assert improved >= 8


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError):
        NumericTask(seed=0, limit=0)
    with graph_context(), pytest.raises(ConfigError, match="differentiable"):
        from tasks.traffic import TrafficSignalTask
        AdamOptimizer(TrafficSignalTask(seed=0))

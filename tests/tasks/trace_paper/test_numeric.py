"""Random numeric programs: the paper's problem list, the same program traced and in torch."""
from __future__ import annotations

import math

import pytest
import torch

from baselines.adam import AdamOptimizer
from harness.api import ConfigError
from harness.loggers import NullLogger
from harness.optimize import optimize
from tasks.trace_paper.numeric import NumericTask
from tasks.trace_paper.numeric_sampler import (FIRST_SEED, is_hard, paper_problem, paper_problem_seeds,
                                               protected_divide, sample_program)
from trace_core import backward, graph_context


def test_problem_0_is_the_papers_problem_0():
    # Derived by hand from the driver's seed stream (random.seed(1111)): its first candidate 28521
    # is v1 = x - 3; ...; v7 = v3 * v6 = (x-3)^3/9 + (x-3), increasing near 0.5, so the hard
    # filter drops it; the next pass is 17496 with goal input -2.
    assert FIRST_SEED == 1111
    first = sample_program(28521)
    assert first.goal == 3 and first.describe().startswith("v1 = x - 3; v2 = v1 / x; v3 = v1 / 3")
    assert not is_hard(first)
    problem = paper_problem(0)
    assert problem.seed == 17496 and problem.goal == -2
    assert problem.describe() == ("v1 = x + -3; v2 = x + -1; v3 = v2 / v1; v4 = v3 - -1; v5 = v4 + -1; "
                                  "v6 = v5 + v4; v7 = v6 * v5")
    assert problem.run(-1.0) == 1.0 and problem.run(-2.0) == pytest.approx(1.32)
    assert paper_problem_seeds(3) == (17496, 12252, 76198)


def test_the_papers_sampler_rules_hold_on_all_30_problems():
    solved_at_start = 0
    for k in range(30):
        program = paper_problem(k)
        assert program == sample_program(program.seed), "the same seed gives the same program"
        assert len(program.steps) == 7 and program.goal in (-3, -2, -1, 1, 2, 3)
        assert program.steps[0].right.const is not None, "while only x exists, a step takes a constant"
        for i, step in enumerate(program.steps):
            assert step.left.ref is not None and step.left.ref <= i, "the derived value comes first"
            if step.right.ref is not None:
                assert step.right.ref != step.left.ref, "two derived operands are distinct"
            else:
                assert step.right.const in (-3, -2, -1, 1, 2, 3)
                assert step.op != "/" or step.right.const > 0
        assert is_hard(program) and program.run(program.goal) <= 1e5
        solved_at_start += program.run(-1.0) == program.run(program.goal)
    assert solved_at_start >= 1, "problems already solved at x = -1 are kept, as in the paper"
    assert len(set(paper_problem_seeds(30))) == 30


def test_division_is_protected():
    assert protected_divide(3.0, 0) == 3.0 and protected_divide(3.0, 2) == 1.5
    x = torch.tensor(0.0, requires_grad=True)
    assert protected_divide(x + 1, x).item() == 1.0


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


def test_feedback_uses_the_papers_words_and_a_hit_ends_the_run(tmp_path):
    with graph_context():
        task = NumericTask(seed=0)  # y(-1) = 1.0, y* = h(-2) = 1.32
        assert task.evaluate({"x": -1.0}).text == "The output 1.0 needs to be larger."
        assert not task.finished
        hit = task.evaluate({"x0": -2.0})
        assert hit.text == "Success." and hit.score == 0 and task.finished, "a Trace optimizer's key works too"
    with graph_context():
        task = NumericTask(seed=1, limit=11)  # solved at the start (goal input -1)
        trajectory = optimize(task, AdamOptimizer(task), NullLogger(), tmp_path / "p.jsonl", show_progress=False)
        assert [p["score"] for p in trajectory.curve] == [0.0], "the run stops on an exact hit"
    assert NumericTask.objective is None, "the paper used OptoPrime's default objective here"


def test_adam_reduces_the_error_on_most_problems(tmp_path):
    improved = unsolved = 0
    for seed in range(10):
        with graph_context():
            task = NumericTask(seed=seed, limit=11)
            trajectory = optimize(task, AdamOptimizer(task, lr=0.1), NullLogger(),
                                  tmp_path / f"{seed}.jsonl", show_progress=False)
        scores = [p["score"] for p in trajectory.curve]
        assert trajectory.curve[0]["params"] == {"x": -1.0}
        if scores[0] > 0:
            unsolved += 1
            improved += scores[-1] < scores[0]
    assert unsolved >= 5 and improved >= unsolved - 2


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError):
        NumericTask(seed=0, limit=0)
    with graph_context(), pytest.raises(ConfigError, match="differentiable"):
        from tasks.trace_paper.traffic import TrafficSignalTask
        AdamOptimizer(TrafficSignalTask(seed=0))
    assert math.isfinite(NumericTask(seed=29).target)

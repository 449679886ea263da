"""Tests of the Meta-World LLF wrapper and the traced controller task (Trace paper, Fig. 6).

    .venv/bin/python -m pytest tests/tasks/trace_paper/test_metaworld.py -q
"""
from __future__ import annotations

import importlib.util
import json
import math
import re
import sys

import numpy as np
import pytest

pytest.importorskip("metaworld")  # the `robot` extra

from harness.api import ConfigError, Task  # noqa: E402
from support import ROOT  # noqa: E402
from tasks.trace_paper.metaworld import MetaWorldTask, follow_expert  # noqa: E402
from tasks.trace_paper.metaworld.env import MIN_SEPARATION, OBS_KEYS, LLFMetaWorld  # noqa: E402
from tasks.trace_paper.metaworld.feedback import AWAY, CLOSER, OPEN_GRIPPER  # noqa: E402
from trace_core import ExceptionNode, backward, graph_context  # noqa: E402
from trace_core.llm import ScriptedLLM  # noqa: E402
from trace_core.optimizers import OptoPrime  # noqa: E402

ENVS = ["reach-v3", "pick-place-v3", "push-v3"]


@pytest.fixture(autouse=True)
def _own_graph():
    with graph_context():  # node names restart per test, as per run in the harness
        yield


def code_of(task: MetaWorldTask, source: str) -> dict[str, str]:
    return {task.controller.parameter.py_name: source}


# ------------------------------------------------------------------- the wrapper


@pytest.mark.parametrize("env_name", ENVS)
def test_expert_follower_solves_held_out_starts_and_doing_nothing_solves_none(env_name):
    task = MetaWorldTask(env_name, seed=42)
    env, held_out = task.env, task.starts()[1:]
    solved = 0
    for start in held_out:
        obs = env.reset(start)
        assert tuple(obs) == OBS_KEYS[env_name] and all(isinstance(v, float) for v in obs["hand_pos"])
        # reset put the goal where the start says (push keeps the goal on the table: its z differs)
        assert np.allclose(obs["goal_pos"][:2], start.vector[3:5], atol=2e-3)
        for _ in range(task.horizon):
            if env.step(follow_expert(env)).success:
                solved += 1
                break
    assert solved >= 9, f"{env_name}: the expert's suggestions solved only {solved}/10"
    zero = task.held_out(task.init_params()[task.controller.parameter.py_name])
    assert zero.success == 0.0 and zero.errors == 0


def test_starts_are_seeded_distinct_and_separated():
    a, b = MetaWorldTask("push-v3", seed=3), MetaWorldTask("push-v3", seed=3)
    assert a.starts() == b.starts() and len(a.starts()) == 11
    assert MetaWorldTask("push-v3", seed=4).starts()[0] != a.starts()[0]
    train, held_out = a.starts()[0], a.starts()[1:]
    assert train not in held_out and len(set(held_out)) == 10
    for start in a.starts():
        vec = np.array(start.vector)
        assert np.linalg.norm(vec[:2] - vec[3:5]) >= MIN_SEPARATION


def test_feedback_says_closer_or_wrong_way_and_hints_at_the_gripper():
    env = LLFMetaWorld("reach-v3", paraphrase=False)
    start = MetaWorldTask("reach-v3", seed=0).starts()[0]
    texts = []
    for sign in (1.0, -1.0):
        env.reset(start)
        toward = np.array(follow_expert(env)[:3])
        step = env.step([*(sign * 0.1 * toward / np.linalg.norm(toward)), 1.0])
        texts.append(step.feedback)
    toward_text, away_text = texts
    assert toward_text != away_text
    assert CLOSER[0] in toward_text and AWAY[0] in away_text
    assert OPEN_GRIPPER[0] in toward_text  # the reach expert keeps the gripper open
    target = re.search(r"position \[(.*?)\]", toward_text).group(1)
    goal = env.observation()["goal_pos"]  # the reach expert's target is the goal itself
    assert [float(v) for v in target.split(",")] == pytest.approx(goal, abs=0.006)


def test_paraphrases_come_from_the_wrappers_own_seeded_generator():
    start = MetaWorldTask("push-v3", seed=0).starts()[0]

    def texts(seed, global_seed):
        env = LLFMetaWorld("push-v3", seed=seed)
        env.reset(start)
        np.random.seed(global_seed)  # the process-wide generator plays no part
        return [env.step([0.0, 0.01, 0.0, 0.0]).feedback for _ in range(4)]

    saved = np.random.get_state()
    try:
        first = texts(7, global_seed=1)
        assert texts(7, global_seed=2) == first
        assert texts(8, global_seed=1) != first
    finally:
        np.random.set_state(saved)
    only_reward = LLFMetaWorld("push-v3", feedback=["r"], paraphrase=False)
    only_reward.reset(start)
    text = only_reward.step([0, 0, 0, 0]).feedback
    assert re.fullmatch(r"The reward for this step is \d+\.\d{3}\.", text)


# ------------------------------------------------------------------- the traced task


def test_an_evaluation_is_one_traced_episode():
    task = MetaWorldTask("reach-v3", seed=1, test_starts=2)
    assert isinstance(task, Task) and task.higher_is_better
    assert "reach" in task.objective and all(k in task.objective for k in OBS_KEYS["reach-v3"])
    global_state = np.random.get_state()[1].copy()
    feedback = task.evaluate(task.init_params())
    assert (np.random.get_state()[1] == global_state).all(), "no process-wide randomness is used"
    assert math.isfinite(feedback.score) and "Task completed: no" in feedback.text
    assert feedback.info["train_success"] == 0.0 and feedback.info["episode_steps"] == 10
    assert feedback.info["test_success"] == 0.0
    assert [line.split(":")[0] for line in feedback.info["step_feedback"].splitlines()] == \
        [f"Step {k}" for k in range(1, 11)]
    subgraph = backward(feedback.output, feedback.text)
    assert subgraph.parameters == task.parameters()
    ops = [n.op.name for n in subgraph.nodes if n.op is not None]
    assert ops.count("controller") == 10 and ops.count("step") == 10


def test_a_controller_that_reaches_the_goal_is_scored_as_solved():
    task = MetaWorldTask("reach-v3", seed=1, test_starts=3)
    to_goal = ("def controller(obs):\n    h, g = obs['hand_pos'], obs['goal_pos']\n"
               "    return [g[0] - h[0], g[1] - h[1], g[2] - h[2], 0.0]\n")
    feedback = task.evaluate(code_of(task, to_goal))
    assert feedback.info["train_success"] == 1.0 and feedback.info["episode_steps"] < 10
    assert feedback.info["test_success"] == 1.0 and "Task completed: yes" in feedback.text
    assert feedback.info["test_success_paper"] == 1.0
    assert task.controller.parameter.data == to_goal  # evaluate(params) runs the params' code
    assert task.test(task.init_params()) == {"success": 0.0, "return": pytest.approx(
        task.held_out(task.init_params()[task.controller.parameter.py_name]).mean_return),
        "last_success": 1.0}


@pytest.mark.parametrize("source, needle", [
    ("def controller(obs):\n    return obs['nope']\n", "(KeyError) 'nope'\nIt was raised at line 2"),
    ("def controller(obs):\n    return [1, 2, 3]\n", "(ActionError) the action must be 4 numbers"),
    ("def controller(obs):\n    return 1 / 0\n", "(ZeroDivisionError)"),
    ("def controller(obs)\n    return [0, 0, 0, 0]\n", "(SyntaxError)"),
])
def test_a_failing_controller_becomes_feedback_the_optimizer_reads(source, needle):
    task = MetaWorldTask("pick-place-v3", seed=2, test_starts=2)
    feedback = task.evaluate(code_of(task, source))
    assert isinstance(feedback.output, ExceptionNode) and needle in feedback.output.data
    assert feedback.text == feedback.output.data and feedback.score == -math.inf
    assert feedback.info["test_success"] == 0.0 and feedback.info["test_errors"] == 2
    assert math.isnan(feedback.info["test_success_paper"]), "the paper's curve leaves a raising iteration out"
    llm = ScriptedLLM(replies=[json.dumps({"reasoning": "-", "suggestion": {}})])
    optimizer = OptoPrime(task.parameters(), llm=llm, objective=task.objective)
    optimizer.zero_feedback()
    optimizer.backward(feedback.output, feedback.text)
    optimizer.step()
    prompt = llm.requests[-1][-1]["content"]
    assert needle.split("\n")[0] in prompt and "(code) __code_controller" in prompt


def test_tasks_do_not_share_their_controller_code():
    a, b = MetaWorldTask("reach-v3", seed=0, test_starts=1), MetaWorldTask("reach-v3", seed=0)
    assert a.parameters()[0] is not b.parameters()[0]
    a.evaluate(code_of(a, "def controller(obs):\n    return [0.0, 0.0, 0.01, 0.0]\n"))
    assert b.parameters()[0].data == b.init_params()[b.controller.parameter.py_name]
    assert "0.01" not in b.parameters()[0].data


def test_held_out_runs_every_k_steps_and_at_the_last_and_is_cached():
    task = MetaWorldTask("reach-v3", seed=0, limit=4, eval_every=2, test_starts=2)
    params = task.init_params()
    feedbacks = [task.evaluate(params) for _ in range(4)]
    assert ["test_success" in f.info for f in feedbacks] == [True, False, True, True]  # 0, 2, last
    # The physics is deterministic from a fixed start, which is what makes the cache below exact.
    assert len({f.score for f in feedbacks}) == 1
    assert len(task._held_out_cache) == 1  # the same code is never rolled out twice
    never = MetaWorldTask("reach-v3", seed=0, eval_every=0)
    assert "test_success" not in never.evaluate(never.init_params()).info


@pytest.mark.parametrize("kwargs, needle", [
    ({"env_name": "door-open-v3"}, "env_name"),
    ({"limit": 0}, "limit"),
    ({"test_starts": 0}, "test_starts"),
    ({"eval_every": -1}, "eval_every"),
    ({"feedback": ["r", "fn"]}, "fn"),
])
def test_bad_arguments_are_config_errors(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        MetaWorldTask(**{"env_name": "reach-v3", "seed": 0, **kwargs})


def test_construction_builds_no_simulator():
    task = MetaWorldTask("push-v3", seed=0)
    assert task.env._env is None and task._starts is None


# ------------------------------------------------------------------- speed


def test_the_benchmark_reports_the_wrapper_overhead():
    # Speed is measured by scripts/bench_metaworld.py, never asserted here: a loaded 2-core machine
    # swings the figure several-fold. This checks that the benchmark runs and reports it.
    path = ROOT / "scripts" / "bench_metaworld.py"
    spec = importlib.util.spec_from_file_location("bench_metaworld", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_metaworld"] = bench
    spec.loader.exec_module(bench)
    result = bench.bench_metaworld(steps=20, env_name="push-v3", repeats=2, task_timings=False)
    print({k: round(v, 3) for k, v in result.items()})  # shown with -s: the figures of this run
    assert result["inner_steps_per_step"] > 15  # the P-controller really runs the inner steps
    assert result["overhead_in_step_ms"] >= 0 and math.isfinite(result["overhead_in_step_ms"])

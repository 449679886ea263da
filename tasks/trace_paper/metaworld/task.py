"""Meta-World with language feedback, the controller's code trained by an LLM optimizer: the
robotics experiment of Trace (arXiv 2406.16218, §5.4, Fig. 6).

    python -m harness.optimize task=metaworld_reach optimizer=optoprime_mem10 llm=openai
    python -m harness.optimize task=metaworld_push optimizer=trace_masked mode=smoke   # scripted double
    python -m harness.optimize -m experiment=fig6_pick_place llm.model=gpt-4-0125-preview

One evaluation = one episode of at most `horizon` steps from the seed's fixed training start,
recorded as one traced graph: `reset()`, then per step `controller(obs["observation"])` (the
trainable code) and `step(action)`, whose result holds the next observation and the step's
language feedback. The optimizer backwards from the last observation with "solved or not, and the
return"; a controller (or action) that raises ends the episode and its ExceptionNode is the output
instead, the error text the feedback. Facts of the protocol: specs/metaworld_and_traffic.md §2.

Score = the training episode's return (sum of its step rewards, 0..10 each), so "best" means the
controller that earned most on the training start; a failed episode scores -inf. Per evaluation,
`info` also carries `train_success`, `episode_steps`, `step_feedback` (the per-step sentences,
which Trace Masked and OPRO get appended) and, every `eval_every` evaluations, `test_success`:
the fraction of the seed's `test_starts` held-out starts the current controller solves, measured
before the optimizer's update, as the paper plots it. `test()` reports `success` and `return` on
the held-out starts for the run's best controller, and `last_success` for the last one evaluated
(the paper's final point). Held-out results are cached per source text.
"""
from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from harness.api import ConfigError, Feedback
from tasks.trace_paper.metaworld import controller as controller_module
from tasks.trace_paper.metaworld.env import GAINS, OBS_KEYS, LLFMetaWorld, Start, StepResult, draw_starts
from tasks.trace_paper.metaworld.feedback import FEEDBACK_TYPES
from trace_core import ExecutionError, Node, ParameterNode, bundle, graph_context

# What the task is, said once more in the instruction (the paper found the optimizers needed it
# for pick-place and push; reach had no such line).
GOALS = {
    "reach-v3": None,
    "pick-place-v3": "The robot has to grasp the puck, lift it and carry it to the goal position.",
    "push-v3": "The robot has to slide the puck over the table until it rests at the goal position.",
}


@dataclass
class Episode:
    """One rollout: the node to backward from, what each step returned, and the error if any."""

    output: Node
    steps: list[StepResult] = field(default_factory=list)  # one per executed step
    error: str | None = None

    @property
    def success(self) -> bool:
        return self.error is None and any(s.success for s in self.steps)

    @property
    def total_reward(self) -> float:
        return float(sum(s.reward for s in self.steps))

    def step_feedback(self) -> str:
        return "\n".join(f"Step {i}: {s.feedback}" for i, s in enumerate(self.steps, 1) if s.feedback)


@dataclass(frozen=True)
class HeldOut:
    success: float  # fraction of held-out starts solved; a rollout that raised counts as failed
    mean_return: float
    errors: int


def rollout(env: LLFMetaWorld, controller: Any, start: Start, horizon: int,
            describe_steps: bool = True) -> Episode:
    """Run one traced episode of `controller` (a bundled function) from `start`.

    The environment's own work happens inside the bundled `step`, so an action it cannot execute
    becomes an ExceptionNode whose input is the controller's output, as any other traced error.
    Reward and success stay out of the graph (the optimizer sees them only through feedback).
    """
    env.build()  # outside tracing: a broken install must raise, not become feedback text
    results: list[StepResult] = []

    @bundle()
    def reset():
        """Puts the robot and the puck back at the episode's starting positions.
        Returns {"observation": the first observation (dict of str -> list of float), "feedback": None}.
        """
        return {"observation": env.reset(start), "feedback": None}

    @bundle()
    def step(action):
        """Executes one action on the robot: a P-controller moves the hand for several simulation
        steps toward its current position plus action[:3]; the gripper follows action[3].
        Returns {"observation": the next observation, "feedback": sentences about the step}.
        """
        result = env.step(action, describe_step=describe_steps)
        results.append(result)
        return {"observation": result.observation, "feedback": result.feedback or None}

    try:
        obs = reset()
        for _ in range(horizon):
            obs = step(controller(obs["observation"]))
            if results[-1].success:
                break
        return Episode(output=obs["observation"], steps=results)
    except ExecutionError as failure:
        return Episode(output=failure.exception_node, steps=results, error=failure.exception_node.data)


def _positive_int(value: Any, key: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"task.{key}: {value!r} must be an integer >= {minimum}")
    return int(value)


class MetaWorldTask:
    """Train `controller(obs)` to solve one Meta-World task from a fixed start (higher is better)."""

    higher_is_better = True

    def __init__(self, env_name: str, seed: int, limit: int = 30, horizon: int = 10,
                 test_starts: int = 10, eval_every: int = 1, gain: float | None = None,
                 substeps: int = 20, feedback: Sequence[str] = FEEDBACK_TYPES,
                 paraphrase: bool = True, code_time_limit_s: float = 10.0) -> None:
        if env_name not in GAINS:
            raise ConfigError(f"task.env_name: {env_name!r} is not one of {sorted(GAINS)}")
        self.env_name, self.seed = env_name, int(seed)
        self.limit = _positive_int(limit, "limit")
        self.horizon = _positive_int(horizon, "horizon")
        self.test_starts = _positive_int(test_starts, "test_starts")
        self.eval_every = _positive_int(eval_every, "eval_every", minimum=0)
        substeps = _positive_int(substeps, "substeps")
        # The starts and the paraphrases draw from separate streams of the one seed.
        self._start_seq, words_seq = np.random.SeedSequence(self.seed).spawn(2)
        try:
            self.env = LLFMetaWorld(env_name, seed=words_seq, gain=gain, substeps=substeps,
                                    feedback=list(feedback), paraphrase=paraphrase)
        except ValueError as exc:
            raise ConfigError(f"task.feedback: {exc}") from None
        self._starts: list[Start] | None = None  # drawn on first use (needs the built env)
        # Per task instance: its own code parameter, and a second copy of the function that runs
        # whatever code held-out evaluation or test() is asked about.
        trainable = bundle(trainable=True, time_limit_s=code_time_limit_s)
        self.controller = trainable(controller_module.controller)
        self._judge = trainable(controller_module.controller)
        self._initial_code: str = self.controller.parameter.data
        self._held_out_cache: dict[str, HeldOut] = {}
        self._evaluations, self._last_code = 0, None
        self.objective = self._instruction()

    def _instruction(self) -> str:
        name = self.env_name.removesuffix("-v3")
        goal = GOALS[self.env_name]
        keys = ", ".join(OBS_KEYS[self.env_name])
        return (f"You are programming the controller of a Sawyer robot arm that must complete the "
                f"Meta-World task '{name}'.{' ' + goal if goal else ''} At every time step the "
                f"controller receives an observation of the robot and the world: a dict whose keys "
                f"({keys}) map to lists of floats. It must return an action of 4 numbers. The first "
                f"three set where the end effector should go during the step, as an offset in x, y "
                f"and z from its current position (relative coordinates); a P-controller then moves "
                f"the arm toward that point. The fourth controls the gripper: 0 opens it, 1 closes "
                f"it. An episode lasts at most {self.horizon} steps. Change the controller's code so "
                f"that the robot completes the task, using the feedback you get.")

    # -- the traced-task contract --------------------------------------------------------------
    def parameters(self) -> list[ParameterNode]:
        return [self.controller.parameter]

    def init_params(self) -> dict[str, str]:
        return {self.controller.parameter.py_name: self._initial_code}

    def starts(self) -> list[Start]:
        """The seed's training start, then its held-out starts (never equal to the training one)."""
        if self._starts is None:
            rng = np.random.default_rng(self._start_seq)
            self._starts = draw_starts(*self.env.reset_space(), n=1 + self.test_starts, rng=rng)
            assert all(s != self._starts[0] for s in self._starts[1:])
        return self._starts

    def evaluate(self, params: dict[str, Any]) -> Feedback:
        code = self._code(params)
        if code != self.controller.parameter.data:
            # A caller other than the Trace adapter (which asks for exactly the current code)
            # evaluates some other code: the parameter takes it, as an optimizer update would.
            self.controller.parameter._data = code
        episode = rollout(self.env, self.controller, self.starts()[0], self.horizon)
        info: dict[str, Any] = {"train_success": float(episode.success),
                                "episode_steps": len(episode.steps),
                                "step_feedback": episode.step_feedback()}
        k = self._evaluations
        if self.eval_every and (k % self.eval_every == 0 or k == self.limit - 1):
            held_out = self.held_out(code)
            info["test_success"], info["test_errors"] = held_out.success, held_out.errors
            # The paper's curve leaves an iteration out (NaN) when its rollout or any held-out
            # rollout raised; ours counts those as failures. Both are kept, side by side.
            raised = episode.error is not None or held_out.errors > 0
            info["test_success_paper"] = math.nan if raised else held_out.success
        self._evaluations, self._last_code = self._evaluations + 1, code
        if episode.error is not None:
            return Feedback(score=float("-inf"), text=episode.error, output=episode.output, info=info)
        text = (f"Task completed: {'yes' if episode.success else 'no'} "
                f"(after {len(episode.steps)} of at most {self.horizon} steps).\n"
                f"Return (sum of the step rewards): {episode.total_reward:.3f}")
        return Feedback(score=episode.total_reward, text=text, output=episode.output, info=info)

    def test(self, params: dict[str, Any]) -> dict[str, float]:
        """Held-out success and mean return of `params` (the run's best), and held-out success of
        the last controller the loop evaluated (the paper's final point)."""
        best = self.held_out(self._code(params))
        last = self.held_out(self._last_code) if self._last_code is not None else best
        return {"success": best.success, "return": best.mean_return, "last_success": last.success}

    # -- held-out evaluation -------------------------------------------------------------------
    def held_out(self, code: str) -> HeldOut:
        """Run `code` from every held-out start. Cached by source: physics and starts are fixed,
        so the same code gives the same result (a controller that uses randomness gets one draw)."""
        if code not in self._held_out_cache:
            self._judge.parameter._data = code  # how an optimizer writes a parameter
            # Own naming scope: the training graph's node names (which the optimizer sees) do not
            # depend on how often held-out episodes ran.
            with graph_context():
                episodes = [rollout(self.env, self._judge, start, self.horizon, describe_steps=False)
                            for start in self.starts()[1:]]
            self._held_out_cache[code] = HeldOut(
                success=float(np.mean([e.success for e in episodes])),
                mean_return=float(np.mean([e.total_reward for e in episodes])),
                errors=sum(e.error is not None for e in episodes))
        return self._held_out_cache[code]

    def _code(self, params: dict[str, Any]) -> str:
        name = self.controller.parameter.py_name
        if not isinstance(params.get(name), str):
            raise ValueError(f"params must hold the controller's source under {name!r}, "
                             f"got {sorted(params)}")
        return params[name]


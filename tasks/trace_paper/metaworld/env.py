"""An LLF-style wrapper around Meta-World 3 (reach-v3, pick-place-v3, push-v3): dict observations,
4-number actions run by a P-controller, and language feedback from Meta-World's scripted expert.

    from tasks.trace_paper.metaworld.env import LLFMetaWorld, draw_starts
    env = LLFMetaWorld("push-v3", seed=0)
    start = draw_starts(*env.reset_space(), n=1, rng=np.random.default_rng(0))[0]
    obs = env.reset(start)                      # {"hand_pos": [x, y, z], "puck_pos": [...], ...}
    result = env.step([0.0, 0.05, 0.0, 0.0])    # StepResult(observation, feedback, reward, success)

Why our own wrapper: LLF-Bench pins gymnasium 0.29, numpy < 1.24 and mujoco < 3, none of which
can sit beside metaworld 3.1.1, so we rebuild its behaviour (specs/metaworld_and_traffic.md §1):

* The raw environment class is built (not the registered gym env, which draws a new task on every
  reset), and each episode's initial condition (object and goal position) is set explicitly, so
  an episode always starts where the caller says.
* An action [dx, dy, dz, g] sets the hand's target to its current position plus (dx, dy, dz);
  up to `substeps` Meta-World steps then drive the hand there with a P-controller (command =
  gain x error, which Meta-World clips to [-1, 1] and scales to at most 1 cm per step), holding
  the gripper command g. Reward and success are those of the last inner step (Meta-World's own
  success test: reach 5 cm, pick-place 7 cm, push 5 cm).
* Observations are Meta-World's expert-policy view of the state (its `_parse_obs` keys, minus
  padding), as lists of floats rounded to 3 decimals.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from harness.api import ConfigError
from tasks.trace_paper.metaworld.feedback import FEEDBACK_TYPES, StepFacts, check_types, describe

GAINS = {"reach-v3": 5.0, "pick-place-v3": 10.0, "push-v3": 10.0}  # LLF-Bench's P-gains per task
# Keys of the observation dict (what Meta-World's expert policies parse, padding removed). Known
# without building anything, so a task can describe them before its first episode.
OBS_KEYS = {
    "reach-v3": ("hand_pos", "puck_pos", "goal_pos"),
    "push-v3": ("hand_pos", "puck_pos", "goal_pos"),
    "pick-place-v3": ("hand_pos", "gripper_distance_apart", "puck_pos", "puck_rot", "goal_pos",
                      "_prev_obs"),
}
MIN_SEPARATION = 0.15  # Meta-World redraws starts whose object and goal are closer than this in xy
ARRIVED = 1e-4  # m: an inner loop stops early once every axis is this close to the target


@dataclass(frozen=True)
class Start:
    """One initial condition: Meta-World's "rand_vec", object xyz then goal xyz (metres)."""

    vector: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.vector) != 6:
            raise ValueError(f"a start is 6 numbers (object xyz, goal xyz), got {len(self.vector)}")


def draw_starts(low: np.ndarray, high: np.ndarray, n: int, rng: np.random.Generator) -> list[Start]:
    """`n` initial conditions, uniform in the task's reset box, object and goal >= 15 cm apart.

    The separation test is Meta-World's own; doing it here matters, because a frozen start that
    failed it would make Meta-World's reset redraw the same vector forever.
    """
    starts: list[Start] = []
    while len(starts) < n:
        vec = rng.uniform(low, high)
        if np.linalg.norm(vec[:2] - vec[3:5]) >= MIN_SEPARATION:
            starts.append(Start(tuple(float(v) for v in vec)))
    return starts


@dataclass(frozen=True)
class StepResult:
    observation: dict[str, list[float]]
    feedback: str  # "" when the step was run without feedback
    reward: float
    success: bool


class ActionError(ValueError):
    """The controller's action is not 4 finite numbers."""


def parse_action(action: Any) -> np.ndarray:
    """The action as a float array of 4, or ActionError saying what is wrong (shown to the LLM)."""
    shown = repr(action) if len(repr(action)) <= 200 else repr(action)[:200] + "..."
    try:
        values = np.asarray(action, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ActionError(f"the action must be 4 numbers [dx, dy, dz, gripper], got {shown}") from None
    if values.size != 4:
        raise ActionError(f"the action must be 4 numbers [dx, dy, dz, gripper], "
                          f"got {values.size}: {shown}")
    if not np.all(np.isfinite(values)):
        raise ActionError(f"the action contains a value that is not finite: {shown}")
    return values


class LLFMetaWorld:
    """One Meta-World task behind an LLF-style interface. The MuJoCo environment is built on first
    use (so a task object is cheap to create); the paraphrase generator is seeded by `seed`."""

    def __init__(self, env_name: str, seed: int | np.random.SeedSequence = 0,
                 gain: float | None = None, substeps: int = 20,
                 feedback: Iterable[str] = FEEDBACK_TYPES, paraphrase: bool = True) -> None:
        if env_name not in GAINS:
            raise ValueError(f"unsupported Meta-World task {env_name!r}; choose from {sorted(GAINS)}")
        self.env_name, self.substeps = env_name, int(substeps)
        self.gain = float(GAINS[env_name] if gain is None else gain)
        self.feedback_types = check_types(feedback)
        # Paraphrase choice only: its own stream, so the feedback a seed gives never depends on
        # anything else drawn in the process.
        self._rng = np.random.default_rng(seed) if paraphrase else None
        self._env: Any = None
        self._policy: Any = None
        self._raw: np.ndarray | None = None  # Meta-World's latest 39-number observation

    # -- building and resetting -----------------------------------------------------------------
    def build(self) -> None:
        """Build the MuJoCo environment and the scripted expert (once; about 0.2 s)."""
        if self._env is not None:
            return
        try:
            from metaworld.env_dict import ALL_V3_ENVIRONMENTS  # heavy: mujoco, gymnasium
            from metaworld.policies import ENV_POLICY_MAP
        except ImportError as exc:
            raise ConfigError("the Meta-World tasks need the robot extra "
                              f"(pip install -e '.[robot]'): {exc}") from exc

        self._env_cls = ALL_V3_ENVIRONMENTS[self.env_name]
        env = self._env_cls()
        # Meta-World refuses to step past 500 inner steps per episode; we reset every episode
        # ourselves and a horizon of 10 x 20 stays below it, but longer horizons must not fail.
        env.max_path_length = 10**9
        self._env, self._policy = env, ENV_POLICY_MAP[self.env_name]()

    def reset_space(self) -> tuple[np.ndarray, np.ndarray]:
        """Low and high corners of the box Meta-World draws initial conditions from."""
        self.build()
        box = self._env._random_reset_space  # Meta-World keeps it private; no public accessor
        return np.array(box.low, dtype=float), np.array(box.high, dtype=float)

    def reset(self, start: Start) -> dict[str, list[float]]:
        """Start an episode at `start` and return the first observation."""
        from metaworld.types import Task

        self.build()
        # A task frozen to this one vector: Meta-World's reset then places object and goal there
        # instead of sampling (MT1's goal-observable setting, as LLF-Bench used).
        data = {"rand_vec": np.array(start.vector), "env_cls": self._env_cls,
                "partially_observable": False}
        self._env.set_task(Task(env_name=self.env_name, data=pickle.dumps(data)))
        self._raw, _ = self._env.reset()
        return self.observation()

    # -- reading the state ----------------------------------------------------------------------
    def observation(self) -> dict[str, list[float]]:
        """The expert's parsed view of the state, padding dropped, floats rounded to 3 decimals."""
        parsed = self._policy._parse_obs(self._raw)
        return {key: [round(float(v), 3) + 0.0 for v in np.atleast_1d(value)]  # + 0.0: no "-0.0"
                for key, value in parsed.items() if "unused" not in key and "extra_info" not in key}

    @property
    def hand(self) -> np.ndarray:
        return np.array(self._raw[:3])

    def suggestion(self) -> tuple[np.ndarray, float]:
        """Where the scripted expert would move the hand now (absolute xyz) and its gripper command."""
        if self.env_name == "reach-v3":  # the reach expert heads straight for the goal, gripper open
            return np.array(self._raw[-3:]), 0.0
        parsed = self._policy._parse_obs(self._raw)
        target = np.asarray(self._policy._desired_pos(parsed), dtype=float)
        return target, float(self._policy._grab_effort(parsed))

    # -- acting ---------------------------------------------------------------------------------
    def step(self, action: Any, describe_step: bool = True) -> StepResult:
        """Move toward hand + action[:3] with the gripper at action[3]; say how it went."""
        values = parse_action(action)
        if self._raw is None:
            raise RuntimeError("reset() before step()")
        before = self.hand
        target, grip = before + values[:3], float(values[3])
        reward, success = 0.0, False
        for _ in range(self.substeps):
            command = np.append(self.gain * (target - self.hand), grip)
            self._raw, reward, _, _, info = self._physics_step(command)
            success = bool(info["success"])
            if np.all(np.abs(target - self.hand) < ARRIVED):
                break
        text = ""
        if describe_step and self.feedback_types:
            text = self._feedback(before, grip, float(reward))
        return StepResult(self.observation(), text, float(reward), success)

    def _physics_step(self, command: np.ndarray) -> tuple[Any, ...]:
        """One Meta-World step (kept separate so a benchmark can time the bare physics)."""
        return self._env.step(command)

    def _feedback(self, before: np.ndarray, grip: float, reward: float) -> str:
        target, target_grip = self.suggestion()
        moved_away = np.linalg.norm(self.hand - target) > np.linalg.norm(before - target)
        hint = ("close" if target_grip > 0.5 and grip < 0.5 else
                "open" if target_grip < 0.5 and grip > 0.5 else None)
        facts = StepFacts(reward=reward, moved_away=bool(moved_away), gripper_hint=hint,
                          target=tuple(float(v) for v in target), target_grip=target_grip)
        return describe(facts, self.feedback_types, self._rng)


def follow_expert(env: LLFMetaWorld) -> list[float]:
    """The action that heads for the expert's suggestion (relative to the hand): a reference
    controller for tests and benchmarks, and what the `fp` feedback tells the optimizer."""
    target, grip = env.suggestion()
    return [*(target - env.hand), grip]

"""Language feedback for one Meta-World step, in the style of LLF-Bench (our own wording).

After each step the wrapper asks Meta-World's scripted expert where the hand should go next and
whether the gripper should be closed, then says, in words, some of:

    r   the step's reward
    hp  "that got you closer" (when the hand did not move away from the expert's target)
    hn  "that was the wrong direction" (when it did)
    fp  the expert's next target, as an absolute position and a gripper value

plus, with hp or hn, a hint to open or close the gripper when the action disagrees with the
expert. Each sentence is drawn from a handful of paraphrases with a `numpy.random.Generator`
that the caller owns (so a seeded run always says the same thing). Facts of the original
feedback: specs/metaworld_and_traffic.md, section 1.6; the sentences here are our own.

    from tasks.trace_paper.metaworld.feedback import StepFacts, describe
    text = describe(StepFacts(reward=1.2, moved_away=False, gripper_hint="close",
                              target=(0.0, 0.6, 0.1), target_grip=1.0), ("r", "hp", "hn", "fp"), rng)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

FEEDBACK_TYPES = ("r", "hp", "hn", "fp")

REWARD = (
    "The reward for this step is {reward}.",
    "You received a reward of {reward}.",
    "This step earned a reward of {reward}.",
    "Reward obtained for that action: {reward}.",
    "The step was rewarded with {reward}.",
    "That action was worth a reward of {reward}.",
)
CLOSER = (
    "Good: the hand got closer to where it should be.",
    "That step moved the arm in the right direction.",
    "You are making progress toward the right spot.",
    "Nice, the gripper is now nearer to its target.",
    "The last action brought the hand closer to where it needs to go.",
    "Keep it up, that move went toward the target.",
)
AWAY = (
    "That action took the hand away from where it should be.",
    "You moved in the wrong direction.",
    "The arm is now farther from its target than before.",
    "That step led away from the right spot.",
    "Wrong way: the gripper drifted off from its target.",
    "This move increased the distance to where the hand needs to go.",
)
CLOSE_GRIPPER = (
    "The gripper should be closed now.",
    "Close the gripper.",
    "It is time to shut the gripper.",
    "You need to grasp here, so close the fingers.",
    "Try closing the gripper at this point.",
)
OPEN_GRIPPER = (
    "The gripper should be open now.",
    "Open the gripper.",
    "Let go: open the fingers.",
    "Keep the gripper open here.",
    "Try opening the gripper.",
)
TARGET = (
    "A good next target is the position {xyz} with gripper {grip}.",
    "Aim for the position {xyz} next, gripper {grip}.",
    "Next, move the hand to {xyz} with the gripper at {grip}.",
    "An expert would now head to {xyz}, gripper {grip}.",
    "Try going to {xyz} and setting the gripper to {grip}.",
    "Your next hand position should be {xyz}, gripper {grip}.",
)


@dataclass(frozen=True)
class StepFacts:
    """What the feedback of one step is made of (all positions absolute, in metres)."""

    reward: float
    moved_away: bool  # the hand's distance to the expert's target grew during the step
    gripper_hint: str | None  # "close", "open", or None when the action's gripper agrees
    target: tuple[float, float, float]  # where the expert would move the hand next
    target_grip: float  # the expert's gripper command (0 open .. 1 closed)


def check_types(types: Iterable[str]) -> tuple[str, ...]:
    """The feedback types as a tuple, or ValueError naming the unknown ones."""
    chosen = tuple(types)
    unknown = [t for t in chosen if t not in FEEDBACK_TYPES]
    if unknown:
        raise ValueError(f"unknown feedback type(s) {unknown}; choose from {list(FEEDBACK_TYPES)}")
    return chosen


def _pick(options: Sequence[str], rng: np.random.Generator | None) -> str:
    # No generator: always the first wording (deterministic text, e.g. for tests).
    return options[0] if rng is None else options[int(rng.integers(len(options)))]


def describe(facts: StepFacts, types: Sequence[str], rng: np.random.Generator | None) -> str:
    """The step's feedback: the chosen sentences in the order r, hp/hn, gripper hint, fp."""
    parts = []
    if "r" in types:
        parts.append(_pick(REWARD, rng).format(reward=f"{facts.reward:.3f}"))
    if "hp" in types and not facts.moved_away:
        parts.append(_pick(CLOSER, rng))
    if "hn" in types and facts.moved_away:
        parts.append(_pick(AWAY, rng))
    # One hint, even when both hp and hn are on (the original could say it twice).
    if facts.gripper_hint and ("hp" in types or "hn" in types):
        parts.append(_pick(CLOSE_GRIPPER if facts.gripper_hint == "close" else OPEN_GRIPPER, rng))
    if "fp" in types:
        xyz = "[" + ", ".join(f"{v:.2f}" for v in facts.target) + "]"
        parts.append(_pick(TARGET, rng).format(xyz=xyz, grip=f"{facts.target_grip:.1f}"))
    return " ".join(parts)

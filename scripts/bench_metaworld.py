"""Benchmark of the Meta-World LLF wrapper: its cost per action on top of the bare MuJoCo steps.

    python scripts/bench_metaworld.py                    # 200 actions of push-v3
    python scripts/bench_metaworld.py --steps 500 --env pick-place-v3

Both sides run in the same process on the same work: the wrapper executes `steps` actions of the
expert-following controller (episodes of 10 from fixed starts), feedback sentences on, recording
every inner Meta-World step command; right after each episode the raw environment replays it
from the same start with exactly those commands. Resets are outside both timings. The wrapper's
time outside Meta-World's own `step` is also summed inside each call (`overhead_in_step_ms`), a
figure that load from other processes cannot skew the way it can skew the difference of two passes. Also timed: one
whole traced episode (graph included) and a first `evaluate` of the task (training episode plus
10 held-out episodes).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a clone

from tasks.trace_paper.metaworld.env import LLFMetaWorld, Start, draw_starts, follow_expert  # noqa: E402

EPISODE = 10


class _Recording(LLFMetaWorld):
    """The wrapper, keeping every inner command it sends and the time spent inside Meta-World."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: list[np.ndarray] = []
        self.physics_s = 0.0

    def _physics_step(self, command: np.ndarray) -> tuple[Any, ...]:
        self.commands.append(command)
        began = time.perf_counter()
        out = super()._physics_step(command)
        self.physics_s += time.perf_counter() - began
        return out


def _episode_pair(env: _Recording, start: Start, steps: int) -> tuple[float, float, float, int]:
    """One episode through the wrapper, then its inner commands replayed on the raw environment:
    (wrapper s, of which inside Meta-World's step s, raw replay s, inner steps). Resets are
    outside all timings."""
    env.reset(start)
    env.commands, env.physics_s, wrapper_s = [], 0.0, 0.0
    for _ in range(steps):
        action = follow_expert(env)  # the controller's own time is not the wrapper's
        began = time.perf_counter()
        env.step(action)
        wrapper_s += time.perf_counter() - began
    commands, physics_s = env.commands, env.physics_s
    env.reset(start)
    raw = env._env
    began = time.perf_counter()
    for command in commands:
        raw.step(command)
    return wrapper_s, physics_s, time.perf_counter() - began, len(commands)


def _task_timings(env_name: str) -> dict[str, float]:
    from tasks.trace_paper.metaworld.task import MetaWorldTask, rollout
    from trace_core import graph_context

    with graph_context():
        task = MetaWorldTask(env_name, seed=0)
        task.env.build()
        began = time.perf_counter()
        first = task.evaluate(task.init_params())
        evaluate_s = time.perf_counter() - began
        began = time.perf_counter()
        episode = rollout(task.env, task.controller, task.starts()[0], task.horizon)
        episode_s = time.perf_counter() - began
    assert first.info["episode_steps"] == len(episode.steps) == EPISODE
    return {"traced_episode_ms": episode_s * 1e3, "first_evaluate_s": evaluate_s}


def bench_metaworld(steps: int = 200, env_name: str = "push-v3", repeats: int = 3,
                    task_timings: bool = True) -> dict[str, float]:
    """Wrapper vs raw Meta-World on the same inner steps; times in milliseconds per action.

    Each episode is timed through the wrapper and then raw, back to back, so that load from other
    processes hits both sides alike; of `repeats` passes over all episodes the fastest counts.
    """
    env = _Recording(env_name, seed=0)
    lengths = [min(EPISODE, steps - k) for k in range(0, steps, EPISODE)]
    starts = draw_starts(*env.reset_space(), n=len(lengths), rng=np.random.default_rng(0))
    _episode_pair(env, starts[0], EPISODE)  # warm-up: first-call costs stay out of the figures
    passes = []
    for _ in range(max(1, repeats)):
        pairs = [_episode_pair(env, start, n) for start, n in zip(starts, lengths)]
        passes.append([sum(column) for column in zip(*pairs)])
    wrapper_s, physics_s, raw_s, inner = min(passes, key=lambda p: p[0] + p[2])
    ms = 1e3 / steps
    result = {"steps": float(steps), "inner_steps_per_step": inner / steps,
              "wrapper_step_ms": wrapper_s * ms, "raw_inner_steps_ms": raw_s * ms,
              "overhead_ms": (wrapper_s - raw_s) * ms,
              # The same difference measured inside each call (wrapper time not spent in
              # Meta-World's step): immune to load that differs between the two passes.
              "overhead_in_step_ms": min(p[0] - p[1] for p in passes) * ms}
    result["overhead_fraction"] = result["overhead_ms"] / result["raw_inner_steps_ms"]
    if task_timings:
        result.update(_task_timings(env_name))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="actions to time")
    parser.add_argument("--env", default="push-v3", choices=["reach-v3", "pick-place-v3", "push-v3"])
    parser.add_argument("--repeats", type=int, default=3,
                        help="passes over the episodes; the fastest counts")
    args = parser.parse_args(argv)
    for key, value in bench_metaworld(args.steps, args.env, args.repeats).items():
        print(f"{key:<22}  {value:.4g}")


if __name__ == "__main__":
    main()

"""The Dualformer / Searchformer metrics over k sampled responses per test task.

    scores = plan_metrics([TaskResponses(optimal_length=12, responses=[Response(...), ...]), ...])

Every response is judged by the task itself (a maze path check, a Sokoban replay), never by string
match to the reference plan; this module only counts. Definitions (specs/dualformer.md §3):
- k-Solved-n / k-Optimal-n: % of tasks with at least k correct / optimal responses among n;
  each with Wilson's binomial 95% interval over the tasks (`<key>_ci_low`, `<key>_ci_high`);
- SWC: mean over tasks of c_i * l*_i / max(l_i, l*_i), l_i the shortest correct plan's length;
- diversity: distinct correct plans per task (and distinct optimal ones), averaged over tasks;
- trace length: mean number of trace tokens (before the plan) over all responses; a response
  with no readable plan counts what the task gave it (dualformer.planning: its full length, or 0
  as upstream), and `unreadable_fraction` says how many there were.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Response:
    plan: tuple            # the plan as the task reads it (e.g. a tuple of cells)
    correct: bool
    plan_length: int       # plan steps, comparable with the optimal length
    trace_tokens: int      # tokens before the plan (the task decides what an unreadable one counts)
    readable: bool = True  # False: no plan could be read from the response


@dataclass
class TaskResponses:
    optimal_length: int
    responses: list[Response] = field(default_factory=list)


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's 95% interval for a binomial rate, in percent (sane at 0% and 100%, unlike +-2 SE)."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def plan_metrics(tasks: list[TaskResponses], ks: tuple[int, ...] = (1, 3)) -> dict[str, float]:
    if not tasks:
        raise ValueError("no test tasks to score")
    n = len(tasks[0].responses)
    out: dict[str, float] = {}
    correct = [[r for r in t.responses if r.correct] for t in tasks]
    optimal = [[r for r in c if r.plan_length == t.optimal_length] for c, t in zip(correct, tasks)]
    for k in ks:
        for name, hits in ((f"{k}_solved_{n}", correct), (f"{k}_optimal_{n}", optimal)):
            count = sum(len(h) >= k for h in hits)
            out[name] = 100.0 * count / len(tasks)
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = wilson(count, len(tasks))
    out["swc"] = sum(t.optimal_length / max(min(r.plan_length for r in c), t.optimal_length)
                     for c, t in zip(correct, tasks) if c) / len(tasks)
    out["diversity_correct"] = sum(len({r.plan for r in c}) for c in correct) / len(tasks)
    out["diversity_optimal"] = sum(len({r.plan for r in o}) for o in optimal) / len(tasks)
    everything = [r for t in tasks for r in t.responses]
    out["trace_tokens"] = sum(r.trace_tokens for r in everything) / len(everything)
    out["unreadable_fraction"] = sum(not r.readable for r in everything) / len(everything)
    return out

"""A SCATS-style fixed plan: split one cycle between two approaches in proportion to their demand.

    python -m harness.optimize task=traffic optimizer=scats seed=42

The traffic baseline of Trace (arXiv 2406.16218, Fig. 5b; specs/metaworld_and_traffic.md §3.3).
It reads the task's nominal demand once, proposes one plan and is done after that single
evaluation (the runner stops when `finished` turns True; the figure draws it as a flat line).
"""
from __future__ import annotations

from typing import Any

from harness.api import ConfigError, Feedback


class ScatsOptimizer:
    """Demand-proportional green split.

    The cycle is as long as it takes the mean total arrival rate to bring `max_queue_per_cycle`
    vehicles; the minor approach gets cycle / (1 + ratio) of it (ratio = major demand / minor
    demand, rounded down) and the major approach the rest. Greens are clamped to the task's box.

    `task` needs only `nominal_arrivals() -> {"ew": vehicles, "ns": vehicles}`, `duration_s` and
    `space` (Bounds for "ew" and "ns"); `seed` is unused (the plan is deterministic) and kept so
    every optimizer takes the same arguments.
    """

    def __init__(self, task: Any, seed: int = 0, max_queue_per_cycle: float = 60.0) -> None:
        if not callable(getattr(task, "nominal_arrivals", None)):
            raise ConfigError(f"optimizer=scats needs a signal-timing task (nominal_arrivals); "
                              f"{type(task).__name__} has none")
        if not max_queue_per_cycle > 0:
            raise ConfigError(f"optimizer.max_queue_per_cycle: {max_queue_per_cycle!r} must be > 0")
        self.task = task
        self.seed = seed
        self.max_queue_per_cycle = float(max_queue_per_cycle)
        self.finished = False
        self.feedback: Feedback | None = None
        self.plan = self._plan()

    def _plan(self) -> dict[str, int]:
        arrivals = self.task.nominal_arrivals()
        ew, ns = float(arrivals["ew"]), float(arrivals["ns"])
        rate = (ew + ns) / float(self.task.duration_s)  # veh/s over the whole intersection
        low = {d: int(self.task.space[d].low) for d in ("ew", "ns")}
        high = {d: int(self.task.space[d].high) for d in ("ew", "ns")}
        if rate <= 0:  # no demand at all: any plan is as good as any other
            return low
        cycle = int(self.max_queue_per_cycle // rate)
        major_dir, minor_dir = ("ew", "ns") if ew >= ns else ("ns", "ew")
        larger, smaller = max(ew, ns), min(ew, ns)
        minor = int(cycle // (1 + larger / smaller)) if smaller > 0 else 0
        greens = {major_dir: cycle - minor, minor_dir: minor}
        return {d: min(max(greens[d], low[d]), high[d]) for d in ("ew", "ns")}

    def ask(self) -> dict[str, int]:
        return dict(self.plan)

    def tell(self, params: dict[str, Any], feedback: Feedback) -> None:
        self.feedback = feedback
        self.finished = True  # one plan, one evaluation

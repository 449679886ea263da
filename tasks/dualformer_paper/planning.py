"""What the planning tasks (mazes, Sokoban) share: content-hash IDs, the split rule, examples.

    from tasks.dualformer_paper.planning import content_id, split_of
    layout = content_id("maze 10 walls 3 7 12")      # 20 hex digits, the same in every process
    split_of(layout, test_fraction=0.1)              # "train" or "test", decided by the hash alone

IDs are digests of a canonical text of the task, never Python's `hash()` (salted per process), so
two workers or two runs name the same task the same way. The split is a function of the layout's
ID: a layout (and every task drawn on it) is in train or in test, never both, whichever worker or
shard happened to draw it.
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from tasks.dualformer_paper.astar import Event, SearchResult

SPLITS = ("train", "test")
# Bump when a change to the generators or A* changes what a given seed produces: datasets record it.
GENERATOR_VERSION = 1
_ID_BYTES = 10  # 80 bits: no collision expected below ~10^11 tasks


def content_id(text: str) -> str:
    """A stable ID for a canonical task text."""
    return hashlib.blake2b(text.encode(), digest_size=_ID_BYTES).hexdigest()


def split_of(layout_id: str, test_fraction: float) -> str:
    """"test" for a fraction `test_fraction` of layout IDs (uniform over digests), else "train"."""
    return "test" if int(layout_id[:12], 16) < test_fraction * 16**12 else "train"


class PlanningTask(Protocol):
    """A maze or a Sokoban level: knows its IDs and how to become JSON."""

    @property
    def id(self) -> str: ...

    @property
    def layout_id(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Example:
    """One generated task with the A* search that solved it (what a dataset line holds)."""

    task: PlanningTask  # tasks.dualformer_paper.maze.Maze | tasks.dualformer_paper.sokoban.SokobanLevel
    search: SearchResult
    split: str

    @property
    def id(self) -> str:
        return self.task.id

    @property
    def plan(self) -> tuple[int, ...]:
        assert self.search.plan is not None, "examples are solved tasks"
        return self.search.plan

    @property
    def events(self) -> tuple[Event, ...]:
        return self.search.events

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict; the trace is flattened to [kind, state, g, h, kind, state, ...]."""
        return {"id": self.id, "layout": self.task.layout_id, "split": self.split,
                "task": self.task.to_dict(), "plan": list(self.plan),
                "trace": list(itertools.chain.from_iterable(self.events))}

    @classmethod
    def from_record(cls, record: dict[str, Any], task_type: Any) -> "Example":
        """The inverse of `to_record`; `task_type` is Maze or SokobanLevel (its `from_dict`)."""
        flat: Sequence[int] = record["trace"]
        events = tuple(tuple(flat[i:i + 4]) for i in range(0, len(flat), 4))
        task = task_type.from_dict(record["task"])
        search = SearchResult(tuple(record["plan"]), events)  # type: ignore[arg-type]
        return cls(task, search, record["split"])

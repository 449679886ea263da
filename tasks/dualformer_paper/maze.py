"""Maze navigation tasks of Searchformer / Dualformer: n x n grids, A* traces, split by layout.

    import random
    import numpy as np
    from tasks.dualformer_paper.maze import Maze, generate, solve
    for example in generate(size=30, n=100, rng=np.random.default_rng(0), split="train"):
        example.task, example.plan, example.events        # Maze, cells start..goal, A* events
    maze = Maze(size=10, walls=(11, 12, 13), start=0, goal=99)
    solve(maze).plan                                      # deterministic A*
    solve(maze, rng=random.Random(0)).plan                # nondeterministic A*

Datasets on disk: `python scripts/gen_data.py maze --size 30 ...` (see that script).

Facts of the setup (specs/dualformer.md section 1.1): cells are numbered x + y*n and moves go to
the 4 neighbours at cost 1; the wall count is uniform over the integers of [0.3 n^2, 0.5 n^2]
(upstream uses [3*floor(n^2/10), 5*floor(n^2/10)], the same for n = 10, 20, 30 and two walls lower
at 15 and 25); start and goal are two distinct free cells; a task is kept when A* finds a plan of
at least n cells (start and goal included); each wall layout gets up to 100 start/goal draws and
keeps every distinct valid task. The train/test split is by layout (tasks.dualformer_paper.planning.split_of).

Speed (the upstream logic takes 0.1-0.2 s per 30x30 task, mostly scanning the wall list for every
neighbour): the neighbours of every free cell are computed once per layout with numpy, the
heuristic once per goal, and pairs in different connected components are rejected without search.
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from harness.api import ConfigError
from tasks.dualformer_paper.astar import SearchResult, astar, python_rng
from tasks.dualformer_paper.planning import Example, content_id, split_of

SIZES = (10, 15, 20, 25, 30)
DENSITY = (0.3, 0.5)
ATTEMPTS_PER_LAYOUT = 100


@dataclass(frozen=True)
class Maze:
    """One task: a square wall layout, a start cell and a goal cell (cells are x + y*size)."""

    size: int
    walls: tuple[int, ...]  # sorted
    start: int
    goal: int

    def xy(self, cell: int) -> tuple[int, int]:
        return cell % self.size, cell // self.size

    @functools.cached_property
    def layout_id(self) -> str:
        return layout_id(self.size, self.walls)

    @functools.cached_property
    def id(self) -> str:
        return content_id(f"maze {self.size} start {self.start} goal {self.goal} {self.layout_id}")

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "walls": list(self.walls), "start": self.start, "goal": self.goal}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Maze":
        return cls(int(data["size"]), tuple(data["walls"]), int(data["start"]), int(data["goal"]))

    def render(self, plan: Sequence[int] = ()) -> str:
        """Rows from y = size-1 down to 0: '#' wall, 'S' start, 'G' goal, '*' plan, '.' free."""
        marks = dict.fromkeys(self.walls, "#") | dict.fromkeys(plan, "*") | {self.start: "S", self.goal: "G"}
        return "\n".join("".join(marks.get(x + y * self.size, ".") for x in range(self.size))
                         for y in reversed(range(self.size)))


def layout_id(size: int, walls: Sequence[int]) -> str:
    return content_id(f"maze {size} walls " + " ".join(map(str, walls)))


class Grid:
    """One wall layout, prepared for many searches: neighbour lists and connected components."""

    def __init__(self, size: int, walls: Sequence[int]):
        self.size, self.walls = size, tuple(walls)
        wall = np.zeros(size * size, dtype=bool)
        wall[list(self.walls)] = True
        self.free = np.flatnonzero(~wall)
        cells = np.arange(size * size).reshape(size, size)  # [y, x]
        grid = (~wall).reshape(size, size)
        columns = []  # the upstream deterministic child order: up (y+1), down (y-1), left, right
        for dy, dx in ((1, 0), (-1, 0), (0, -1), (0, 1)):
            target = np.full((size, size), -1)
            ys, xs = slice(max(0, -dy), size - max(0, dy)), slice(max(0, -dx), size - max(0, dx))
            ts, tx = slice(max(0, dy), size - max(0, -dy)), slice(max(0, dx), size - max(0, -dx))
            target[ys, xs] = np.where(grid[ts, tx], cells[ts, tx], -1)
            columns.append(np.where(grid, target, -1).ravel())
        table = np.stack(columns, axis=1).tolist()
        self.neighbours: list[tuple[int, ...]] = [tuple(c for c in row if c >= 0) for row in table]
        self.component = self._components()
        self._x, self._y = np.tile(np.arange(size), size), np.repeat(np.arange(size), size)

    def _components(self) -> list[int]:
        label = [-1] * (self.size * self.size)
        for seed in self.free.tolist():
            if label[seed] >= 0:
                continue
            label[seed], stack = seed, [seed]
            while stack:
                for nxt in self.neighbours[stack.pop()]:
                    if label[nxt] < 0:
                        label[nxt] = seed
                        stack.append(nxt)
        return label

    def heuristic(self, goal: int) -> list[int]:
        """Manhattan distance to `goal` of every cell, as a list (one C-level lookup per child)."""
        gx, gy = goal % self.size, goal // self.size
        return (np.abs(self._x - gx) + np.abs(self._y - gy)).tolist()

    def solve(self, start: int, goal: int, rng: random.Random | None = None,
              ties: str = "uniform") -> SearchResult:
        """A* from start to goal; start and goal in different components: no search, no events.

        ties: how a nondeterministic search breaks ties in f (tasks.dualformer_paper.astar: "uniform" or "upstream")."""
        if self.component[start] != self.component[goal] or self.component[start] < 0:
            return SearchResult(None, ())
        return astar(start, goal.__eq__, self.neighbours.__getitem__,
                     self.heuristic(goal).__getitem__, rng, ties=ties if rng is not None else "uniform")

    def tasks(self, rng: np.random.Generator, search_rng: random.Random | None, split: str,
              attempts: int = ATTEMPTS_PER_LAYOUT, min_plan: int | None = None,
              keep_fraction: float = 1.0, max_tasks: int | None = None, ties: str = "uniform") -> list[Example]:
        """Draw `attempts` start/goal pairs and keep each distinct one whose plan has >= min_plan cells.

        keep_fraction: keep each distinct pair with this probability, decided before its search
        (the same law as subsampling the valid tasks afterwards, without searching the dropped).
        max_tasks: stop after this many valid tasks; the draws are i.i.d., so the first k valid
        pairs in draw order are a uniform sample of k of the layout's valid tasks.
        """
        min_plan = self.size if min_plan is None else min_plan
        m = len(self.free)
        if m < 2:
            return []
        first = rng.integers(m, size=attempts)
        second = rng.integers(m - 1, size=attempts)
        second += second >= first  # two distinct cells, uniformly
        kept_draw = rng.random(attempts) < keep_fraction if keep_fraction < 1 else [True] * attempts
        seen, kept = set(), []
        for start, goal, keep in zip(self.free[first].tolist(), self.free[second].tolist(), kept_draw):
            if (start, goal) in seen:
                continue
            seen.add((start, goal))
            if not keep:
                continue
            result = self.solve(start, goal, search_rng, ties)
            if result.plan is not None and len(result.plan) >= min_plan:
                kept.append(Example(Maze(self.size, self.walls, start, goal), result, split))
                if max_tasks is not None and len(kept) == max_tasks:
                    break
        return kept


def sample_walls(size: int, rng: np.random.Generator,
                 density: tuple[float, float] = DENSITY) -> tuple[int, ...]:
    cells = size * size
    low, high = int(np.ceil(density[0] * cells)), int(np.floor(density[1] * cells))
    count = int(rng.integers(low, high + 1))
    return tuple(sorted(rng.choice(cells, size=count, replace=False).tolist()))


def solve(maze: Maze, rng: random.Random | None = None) -> SearchResult:
    """A* on one maze: deterministic without `rng`, nondeterministic with it.

    An unsolvable maze gives plan None; when start and goal lie in different connected components
    the search is not run at all, so its events are empty.
    """
    return Grid(maze.size, maze.walls).solve(maze.start, maze.goal, rng)


def generate(size: int, n: int, rng: np.random.Generator, split: str | None = None,
             test_fraction: float = 0.1, attempts: int = ATTEMPTS_PER_LAYOUT,
             deterministic: bool = False, tasks_per_layout: int | None = None,
             keep_fraction: float = 1.0, ties: str = "uniform") -> Iterator[Example]:
    """Yield `n` solved mazes; with `split`, only layouts that `split_of` puts in that split.

    Layouts of the other split are skipped before any search, so asking for one split costs
    little more than sampling the walls of the layouts it passes over. A layout yields its valid
    tasks in a row (upstream keeps every one, 15-25 at 30x30); `tasks_per_layout` caps that with a
    uniform sample (1: every task on its own layout, for test sets), and `keep_fraction` keeps each
    valid task with that probability, which is how upstream's training sets look: the first 100k
    of 1M tasks ordered by a hash id, about 10% of each layout's tasks. `ties`: tasks.dualformer_paper.astar's
    tie-breaking of the nondeterministic search ("upstream" for traces as upstream's).
    """
    if size < 2:
        raise ConfigError(f"maze size must be >= 2, got {size}")
    if split is not None and split not in ("train", "test"):
        raise ConfigError(f"split must be train or test, got {split!r}")
    if not 0 < keep_fraction <= 1 or (tasks_per_layout is not None and tasks_per_layout < 1):
        raise ConfigError(f"need 0 < keep_fraction <= 1 and tasks_per_layout >= 1, "
                          f"got {keep_fraction}, {tasks_per_layout}")
    search_rng = None if deterministic else python_rng(rng)
    produced = 0
    while produced < n:
        walls = sample_walls(size, rng)
        layout_split = split_of(layout_id(size, walls), test_fraction)
        if split is not None and layout_split != split:
            continue
        grid = Grid(size, walls)
        for example in grid.tasks(rng, search_rng, layout_split, attempts,
                                  keep_fraction=keep_fraction, max_tasks=tasks_per_layout, ties=ties):
            yield example
            produced += 1
            if produced == n:
                return


def plan_problems(maze: Maze, plan: Sequence[int]) -> list[str]:
    """Why `plan` is not a path from start to goal through free cells by unit moves ([] if it is)."""
    problems = []
    if not plan or plan[0] != maze.start or plan[-1] != maze.goal:
        problems.append("the plan does not run from start to goal")
    walls = set(maze.walls)
    for a, b in zip(plan, plan[1:]):
        (ax, ay), (bx, by) = maze.xy(a), maze.xy(b)
        if abs(ax - bx) + abs(ay - by) != 1:
            problems.append(f"{maze.xy(a)} -> {maze.xy(b)} is not a unit move")
    problems += [f"{maze.xy(c)} is a wall or off the grid" for c in plan
                 if c in walls or not 0 <= c < maze.size**2]
    return problems

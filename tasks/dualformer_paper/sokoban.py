"""Sokoban tasks of Searchformer / Dualformer: 7x7 levels, 2 walls, 2 boxes, 2 docks, A* traces.

    import random
    import numpy as np
    from tasks.dualformer_paper.sokoban import Board, generate, replay, sample_level, solve
    for example in generate(n=100, rng=np.random.default_rng(0), split="train"):
        example.task, example.plan, example.events    # SokobanLevel, encoded states, A* events
    level = sample_level(np.random.default_rng(1))
    result = solve(level, rng=random.Random(0), max_trace_tokens=10_000)
    replay(level, Board(level).worker_path(result.plan))   # (worker, boxes) after the moves

Datasets on disk: `python scripts/gen_data.py sokoban ...` (see that script).

Facts of the setup (specs/dualformer.md section 1.4): a border of walls, `n_walls` interior walls,
boxes only in the central block (>= 2 cells from the border), then the worker and the docks on
free cells; standard push rules (one box at a time, never into a wall or a box); solved when every
box is on a dock. Heuristic: for each box off a dock, the Manhattan distance to the nearest *open*
dock (one without a box), summed; a state with a box off a dock that has a wall on its left or
right *and* above or below (a corner) is never generated. Always the nondeterministic A* for data;
a level is kept when A* solves it with a trace shorter than `max_trace_tokens` (upstream: 10,000).
The open-dock heuristic is admissible (a box bound for an occupied dock displaces a chain of
boxes that ends at an open dock, and by the triangle inequality that chain costs at least the
box's distance to that open dock), so plans are optimal: they matched a breadth-first search on
all 1,413 solvable levels of a check (tests/tasks/dualformer_paper/test_sokoban.py repeats it on a smaller set).
It is not consistent: pushing a box off a dock opens that dock and can lower h by more than one,
so f may drop along the closes and a closed state may be re-created (the A* allows for it).

Cells are x + y*size with y growing downwards (row 0 is the top border), so "up" is y-1 as in
the upstream game. A search state is one int: worker + size^2 * (boxes in base size^2, sorted).
The deadlock cells, the box decodings and the heuristic per box placement are computed once per
level and cached, so a child costs a few list lookups instead of a copy of the board.
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

SIZE, N_WALLS, N_BOXES = 7, 2, 2
MAX_TRACE_TOKENS = 10_000


@dataclass(frozen=True)
class SokobanLevel:
    """A start position: walls (border included), boxes, docks and the worker, as sorted cells."""

    size: int
    walls: tuple[int, ...]
    boxes: tuple[int, ...]
    docks: tuple[int, ...]
    worker: int

    def xy(self, cell: int) -> tuple[int, int]:
        return cell % self.size, cell // self.size

    @functools.cached_property
    def id(self) -> str:
        parts = (f"sokoban {self.size} worker {self.worker}", "boxes", *map(str, self.boxes),
                 "docks", *map(str, self.docks), "walls", *map(str, self.walls))
        return content_id(" ".join(parts))

    @property
    def layout_id(self) -> str:
        """Each level is its own layout: train and test never share a level."""
        return self.id

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "walls": list(self.walls), "boxes": list(self.boxes),
                "docks": list(self.docks), "worker": self.worker}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SokobanLevel":
        return cls(int(data["size"]), tuple(data["walls"]), tuple(data["boxes"]),
                   tuple(data["docks"]), int(data["worker"]))

    def render(self, worker: int | None = None, boxes: Sequence[int] | None = None) -> str:
        """The usual text form: '#' wall, '.' dock, '$' box, '*' box on dock, '@' / '+' worker."""
        worker = self.worker if worker is None else worker
        boxes = set(self.boxes if boxes is None else boxes)
        walls, docks = set(self.walls), set(self.docks)
        def cell(c: int) -> str:
            if c in walls:
                return "#"
            if c in boxes:
                return "*" if c in docks else "$"
            if c == worker:
                return "+" if c in docks else "@"
            return "." if c in docks else " "
        return "\n".join("".join(cell(x + y * self.size) for x in range(self.size)) for y in range(self.size))


class Board:
    """One level prepared for search: walls, deadlock cells, state coding, cached heuristic."""

    def __init__(self, level: SokobanLevel):
        self.level, self.size = level, level.size
        self.cells = cells = level.size * level.size
        self.wall = [False] * cells
        for c in level.walls:
            self.wall[c] = True
        self.docks = frozenset(level.docks)
        self.dead = [self._is_corner(c) and c not in self.docks for c in range(cells)]
        # deterministic child order of the upstream game: up (y-1), down, left, right
        self.moves = (-level.size, level.size, -1, 1)
        self._decoded: dict[int, tuple[int, ...]] = {}
        self._h: dict[int, int | None] = {}
        self.goal_key = self.key(tuple(sorted(level.docks)))
        self.start = self.encode(level.worker, level.boxes)

    def _is_corner(self, c: int) -> bool:
        x, y = c % self.size, c // self.size
        if not (0 < x < self.size - 1 and 0 < y < self.size - 1):
            return True
        horizontal = self.wall[c - 1] or self.wall[c + 1]
        return horizontal and (self.wall[c - self.size] or self.wall[c + self.size])

    def key(self, boxes: Sequence[int]) -> int:
        value = 0
        for b in reversed(boxes):
            value = value * self.cells + b
        return value

    def encode(self, worker: int, boxes: Sequence[int]) -> int:
        return worker + self.cells * self.key(sorted(boxes))

    def boxes(self, key: int) -> tuple[int, ...]:
        boxes = self._decoded.get(key)
        if boxes is None:
            out, rest = [], key
            for _ in self.level.boxes:
                rest, b = divmod(rest, self.cells)
                out.append(b)
            boxes = self._decoded[key] = tuple(out)
        return boxes

    def decode(self, state: int) -> tuple[int, tuple[int, ...]]:
        """(worker, sorted boxes) of a search state."""
        return state % self.cells, self.boxes(state // self.cells)

    def undocked(self, state: int) -> tuple[int, ...]:
        return tuple(b for b in self.boxes(state // self.cells) if b not in self.docks)

    def expand(self, state: int) -> list[int]:
        cells, wall = self.cells, self.wall
        worker, key = state % cells, state // cells
        boxes = self.boxes(key)
        children = []
        for move in self.moves:
            to = worker + move
            if wall[to]:
                continue
            if to in boxes:
                beyond = to + move
                if wall[beyond] or beyond in boxes or self.dead[beyond]:
                    continue
                children.append(to + cells * self.key(sorted(beyond if b == to else b for b in boxes)))
            else:
                children.append(to + cells * key)
        return children

    def heuristic(self, state: int) -> int | None:
        key = state // self.cells
        if key not in self._h:
            boxes = self.boxes(key)
            undocked = [b for b in boxes if b not in self.docks]
            open_docks = [d for d in self.docks if d not in boxes]
            if any(self.dead[b] for b in undocked):
                self._h[key] = None
            elif not undocked or not open_docks:
                self._h[key] = 0
            else:
                s = self.size
                self._h[key] = sum(min(abs(b % s - d % s) + abs(b // s - d // s) for d in open_docks)
                                   for b in undocked)
        return self._h[key]

    def is_goal(self, state: int) -> bool:
        return state // self.cells == self.goal_key

    def event_tokens(self, state: int) -> int:
        """Tokens of one trace clause: create|close, worker x y, box x y per undocked box, c<g> c<h>."""
        return 6 + 3 * len(self.undocked(state))

    def solve(self, rng: random.Random | None = None, max_trace_tokens: int | None = None,
              ties: str = "uniform") -> SearchResult:
        budget = None if max_trace_tokens is None else max_trace_tokens - 1  # keep traces < the cap
        return astar(self.start, self.is_goal, self.expand, self.heuristic, rng, budget,
                     self.event_tokens if budget is not None else None, ties if rng is not None else "uniform")

    def worker_path(self, plan: Sequence[int]) -> list[int]:
        return [state % self.cells for state in plan]


def sample_level(rng: np.random.Generator, size: int = SIZE, n_walls: int = N_WALLS,
                 n_boxes: int = N_BOXES) -> SokobanLevel:
    """Border walls, interior walls, boxes in the central block, the worker, then the docks."""
    cells = [(x, y) for y in range(size) for x in range(size)]
    border = [x + y * size for x, y in cells if x in (0, size - 1) or y in (0, size - 1)]
    interior = [x + y * size for x, y in cells if 0 < x < size - 1 and 0 < y < size - 1]
    walls = rng.choice(interior, n_walls, replace=False).tolist()
    central = [c for c in interior
               if 2 <= c % size < size - 2 and 2 <= c // size < size - 2 and c not in walls]
    if len(central) < n_boxes:
        raise ConfigError(f"a {size}x{size} level has room for {len(central)} boxes, not {n_boxes}")
    boxes = rng.choice(central, n_boxes, replace=False).tolist()
    free = [c for c in interior if c not in walls and c not in boxes]
    worker = int(rng.choice(free))
    docks = rng.choice([c for c in free if c != worker], n_boxes, replace=False).tolist()
    return SokobanLevel(size, tuple(sorted(border + walls)), tuple(sorted(boxes)),
                        tuple(sorted(docks)), worker)


def solve(level: SokobanLevel, rng: random.Random | None = None,
          max_trace_tokens: int | None = None, ties: str = "uniform") -> SearchResult:
    """A* on one level (nondeterministic with `rng`); gives up once the trace reaches the cap."""
    return Board(level).solve(rng, max_trace_tokens, ties)


def generate(n: int, rng: np.random.Generator, split: str | None = None, test_fraction: float = 0.1,
             max_trace_tokens: int | None = MAX_TRACE_TOKENS, size: int = SIZE, n_walls: int = N_WALLS,
             n_boxes: int = N_BOXES, ties: str = "uniform") -> Iterator[Example]:
    """Yield `n` distinct levels that A* solves within the trace cap (None: no cap).

    ties: tasks.dualformer_paper.astar's tie-breaking ("upstream" for traces as upstream's).

    With `split`, levels that `split_of` puts in the other split are skipped before any search.
    """
    if split is not None and split not in ("train", "test"):
        raise ConfigError(f"split must be train or test, got {split!r}")
    if size < 5 or n_walls < 0 or n_boxes < 1:
        raise ConfigError(f"need size >= 5, n_walls >= 0, n_boxes >= 1; got {size}, {n_walls}, {n_boxes}")
    search_rng = python_rng(rng)
    seen: set[str] = set()
    produced = 0
    while produced < n:
        level = sample_level(rng, size, n_walls, n_boxes)
        level_split = split_of(level.id, test_fraction)
        if (split is not None and level_split != split) or level.id in seen:
            continue
        seen.add(level.id)
        result = solve(level, search_rng, max_trace_tokens, ties)
        if result.plan is not None:
            yield Example(level, result, level_split)
            produced += 1


def replay(level: SokobanLevel, positions: Sequence[int]) -> tuple[int, tuple[int, ...]] | None:
    """Walk the worker through `positions` (the first is the start) with the push rules.

    Returns the final (worker, sorted boxes), or None when a step is not a unit move, walks into a
    wall, or pushes a box into a wall or another box.
    """
    if not positions or positions[0] != level.worker:
        return None
    walls, boxes, size = set(level.walls), set(level.boxes), level.size
    for a, b in zip(positions, positions[1:]):
        if b - a not in (1, -1, size, -size) or abs(a % size - b % size) > 1 or b in walls:
            return None
        if b in boxes:
            beyond = 2 * b - a
            if beyond in walls or beyond in boxes:
                return None
            boxes.remove(b)
            boxes.add(beyond)
    return positions[-1], tuple(sorted(boxes))


def is_solution(level: SokobanLevel, positions: Sequence[int]) -> bool:
    """Every step legal (see `replay`) and every box on a dock at the end.

    Stricter than upstream's judge, kept on purpose: upstream turns each pair of plan positions
    into a move and plays it on its game, where a move into a wall (or a blocked push) is silently
    a no-op, so a plan that walks into walls still counts as correct there (not as optimal: it is
    longer). Here such a plan is not a solution, so our 1-Solved can be lower on the same answers.
    """
    end = replay(level, positions)
    return end is not None and set(end[1]) == set(level.docks)

"""Benchmark of the planning-data generators against a straightforward reference, in one run.

    python scripts/bench_data.py                      # 20 tasks per generator, seed 0
    python scripts/bench_data.py --n-tasks 50 --seed 1 --json bench_data.json

    from scripts.bench_data import bench_data         # or load it by path, as scripts/bench.py does
    figures = bench_data(n_tasks=20, seed=0)          # {name: float}

Measures the seconds per kept task of `tasks.dualformer_paper.maze.generate` (30x30) and of
`tasks.dualformer_paper.sokoban.generate` (7x7, 2 walls, 2 boxes; per solvable level without a
trace cap, as upstream's 1.2 s was measured, and per usable level with the 10,000-token cap), and
the same for the reference below, in one process; ours on max(n_tasks, 500) tasks (it is cheap,
and many layouts steady the figure), the reference on n_tasks.
Targets: <= 5 ms per 30x30 maze task (upstream logic: 0.1-0.2 s) and <= 0.1 s per solvable Sokoban
level (upstream: about 1.2 s). It also checks that the reference A* finds plans of the same length
on the tasks ours generated (`*_plans_agree` = 1.0).

The REFERENCE implementation here follows the upstream generators' logic the plain way: walls as a
list of (x, y) scanned for every neighbour, search nodes as objects in a heapq with a coin flip on
equal f, a cheaper duplicate removed from the heap by list removal, a Sokoban board as a list of
rows deep-copied for every child and scanned for boxes and docks. It exists only to be timed and
to cross-check plan lengths; nothing else uses it.
"""
from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from heapq import heapify, heappop, heappush
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dualformer.data import tokenize  # noqa: E402
from tasks.dualformer_paper import maze, sokoban  # noqa: E402


class _RefNode:
    """A search node of the reference A*: any hashable state, g, h, parent."""

    def __init__(self, state, g: int, h: float, parent: "_RefNode | None", rng: random.Random):
        self.state, self.g, self.h, self.parent, self.rng = state, g, h, parent, rng

    def __lt__(self, other: "_RefNode") -> bool:
        if self.g + self.h == other.g + other.h:
            return self.rng.random() < 0.5
        return self.g + self.h < other.g + other.h


def reference_astar(start, is_goal: Callable, children: Callable, heuristic: Callable,
                    rng: random.Random) -> tuple[list | None, list[dict]]:
    """REFERENCE A*: open / closed dicts of node objects; returns (plan states, event dicts)."""
    root = _RefNode(start, 0, heuristic(start), None, rng)
    heap, open_nodes, closed, log = [root], {start: root}, {}, []
    log.append({"action": "create", "state": start, "g": 0, "h": root.h})
    while heap:
        node = heappop(heap)
        del open_nodes[node.state]
        closed[node.state] = node
        log.append({"action": "close", "state": node.state, "g": node.g, "h": node.h})
        if node.h == float("inf"):
            return None, log
        if is_goal(node.state):
            plan = []
            while node is not None:
                plan.insert(0, node.state)
                node = node.parent
            return plan, log
        kids = list(children(node.state))
        rng.shuffle(kids)
        for state in kids:
            h = heuristic(state)
            if h == float("inf"):
                continue
            child = _RefNode(state, node.g + 1, h, node, rng)
            if state in open_nodes:
                if open_nodes[state].g <= child.g:
                    continue
                heap.remove(open_nodes.pop(state))
                heapify(heap)
            if state in closed and closed[state].g <= child.g:
                continue
            heappush(heap, child)
            open_nodes[state] = child
            log.append({"action": "create", "state": state, "g": child.g, "h": h})
    return None, log


def reference_maze_plan(size: int, walls: list[tuple[int, int]], start, goal, rng: random.Random):
    def free(p) -> bool:
        return 0 <= p[0] < size and 0 <= p[1] < size and not any(p == w for w in walls)  # the list scan

    def children(p):
        x, y = p
        return [q for q in ((x, y + 1), (x, y - 1), (x - 1, y), (x + 1, y)) if free(q)]

    return reference_astar(start, goal.__eq__, children,
                           lambda p: abs(p[0] - goal[0]) + abs(p[1] - goal[1]), rng)[0]


def reference_maze_tasks(size: int, n: int, rng: random.Random) -> list[tuple]:
    """REFERENCE maze generator: one layout at a time, 100 start/goal draws, keep plans >= size cells."""
    tasks: list[tuple] = []
    while len(tasks) < n:
        cells = list(range(size * size))
        rng.shuffle(cells)
        count = rng.randint(size * size // 10 * 3, size * size // 10 * 5)
        walls = [(c % size, c // size) for c in sorted(cells[:count])]
        rest, seen = cells[count:], set()
        for _ in range(maze.ATTEMPTS_PER_LAYOUT):
            rng.shuffle(rest)
            start, goal = (rest[0] % size, rest[0] // size), (rest[1] % size, rest[1] // size)
            plan = reference_maze_plan(size, walls, start, goal, rng)
            if plan is not None and len(plan) >= size and (start, goal) not in seen:
                seen.add((start, goal))
                tasks.append((walls, start, goal, plan))
    return tasks[:n]


class ReferenceSokoban:
    """REFERENCE Sokoban board: rows of characters, copied for every move."""

    def __init__(self, rows: list[list[str]]):
        self.rows = rows

    def find(self, chars: str) -> list[tuple[int, int]]:
        return [(x, y) for y, row in enumerate(self.rows) for x, c in enumerate(row) if c in chars]

    def key(self) -> str:
        return "-".join("".join(row) for row in self.rows)

    def moved(self, dx: int, dy: int) -> "ReferenceSokoban | None":
        board = copy.deepcopy(self)
        (x, y), rows = board.find("@+")[0], board.rows
        tx, ty = x + dx, y + dy
        if rows[ty][tx] in "$*":
            bx, by = tx + dx, ty + dy
            if rows[by][bx] not in " .":
                return None
            rows[by][bx] = "*" if rows[by][bx] == "." else "$"
            rows[ty][tx] = "." if rows[ty][tx] == "*" else " "
        if rows[ty][tx] not in " .":
            return None
        rows[ty][tx] = "+" if rows[ty][tx] == "." else "@"
        rows[y][x] = "." if rows[y][x] == "+" else " "
        return board

    def heuristic(self) -> float:
        boxes, docks = self.find("$"), self.find(".+")
        for x, y in boxes:
            stuck_x = self.rows[y][x - 1] == "#" or self.rows[y][x + 1] == "#"
            stuck_y = self.rows[y - 1][x] == "#" or self.rows[y + 1][x] == "#"
            if stuck_x and stuck_y:
                return float("inf")
        return sum(min(abs(bx - dx) + abs(by - dy) for dx, dy in docks) for bx, by in boxes) if docks else 0


def reference_sokoban_plan(level: sokoban.SokobanLevel, rng: random.Random):
    rows = [list(line) for line in level.render().splitlines()]
    boards: dict[str, ReferenceSokoban] = {}

    def children(key: str):
        out = []
        for dx, dy in ((0, -1), (0, 1), (-1, 0), (1, 0)):
            child = boards[key].moved(dx, dy)
            if child is not None:
                boards.setdefault(child.key(), child)
                out.append(child.key())
        return out

    start = ReferenceSokoban(rows)
    boards[start.key()] = start
    return reference_astar(start.key(), lambda k: "$" not in k, children,
                           lambda k: boards[k].heuristic(), rng)[0]


def reference_sokoban_levels(n: int, rng: np.random.Generator, py: random.Random) -> int:
    """REFERENCE Sokoban generator: sample levels until n are solved; returns the levels tried."""
    solved = tried = 0
    while solved < n:
        tried += 1
        solved += reference_sokoban_plan(sokoban.sample_level(rng), py) is not None
    return tried


OURS_AT_LEAST = 500  # ours is cheap: time it on enough tasks (many layouts) for a stable figure


def _seconds_per(n: int, run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / n


def bench_data(n_tasks: int, seed: int, *, ours_at_least: int = OURS_AT_LEAST) -> dict[str, float]:
    """Seconds per kept task, ours and reference, in this process; ratios; plan-length agreement."""
    ours = max(n_tasks, ours_at_least)
    out: dict[str, float] = {"n_tasks_reference": n_tasks, "n_tasks_ours": ours, "seed": seed}
    mazes: list = []
    out["maze30_ours_s"] = _seconds_per(
        ours, lambda: mazes.extend(maze.generate(30, ours, np.random.default_rng(seed))))
    out["maze30_ours_tokenized_s"] = out["maze30_ours_s"] + _seconds_per(
        ours, lambda: [tokenize(e) for e in mazes])
    out["maze30_reference_s"] = _seconds_per(
        n_tasks, lambda: reference_maze_tasks(30, n_tasks, random.Random(seed)))
    out["maze30_speedup"] = out["maze30_reference_s"] / out["maze30_ours_s"]
    py = random.Random(seed)
    agree = [len(reference_maze_plan(30, [(w % 30, w // 30) for w in e.task.walls], e.task.xy(e.task.start),
                                     e.task.xy(e.task.goal), py)) == len(e.plan) for e in mazes[:n_tasks]]
    out["maze30_plans_agree"] = float(np.mean(agree))
    levels: list = []
    out["sokoban_ours_s"] = _seconds_per(ours, lambda: levels.extend(
        sokoban.generate(ours, np.random.default_rng(seed), max_trace_tokens=None)))
    out["sokoban_ours_capped_s"] = _seconds_per(
        ours, lambda: list(sokoban.generate(ours, np.random.default_rng(seed))))
    out["sokoban_reference_s"] = _seconds_per(n_tasks, lambda: reference_sokoban_levels(
        n_tasks, np.random.default_rng(seed), random.Random(seed)))
    out["sokoban_speedup"] = out["sokoban_reference_s"] / out["sokoban_ours_s"]
    out["sokoban_plans_agree"] = float(np.mean(
        [len(reference_sokoban_plan(e.task, py)) == len(e.plan) for e in levels[:n_tasks]]))
    out["meets_maze_target_5ms"] = float(out["maze30_ours_s"] <= 5e-3)
    out["meets_sokoban_target_0.1s"] = float(out["sokoban_ours_s"] <= 0.1)
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-tasks", type=int, default=20, help="kept tasks per reference generator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.n_tasks < 1:
        parser.error(f"--n-tasks must be >= 1, got {args.n_tasks}")
    result = bench_data(args.n_tasks, args.seed)
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value:.4g}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

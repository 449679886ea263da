"""Tests of the maze generator: valid shortest plans, consistent traces, golden A* traces, the split.

    .venv/bin/python -m pytest tests/tasks/dualformer_paper/test_maze.py -q
    REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/tasks/dualformer_paper/test_maze.py -q   # rewrite the goldens

The checks here do not use the module's own helpers: BFS and the trace rules are written again.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter, deque

import numpy as np
import pytest

from harness.api import ConfigError
from support import DATA, ROOT
from tasks.dualformer_paper.astar import CLOSE, CREATE
from tasks.dualformer_paper.maze import Grid, Maze, generate, plan_problems, sample_walls, solve
from tasks.dualformer_paper.planning import Example, split_of

GOLDEN = DATA / "planning" / "maze_golden.json"


def bfs_length(maze: Maze) -> int | None:
    """Cells on a shortest path (start and goal included), by breadth-first search."""
    n, walls = maze.size, set(maze.walls)
    dist = {maze.start: 1}
    queue = deque([maze.start])
    while queue:
        c = queue.popleft()
        if c == maze.goal:
            return dist[c]
        x, y = c % n, c // n
        for a, b in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            d = a + b * n
            if 0 <= a < n and 0 <= b < n and d not in walls and d not in dist:
                dist[d] = dist[c] + 1
                queue.append(d)
    return None


def check_trace(maze: Maze, events, plan) -> None:
    """Closed nodes were created first with the same costs; costs are true; the plan was created."""
    n = maze.size
    created: dict[int, tuple[int, int]] = {}
    for kind, cell, g, h in events:
        x, y, gx, gy = cell % n, cell // n, maze.goal % n, maze.goal // n
        assert h == abs(x - gx) + abs(y - gy)
        assert cell not in maze.walls
        if kind == CREATE:
            created[cell] = (g, h)
        else:
            assert kind == CLOSE and created.get(cell) == (g, h), (cell, g, h)
    assert events[0] == (CREATE, maze.start, 0, created[maze.start][1])
    assert events[-1][:2] == (CLOSE, maze.goal) and events[-1][2] == len(plan) - 1
    assert [created[c][0] for c in plan] == list(range(len(plan)))


def fixture_set() -> list[Example]:
    examples = []
    for size in (10, 15, 20, 25, 30):
        rng = np.random.default_rng(size)
        examples += list(generate(size, 25, rng))
        examples += list(generate(size, 10, rng, deterministic=True))
    return examples


def test_every_plan_is_a_shortest_valid_path_and_every_trace_is_consistent():
    examples = fixture_set()
    assert len(examples) == 175
    for example in examples:
        maze = example.task
        assert plan_problems(maze, example.plan) == []
        assert len(example.plan) == bfs_length(maze) >= maze.size
        check_trace(maze, example.events, example.plan)


def test_the_hand_checked_maze():
    maze = Maze(5, (6, 7, 8), start=0, goal=24)  # a wall at (1..3, 1)
    result = solve(maze)
    # start created and closed; its children up (0,1)=5 then right (1,0)=1; the f=8 tie goes to 1
    assert result.events[:7] == ((CREATE, 0, 0, 8), (CLOSE, 0, 0, 8), (CREATE, 5, 1, 7), (CREATE, 1, 1, 7),
                                 (CLOSE, 1, 1, 7), (CREATE, 2, 2, 6), (CLOSE, 2, 2, 6))
    assert result.plan == (0, 1, 2, 3, 4, 9, 14, 19, 24)
    assert maze.render(result.plan).splitlines() == ["....G", "....*", "....*", ".###*", "S****"]


def golden_cases() -> list[Maze]:
    rng = np.random.default_rng(7)
    cases = [Maze(5, (6, 7, 8), 0, 24), Maze(6, (), 0, 35),
             Maze(7, tuple(sorted({8, 9, 10, 11, 12, 15, 22, 29, 36, 37, 38, 39, 40})), 23, 6),  # a cup
             Maze(5, (1, 5, 6), 0, 24)]  # the start walled in: unsolvable
    for _ in range(2):
        grid = Grid(10, sample_walls(10, rng))
        cases.append(grid.tasks(rng, None, "train", attempts=100)[0].task)
    return cases


def golden_record(maze: Maze) -> dict:
    from dualformer.data import tokenize_maze

    result = solve(maze)
    record = {"maze": maze.to_dict(), "id": maze.id, "layout": maze.layout_id,
              "plan": None if result.plan is None else list(result.plan),
              "events": [list(e) for e in result.events]}
    if result.plan is not None:
        seq = tokenize_maze(maze, result.plan, result.events)
        record["encoder"] = " ".join(seq.encoder_tokens())
        record["decoder"] = " ".join(seq.decoder_tokens())
    return record


def test_golden_traces_of_small_fixed_mazes():
    records = [golden_record(m) for m in golden_cases()]
    if os.environ.get("REGENERATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(records, indent=1) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert len(golden) == len(records)
    for want, got in zip(golden, records):
        maze = Maze.from_dict(want["maze"])
        result = solve(maze)  # the stored maze, searched now, gives the stored trace
        assert [list(e) for e in result.events] == want["events"], want["id"]
        assert (None if result.plan is None else list(result.plan)) == want["plan"]
        assert got == want
    assert golden[3]["plan"] is None and golden[3]["events"] == []  # start and goal in different components


def test_generator_keeps_density_minimum_length_and_layout_limits():
    examples = list(generate(20, 400, np.random.default_rng(1)))
    per_layout = Counter(e.task.layout_id for e in examples)
    assert len(per_layout) > 5
    for example in examples:
        maze = example.task
        assert 0.3 * 400 <= len(maze.walls) <= 0.5 * 400
        assert len(set(maze.walls)) == len(maze.walls) and maze.start != maze.goal
        assert maze.start not in maze.walls and maze.goal not in maze.walls
        assert len(example.plan) >= 20
    assert max(per_layout.values()) <= 100
    assert len({(e.task.layout_id, e.task.start, e.task.goal) for e in examples}) == len(examples)


def test_split_is_by_layout():
    examples = list(generate(10, 1500, np.random.default_rng(2)))
    by_layout: dict[str, set[str]] = {}
    for example in examples:
        by_layout.setdefault(example.task.layout_id, set()).add(example.split)
        assert example.split == split_of(example.task.layout_id, 0.1)
    assert all(len(splits) == 1 for splits in by_layout.values())
    test_share = np.mean([s == {"test"} for s in by_layout.values()])
    assert 0.03 < test_share < 0.2
    only_test = list(generate(10, 100, np.random.default_rng(3), split="test"))
    assert {e.split for e in only_test} == {"test"}
    train_layouts = {e.task.layout_id for e in examples if e.split == "train"}
    assert not {e.task.layout_id for e in only_test} & train_layouts


def test_generation_is_reproducible_and_seeded_only_by_its_rng():
    first = [e.to_record() for e in generate(15, 30, np.random.default_rng(4))]
    random.seed(1)
    np.random.seed(1)
    again = [e.to_record() for e in generate(15, 30, np.random.default_rng(4))]
    assert first == again
    other = [e.to_record() for e in generate(15, 30, np.random.default_rng(5))]
    assert first != other


def test_ids_are_stable_across_processes():
    maze = Maze(5, (6, 7, 8), 0, 24)
    code = "from tasks.dualformer_paper.maze import Maze; m = Maze(5, (6, 7, 8), 0, 24); print(m.id, m.layout_id)"
    for hash_seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert out.stdout.split() == [maze.id, maze.layout_id]
    assert maze.id != Maze(5, (6, 7, 8), 0, 23).id and maze.layout_id == Maze(5, (6, 7, 8), 0, 23).layout_id


def test_records_round_trip():
    for example in generate(10, 20, np.random.default_rng(6)):
        record = json.loads(json.dumps(example.to_record()))
        assert Example.from_record(record, Maze) == example


def test_plan_problems_finds_broken_plans():
    maze = Maze(5, (6, 7, 8), 0, 24)
    assert plan_problems(maze, (0, 1, 2, 3, 4, 9, 14, 19, 24)) == []
    assert plan_problems(maze, (0, 5, 6, 11, 16, 21, 22, 23, 24))  # through the wall at 6
    assert plan_problems(maze, (0, 2, 3, 4, 9, 14, 19, 24))  # a jump
    assert plan_problems(maze, (1, 2, 3, 4, 9, 14, 19, 24))  # not from the start


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="size"):
        next(generate(1, 1, np.random.default_rng(0)))
    with pytest.raises(ConfigError, match="split"):
        next(generate(10, 1, np.random.default_rng(0), split="valid"))


def test_one_task_per_layout_gives_distinct_layouts():
    examples = list(generate(7, 40, np.random.default_rng(8), split="test", tasks_per_layout=1))
    assert len(examples) == 40
    assert len({e.task.layout_id for e in examples}) == 40


def test_keep_fraction_spreads_tasks_over_more_layouts():
    """Upstream trains on a 10% id-ordered subset of 1M tasks: about 2 tasks per layout, not ~15-25."""
    def layouts(**kwargs):
        return len({e.task.layout_id for e in generate(10, 300, np.random.default_rng(9), **kwargs)})
    everything, sparse = layouts(), layouts(keep_fraction=0.1)
    assert sparse > 4 * everything
    with pytest.raises(ConfigError):
        next(generate(10, 1, np.random.default_rng(0), keep_fraction=0.0))

"""Tests of the Sokoban generator: level structure, plans that replay to solved, optimality, the cap.

    .venv/bin/python -m pytest tests/tasks/dualformer_paper/test_sokoban.py -q
    REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/tasks/dualformer_paper/test_sokoban.py -q   # rewrite the golden

Optimality is checked against a breadth-first search over (worker, boxes) written here again,
with no deadlock pruning, so it also shows that the corner pruning never cuts a solution.
"""
from __future__ import annotations

import json
import os
import random
from collections import deque

import numpy as np
import pytest

from harness.api import ConfigError
from support import DATA
from tasks.dualformer_paper.astar import CLOSE, CREATE
from tasks.dualformer_paper.planning import Example
from tasks.dualformer_paper.sokoban import Board, SokobanLevel, generate, is_solution, replay, sample_level, solve

GOLDEN = DATA / "planning" / "sokoban_golden.json"


def level_from_text(text: str) -> SokobanLevel:
    """The usual characters: # wall, $ box, . dock, * box on dock, @ worker, + worker on dock."""
    rows = text.strip("\n").splitlines()
    size = len(rows)
    cells = {x + y * size: ch for y, row in enumerate(rows) for x, ch in enumerate(row)}
    pick = lambda chars: tuple(sorted(c for c, ch in cells.items() if ch in chars))  # noqa: E731
    return SokobanLevel(size, pick("#"), pick("$*"), pick(".*+"), pick("@+")[0])


def bfs_moves(level: SokobanLevel) -> int | None:
    walls, docks, n = set(level.walls), frozenset(level.docks), level.size
    start = (level.worker, frozenset(level.boxes))
    dist = {start: 0}
    queue = deque([start])
    while queue:
        worker, boxes = state = queue.popleft()
        if boxes == docks:
            return dist[state]
        for step in (1, -1, n, -n):
            to = worker + step
            if to in walls:
                continue
            moved = boxes
            if to in boxes:
                if to + step in walls or to + step in boxes:
                    continue
                moved = boxes - {to} | {to + step}
            if (to, moved) not in dist:
                dist[(to, moved)] = dist[state] + 1
                queue.append((to, moved))
    return None


def check_trace(board: Board, events) -> None:
    latest: dict[int, tuple[int, int]] = {}
    assert events[0][:3] == (CREATE, board.start, 0)
    for kind, state, g, h in events:
        assert h == board.heuristic(state) is not None
        if kind == CREATE:
            latest[state] = (g, h)
        else:
            assert kind == CLOSE and latest.get(state) == (g, h)


def test_sampled_levels_have_the_paper_layout():
    rng = np.random.default_rng(0)
    for _ in range(200):
        level = sample_level(rng)
        n = level.size
        border = {x + y * n for x in range(n) for y in range(n) if x in (0, n - 1) or y in (0, n - 1)}
        assert n == 7 and border <= set(level.walls) and len(level.walls) == len(border) + 2
        assert len(level.boxes) == len(level.docks) == 2
        assert all(2 <= b % n <= 4 and 2 <= b // n <= 4 for b in level.boxes)  # the central 3x3
        occupied = [*level.walls, *level.boxes, *level.docks, level.worker]
        assert len(set(occupied)) == len(occupied)


def test_plans_replay_to_solved_are_optimal_and_traces_are_consistent():
    rng, search = np.random.default_rng(1), random.Random(1)
    solved = 0
    for _ in range(60):
        level = sample_level(rng)
        result = solve(level, search)
        optimum = bfs_moves(level)
        assert (result.plan is None) == (optimum is None), level.render()
        if result.plan is None:
            continue
        solved += 1
        board = Board(level)
        assert is_solution(level, board.worker_path(result.plan))
        assert result.cost == optimum
        check_trace(board, result.events)
    assert solved > 40


def test_generated_examples_respect_the_trace_cap():
    examples = list(generate(30, np.random.default_rng(2), max_trace_tokens=2000))
    from dualformer.data import tokenize

    for example in examples:
        board = Board(example.task)
        tokens = sum(board.event_tokens(s) for _, s, _, _ in example.events)
        assert tokens == tokenize(example).trace_length < 2000
        assert is_solution(example.task, board.worker_path(example.plan))
    assert len({e.id for e in examples}) == 30
    big = next(e for e in generate(5, np.random.default_rng(3), max_trace_tokens=None) if len(e.events) > 200)
    capped = solve(big.task, random.Random(0), max_trace_tokens=300)
    assert capped.plan is None and capped.budget_exceeded


def test_boxes_are_never_pushed_into_corners_off_docks():
    level = level_from_text("""
#######
#     #
# $ . #
#  @  #
# .$  #
#     #
#######""")
    board = Board(level)
    assert board.dead[1 + 7] and board.dead[5 + 5 * 7] and not board.dead[3 + 3 * 7]
    result = solve(level)
    for _, state, _, _ in result.events:
        assert not any(board.dead[b] for b in board.undocked(state))
    assert result.cost == bfs_moves(level)
    on_dock_corner = level_from_text("""
#####
#*  #
#@$.#
#   #
#####""")
    assert solve(on_dock_corner).cost == bfs_moves(on_dock_corner) == 1


def test_heuristic_uses_the_nearest_open_dock():
    level = level_from_text("""
#######
#     #
# $   #
#  @  #
#  * .#
#     #
#######""")
    board = Board(level)
    # the box at (2,2) is off a dock; the only open dock is (5,4): distance 3 + 2
    assert board.heuristic(board.start) == 5
    assert board.heuristic(board.encode(level.worker, [3 + 4 * 7, 5 + 4 * 7])) == 0
    assert board.is_goal(board.encode(1 + 7, level.docks))


def test_replay_enforces_the_push_rules():
    level = level_from_text("""
#######
#     #
#  $. #
#  @  #
#  $. #
#     #
#######""")
    w = level.worker
    assert replay(level, [w, w - 7]) == (w - 7, (3 + 1 * 7, 3 + 4 * 7))  # pushes the upper box up
    assert replay(level, [w, w - 7, w - 14]) is None  # the box would go into the wall
    assert replay(level, [w, w + 2]) is None and replay(level, [w + 1]) is None
    assert not is_solution(level, [w])
    assert is_solution(level, [w, w - 1, w - 8, w - 7, w, w - 1, w + 6, w + 7])


def golden_levels() -> list[SokobanLevel]:
    rng = np.random.default_rng(11)
    sampled = [sample_level(rng) for _ in range(20)]
    sampled = [lv for lv in sampled if solve(lv).solved and len(solve(lv).events) < 200]  # a small file
    return [level_from_text("""
#######
#     #
# $ . #
#  @  #
# .$  #
#     #
#######""")] + sampled[:2]


def test_golden_deterministic_traces():
    records = []
    for level in golden_levels():
        result = solve(level)
        records.append({"level": level.to_dict(), "id": level.id, "plan": list(result.plan),
                        "events": [list(e) for e in result.events]})
    if os.environ.get("REGENERATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(records, indent=1) + "\n")
    golden = json.loads(GOLDEN.read_text())
    for want in golden:
        level = SokobanLevel.from_dict(want["level"])
        result = solve(level)
        assert level.id == want["id"]
        assert [list(e) for e in result.events] == want["events"] and list(result.plan) == want["plan"]
    assert records == golden


def test_generation_is_reproducible_and_records_round_trip():
    first = [e.to_record() for e in generate(10, np.random.default_rng(4))]
    assert first == [e.to_record() for e in generate(10, np.random.default_rng(4))]
    for record in first:
        assert Example.from_record(json.loads(json.dumps(record)), SokobanLevel).to_record() == record


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError):
        next(generate(1, np.random.default_rng(0), split="dev"))
    with pytest.raises(ConfigError):
        next(generate(1, np.random.default_rng(0), n_boxes=9))

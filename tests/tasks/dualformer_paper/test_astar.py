"""Tests of the generic A*: tie-breaking, nondeterminism with optimal plans, re-opening, pruning, budget.

    .venv/bin/python -m pytest tests/tasks/dualformer_paper/test_astar.py -q
"""
from __future__ import annotations

import random

import numpy as np

from tasks.dualformer_paper.astar import CLOSE, CREATE, astar, python_rng, trace_problems


def open_grid(n: int):
    """An n x n grid without walls: cells x + y*n, children up, down, left, right."""
    def expand(c: int) -> list[int]:
        x, y = c % n, c // n
        steps = ((x, y + 1), (x, y - 1), (x - 1, y), (x + 1, y))
        return [a + b * n for a, b in steps if 0 <= a < n and 0 <= b < n]
    return expand


def manhattan(n: int, goal: int):
    return lambda c: abs(c % n - goal % n) + abs(c // n - goal // n)


def test_deterministic_ties_close_the_smaller_state_first():
    n, goal = 4, 15
    result = astar(0, goal.__eq__, open_grid(n), manhattan(n, goal))
    closes = [(g + h, s) for kind, s, g, h in result.events if kind == CLOSE]
    assert closes == sorted(closes)  # f first, then the state number: row-major (y, then x)
    assert result.plan == (0, 1, 2, 3, 7, 11, 15)  # along y = 0 first: the smaller cells win ties
    assert result.events[:3] == ((CREATE, 0, 0, 6), (CLOSE, 0, 0, 6), (CREATE, 4, 1, 5))


def test_nondeterministic_plans_stay_optimal_while_traces_and_paths_vary():
    n, goal = 6, 35
    traces, plans = set(), set()
    for seed in range(30):
        result = astar(0, goal.__eq__, open_grid(n), manhattan(n, goal), rng=random.Random(seed))
        assert result.cost == 10
        assert trace_problems(result.events, result.plan, manhattan(n, goal)) == []
        traces.add(result.events)
        plans.add(result.plan)
    assert len(traces) > 20 and len(plans) > 10


def test_randomness_only_from_the_rng_passed_in():
    n, goal = 6, 35
    state = random.getstate()
    first = astar(0, goal.__eq__, open_grid(n), manhattan(n, goal), rng=random.Random(3))
    random.seed(999)
    np.random.seed(999)
    again = astar(0, goal.__eq__, open_grid(n), manhattan(n, goal), rng=random.Random(3))
    assert first == again
    random.setstate(state)
    a = python_rng(np.random.default_rng(5)).random()
    assert a == python_rng(np.random.default_rng(5)).random()


def _runs_of(result, state: int) -> tuple[list[int], list[int]]:
    creates = [g for kind, s, g, _ in result.events if s == state and kind == CREATE]
    return creates, [g for kind, s, g, _ in result.events if s == state and kind == CLOSE]


def test_a_cheaper_route_recreates_an_open_node():
    # 3 is first reached the long way (0-5-6-3, g=3) while 4 waits with f=3; then 0-4-3 (g=2).
    graph = {0: [4, 5], 4: [3], 5: [6], 6: [3], 3: [9], 9: []}
    h = {0: 0, 4: 2, 5: 0, 6: 0, 3: 1, 9: 0}  # consistent
    result = astar(0, (9).__eq__, graph.__getitem__, h.__getitem__)
    assert _runs_of(result, 3) == ([3, 2], [2])  # the stale g=3 entry is never closed
    assert result.plan == (0, 4, 3, 9)
    assert trace_problems(result.events, result.plan, h.__getitem__) == []


def test_a_cheaper_route_reopens_a_closed_node():
    graph = {0: [4, 5], 4: [3], 5: [6], 6: [3], 3: [9], 9: []}
    h = {0: 0, 4: 3, 5: 0, 6: 0, 3: 0, 9: 0}  # inconsistent: 3 is closed before 4's shorter route
    result = astar(0, (9).__eq__, graph.__getitem__, h.__getitem__)
    assert _runs_of(result, 3) == ([3, 2], [3, 2])
    assert result.plan == (0, 4, 3, 9)
    assert trace_problems(result.events, result.plan, consistent=False) == []
    assert any("below the previous" in p for p in trace_problems(result.events, result.plan))


def test_states_with_no_heuristic_are_never_generated():
    n, goal = 3, 8
    banned = {4}
    h = manhattan(n, goal)
    result = astar(0, goal.__eq__, open_grid(n), lambda c: None if c in banned else h(c))
    assert 4 not in {s for _, s, _, _ in result.events}
    assert result.cost == 4 and 4 not in result.plan
    assert astar(0, goal.__eq__, open_grid(n), lambda c: None).plan is None  # the start itself


def test_budget_stops_the_search():
    n, goal = 10, 99
    full = astar(0, goal.__eq__, open_grid(n), lambda c: 0)  # Dijkstra order: a long trace
    capped = astar(0, goal.__eq__, open_grid(n), lambda c: 0, budget=50, event_size=lambda s: 2)
    assert capped.plan is None and capped.budget_exceeded
    assert 2 * len(capped.events) == 52  # stops at the event that crosses the budget
    assert capped.events == full.events[:26]
    enough = astar(0, goal.__eq__, open_grid(n), lambda c: 0, budget=len(full.events))
    assert enough.plan == full.plan and not enough.budget_exceeded


def test_unsolvable_search_closes_everything_reachable():
    graph = {0: [1], 1: [0], 2: []}
    result = astar(0, (2).__eq__, graph.__getitem__, lambda s: 0)
    assert result.plan is None and not result.budget_exceeded
    assert [(k, s) for k, s, _, _ in result.events] == [(CREATE, 0), (CLOSE, 0), (CREATE, 1), (CLOSE, 1)]


def test_trace_problems_catches_corrupted_traces():
    n, goal = 5, 24
    result = astar(0, goal.__eq__, open_grid(n), manhattan(n, goal))
    events = list(result.events)
    assert trace_problems(events, result.plan) == []
    close_at = next(i for i, e in enumerate(events) if e[0] == CLOSE and e[1] != 0)
    wrong_cost = list(events)
    wrong_cost[close_at] = (CLOSE, events[close_at][1], 7, events[close_at][3])
    assert any("close of" in p for p in trace_problems(wrong_cost, result.plan))
    never_created = events + [(CLOSE, 999, 1, 1)]
    assert trace_problems(never_created, None)
    assert any("never created" in p for p in trace_problems(events, (0, 2, 24)))
    assert any("heuristic says" in p for p in trace_problems(events, result.plan, lambda s: 0))


class Coin:
    """A scripted random source: every coin comes up `value`, and shuffles keep the order."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value

    def shuffle(self, items) -> None:
        pass


def test_upstream_ties_flip_a_coin_inside_each_heap_comparison():
    """2x2 open grid, start 0, goal 3; children of 0 are [2, 1] (up, then right), all f = 2.

    Hand-traced with Python's heapq: when every coin says "less", a pushed tie moves above its
    parent, so the newest of equal f is closed first: 1, then 3. When no coin says "less", the
    older node stays on top: 2 is closed, then 1 (its child 3 sits below it in the heap), then 3.
    With uniform tie-breaking and all-zero draws the tie keys are equal and the state decides.
    """
    def events(**kwargs):
        result = astar(0, (3).__eq__, open_grid(2), manhattan(2, 3), **kwargs)
        return [("create" if k == CREATE else "close", s) for k, s, _, _ in result.events]
    C, X = "create", "close"
    assert events(rng=Coin(0.0), ties="upstream") == [(C, 0), (X, 0), (C, 2), (C, 1), (X, 1), (C, 3), (X, 3)]
    assert events(rng=Coin(0.9), ties="upstream") == [(C, 0), (X, 0), (C, 2), (C, 1), (X, 2), (C, 3),
                                                      (X, 1), (X, 3)]
    assert events(rng=Coin(0.0)) == [(C, 0), (X, 0), (C, 2), (C, 1), (X, 1), (C, 3), (X, 2), (X, 3)]


def test_upstream_ties_give_longer_traces_than_uniform_ones_and_the_same_plan_lengths():
    from tasks.dualformer_paper.maze import Grid, sample_walls

    rng = np.random.default_rng(3)
    sums = {"uniform": 0, "upstream": 0}
    for _ in range(40):
        grid = Grid(15, sample_walls(15, rng))
        start, goal = (int(c) for c in rng.choice(grid.free, 2, replace=False))
        lengths = set()
        for ties in sums:
            for seed in range(5):
                result = grid.solve(start, goal, random.Random(seed), ties=ties)
                sums[ties] += len(result.events)
                lengths.add(None if result.plan is None else len(result.plan))
        assert len(lengths) == 1, "both modes find optimal plans"
    assert sums["upstream"] > 1.01 * sums["uniform"]

"""A* search that records its own dynamics: the event list Searchformer / Dualformer learn from.

    import random
    from tasks.dualformer_paper.astar import astar
    result = astar(start, goal.__eq__, neighbours.__getitem__, h.__getitem__)          # deterministic
    result = astar(start, goal.__eq__, neighbours.__getitem__, h.__getitem__,
                   rng=random.Random(seed))                                             # nondeterministic
    result.plan, result.events    # (start, ..., goal) and [(CREATE|CLOSE, state, g, h), ...]

States are non-negative ints chosen by the caller (a maze cell, an encoded Sokoban position),
every move costs 1, and the caller's `heuristic` returns None for a state that must never be
generated (Sokoban deadlocks: upstream gives those an infinite cost and drops them). Events
(facts: specs/dualformer.md section 1.2): `create` when a node enters the open set, the start
first; `close` when it leaves; the search stops right after the goal is closed, and the plan
runs from start to goal.

- Deterministic (rng=None): children in the order `expand` gives them; among equal f the smaller
  state number is closed first (for row-major cells: smaller y, then smaller x, as upstream).
- Nondeterministic (rng given): the children of each node come in a random order and ties in f
  are broken uniformly at random. The node closed always has minimal f, so plans stay optimal
  (for an admissible heuristic) while the path among equal-cost ones and the trace vary.
  Upstream flips a coin inside each heap comparison of equal f instead, which is not uniform;
  on the same 30x30 mazes its traces came out about 4% longer (1,945 vs 1,875 tokens on average).
  `ties="upstream"` does exactly that (the same heapq calls on nodes whose `<` flips a coin, a
  re-created open node removed from the heap, children shuffled), for data like upstream's.

Randomness comes only from the `random.Random` passed in (one draw per tie-break key and one per
expansion); `random.Random` rather than numpy because one numpy call per heap push would cost more
than the whole push. `python_rng(numpy_generator)` derives one from a seeded numpy Generator.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from typing import Callable, Sequence

import numpy as np

CREATE, CLOSE = 0, 1
KIND_NAMES = ("create", "close")
Event = tuple[int, int, int, int]  # (CREATE | CLOSE, state, cost from start g, heuristic h)
TIES = ("uniform", "upstream")

# All orders of up to four children, so a random child order costs one draw instead of a shuffle.
_ORDERS = {k: list(itertools.permutations(range(k))) for k in range(2, 5)}


@dataclass(frozen=True)
class SearchResult:
    """What one A* run did: the plan (None when unsolved) and every create / close event."""

    plan: tuple[int, ...] | None
    events: tuple[Event, ...]
    budget_exceeded: bool = False  # stopped because the trace outgrew `budget`

    @property
    def solved(self) -> bool:
        return self.plan is not None

    @property
    def cost(self) -> int | None:
        """Number of moves of the plan (its node count minus one)."""
        return None if self.plan is None else len(self.plan) - 1


def python_rng(generator: np.random.Generator) -> random.Random:
    """A `random.Random` seeded from a numpy Generator, for the A* hot loop."""
    return random.Random(int(generator.integers(2**63)))


def _plan(parent: dict[int, int], goal: int) -> tuple[int, ...]:
    path = [goal]
    while (goal := parent[goal]) != -1:
        path.append(goal)
    return tuple(reversed(path))


class _CoinNode:
    """An open node compared as upstream's: by f, and by a fresh coin flip when f is equal."""

    __slots__ = ("f", "state", "g", "coin")

    def __init__(self, f: int, state: int, g: int, coin: Callable[[], float]) -> None:
        self.f, self.state, self.g, self.coin = f, state, g, coin

    def __lt__(self, other: "_CoinNode") -> bool:
        return self.coin() < 0.5 if self.f == other.f else self.f < other.f


class _OpenSet:
    """The A* frontier. "uniform" ties: (f, key, state, g) tuples, a stale entry skipped when
    popped. "upstream" ties: _CoinNode objects in the same heapq (so the same comparisons run as
    upstream's), and a node re-created cheaper is removed from the heap and the heap rebuilt."""

    def __init__(self, rnd: Callable[[], float] | None, ties: str) -> None:
        if ties not in TIES:
            raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
        if ties == "upstream" and rnd is None:
            raise ValueError("upstream tie-breaking is random: pass rng")
        self.rnd, self.upstream = rnd, ties == "upstream"
        self.heap: list = []
        self.nodes: dict[int, _CoinNode] = {}

    def push(self, f: int, state: int, g: int) -> None:
        if self.upstream:
            old = self.nodes.pop(state, None)
            if old is not None:
                self.heap.remove(old)
                heapify(self.heap)
            node = self.nodes[state] = _CoinNode(f, state, g, self.rnd)
            heappush(self.heap, node)
        else:
            heappush(self.heap, (f, self.rnd() if self.rnd else state, state, g))

    def pop(self) -> tuple[int, int, int] | None:
        """(f, state, g) of the next node to close, or None when the frontier is empty."""
        if not self.heap:
            return None
        if self.upstream:
            node = heappop(self.heap)
            del self.nodes[node.state]
            return node.f, node.state, node.g
        f, _, state, g = heappop(self.heap)
        return f, state, g


def astar(start: int, is_goal: Callable[[int], bool], expand: Callable[[int], Sequence[int]],
          heuristic: Callable[[int], int | None], rng: random.Random | None = None,
          budget: int | None = None, event_size: Callable[[int], int] | None = None,
          ties: str = "uniform") -> SearchResult:
    """Run A* from `start` with unit step costs and record its create / close events.

    expand(state) -> the legal successor states; heuristic(state) -> h, or None to never generate
    that state. A state already open or closed with a cost <= the new one is skipped; a cheaper
    route re-creates it (a stale heap entry is then ignored when popped, instead of removed).
    budget: give up (plan None, budget_exceeded True) once the summed `event_size` of the events
    (1 each by default) exceeds it; the caller's unit, e.g. trace tokens for Sokoban.
    ties (with rng): "uniform" breaks ties in f uniformly at random (ours); "upstream" flips a
    coin inside every heap comparison of equal f and shuffles the children, as upstream does.
    """
    h0 = heuristic(start)
    if h0 is None:
        return SearchResult(None, ())
    rnd = rng.random if rng is not None else None
    events: list[Event] = [(CREATE, start, 0, h0)]
    best = {start: 0}
    parent = {start: -1}
    frontier = _OpenSet(rnd, ties)
    frontier.push(h0, start, 0)
    used = 0 if budget is None else (event_size(start) if event_size else 1)
    while (node := frontier.pop()) is not None:
        f, state, g = node
        if best[state] != g:  # a cheaper route re-created this state after this entry was pushed
            continue
        events.append((CLOSE, state, g, f - g))
        if budget is not None:
            used += event_size(state) if event_size else 1
            if used > budget:
                return SearchResult(None, tuple(events), True)
        if is_goal(state):
            return SearchResult(_plan(parent, state), tuple(events))
        children = _child_order(expand(state), rng, frontier.upstream)
        g += 1
        for child in children:
            old = best.get(child)
            if old is not None and old <= g:
                continue
            h = heuristic(child)
            if h is None:
                continue
            best[child] = g
            parent[child] = state
            events.append((CREATE, child, g, h))
            if budget is not None:
                used += event_size(child) if event_size else 1
                if used > budget:
                    return SearchResult(None, tuple(events), True)
            frontier.push(g + h, child, g)
    return SearchResult(None, tuple(events))


def _child_order(children: Sequence[int], rng: random.Random | None, shuffle: bool) -> Sequence[int]:
    """The children in a random order (one draw, or upstream's shuffle); as given without rng."""
    if rng is None or len(children) < 2:
        return children
    if shuffle or len(children) > 4:
        children = list(children)
        rng.shuffle(children)
        return children
    orders = _ORDERS[len(children)]
    return [children[i] for i in orders[int(rng.random() * len(orders))]]


def trace_problems(events: Sequence[Event], plan: Sequence[int] | None,
                   heuristic: Callable[[int], int | None] | None = None,
                   consistent: bool = True) -> list[str]:
    """Why `events` could not come from this A* with unit costs ([] when none): an independent check.

    Every close matches the (g, h) of its state's latest create; the first event creates the start
    with g = 0; `heuristic`, when given, agrees with every recorded h; with a `consistent`
    heuristic, f never decreases along the closes; the plan runs from the start to the last
    closed state, and its k-th node was created with g = k.
    """
    problems: list[str] = []
    latest: dict[int, tuple[int, int]] = {}
    created: set[tuple[int, int]] = set()
    last_f = None
    for i, (kind, state, g, h) in enumerate(events):
        if heuristic is not None and heuristic(state) != h:
            problems.append(f"event {i}: h={h} but heuristic says {heuristic(state)}")
        if kind == CREATE:
            latest[state] = (g, h)
            created.add((state, g))
        elif kind == CLOSE:
            if latest.get(state) != (g, h):
                problems.append(f"event {i}: close of {state} with {(g, h)}, "
                                f"created with {latest.get(state)}")
            if consistent and last_f is not None and g + h < last_f:
                problems.append(f"event {i}: f={g + h} below the previous close's f={last_f}")
            last_f = g + h
        else:
            problems.append(f"event {i}: unknown kind {kind}")
    if not events or events[0][0] != CREATE or events[0][2] != 0:
        problems.append("the first event is not the creation of the start with g=0")
    if plan is not None and events:
        if plan[0] != events[0][1] or plan[-1] != events[-1][1] or events[-1][0] != CLOSE:
            problems.append("the plan does not run from the first create to the last close")
        problems += [f"plan node {k} ({s}) was never created with g={k}"
                     for k, s in enumerate(plan) if (s, k) not in created]
    return problems

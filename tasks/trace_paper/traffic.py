"""Signal timing at one four-way intersection on UXsim: the traffic task of Trace (arXiv 2406.16218, Fig. 5b).

    python -m harness.optimize task=traffic optimizer=scats seed=42
    python -m harness.optimize experiment=fig5b_traffic

Two integer parameters, the E-W and N-S green times of a two-phase signal, are scored by
simulating 30 minutes of random any-to-any traffic (lower is better). The demand table and the
simulator are both seeded from `seed`, so a (seed, ew, ns) triple always gives the same score.
Facts of the setup: specs/metaworld_and_traffic.md, section 3.
"""
from __future__ import annotations

import contextlib
import io
import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from harness.api import Bounds, ConfigError, Feedback
from trace_core import ExecutionError, bundle, node

OUTER = ("W1", "E1", "N1", "S1")  # the OD pairs are itertools.permutations of this tuple
COORDS = {"W1": (-1, 0), "E1": (1, 0), "N1": (0, 1), "S1": (0, -1)}
BIN_S = 6  # demand is drawn per 6-s bin, and each bin becomes its own adddemand call
MAX_FLOW = 0.25  # veh/s: upper end of the uniform draw, and the size of the E-W boosts
LINK_M, SPEED, JAM = 500.0, 10.0, 0.2
FREE_TRIP_S = 2 * LINK_M / SPEED  # every OD trip crosses two links: 100 s at free flow
DIRS = ("ew", "ns")
_MISSING = object()


def _pair_losses(trips, travel_times, free_times, missing_tt: float, paper: bool) -> np.ndarray:
    """Time lost per OD pair (seconds, all its vehicles together).

    Per OD pair: lost = sum(tt - free) + (worst + 1 - free) * unfinished, i.e. every unfinished
    vehicle is charged one second more than the slowest finished one. `paper` picks how many are
    unfinished: the paper code subtracts the number of OD pairs that completed any trip (a bug
    it shipped with, and its published numbers depend on it); the corrected form subtracts the
    pair's own completed count. A pair with attempts but no completed trip has no slowest trip
    (the paper code would crash on max of nothing); we charge it as if its slowest trip took
    `missing_tt` (the run's length), so starving a direction completely can never look good.
    """
    tts = [np.asarray(t, dtype=float) for t in travel_times]
    n = np.asarray(trips, dtype=float)
    free = np.asarray(free_times, dtype=float)
    pairs_done = sum(t.size > 0 for t in tts)
    lost = np.zeros(len(n))
    for k in np.flatnonzero(n > 0):
        worst = tts[k].max() if tts[k].size else missing_tt
        unfinished = n[k] - (pairs_done if paper else tts[k].size)
        lost[k] = (tts[k] - free[k]).sum() + (worst + 1 - free[k]) * unfinished
    return lost


def _delay_score(trips, travel_times, free_times, missing_tt: float, paper: bool) -> tuple[float, float]:
    """Shared body of the two scores; returns (score, best-case delay per vehicle).
    Score = trip-weighted mean of the per-vehicle loss + its trip-weighted standard deviation."""
    n = np.asarray(trips, dtype=float)
    keep = n > 0
    if not keep.any():
        return 0.0, 0.0
    lost = _pair_losses(trips, travel_times, free_times, missing_tt, paper)
    n, lost = n[keep], lost[keep]
    best = lost.sum() / n.sum()
    spread = math.sqrt(float((n * (lost / n - best) ** 2).sum() / n.sum()))
    return float(best + spread), float(best)


def paper_score(trips, travel_times, free_times, missing_tt: float = 1800.0) -> tuple[float, float]:
    """The paper's "OVERALL SCORE", unfinished-trip bug included: (score, best-case delay)."""
    return _delay_score(trips, travel_times, free_times, missing_tt, paper=True)


def corrected_score(trips, travel_times, free_times, missing_tt: float = 1800.0) -> tuple[float, float]:
    """The score as its documentation meant it (n_k - completed_k unfinished): (score, best-case delay)."""
    return _delay_score(trips, travel_times, free_times, missing_tt, paper=False)


@dataclass(frozen=True, repr=False)
class SimResult:
    """Per-OD outcome of one run, in OD-pair order, plus UXsim's own summary numbers."""

    pairs: list[tuple[str, str]]
    trips: list[int]  # vehicles generated (attempted trips)
    travel_times: list[np.ndarray]  # completed trips only
    free_times: list[float]
    avg_delay: float  # UXsim's average delay of completed trips

    def __repr__(self) -> str:  # short: an LLM optimizer sees it as an intermediate value
        done = sum(t.size for t in self.travel_times)
        return (f"SimResult({len(self.pairs)} OD pairs, {sum(self.trips)} trips, {done} completed, "
                f"average delay of completed trips {self.avg_delay:.1f} s)")

    __str__ = __repr__


def delay_report(result: SimResult, duration_s: float) -> dict[str, float]:
    """The paper's score (primary), the corrected one, and the numbers behind them."""
    args = (result.trips, result.travel_times, result.free_times, float(duration_s))
    score, best = paper_score(*args)
    score_c, best_c = corrected_score(*args)
    return {"score": score, "score_corrected": score_c, "avg_delay": result.avg_delay,
            "trips": int(sum(result.trips)), "completed": int(sum(t.size for t in result.travel_times)),
            "best_case_delay": best, "best_case_delay_corrected": best_c,
            "routes": route_breakdown(result, duration_s)}


def route_breakdown(result: SimResult, duration_s: float) -> dict[str, dict[str, float]]:
    """Per OD pair, as the paper's Trace runs saw it: trips attempted, completed, and time lost
    per vehicle (the paper's formula). The optimizer reads it in the scoring operator's output."""
    lost = _pair_losses(result.trips, result.travel_times, result.free_times, float(duration_s), paper=True)
    return {f"{o}->{d}": {"attempted": int(n), "completed": int(t.size),
                          "time_lost_per_vehicle": round(float(loss / n), 1) if n else 0.0}
            for (o, d), n, t, loss in zip(result.pairs, result.trips, result.travel_times, lost)}


def _int_like(value: Any) -> int | None:
    """The value as an int if it is a whole number (numeric strings allowed, bools not); else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def _int_pair(value: Any, key: str, shape: str) -> tuple[int, int]:
    """Two whole numbers from any sequence (Hydra hands over a ListConfig), or a ConfigError."""
    items = [] if isinstance(value, (str, bytes)) else list(value) if hasattr(value, "__iter__") else []
    ints = [_int_like(v) for v in items]
    if len(ints) != 2 or None in ints:
        raise ConfigError(f"{key}: {value!r} must be two integers {shape}")
    return ints[0], ints[1]


class TrafficSignalTask:
    """Minimize the paper's delay score over integer green times `ew`, `ns` of the centre signal."""

    higher_is_better = False
    objective = ("Tune the two green times of the traffic signal at a four-way intersection to make "
                 "the OVERALL SCORE (a delay; lower is better) as small as possible. A green that is "
                 "too short for one direction lets its queue grow; one that is too long makes the "
                 "other direction wait. Balance the east-west and north-south greens, and use the "
                 "feedback to decide how to change them.")

    def __init__(self, seed: int, limit: int = 50, duration_s: int = 1800,
                 init_green: Sequence[int] = (15, 15), green_bounds: Sequence[int] = (15, 90),
                 cpp: bool = True) -> None:
        lo, hi = self._check_config(limit, duration_s, init_green, green_bounds)
        self.seed, self.limit, self.cpp = int(seed), int(limit), bool(cpp)
        self.duration_s = int(duration_s)
        self.space = {d: Bounds(lo, hi, integer=True) for d in DIRS}
        self._init = dict(zip(DIRS, _int_pair(init_green, "task.init_green", "[EW, NS]")))
        self.od_pairs = list(itertools.permutations(OUTER, 2))
        self.bin_starts = np.arange(0, self.duration_s, BIN_S)
        self.demand = self._draw_demand()
        self._cache: dict[tuple[int, int], SimResult] = {}
        # The traced workflow (what Trace optimizers see): two trainable greens feed a simulation
        # operator and a scoring operator.
        self.greens = {d: node(self._init[d], trainable=True, name=d,
                               constraint=f"a whole number of seconds in [{lo}, {hi}]") for d in DIRS}
        self._simulate_op, self._report_op = self._traced_operators()

    @staticmethod
    def _check_config(limit, duration_s, init_green, green_bounds) -> tuple[int, int]:
        if (_int_like(limit) or 0) < 1:
            raise ConfigError(f"task.limit: {limit!r} must be an integer >= 1")
        if (_int_like(duration_s) or 0) <= 0:
            raise ConfigError(f"task.duration_s: {duration_s!r} must be a positive integer")
        lo, hi = _int_pair(green_bounds, "task.green_bounds", "[low, high]")
        if not 1 <= lo <= hi:
            raise ConfigError(f"task.green_bounds: [{lo}, {hi}] needs 1 <= low <= high")
        for name, g in zip(("EW", "NS"), _int_pair(init_green, "task.init_green", "[EW, NS]")):
            if not lo <= g <= hi:
                raise ConfigError(f"task.init_green: {name} green {g} is outside [{lo}, {hi}]")
        return lo, hi

    def _draw_demand(self) -> np.ndarray:
        """Flows (veh/s) with shape (12 OD pairs, bins): one uniform draw per (pair, bin), bins inner.

        RandomState(seed) yields the same stream as the paper's np.random.seed(seed) followed by
        scalar draws, without touching the global generator. Then W1->E1 gets +0.25 veh/s in the
        first third of the run and E1->W1 in the last third (600 s each at the paper's 1800 s).
        """
        rng = np.random.RandomState(self.seed)
        flow = rng.uniform(0.0, MAX_FLOW, size=(len(self.od_pairs), len(self.bin_starts)))
        third = self.duration_s // 3
        flow[self.od_pairs.index(("W1", "E1")), self.bin_starts < third] += MAX_FLOW
        flow[self.od_pairs.index(("E1", "W1")), self.bin_starts >= 2 * third] += MAX_FLOW
        return flow

    def nominal_arrivals(self) -> dict[str, float]:
        """Vehicles the demand table asks for, by origin approach (ignoring adddemand's truncation)."""
        per_pair = self.demand.sum(axis=1) * BIN_S
        totals = {"ew": 0.0, "ns": 0.0}
        for (orig, _), vehicles in zip(self.od_pairs, per_pair):
            totals["ew" if orig in ("W1", "E1") else "ns"] += float(vehicles)
        return totals

    def init_params(self) -> dict[str, int]:
        return dict(self._init)

    def simulate(self, ew: int, ns: int) -> SimResult:
        """Build the World, run it to the end, and collect per-OD statistics."""
        import uxsim  # heavy: only when a simulation is actually run

        # UXsim warns that truncated bins generate fewer vehicles than asked; that is the paper's
        # setup, so keep its output off the console (progress bars stay readable).
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            world = uxsim.World(
                name="four_way", deltan=1, reaction_time=1, tmax=self.duration_s, duo_update_time=120,
                random_seed=self.seed, print_mode=0, save_mode=0, show_mode=0, show_progress=0,
                vehicle_logging_timestep_interval=-1, cpp=self.cpp)
            nodes = {name: world.addNode(name, *COORDS[name]) for name in OUTER}
            # Demand before the centre node and links, in table order: the paper's build order.
            for (orig, dest), row in zip(self.od_pairs, self.demand):
                for t, flow in zip(self.bin_starts, row):
                    world.adddemand(nodes[orig], nodes[dest], int(t), int(t) + BIN_S, float(flow))
            centre = world.addNode("I1", 0, 0, signal=[int(ew), int(ns)])  # phase 0 = E-W green first
            for group, ends in ((0, ("W1", "E1")), (1, ("N1", "S1"))):
                for a, b in ((nodes[ends[0]], centre), (centre, nodes[ends[1]])):
                    for start, end in ((a, b), (b, a)):
                        world.addLink(start.name + end.name, start, end, length=LINK_M, free_flow_speed=SPEED,
                                      jam_density=JAM, signal_group=group)
            world.exec_simulation()
            stats = world.analyzer  # exec_simulation has already run basic_analysis
        by_name = {(o.name, d.name): (o, d) for o, d in stats.od_trips}
        trips, tts, free = [], [], []
        for pair in self.od_pairs:
            key = by_name.get(pair)
            trips.append(int(stats.od_trips[key]) if key else 0)
            done = key is not None and key in stats.od_tt
            tts.append(np.asarray(stats.od_tt[key] if done else [], dtype=float))
            free.append(float(stats.od_tt_free[key]) if done else FREE_TRIP_S)
        return SimResult(self.od_pairs, trips, tts, free, float(stats.average_delay))

    def _simulated(self, ew: int, ns: int) -> SimResult:
        if (ew, ns) not in self._cache:  # only the latest run: test() of the just-evaluated plan is free
            self._cache = {(ew, ns): self.simulate(ew, ns)}
        return self._cache[(ew, ns)]

    def _metrics(self, ew: int, ns: int) -> dict[str, float]:
        return delay_report(self._simulated(ew, ns), self.duration_s)

    def _parse(self, params: dict[str, Any]) -> tuple[int, int] | str:
        """(ew, ns) as ints, or a sentence saying what is wrong with them."""
        greens = []
        for d in DIRS:
            bounds = self.space[d]
            label = f"{d.upper()} green time"
            if d not in params:
                return f"The {label} ('{d}') is missing."
            g = _int_like(params[d])
            if g is None:
                return f"The {label} must be a whole number of seconds, got {params[d]!r}."
            if not bounds.contains(g):
                return f"The {label} {g} is outside the allowed range [{bounds.low}, {bounds.high}]."
            greens.append(g)
        return greens[0], greens[1]

    def parameters(self) -> list:
        return [self.greens[d] for d in DIRS]

    def _traced_operators(self):
        task = self

        def simulate_intersection(ew_green, ns_green):
            """Simulates 30 minutes of traffic through one signalized four-way intersection: roads
            W1-I1-E1 (east-west) and N1-I1-S1 (north-south), 500 m per arm, random traffic between
            every pair of the four ends. The signal alternates an east-west green of ew_green
            seconds with a north-south green of ns_green seconds. Fails if a green time is not a
            whole number in the allowed range."""
            parsed = task._parse({"ew": ew_green, "ns": ns_green})
            if isinstance(parsed, str):
                raise ValueError(parsed)
            return task._simulated(*parsed)

        def score_delays(result):
            """Scores a simulation (lower is better): 'score' is the estimated delay per vehicle
            (finished trips by their travel time, unfinished ones charged a penalty) plus the
            spread of that delay across origin-destination pairs; 'avg_delay' is the mean delay of
            finished trips only."""
            return delay_report(result, task.duration_s)

        return bundle()(simulate_intersection), bundle()(score_delays)

    def _plain(self, params: dict[str, Any]) -> dict[str, Any]:
        """{"ew", "ns"} from black-box methods' keys or the greens' traced names (ew0, ns0)."""
        return {d: params.get(d, params.get(self.greens[d].py_name, _MISSING)) for d in DIRS}

    def evaluate(self, params: dict[str, Any]) -> Feedback:
        """Run the traced workflow on `params` ({"ew", "ns"}, or the greens' traced names)."""
        plain = self._plain(params)
        for d in DIRS:  # black-box methods hand plain values; Trace optimizers set the nodes
            value = plain[d]
            if value is _MISSING:
                missing = f"The {d.upper()} green time ('{d}') is missing."
                return Feedback(score=float("inf"), text=missing, info={"error": missing})
            self.greens[d]._data = value
        try:
            report = self._report_op(self._simulate_op(self.greens["ew"], self.greens["ns"]))
        except ExecutionError as error:
            failed = error.exception_node
            return Feedback(score=float("inf"), text=failed.data, output=failed, info={"error": failed.data})
        m = report.data
        text = (f"OVERALL SCORE: {m['score']}\n"
                "Lower is better: keep adjusting the two green times to bring it down, and if you "
                "believe these values are already the best possible, propose them again unchanged.")
        info = {k: v for k, v in m.items() if k not in ("score", "routes")}
        return Feedback(score=m["score"], text=text, output=report, info=info)

    def test(self, params: dict[str, Any]) -> dict[str, float]:
        parsed = self._parse({d: v for d, v in self._plain(params).items() if v is not _MISSING})
        if isinstance(parsed, str):
            return {"score": float("inf"), "score_corrected": float("inf"), "avg_delay": float("inf")}
        m = self._metrics(*parsed)
        return {k: m[k] for k in ("score", "score_corrected", "avg_delay")}

"""Tests of the UXsim traffic task: score formulas, demand table, validation, determinism.

    PYTHONPATH=. .venv/bin/python -m pytest tests/tasks/trace_paper/test_traffic.py -q
"""
import itertools
import json
import math
import warnings

import numpy as np
import pytest

from harness.api import BoxTask, ConfigError
from tasks.trace_paper.traffic import TrafficSignalTask, corrected_score, paper_score

# ---------------------------------------------------------------- score formulas (no uxsim)


def test_scores_when_every_pair_completes_some_trips():
    trips = [2, 3]
    tts = [[110, 120], [100, 100, 130]]
    free = [100.0, 100.0]
    # paper: two pairs have completed trips, so each pair is charged n_k - 2 "unfinished" vehicles
    lost_paper = [10 + 20 + (120 + 1 - 100) * 0, 0 + 0 + 30 + (130 + 1 - 100) * 1]
    best = sum(lost_paper) / 5
    per_veh = [lost_paper[0] / 2, lost_paper[1] / 3]
    spread = math.sqrt((2 * (per_veh[0] - best) ** 2 + 3 * (per_veh[1] - best) ** 2) / 5)
    assert paper_score(trips, tts, free) == pytest.approx((best + spread, best))
    # corrected: every vehicle finished, so there is no imputed delay at all
    best_c = (30 + 30) / 5
    spread_c = math.sqrt((2 * (15 - best_c) ** 2 + 3 * (10 - best_c) ** 2) / 5)
    assert corrected_score(trips, tts, free) == pytest.approx((best_c + spread_c, best_c))


def test_paper_bug_subtracts_pair_count_not_completed_count():
    trips, tts, free = [20], [[110.0] * 5], [100.0]
    # paper: 20 - 1 (one pair has completions) = 19 unfinished; corrected: 20 - 5 = 15
    assert paper_score(trips, tts, free)[1] == pytest.approx((5 * 10 + 11 * 19) / 20)
    assert corrected_score(trips, tts, free)[1] == pytest.approx((5 * 10 + 11 * 15) / 20)
    # with 12 pairs of one finished trip each, the paper charges 1 - 12 = -11 vehicles: negative delay
    score, best = paper_score([1] * 12, [[120.0]] * 12, [100.0] * 12)
    assert best == pytest.approx(20 + 21 * -11) and score == pytest.approx(best)
    assert corrected_score([1] * 12, [[120.0]] * 12, [100.0] * 12) == pytest.approx((20.0, 20.0))


def test_pair_without_completed_trips_is_charged_the_run_length():
    trips, tts, free = [4, 2], [[], [100.0, 100.0]], [100.0, 100.0]
    # corrected: all 4 unfinished, each charged 1800 + 1 - 100
    _, best_c = corrected_score(trips, tts, free, missing_tt=1800.0)
    assert best_c == pytest.approx(4 * 1701 / 6)
    # paper: only one pair has completions, so 4 - 1 and 2 - 1 vehicles are imputed
    _, best_p = paper_score(trips, tts, free, missing_tt=1800.0)
    assert best_p == pytest.approx((3 * 1701 + 1 * 1) / 6)
    # starving a pair completely never scores better than letting it finish slowly
    slow = corrected_score(trips, [[900.0] * 4, [100.0, 100.0]], free, missing_tt=1800.0)[0]
    assert corrected_score(trips, tts, free, missing_tt=1800.0)[0] > slow


def test_pairs_without_attempts_are_ignored():
    assert paper_score([0, 0], [[], []], [100.0, 100.0]) == (0.0, 0.0)
    with_empty = corrected_score([0, 3], [[], [110.0, 120.0, 130.0]], [100.0, 100.0])
    assert with_empty == pytest.approx(corrected_score([3], [[110.0, 120.0, 130.0]], [100.0]))


# ---------------------------------------------------------------- demand table


def test_demand_table_matches_the_paper_draw_order():
    task = TrafficSignalTask(seed=42)
    assert task.od_pairs == list(itertools.permutations(["W1", "E1", "N1", "S1"], 2))
    assert len(task.od_pairs) == 12 and task.demand.shape == (12, 300)
    assert task.bin_starts[0] == 0 and task.bin_starts[-1] == 1794 and np.all(np.diff(task.bin_starts) == 6)
    # same stream as the paper's global np.random.seed + scalar draws (pairs outer, bins inner)
    saved = np.random.get_state()
    try:
        np.random.seed(42)
        expected = np.array([[np.random.uniform(0, 0.25) for _ in range(300)] for _ in range(12)])
    finally:
        np.random.set_state(saved)
    we, ew = task.od_pairs.index(("W1", "E1")), task.od_pairs.index(("E1", "W1"))
    expected[we, :100] += 0.25
    expected[ew, 200:] += 0.25
    np.testing.assert_array_equal(task.demand, expected)


def test_boosts_and_nominal_arrivals():
    task = TrafficSignalTask(seed=7)
    we, ew = task.od_pairs.index(("W1", "E1")), task.od_pairs.index(("E1", "W1"))
    assert np.all(task.demand[we, :100] >= 0.25) and np.all(task.demand[we, 100:] < 0.25)
    assert np.all(task.demand[ew, 200:] >= 0.25) and np.all(task.demand[ew, :200] < 0.25)
    others = np.delete(task.demand, [we, ew], axis=0)
    assert np.all((others >= 0) & (others < 0.25))
    arrivals = task.nominal_arrivals()
    assert set(arrivals) == {"ew", "ns"} and task.duration_s == 1800
    assert arrivals["ew"] + arrivals["ns"] == pytest.approx(task.demand.sum() * 6)
    ns_rows = [k for k, (o, _) in enumerate(task.od_pairs) if o in ("N1", "S1")]
    assert arrivals["ns"] == pytest.approx(task.demand[ns_rows].sum() * 6)


def test_seed_changes_the_demand_table():
    a, b, c = TrafficSignalTask(seed=42), TrafficSignalTask(seed=42), TrafficSignalTask(seed=43)
    np.testing.assert_array_equal(a.demand, b.demand)
    assert not np.allclose(a.demand, c.demand)


# ---------------------------------------------------------------- config and parameter validation


@pytest.mark.parametrize("kwargs, needle", [
    ({"init_green": (100, 15)}, "EW green 100 is outside [15, 90]"),
    ({"init_green": (15, 14)}, "NS green 14"),
    ({"init_green": (15.5, 15)}, "task.init_green"),
    ({"init_green": (15,)}, "task.init_green"),
    ({"green_bounds": (90, 15)}, "task.green_bounds"),
    ({"green_bounds": "ab"}, "task.green_bounds"),
    ({"duration_s": 0}, "task.duration_s"),
    ({"limit": 0}, "task.limit"),
])
def test_bad_constructor_arguments(kwargs, needle):
    with pytest.raises(ConfigError) as err:
        TrafficSignalTask(seed=0, **kwargs)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_contract_and_hydra_lists():
    omegaconf = pytest.importorskip("omegaconf")
    task = TrafficSignalTask(seed=0, init_green=omegaconf.ListConfig([20, 30]),
                             green_bounds=omegaconf.ListConfig([10, 60]), limit=5)
    assert isinstance(task, BoxTask) and task.higher_is_better is False and task.limit == 5
    assert task.init_params() == {"ew": 20, "ns": 30}
    assert (task.space["ew"].low, task.space["ns"].high, task.space["ns"].integer) == (10, 60, True)


@pytest.mark.parametrize("params, needle", [
    ({"ew": 100, "ns": 15}, "100"),
    ({"ew": 15, "ns": 14}, "14"),
    ({"ew": 20.5, "ns": 15}, "whole number"),
    ({"ew": "soon", "ns": 15}, "whole number"),
    ({"ew": True, "ns": 15}, "whole number"),
    ({"ew": 20}, "missing"),
])
def test_out_of_range_params_give_infinite_score_and_a_reason(params, needle):
    task = TrafficSignalTask(seed=0)
    fb = task.evaluate(params)
    assert fb.score == float("inf") and needle in fb.text and fb.info["error"] == fb.text
    assert task.test(params)["score"] == float("inf")


# ---------------------------------------------------------------- simulation


def test_evaluate_is_deterministic_and_cached():
    first = TrafficSignalTask(seed=42).evaluate({"ew": 20, "ns": 16})
    task = TrafficSignalTask(seed=42)
    second = task.evaluate({"ew": "20", "ns": 16.0})  # int-like values are accepted
    assert first.score == second.score and first.info == second.info
    assert first.text.startswith(f"OVERALL SCORE: {first.score}\n")
    info = first.info
    json.dumps(info)  # plain Python numbers only
    assert info["trips"] > info["completed"] > 0 and 1300 < info["trips"] < 1600  # truncation quirk
    assert 0 < info["score_corrected"] < first.score and 0 < info["avg_delay"] < info["best_case_delay"]

    def no_more_runs(*_):
        raise AssertionError("test() of the just-evaluated plan must not simulate again")

    task.simulate = no_more_runs
    assert task.test({"ew": 20, "ns": 16}) == {
        "score": first.score, "score_corrected": info["score_corrected"], "avg_delay": info["avg_delay"]}


def test_simulation_prints_nothing(capsys):
    task = TrafficSignalTask(seed=1, duration_s=300, cpp=False)  # python engine warns about truncation
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fb = task.evaluate(task.init_params())
    assert math.isfinite(fb.score) and not caught
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


# ---------------------------------------------------------------- the traced workflow


def test_traced_workflow_shows_the_simulation_and_scoring_operators():
    from trace_core import backward, graph_context

    with graph_context():
        task = TrafficSignalTask(seed=42)
        ew, ns = task.parameters()
        assert (ew.data, ns.data) == (15, 15) and "[15, 90]" in ew.constraint
        fb = task.evaluate({ew.py_name: 20, ns.py_name: 16})  # as a Trace optimizer asks
        assert fb.score == TrafficSignalTask(seed=42).evaluate({"ew": 20, "ns": 16}).score
        sub = backward(fb.output, fb.text)
        assert sub.parameters == [ew, ns]
        assert [n.op.name for n in sub.nodes if n.op] == ["simulate_intersection", "score_delays"]
        assert "SimResult(12 OD pairs" in repr(sub.nodes[-2].data)
        routes = fb.output.data["routes"]  # the paper's per-route breakdown, in the scored output
        assert len(routes) == 12 and set(routes["W1->E1"]) == {"attempted", "completed", "time_lost_per_vehicle"}
        assert sum(r["attempted"] for r in routes.values()) == fb.info["trips"]
        assert sum(r["completed"] for r in routes.values()) == fb.info["completed"]
        assert all(r["time_lost_per_vehicle"] >= 0 for r in routes.values())

        bad = task.evaluate({ew.py_name: 95, ns.py_name: 16})  # out of range: feedback, not a crash
        assert bad.score == float("inf") and "outside the allowed range [15, 90]" in bad.text
        assert backward(bad.output, bad.text).parameters == [ew, ns]


def test_an_llm_method_gets_finite_test_metrics(tmp_path):
    # Trace optimizers hand the greens under their traced names (ew0, ns0): test() must read them
    # as evaluate() does, or every LLM record's test/* metrics are inf.
    from harness.optimize import run
    from support import compose_run

    cfg = compose_run("optimize", ["experiment=fig5b_traffic", "mode=smoke", "optimizer=optoprime",
                                   "logger=none", "progress=false"], tmp_path)
    record = run(cfg)
    assert len(record.curve) == 3 and record.cost.llm_calls == 2, "no call after the last evaluation"
    assert all(math.isfinite(record.metrics[f"test/{k}"]) for k in ("score", "score_corrected", "avg_delay"))
    assert record.metrics["test/score"] == record.metrics["train/best_score"]

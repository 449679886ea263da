"""Tests of the SCATS-style baseline: the split rule on a fake task, then on the real traffic task.

    PYTHONPATH=. .venv/bin/python -m pytest tests/baselines/test_scats.py -q
"""
from dataclasses import dataclass, field

import pytest

from baselines.scats import ScatsOptimizer
from harness.api import Bounds, ConfigError, Feedback, Optimizer


@dataclass
class FakeTask:
    ew: float
    ns: float
    duration_s: int = 1800
    space: dict = field(default_factory=lambda: {d: Bounds(15, 90, integer=True) for d in ("ew", "ns")})

    def nominal_arrivals(self):
        return {"ew": self.ew, "ns": self.ns}


def test_split_rule_by_hand():
    # rate = 2995 / 1800 = 1.664 veh/s -> cycle 36; ratio 1.2155 -> minor 36 // 2.2155 = 16
    assert ScatsOptimizer(FakeTask(1643.3, 1352.0)).ask() == {"ew": 20, "ns": 16}
    # the larger green follows the larger demand
    assert ScatsOptimizer(FakeTask(1352.0, 1643.3)).ask() == {"ew": 16, "ns": 20}
    # 1 veh/s in all and 100 vehicles per cycle -> a 100-s cycle; 3:1 demand -> 100 // 4 = 25 minor
    assert ScatsOptimizer(FakeTask(1350.0, 450.0), max_queue_per_cycle=100.0).ask() == {"ew": 75, "ns": 25}
    # equal demand, odd cycle: the major approach (ties go to E-W) gets the extra second
    assert ScatsOptimizer(FakeTask(900.0, 900.0), max_queue_per_cycle=61.0).ask() == {"ew": 31, "ns": 30}


def test_plan_is_clamped_to_the_box():
    assert ScatsOptimizer(FakeTask(10000.0, 10000.0)).ask() == {"ew": 15, "ns": 15}  # tiny cycle
    assert ScatsOptimizer(FakeTask(100.0, 100.0)).ask() == {"ew": 90, "ns": 90}  # huge cycle
    assert ScatsOptimizer(FakeTask(1000.0, 0.0)).ask() == {"ew": 90, "ns": 15}  # no N-S demand
    assert ScatsOptimizer(FakeTask(0.0, 0.0)).ask() == {"ew": 15, "ns": 15}


def test_one_evaluation_then_finished():
    opt = ScatsOptimizer(FakeTask(1643.3, 1352.0), seed=3)
    assert isinstance(opt, Optimizer) and opt.finished is False
    fb = Feedback(score=1.0)
    opt.tell(opt.ask(), fb)
    assert opt.finished is True and opt.feedback is fb


@pytest.mark.parametrize("bad", [0, -5.0])
def test_bad_queue_length(bad):
    with pytest.raises(ConfigError, match="max_queue_per_cycle"):
        ScatsOptimizer(FakeTask(1.0, 1.0), max_queue_per_cycle=bad)


def test_beats_the_start_on_the_traffic_task():
    from tasks.trace_paper.traffic import TrafficSignalTask  # the test, not the baseline, knows about tasks

    task = TrafficSignalTask(seed=42)
    opt = ScatsOptimizer(task)
    plan = opt.ask()
    assert (plan["ew"], plan["ns"]) in {(20, 16), (20, 15), (21, 15)}
    fb = task.evaluate(plan)
    opt.tell(plan, fb)
    assert opt.finished
    assert fb.score < task.evaluate({"ew": 15, "ns": 15}).score

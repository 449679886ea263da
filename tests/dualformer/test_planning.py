"""The maze glue for harness.train: reading a decoded answer back and judging it with the task."""
from __future__ import annotations

from dualformer.data import TraceDropout, tokenize
from dualformer.planning import PlanningModel, PlanningTask


def test_reference_answers_read_back_and_are_judged_optimal():
    task = PlanningTask(seed=3, size=8, n_train=5, n_test=5)
    model = PlanningModel(dropout=TraceDropout())
    model.task, model.pad = task, len(task.vocab)
    for example in task.test_set:
        decoder = tokenize(example).decoder_tokens()  # bos, trace, plan, eos
        ids = task.vocab.encode(decoder[1:-1])  # what sample() returns: after bos, before eos
        plan, trace_tokens = model._read(ids)
        assert plan == tuple(example.plan) and task.is_correct(example, plan)
        assert trace_tokens == tokenize(example).trace_length
        broken = ids[:-3]  # the last plan step cut off: no longer reaches the goal
        cut_plan, _ = model._read(broken)
        assert cut_plan is not None and not task.is_correct(example, cut_plan)
        assert model._read(ids[:-1])[0] is None, "a half-written plan step is unreadable"


def test_test_scores_a_perfect_solver_at_100_percent():
    task = PlanningTask(seed=3, size=8, n_train=5, n_test=4)
    model = PlanningModel(dropout=TraceDropout())
    model.task, model.pad = task, len(task.vocab)

    def oracle(example):
        ids = task.vocab.encode(tokenize(example).decoder_tokens()[1:-1])
        return {"slow": [model._read(ids)] * 3}

    metrics = task.test(oracle)
    assert metrics["slow/1_optimal_3"] == 100 and metrics["slow/3_optimal_3"] == 100
    assert metrics["slow/swc"] == 1 and metrics["slow/diversity_optimal"] == 1

"""Per-example outputs beside the record (issue 13: like lm-eval-harness's --log_samples)."""
from __future__ import annotations

from harness.records import read_record
from harness.samples import read_samples
from support import compose_run


def test_a_planning_run_keeps_every_response_with_its_verdict(run_dir):
    from harness.train import run

    record = run(compose_run("train", ["task=maze7", "model=dualformer", "mode=smoke", "logger=none",
                                       "progress=false", "model.modes=[fast,slow]"], run_dir))
    path = run_dir / record.filename
    rows = list(read_samples(path))
    assert read_record(path) == record
    assert len(rows) == 3 * 2, "one row per test maze and mode"
    assert {r["mode"] for r in rows} == {"fast", "slow"}
    assert all(len(r["responses"]) == 4 and {"plan", "correct", "plan_length", "trace_tokens"} <= set(r["responses"][0])
               for r in rows)
    solved = 100 * sum(any(x["correct"] for x in r["responses"]) for r in rows if r["mode"] == "fast") / 3
    assert solved == record.metrics["test/fast/1_solved_4"], "the table's number can be rescored from the samples"


def test_a_bbh_run_keeps_each_answer_with_its_target(run_dir):
    from harness.optimize import run

    record = run(compose_run("optimize", ["experiment=table1_bbh", "mode=smoke", "optimizer=optoprime",
                                          "task=bbh", "task.subtask=date_understanding", "logger=none",
                                          "progress=false"], run_dir))
    rows = list(read_samples(run_dir / record.filename))
    assert len(rows) == record.metrics["test/n_test"]
    assert all({"question", "answer", "target", "correct"} <= set(r) for r in rows)
    assert 100 * sum(r["correct"] for r in rows) / len(rows) == record.metrics["test/acc"]

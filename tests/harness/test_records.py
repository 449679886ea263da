from __future__ import annotations

import json
import math
import os

import pytest

from harness.records import Cost, RunRecord, load_records, read_record, write_record


def make_record(method="gp", seed=1, score=2.5, **extra) -> RunRecord:
    return RunRecord(experiment="exp", task="toy", method=method, seed=seed, mode="paper",
                     metrics={"train/best_score": score, "test/score": float("inf")},
                     curve=[{"step": 0, "score": float("inf")}, {"step": 1, "score": score}],
                     cost=Cost(seconds=1.5, llm_calls=2), config={"seed": seed}, **extra)


def test_round_trip_keeps_non_finite_numbers_and_provenance(tmp_path):
    record = make_record()
    path = write_record(record, tmp_path)
    assert path.name == f"toy__gp__seed1__{record.config_hash}.json" and len(record.config_hash) == 10
    json.loads(path.read_text())  # strict JSON: inf is written as a string, not a bare token
    back = read_record(path)
    assert back == record
    assert math.isinf(back.metrics["test/score"]) and math.isinf(back.curve[0]["score"])
    assert back.git_sha and back.packages["hydra-core"] and back.created


def test_write_is_atomic_when_serialisation_fails(tmp_path):
    write_record(make_record(score=1.0), tmp_path)
    broken = make_record(score=2.0)
    broken.config = {"bad": object()}  # not JSON-serialisable: the write must fail cleanly
    with pytest.raises(TypeError):
        write_record(broken, tmp_path)
    assert read_record(tmp_path / broken.filename).metrics["train/best_score"] == 1.0
    assert sorted(os.listdir(tmp_path)) == [broken.filename], "no temp file is left behind"


def test_load_records_is_one_row_per_run_and_ignores_temp_files(tmp_path):
    for seed in (1, 2):
        write_record(make_record(seed=seed, score=float(seed)), tmp_path / "exp")
    (tmp_path / "exp" / ".toy__gp__seed3.json.x.tmp").write_text("{ half")
    frame = load_records(tmp_path)
    assert sorted(frame["seed"]) == [1, 2]
    assert list(frame.sort_values("seed")["train/best_score"]) == [1.0, 2.0]
    assert frame["cost/llm_calls"].tolist() == [2, 2]


def test_a_search_wrappers_llm_is_its_inner_methods():
    from harness.records import llm_used

    scripted = {"_target_": "trace_core.llm.ScriptedLLM"}
    assert llm_used({"optimizer": {"inner": {"llm": scripted}}}) == "scripted test double"
    assert llm_used({"optimizer": {"inner": {"llm": {"model": "m", "cache_mode": "replay"}}}}) == "m (replayed from cache)"
    assert llm_used({"optimizer": {"_target_": "baselines.gp.GP"}}) == "no LLM"

"""scripts/migrate_records.py: old records get the identity scheme, numbers untouched, twice is once."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from harness.identity import config_hash
from harness.records import read_record
from support import ROOT

spec = importlib.util.spec_from_file_location("migrate_records", ROOT / "scripts" / "migrate_records.py")
migrate_records = importlib.util.module_from_spec(spec)
sys.modules["migrate_records"] = migrate_records
spec.loader.exec_module(migrate_records)

OLD = {"experiment": "exp", "task": "toy", "method": "gp", "seed": 3, "mode": "paper",
       "metrics": {"train/best_score": 0.1 + 0.2, "test/score": "inf"},
       "curve": [{"step": 0, "score": "inf"}, {"step": 1, "score": 0.30000000000000004}],
       "cost": {"seconds": 1.5, "llm_calls": 0, "prompt_tokens": 0, "completion_tokens": 0,
                "cache_hits": 0, "llm_seconds": 0.0},
       "config": {"seed": 3, "task": {"limit": 5}, "logger": {"mode": "offline"}, "smoke": {"x": 1}},
       "git_sha": "abc", "packages": {"numpy": "2"}, "created": "2026-11-30T00:00:00+00:00", "schema": 1}


def test_migration_renames_keeps_every_number_and_is_idempotent(tmp_path):
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "toy__gp__seed3.json").write_text(json.dumps(OLD, indent=1))
    migrate_records.main(["--results", str(tmp_path)])
    [path] = list((tmp_path / "exp").glob("*.json"))
    record = read_record(path)
    assert path.name == f"toy__gp__seed3__{record.config_hash}.json"
    data = json.loads(path.read_text())
    assert {k: data[k] for k in OLD if k != "schema"} == {k: v for k, v in OLD.items() if k != "schema"}
    assert data["schema"] == 2 and data["provenance"]["migrated_from"] == "toy__gp__seed3.json"
    before = path.read_text()
    migrate_records.main(["--results", str(tmp_path)])
    assert list((tmp_path / "exp").glob("*.json")) == [path] and path.read_text() == before


# A record made before tasks/ was laid out by paper: its config names the flat module paths.
BEFORE_LAYOUT = {**OLD, "task": "math_mini", "schema": 2, "config_hash": "0123456789",
                 "provenance": {"run_dir": "runs/x", "wandb_run_id": "abc"},
                 "config": {"seed": 3, "logger": {"mode": "offline"},
                            "task": {"_target_": "tasks.math.MathTask", "limit": 5,
                                     "train": {"_target_": "tasks.math_data.DataSpec", "source": "x"},
                                     "evals": [{"_target_": "tasks.math.EvalProtocol"}]},
                            "optimizer": {"_target_": "baselines.gp.GpOptimizer", "_partial_": True}}}


def test_a_moved_target_is_rewritten_and_the_record_takes_its_new_identity(tmp_path):
    (tmp_path / "exp").mkdir()
    old_path = tmp_path / "exp" / "math_mini__gp__seed3__0123456789.json"
    old_path.write_text(json.dumps(BEFORE_LAYOUT, indent=1))
    migrate_records.main(["--results", str(tmp_path)])
    [path] = list((tmp_path / "exp").glob("*.json"))
    data = json.loads(path.read_text())
    task = data["config"]["task"]
    assert task["_target_"] == "tasks.dualformer_paper.math.MathTask"
    assert task["train"]["_target_"] == "tasks.dualformer_paper.math_data.DataSpec"
    assert task["evals"][0]["_target_"] == "tasks.dualformer_paper.math.EvalProtocol"
    assert data["config"]["optimizer"]["_target_"] == "baselines.gp.GpOptimizer"  # not moved, not touched
    assert data["config_hash"] == config_hash(data["config"]) != BEFORE_LAYOUT["config_hash"]
    assert path.name == f"math_mini__gp__seed3__{data['config_hash']}.json" and not old_path.exists()
    for key in ("metrics", "curve", "cost", "git_sha", "packages", "created", "experiment", "seed"):
        assert data[key] == BEFORE_LAYOUT[key], key
    moved = {f"tasks.{name}": f"tasks.dualformer_paper.{name}"
             for name in ("math.MathTask", "math_data.DataSpec", "math.EvalProtocol")}
    assert data["provenance"] == {**BEFORE_LAYOUT["provenance"], "config_hash_before": "0123456789",
                                  "migrated_targets": moved}
    before = path.read_text()
    migrate_records.main(["--results", str(tmp_path)])
    assert list((tmp_path / "exp").glob("*.json")) == [path] and path.read_text() == before


def test_moves_match_whole_module_segments_and_name_modules_that_exist():
    assert migrate_records.moved_target("tasks.numeric_sampler.paper_problem") == \
        "tasks.trace_paper.numeric_sampler.paper_problem"
    assert migrate_records.moved_target("tasks.numeric.NumericTask") == "tasks.trace_paper.numeric.NumericTask"
    assert migrate_records.moved_target("tasks.metaworld.MetaWorldTask") == "tasks.trace_paper.metaworld.MetaWorldTask"
    for current in ("tasks.trace_paper.numeric.NumericTask", "dualformer.planning.PlanningTask", "tasks.mathx.A"):
        assert migrate_records.moved_target(current) is None
    for old, new in migrate_records.MOVED_MODULES.items():
        for name, should_exist in ((old, False), (new, True)):
            module = ROOT / Path(*name.split("."))
            assert (module.with_suffix(".py").exists() or (module / "__init__.py").exists()) is should_exist, name


def test_the_committed_records_are_migrated():
    """Every record in results/ hashes to its name and names no module at a path it has left."""
    paths = migrate_records.record_paths(ROOT / "results")
    assert paths, "results/ holds committed records"
    for path in paths:
        data = json.loads(path.read_text())
        moved: dict[str, str] = {}
        migrate_records.move_targets(data["config"], moved)
        assert moved == {}, path.name
        assert data["config_hash"] == config_hash(data["config"]) and path.stem.endswith(data["config_hash"])

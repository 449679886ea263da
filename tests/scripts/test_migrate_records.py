"""scripts/migrate_records.py: old records get the identity scheme, numbers untouched, twice is once."""
from __future__ import annotations

import importlib.util
import json
import sys

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

"""A run's identity is its resolved config: sweeps keep every point, skip_done skips only the
same config, and the config is validated before any skip (issue 13, defects 1 and 2)."""
from __future__ import annotations

import pytest

from harness.api import ConfigError
from harness.identity import config_hash
from harness.optimize import run
from harness.records import load_records
from harness.runs import RunInfo, user_error_message
from support import compose_run

BASE = ["task=numeric", "optimizer=pso", "task.limit=2", "logger=none", "progress=false", "seed=43"]  # 42 is solved at the start


def test_hash_ignores_presentation_keys_and_key_order():
    config = {"seed": 1, "task": {"a": 1, "b": 2}, "logger": {"mode": "offline"}, "results_dir": "x"}
    same = {"task": {"b": 2, "a": 1}, "seed": 1, "progress": False, "results_dir": "elsewhere"}
    assert config_hash(config) == config_hash(same)
    assert config_hash(config) != config_hash({**config, "task": {"a": 1, "b": 3}})


def test_how_replies_are_fetched_is_not_part_of_the_identity():
    llm = {"_target_": "trace_core.llm.openai_llm", "model": "m", "base_url": None, "temperature": 0,
           "cache_mode": "readwrite", "cache_path": "runs/llm_cache.sqlite", "timeout_s": None}
    recorded = {"seed": 1, "llm": llm, "task": {"student": {"base": llm, "model": "s"}}}
    replay = {"seed": 1, "llm": {**llm, "cache_mode": "replay", "timeout_s": 600},
              "task": {"student": {"base": {**llm, "cache_path": "other.sqlite"}, "model": "s"}}}
    assert config_hash(recorded) == config_hash(replay), "a replay finds the record it replays"
    assert config_hash(recorded) != config_hash({**recorded, "llm": {**llm, "model": "other"}})
    assert config_hash(recorded) != config_hash({**recorded, "llm": {**llm, "temperature": 0.7}})


def test_a_sweep_over_any_field_keeps_every_point(tmp_path):
    results = tmp_path / "res"
    for i, w in enumerate((0.5, 1.0)):
        run(compose_run("optimize", BASE + [f"optimizer.w={w}", f"results_dir={results}"], tmp_path / str(i)))
    frame = load_records(results)
    assert len(frame) == 2 and frame["config_hash"].nunique() == 2, "the second point is neither skipped nor overwritten"
    names = sorted(p.name for p in results.glob("*.json"))
    assert all(n.startswith("numeric__pso__seed43__") for n in names), names


def test_skip_done_returns_only_the_identical_config(tmp_path):
    results = f"results_dir={tmp_path / 'res'}"
    first = run(compose_run("optimize", BASE + [results], tmp_path / "a"))
    again = run(compose_run("optimize", BASE + [results], tmp_path / "b"))
    assert again.created == first.created and again.config_hash == first.config_hash
    longer = run(compose_run("optimize", BASE[:2] + ["task.limit=3", *BASE[3:], results], tmp_path / "c"))
    assert longer.config["task"]["limit"] == 3 and len(longer.curve) == 3, "not the old 2-step record"


def test_config_is_validated_before_any_skip(tmp_path):
    results = f"results_dir={tmp_path / 'res'}"
    run(compose_run("optimize", BASE + [results], tmp_path / "a"))
    with pytest.raises(Exception) as caught:
        run(compose_run("optimize", BASE[:2] + ["task.limit=-5", *BASE[3:], results], tmp_path / "b"))
    assert "task.limit" in user_error_message(caught.value)


def test_quick_mode_subtasks_get_their_own_records(tmp_path):
    paths = set()
    for subtask in ("navigate", "object_counting"):
        cfg = compose_run("optimize", ["experiment=table1_bbh", "mode=quick", f"task.subtask={subtask}"], tmp_path)
        paths.add(RunInfo.from_config(cfg, method_group="optimizer").record_path)
    assert len(paths) == 2


def test_an_unwritable_results_folder_is_an_error_before_the_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="results_dir"):
        run(compose_run("optimize", BASE + [f"results_dir={blocker / 'sub'}"], tmp_path / "a"))


def test_where_a_method_writes_its_side_files_is_not_part_of_the_identity():
    """The DSPy rows write <program>.yaml into their run folder (optimizer.output_dir): a replay or a
    rerun in another folder is the same run, so it finds the record it replays (or skips it)."""
    recorded = {"seed": 1, "optimizer": {"_target_": "baselines.dspy_today.DSPyToday", "optimize": "gepa",
                                         "output_dir": "runs/2026-12-07/17-08-00"}}
    again = {"seed": 1, "optimizer": {**recorded["optimizer"], "output_dir": "runs/2026-12-07/17-09-00"}}
    assert config_hash(recorded) == config_hash(again)
    assert config_hash(recorded) != config_hash({"seed": 1, "optimizer": {**recorded["optimizer"], "optimize": "miprov2"}})

"""The statistics a Dualformer table shows beside its means (harness/stats.py, scripts/make_tables.py):
exact McNemar per seed and pooled, Student-t intervals over seeds, per-response rates from the
samples files, and what each model's training cost. Fixture: tests/data/stats (two methods, three
seeds, ten test tasks of two responses each; seed 3's two records answered different tasks)."""
from __future__ import annotations

import importlib.util
import math
import sys

import pytest
from omegaconf import OmegaConf

from harness import stats
from harness.records import load_records
from harness.report import TableSpec
from support import DATA, ROOT

FIXTURE = DATA / "stats"
T_975_2DF = 4.302652729749464  # Student-t 0.975 quantile, 2 degrees of freedom (printed tables: 4.303)


def make_tables_module():
    spec = importlib.util.spec_from_file_location("make_tables", ROOT / "scripts" / "make_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_tables"] = module
    spec.loader.exec_module(module)
    return module


def fixture_runs():
    runs = load_records(FIXTURE / "records")
    block = OmegaConf.to_container(OmegaConf.load(FIXTURE / "configs" / "stats_demo.yaml"))["table"]
    runs = runs.assign(method=runs["task"] + "/" + runs["method"])
    return runs, TableSpec.from_block(block, runs)


def test_exact_mcnemar_is_the_two_sided_binomial_over_discordant_tasks():
    assert stats.mcnemar_p(4, 0) == 2 * 0.5 ** 4          # 0.125
    assert stats.mcnemar_p(3, 1) == 2 * (1 + 4) / 16      # 0.625
    assert stats.mcnemar_p(1, 3) == stats.mcnemar_p(3, 1)
    assert stats.mcnemar_p(7, 1) == 2 * (1 + 8) / 256     # 0.0703125
    assert stats.mcnemar_p(2, 2) == 1.0 and stats.mcnemar_p(0, 0) == 1.0  # capped; nothing discordant


def test_the_seed_interval_is_student_t_with_n_minus_one_degrees_of_freedom():
    low, high = stats.t_interval([50.0, 60.0, 70.0])
    half = T_975_2DF * 10.0 / math.sqrt(3)  # sd 10 over 3 seeds
    assert low == pytest.approx(60.0 - half, abs=1e-9) and high == pytest.approx(60.0 + half, abs=1e-9)
    assert all(math.isnan(v) for v in stats.t_interval([50.0]))  # one seed: no interval, not a zero-width one


def test_per_response_rates_count_every_response_of_every_task():
    runs, _ = fixture_runs()
    with_rates = stats.add_sample_metrics(runs, ["samples/fast/optimal_per_response",
                                                 "samples/fast/solved_per_response"])
    by = {(r.method, r.seed): (r["samples/fast/optimal_per_response"], r["samples/fast/solved_per_response"])
          for _, r in with_rates.iterrows()}
    assert by[("maze7/new", 1)] == (25.0, 50.0)   # 5 of 10 tasks: one optimal and one long correct of 2
    assert by[("maze7/base", 1)] == (5.0, 55.0)   # 1 optimal task (2 correct) + 9 tasks with 1 correct
    assert by[("maze7/base", 2)] == (20.0, 70.0)


def test_paired_rows_per_seed_skip_different_test_sets_and_pool_the_rest():
    runs, spec = fixture_runs()
    table = stats.paired_comparisons(runs, spec)
    rows = {str(r.seed): r for _, r in table.iterrows()}
    assert (rows["1"].b, rows["1"].c, rows["1"].both, rows["1"].neither, rows["1"].p) == (4, 0, 1, 5, 0.125)
    assert (rows["2"].b, rows["2"].c, rows["2"].both, rows["2"].neither, rows["2"].p) == (3, 1, 3, 3, 0.625)
    assert rows["3"].tasks == 0 and "test tasks differ" in rows["3"].note and math.isnan(rows["3"].p)
    pooled = rows["pooled (2 seeds)"]
    assert (pooled.tasks, pooled.b, pooled.c, pooled.p) == (20, 7, 1, 2 * 9 / 256)


def test_training_stages_split_where_the_seconds_start_again():
    curve = [{"step": 10, "train/seconds": 5.0}, {"step": 3000, "train/seconds": 1320.0},
             {"step": 3000, "bootstrap/improved_fraction": 0.1},
             {"step": 3310, "train/seconds": 6.0}, {"step": 3600, "train/seconds": 170.0}]
    assert stats.stage_ends(curve, "train/seconds") == [1320.0, 170.0]
    assert stats.stage_ends(curve, "train/tokens_seen") == []


def test_make_tables_shows_the_statistics_and_warns_about_unpaired_seeds(tmp_path, capsys):
    make_tables = make_tables_module()
    make_tables.make(FIXTURE / "records", tmp_path, FIXTURE / "configs")
    text = (tmp_path / "tables" / "stats_demo.md").read_text()
    half = T_975_2DF * 10.0 / math.sqrt(3)
    new = next(line for line in text.splitlines() if line.startswith("| 7x7 maze: New |"))
    assert f"60.0 ± 5.8 t95 [{60 - half:.1f}, {60 + half:.1f}] Wilson [" in new
    assert "| 30.0 ± 2.9 t95 [17.6, 42.4] |" in new and "| 60.0 ± 5.8 t95 [35.2, 84.8] |" in new
    assert "Student-t 95% interval of the mean over seeds" in text and "Wilson 95% interval" in text
    assert "| 7x7 maze | New vs Base | 1 | 10 | 1 | 4 | 0 | 5 | 0.125 |  |" in text
    assert "| 7x7 maze | New vs Base | pooled (2 seeds) | 20 | 4 | 7 | 1 | 8 | 0.0703 |" in text
    assert "test tasks differ" in text and "exact sign test" in text
    assert "seed 3" in capsys.readouterr().err
    compute = text[text.index("## Training compute"):]
    assert "| 7x7 maze: New | 3 | 4,000 | 56 | 20 | 11.0 | `abcdef1234`, this run |" in compute
    assert "| 7x7 maze: Base | 3 | not recorded | not recorded | not recorded | 5.0 | not recorded |" in compute
    csv = (tmp_path / "tables" / "stats_demo.csv").read_text().splitlines()
    assert csv[0].endswith(",t_low,t_high")


@pytest.mark.parametrize("name", ["table5_1_fast_mini", "table5_2_slow_mini", "table5_3_auto_mini",
                                  "table5_4_bootstrap_mini"])
def test_the_mini_tables_ask_for_the_statistics(name):
    block = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "experiment" / f"{name}.yaml"))["table"]
    assert block["paired"] and all(a in block["methods"] and b in block["methods"] for a, b in block["paired"])
    assert block["paired_metric"].endswith("/1_optimal_64") and block["seed_interval"] == "t" and block["compute"]
    mode = block["paired_metric"].split("/")[1]
    assert {f"samples/{mode}/optimal_per_response", f"samples/{mode}/solved_per_response"} <= set(block["columns"])
    label = block["figure"]["training"]["eval_ylabel"]
    # the held-out sets as the records' tasks built them (Sokoban's lost one level that a test task shares)
    assert label.startswith("held-out 1-Optimal-4 (%)") and "50 mazes" in label and "1-Optimal-64 on 200" in label
    assert ("49 Sokoban levels" in label) == ("sokoban_mini" in block.get("tasks", {}))


def test_a_table_without_tasks_pairs_by_method_and_has_no_task_column():
    runs = load_records(FIXTURE / "records")
    spec = TableSpec.from_block({"title": "t", "methods": {"base": "Base", "new": "New"},
                                 "columns": {"test/fast/1_optimal_2": "1-Optimal"},
                                 "paired": [["base", "new"]], "paired_metric": "test/fast/1_optimal_2"}, runs)
    text = stats.paired_section(stats.paired_comparisons(runs, spec), spec)
    assert "| comparison | seed |" in text and "| task |" not in text
    assert "| Base vs New | 1 | 10 | 1 | 0 | 4 | 5 | 0.125 |  |" in text  # the first method's b is New's c


@pytest.mark.parametrize("keys, message", [
    ({"paired": [["new", "nobody"]], "paired_metric": "test/fast/1_optimal_2"}, "table.paired takes pairs"),
    ({"paired": [["new", "base"]]}, "table.paired needs table.paired_metric"),
    ({"paired": [["new", "base"]], "paired_metric": "test/fast/swc"}, "table.paired_metric must be"),
    ({"seed_interval": "bootstrap"}, "table.seed_interval must be t")])
def test_a_bad_statistics_key_is_one_error_line(keys, message):
    runs = load_records(FIXTURE / "records")
    block = {"title": "t", "methods": {"base": "Base", "new": "New"}, "columns": {"x": "x"}, **keys}
    with pytest.raises(SystemExit, match=f"^error: {message}"):
        TableSpec.from_block(block, runs)


def test_samples_of_another_size_than_the_metric_are_skipped_not_compared():
    """E.g. smoke records (4 samples) under a table that compares 1-Optimal-64."""
    runs, spec = fixture_runs()
    spec.paired_metric = "test/fast/1_optimal_64"
    table = stats.paired_comparisons(runs, spec)
    assert list(table["seed"]) == [1, 2, 3] and (table["tasks"] == 0).all()
    assert table["note"].str.contains("do not hold 64 responses").all()


def test_samples_that_do_not_rescore_to_the_records_rate_are_skipped():
    runs, spec = fixture_runs()
    runs.loc[(runs["method"] == "maze7/base") & (runs["seed"] == 2), "test/fast/1_optimal_2"] = 45.0
    table = stats.paired_comparisons(runs, spec)
    notes = dict(zip(table["seed"], table["note"]))
    assert notes[1] == "" and "do not rescore to the records' test/fast/1_optimal_2" in notes[2]


def test_a_pair_with_no_records_of_one_method_for_a_task_is_left_out_not_listed_as_skipped():
    # Issue 29's mini tables: the provisional-p Dualformer has Sokoban records only, the chosen one
    # maze records only; a maze pair with the provisional p has nothing to compare and is no row.
    runs, _ = fixture_runs()
    spec = TableSpec.from_block({"title": "t", "tasks": {"maze7": "7x7 maze"},
                                 "methods": {"base": "Base", "new": "New", "other": "Other"},
                                 "columns": {"test/fast/1_optimal_2": "1-Optimal"},
                                 "paired": [["new", "base"], ["other", "base"]],
                                 "paired_metric": "test/fast/1_optimal_2"}, runs)
    table = stats.paired_comparisons(runs, spec)
    assert set(table["comparison"]) == {"New vs Base"}
    assert "test tasks differ" in table.set_index("seed").loc[3, "note"]  # a seed one side lacks stays a note


def test_the_paired_section_says_whether_the_seeds_share_one_test_set():
    runs, spec = fixture_runs()
    table = stats.paired_comparisons(runs, spec)
    assert "(each seed has its own test set)" in stats.paired_section(table, spec, runs)
    shared = runs.assign(config=[{**c, "task": {**c.get("task", {}), "test_seed": 1000}} for c in runs["config"]])
    text = stats.paired_section(table, spec, shared)
    assert "(every seed answers the same test tasks: task.test_seed = 1000)" in text
    assert "own test set" not in text
    mixed = runs.assign(task=["maze7" if s != 3 else "sokoban_mini" for s in runs["seed"]],
                        config=[{**c, "task": {"test_seed": 1000}} if s != 3 else c
                                for c, s in zip(runs["config"], runs["seed"])])
    assert ("(7x7 maze: every seed answers the same test tasks: task.test_seed = 1000; sokoban_mini: each seed "
            "has its own test set)") in stats.paired_section(table, spec, mixed)

"""Golden test: fixed records -> the exact table text, the CSV, and a figure."""
from __future__ import annotations

import json

import importlib.util
import sys

import pytest

from harness import figures
from support import DATA, ROOT

spec = importlib.util.spec_from_file_location("make_tables", ROOT / "scripts" / "make_tables.py")
make_tables = importlib.util.module_from_spec(spec)
sys.modules["make_tables"] = make_tables  # dataclasses look their module up by name
spec.loader.exec_module(make_tables)


def test_records_render_to_the_golden_table(tmp_path):
    written = make_tables.make(DATA / "records", tmp_path, DATA / "configs" / "experiment")
    assert {p.name for p in written} == {"golden_demo.md", "golden_demo.csv", "golden_demo.png"}
    for name in ("golden_demo.md", "golden_demo.csv"):
        assert (tmp_path / "tables" / name).read_text() == (DATA / "golden" / name).read_text(), name
    png = tmp_path / "figures" / "golden_demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_failed_evaluations_are_gaps_not_numbers():
    curves = [[{"score": 1.0}, {"score": float("inf")}], [{"score": 3.0}]]
    matrix = figures.curve_matrix(curves, "score")
    assert matrix.shape == (2, 2)
    assert matrix[0, 0] == 1.0 and matrix[1, 0] == 3.0
    assert all(v != v for v in (matrix[0, 1], matrix[1, 1]))  # NaN


def test_no_records_is_one_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no run records"):
        make_tables.make(tmp_path, tmp_path, DATA / "configs" / "experiment")


def test_a_block_with_tasks_gets_one_row_per_task_and_method(tmp_path):
    from harness.records import Cost, RunRecord, write_record

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "by_size.yaml").write_text(
        "table:\n  title: by size\n  tasks: {maze15: 15x15, maze30: 30x30}\n"
        "  methods: {solution_only: Solution-Only, dualformer: Dualformer}\n"
        "  columns: {test/fast/1_optimal_64: 1-Optimal}\n"
        "  paper: {maze30/dualformer: {test/fast/1_optimal_64: 80}}\n"
        "  figure: {x: test/fast/trace_tokens, y: test/fast/1_optimal_64}\n")
    values = {("maze15", "solution_only"): 40.0, ("maze15", "dualformer"): 90.0,
              ("maze30", "solution_only"): 10.0, ("maze30", "dualformer"): 70.0}
    for (task, method), value in values.items():
        write_record(RunRecord(experiment="by_size", task=task, method=method, seed=1, mode="paper",
                               metrics={"test/fast/1_optimal_64": value, "test/fast/trace_tokens": value / 2},
                               curve=[{"step": 10, "train/loss": 1.0}, {"step": 20, "train/loss": 0.5}],
                               cost=Cost(), config={}), tmp_path / "records")
    written = make_tables.make(tmp_path / "records", tmp_path, configs)
    png = tmp_path / "figures" / "by_size.png"
    assert png in written and png.read_bytes()[:4] == b"\x89PNG", "one point per row: accuracy vs trace length"
    rows = [line for line in (tmp_path / "tables" / "by_size.md").read_text().splitlines()
            if line.startswith("| 15x15") or line.startswith("| 30x30")]
    assert rows == ["| 15x15: Solution-Only | 1 | no LLM | 40.0 |", "| 15x15: Dualformer | 1 | no LLM | 90.0 |",
                    "| 30x30: Solution-Only | 1 | no LLM | 10.0 |",
                    "| 30x30: Dualformer | 1 | no LLM | 70.0 (paper 80) |"]


def write_runs(root, experiment="golden_demo", mode="paper", method="fast", seeds=(1, 2), metrics=None, config=None):
    from harness.records import Cost, RunRecord, write_record

    for seed in seeds:
        write_record(RunRecord(experiment=experiment, task="toy", method=method, seed=seed, mode=mode,
                               metrics=metrics or {"train/first_score": 3.0 + seed, "train/best_score": 1.0 + seed},
                               curve=[{"step": 0, "score": 3.0, "best": 3.0}], cost=Cost(),
                               config={"seed": seed, "mode": mode, **(config or {})}), root)


def test_smoke_quick_and_paper_records_make_separate_labelled_tables(tmp_path):
    records = tmp_path / "records"
    write_runs(records / "paper")
    write_runs(records / "smoke", mode="smoke", seeds=(1, 2, 3))
    write_runs(records / "quick", mode="quick")
    written = {p.name for p in make_tables.make(records, tmp_path, DATA / "configs" / "experiment")}
    assert {"golden_demo.md", "golden_demo.smoke.md", "golden_demo.quick.md"} <= written
    paper = (tmp_path / "tables" / "golden_demo.md").read_text()
    assert "| Fast method | 2 |" in paper, "smoke records are not pooled into the paper row"
    smoke = (tmp_path / "tables" / "golden_demo.smoke.md").read_text()
    assert smoke.startswith("# SMOKE TEST") and "| Fast method | 3 |" in smoke
    assert (tmp_path / "tables" / "golden_demo.quick.md").read_text().startswith("# QUICK LOOK")


def test_a_duplicate_record_is_refused(tmp_path):
    write_runs(tmp_path / "records" / "a", seeds=(1,))
    write_runs(tmp_path / "records" / "b", seeds=(1,))  # the same config and seed, copied
    with pytest.raises(SystemExit, match="repeat one"):
        make_tables.make(tmp_path / "records", tmp_path, DATA / "configs" / "experiment")


def test_records_without_a_table_do_not_stop_the_others_and_unlisted_methods_are_named(tmp_path, capsys):
    write_runs(tmp_path / "records")
    write_runs(tmp_path / "records", method="mystery")
    write_runs(tmp_path / "records", experiment="adhoc")
    written = make_tables.make(tmp_path / "records", tmp_path, DATA / "configs" / "experiment")
    assert {p.name for p in written} == {"golden_demo.md", "golden_demo.csv", "golden_demo.png",
                                         "adhoc.md", "adhoc.csv"}  # records without a block: a comparison
    err = capsys.readouterr().err
    assert "mystery" in err
    assert "Records with no row in this table: `mystery` (2)." in (tmp_path / "tables" / "golden_demo.md").read_text()


def test_success_rates_carry_a_wilson_interval_over_the_test_tasks(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "mazes.yaml").write_text("table:\n  title: mazes\n  methods: {dualformer: Dualformer}\n"
                                        "  columns: {test/fast/1_solved_64: 1-Solved, test/fast/swc: SWC}\n")
    write_runs(tmp_path / "records", experiment="mazes", method="dualformer", seeds=(1,),
               metrics={"test/fast/1_solved_64": 50.0, "test/fast/swc": 0.5},
               config={"task": {"n_test": 50, "limit": None}})
    make_tables.make(tmp_path / "records", tmp_path, configs)
    row = [l for l in (tmp_path / "tables" / "mazes.md").read_text().splitlines() if l.startswith("| Dualformer")]
    assert row == ["| Dualformer | 1 | no LLM | 50.0 [36.6, 63.4] | 0.5 |"], "50 mazes: ±14 points is noise"


def test_curve_metrics_medians_held_points_and_the_protocol_line(tmp_path):
    from harness.records import Cost, RunRecord, write_record

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "stops.yaml").write_text(
        "table:\n  title: stops\n  methods: {m: M}\n  medians: [train/last_score]\n"
        "  curve_metrics: {curve/after_1: {step: 1}, curve/last2: {last: 2}}\n"
        "  columns: {curve/after_1: after 1, curve/last2: last 2, train/last_score: last}\n"
        "  figure: {hold_last: true}\n")
    curves = {1: [4.0, 2.0, 1.0], 2: [0.0], 3: [6.0, 3.0, 3.0]}  # seed 2 was solved at the start
    for seed, scores in curves.items():
        write_record(RunRecord(experiment="stops", task="t", method="m", seed=seed, mode="paper",
                               metrics={"train/last_score": scores[-1]},
                               curve=[{"step": i, "score": v, "best": min(scores[:i + 1])}
                                      for i, v in enumerate(scores)],
                               cost=Cost(), config={"protocol": "paper"}), tmp_path / "records")
    make_tables.make(tmp_path / "records", tmp_path, configs)
    text = (tmp_path / "tables" / "stops.md").read_text()
    # after 1 update: 2, 0 (held), 3; last two: 1.5, 0, 3; last: 1, 0, 3 (median 1)
    assert "| M | 3 | no LLM | 1.7 ± 0.9 | 1.5 ± 0.9 | 1.3 ± 0.9, median 1.0 |" in text
    assert "Protocol: paper" in text
    records = make_tables.hold_last_points(make_tables.load_records(tmp_path / "records"),
                                           {"figure": {"hold_last": True}})
    assert all(len(c) == 3 for c in records["curve"]), "a run that stopped keeps its last point"


def test_tables_can_be_pushed_to_their_experiments_wandb_group(tmp_path):
    from wandb_files import offline_runs

    write_runs(tmp_path / "records")
    make_tables.main(["--results", str(tmp_path / "records"), "--out", str(tmp_path),
                      "--configs", str(DATA / "configs" / "experiment"), "--wandb"])
    [run] = offline_runs(tmp_path)
    assert run.group == "golden_demo" and run.job_type == "tables"
    assert ("paper_table", "table-golden_demo") in run.artifacts
    assert {kind for kind, _ in run.artifacts} >= {"run_table"}, "the table itself, as a wandb.Table"
    [table] = (tmp_path / "wandb").glob("offline-run-*/files/media/table/*.table.json")
    pushed = json.loads(table.read_text())
    column = pushed["columns"].index("mean")
    means = [row[column] for row in pushed["data"]]
    assert 4.5 in means and all(m is None or isinstance(m, float) for m in means), "numbers stay numbers"


def test_columns_keep_their_own_format_and_trained_models_get_no_llm_column(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "mazes.yaml").write_text(
        "table:\n  title: mazes\n  methods: {dualformer: Dualformer}\n  format: '.1f'\n"
        "  formats: {test/auto/swc: '.3f', test/auto/trace_tokens: '.0f'}\n"
        "  columns: {test/auto/1_solved_64: 1-Solved, test/auto/swc: SWC, test/auto/trace_tokens: tokens}\n")
    write_runs(tmp_path / "records", experiment="mazes", method="dualformer", seeds=(1,),
               metrics={"test/auto/1_solved_64": 50.0, "test/auto/swc": 0.5, "test/auto/trace_tokens": 617.4},
               config={"task": {"n_test": 50}, "model": {"preset": "s"}})
    make_tables.make(tmp_path / "records", tmp_path, configs)
    text = (tmp_path / "tables" / "mazes.md").read_text()
    assert "| method | n | 1-Solved | SWC | tokens |" in text, "a model that never asks an LLM: no LLM column"
    assert "| Dualformer | 1 | 50.0 [36.6, 63.4] | 0.500 | 617 |" in text


def test_tables_and_figures_rebuild_byte_identically(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        make_tables.make(DATA / "records", out, DATA / "configs" / "experiment")
    for sub in ("tables", "figures"):
        for path in sorted((first / sub).iterdir()):
            assert path.read_bytes() == (second / sub / path.name).read_bytes(), path.name


def test_make_tables_builds_the_textgrad_call_count_figure(tmp_path, monkeypatch):
    import csv

    monkeypatch.setitem(make_tables.CALL_COUNT_SIZES, "max_chain", 4)  # 1, 2, 4 bundled operations
    monkeypatch.setitem(make_tables.CALL_COUNT_SIZES, "max_batch", 2)
    make_tables.main(["--results", str(DATA / "records"), "--out", str(tmp_path),
                      "--configs", str(DATA / "configs" / "experiment"), "--calls"])
    rows = list(csv.DictReader((tmp_path / "figures" / "textgrad_calls.csv").open()))
    calls = {(r["method"], r["graph"], int(r["size"])): int(r["calls"]) for r in rows}
    assert {v for (m, _, _), v in calls.items() if m == "OptoPrime"} == {1}, "one call per step, whatever the graph"
    assert [calls[("TextGrad", "chain", k)] for k in (1, 2, 4)] == [2, 3, 5], "one per edge, plus the update"
    assert [calls[("TextGrad", "batch", b)] for b in (1, 2)] == [4, 8]
    assert (tmp_path / "figures" / "textgrad_calls.png").read_bytes()[:4] == b"\x89PNG"


def test_the_call_counts_are_built_with_results_not_with_every_smoke_table(tmp_path):
    assert make_tables.wants_calls(None, make_tables.DEFAULT_RESULTS, None), "python scripts/make_tables.py builds them"
    assert make_tables.wants_calls(None, make_tables.DEFAULT_RESULTS, ["table2_textgrad"])
    assert not make_tables.wants_calls(None, make_tables.DEFAULT_RESULTS, ["fig5b_traffic"])
    assert not make_tables.wants_calls(None, tmp_path / "runs", None), "a smoke sweep's tables: no loopback count"
    assert make_tables.wants_calls(True, tmp_path / "runs", ["fig5b_traffic"]) and not \
        make_tables.wants_calls(False, make_tables.DEFAULT_RESULTS, None)


def test_the_caption_names_only_what_the_table_shows(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "mazes.yaml").write_text("table:\n  title: mazes\n  methods: {dualformer: Dualformer, other: Other}\n"
                                        "  columns: {test/auto/1_solved_64: 1-Solved}\n")
    write_runs(tmp_path / "records", experiment="mazes", method="dualformer", seeds=(1,),
               metrics={"test/auto/1_solved_64": 50.0}, config={"task": {"n_test": 50}, "model": {"preset": "s"}})
    make_tables.make(tmp_path / "records", tmp_path, configs)
    text = (tmp_path / "tables" / "mazes.md").read_text()
    assert "(paper x)" not in text, "no paper value in this table: the caption does not promise one"
    assert "Rows with n = 0 have no records yet." in text and "| Other | 0 | – |" in text


def test_a_table_takes_rows_another_experiment_already_ran_under_the_same_config(tmp_path):
    """Table 5.4 shows Searchformer (step 0) and Dualformer in auto mode: Table 5.3's very runs
    (same config hash), read from its records instead of evaluated a second time."""
    from harness.records import Cost, RunRecord, write_record

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "t54.yaml").write_text(
        "table:\n  title: bootstrap\n  methods: {searchformer: Step 0, searchformer_step1: Step 1, dualformer: Dualformer}\n"
        "  columns: {test/auto/1_optimal_64: 1-Optimal}\n  rows_from: {t53: [searchformer, dualformer]}\n")
    (configs / "t53.yaml").write_text("table:\n  title: auto\n  methods: {searchformer: CT, dualformer: DF}\n"
                                      "  columns: {test/auto/1_optimal_64: 1-Optimal}\n")
    runs = [("t53", "searchformer", 1, 10.0), ("t53", "dualformer", 1, 60.0), ("t53", "dualformer", 2, 70.0),
            ("t54", "searchformer_step1", 1, 20.0), ("t53", "searchformer", 1, 99.0), ("t53", "dualformer", 1, 0.0)]
    for i, (experiment, method, seed, value) in enumerate(runs):
        # the last: a Sokoban row of t53, a task this mazes-only table does not cover
        write_record(RunRecord(experiment=experiment, task="sokoban_mini" if i == 5 else "maze7", method=method, seed=seed,
                               mode="smoke" if i == 4 else "paper", metrics={"test/auto/1_optimal_64": value},
                               curve=[], cost=Cost(), config={"task": {"n_test": 10 if i == 4 else 100}, "model": {}}),
                     tmp_path / "records")
    make_tables.make(tmp_path / "records", tmp_path, configs, ["t54"])
    table = (tmp_path / "tables" / "t54.md").read_text()
    assert "| Step 0 | 1 | 10.0 [" in table, "the other experiment's record, same mode only (not the smoke one)"
    assert "| Dualformer | 2 | 65.0 ± 5.0 [" in table and "| Step 1 | 1 | 20.0 [" in table, "mazes only"
    assert "Rows Step 0, Dualformer: the records of experiment `t53`" in table, "the table says where they come from"
    assert not (tmp_path / "tables" / "t53.smoke.md").exists(), "only the asked experiment's tables"


def test_rows_from_an_experiment_with_no_records_is_one_clear_error(tmp_path):
    from harness.records import Cost, RunRecord, write_record

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "t54.yaml").write_text("table:\n  title: b\n  methods: {searchformer: S}\n"
                                      "  columns: {m: M}\n  rows_from: {t53: [searchformer]}\n")
    write_record(RunRecord(experiment="t54", task="maze7", method="x", seed=1, mode="paper", metrics={"m": 1.0},
                           curve=[], cost=Cost(), config={}), tmp_path / "records")
    with pytest.raises(SystemExit, match="rows_from.*t53.*no records"):
        make_tables.make(tmp_path / "records", tmp_path, configs, ["t54"])


def test_tables_count_each_methods_llm_requests_and_tokens_per_role(tmp_path):
    """Methods spend very different budgets (GEPA's reflections, k candidates per step): the table
    says what each spent, per role, beside its score; methods without roles get no section."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "spend.yaml").write_text("table:\n  title: spend\n  methods: {trace: Trace, gepa: GEPA, adam: Adam}\n"
                                        "  columns: {test/acc: acc}\n")
    roles = {"trace": {"optimizer": (15, 30000, 900), "student": (100, 5000, 2000)},
             "gepa": {"reflection": (8, 20000, 1600), "student": (300, 15000, 6000)}}
    for method, spent in roles.items():
        for seed, scale in ((1, 1), (2, 3)):
            metrics = {"test/acc": 50.0, "train/steps": 15}
            for role, (requests, prompt, completion) in spent.items():
                metrics.update({f"llm/{role}/requests": requests * scale, f"llm/{role}/prompt_tokens": prompt * scale,
                                f"llm/{role}/completion_tokens": completion * scale})
            write_runs(tmp_path / "records", "spend", method=method, seeds=(seed,), metrics=metrics)
    write_runs(tmp_path / "records", "spend", method="adam", metrics={"test/acc": 40.0})
    make_tables.make(tmp_path / "records", tmp_path, configs)
    text = (tmp_path / "tables" / "spend.md").read_text()
    section = text.split("LLM requests and tokens per run")[1]
    assert "| Trace | optimizer | 30 | 60000 | 1800 | 2.0 |" in section, "means over records; requests per step"
    assert "| GEPA | reflection | 16 | 40000 | 3200 | 1.1 |" in section
    assert "| GEPA | all roles | 616 | 70000 | 15200 | 41.1 |" in section
    assert "Adam" not in section

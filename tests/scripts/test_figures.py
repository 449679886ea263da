"""What each figure of make_tables shows, read off the figure's own data and matplotlib artists."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from support import CONFIGS

from harness import figures
from harness.records import Cost, RunRecord, load_records, write_record
from harness.report import TableSpec, wilson

FAST = "test/fast/1_optimal_64"
TOKENS = "test/fast/trace_tokens"
BLOCK = {"title": "Dualformer Table 5.1 at mini scale: fast mode vs Solution-Only, % of test tasks (64 samples), "
                  "a title long enough to need wrapping",
         "tasks": {"maze7": "7x7 maze", "sokoban_mini": "Sokoban"},
         "methods": {"solution_only": "Solution-Only", "dualformer": "Dualformer (fast)"},
         "columns": {FAST: "1-Optimal", TOKENS: "trace tokens"},
         "paper": {"maze7/dualformer": {FAST: 80.0, TOKENS: 10.0}, "maze7/solution_only": {FAST: 30.0},
                   "sokoban_mini/solution_only": {FAST: 86.8, TOKENS: 0.0}},
         "figure": {"x": TOKENS, "y": FAST, "training": {"curve_key": "train/loss", "ylabel": "training loss"}}}


def record(root: Path, task: str, method: str, seed: int, metrics: dict, n_test: int | None = 50) -> None:
    task_config = {"n_test": n_test} if n_test is not None else {}
    write_record(RunRecord(experiment="t51", task=task, method=method, seed=seed, mode="paper", metrics=metrics,
                           curve=[{"step": 10, "train/loss": 2.0}, {"step": 20, "train/loss": 1.0}], cost=Cost(),
                           config={"task": task_config, "model": {"preset": "mini"}}), root)


@pytest.fixture
def dualformer_runs(tmp_path):
    # maze7/dualformer: a new record with its own interval; maze7/solution_only: two older seeds
    # without one (computed from the rate and 50 test tasks); sokoban/dualformer: no task count.
    record(tmp_path, "maze7", "dualformer", 1, {FAST: 70.0, f"{FAST}_ci_low": 56.2, f"{FAST}_ci_high": 80.9,
                                                TOKENS: 0.0})
    record(tmp_path, "maze7", "solution_only", 1, {FAST: 50.0, TOKENS: 2.0})
    record(tmp_path, "maze7", "solution_only", 2, {FAST: 60.0, TOKENS: 4.0})
    record(tmp_path, "sokoban_mini", "dualformer", 1, {FAST: 90.0, TOKENS: 6.0}, n_test=None)
    runs = load_records(tmp_path)
    runs = runs.assign(method=runs["task"] + "/" + runs["method"])
    return runs, TableSpec.from_block(BLOCK, runs)


def test_a_dualformer_table_figure_is_1_optimal_against_trace_tokens_with_wilson_intervals(dualformer_runs):
    runs, spec = dualformer_runs
    points = {p.row: p for p in figures.result_points(runs, spec)}
    assert set(points) == {"maze7/dualformer", "maze7/solution_only", "sokoban_mini/dualformer"}, "no records: no point"
    new = points["maze7/dualformer"]
    assert (new.y, new.x, new.n, new.low, new.high) == (70.0, 0.0, 1, 56.2, 80.9), "the record's own interval"
    old = points["maze7/solution_only"]
    assert old.n == 2 and old.y == 55.0 and old.x == 3.0 and old.x_sem == pytest.approx(1.0)
    assert (old.low, old.high) == pytest.approx(wilson(55, 100)), "pooled over both seeds' 50 test tasks"
    assert old.seeds_y == [50.0, 60.0], "the spread: each seed is drawn"
    assert math.isnan(points["sokoban_mini/dualformer"].low), "no task count: no interval, never an invented one"

    fig = figures.results_figure(points.values(), spec)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("trace tokens") and ax.get_ylabel().startswith("1-Optimal")
    bars = {c.get_label(): c for c in ax.containers}
    bar = bars["7x7 maze: Dualformer (fast) (n=1)"]
    segment = bar.lines[2][-1].get_segments()[0]  # the y error bar
    assert segment[0][1] == pytest.approx(56.2) and segment[1][1] == pytest.approx(80.9)
    assert "7x7 maze: Solution-Only (n=2)" in bars
    caption = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "Wilson 95%" in caption and "No interval: Sokoban: Dualformer (fast)" in caption
    assert "Not run here: Sokoban: Solution-Only" in caption
    assert "gives 1-Optimal without trace tokens, its value is in the table only" in caption, "maze7/solution_only"
    # The paper's point where it gives both numbers: hollow, in the row's colour.
    paper = [c for c in ax.collections if c.get_label() == "7x7 maze: Dualformer (fast), paper"]
    assert paper and np.allclose(paper[0].get_offsets(), [[10.0, 80.0]])
    assert paper[0].get_facecolors().size == 0 or paper[0].get_facecolors()[0][3] == 0, "hollow marker"
    labels = {c.get_label() for c in ax.collections}
    assert "Sokoban: Solution-Only, paper (not run here)" in labels, "the paper's row shows without ours"
    assert not any(label.startswith("7x7 maze: Solution-Only, paper") for label in labels), "no x in the paper: none"
    title = fig.get_suptitle()
    assert "\n" in title and all(len(line) <= figures.title_chars(fig) for line in title.split("\n")), "fits"


def test_the_table_figure_and_the_training_curve_have_their_own_names(dualformer_runs, tmp_path):
    runs, spec = dualformer_runs
    written = figures.table_figures(runs, spec, tmp_path / "t51.png")
    assert [p.name for p in written] == ["t51.png", "t51_training.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in written)
    fig = figures.training_figure(runs, spec)
    assert fig.axes[0].get_ylabel() == "training loss" and fig.axes[0].get_xlabel() == "step"


def test_the_training_figure_draws_the_held_out_curve_beside_the_loss(tmp_path):
    """An undertrained model shows as a flat held-out 1-Optimal curve, next to its loss."""
    held = "eval/fast/1_optimal_4"
    for seed, scores in ((1, [10.0, 30.0]), (2, [20.0, 50.0])):
        write_record(RunRecord(experiment="t51", task="maze7", method="dualformer", seed=seed, mode="paper",
                               metrics={}, cost=Cost(), config={},
                               curve=[{"step": 10, "train/loss": 2.0}, {"step": 10, held: scores[0]},
                                      {"step": 20, "train/loss": 1.0}, {"step": 20, held: scores[1]}]), tmp_path)
    block = {**BLOCK, "figure": {**BLOCK["figure"], "training": {
        "curve_key": "train/loss", "ylabel": "training loss", "eval_key": held, "eval_ylabel": "held-out 1-Optimal"}}}
    runs = load_records(tmp_path)
    runs = runs.assign(method=runs["task"] + "/" + runs["method"])
    fig = figures.training_figure(runs, TableSpec.from_block(block, runs))
    loss, heldout = fig.axes[:2]
    assert heldout.get_ylabel() == "held-out 1-Optimal" and heldout.get_xlabel() == "step"
    (line,) = heldout.get_lines()
    assert list(line.get_xdata()) == [10, 20] and list(line.get_ydata()) == [15.0, 40.0], "mean over seeds"
    assert list(loss.get_lines()[0].get_ydata()) == [2.0, 1.0], "the loss panel keeps only loss points"
    no_eval = runs.assign(curve=[[p for p in c if held not in p] for c in runs["curve"]])
    assert len(figures.training_figure(no_eval, TableSpec.from_block(block, no_eval)).axes) == 1, "no empty panel"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("experiment/table5_[1-4]_*mini.yaml")), ids=lambda p: p.stem)
def test_every_mini_table_draws_the_held_out_curve_of_its_mode(path):
    block = OmegaConf.to_container(OmegaConf.load(path))["table"]
    mode = next(iter(block["columns"])).split("/")[1]
    assert block["figure"]["training"]["eval_key"] == f"eval/{mode}/1_optimal_4", "model.eval_samples is 4"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("experiment/table5_[1-4]_*.yaml")), ids=lambda p: p.stem)
def test_every_dualformer_table_figure_is_its_results_figure(path):
    block = OmegaConf.to_container(OmegaConf.load(path))["table"]
    mode = next(iter(block["columns"])).split("/")[1]
    assert block["figure"]["x"] == f"test/{mode}/trace_tokens" and block["figure"]["y"] == f"test/{mode}/1_optimal_64"
    assert "curve_key" not in block["figure"], "a training curve only as <table>_training.png"


def curve_runs(tmp_path):
    for method, scores in {"gp": [110.0, 300.0, 270.0], "pso": [110.0, 200.0, 270.0]}.items():
        for seed in (1, 2):
            write_record(RunRecord(experiment="f5b", task="traffic", method=method, seed=seed, mode="paper",
                                   metrics={}, curve=[{"step": i, "score": s, "best": min(scores[:i + 1])}
                                                      for i, s in enumerate(scores)], cost=Cost(), config={}),
                         tmp_path)
    block = {"title": "Figure 5b: traffic", "methods": {"gp": "GP", "pso": "PSO", "optoprime": "Trace"},
             "columns": {"train/last_score": "last"},
             "figure": {"paper_points": {"gp": {0: 110, 2: 270}, "pso": {0: 110, 2: 270},
                                         "optoprime": {0: 110, 1: 43, 2: 41}}}}
    runs = load_records(tmp_path)
    return runs, TableSpec.from_block(block, runs)


def test_paper_points_of_every_method_stay_visible_and_a_paper_curve_is_a_line(tmp_path):
    runs, spec = curve_runs(tmp_path)
    fig = figures.curves_figure(runs, spec)
    current = fig.axes[0]
    marks = {c.get_label(): c for c in current.collections if c.get_label().endswith(", paper")}
    gp, pso = marks["GP, paper"], marks["PSO, paper"]
    assert not np.allclose(gp.get_offsets(), pso.get_offsets()), "GP's points are not hidden under PSO's"
    for mark in (gp, pso):
        assert mark.get_facecolors().size == 0 or mark.get_facecolors()[0][3] == 0, "hollow: what lies under shows"
    lines = {line.get_label(): line for line in current.get_lines()}
    trace = lines["Trace, paper (not run here)"]
    assert len(trace.get_xdata()) == 3 and trace.get_linestyle() not in ("None", ""), "the paper's curve shape"
    assert fig.legends and current.get_legend() is None, "the legend sits outside the data"


def test_titles_are_wrapped_to_the_figure_width():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(7, 4))
    text = figures.fit_title("word " * 60, fig)
    assert len(text.split("\n")) > 1 and all(len(line) <= figures.title_chars(fig) for line in text.split("\n"))
    plt.close(fig)

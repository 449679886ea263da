"""Modes mean what they say (issue 13, defect 8): the command line wins over a mode's sizes, the
composed config is the one that runs, smoke shrinks any run, quick never multiplies training."""
from __future__ import annotations

from support import compose_run, sweep_jobs


def test_the_command_line_wins_over_the_smoke_sizes(run_dir):
    cfg = compose_run("train", ["experiment=table5_1_fast_mini", "model=dualformer", "mode=smoke",
                                "model.train.steps=60"], run_dir)
    assert cfg.model.train.steps == 60, "the command line said 60"
    assert cfg.model.preset == "tiny" and cfg.task.n_train == 16, "the rest of smoke's sizes are in the composed config"
    assert "smoke" not in cfg, "no block left to merge after the fact"


def test_smoke_shrinks_a_training_run_outside_an_experiment(run_dir):
    cfg = compose_run("train", ["task=maze7", "model=dualformer", "mode=smoke"], run_dir)
    assert cfg.model.train.steps <= 10 and cfg.model.preset == "tiny" and cfg.task.n_test <= 5
    paper = compose_run("train", ["task=maze7", "model=dualformer"], run_dir)
    assert paper.model.train.steps >= 1000


def test_quick_never_multiplies_a_training_experiment(run_dir):
    paper = sweep_jobs(compose_run("train", ["experiment=table5_1_fast_mini"], run_dir))
    quick = sweep_jobs(compose_run("train", ["experiment=table5_1_fast_mini", "mode=quick"], run_dir))
    assert len(quick) <= len(paper)
    optimize = sweep_jobs(compose_run("optimize", ["experiment=fig5b_traffic", "mode=quick"], run_dir))
    assert {job for jobs in optimize for job in jobs if job.startswith("seed=")} == {f"seed={s}" for s in range(42, 47)}

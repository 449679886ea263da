"""Every experiment runs in process in smoke mode, job by job as Hydra's sweeper would launch it,
and writes a record that reads back."""
from __future__ import annotations

import math

import pytest

from omegaconf import OmegaConf

from harness import optimize, train
from harness.records import load_records, read_record
from support import CONFIGS, compose_run, config_names, sweep_jobs


def runner_of(experiment: str) -> str:
    """`runner: train` in an experiment file means `python -m harness.train`; else optimize."""
    return OmegaConf.load(CONFIGS / "experiment" / f"{experiment}.yaml").get("runner", "optimize")


@pytest.mark.parametrize("experiment", config_names("experiment"))
def test_experiment_smoke_runs_write_records(experiment, tmp_path):
    root = runner_of(experiment)
    group = "model" if root == "train" else "optimizer"
    base = [f"experiment={experiment}", "mode=smoke", "logger=none", "progress=false"]
    jobs = sweep_jobs(compose_run(root, base, tmp_path))
    assert jobs
    for i, job in enumerate(jobs):
        run_dir = tmp_path / str(i)
        cfg = compose_run(root, base + job, run_dir)
        record = (train if root == "train" else optimize).run(cfg)
        path = run_dir / record.filename
        assert path.exists(), "smoke runs record into the Hydra run folder"
        back = read_record(path)
        assert back.experiment == experiment and back.mode == "smoke"
        assert back.method == (cfg.get("method") or cfg.hydra.runtime.choices[group])
        assert back.config["task"]["limit"] == 3
        if root == "train":
            split = OmegaConf.select(cfg, "task.scored_split") or "test"  # a selection run scores validation tasks
            assert back.metrics and all(k.startswith(f"{split}/") for k in back.metrics)
            continue
        assert 1 <= len(back.curve) <= 3
        assert math.isfinite(back.metrics["train/best_score"])
        assert (run_dir / "progress.jsonl").read_text().count("\n") == len(back.curve)
    frame = load_records(tmp_path)
    assert len(frame) == len(jobs)
    if "method" not in cfg:  # rows named by their group choice
        assert set(frame["method"]) == {dict(kv.split("=") for kv in job)[group] for job in jobs}
    else:
        assert frame["method"].nunique() == len(jobs), "every grid point is its own row"


@pytest.mark.parametrize("experiment", ["fig5a_numeric", "fig6_reach", "fig6_push", "fig6_pick_place"])
def test_paper_protocol_runs_masked_and_numeric_trace_without_memory(experiment, tmp_path):
    base = [f"experiment={experiment}", "logger=none"]
    cfg = compose_run("optimize", base, tmp_path)
    assert cfg.protocol == "paper", "the paper's protocol is the default and the record carries it"
    methods = {dict(kv.split("=") for kv in job)["optimizer"]: job for job in sweep_jobs(cfg)}
    for method, job in methods.items():  # one job per method: its optimizer does not vary with the seed
        optimizer = compose_run("optimize", base + job, tmp_path).optimizer
        if "masked" in method or (experiment == "fig5a_numeric" and method != "adam"):
            assert optimizer.optimizer.memory_size == 0, f"{experiment}: {method} is memoryless in the paper"

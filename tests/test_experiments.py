"""Every experiment runs in process in smoke mode, job by job as Hydra's sweeper would launch it,
and writes a record that reads back."""
from __future__ import annotations

import math

import pytest

from harness.optimize import run
from harness.records import load_records, read_record
from support import compose_run, config_names, sweep_jobs


@pytest.mark.parametrize("experiment", config_names("experiment"))
def test_experiment_smoke_runs_write_records(experiment, tmp_path):
    base = [f"experiment={experiment}", "mode=smoke", "logger=none", "progress=false"]
    jobs = sweep_jobs(compose_run("optimize", base, tmp_path))
    assert jobs
    for i, job in enumerate(jobs):
        run_dir = tmp_path / str(i)
        cfg = compose_run("optimize", base + job, run_dir)
        record = run(cfg)
        path = run_dir / record.filename
        assert path.exists(), "smoke runs record into the Hydra run folder"
        back = read_record(path)
        assert back.experiment == experiment and back.mode == "smoke"
        assert back.method == cfg.hydra.runtime.choices.optimizer
        assert 1 <= len(back.curve) <= 3
        assert math.isfinite(back.metrics["train/best_score"])
        assert back.config["task"]["limit"] == 3
        assert (run_dir / "progress.jsonl").read_text().count("\n") == len(back.curve)
    frame = load_records(tmp_path)
    assert len(frame) == len(jobs)
    assert set(frame["method"]) == {dict(kv.split("=") for kv in job)["optimizer"] for job in jobs}

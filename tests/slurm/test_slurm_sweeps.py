"""Sweeps on the real local SLURM cluster (tests/slurm/conftest.py): the happy path, and a job
cancelled mid-run, which leaves a failure record while the sweep waits for the others."""
from __future__ import annotations

import json
import subprocess
import time

from harness.records import FAILURE_SUFFIX, load_records
from slurm.jobs import SLOW, job_env, sweep_command, wait_for_steps
from support import ROOT

def test_a_sweep_runs_as_one_array_and_reports_as_jobs_end(slurm_env, tmp_path):
    results = tmp_path / "results"
    result = subprocess.run(sweep_command("optimize", "task=numeric", "optimizer=gp", "task.limit=3", "seed=1,2,3",
                                          f"results_dir={results}", f"hydra.sweep.dir={tmp_path / 'sweep'}"),
                            cwd=ROOT, env=job_env(slurm_env), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(load_records(results)["seed"]) == [1, 2, 3]
    assert "sweep: 3/3 jobs done" in result.stdout, result.stdout  # the submitter's console, not a job log
    notes = list((tmp_path / "sweep" / ".harness").glob("sweep-*/job*.json"))
    assert len(notes) == 3, "the sweep's notes live in its own (shared) folder, not the submitter's /tmp"


def test_a_cancelled_job_leaves_a_failure_record_and_the_sweep_waits_for_the_rest(slurm_cluster, slurm_env, tmp_path):
    """scancel of one job ended the sweep with a raw UncompletedJobError: no failure record, no
    summary, the other jobs left running unwatched; the job itself went on until SIGKILL."""
    results, sweep = tmp_path / "results", tmp_path / "sweep"
    proc = subprocess.Popen(sweep_command("optimize", *SLOW, "task.limit=400,6", f"results_dir={results}",
                                          f"hydra.sweep.dir={sweep}"),
                            cwd=ROOT, env=job_env(slurm_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        journal = wait_for_steps(sweep, 2)
        slurm_cluster.run("scancel", slurm_cluster.array_task(0))
        out, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 1, out + err
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("error: 1 of 2 jobs failed") and "SIGTERM" in summary, err
    assert "Traceback" not in err and "UncompletedJobError" not in err, err
    assert list(load_records(results)["train/steps"]) == [6], "the other job ran to its end"
    failure = json.loads(next(results.glob(f"*{FAILURE_SUFFIX}")).read_text())
    steps = journal.read_text().count("\n")
    assert failure["reason"].startswith("stopped by SIGTERM") and 2 <= failure["step"] == steps < 400, failure
    time.sleep(2)
    assert journal.read_text().count("\n") == steps, "the cancelled job stopped at once"

"""The command line as a user meets it: one-line errors, and sweeps that survive being killed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.records import load_records, read_record
from support import ROOT

ENV = {**os.environ, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore"}


def optimize(*overrides: str, timeout: int = 120) -> subprocess.CompletedProcess:
    flags = [o for o in overrides if o.startswith("-")]  # Hydra wants flags before overrides
    return subprocess.run([sys.executable, "-m", "harness.optimize", *flags, "logger=none", "progress=false",
                           *[o for o in overrides if not o.startswith("-")]], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("override, says", [
    ("task=nosuch", "Could not find 'task/nosuch' (available: "),
    ("optimizer=pso optimizer.n_particles=-1", "optimizer.n_particles must be >= 1, got -1"),
    ("task.init_green=[15,95]", "task.init_green: NS green 95 is outside [15, 90]"),
    ("optimizer.nosuch=1", "Could not override 'optimizer.nosuch'"),
    ("seed=abc", "seed: expected an integer, got 'abc'"),
])
def test_bad_input_ends_with_one_clear_error_line(override, says, tmp_path):
    result = optimize(*override.split(), f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr
    if override == "task=nosuch":
        assert "numeric" in lines[0] and "traffic" in lines[0], "the line names the choices"


def test_killed_multirun_keeps_finished_records_and_resumes(tmp_path):
    results = tmp_path / "results"
    sweep = ["optimizer=scats,gp", "seed=42,43", "task.limit=6", f"results_dir={results}",
             f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    proc = subprocess.Popen([sys.executable, "-m", "harness.optimize", "-m", "logger=none", "progress=false",
                             *sweep], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(results.glob("*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-sweep, as a pre-empted job would die
    proc.wait()
    finished = sorted(results.glob("*.json"))
    assert 2 <= len(finished) < 4, "killed after two of four jobs"
    for path in finished:
        json.loads(path.read_text())  # whole files only: written by rename
    before = {p.name: read_record(p).created for p in finished}

    result = optimize("-m", *sweep, timeout=300)  # rerun the same sweep: finished jobs are skipped
    assert result.returncode == 0, result.stderr
    skipped = len(finished)
    assert f"sweep: {skipped}/4 jobs done ({skipped} skipped: records exist)" in result.stdout, result.stdout
    frame = load_records(results)
    assert sorted(zip(frame["method"], frame["seed"])) == [("gp", 42), ("gp", 43), ("scats", 42), ("scats", 43)]
    for name, created in before.items():
        assert read_record(results / name).created == created, "a finished record is not redone"
    assert sorted(frame["seed"]) == [42, 42, 43, 43]
    assert not list(results.glob(".*")), "no temp files"


def test_a_failed_job_writes_a_failure_record_and_the_sweep_goes_on(tmp_path):
    results = tmp_path / "results"
    result = optimize("-m", "optimizer=scats", "task.limit=-5,1", "seed=42,43", f"results_dir={results}",
                      f"hydra.sweep.dir={tmp_path / 'sweep'}", timeout=300)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 2 of 4 jobs failed") and "task.limit" in last, result.stderr
    assert sorted(load_records(results)["seed"]) == [42, 43], "the jobs after the failures still ran"
    failures = sorted(results.glob("*.failed.json"))
    assert len(failures) == 2
    failure = json.loads(failures[0].read_text())
    assert failure["status"] == "failed" and "task.limit" in failure["reason"] and failure["step"] == 0
    assert failure["config"]["task"]["limit"] == -5
    # A progress line after every job, with the sweep's size (plain text: readable in SLURM logs).
    assert "sweep: 1/4 jobs done" in result.stdout and "sweep: 4/4 jobs done (2 failed)" in result.stdout
    assert "left" in result.stdout.split("sweep: 1/4 jobs done")[1].splitlines()[0]


@pytest.mark.parametrize("override, says", [
    ("optimizer=pso optimizer.n_particles=abc", "optimizer.n_particles: expected int, got 'abc'"),
    ("task.limit=ten", "task.limit: expected int, got 'ten'"),
    ("task=maze7 task.data_dir=/nonexistent", "task.data_dir: /nonexistent has no manifest.json"),
    ("llm=openai optimizer=optoprime llm.max_concurrency=0", "max_concurrency >= 1"),
    ("results_dir=/proc/forbidden", "results_dir: cannot write to /proc/forbidden"),
])
def test_a_wrong_type_or_place_is_one_error_line_before_the_run(override, says, tmp_path):
    result = optimize(*override.split(), f"hydra.run.dir={tmp_path}")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and says in lines[0], result.stderr
    assert not (tmp_path / "progress.jsonl").exists(), "refused before the run"


def test_a_replay_miss_fails_its_job_only(tmp_path):
    """One job's LLM failure (a request never recorded) no longer aborts the jobs after it."""
    results = tmp_path / "results"
    from trace_core.llm import CachedLLM, ScriptedLLM  # a cache of this model, not of this run's requests

    with CachedLLM(ScriptedLLM(replies=["x"]), tmp_path / "empty.sqlite", model="never-recorded") as other:
        other.complete([{"role": "user", "content": "another run's request"}])
    result = optimize("-m", "experiment=fig5a_numeric", "optimizer=optoprime,adam", "seed=0", "llm=replay",
                      f"llm.cache_path={tmp_path / 'empty.sqlite'}", "llm.model=never-recorded",
                      f"results_dir={results}", f"hydra.sweep.dir={tmp_path / 'sweep'}", timeout=300)
    assert result.returncode == 1 and "1 of 2 jobs failed" in result.stderr.strip().splitlines()[-1], result.stderr
    # A replay records in its own run folder (harness.llm_run), never into results/.
    assert list(load_records(tmp_path / "sweep")["method"]) == ["adam"], "the job after the failed one ran"
    [failure] = results.glob("*.failed.json")
    assert failure.name.startswith("numeric__optoprime__seed0__")

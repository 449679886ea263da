"""Clean stops and folders (issue 25, defect 7): a stopped sweep stops its workers, every
invocation gets its own run folder, records share the umask with tables."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import ROOT, compose_run

ENV = {**os.environ, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore",
       "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
SLOW = ["task=numeric", "+task.delay=0.5", "task._target_=toys.slow_numeric", "optimizer=gp", "task.limit=400"]


def test_records_are_written_with_the_umask_like_tables(tmp_path):
    """Records were 0600 (mkstemp's mode) while tables were 0644."""
    from harness.records import write_atomic

    old = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "r.json", "{}")
        table = tmp_path / "t.md"
        table.write_text("x")
    finally:
        os.umask(old)
    assert oct(path.stat().st_mode & 0o777) == oct(table.stat().st_mode & 0o777) == oct(0o644)


def test_two_sweeps_started_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    """Two sweeps started in one second shared `runs/multirun/<day>/<time>` and interleaved their
    progress.jsonl; the folder is now claimed (mkdir) by the first, the second gets a suffix."""
    import harness.runs  # noqa: F401 (registers the unique_dir resolver, as every entry point does)

    monkeypatch.chdir(tmp_path)  # run folders are made under the working folder
    first = compose_run("optimize", [], tmp_path / "out")
    second = compose_run("optimize", [], tmp_path / "out")
    assert first.hydra.sweep.dir != second.hydra.sweep.dir
    assert first.hydra.run.dir != second.hydra.run.dir
    assert first.hydra.sweep.dir == first.hydra.sweep.dir, "one invocation resolves to one folder"
    assert Path(first.hydra.sweep.dir).resolve().is_relative_to(tmp_path) and Path(first.hydra.sweep.dir).is_dir()


def _children(pid: int) -> set[int]:
    """Every descendant of `pid` (the loky workers and their helpers)."""
    found, frontier = set(), {pid}
    while frontier:
        parent = frontier.pop()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            child = int(stat.parent.name)
            if int(fields[1]) == parent and child not in found:
                found.add(child)
                frontier.add(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_joblib_sweep_stops_its_workers(tmp_path, signum):
    """SIGTERM to the command left its loky workers computing (two more records 28 s and 40 s
    later); now the workers go with it, and a stopped job says so in a failure record."""
    results = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "harness.optimize", "-m", "logger=none", "progress=false",
                             *SLOW, "seed=1,2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                             f"results_dir={results}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                            cwd=ROOT, env=ENV, stdout=(tmp_path / "out.txt").open("w"), stderr=subprocess.STDOUT)
    workers: set[int] = set()
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list((tmp_path / "sweep").glob("*/progress.jsonl"))) < 2:
            time.sleep(0.2)
        workers = _children(proc.pid)
        assert workers, "the sweep runs its jobs in worker processes"
        proc.send_signal(signum)
        proc.wait(timeout=60)  # (the workers hold the output open: no pipe here)
        deadline = time.time() + 20
        while time.time() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.2)
        out = (tmp_path / "out.txt").read_text()
        assert not any(_alive(pid) for pid in workers), f"workers still running after the sweep stopped:\n{out}"
        assert proc.returncode == 128 + signum, out
        assert out.strip().splitlines()[-1].startswith("error: sweep stopped by"), out
        assert not list(results.glob("*__seed*[0-9].json")), "no record from a stopped job"
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_resumed_training_run_journals_each_step_once(tmp_path):
    """A job killed between checkpoints and requeued ran the steps after its checkpoint again and
    appended them to the same progress.jsonl (a failure record then counted 164 steps where 83 ran)."""
    import json

    from harness.loggers import NullLogger
    from harness.train import CurveRecorder

    journal = tmp_path / "progress.jsonl"
    first = CurveRecorder(NullLogger(), journal)
    for step in range(1, 11):  # killed after step 10; the last checkpoint was at step 6
        first.log({"train/loss": 1.0 / step}, step=step)
    resumed = CurveRecorder(NullLogger(), journal)
    resumed.restore([{"step": s, "train/loss": 1.0 / s} for s in range(1, 7)], seconds=5.0)
    for step in range(7, 13):
        resumed.log({"train/loss": 1.0 / step}, step=step)
    resumed.finish()
    assert [json.loads(line)["step"] for line in journal.read_text().splitlines()] == list(range(1, 13))


def test_a_restarted_optimize_run_journals_afresh(tmp_path):
    """A requeued optimize job starts again from step 0 in the same run folder: its journal (and the
    step count of a failure record, read from it) held both attempts."""
    from hydra.utils import instantiate

    from harness.loggers import NullLogger
    from harness.optimize import optimize

    cfg = compose_run("optimize", ["task=numeric", "task._target_=toys.slow_numeric", "+task.delay=0",
                                   "optimizer=gp", "task.limit=4", "seed=1"], tmp_path)
    journal = tmp_path / "progress.jsonl"
    for _attempt in range(2):
        task = instantiate(cfg.task)
        optimize(task, instantiate(cfg.optimizer)(task=task), NullLogger(), journal, show_progress=False)
    assert journal.read_text().count("\n") == 4

"""How the SLURM tier submits harness sweeps: the command, the environment sbatch passes on to the
jobs, and a wait for a job to be mid-run."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from support import ROOT

# Jobs small enough for a 2-core machine: 1 CPU, 1 GB, a limit far above what they need.
LAUNCHER = ["hydra/launcher=slurm", "hydra.launcher.timeout_min=10", "hydra.launcher.signal_delay_s=60",
            "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1"]
SLOW = ["task=numeric", "seed=1", "task._target_=toys.slow_numeric", "+task.delay=0.3", "optimizer=gp"]


def sweep_command(entry: str, *overrides: str) -> list[str]:
    return [sys.executable, "-m", f"harness.{entry}", "-m", "logger=none", "progress=false", *LAUNCHER, *overrides]


def job_env(slurm_env: dict[str, str]) -> dict[str, str]:
    """What a user's shell holds, passed on to the jobs by sbatch: the checkout and the test toys."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    return {**slurm_env, "PYTHONPATH": path, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore"}


def wait_for_steps(sweep: Path, steps: int, key: str = "step", timeout: float = 180) -> Path:
    """Job 0's journal, once it holds `steps` lines with `key` (the job is mid-run)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for journal in [*sweep.glob("0_*/progress.jsonl"), *sweep.glob("0/progress.jsonl")]:
            if journal.read_text().count(f'"{key}"') >= steps:
                return journal
        time.sleep(0.3)
    raise AssertionError(f"job 0 did not reach {steps} steps in {timeout:.0f} s")

"""Test helpers for runs under torchrun: `harness.train` on 2 CPU ranks (gloo) or 1 process, and
the comparison of their records (issue 26)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.records import RunRecord, load_records, read_record
from support import ROOT

# Compared between runs: never wall-clock figures.
TIMINGS = ("train/seconds", "train/tokens_per_s")


def train(args: list[str], folder: Path, ranks: int = 2, timeout: int = 280) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node=<ranks> -m harness.train <args>` on CPU (gloo; ranks=1: plain
    python), W&B offline, the record under folder/res and the run under folder/run."""
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"] if ranks > 1 else []
    command = [sys.executable, *launcher, "-m", "harness.train", *args, "progress=false",
               f"results_dir={folder / 'res'}", f"hydra.run.dir={folder / 'run'}"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def failure(result: subprocess.CompletedProcess) -> str:
    """What a failed run said: every rank's error lines first (torchrun's tail is the agent's), then the tail."""
    errors = [line for line in result.stderr.splitlines() if "Error" in line or "error:" in line]
    return "\n".join(errors[:40]) + "\n...\n" + result.stderr[-2000:]


def the_record(folder: Path) -> RunRecord:
    frame = load_records(folder / "res")
    assert len(frame) == 1, "one record"
    return read_record(frame["path"][0])


def assert_same_record(two: RunRecord, one: RunRecord) -> None:
    """Two ranks' record equals one process's on the same global batch: every curve point (loss
    as the global batch's mean, held-out evaluation, bootstrap findings) and every test metric,
    within float tolerance."""
    assert two.metrics == pytest.approx(one.metrics, rel=1e-5, abs=1e-6)
    strip = [[{k: v for k, v in p.items() if k not in TIMINGS} for p in r.curve] for r in (two, one)]
    assert len(strip[0]) == len(strip[1])
    for a, b in zip(*strip):
        assert a.keys() == b.keys() and a == pytest.approx(b, rel=1e-4, abs=1e-5), (a, b)

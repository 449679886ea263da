"""Fixtures and the test environment (see support.py for the config helpers)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# W&B never reaches the network from a test, whatever the user's environment says.
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")
# One compute thread per test process (and per command a test starts), set before torch or numpy
# load: the models under test are tiny, and on a busy 2-core machine a second OpenMP thread waits
# for a time slice at every small op (a smoke run's decoding took ~10x longer with two threads).
# A value the user exports wins.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path

"""Fixtures and the test environment (see support.py for the config helpers)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# W&B never reaches the network from a test, whatever the user's environment says.
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path

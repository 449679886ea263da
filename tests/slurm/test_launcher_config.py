"""The shipped SLURM launcher recipes compose, and a time limit the pre-timeout signal would eat is
refused in one line before anything is submitted (no cluster needed)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from support import ROOT, compose_run

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")


@pytest.mark.parametrize("recipe", ["slurm", "slurm_gpu"])
def test_the_recipes_compose_and_build_the_harness_launcher(recipe, tmp_path):
    from hydra.utils import instantiate

    import harness.runs  # noqa: F401 (the configs' resolvers)
    from harness.slurm import HarnessSlurmLauncher

    cfg = compose_run("optimize", [f"hydra/launcher={recipe}", f"hydra.sweep.dir={tmp_path}"], tmp_path)
    launcher = instantiate(cfg.hydra.launcher)
    assert isinstance(launcher, HarnessSlurmLauncher)
    assert 2 * launcher.params["signal_delay_s"] <= 60 * launcher.params["timeout_min"]


def test_a_limit_the_signal_would_eat_is_one_error_line(tmp_path):
    """With signal_delay_s=120 a 1-minute job was signalled (and requeued or ended) 9 s in."""
    result = subprocess.run([sys.executable, "-m", "harness.optimize", "-m", "hydra/launcher=slurm",
                             "hydra.launcher.timeout_min=1", "task=numeric", "optimizer=gp", "logger=none",
                             f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "SLURM_CONF": "/nonexistent"}, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "signal_delay_s=120" in lines[0] and "timeout_min=1" in lines[0], lines

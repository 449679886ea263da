"""The run's `sandbox` key: process by default, recorded, and a bad value is a config error."""
from __future__ import annotations

import pytest

from harness.api import ConfigError
from harness.optimize import run
from support import compose_run


def test_a_run_records_its_sandbox_mode_and_refuses_an_unknown_one(run_dir):
    record = run(compose_run("optimize", ["task=numeric", "optimizer=adam", "mode=smoke", "logger=none",
                                          "progress=false"], run_dir))
    assert record.config["sandbox"] == "process"
    with pytest.raises(ConfigError, match="sandbox: 'bogus' is not one of process, none"):
        run(compose_run("optimize", ["task=numeric", "optimizer=adam", "mode=smoke", "logger=none",
                                     "progress=false", "sandbox=bogus"], run_dir / "b"))

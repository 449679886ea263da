"""The README's Quickstart is what CI runs: the two must not drift apart."""
from __future__ import annotations

import re

from support import ROOT


def quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quickstart_has_two_commands_and_ci_runs_the_test_one():
    commands = quickstart_commands()
    assert len(commands) == 2
    main_job, tests = commands
    assert "pip install" in main_job and "harness.optimize" in main_job
    assert tests.endswith("-m pytest")
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines, "the last command of .ci/run is the README's test command"
    assert ci_lines[-1] == tests


def test_quickstart_main_job_names_real_configs():
    main_job = quickstart_commands()[0]
    for group, name in re.findall(r"\b(experiment|mode)=(\w+)", main_job):
        assert (ROOT / "configs" / group / f"{name}.yaml").exists()

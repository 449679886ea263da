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


def test_trace_example_runs_as_written(tmp_path, monkeypatch):
    """The README's Trace example, with the scripted test double standing in for the model."""
    text = (ROOT / "README.md").read_text()
    example = re.findall(r"```python\n(.+?)\n```", text, re.DOTALL)[0]
    line = next(l for l in example.splitlines() if l.startswith("llm = openai_llm("))
    example = example.replace(line, "from trace_core.llm import ScriptedLLM\n"
                                    "llm = ScriptedLLM(responder='trace_core.llm.scripted:keep_variables')")
    monkeypatch.chdir(tmp_path)
    import linecache  # as a notebook does: make the cell's source findable for bundle(trainable=True)

    filename = "<README example>"
    linecache.cache[filename] = (len(example), None, example.splitlines(True), filename)
    scope: dict = {}
    exec(compile(example, filename, "exec"), scope)
    assert scope["llm"].usage.calls == 10 and len(scope["optimizer"].logs) == 10
    assert scope["y"].data == -2.0  # the double suggests no change

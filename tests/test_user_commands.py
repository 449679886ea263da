"""The README is a test: every command a user is shown runs as typed, in smoke mode.

The commands come from the README's Quickstart and its table of paper artifacts, and from
docs/extending.md. Each is run in a subprocess, as a shell would run it, with only these changes
(so that a new default, like `progress: auto`, can never break a shown command unnoticed):

- `mode=smoke` is appended to every `harness.optimize` / `harness.train` command, with a scratch
  `results_dir`, `hydra.sweep.dir` and `hydra.run.dir`, so nothing lands in the checkout.
- Steps that build the environment (`python3 -m venv`, `pip install`) are dropped: the environment
  running this test stands in for them; `python`, `python3` and `.venv/bin/python` are this
  interpreter, and `torchrun` is `python -m torch.distributed.run` with `--nproc_per_node=1` (one
  process on a CPU; more processes are the DDP tests' concern, tests/harness/test_ddp.py).
- A placeholder (`llm.model=<model>`) is filled with the model the README's Table 2 command names:
  in smoke mode the scripted test double answers whatever model a command names.
- `make_tables.py` reads the scratch results (`--results`), writes under the scratch folder
  (`--out` kept when relative, else the scratch folder), and a table named for its mode
  (`<experiment>.quick.md`) is looked for under the smoke mode's name.
- The guide's files are written to a scratch project (its working folder and `PYTHONPATH`); its
  commands that read them from the repository's `configs/` get `hydra.searchpath` pointing at the
  project's `configs/` instead, so nothing is written into the checkout.

The Quickstart's test command (`python -m pytest`) is what runs this file: it is not run again.
Every experiment file under configs/experiment/ must be named by some command.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.records import load_records
from support import ROOT, config_names

README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "extending.md"
GUIDE_FILE = re.compile(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", re.S)
HARNESS = re.compile(r"-m harness\.(optimize|train)\b")
ENV_STEPS = ("python3 -m venv", "pip install")
TABLE2_MODEL = "gpt-4o-2024-08-06"  # the README's Table 2 command names it: the placeholder's filling
WALL_TIMES: dict[str, float] = {}


def section(text: str, heading: str) -> str:
    return text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]


def readme_commands() -> list[str]:
    text = README.read_text()
    quickstart = re.findall(r"```bash\n(.+?)\n```", section(text, "Quickstart"))
    commands = [c for c in quickstart if not c.endswith("-m pytest")]  # this test is what that runs
    table = section(text, "Reproducing the paper artifacts")
    for row in (line for line in table.splitlines() if line.startswith("| ") and "---" not in line):
        cells = row.split(" | ")
        if len(cells) > 2:
            commands += [c for c in re.findall(r"`([^`]+)`", cells[2]) if c.startswith(("python ", "torchrun "))]
    return commands


def guide_commands() -> list[str]:
    """One chain per block: a block's lines run one after another (a run, then its tables)."""
    blocks = re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), re.S)
    return [" && ".join(line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip())
            for block in blocks]


COMMANDS = [("README", c) for c in readme_commands()] + [("guide", c) for c in guide_commands()]


def as_smoke(command: str, scratch: Path, guide: bool) -> str:
    """The command with this file's rules applied (module docstring), step by step."""
    steps = []
    for i, step in enumerate(command.split(" && ")):
        if any(marker in step for marker in ENV_STEPS):
            continue
        step = step.replace("<model>", TABLE2_MODEL).removeprefix("PYTHONPATH=. ")
        step = re.sub(r"^(\.venv/bin/python|python3?)\b", shlex.quote(sys.executable), step)
        step = re.sub(r"^torchrun --nproc_per_node=\d+", f"{shlex.quote(sys.executable)} -m torch.distributed.run "
                      f"--nproc_per_node=1", step)
        if HARNESS.search(step):
            if guide and "hydra.searchpath" not in step:
                step += f" 'hydra.searchpath=[file://{scratch}/configs]'"
            step += (f" mode=smoke results_dir={scratch / 'results'} hydra.sweep.dir={scratch / f'sweep{i}'}"
                     f" hydra.run.dir={scratch / f'run{i}'}")
        elif "make_tables.py" in step:
            step = step.replace("scripts/make_tables.py", str(ROOT / "scripts" / "make_tables.py"))
            step = re.sub(r"--results \S+", "", step) + f" --results {scratch / 'results'}"
            step += "" if "--out" in step else f" --out {scratch / 'out'}"
        elif step.startswith("cat "):
            step = re.sub(r"\.(quick|paper)\.md$", ".smoke.md", step)
        steps.append(step)
    return " && ".join(steps)


def write_guide_files(project: Path) -> None:
    for name, body in GUIDE_FILE.findall(GUIDE.read_text()):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(body)
    (project / "myproject" / "__init__.py").write_text("")


def test_every_experiment_file_is_run_by_a_shown_command():
    named = {name for _, c in COMMANDS for name in re.findall(r"\bexperiment=(\w+)", c)}
    missing = sorted(set(config_names("experiment")) - named)
    assert not missing, f"experiment files no README command runs: {missing}"


def test_commands_are_found():
    assert sum(source == "README" for source, _ in COMMANDS) >= 8
    assert sum(source == "guide" for source, _ in COMMANDS) >= 3
    assert all(HARNESS.search(c) or "make_tables" in c for _, c in COMMANDS)


@pytest.mark.parametrize("source,command", COMMANDS, ids=[f"{s}:{c[:70]}" for s, c in COMMANDS])
def test_shown_command_runs_as_typed_in_smoke_mode(source, command, tmp_path):
    guide = source == "guide"
    if guide:
        write_guide_files(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]) if guide else str(ROOT),
           "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)}
    env.pop("HARNESS_SWEEP_LOG", None)
    smoke = as_smoke(command, tmp_path, guide)
    started = time.perf_counter()
    result = subprocess.run(smoke, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    WALL_TIMES[command] = time.perf_counter() - started
    assert result.returncode == 0, f"{smoke}\n{result.stderr[-3000:]}"
    if HARNESS.search(command) and "--cfg" not in command:
        records = load_records(tmp_path / "results")
        assert len(records) >= 1 and set(records["mode"]) == {"smoke"}
        for name in re.findall(r"\bexperiment=(\w+)", command):
            assert name in set(records["experiment"])


def test_report_wall_times(capsys):
    """Not a check: prints each command's smoke wall time (run with -s) for release notes."""
    with capsys.disabled():
        for command, seconds in WALL_TIMES.items():
            print(f"{seconds:7.1f} s  {command}")

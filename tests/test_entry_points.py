"""The console scripts as a researcher meets them: --help, --version, tab completion, a wheel install
that finds its configs, and runs that land in the folder the command runs in (issue 25, defect 8)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support import ROOT

BIN = Path(sys.executable).parent
SCRIPTS = ("harness-optimize", "harness-train", "harness-tables")


def script(name: str, *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / name), *args], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_says_how_to_use_the_script(name):
    result = script(name, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: {name}"), result.stdout[:500]
    if name != "harness-tables":
        assert "task:" in result.stdout and "--cfg job" in result.stdout, "groups and how to see the config"
        group = "optimizer:" if name == "harness-optimize" else "model:"
        assert group in result.stdout and "experiment:" in result.stdout


@pytest.mark.parametrize("name", SCRIPTS)
def test_version_is_the_harness_version_and_its_code(name):
    from harness.provenance import git_sha

    result = script(name, "--version")
    assert result.returncode == 0, result.stderr[-2000:]
    line = result.stdout.strip()
    assert line.startswith("trace-dualformer-harness 0.1.0") and "Hydra" not in line, line
    assert git_sha()[:12] in line, line


def test_tab_completion_answers_without_loading_the_runner():
    """A completion query is Hydra's own, but it must not import the loop, trace_core or torch (each
    press paid 1.1-1.4 s for them)."""
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: print('LOADED', sorted(m for m in ('harness.optimize', 'trace_core', 'torch', "
             "'pandas') if m in sys.modules), file=sys.stderr))\n"
             "sys.argv = ['harness-optimize', '-sc', 'query=bash']\n"
             "from harness.cli import optimize\noptimize()\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COMP_LINE": "harness-optimize optim", "COMP_POINT": "22"})
    assert "optimizer=" in result.stdout, (result.stdout[-1000:], result.stderr[-2000:])
    assert "LOADED []" in result.stderr, result.stderr[-2000:]


def test_a_run_lands_in_the_folder_the_command_runs_in(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
    result = subprocess.run([sys.executable, "-m", "harness.optimize", "task=numeric", "optimizer=adam",
                             "task.limit=2"], cwd=tmp_path, env={**os.environ, **env}, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    records = [p for p in (tmp_path / "runs").rglob("*.json") if "__seed" in p.name]
    assert len(records) == 1, "the record is under ./runs/ of the working folder"


def test_every_code_package_is_listed_for_the_wheel():
    import tomllib

    from setuptools import find_namespace_packages

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set(find_namespace_packages(str(ROOT), include=["harness*", "trace_core*", "baselines*", "tasks*",
                                                             "dualformer*", "hydra_plugins*"]))
    assert found - listed == set(), "add new packages to pyproject's [tool.setuptools] packages"


def test_a_wheel_carries_its_configs_and_runs_from_it(tmp_path):
    """A non-editable install has no checkout beside it: configs and the tables script travel inside."""
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ there
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "results", "build", "wandb",
                                                                "*.egg-info", "__pycache__", ".pytest_cache"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(ROOT / "configs").as_posix() for p in (ROOT / "configs").rglob("*.yaml")}
    assert {f"harness_configs/{n}" for n in shipped} <= names, "every config file is in the wheel"
    assert "harness_scripts/make_tables.py" in names
    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "WANDB_MODE": "disabled"}  # the wheel's code, not this checkout's
    result = subprocess.run([sys.executable, "-m", "harness.optimize", "task=numeric", "optimizer=adam", "task.limit=2"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    [record] = [p for p in (work / "runs").rglob("*.json") if "__seed" in p.name]
    tables = subprocess.run([sys.executable, "-c", "from harness.cli import tables; tables()", "--results",
                             str(work / "runs"), "--out", str(work / "out")], cwd=work, env=env, capture_output=True,
                            text=True, timeout=180)
    assert "Traceback" not in tables.stderr, tables.stderr[-2000:]

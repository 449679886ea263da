"""docs/extending.md stays true: its files are written to a scratch project and its commands run."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT

GUIDE = ROOT / "docs" / "extending.md"
BLOCK = re.compile(r"<!-- (file|run): (\S+) -->\n```\w*\n(.*?)```", re.S)


def guide_blocks() -> tuple[dict[str, str], dict[str, str]]:
    files, runs = {}, {}
    for kind, name, body in BLOCK.findall(GUIDE.read_text()):
        (files if kind == "file" else runs)[name] = body
    return files, runs


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("myproject")
    files, _ = guide_blocks()
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(body)
    (root / "myproject" / "__init__.py").write_text("")
    return root


def run_guide_command(name: str, project: Path, *extra: str) -> Path:
    """Run the guide's `run:` block from the scratch project; returns the run folder."""
    _, runs = guide_blocks()
    command = runs[name].strip()
    run_dir = project / "runs" / name
    env = {**os.environ, "WANDB_MODE": "disabled", "PWD": str(project),
           # the scratch project first (the guide's PYTHONPATH=.), then this checkout's packages
           "PYTHONPATH": os.pathsep.join([str(project), str(ROOT)])}
    command = command.replace("python -m", f"{sys.executable} -m", 1).removeprefix("PYTHONPATH=. ")
    result = subprocess.run(f"{command} hydra.run.dir={run_dir} {' '.join(extra)}", shell=True,
                            cwd=project, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def records_in(folder: Path) -> list[dict]:
    found = [json.loads(p.read_text()) for p in folder.rglob("*.json") if "__" in p.name]
    return [r for r in found if "metrics" in r]


def test_every_file_the_guide_names_is_a_block():
    files, runs = guide_blocks()
    assert {"myproject/bowl.py", "myproject/random_search.py", "configs/task/bowl.yaml",
            "configs/optimizer/random_search.yaml", "configs/experiment/bowl_table.yaml"} <= set(files)
    assert set(runs) == {"optimize", "train"}


def test_the_new_optimizer_searches_the_new_task(project):
    run_dir = run_guide_command("optimize", project)
    [record] = records_in(run_dir)
    assert record["task"] == "bowl" and record["method"] == "random_search"
    metrics = record["metrics"]
    assert metrics["train/steps"] == 30 and metrics["train/best_score"] < metrics["train/first_score"]
    assert "test/distance" in metrics
    assert len((run_dir / "progress.jsonl").read_text().splitlines()) == 30


def test_the_new_model_trains_and_is_scored(project):
    run_dir = run_guide_command("train", project)
    [record] = records_in(run_dir)
    assert record["method"] == "last_bit" and record["metrics"]["test/acc"] == 1.0
    assert record["curve"][0]["train/acc"] == 1.0


@pytest.mark.parametrize("override, says", [("task.limit=0", "task.limit must be >= 1, got 0"),
                                             ("task.size=-5", "task.size must be >= 1, got -5")])
def test_a_bad_setting_in_the_new_task_is_one_error_line(project, override, says):
    _, runs = guide_blocks()
    command = runs["optimize"].strip().replace("python -m", f"{sys.executable} -m", 1).removeprefix("PYTHONPATH=. ")
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": os.pathsep.join([str(project), str(ROOT)])}
    result = subprocess.run(f"{command} {override} hydra.run.dir={project / 'runs' / 'bad'}", shell=True,
                            cwd=project, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 2 and result.stderr.strip() == f"error: {says}", result.stderr[-3000:]


def test_the_new_paper_table_runs_in_smoke_mode_and_renders(project, tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": os.pathsep.join([str(project), str(ROOT)])}
    sweep = project / "runs" / "table"
    result = subprocess.run([sys.executable, "-m", "harness.optimize", "-m", f"hydra.searchpath=[file://{project}/configs]",
                             "experiment=bowl_table", "mode=smoke", "logger=none", "progress=false",
                             f"hydra.sweep.dir={sweep}"], cwd=project, env=env, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {r["method"] for r in records_in(sweep)} == {"random_search", "gp"}
    tables = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_tables.py"), "--results", str(sweep),
                             "--out", str(tmp_path)], cwd=project, env=env, capture_output=True, text=True,
                            timeout=240)
    assert tables.returncode == 0, tables.stderr[-3000:]
    table = (tmp_path / "tables" / "bowl_table.smoke.md").read_text()  # smoke tables say what they are
    assert table.startswith("# SMOKE TEST") and "Bowl: squared distance" in table and "Random search" in table and "GP" in table


def test_the_guides_configs_pass_the_projects_config_tests(project, tmp_path):
    """Dropped into configs/, the guide's YAML files pass tests/test_configs.py like the project's own."""
    import shutil

    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    guide = sorted(p.relative_to(project / "configs") for p in (project / "configs").rglob("*.yaml"))
    for name in guide:
        shutil.copy(project / "configs" / name, configs / name)
    names = " or ".join(sorted({p.stem for p in guide}))
    env = {**os.environ, "HARNESS_TEST_CONFIGS": str(configs), "WANDB_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join([str(project), str(ROOT)])}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "test_configs.py"),
                             "-k", names], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    ran = result.stdout.strip().splitlines()[-1]
    assert "passed" in ran and "failed" not in ran, ran

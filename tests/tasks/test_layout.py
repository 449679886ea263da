"""`tasks/` is laid out by paper: a reader sees at once which benchmark belongs to which paper, and
every config, record and install names the task modules where they now live."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from support import ROOT

TASKS = ROOT / "tasks"
# The two papers' subpackages and the families each holds (the README's layout says the same); a
# new paper's tasks go in a subpackage of their own, `tasks/<paper>_paper/`.
PAPERS = {
    "trace_paper": {"numeric", "numeric_sampler", "traffic", "bbh", "bbh_agent", "textgrad_tasks", "metaworld"},
    "dualformer_paper": {"astar", "planning", "maze", "sokoban", "latex",
                         "math", "math_answers", "math_data", "math_grader", "math_sympy"},
}


def test_every_task_module_lives_under_a_paper_subpackage():
    for entry in sorted(TASKS.iterdir()):
        if entry.name in {"__init__.py", "__pycache__"}:
            continue
        assert entry.is_dir() and entry.name.endswith("_paper"), f"tasks/{entry.name} is not a paper subpackage"
        doc = (entry / "__init__.py").read_text()
        assert re.search(r"arXiv \d{4}\.\d{5}", doc), f"tasks/{entry.name}/__init__.py names its paper"


def test_each_paper_holds_its_task_families():
    for paper, families in PAPERS.items():
        found = {p.stem for p in (TASKS / paper).iterdir() if p.name not in {"__init__.py", "__pycache__"}}
        assert found == families, paper


def test_the_installed_package_holds_every_task_subpackage():
    installed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in TASKS.rglob("*.py") if "__pycache__" not in p.parts}
    assert folders <= installed, sorted(folders - installed)


def yaml_targets(value) -> list[str]:
    """Every `tasks.*` `_target_` in a loaded YAML value, however deep."""
    if isinstance(value, dict):
        own = [value["_target_"]] if str(value.get("_target_", "")).startswith("tasks.") else []
        return own + [t for v in value.values() for t in yaml_targets(v)]
    if isinstance(value, list):
        return [t for v in value for t in yaml_targets(v)]
    return []


def test_every_config_names_a_task_by_its_paper_subpackage():
    targets = {p: yaml_targets(yaml.safe_load(p.read_text())) for p in sorted((ROOT / "configs").rglob("*.yaml"))}
    targets = {p: t for p, t in targets.items() if t}
    assert len(targets) >= 8, "the task configs name tasks.* targets"
    for path, names in targets.items():
        for name in names:
            assert name.split(".")[1].endswith("_paper"), f"{path.relative_to(ROOT)}: {name}"
            module = ROOT / Path(*name.split(".")[:-1])
            assert module.with_suffix(".py").exists() or (module / "__init__.py").exists(), name

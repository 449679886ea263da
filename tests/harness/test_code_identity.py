"""A record carries the source hash of every module its `_target_`s load (issue 25, defect 3): a user's
own optimizer, edited outside the project's folders, is a different run for `skip_done`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.code_identity import module_hashes
from support import ROOT

OPTIMIZER = '''"""A user's optimizer, outside the project: it walks x up by `step` from the task's start."""


class Walk:
    def __init__(self, task, step: float = 1.0) -> None:
        self.x, self.step, self.finished = float(task.init_params()["x"]), step, False

    def ask(self) -> dict:
        return {"x": self.x}

    def tell(self, params, feedback) -> None:
        self.x += self.step
'''


def user_project(root: Path) -> Path:
    (root / "walkpkg").mkdir(parents=True)
    (root / "walkpkg" / "__init__.py").write_text("")
    (root / "walkpkg" / "walk.py").write_text(OPTIMIZER)
    (root / "configs" / "optimizer").mkdir(parents=True)
    (root / "configs" / "optimizer" / "walk.yaml").write_text("_target_: walkpkg.walk.Walk\n_partial_: true\nstep: 1.0\n")
    return root


def run_walk(project: Path, results: Path, name: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), str(ROOT)]), "WANDB_MODE": "disabled"}
    env.pop("HARNESS_SWEEP_LOG", None)
    command = [sys.executable, "-m", "harness.optimize", f"hydra.searchpath=[file://{project}/configs]",
               "task=numeric", "optimizer=walk", "task.limit=2", "seed=43", "logger=none",
               f"results_dir={results}", f"hydra.run.dir={project / 'runs' / name}"]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def only_record(results: Path) -> dict:
    [path] = [p for p in results.glob("*__seed*.json") if not p.name.endswith(".failed.json")]
    return json.loads(path.read_text())


def test_hashes_name_the_module_each_target_is_defined_in():
    import tasks.trace_paper.numeric  # noqa: F401 (what instantiating the run's config imports)
    import trace_core.llm  # noqa: F401

    config = {"task": {"_target_": "tasks.trace_paper.numeric.NumericTask"},
              "llm": {"_target_": "trace_core.llm.openai_llm"}, "seed": 1,
              "unused": {"_target_": "never_imported_pkg.Thing"}}
    hashes = module_hashes(config)
    assert "tasks.trace_paper.numeric" in hashes  # the class's module, not the package
    assert "trace_core.llm.factory" in hashes  # where openai_llm is defined, not the package re-exporting it
    assert not any(name.startswith("never_imported") for name in hashes), "only modules the run loaded"
    assert all(len(h) == 16 for h in hashes.values())


def test_an_edited_user_optimizer_is_not_answered_with_the_old_record(tmp_path):
    project, results = user_project(tmp_path / "proj"), tmp_path / "results"
    run_walk(project, results, "first")
    first = only_record(results)
    assert "walkpkg.walk" in first["provenance"]["code"], "the user's module is part of the record's identity"

    again = run_walk(project, results, "same")  # unchanged code: skip_done returns the record
    assert "skipping" in again.stdout + again.stderr and only_record(results)["created"] == first["created"]

    source = project / "walkpkg" / "walk.py"
    source.write_text(source.read_text().replace("self.x += self.step", "self.x -= self.step"))
    edited = run_walk(project, results, "edited")
    second = only_record(results)
    assert "skipping" not in edited.stdout + edited.stderr, "changed code is a different run"
    assert second["provenance"]["code_hash"] != first["provenance"]["code_hash"]
    assert second["curve"][1]["params"]["x"] < first["curve"][1]["params"]["x"], "the new code ran"
    assert second["git_sha"] == first["git_sha"], "the git sha stays as provenance (the module is outside the repo)"

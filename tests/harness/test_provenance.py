"""A record says where it came from: code state with untracked files counted, platform, run folder
(issue 13, defect 6)."""
from __future__ import annotations

import subprocess

from harness.optimize import run
from harness.provenance import git_sha
from support import compose_run


def git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_an_untracked_file_in_a_code_folder_makes_the_sha_dirty(tmp_path):
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "a.py").write_text("x = 1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c")
    clean = git_sha(tmp_path)
    assert len(clean) == 40 and not clean.endswith("-dirty")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text("{}")
    assert git_sha(tmp_path) == clean, "records being written are not code"
    (tmp_path / "harness" / "new_module.py").write_text("y = 2\n")
    assert git_sha(tmp_path) == clean + "-dirty"


def test_a_record_names_its_platform_and_run_folder(run_dir):
    record = run(compose_run("optimize", ["task=numeric", "optimizer=pso", "task.limit=1", "logger=none",
                                          "progress=false"], run_dir))
    assert record.provenance["python"] and record.provenance["platform"]
    assert record.provenance["run_dir"] == str(run_dir.resolve()) and "wandb_run_id" in record.provenance


def test_the_record_names_its_wandb_run(run_dir):
    overrides = ["task=numeric", "optimizer=pso", "task.limit=1", "logger=wandb", "progress=false"]
    first = run(compose_run("optimize", overrides, run_dir))
    assert first.provenance["wandb_run_id"], "a training run's id is its config hash: see test_ddp"


def test_config_outputs_resolve_against_the_working_folder(run_dir, tmp_path, monkeypatch):
    """Records (and run folders) land in the folder the command runs in, e.g. a user's own project
    (docs/extending.md), not in the harness checkout; given paths are taken as given."""
    import tomllib
    from importlib import import_module

    from harness.runs import RunInfo
    from support import ROOT

    monkeypatch.chdir(tmp_path)
    cfg = compose_run("optimize", ["experiment=fig5a_numeric", "optimizer=adam"], run_dir)
    record_dir = RunInfo.from_config(cfg, "optimizer").record_dir
    assert record_dir.resolve() == tmp_path / "results" / "fig5a_numeric"
    cfg = compose_run("optimize", ["experiment=fig5a_numeric", "optimizer=adam", "results_dir=mine"], run_dir)
    assert str(RunInfo.from_config(cfg, "optimizer").record_dir) == "mine"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"harness-optimize", "harness-train", "harness-tables"}
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(import_module(module), function))

"""The test process's own settings (tests/conftest.py), which keep the suite fast on a busy machine."""
from __future__ import annotations

import os
import subprocess
import sys


def test_torch_and_blas_run_one_thread_unless_the_user_says_otherwise():
    # Tiny models on a loaded 2-core machine: a second intra-op thread waits for a time slice at
    # every small op (decode steps took 10x longer), so the suite runs each process single-threaded.
    import torch

    wanted = int(os.environ.get("OMP_NUM_THREADS", "0"))
    assert wanted >= 1, "conftest.py sets OMP_NUM_THREADS when the user has not"
    assert torch.get_num_threads() == wanted
    for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert os.environ.get(name), f"{name} is set for numpy/scipy too"
    child = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                           capture_output=True, text=True, timeout=120, check=True)
    assert int(child.stdout) == wanted, "commands a test starts inherit the setting"


def test_a_virtual_environment_is_ignored_as_a_folder_or_a_link(tmp_path):
    """A worktree's `.venv` is often a symlink to the main one: `.venv/` would ignore only a folder,
    so `git add -A` committed the link and a checkout then replaced the real environment with it."""
    from support import ROOT

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    (tmp_path / ".venv").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    ignored = subprocess.run(["git", "check-ignore", "-q", ".venv"], cwd=tmp_path)
    assert ignored.returncode == 0, "a .venv symlink is not ignored"

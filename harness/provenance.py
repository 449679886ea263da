"""Where a record came from: the code state (sha, dirty), the interpreter, the machine, the device.

`-dirty` marks a run whose code is not the commit: a tracked file changed, or an untracked file
sits in a folder the code is imported or configured from (a new module is code too).
"""
from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]  # the code: a checkout (configs/, scripts/ beside it) or site-packages


def _shipped(folder: str, package: str) -> Path:
    """`folder` of the checkout, or where a wheel install put it (pyproject maps it to `package`)."""
    if (ROOT / folder).is_dir():
        return ROOT / folder
    import importlib.util

    spec = importlib.util.find_spec(package)
    return Path(next(iter(spec.submodule_search_locations))) if spec else ROOT / folder


CONFIGS = _shipped("configs", "harness_configs")
SCRIPTS = _shipped("scripts", "harness_scripts")
# Folders whose files can change a number; results/, runs/ and docs do not.
CODE_FOLDERS = ("harness", "trace_core", "tasks", "dualformer", "baselines", "configs", "scripts",
                "pyproject.toml")


def git_sha(root: Path = ROOT) -> str:
    """HEAD of the checkout, with `-dirty` if tracked or untracked files under CODE_FOLDERS differ."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--",
                                  *CODE_FOLDERS], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    dirty = [line for line in changed.stdout.splitlines() if not line.endswith(".pyc")]
    return sha + ("-dirty" if dirty else "")


def environment() -> dict[str, Any]:
    """Python, platform and, when the run imported torch, its version and device."""
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "executable": sys.executable}
    torch = sys.modules.get("torch")  # never import torch just to describe a run that did not use it
    if torch is not None:
        info["torch"] = torch.__version__
        cuda = torch.cuda.is_available()
        info["device"] = torch.cuda.get_device_name(0) if cuda else "cpu"
        info["cuda"] = torch.version.cuda if cuda else None
    return info

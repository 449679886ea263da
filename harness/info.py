"""What `--help` and `--version` print for the entry points (harness.cli, harness.entry): the
harness's own answers, read from files, with nothing of the run loop imported."""
from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

from harness.provenance import CONFIGS

DISTRIBUTION = "trace-dualformer-harness"
# The groups each entry point composes (configs/<group>/), in the order a command names them.
GROUPS = {"optimize": ("task", "optimizer", "llm", "logger", "mode", "experiment"),
          "train": ("task", "model", "dropout", "logger", "mode", "experiment")}
SETTINGS = {"optimize": "seed, results_dir, skip_done, progress (auto|true|false), log_every, sandbox (process|none)",
            "train": "seed, results_dir, skip_done, progress (auto|true|false), log_every"}


def answer_info_flags(root: str, argv: list[str]) -> bool:
    """Print what `--version` or `--help` ask for (True), or leave the command to Hydra (False).
    Hydra's own `--help` composes the config first, so `harness-train --help` failed on the task
    and model it must be given; its `--version` is Hydra's."""
    if "--version" in argv:
        print(version_line())
        return True
    if "--help" in argv or "-h" in argv:
        print(help_text(root))
        return True
    return False


def version_line() -> str:
    from importlib import metadata

    from harness.provenance import git_sha

    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        version = "(not installed)"
    return f"{DISTRIBUTION} {version} (git {git_sha()})"


def help_text(root: str) -> str:
    prog = Path(sys.argv[0]).name if Path(sys.argv[0]).name.startswith("harness-") else f"python -m harness.{root}"
    spec = importlib.util.find_spec(f"harness.{root}")
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""
    lines = [f"usage: {prog} [-m] [group=name ...] [key=value ...]", "", doc.strip(), "",
             "Config groups (group=name; the files under configs/<group>/):"]
    for group in GROUPS[root]:
        names = sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))
        lines.append(f"  {group}: {', '.join(names)}")
    lines += ["", f"Settings: {SETTINGS[root]}; any key of a group, e.g. task.limit=20.",
              "Flags: -m a sweep (comma-separated values run as jobs); --cfg job the composed config; "
              "--info config sources; --hydra-help Hydra's own flags; --version; "
              "-sc install=bash tab completion.",
              "More: README.md, 'Running single jobs and sweeps'."]
    return "\n".join(lines)

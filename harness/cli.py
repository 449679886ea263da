"""Console entry points (pyproject `[project.scripts]`):

    harness-optimize -m experiment=fig5b_traffic        # = python -m harness.optimize ...
    harness-train experiment=table5_1_fast_mini          # = python -m harness.train ...
    harness-tables --experiment fig5b_traffic           # = python scripts/make_tables.py ...
    harness-optimize --help                             # commands, config groups, flags
    harness-optimize --version                          # the harness's version and code (git sha)
    eval "$(harness-optimize -sc install=bash)"         # tab completion of config groups and keys

`--help`, `--version` and completion queries are answered here without importing the run loop
(a completion query used to pay 1.1-1.4 s per key press for trace_core and the loop's imports).
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path

from harness.provenance import CONFIGS, SCRIPTS

DISTRIBUTION = "trace-dualformer-harness"
# The groups each entry point composes (configs/<group>/), in the order a command names them.
GROUPS = {"optimize": ("task", "optimizer", "llm", "logger", "mode", "experiment"),
          "train": ("task", "model", "dropout", "logger", "mode", "experiment")}
SETTINGS = {"optimize": "seed, results_dir, skip_done, progress (auto|true|false), log_every, sandbox (process|none)",
            "train": "seed, results_dir, skip_done, progress (auto|true|false), log_every"}


def optimize() -> None:
    _hydra_entry("optimize")


def train() -> None:
    _hydra_entry("train")


def tables() -> None:
    if "--version" in sys.argv[1:]:
        print(version_line())
        return
    spec = importlib.util.spec_from_file_location("make_tables", SCRIPTS / "make_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_tables"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    module.main()


def _hydra_entry(root: str) -> None:
    if answer_info_flags(root, sys.argv[1:]):
        return
    if {"-sc", "--shell-completion"} & set(sys.argv[1:]):
        _complete(root)
        return
    from harness.entry import run_cli

    run_cli(importlib.import_module(f"harness.{root}").main)


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


def _complete(root: str) -> None:
    """Hydra answers `-sc` itself, before it would call the task function: a function that does
    nothing, on the same config, is all a completion query needs."""
    import hydra

    @hydra.main(config_path=str(CONFIGS), config_name=root, version_base="1.3")
    def complete(_cfg: object) -> None:
        pass

    complete()

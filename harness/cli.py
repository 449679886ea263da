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

import importlib
import importlib.util
import sys

from harness.info import answer_info_flags, version_line
from harness.provenance import CONFIGS, SCRIPTS


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


def _complete(root: str) -> None:
    """Hydra answers `-sc` itself, before it would call the task function: a function that does
    nothing, on the same config, is all a completion query needs."""
    import hydra

    @hydra.main(config_path=str(CONFIGS), config_name=root, version_base="1.3")
    def complete(_cfg: object) -> None:
        pass

    complete()

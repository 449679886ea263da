"""Console entry points (pyproject `[project.scripts]`), so Hydra's shell completion can be installed:

    harness-optimize -m experiment=fig5b_traffic        # = python -m harness.optimize ...
    harness-train experiment=table5_1_fast_mini          # = python -m harness.train ...
    harness-tables --experiment fig5b_traffic           # = python scripts/make_tables.py ...
    eval "$(harness-optimize -sc install=bash)"         # tab completion of config groups and keys
"""
from __future__ import annotations

import importlib.util
import sys

from harness.provenance import ROOT


def optimize() -> None:
    from harness import optimize as module
    from harness.runs import run_cli

    run_cli(module.main)


def train() -> None:
    from harness import train as module
    from harness.runs import run_cli

    run_cli(module.main)


def tables() -> None:
    spec = importlib.util.spec_from_file_location("make_tables", ROOT / "scripts" / "make_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_tables"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    module.main()

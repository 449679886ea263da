"""How `python -m harness.optimize` / `harness.train` (and the console scripts) start: one-line
errors for mistakes, a summary line for a multirun whose jobs failed, no key on the command line."""
from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path
from typing import Any, Callable

from harness.info import answer_info_flags
from harness.llm_run import refuse_secret_overrides
from harness.runs import exit_on_user_error
from harness.settings import check_launcher_overrides
from harness.sweep import sweep_summary


def run_cli(hydra_main: Callable[[], Any]) -> None:
    """Entry point: run a @hydra.main function, reporting command-line mistakes in one line.

    Hydra is asked to let its own errors through (HYDRA_FULL_ERROR) so they reach this handler;
    a genuine bug still raises with its whole traceback. A multirun whose jobs failed ends with
    one summary line and exit status 1 (harness.sweep).
    """
    root = Path(inspect.getfile(inspect.unwrap(hydra_main))).stem  # optimize or train
    if answer_info_flags(root, sys.argv[1:]):  # --help, --version: ours, not Hydra's
        return
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    with sweep_summary(), exit_on_user_error():
        refuse_secret_overrides(sys.argv[1:])  # before Hydra writes the overrides into .hydra/
        check_launcher_overrides(sys.argv[1:])
        hydra_main()

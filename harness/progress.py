"""Progress bars that a run's `progress=false` can silence, whichever module opens them.

    from harness.progress import bar
    for item in bar(items, desc="test"): ...

    with shown(bars_wanted(cfg)):       # the runner, around the model's and the task's work
        model.fit(task, logger)

Models and tasks do not see the run's config, so the switch is a context the runner sets.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, Iterator

log = logging.getLogger(__name__)
_shown = [True]


def bar(*args: Any, disable: bool = False, log_every_s: float | None = None, **kwargs: Any):
    """A tqdm bar, off where the run said so. Long work passes `log_every_s`: where bars are off,
    its progress then comes as a plain log line at most that often (and one at the end)."""
    from tqdm.auto import tqdm

    if _shown[-1] or disable or log_every_s is None:
        return tqdm(*args, disable=disable or not _shown[-1], **kwargs)
    return tqdm(*args, file=_LogLines(), mininterval=log_every_s, maxinterval=max(log_every_s, 1.0),
                bar_format="{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%), {elapsed} elapsed, about {remaining} left",
                **kwargs)


class _LogLines:
    """A file for tqdm whose frames become log lines (tqdm writes each frame after a carriage return)."""

    def write(self, text: str) -> None:
        if text := text.strip("\r\n ").replace(", about ? left", ""):  # no rate before the first step
            log.info(text)

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def shown(show: bool) -> Iterator[None]:
    _shown.append(bool(show))
    try:
        yield
    finally:
        _shown.pop()


def bars_wanted(cfg: Any) -> bool:
    """`cfg.progress` (true, false, or auto: only when stderr is a terminal), except in a
    multirun whose launcher runs jobs side by side or remotely
    (joblib, SLURM): there bars of several jobs would interleave, and the sweep's progress line
    and each job's plain-text log lines say how far it is."""
    asked = cfg.get("progress", "auto")
    if asked in (False, "false"):
        return False
    if asked == "auto" and not sys.stderr.isatty():  # redirected: frames would fill the log file
        return False
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return True
    launcher = str(HydraConfig.get().launcher.get("_target_", ""))
    return launcher.endswith("BasicLauncher")

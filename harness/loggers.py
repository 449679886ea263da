"""Experiment loggers: Weights & Biases (offline by default: no login, no network) or none.

W&B is a viewer; the run record (`harness.records`) is the result. Configs build a logger with
`_partial_: true`; the runner supplies the run's name, directory and resolved config.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping


class NullLogger:
    """Logs nothing (tests, or when W&B is not wanted)."""

    run_id = None

    def __init__(self, **_: Any) -> None:
        pass

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def summary(self, metrics: Mapping[str, float]) -> None:
        pass

    def finish(self) -> None:
        pass


class WandbLogger:
    """One W&B run per harness run; `run_id` (the config hash) makes a rerun of the same config,
    e.g. a resumed training run, continue the same W&B run instead of starting another.

    mode: "offline" (default; sync later with `wandb sync <dir>/wandb/offline-run-*`), "online"
    (needs `WANDB_API_KEY`), or "disabled". The `WANDB_MODE` environment variable wins, as in W&B.
    """

    def __init__(self, name: str, directory: str | Path, config: Mapping[str, Any],
                 project: str = "trace-dualformer", mode: str = "offline",
                 group: str | None = None, tags: list[str] | None = None,
                 run_id: str | None = None) -> None:
        import wandb

        Path(directory).mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            project=project, name=name, group=group, tags=list(tags or []), dir=str(directory),
            id=run_id, resume="allow" if run_id else None,
            config=dict(config), mode=os.environ.get("WANDB_MODE", mode), reinit="finish_previous",
            settings=wandb.Settings(console="off", silent=True, x_disable_stats=True),
        )

    @property
    def run_id(self) -> str | None:
        return getattr(self._run, "id", None)

    @property
    def run_dir(self) -> str | None:
        return getattr(self._run, "dir", None)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self._run.log(dict(metrics), step=step)

    def summary(self, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self._run.summary[key] = value

    def finish(self) -> None:
        self._run.finish()

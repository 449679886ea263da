"""Experiment loggers: Weights & Biases (offline by default: no login, no network) or none.

W&B is a viewer; the run record (`harness.records`) is the result. Configs build a logger with
`_partial_: true`; the runner supplies the run's name, directory and resolved config.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence


class NullLogger:
    """Logs nothing (tests, or when W&B is not wanted)."""

    run_id = None

    def __init__(self, **_: Any) -> None:
        pass

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def summary(self, metrics: Mapping[str, float]) -> None:
        pass

    def table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        pass

    def attach(self, paths: Sequence[Path], kind: str = "run_record") -> None:
        pass

    def finish(self) -> None:
        pass


# What the W&B config carries about the run itself (under `run`), so W&B groups and filters runs
# by method, experiment, ... without parsing their names.
IDENTITY_TAGS = ("experiment", "method", "task", "mode")


class WandbLogger:
    """One W&B run per harness run; `run_id` (the config hash) makes a rerun of the same config,
    e.g. a resumed training run, continue the same W&B run instead of starting another.

    mode: "offline" (default; sync later with `wandb sync <dir>/wandb/offline-run-*`), "online"
    (needs `WANDB_API_KEY`), or "disabled". The `WANDB_MODE` environment variable wins, as in W&B.
    """

    def __init__(self, name: str, directory: str | Path, config: Mapping[str, Any],
                 project: str = "trace-dualformer", mode: str = "offline",
                 group: str | None = None, tags: list[str] | None = None,
                 run_id: str | None = None, job_type: str | None = None,
                 identity: Mapping[str, Any] | None = None, higher_is_better: bool | None = None,
                 console: str = "wrap") -> None:
        import wandb

        Path(directory).mkdir(parents=True, exist_ok=True)
        identity = dict(identity or {})
        tags = list(dict.fromkeys([*(tags or []), *(str(identity[k]) for k in IDENTITY_TAGS if identity.get(k))]))
        self._run = wandb.init(
            project=project, name=name, group=group, tags=tags, dir=str(directory), job_type=job_type,
            id=run_id, resume="allow" if run_id else None,
            config={**config, "run": identity} if identity else dict(config),
            mode=os.environ.get("WANDB_MODE", mode), reinit="finish_previous",
            settings=wandb.Settings(console=console, silent=True, x_disable_stats=True),
        )
        if higher_is_better is not None:  # the run's summary shows the best score, not the last one
            goal = "max" if higher_is_better else "min"
            for key in ("train/best", "train/score"):
                self._run.define_metric(key, summary=goal)

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

    def table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """A wandb.Table, e.g. the prompts an LLM optimizer sent and the replies it got."""
        import wandb

        self._run.log({key: wandb.Table(columns=list(columns), data=[list(row) for row in rows])})

    def attach(self, paths: Sequence[Path], kind: str = "run_record") -> None:
        """The files of the finished run (its record, per-example outputs) as one W&B artifact."""
        import wandb

        present = [Path(p) for p in paths if Path(p).is_file()]
        if not present or self.run_id is None:
            return
        artifact = wandb.Artifact(name=f"{kind}-{self.run_id}", type=kind)
        for path in present:
            artifact.add_file(str(path), name=path.name)
        self._run.log_artifact(artifact)

    def finish(self) -> None:
        self._run.finish()

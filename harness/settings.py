"""The settings every run reads besides its task and method, checked before any work.

Root keys (`seed`, `results_dir`, `skip_done`, `log_every`) are typed by a structured config, so
OmegaConf itself refuses `skip_done=maybe`; the few rules types cannot say (`log_every >= 0`,
`progress` being a bool or `auto`) follow. The environment variables the harness reads on the
user's behalf (`WANDB_MODE`) and the launcher's settings are checked here too: a typo there
otherwise ends deep inside W&B or joblib with a traceback, after files were written.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Optional

from harness.api import ConfigError

# What W&B itself accepts for WANDB_MODE (its `dryrun` and `run` are old names of offline and online).
WANDB_MODES = ("online", "offline", "disabled", "dryrun", "run")
PROGRESS = (True, False, "auto", "true", "false")


@dataclass
class RootSettings:
    seed: int = 42
    results_dir: Optional[str] = None
    skip_done: bool = True
    log_every: int = 0


# Field types are strings here (postponed annotations): what to say for each.
_EXPECTED = {"bool": "a bool (true/false)", "int": "an integer", "Optional[str]": "a folder path or null"}


def check_run_settings(cfg: Any) -> None:
    """Raise ConfigError naming the first root key, or variable, that cannot be what it should."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ValidationError

    schema = OmegaConf.structured(RootSettings)
    for field in fields(RootSettings):
        if field.name not in cfg:
            continue
        value = cfg[field.name]
        if field.name == "results_dir" and value is not None and not isinstance(value, str):
            raise ConfigError(f"results_dir: expected a folder path or null, got {_shown(value)}")  # OmegaConf would str() a list
        try:
            schema[field.name] = value
        except ValidationError:
            raise ConfigError(f"{field.name}: expected {_EXPECTED[field.type]}, got {_shown(value)}") from None
    if schema.log_every < 0:
        raise ConfigError(f"log_every must be >= 0, got {schema.log_every}")
    progress = cfg.get("progress", "auto")
    if isinstance(progress, str):
        progress = progress.lower()
    if progress not in PROGRESS:
        raise ConfigError(f"progress: expected auto, true or false, got {_shown(cfg.get('progress'))}")
    if str(OmegaConf.select(cfg, "logger._target_", default="")).endswith("WandbLogger"):
        check_wandb_mode()


def check_wandb_mode() -> None:
    mode = os.environ.get("WANDB_MODE")
    if mode is not None and mode not in WANDB_MODES:
        raise ConfigError(f"WANDB_MODE: {mode!r} is not one of online, offline, disabled "
                          f"(unset it for the logger's own mode, or logger=none for no W&B)")


def _shown(value: Any) -> str:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value)
    return repr(value)


def check_launcher_overrides(argv: list[str]) -> None:
    """The launcher's settings given on the command line, before Hydra starts the sweep.

    Checked here because Hydra builds the launcher only after the sweep folder is made, and a
    callback cannot stop it: joblib's `n_jobs=0` was a traceback mid-launch. (-1 is every core,
    -k every core but k-1.)
    """
    for argument in argv:
        key, _, value = argument.partition("=")
        if key.lstrip("+~") == "hydra.launcher.n_jobs" and value.strip() in ("0", "+0", "-0"):
            raise ConfigError(f"hydra.launcher.n_jobs must be >= 1, or -1 for all cores, got {value.strip()}")

"""Test helpers: compose the real configs in process, the way `python -m harness.*` would."""
from __future__ import annotations

import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
# Another folder can stand in for configs/ (HARNESS_TEST_CONFIGS): tests/test_extending.py runs the
# config tests over configs/ with the guide's files dropped in, as a user would drop them.
CONFIGS = Path(os.environ.get("HARNESS_TEST_CONFIGS") or ROOT / "configs")
DATA = Path(__file__).resolve().parent / "data"


def compose_run(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose `configs/<config_name>.yaml` with overrides and make it the current Hydra run."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3", job_name=config_name):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


def sweep_jobs(cfg: DictConfig) -> list[list[str]]:
    """The job list Hydra's basic sweeper would launch for `cfg.hydra.sweeper.params`."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = cfg.hydra.sweeper.params or {}
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def config_names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))

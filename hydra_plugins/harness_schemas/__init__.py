"""Typed config schemas, registered with Hydra's ConfigStore when Hydra scans its plugins.

Hydra imports every module under the `hydra_plugins` namespace before composing any config (the
command line and the compose API alike), so `configs/model/*.yaml` can build on these nodes:

    defaults:
      - /schema/train@train      # model.train is a dualformer.train_config.TrainConfig

Every field of the dataclass then shows in `--cfg job`, can be overridden without `+`, and a value
of the wrong type is refused while composing (one `error:` line from harness.runs).
"""
from hydra.core.config_store import ConfigStore

from dualformer.train_config import TrainConfig

ConfigStore.instance().store(group="schema", name="train", node=TrainConfig)

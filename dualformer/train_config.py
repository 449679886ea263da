"""The training recipe as a typed config, with no torch import: Hydra's ConfigStore registers it
(hydra_plugins/harness_schemas) so every field shows in `--cfg job`, overrides need no `+`, and a
wrong type is refused when the config is composed."""
from __future__ import annotations

import math
from dataclasses import dataclass

from harness.api import ConfigError


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16       # global: split evenly over the DDP processes
    lr: float = 2.5e-4
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 500
    checkpoint_dir: str | None = None
    device: str = "auto"       # auto: cuda when present
    bf16: bool | None = None   # None: on a GPU only
    compile: bool | None = None
    pin_memory: bool | None = None  # None: on a GPU (batches pinned by the builder thread, copied async)

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # a config list, or a checkpoint's tuple
        # The types are checked when the config is composed; the ranges here, before any work (a
        # negative step count trained nothing and still wrote a record).
        for name in ("steps", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.train.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.warmup < 0 or self.checkpoint_every < 0:
            raise ConfigError(f"model.train: need lr > 0, warmup >= 0, checkpoint_every >= 0; got lr={self.lr}, "
                              f"warmup={self.warmup}, checkpoint_every={self.checkpoint_every}")

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine from the peak down to min_lr_ratio of it at `steps`."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.steps - self.warmup))
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

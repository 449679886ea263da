"""Length-bucketed training batches: fewer padding tokens per step, the same examples per epoch.

    from dualformer.batching import BucketedOrder
    order = BucketedOrder(lengths_of_epoch, batch=64, seed=0)   # lengths_of_epoch(epoch) -> array
    trainer = Trainer(model, config, make_batch, n, order=order)

A batch pads every sequence to its longest one, so with trace dropout (a plan-only sequence is a
tenth of a full trace) a random batch of 64 is mostly padding (39-48% real decoder tokens on the
maze sets). Each epoch is still one random permutation; it is cut into windows of `window`
batches, each window is sorted by length and cut into batches, and the batches are shuffled, so
a batch holds sequences of similar length and the order of batches stays random. Lengths are
those after the epoch's dropout draw (the caller's `lengths(epoch)`), computed once per epoch.
`pad_width` rounds a batch's width up to a multiple, so a compiled model sees few shapes.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


class BucketedOrder:
    """epoch -> a permutation of the examples in which every `batch` consecutive ones have similar lengths."""

    def __init__(self, lengths: Callable[[int], np.ndarray], batch: int, seed: int, window: int = 50) -> None:
        if batch < 1 or window < 1:
            raise ValueError(f"batch and window must be >= 1, got {batch}, {window}")
        self.lengths, self.batch, self.seed, self.window = lengths, batch, seed, window
        self._cached: tuple[int, np.ndarray] | None = None

    def __call__(self, epoch: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, self._order(epoch))
        return self._cached[1]

    def _order(self, epoch: int) -> np.ndarray:
        lengths = np.asarray(self.lengths(epoch))
        rng = np.random.default_rng([self.seed, epoch, 1])
        permutation = rng.permutation(len(lengths))
        span = self.batch * self.window
        batches = []
        for start in range(0, len(permutation), span):
            window = permutation[start:start + span]
            window = window[np.argsort(lengths[window], kind="stable")]
            batches += [window[i:i + self.batch] for i in range(0, len(window), self.batch)]
        full = [b for b in batches if len(b) == self.batch]
        rest = [b for b in batches if len(b) < self.batch]  # at the end: the trainer drops a short tail
        return np.concatenate([full[i] for i in rng.permutation(len(full))] + rest).astype(np.int64)


def pad_width(longest: int, multiple: int) -> int:
    """`longest` rounded up to a multiple of `multiple` (1: unchanged)."""
    return -(-longest // multiple) * multiple


def real_fraction(rows: list[int], width: int) -> float:
    """Share of a padded batch's tokens that are real: sum of row lengths / (rows x width)."""
    return sum(rows) / (len(rows) * width)

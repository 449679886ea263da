"""Pinned batches (issue 26, "GPU time that counts"): on a GPU the thread that builds the next
batch also copies it into page-locked memory, so the step's `Batch.to(non_blocking=True)` is an
asynchronous copy. This machine has no GPU and a CPU-only torch cannot pin, so the tests check
the plumbing: where and when pinning happens, that the step trains on exactly the batches built
in line, and that asking for it without a GPU is one clear error."""
from __future__ import annotations

import threading

import pytest
import torch

from dualformer.model import Transformer, preset
from dualformer.train import Batch, TrainConfig, Trainer
from harness.api import ConfigError

BASE = dict(steps=6, batch_size=4, lr=3e-3, warmup=2, log_every=1)


def copy_batch(indices: list[int], epoch: int) -> Batch:
    prompts = torch.tensor([[3 + i % 9, 3 + (i * 7) % 9] for i in indices])
    tokens = torch.cat([torch.ones(len(indices), 1, dtype=torch.long), prompts,
                        2 * torch.ones(len(indices), 1, dtype=torch.long)], dim=1)
    return Batch(prompts, torch.ones_like(prompts, dtype=torch.bool), tokens, torch.ones_like(tokens, dtype=torch.bool))


def make_trainer(**changes) -> Trainer:
    torch.manual_seed(0)
    return Trainer(Transformer(preset("tiny", vocab_size=12)), TrainConfig(**{**BASE, **changes}), copy_batch, 16)


def test_pinning_without_a_gpu_is_one_clear_error():
    assert make_trainer().pin_memory is False  # default: on CUDA only
    with pytest.raises(ConfigError, match="pin_memory"):
        make_trainer(pin_memory=True)


def test_pinned_batches_are_made_in_the_builder_thread_and_train_as_built_in_line(monkeypatch):
    pinned: list[tuple[str, tuple[int, ...]]] = []

    def fake_pin(batch: Batch) -> Batch:  # what pinning must give: the same tensors, in new memory
        pinned.append((threading.current_thread().name, tuple(batch.prompt[:, 0].tolist())))
        return Batch(*(t.clone() if t is not None else None for t in vars(batch).values()))

    in_line = make_trainer().run()
    monkeypatch.setattr(Batch, "pin_memory", fake_pin)
    trainer = make_trainer()
    trainer.pin_memory = True  # as on a GPU
    assert trainer.run() == in_line
    assert len(pinned) == 6, "each batch pinned once"
    assert all(name.startswith("batches") for name, _ in pinned[1:]), "pinned off the training thread"


def test_a_batch_moves_without_copying_its_fields_first():
    batch = copy_batch([1, 2], 0)
    moved = batch.to(torch.device("cpu"))
    assert all(a is b for a, b in zip(vars(batch).values(), vars(moved).values()))

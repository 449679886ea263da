"""Checkpoints keyed by what was trained, whole resumes, and a checkpoint on SIGTERM (issue 13,
defects 3 and 4)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch

from dualformer.model import Transformer, preset
from dualformer.train import Batch, TrainConfig, Trainer
from harness.api import ConfigError
from harness.loggers import NullLogger
from harness.train import CurveRecorder
from support import ROOT

BASE = dict(steps=6, batch_size=4, lr=3e-3, warmup=2, checkpoint_every=3, log_every=1)


def copy_batch(indices: list[int], epoch: int) -> Batch:
    """Prompt: two ids; target: bos, the same two ids, eos (vocabulary of 12)."""
    prompts = torch.tensor([[3 + i % 9, 3 + (i * 7) % 9] for i in indices])
    tokens = torch.cat([torch.ones(len(indices), 1, dtype=torch.long), prompts,
                        2 * torch.ones(len(indices), 1, dtype=torch.long)], dim=1)
    return Batch(prompts, torch.ones_like(prompts, dtype=torch.bool), tokens, torch.ones_like(tokens, dtype=torch.bool))


def trainer(folder, identity=None, **changes) -> Trainer:
    torch.manual_seed(0)
    model = Transformer(preset("tiny", vocab_size=12))
    return Trainer(model, TrainConfig(**{**BASE, **changes}, checkpoint_dir=str(folder)), copy_batch, 16,
                   identity=identity)


class Killed(Exception):
    pass


def die_at_step_3(step, loss):
    if step == 3:  # after the step-3 checkpoint (BASE: checkpoint_every=3)
        raise Killed


@pytest.mark.parametrize("changes, says", [
    ({"lr": 1e-2}, "train.lr"),
    ({"identity": {"data": "other-examples"}}, "data"),
])
def test_a_checkpoint_is_never_resumed_under_other_settings(tmp_path, changes, says):
    trainer(tmp_path, identity={"data": "examples"}).run()
    again = trainer(tmp_path, **{"identity": {"data": "examples"}, **changes})
    with pytest.raises(ConfigError, match=says):
        again.run()
    assert again.step == 0, "nothing was loaded"


def test_a_resumed_run_reports_the_whole_curve_and_all_its_seconds(tmp_path):
    with pytest.raises(Killed):
        trainer(tmp_path).run(on_step=die_at_step_3)
    recorder = CurveRecorder(NullLogger(), tmp_path / "progress.jsonl")
    trainer(tmp_path).run(recorder)
    assert [p["step"] for p in recorder.curve] == [1, 2, 3, 4, 5, 6], "the points before the resume too"
    seconds = [p["train/seconds"] for p in recorder.curve]
    assert seconds == sorted(seconds) and recorder.earlier_seconds >= seconds[2] > 0


SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_checkpoints import trainer
trainer({folder!r}, steps=100000, checkpoint_every=100000).run(on_step=lambda step, loss: print(step, flush=True))
"""


def test_sigterm_writes_a_checkpoint_before_exiting(tmp_path):
    code = SCRIPT.format(tests=str(ROOT / "tests" / "dualformer"), folder=str(tmp_path))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        for _ in range(1000):  # bounded: a line per training step
            if int(proc.stdout.readline() or -1) >= 3:
                break
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    finally:
        proc.kill()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert 3 <= state["step"] < 100000 and len(state["history"]) == state["step"]


def test_batches_built_ahead_in_a_thread_train_and_resume_exactly_as_built_in_line(tmp_path):
    """Issue 26, defect 6: the next batch is built while the step runs (prefetch, on by default);
    the losses are those of building each batch in line, and a checkpoint taken with a batch
    already built ahead resumes at that batch, not after it."""
    built = []

    def noting(indices, epoch):
        built.append(tuple(indices))
        return copy_batch(indices, epoch)

    torch.manual_seed(0)
    in_line = Trainer(Transformer(preset("tiny", vocab_size=12)), TrainConfig(**{**BASE, "checkpoint_every": 100}),
                      copy_batch, 16, prefetch=False).run()
    torch.manual_seed(0)
    ahead = Trainer(Transformer(preset("tiny", vocab_size=12)), TrainConfig(**{**BASE, "checkpoint_every": 100}),
                    noting, 16)
    assert ahead.prefetch and ahead.run() == in_line
    assert len(built) == 6, "no batch built beyond the last step"

    with pytest.raises(Killed):
        trainer(tmp_path / "ck").run(on_step=die_at_step_3)  # checkpoint at step 3, step 4's batch built
    assert trainer(tmp_path / "ck").run() == in_line[3:]

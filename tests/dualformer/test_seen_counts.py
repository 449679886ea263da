"""What a training run saw, in its curve: tokens, sequences and plan-only sequences (issue 29), so a
table can say how much training each model had rather than leave it to be read as compute-matched."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from dualformer.data import BOS, EOS, maze_vocabulary
from dualformer.model import Transformer, preset
from dualformer.monitor import TrainingMonitor
from dualformer.train import Batch, TrainConfig, Trainer

BASE = dict(steps=4, batch_size=4, lr=3e-3, warmup=1, checkpoint_every=2, log_every=2)


def flagged_batch(indices: list[int], epoch: int) -> Batch:
    """Each row: a prompt of 2 tokens, a target of 4 and one padding; even example indices are
    marked plan-only."""
    prompts = torch.tensor([[3, 4] for _ in indices])
    tokens = torch.tensor([[1, 5, 6, 2, 0] for _ in indices])
    return Batch(prompts, torch.ones_like(prompts, dtype=torch.bool), tokens, tokens != 0,
                 plan_only=torch.tensor([i % 2 == 0 for i in indices]))


def unflagged_batch(indices: list[int], epoch: int) -> Batch:
    batch = flagged_batch(indices, epoch)
    return Batch(batch.prompt, batch.prompt_mask, batch.tokens, batch.token_mask)


def make_trainer(folder, make_batch=flagged_batch, **changes) -> Trainer:
    torch.manual_seed(0)
    config = TrainConfig(**{**BASE, **changes}, checkpoint_dir=str(folder) if folder else None)
    return Trainer(Transformer(preset("tiny", vocab_size=12)), config, make_batch, 8)


def last(trainer: Trainer, key: str) -> float:
    return [p[key] for p in trainer.history if key in p][-1]


def test_the_curve_counts_tokens_sequences_and_plan_only_sequences_seen():
    trainer = make_trainer(None)
    trainer.run()
    # 4 steps x 4 rows, 2 + 4 real tokens each; each permutation of 0..7 in two batches: 4 even per epoch
    assert last(trainer, "train/tokens_seen") == 4 * 4 * 6
    assert last(trainer, "train/sequences_seen") == 16
    assert last(trainer, "train/plan_only_seen") == 8
    assert [p["train/sequences_seen"] for p in trainer.history if "train/sequences_seen" in p] == [8, 16]


class Killed(Exception):
    pass


def die_at_step_2(step, loss):
    if step == 2:  # after the step-2 checkpoint (BASE: checkpoint_every=2)
        raise Killed


def test_a_resumed_run_keeps_counting_from_its_checkpoint(tmp_path):
    with pytest.raises(Killed):
        make_trainer(tmp_path).run(on_step=die_at_step_2)
    resumed = make_trainer(tmp_path)
    resumed.run()
    assert last(resumed, "train/tokens_seen") == 4 * 4 * 6 and last(resumed, "train/plan_only_seen") == 8


def test_batches_that_do_not_say_which_rows_are_plan_only_log_no_plan_only_count():
    trainer = make_trainer(None, make_batch=unflagged_batch)
    trainer.run()
    assert last(trainer, "train/sequences_seen") == 16
    assert not any("train/plan_only_seen" in p for p in trainer.history), "unknown is not zero"


def test_a_checkpoint_from_before_the_counts_logs_none_rather_than_a_partial_count(tmp_path):
    first = make_trainer(tmp_path)
    with pytest.raises(Killed):
        first.run(on_step=die_at_step_2)
    state = torch.load(first.checkpoint_path, weights_only=False)
    del state["seen"]  # as a checkpoint written before the counts were kept
    torch.save(state, first.checkpoint_path)
    resumed = make_trainer(tmp_path)
    resumed.run()
    assert [p["step"] for p in resumed.history if "train/tokens_seen" in p] == [2], "only the first attempt's"


@pytest.mark.parametrize("first, plan_only", [("plan", True), ("create", False)])
def test_the_planning_monitor_marks_targets_without_a_trace(first, plan_only):
    vocab = maze_vocabulary(7)
    ids = vocab.encode([BOS, first, "0", "1", EOS])
    monitor = TrainingMonitor(None, SimpleNamespace(vocab=vocab), None)
    made = monitor.counting(lambda indices, epoch: Batch(torch.tensor([[1]]), torch.tensor([[True]]),
                                                         torch.tensor([ids]), torch.tensor([[True] * 5])))([0], 0)
    assert made.plan_only.tolist() == [plan_only]


@pytest.mark.parametrize("p, plan_only", [((0, 0, 0, 0, 1), 8), ((1, 0, 0, 0, 0), 0)])
def test_a_planning_model_logs_how_many_plan_only_sequences_it_trained_on(p, plan_only):
    """Solution-Only (p4 = 1) trains on nothing else; Searchformer (p0 = 1) never on one."""
    from dualformer.data import TraceDropout
    from dualformer.planning import PlanningModel, PlanningTask

    task = PlanningTask(seed=3, size=6, n_train=16, n_test=2)
    model = PlanningModel(dropout=TraceDropout(p=p), preset="tiny",
                          train=dict(steps=2, batch_size=4, warmup=1, log_every=1))
    model.fit(task, None)
    assert last(model.trainer, "train/sequences_seen") == 8
    assert last(model.trainer, "train/plan_only_seen") == plan_only
    assert last(model.trainer, "train/tokens_seen") > 8 * 4


def test_a_bootstrap_rounds_batches_mark_kept_responses_that_took_the_fast_path():
    """A round keeps sampled auto-mode responses: a plan-only one is a plan-only sequence trained on."""
    from dualformer.bootstrap import BootstrapModel
    from dualformer.data import TraceDropout
    from dualformer.planning import PlanningTask

    task = PlanningTask(seed=5, size=6, n_train=6, n_test=2)
    model = BootstrapModel(dropout=TraceDropout(p=[1, 0, 0, 0, 0]), preset="tiny", rounds=0)
    model.task, model.pad = task, len(task.vocab)
    prompt = task.vocab.encode([BOS, "start", "0", "0", EOS])
    model._bootstrap_data = [(prompt, task.vocab.encode([BOS, "plan", "0", "0", EOS])),
                             (prompt, task.vocab.encode([BOS, "create", "0", "0", "c0", "c1", "plan", "0", "0", EOS]))]
    assert model._bootstrap_batch([0, 1], 0).plan_only.tolist() == [True, False]

"""Two CPU ranks (gloo, torchrun) end to end: one W&B run, one record, the whole curve (issue 13,
defect 5). Small: a tiny model, 4 steps, 3 test mazes."""
from __future__ import annotations

import os
import subprocess
import sys

from harness.records import load_records, read_record
from ranks_support import assert_same_record, failure, the_record, train
from support import ROOT


def test_two_ranks_make_one_wandb_run_one_record_and_a_full_curve(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "harness.train", "task=maze7", "model=dualformer", "mode=smoke", "logger=wandb",
               "progress=false", "model.train.batch_size=4",
               f"results_dir={tmp_path / 'res'}", f"hydra.run.dir={tmp_path / 'run'}"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, failure(result)
    frame = load_records(tmp_path / "res")
    assert len(frame) == 1, "rank 0 alone writes the record"
    # Every training step's loss (held-out evaluation points sit beside them at their steps).
    assert [p["step"] for p in frame["curve"][0] if "train/loss" in p] == [1, 2, 3, 4]
    record = read_record(frame["path"][0])
    assert record.provenance["test_examples_per_rank"] == [2, 1], "3 test mazes sampled across 2 ranks"
    assert record.provenance["wandb_run_id"] == record.config_hash, "a rerun (a resume) continues this W&B run"
    assert record.metrics["test/auto/1_solved_4"] >= 0
    assert len(list((tmp_path / "run" / "wandb").glob("offline-run-*"))) == 1, "one W&B run"
    journal = (tmp_path / "run" / "progress.jsonl").read_text()
    assert journal.count('"train/loss"') == 4, "one journal, not two"


def test_two_ranks_train_sequences_longer_than_256_tokens(tmp_path):
    """Issue 26, defect 1: each rank grew its rotary tables to its own longest sequence and DDP
    broadcast buffers of different sizes (gloo SIGABRT at step 2). Every paper task is longer."""
    result = train(["task=maze15", "model=dualformer", "mode=smoke", "logger=none", "model.train.batch_size=4"],
                   tmp_path)
    assert result.returncode == 0, failure(result)
    assert [p["step"] for p in the_record(tmp_path).curve if "train/loss" in p] == [1, 2, 3, 4]


def test_two_ranks_record_equals_one_process_on_the_same_global_batch(tmp_path):
    """Issue 26, defects 2-3: the logged loss is the global batch's (not rank 0's half), the
    held-out evaluation is split over the ranks and gathered, test prompts are decoded in batches
    under DDP, and per-prompt random streams make the samples those of one process."""
    args = ["task=maze15", "model=dualformer", "mode=smoke", "logger=none", "model.train.batch_size=4",
            "task.n_eval=4", "task.limit=5", "task.n_test=5", "model.prompt_batch=2"]
    for ranks in (2, 1):
        result = train(args, tmp_path / str(ranks), ranks)
        assert result.returncode == 0, failure(result)
    two, one = the_record(tmp_path / "2"), the_record(tmp_path / "1")
    assert two.provenance["test_examples_per_rank"] == [3, 2]
    assert any("eval/fast/1_optimal_4" in p for p in two.curve), "the held-out evaluation is in the curve"
    assert_same_record(two, one)

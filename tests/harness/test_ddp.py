"""Two CPU ranks (gloo, torchrun) end to end: one W&B run, one record, the whole curve (issue 13,
defect 5). Small: a tiny model, 4 steps, 3 test mazes."""
from __future__ import annotations

import os
import subprocess
import sys

from harness.records import load_records, read_record
from support import ROOT


def test_two_ranks_make_one_wandb_run_one_record_and_a_full_curve(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "harness.train", "task=maze7", "model=dualformer", "mode=smoke", "logger=wandb",
               "progress=false", "model.train.batch_size=4",
               f"results_dir={tmp_path / 'res'}", f"hydra.run.dir={tmp_path / 'run'}"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]
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


def torchrun(args: list[str], tmp_path, timeout: int = 280) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node=2 -m harness.train <args>` on CPU (gloo), W&B offline."""
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "harness.train", *args, "progress=false",
               f"results_dir={tmp_path / 'res'}", f"hydra.run.dir={tmp_path / 'run'}"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_two_ranks_train_sequences_longer_than_256_tokens(tmp_path):
    """Issue 26, defect 1: each rank grew its rotary tables to its own longest sequence and DDP
    broadcast buffers of different sizes (gloo SIGABRT at step 2). Every paper task is longer."""
    result = torchrun(["task=maze15", "model=dualformer", "mode=smoke", "logger=none",
                       "model.train.batch_size=4"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    frame = load_records(tmp_path / "res")
    assert [p["step"] for p in frame["curve"][0] if "train/loss" in p] == [1, 2, 3, 4]


def one_process(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "harness.train", *args, "progress=false",
               f"results_dir={tmp_path / 'res1'}", f"hydra.run.dir={tmp_path / 'run1'}"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)


def assert_same_record(two: dict, one: dict, skip: tuple[str, ...] = ("train/seconds", "train/tokens_per_s")) -> None:
    """Two ranks' record equals one process's on the same global batch: every curve point (loss
    as the global batch's mean, held-out evaluation) and every test metric, within float tolerance."""
    import pytest

    assert two["metrics"] == pytest.approx(one["metrics"], rel=1e-5, abs=1e-6)
    strip = [[{k: v for k, v in p.items() if k not in skip} for p in r["curve"]] for r in (two, one)]
    assert len(strip[0]) == len(strip[1])
    for a, b in zip(*strip):
        assert a.keys() == b.keys() and a == pytest.approx(b, rel=1e-4, abs=1e-5), (a, b)


def test_two_ranks_record_equals_one_process_on_the_same_global_batch(tmp_path):
    """Issue 26, defects 2-3: the logged loss is the global batch's (not rank 0's half), the
    held-out evaluation is split over the ranks and gathered, test prompts are decoded in batches
    under DDP, and per-prompt random streams make the samples those of one process."""
    args = ["task=maze15", "model=dualformer", "mode=smoke", "logger=none", "model.train.batch_size=4",
            "task.n_eval=4", "task.limit=5", "task.n_test=5", "model.prompt_batch=2"]
    result = torchrun(args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    single = one_process(args, tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    two, one = (read_record(load_records(tmp_path / d)["path"][0]) for d in ("res", "res1"))
    assert two.provenance["test_examples_per_rank"] == [3, 2]
    assert any("eval/fast/1_optimal_4" in p for p in two.curve), "the held-out evaluation is in the curve"
    assert_same_record(vars(two), vars(one))

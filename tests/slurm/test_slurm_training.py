"""Training on the real local SLURM cluster: the pre-timeout signal (SIGUSR2) saves a checkpoint
and requeues the job, which resumes from it; nothing is trained or journaled twice."""
from __future__ import annotations

import json
import subprocess

from harness.records import FAILURE_SUFFIX, load_records
from support import ROOT
from slurm.jobs import job_env, sweep_command, wait_for_steps

STEPS = 40
TRAIN = ["experiment=table5_1_fast_mini", "mode=smoke", "task=maze7", "model=dualformer", "hydra.sweep.subdir=${hydra.job.num}", f"model.train.steps={STEPS}",
         f"model.eval_every={STEPS}", "model.train.checkpoint_every=100000"]


def test_sigusr2_saves_requeues_and_resumes_without_repeating_a_step(slurm_cluster, slurm_env, tmp_path):
    """Training ignored SIGUSR2 (what submitit asks SLURM to send before the time limit): the job was
    requeued from its last periodic checkpoint (here: none, so step 0), and appended the repeated
    steps to the same progress.jsonl."""
    results, sweep = tmp_path / "results", tmp_path / "sweep"
    proc = subprocess.Popen(sweep_command("train", *TRAIN, "hydra.launcher.max_num_timeout=2",
                                          f"model.train.checkpoint_dir={tmp_path / 'ckpt'}",
                                          f"results_dir={results}", f"hydra.sweep.dir={sweep}"),
                            cwd=ROOT, env=job_env(slurm_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        journal = wait_for_steps(sweep, 3, key="train/loss")
        slurm_cluster.run("scancel", "--signal=USR2", slurm_cluster.array_task(0))
        out, err = proc.communicate(timeout=400)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    (curve,) = load_records(results)["curve"]
    losses = [p["step"] for p in curve if "train/loss" in p]
    assert losses == list(range(1, STEPS + 1)), losses
    journaled = [json.loads(line)["step"] for line in journal.read_text().splitlines() if "train/loss" in line]
    assert journaled == list(range(1, STEPS + 1)), journaled
    assert not list(results.glob(f"*{FAILURE_SUFFIX}")), "the finished run cleared its failure record"
    log = "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.out"))
    assert log.count("Starting with JobEnvironment") == 2, "the job ran twice: requeued once"
    assert "resumed from step" in log, log


def test_two_jobs_of_one_model_train_it_once(slurm_env, tmp_path):
    """Two array tasks whose models are one checkpoint (here: the same training, tested with two
    sample counts) both trained it from step 0; the second now waits and reuses it."""
    results, sweep = tmp_path / "results", tmp_path / "sweep"
    result = subprocess.run(sweep_command("train", *TRAIN, "model.samples=4,2", f"results_dir={results}",
                                          f"model.train.checkpoint_dir={tmp_path / 'ckpt'}", f"hydra.sweep.dir={sweep}"),
                            cwd=ROOT, env=job_env(slurm_env), capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    trained = [journal.read_text().count('"train/loss"') for journal in sorted(sweep.glob("*/progress.jsonl"))]
    assert sorted(trained) == [0, STEPS], trained
    curves = load_records(results)["curve"]
    assert [len([p for p in curve if "train/loss" in p]) for curve in curves] == [STEPS, STEPS], "both records hold the curve"


def test_two_tasks_of_one_job_train_as_one_ddp_run(slurm_env, tmp_path):
    """A job with several tasks (slurm_gpu: one per GPU) ran the whole training once per task, each
    alone: nothing set up DDP from SLURM's environment. Now the tasks are the ranks of one run
    (gloo on CPU here), rank 0 records it, and the test set is split between them."""
    results, sweep = tmp_path / "results", tmp_path / "sweep"
    result = subprocess.run(sweep_command("train", *TRAIN, "hydra.launcher.tasks_per_node=2", f"results_dir={results}",
                                          f"hydra.sweep.dir={sweep}"),
                            cwd=ROOT, env=job_env(slurm_env), capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    (record,) = [json.loads(p.read_text()) for p in results.glob("*__seed42__*.json")]
    shares = record["provenance"]["test_examples_per_rank"]
    assert shares is not None and len(shares) == 2 and sum(shares) == 3, shares  # mode=smoke: 3 test tasks
    journal = next(sweep.glob("*/progress.jsonl"))
    assert journal.read_text().count('"train/loss"') == STEPS, "rank 0 alone journals"

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

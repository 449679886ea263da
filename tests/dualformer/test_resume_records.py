"""Whole records after a resume (issue 26, defects 7-8): a planning run preempted at an evaluation
step and rerun writes the record an uninterrupted run writes (curve with its throughput and
held-out points, the same test samples), and a record names the run that trained its weights."""
from __future__ import annotations

import os
import signal

import pytest

from dualformer.monitor import TrainingMonitor
from harness.samples import read_samples
from harness.train import run
from support import compose_run

TIMINGS = ("train/seconds", "train/tokens_per_s")


def planning_run(folder, checkpoints, *extra):
    overrides = ["task=maze7", "model=dualformer", "mode=smoke", "logger=none", "progress=false",
                 "model.train.steps=6", "model.eval_every=2", "model.train.checkpoint_every=100",
                 f"model.train.checkpoint_dir={checkpoints}", f"results_dir={folder}", *extra]
    return run(compose_run("train", overrides, folder))


def without_timings(curve):
    return [{k: v for k, v in p.items() if k not in TIMINGS} for p in curve]


def test_a_run_preempted_at_an_evaluation_step_resumes_to_the_uninterrupted_record(tmp_path, monkeypatch):
    straight = planning_run(tmp_path / "straight", tmp_path / "ck_straight")
    measure = TrainingMonitor.__call__

    def preempted_at_step_4(self, step, loss):
        metrics = measure(self, step, loss)
        if step == 4:  # what SLURM sends before a requeue: the trainer checkpoints, then exits
            os.kill(os.getpid(), signal.SIGUSR1)
        return metrics

    monkeypatch.setattr(TrainingMonitor, "__call__", preempted_at_step_4)
    with pytest.raises(SystemExit):
        planning_run(tmp_path / "killed", tmp_path / "ck")
    monkeypatch.setattr(TrainingMonitor, "__call__", measure)
    resumed = planning_run(tmp_path / "killed", tmp_path / "ck")
    assert without_timings(resumed.curve) == without_timings(straight.curve)
    assert [p["step"] for p in resumed.curve if "eval/auto/1_optimal_4" in p] == [2, 4, 6]
    assert [p["step"] for p in resumed.curve if "train/tokens_per_s" in p] == [1, 2, 3, 4, 5, 6]
    assert resumed.metrics == straight.metrics
    samples = [list(read_samples(r.provenance["run_dir"] and p)) for r, p in
               ((straight, next((tmp_path / "straight").glob("*.json"))),
                (resumed, next((tmp_path / "killed").glob("*.json"))))]
    assert samples[0] == samples[1], "the same test samples, response for response"
    seconds = [p["train/seconds"] for p in resumed.curve]
    assert seconds == sorted(seconds), "seconds carried across the attempts"


def test_a_record_names_the_run_that_trained_its_model(tmp_path):
    trained = planning_run(tmp_path / "a", tmp_path / "ck", "model.modes=[fast]")
    evaluated = planning_run(tmp_path / "b", tmp_path / "ck", "model.modes=[slow]")  # same weights, only tested
    assert evaluated.config_hash != trained.config_hash
    for record in (trained, evaluated):
        assert record.provenance["trained_by"] == {"git_sha": trained.git_sha, "config_hash": trained.config_hash}

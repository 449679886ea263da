"""Optimize a task with a method: ask, evaluate, tell, log, record.

    python -m harness.optimize                                   # traffic task, GP, seed 42
    python -m harness.optimize task=traffic optimizer=scats seed=43
    python -m harness.optimize -m experiment=fig5b_traffic       # the paper grid -> results/
    python -m harness.optimize -m experiment=fig5b_traffic mode=smoke
    python -m harness.optimize -m experiment=fig5b_traffic hydra/launcher=joblib hydra.launcher.n_jobs=2

Every step is appended to `<run dir>/progress.jsonl` as it happens, and the finished run is written
as one record (atomically) to `results_dir` (paper experiments) or the Hydra run folder.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from harness.api import Optimizer, Params, Task, is_better
from harness.provenance import CONFIGS
from harness.records import RunRecord, git_sha, jsonable
from harness.runs import (RunInfo, check_writable, exit_on_user_error, make_logger, previous_record, run_cli,
                          save_record)
from harness.sweep import failures_recorded
from harness.typecheck import check_argument_types
from trace_core.graph import graph_context


@dataclass
class Trajectory:
    """What the loop saw: one point per evaluation, and the best parameters so far."""

    curve: list[dict[str, Any]] = field(default_factory=list)
    best_params: Params | None = None
    best_score: float | None = None


def optimize(task: Task, optimizer: Optimizer, logger: Any, progress_file: Path,
             show_progress: bool = True, desc: str = "") -> Trajectory:
    """The loop: at most `task.limit` evaluations, fewer if the optimizer says it is finished."""
    from tqdm.auto import tqdm

    trajectory = Trajectory()
    with progress_file.open("a") as journal, tqdm(total=task.limit, desc=desc,
                                                  disable=not show_progress) as bar:
        for step in range(task.limit):
            if optimizer.finished or getattr(task, "finished", False):
                break  # nothing left to try, or (e.g. test-time solution optimization) to solve
            params = optimizer.ask()
            feedback = task.evaluate(params)
            optimizer.tell(params, feedback)
            if is_better(feedback.score, trajectory.best_score, task.higher_is_better):
                trajectory.best_score, trajectory.best_params = feedback.score, dict(params)

            numbers = {k: v for k, v in feedback.info.items() if isinstance(v, (int, float))}
            if hasattr(optimizer, "step_metrics"):  # e.g. prompt tokens of an LLM optimizer
                numbers.update(optimizer.step_metrics())
            point = {"step": step, "score": feedback.score, "best": trajectory.best_score,
                     "params": dict(params), **numbers}
            trajectory.curve.append(point)
            # The journal keeps the feedback text too, and survives a run that dies mid-way.
            journal.write(json.dumps(jsonable({**point, "text": feedback.text})) + "\n")
            journal.flush()
            logger.log({"train/score": feedback.score, "train/best": trajectory.best_score,
                        **{f"train/{k}": v for k, v in numbers.items()}}, step=step)
            bar.set_postfix(score=f"{feedback.score:.4g}", best=f"{trajectory.best_score:.4g}")
            bar.update()
    return trajectory


def summarize(trajectory: Trajectory) -> dict[str, float]:
    scores = [p["score"] for p in trajectory.curve]
    return {"train/first_score": scores[0], "train/last_score": scores[-1],
            "train/best_score": trajectory.best_score, "train/steps": len(scores)}


def run(cfg: DictConfig) -> RunRecord:
    """One run of one (task, method, seed): build, loop, test the best parameters, record."""
    from hydra.utils import instantiate

    info = RunInfo.from_config(cfg, method_group="optimizer")
    check_argument_types(info.config)
    check_writable(info.record_dir)
    # A fresh graph context per run: traced node names (what an LLM optimizer sees, and so what
    # the response cache keys on) restart at :0, so a rerun or replay sends identical prompts.
    with graph_context():
        # Built before any skip: a config the task or method refuses is an error, record or not.
        task: Task = instantiate(cfg.task)
        optimizer: Optimizer = instantiate(cfg.optimizer)(task=task)
        if (done := previous_record(cfg, info)) is not None:
            return done
        logger = make_logger(cfg, info)
        info.output_dir.mkdir(parents=True, exist_ok=True)

        started, code_version = time.perf_counter(), git_sha()  # the code as it was when the run began
        try:
            trajectory = optimize(task, optimizer, logger, info.output_dir / "progress.jsonl",
                                  show_progress=cfg.progress, desc=info.name)
            metrics = summarize(trajectory)
            metrics.update({f"test/{k}": v for k, v in task.test(trajectory.best_params).items()})
            logger.summary(metrics)
        finally:
            logger.finish()
    return save_record(info, metrics, trajectory.curve, started, code_version,
                       llm_usage=getattr(optimizer, "llm_usage", None), logger=logger,
                       samples=getattr(task, "test_samples", None))


@hydra.main(config_path=str(CONFIGS), config_name="optimize", version_base="1.3")  # absolute: entry points too
def main(cfg: DictConfig) -> float:
    with exit_on_user_error(), failures_recorded(cfg, "optimizer") as outcome:
        outcome.record = run(cfg)
    if outcome.record is None:  # this job of a multirun failed: its failure record says why
        return float("nan")
    best = outcome.record.metrics["train/best_score"]
    return best if math.isfinite(best) else float("nan")  # the objective, for sweeper plugins


if __name__ == "__main__":
    run_cli(main)

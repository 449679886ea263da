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
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from harness import progress
from harness.api import ConfigError, Optimizer, Params, Task, is_better
from harness.code_identity import code_provenance
from harness.entry import run_cli
from harness.llm_run import RoleSpending, check_replay, replay_info, run_usage
from harness.preflight import check_llms, no_calls_note
from harness.provenance import CONFIGS
from harness.records import RunRecord, git_sha, jsonable
from harness.runs import (RunInfo, check_writable, exit_on_user_error, is_main_process, make_logger,
                          previous_record, save_record)
from harness.samples import samples_path
from harness.settings import check_run_settings
from harness.sweep import failures_recorded
from harness.typecheck import check_argument_types
from trace_core.graph import graph_context
from trace_core.llm.base import spending_ledger
from trace_core.sandbox import MODES, sandbox_mode

log = logging.getLogger(__name__)


@dataclass
class Trajectory:
    """What the loop saw: one point per evaluation, and the best parameters so far."""

    curve: list[dict[str, Any]] = field(default_factory=list)
    best_params: Params | None = None
    best_score: float | None = None


def optimize(task: Task, optimizer: Optimizer, logger: Any, progress_file: Path,
             show_progress: bool = True, desc: str = "", log_every: int = 0) -> Trajectory:
    """The loop: at most `task.limit` evaluations, fewer if the optimizer says it is finished."""
    from tqdm.auto import tqdm

    trajectory = Trajectory()
    spending = RoleSpending(task, optimizer)  # calls and tokens per role, per evaluation
    with progress_file.open("w") as journal, tqdm(total=task.limit, desc=desc,
                                                  disable=not show_progress) as bar:
        for step in range(task.limit):
            if optimizer.finished or getattr(task, "finished", False):
                break  # nothing left to try, or (e.g. test-time solution optimization) to solve
            asked = time.perf_counter()
            params = optimizer.ask()
            evaluated = time.perf_counter()
            feedback = task.evaluate(params)
            told = time.perf_counter()
            optimizer.tell(params, feedback)
            seconds = {"method_seconds": evaluated - asked + time.perf_counter() - told,
                       "eval_seconds": told - evaluated}
            if is_better(feedback.score, trajectory.best_score, task.higher_is_better):
                trajectory.best_score, trajectory.best_params = feedback.score, dict(params)

            numbers = {k: v for k, v in feedback.info.items() if isinstance(v, (int, float))}
            if hasattr(optimizer, "step_metrics"):  # e.g. prompt tokens of an LLM optimizer
                numbers.update(optimizer.step_metrics())
            numbers.update(spending.step())
            point = {"step": step, "score": feedback.score, "best": trajectory.best_score,
                     "params": dict(params), **numbers}
            trajectory.curve.append(point)
            # The journal keeps the feedback text too, and survives a run that dies mid-way (a requeued
            # job starts it afresh: an optimize run restarts from step 0).
            journal.write(json.dumps(jsonable({**point, "text": feedback.text})) + "\n")
            journal.flush()
            logger.log({"train/score": feedback.score, "train/best": trajectory.best_score,
                        **{f"train/{k}": v for k, v in numbers.items()},
                        **{f"params/{k}": v for k, v in params.items() if _is_number(v)},
                        **{f"time/{k}": v for k, v in seconds.items()}}, step=step)
            if log_every and (step + 1) % log_every == 0:  # plain text for SLURM logs and `tail -f`
                log.info("%s: step %d/%d score %.4g best %.4g (%.1f s this step)", desc, step + 1,
                         task.limit, feedback.score, trajectory.best_score, sum(seconds.values()))
            bar.set_postfix(score=f"{feedback.score:.4g}", best=f"{trajectory.best_score:.4g}")
            bar.update()
    return trajectory


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summarize(trajectory: Trajectory) -> dict[str, float]:
    scores = [p["score"] for p in trajectory.curve]
    return {"train/first_score": scores[0], "train/last_score": scores[-1],
            "train/best_score": trajectory.best_score, "train/steps": len(scores)}


def run(cfg: DictConfig) -> RunRecord:
    """One run of one (task, method, seed): build, loop, test the best parameters, record."""
    from hydra.utils import instantiate

    check_run_settings(cfg)
    info, replayed_record = replay_info(cfg, RunInfo.from_config(cfg, method_group="optimizer"))
    check_argument_types(info.config)
    check_writable(info.record_dir)
    sandbox = cfg.get("sandbox", "process")
    if sandbox not in MODES:
        raise ConfigError(f"sandbox: {sandbox!r} is not one of {', '.join(MODES)}")
    # A fresh graph context per run: traced node names (what an LLM optimizer sees, and so what
    # the response cache keys on) restart at :0, so a rerun or replay sends identical prompts.
    # Trainable code runs in sandbox worker processes unless the config says `sandbox: none`;
    # the ledger counts the calls of every LLM the run builds (optimizer, student, judge).
    with graph_context(), sandbox_mode(sandbox), spending_ledger() as ledger:
        # Built before any skip: a config the task or method refuses is an error, record or not.
        task: Task = instantiate(cfg.task)
        optimizer: Optimizer = instantiate(cfg.optimizer)(task=task)
        code = code_provenance(info.config)  # the source its targets loaded: part of what it computed
        if (done := previous_record(cfg, info, code)) is not None:
            return done
        logger = make_logger(cfg, info, higher_is_better=task.higher_is_better)
        info.output_dir.mkdir(parents=True, exist_ok=True)

        started, code_version = time.perf_counter(), git_sha()  # the code as it was when the run began
        bars = progress.bars_wanted(cfg)
        try:
            with progress.shown(bars):  # the task's own bars (e.g. BBH's test questions) too
                trajectory = optimize(task, optimizer, logger, info.output_dir / "progress.jsonl",
                                      show_progress=bars, desc=info.name, log_every=cfg.get("log_every", 0))
                metrics = summarize(trajectory)
                metrics.update({f"test/{k}": v for k, v in task.test(trajectory.best_params).items()})
                metrics.update(RoleSpending(task, optimizer).totals())  # every role, the test included
            logger.summary(metrics)
            if hasattr(optimizer, "exchanges"):  # an LLM optimizer: what it asked and what came back
                logger.table("llm/exchanges", *optimizer.exchanges())
            usage = run_usage(ledger, optimizer)
            record = save_record(info, metrics, trajectory.curve, started, code_version,
                                 llm_usage=usage, llm_models=ledger.models, logger=logger,
                                 samples=getattr(task, "test_samples", None),
                                 extra_provenance={**code, **no_calls_note(info.config, usage)})
            logger.attach([info.record_path, samples_path(info.record_path)])
        finally:
            logger.finish()
    check_replay(record, replayed_record, info.output_dir)
    return record


@hydra.main(config_path=str(CONFIGS), config_name="optimize", version_base="1.3")  # absolute: entry points too
def main(cfg: DictConfig) -> float:
    with exit_on_user_error():  # before any job writes anything: a sweep stops here, not job by job
        check_llms_of(cfg)
    with exit_on_user_error(), failures_recorded(cfg, "optimizer") as outcome:
        outcome.record = run(cfg)
    if outcome.record is None:  # this job of a multirun failed: its failure record says why
        return float("nan")
    best = outcome.record.metrics["train/best_score"]
    return best if math.isfinite(best) else float("nan")  # the objective, for sweeper plugins


def check_llms_of(cfg: DictConfig) -> None:
    """The LLM endpoints (or replay cache) the run will ask answer: checked by rank 0, unless
    skip_done will return the run's finished record (it evaluates nothing)."""
    try:
        info, _ = replay_info(cfg, RunInfo.from_config(cfg, method_group="optimizer"))
    except Exception:  # noqa: BLE001 (a config that does not resolve: run() says why, as a job failure)
        return
    if is_main_process() and not (cfg.get("skip_done") and info.record_path.exists()):
        check_llms(info.config)


if __name__ == "__main__":
    run_cli(main)

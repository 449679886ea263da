"""Train a model on a task, test it, record the run: the `optimize` loop's shape for learned solvers.

    python -m harness.train task=<task> model=<model> seed=42
    python -m harness.train -m experiment=<experiment>                  # a paper grid -> results/
    python -m harness.train -m experiment=<experiment> mode=smoke

The model reports its training curve through the logger it is given; every point is journaled to
`<run dir>/progress.jsonl` as it comes and lands in the record's curve.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping

import hydra
from omegaconf import DictConfig, OmegaConf

from harness import progress
from harness.api import Model
from harness.code_identity import code_provenance
from harness.entry import run_cli
from harness.provenance import CONFIGS
from harness.records import RunRecord, git_sha, jsonable
from harness.runs import (RunInfo, check_writable, exit_on_user_error, is_main_process, make_logger,
                          previous_record, save_record)
from harness.samples import samples_path
from harness.settings import check_run_settings
from harness.sweep import clock, failures_recorded
from harness.ranks import sharded_solve
from harness.typecheck import check_argument_types

log = logging.getLogger(__name__)


def keep_journal_to(path: Path, step: int, handle: Any) -> None:
    """Drop the journal's points after `step` (the checkpoint a resumed run starts from): a job
    killed between checkpoints and requeued appended those steps again, so the journal and a
    failure record counted 164 steps where 83 ran. `handle`: the journal, open for appending."""
    handle.flush()
    kept = [line for line in path.read_text().splitlines(keepends=True)
            if line.strip() and json.loads(line).get("step", 0) <= step]
    handle.truncate(0)
    handle.writelines(kept)
    handle.flush()


class CurveRecorder:
    """A logger in front of the real one: keeps every point for the record and the journal."""

    def __init__(self, inner: Any, journal: Path | None, log_every: int = 0, total_steps: int | None = None) -> None:
        self.inner, self.curve, self.earlier_seconds = inner, [], 0.0
        self._journal_path = journal
        self._journal = journal.open("a") if journal is not None else None  # None: not rank 0
        self.log_every, self.total_steps = int(log_every or 0), total_steps
        self._line: tuple[int, dict[str, Any]] | None = None  # the step being gathered for its log line
        # Where the time-left estimate counts from: wall clock and step. Not train/seconds, which a
        # bootstrapping round's trainer restarts at 0 while the step axis runs on.
        self._clock_from = (time.monotonic(), 0)
        self._resumed_to: int | None = None  # the step a resumed run continues from, until its first new step

    def restore(self, curve: list[dict[str, Any]], seconds: float) -> None:
        """A resumed training run hands back the curve and seconds of its earlier attempts, so
        the record holds the whole run (W&B has those points already: same run id). Added to what
        is here: each bootstrap round's trainer restores its own after round 0's."""
        self.curve += [dict(point) for point in curve]
        self.earlier_seconds += float(seconds)
        step = max((int(p["step"]) for p in curve), default=0)
        self._clock_from = (time.monotonic(), step)
        # A requeued job runs the steps after its checkpoint again: the journal is cut back to the
        # last restored step when the first new step comes (not here: a later bootstrap round may
        # still restore points the journal holds beyond this round's).
        self._resumed_to = max(self._resumed_to or 0, step)
        log.info("resumed from step %d (%s of training before)", step, clock(self.earlier_seconds))

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        point = {"step": step, **metrics}
        self.curve.append(point)
        if self._journal is not None and self._resumed_to is not None and step > self._resumed_to:
            keep_journal_to(self._journal_path, self._resumed_to, self._journal)
            self._resumed_to = None
        if self._journal is not None:
            self._journal.write(json.dumps(jsonable(point)) + "\n")
            self._journal.flush()
        self.inner.log(metrics, step=step)
        if self._journal is None or not self.log_every:
            return
        if self._line is not None and self._line[0] != step:
            self.flush()
        if step % self.log_every == 0:  # the points of one step (loss, throughput, evaluation) in one line
            self._line = (step, {**(self._line[1] if self._line else {}), **metrics})

    def flush(self) -> None:
        """Say the step being gathered now, as a plain-text line for SLURM logs and `tail -f`
        where bars are off (it waits for the next step's points otherwise)."""
        if self._line is None:
            return
        (step, metrics), self._line = self._line, None
        of = f"/{self.total_steps}" if self.total_steps else ""
        values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
        left, (since, first) = "", self._clock_from
        if self.total_steps and first < step < self.total_steps:  # the rate of this process's steps
            left = f"; about {clock((time.monotonic() - since) / (step - first) * (self.total_steps - step))} left"
        log.info("step %d%s: %s%s", step, of, values, left)

    def summary(self, metrics: Mapping[str, float]) -> None:
        self.flush()
        self.inner.summary(metrics)

    def finish(self) -> None:
        self.flush()
        if self._journal is not None:
            self._journal.close()
        self.inner.finish()


def run(cfg: DictConfig) -> RunRecord:
    from hydra.utils import instantiate

    check_run_settings(cfg)
    info = RunInfo.from_config(cfg, method_group="model")
    check_argument_types(info.config)
    check_writable(info.record_dir)
    # Built before any skip: a config the task or model refuses is an error, record or not.
    task = instantiate(cfg.task)
    model: Model = instantiate(cfg.model)()
    code = code_provenance(info.config)  # the source its targets loaded: part of what it computed
    if (done := previous_record(cfg, info, code)) is not None:
        return done
    info.output_dir.mkdir(parents=True, exist_ok=True)
    journal = info.output_dir / "progress.jsonl" if is_main_process() else None
    logger = CurveRecorder(make_logger(cfg, info), journal, log_every=cfg.get("log_every", 0),
                           total_steps=getattr(model, "total_steps", None) or OmegaConf.select(cfg, "model.train.steps"))

    started, code_version = time.perf_counter(), git_sha()  # the code as it was when the run began
    logger.run_identity = {"git_sha": code_version, "config_hash": info.config_hash}  # into checkpoints
    try:
        with progress.shown(progress.bars_wanted(cfg)):
            model.fit(task, logger)
            logger.flush()  # the last step's line now, not after the test's sampling
            solve, shares = sharded_solve(task, model.solve)  # DDP: each rank samples its share
            # named for the split scored: validation/... while settings are chosen, so a selection
            # run's numbers can never be read as test numbers (dualformer.planning, task.scored_split)
            split = getattr(task, "scored_split", "test")
            metrics = {f"{split}/{k}": v for k, v in task.test(solve).items()}
        logger.summary(metrics)
        record = save_record(info, metrics, logger.curve, started, code_version, logger=logger.inner,
                             earlier_seconds=logger.earlier_seconds, samples=getattr(task, "test_samples", None),
                             extra_provenance={"test_examples_per_rank": shares, **code,
                                               "trained_by": getattr(model, "trained_by", None),
                                               "decoding": getattr(model, "decoding", None)})
        logger.inner.attach([info.record_path, samples_path(info.record_path)])
    finally:
        logger.finish()
    return record


@hydra.main(config_path=str(CONFIGS), config_name="train", version_base="1.3")  # absolute: entry points too
def main(cfg: DictConfig) -> None:
    with exit_on_user_error(), failures_recorded(cfg, "model") as outcome:
        outcome.record = run(cfg)


if __name__ == "__main__":
    run_cli(main)

"""What a planning model's training shows while it runs: tokens/s and a small held-out evaluation.

    monitor = TrainingMonitor(model, task, logger, eval_every=500, samples=4, log_every=10)
    trainer = Trainer(model.model, config, monitor.counting(model._batch), n)
    trainer.run(logger, measure=monitor)       # Trainer logs monitor(step, loss) after each step

Every `log_every` steps: `train/tokens_per_s` (real decoder + prompt tokens per second since the
last point). Every `eval_every` steps: the model answers the task's held-out `eval_set` (tasks
of the test split's layouts, disjoint from the test set) with `samples` responses per mode and
logs `eval/<mode>/1_optimal_<samples>`, `eval/<mode>/1_solved_<samples>` and
`eval/<mode>/trace_tokens` (the trainer keeps the points in its checkpoint, so a resumed run's
record still has them), so the record's curve and W&B show 1-Optimal and trace length
against the step, and an undertrained model is a flat curve rather than a guess afterwards.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable

from dualformer.data import plan_only_rows


class TrainingMonitor:
    def __init__(self, model: Any, task: Any, logger: Any, eval_every: int = 0, samples: int = 4,
                 log_every: int = 10) -> None:
        self.model, self.task, self.logger = model, task, logger
        self.eval_every, self.samples, self.log_every = eval_every, samples, log_every
        self.tokens, self.since = 0, time.perf_counter()

    def counting(self, make_batch: Callable[[list[int], int], Any]) -> Callable[[list[int], int], Any]:
        """make_batch, counting the real tokens of every batch it builds (with the trainer's
        prefetch, a window's count ends at the batch built ahead of its last step), and marking the
        rows whose target is `bos plan ...`: no trace (dropout level 4), which the trainer counts."""
        def counted(indices: list[int], epoch: int) -> Any:
            batch = make_batch(indices, epoch)
            self.tokens += int(batch.prompt_mask.sum()) + int(batch.token_mask.sum())
            return replace(batch, plan_only=plan_only_rows(batch.tokens, self.task.vocab))
        return counted

    def __call__(self, step: int, loss: float) -> dict[str, float]:
        """The metrics of this step (the trainer logs them before its checkpoint: dualformer.train).
        Under DDP every rank calls this: the token count is summed over ranks, the held-out set
        is split over them (harness.ranks), so both are the whole run's, computed once."""
        from dualformer.train import all_sum

        metrics: dict[str, float] = {}
        if self.logger is None:
            return metrics
        if self.log_every and step % self.log_every == 0:
            now = time.perf_counter()
            metrics["train/tokens_per_s"] = all_sum(float(self.tokens)) / max(now - self.since, 1e-9)
            self.tokens, self.since = 0, now
        if self.eval_every and step % self.eval_every == 0 and self.task.eval_set:
            started = time.perf_counter()
            metrics.update(self.evaluate())
            self.since += time.perf_counter() - started  # evaluation time is not training time
        return metrics

    def evaluate(self) -> dict[str, float]:
        from harness.ranks import sharded_solve

        samples, self.model.samples = self.model.samples, self.samples
        try:
            solve, _ = sharded_solve(self.task, self.model.solve, self.task.eval_set, desc=None)
            metrics = self.task.score(self.task.eval_set, solve)
        finally:
            self.model.samples = samples
            self.model.model.train()
        keep = (f"1_optimal_{self.samples}", f"1_solved_{self.samples}", "trace_tokens")
        return {f"eval/{k}": v for k, v in metrics.items() if k.split("/", 1)[1] in keep}

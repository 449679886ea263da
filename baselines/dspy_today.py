"""DSPy's current prompt optimizers on Table 1's BBH programs: GEPA (reflective prompt evolution)
and MIPROv2 (instruction proposals searched with optuna), beside COPRO (baselines/copro.py).

    python -m harness.optimize task=bbh task.subtask=navigate optimizer=gepa llm=openai
    python -m harness.optimize task=bbh_cot task.subtask=navigate optimizer=miprov2 llm=openai
    python -m harness.optimize -m experiment=table1_bbh_today llm.model=<model>

The same program ("question -> answer", Predict or ChainOfThought), split, metric, student and
client as the COPRO rows: every request of the student and of the reflection / prompt model goes
through the harness client (cache, `llm=replay`, the record's cost), and the record counts each
role's requests and tokens (`llm/student/*`, `llm/reflection/*`, `llm/prompt_model/*`).

- GEPA (dspy.GEPA, gepa 0.1.4) reflects on minibatches of the 15 training questions and keeps a
  Pareto front on the 5 validation questions. Its metric returns the score AND the feedback text
  Trace receives for the same answer (the task's `feedback`: "correct", or the expected output).
  Budget: `max_metric_calls` student evaluations, by default task.limit x (1 + validation size):
  what Trace's step loop may spend (one training answer and, on a validated step, the 5
  validation answers per step; 15 x 6 = 90 on the paper's budget).
- MIPROv2 proposes `num_candidates` instructions with the prompt model and tries `num_trials` of
  them (optuna's TPE), each on the 5 validation questions. Table 1 is 0-shot: no demonstrations
  (max_bootstrapped_demos = max_labeled_demos = 0); MIPROv2 still bootstraps demonstration sets
  on the training questions to show its proposer, then drops them (the compiled program is
  checked to hold none). By default num_candidates = num_trials = task.limit: as many proposals
  and as many validated trials as Trace has steps. dspy 3.4.1 ignores `compile(seed=...)` when
  the constructor's seed is set (`seed or self.seed`): the seed goes to the constructor.
"""
from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

from baselines.copro import DSPyProgram, import_dspy, make_lm
from harness.api import ConfigError

log = logging.getLogger(__name__)
ROLES = {"gepa": "reflection", "miprov2": "prompt_model"}


class DSPyToday(DSPyProgram):
    """A DSPy program compiled by GEPA or MIPROv2 (`optimize`), evaluated as the COPRO rows are."""

    modes = tuple(ROLES)

    def __init__(self, task: Any, llm: Any, optimize: str = "gepa", seed: int = 0,
                 max_metric_calls: int | None = None, reflection_minibatch_size: int = 3,
                 use_merge: bool = True, num_candidates: int | None = None, num_trials: int | None = None,
                 init_temperature: float = 1.0, num_threads: int | None = None, backend: str = "harness",
                 output_dir: str | None = None) -> None:
        self.prompt_role = ROLES.get(optimize, "prompt_model")
        super().__init__(task, llm, optimize=optimize, init_temperature=init_temperature,
                         num_threads=num_threads, backend=backend, output_dir=output_dir)
        budget = {"max_metric_calls": max_metric_calls, "num_candidates": num_candidates, "num_trials": num_trials}
        if any(v is not None and v < 1 for v in budget.values()) or reflection_minibatch_size < 1:
            raise ConfigError(f"optimizer budgets must be >= 1 (or null), got {budget} and "
                              f"reflection_minibatch_size={reflection_minibatch_size}")
        limit, val = int(task.limit), len(task.splits.val)
        self.seed = int(seed)
        self.max_metric_calls = max_metric_calls or limit * (1 + val)
        self.reflection_minibatch_size, self.use_merge = reflection_minibatch_size, use_merge
        self.num_candidates, self.num_trials = num_candidates or limit, num_trials or limit
        self.demos: int | None = None  # demonstrations in the compiled program (MIPROv2: 0-shot check)

    # -- compiling -------------------------------------------------------------------------------
    def _sets(self) -> tuple[list, list]:
        dspy = import_dspy()
        example = lambda e: dspy.Example(question=e.question, answer=e.answer).with_inputs("question")  # noqa: E731
        splits = self.task.splits
        return [example(e) for e in splits.train], [example(e) for e in splits.val]

    def _compile(self, program: Any) -> Any:
        dspy = import_dspy()
        self._prompt_lm = make_lm(self.meters[0], self.backend)
        trainset, valset = self._sets()
        threads = self.num_threads or getattr(self.task, "workers", 1)
        compiler = self._gepa if self.optimize == "gepa" else self._miprov2
        # Both print progress and tables to stdout; keep that in the debug log.
        with dspy.context(lm=self._student_lm, adapter=self._adapter), \
                contextlib.redirect_stdout(io.StringIO()) as printed:
            compiled = compiler(program, trainset, valset, threads)
        log.debug("%s output:\n%s", self.optimize, printed.getvalue())
        self.demos = sum(len(p.demos) for p in compiled.predictors())
        if self.optimize == "miprov2" and self.demos:
            raise RuntimeError(f"MIPROv2 was run 0-shot but its program holds {self.demos} demonstrations")
        return compiled

    def _gepa(self, program: Any, trainset: list, valset: list, threads: int) -> Any:
        dspy = import_dspy()

        def metric(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> Any:
            correct, text = self.task.feedback(gold.answer, getattr(pred, "answer", None))
            return dspy.Prediction(score=float(correct), feedback=text)

        teleprompter = dspy.GEPA(metric=metric, max_metric_calls=self.max_metric_calls,
                                 reflection_lm=self._prompt_lm, reflection_minibatch_size=self.reflection_minibatch_size,
                                 use_merge=self.use_merge, num_threads=threads, seed=self.seed,
                                 warn_on_score_mismatch=False)
        return teleprompter.compile(program, trainset=trainset, valset=valset)

    def _miprov2(self, program: Any, trainset: list, valset: list, threads: int) -> Any:
        from dspy.teleprompt import MIPROv2

        metric = lambda example, prediction, trace=None: self.task.score(example.answer, prediction.answer)  # noqa: E731
        # The seed in the constructor: dspy 3.4.1's compile(seed=0) would be read as "not given".
        teleprompter = MIPROv2(metric=metric, prompt_model=self._prompt_lm, task_model=self._student_lm,
                               max_bootstrapped_demos=0, max_labeled_demos=0, auto=None,
                               num_candidates=self.num_candidates, num_threads=threads, seed=self.seed,
                               init_temperature=self.init_temperature, verbose=False, track_stats=False)
        # Every trial scores the whole (5-question) validation set: no minibatches of it.
        return teleprompter.compile(program, trainset=trainset, valset=valset, num_trials=self.num_trials,
                                    minibatch=False)

    def _record_roles(self) -> None:
        super()._record_roles()
        roles = getattr(self.task, "roles", None)
        if roles is not None and self.optimize == "miprov2":
            roles["demos"] = f"{self.demos} (0-shot: bootstrapped sets only informed the proposer)"

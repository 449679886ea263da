"""Plugs a trace_core optimizer (OptoPrime, OPRO, ...) into the harness's ask/tell loop.

A traced task exposes `parameters()` (its ParameterNodes) and an `objective` text, and returns
Feedback whose `output` is the traced output node (or the ExceptionNode of a failed run) and whose
`text` is the feedback. `tell` is then Trace's own step: zero_feedback, backward(output, text),
step. `extra_feedback` names a Feedback.info entry whose text is appended to the feedback (the
paper gives Trace Masked and OPRO the per-step feedback of a Meta-World episode this way). A
Feedback whose info says `skip_update` (the paper's BBH loop on a correct training answer) is
taken without a backward pass or an LLM call.

    python -m harness.optimize task=<traced task> optimizer=optoprime llm=openai llm.model=gpt-4o
"""
from __future__ import annotations

from typing import Any, Callable

from harness.api import ConfigError, Feedback, Params


class TraceAdapter:
    finished = False

    def __init__(self, task: Any, llm: Any, optimizer: Callable[..., Any],
                 objective: str | None = None, extra_feedback: str | None = None) -> None:
        if not callable(getattr(task, "parameters", None)):
            raise ConfigError(f"{type(task).__name__} is not a traced task (it has no parameters()); "
                              "Trace optimizers need one")
        if not callable(getattr(llm, "complete", None)):
            raise ConfigError("this optimizer asks a language model: add llm=openai "
                              "(or llm=scripted for a smoke run)")
        from trace_core.llm import Metered

        # The optimizer's requests, counted apart from the student's (often the same client).
        self.llm, self.extra_feedback = Metered(llm, "optimizer"), extra_feedback
        self.meters = [self.llm]
        # _step_due: feedback is in, its step is taken at the next ask; _stepped: this round's ask
        # did call the LLM (its numbers are this step's); _skipped: the task asked for no update.
        self._step_due = self._stepped = self._skipped = False
        if isinstance(getattr(task, "roles", None), dict):  # a task that reports who answered what
            task.roles["optimizer"] = str(getattr(llm, "model", None) or "?")
        try:
            self.optimizer = optimizer(task.parameters(), llm=self.llm,
                                       objective=objective or getattr(task, "objective", None))
        except (FileNotFoundError, ValueError) as exc:  # a setting it refuses (a prompt_file that is not there)
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"optimizer.{exc}") from None

    def ask(self) -> Params:
        # The step the last feedback calls for is taken here, when its proposal will be evaluated:
        # after the run's last evaluation no LLM call is spent on a proposal nobody tries.
        self._stepped = self._step_due
        if self._step_due:
            self._step_due = False
            self.optimizer.step()
        return {p.py_name: p.data for p in self.optimizer.parameters}

    def tell(self, params: Params, feedback: Feedback) -> None:
        self._skipped = bool(feedback.info.get("skip_update"))
        if self._skipped:
            return
        if feedback.output is None:
            raise ValueError("a traced task must return its output node in Feedback.output")
        text = feedback.text
        extra = feedback.info.get(self.extra_feedback) if self.extra_feedback else None
        if extra:  # e.g. Meta-World's per-step language feedback, which Masked and OPRO also get
            text = f"{text}\n{extra}"
        self.optimizer.zero_feedback()
        self.optimizer.backward(feedback.output, text)
        self._step_due = True

    @property
    def llm_usage(self) -> Any:
        return self.llm.usage

    def step_metrics(self) -> dict[str, float]:
        """Per-step numbers for the log: the prompt's size and how many updates were applied."""
        skipped = {"trace/skipped": int(self._skipped)}  # the paper's BBH loop: no update after a right answer
        if not self._stepped:  # the first evaluation, or one after a skipped update: no LLM call
            return {"llm/prompt_tokens": 0, "llm/completion_tokens": 0, "trace/applied": 0, "trace/refused": 0,
                    **skipped}
        log = self.optimizer.logs[-1]
        return {"llm/prompt_tokens": log.prompt_tokens, "llm/completion_tokens": log.completion_tokens,
                "trace/applied": len(log.applied), "trace/refused": len(log.refused), **skipped}

    def exchanges(self) -> tuple[list[str], list[list[Any]]]:
        """(columns, rows): every step's prompt and reply and what came of it, for a W&B table."""
        columns = ["step", "prompt", "reply", "applied", "refused", "note", "prompt_tokens", "completion_tokens"]
        rows = [[i, log.messages[-1]["content"] if log.messages else "", log.reply,
                 ", ".join(sorted(log.applied)), "; ".join(f"{k}: {v}" for k, v in sorted(log.refused.items())),
                 log.note, log.prompt_tokens, log.completion_tokens] for i, log in enumerate(self.optimizer.logs)]
        return columns, rows

"""BBH as a traced workflow (Trace's Table 1): a DSPy-shaped agent whose prompt template and two
functions are trainable, trained for one epoch over the 15 training questions of a subtask. (The
traced workflows of Table 2, the TextGrad comparison, are in tasks/trace_paper/textgrad_tasks.py.)

    python -m harness.optimize task=bbh task.subtask=navigate optimizer=optoprime llm=openai
    python -m harness.optimize task=bbh_cot task.subtask=navigate optimizer=optoprime llm=openai
    python -m harness.optimize -m experiment=table1_bbh llm.model=<model> [llm.base_url=<url>]

The agent: `create_prompt(prompt_template, question)` -> the student model -> `extract_answer(
prompt_template, question, response)`. Each step answers the next training question; the feedback
says whether that answer was right and what was expected. A program that raises is put back to
the best validated checkpoint and tried once more; the best checkpoint is the one tested. Test
accuracies are in percent, as the papers' tables. Two protocols (`task.protocol`):

- `paper` (the default, as the paper's BBH script): `extract_answer` starts by taking the text
  after the *first* "Answer:" (and raises when there is none, so the first feedback is often that
  error); a correct training answer skips the update; the 5 validation questions are asked on
  correct steps and on the first two wrong steps that did not raise; exact-match scoring (the
  last "(X)" for option targets, else `==`); OptoPrime's default objective and memory 0 (the
  experiment picks optimizer=trace_nomem).
- `harness` (ours): the text after the *last* "Answer:", validation and an update every step,
  whitespace-insensitive matching, a task objective, memory 5 (optimizer=optoprime).

Facts: specs/trace.md §4.3 and §4.5.
"""
from __future__ import annotations

import math
import re  # noqa: F401  (trainable code runs in this module's namespace: let it use re)
from typing import Any, Callable

from harness.api import ConfigError, Feedback
from tasks.trace_paper.bbh import (BBH_DATA, Example, concurrency, evaluate_all, group_of, load_bbh, paper_splits,
                                   resolve, score_bbh, score_bbh_exact)
from trace_core import ExecutionError, bundle, graph_context, model, node
from trace_core.code import function_source
from trace_core.llm import Metered

STUDENT_SYSTEM = "You answer questions carefully and follow the requested format."
PAPER_STUDENT_SYSTEM = "You are a helpful assistant."  # the paper's generic system message
PROTOCOLS = ("paper", "harness")
PAPER_VALIDATIONS_ON_WRONG = 2  # the paper validates the first two wrong steps that did not raise
CODE_TIME_LIMIT_S = 120.0  # extract_answer may ask the model again: allow for a slow endpoint

PLAIN_TEMPLATE = """Answer the question.

Use this format:
Question: the question
Answer: the answer

Question: {question}
Answer:"""

COT_TEMPLATE = """Answer the question. Work it out step by step before you answer.

Use this format:
Question: the question
Reasoning: the steps that lead to the answer
Answer: the answer

Question: {question}
Reasoning:"""

TEMPLATE_CONSTRAINT = ("The prompt template sent to the model; `{question}` marks where the question goes. "
                       "It should say in what form to give the final answer: an option such as (A), a "
                       "number, a word such as Yes/No or True/False, or a short string.")
CORRECT = "The answer is correct. Nothing needs to change."
WRONG = ('The answer is wrong: the expected output is "{target}". Change the prompt template and the code '
         "so that the program returns exactly the expected answer for questions like this one.")


def call_llm(self, user_prompt):
    """Sends the prompt to the student model and returns the model's reply."""
    return self.ask(user_prompt)


def create_prompt(self, prompt_template, question):
    """Builds the prompt for the student model.

    prompt_template: guidance for the model; `{question}` marks where the question goes.
    question: the question, with its options when it has any.
    """
    return prompt_template.replace("{question}", question)


def extract_answer(self, prompt_template, question, response):
    """Turns the model's reply into the final answer, in exactly the form the grader expects:
    an option such as (A), a number, Yes/No, True/False, valid/invalid, or a short string.

    The reply may hold reasoning before the answer. The code may post-process it, and may call
    self.ask(text), which sends another request to the model and returns its reply as a string.
    """
    return response.split("Answer:")[-1].strip()


def paper_extract_source() -> str:
    """The paper's starting extract_answer: the text after the first "Answer:" (IndexError when
    the reply has none). Same signature and docstring as ours, so only the body differs."""
    source = function_source(extract_answer)
    return source.replace('split("Answer:")[-1]', 'split("Answer:")[1]')


@model
class BBHAgent:
    """Prompt -> student model -> answer, with the template and both functions trainable."""

    sandbox_methods = ("ask",)  # all that trainable code in a sandbox worker may call on `self`

    def __init__(self, student: Any, cot: bool = False, protocol: str = "paper") -> None:
        self.student = student
        self.system = PAPER_STUDENT_SYSTEM if protocol == "paper" else STUDENT_SYSTEM
        self.prompt_template = node(COT_TEMPLATE if cot else PLAIN_TEMPLATE, trainable=True,
                                    name="prompt_template", constraint=TEMPLATE_CONSTRAINT)
        # Bundled per agent, not at class level: the code parameters are then named in the run's
        # graph context, so a run's prompts (and cache keys) never depend on when this module
        # was imported. An endpoint that fails ends the run; it is not feedback.
        self.call_llm = bundle(catch_execution_error=False)(call_llm)
        self.create_prompt = bundle(trainable=True, time_limit_s=CODE_TIME_LIMIT_S)(create_prompt)
        self.extract_answer = bundle(trainable=True, time_limit_s=CODE_TIME_LIMIT_S)(extract_answer)
        if protocol == "paper":
            self.extract_answer.parameter._data = paper_extract_source()

    def __repr__(self) -> str:  # what the optimizer's report shows for `self`
        return "<the agent: self.ask(text) sends text to the student model>"

    def ask(self, text: str) -> str:
        """One request to the student model; returns its reply."""
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": str(text)}]
        return self.student.complete(messages).text

    def forward(self, question: Any) -> Any:
        me, question = node(self, name="self"), node(question, name="question")  # one input node each
        prompt = self.create_prompt(me, self.prompt_template, question)
        response = self.call_llm(me, prompt)
        return self.extract_answer(me, self.prompt_template, question, response)


def source_for(source: str | None, mode: str, smoke_source: str) -> str:
    """Smoke runs read the small fixtures in the repository, never the real data."""
    if mode == "smoke":
        return smoke_source
    return source or BBH_DATA


class BBHTask:
    """One BBH subtask for the harness: the traced agent (Trace rows), or an attached external
    program (the DSPy rows, see `attach_program`), on the paper's 15 / 5 / rest split."""

    higher_is_better = True

    def __init__(self, subtask: str, student: Any, source: str | None = None, cot: bool = False,
                 limit: int = 15, max_test: int | None = None, mode: str = "paper",
                 smoke_source: str = "tests/data/bbh", protocol: str = "paper") -> None:
        if limit < 1:
            raise ConfigError(f"task.limit must be >= 1, got {limit}")
        if protocol not in PROTOCOLS:
            raise ConfigError(f"task.protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        self.protocol = protocol
        self._score = score_bbh_exact if protocol == "paper" else score_bbh
        self.subtask, self.group, self.cot = subtask, group_of(subtask), bool(cot)
        self.source = source_for(source, mode, smoke_source)
        if mode == "smoke" and resolve(self.source) is None:
            raise ConfigError(f"task.smoke_source: {self.source} does not exist")
        self.splits = paper_splits(load_bbh(subtask, self.source))
        if not self.splits.train:
            raise ConfigError(f"task: {subtask} in {self.source} has no training examples")
        self.limit, self.max_test = int(limit), max_test
        # The student's requests are counted apart from the optimizer's (often the same client).
        self.student = Metered(student, "student") if callable(getattr(student, "complete", None)) else student
        self.meters = [self.student] if isinstance(self.student, Metered) else []
        self.agent = BBHAgent(self.student, cot=self.cot, protocol=protocol)
        self.objective = None if protocol == "paper" else (f"The program answers questions of the BIG-Bench Hard task '{subtask}'. Change the "
                          "values in #Variables (the prompt template and the code of create_prompt and "
                          "extract_answer) so that the program outputs exactly the expected answer, as "
                          "#Feedback describes.")
        self._programs: dict[str, Callable[[str], str]] = {}
        self._best: tuple[float, dict[str, Any]] | None = None  # (val accuracy, parameter values)
        self._step, self._validations = 0, 0
        # Which model answered which role (student, optimizer, prompt model), for the record;
        # the methods add theirs.
        self.roles: dict[str, str] = {"student": str(getattr(student, "model", None) or "?")}

    # -- parameters ---------------------------------------------------------------------------
    def parameters(self) -> list:
        return self.agent.parameters()

    def init_params(self) -> dict[str, Any]:
        return {p.py_name: p.data for p in self.parameters()}

    def _load(self, params: dict[str, Any]) -> Callable[[str], Any] | None:
        """Set the agent's parameters from `params`; return the external program they name, if any."""
        if "program" in params:
            if params["program"] not in self._programs:
                raise ConfigError(f"no program {params['program']!r} is attached to this task")
            return self._programs[params["program"]]
        for p in self.parameters():
            if p.py_name in params:
                p._data = params[p.py_name]
        return None

    def attach_program(self, name: str, answer: Callable[[str], str]) -> None:
        """Let params {"program": name} mean "answer with this callable" (question -> answer text).
        How a method with its own program (DSPy) is evaluated on the same split and metric."""
        self._programs[name] = answer

    # -- evaluation ---------------------------------------------------------------------------
    def score(self, target: str, prediction: Any) -> bool:
        return self._score(target, prediction)

    def feedback(self, target: str, prediction: Any) -> tuple[bool, str]:
        """(correct, the feedback text Trace receives for this answer): what GEPA's metric returns."""
        correct = self._score(target, prediction)
        return correct, CORRECT if correct else WRONG.format(target=target)

    @property
    def workers(self) -> int:
        """Questions evaluated at once: as many as the student's client lets run."""
        return concurrency(self.student)

    def _answer(self, question: str, program: Callable[[str], Any] | None) -> Any:
        if program is not None:
            return program(question)
        with graph_context():  # worker threads: a naming scope of their own, never the run's
            try:
                return self.agent.forward(question).data
            except ExecutionError:
                return None  # a program that fails on a question gets it wrong

    def accuracy(self, examples: tuple[Example, ...], program: Callable[[str], Any] | None,
                 desc: str) -> float:
        if not examples:
            return 0.0
        answers = evaluate_all(lambda ex: self._answer(ex.question, program), examples,
                               self.workers, desc=f"{self.subtask} {desc}")
        verdicts = [self._score(ex.answer, a) for ex, a in zip(examples, answers)]
        if desc == "test":  # each answer with its target, beside the record (harness.samples)
            self.test_samples = [{"question": ex.question, "answer": str(a), "target": ex.answer,
                                  "correct": bool(v)} for ex, a, v in zip(examples, answers, verdicts)]
        return sum(verdicts) / len(examples)

    def evaluate(self, params: dict[str, Any]) -> Feedback:
        """One training question gives the feedback; the score is the validation accuracy (-inf on
        a paper-protocol step that did not validate)."""
        program = self._load(params)
        if program is None and self.protocol == "paper":
            return self._paper_step()
        val = self.accuracy(self.splits.val, program, "val")
        if program is None and (self._best is None or val > self._best[0]):
            self._best = (val, self.init_params())
        example = self._next_example()
        if program is not None:
            correct = self._score(example.answer, program(example.question))
            return Feedback(score=val, text=CORRECT if correct else WRONG.format(target=example.answer),
                            info={"train_correct": float(correct), "val_acc": val})
        output, text, correct, _ = self._train_step(example)
        return Feedback(score=val, text=text, output=output,
                        info={"train_correct": float(correct), "val_acc": val})

    def _next_example(self) -> Example:
        example = self.splits.train[self._step % len(self.splits.train)]
        self._step += 1
        return example

    def _paper_step(self) -> Feedback:
        """The paper's step: answer, then validate when right (or wrong without an error, twice),
        and ask for no update when right."""
        output, text, correct, raised = self._train_step(self._next_example())
        validate = correct or (not raised and self._validations < PAPER_VALIDATIONS_ON_WRONG)
        # The paper's script crashes when no step validated (every answer raised); we validate the
        # last program instead, so such a run still tests a validated checkpoint.
        validate = validate or (self._best is None and self._step >= self.limit)
        val = math.nan
        if validate:
            val, self._validations = self.accuracy(self.splits.val, None, "val"), self._validations + 1
            if self._best is None or val > self._best[0]:  # the first of equal checkpoints wins
                self._best = (val, self.init_params())
        return Feedback(score=val if validate else -math.inf, text=text, output=output,
                        info={"train_correct": float(correct), "val_acc": val, "validated": float(validate),
                              "skip_update": float(correct)})

    def _train_step(self, example: Example) -> tuple[Any, str, bool, bool]:
        """(output, feedback text, correct, raised) for one training question."""
        try:
            answer = self.agent.forward(example.question)
        except ExecutionError as first:
            if self._best is None:  # nothing validated yet to fall back to: the error is the feedback
                return first.exception_node, first.exception_node.data, False, True
            self._load(self._best[1])  # back to the best checkpoint, and try once more (the paper)
            try:
                answer = self.agent.forward(example.question)
            except ExecutionError as error:  # the failure itself is the feedback
                return error.exception_node, error.exception_node.data, False, True
        correct = self._score(example.answer, answer.data)
        return answer, CORRECT if correct else WRONG.format(target=example.answer), correct, False

    def test(self, params: dict[str, Any]) -> dict[str, float]:
        """Accuracy on the test split; keys carry the group (nlp / algorithmic) and `cot_` for the
        CoT variant, so one table can hold both rows of each method."""
        program = self._load(params)
        examples = self.splits.test[: self.max_test] if self.max_test else self.splits.test
        acc = 100 * self.accuracy(examples, program, "test")  # percent, as the paper's table
        prefix = "cot_" if self.cot else ""
        usage = self.student.usage
        # The paper's averages are plain means over the 27 subtask files (no per-size weights).
        return {f"{prefix}acc": acc, f"{prefix}acc_{self.group}": acc, "n_test": len(examples),
                **{f"roles/{role}": model for role, model in self.roles.items()},
                "student_calls": usage.calls, "student_cache_hits": usage.cache_hits,
                "student_prompt_tokens": usage.prompt_tokens}

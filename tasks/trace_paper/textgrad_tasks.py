"""The traced workflows of Trace's Table 2 (the TextGrad comparison): prompt optimization (the
student's system prompt is the parameter) and solution optimization (a solution is the parameter,
a critic's review the feedback). Built by `textgrad_task` (below) for `task=bbh_textgrad`.

    python -m harness.optimize -m experiment=table2_textgrad llm.model=<model>
"""
from __future__ import annotations

from typing import Any, Callable

from harness.api import ConfigError, Feedback
from tasks.trace_paper.bbh import (BBH_DATA, Example, concurrency, evaluate_all, load_bbh, load_gpqa, load_gsm8k,
                                   load_mmlu, score_integer, score_letter_first, textgrad_splits)
from tasks.trace_paper.bbh_agent import STUDENT_SYSTEM
from trace_core import bundle, node

PROMPT_FEEDBACK = "Make the answers correct."
SOLUTION_FEEDBACK = "Make the solution correct."
DONE = "Every question is finished; there is nothing left to change."
SYSTEM_CONSTRAINT = ("A system prompt for a fairly capable language model: it should set out how to approach "
                     "this kind of question and the exact form of the final answer.")
NUMBER_INSTRUCTION = ("Solve the problem below, reasoning step by step. End your reply with a line of the "
                      "form `Answer: N`, where N is a number.")
# textgrad starts every BBH prompt (word sorting too) from its numeric task description.
JUDGE_SYSTEM = "You check whether a model's final answer to a question matches the correct answer."
JUDGE_REQUEST = ("Question:\n{question}\n\nCorrect answer:\n{answer}\n\nThe model's reasoning and final "
                 "prediction:\n{response}\n\nIs the final prediction the same as the correct answer? Reply "
                 "with 1 (yes) or 0 (no) only, between <ACCURACY> and </ACCURACY>.")
CRITIC_SYSTEM = ("You are an expert reviewer. You receive a question and a proposed solution. Examine the "
                 "solution's reasoning step by step, check it against what you know, and point out every "
                 "error or doubtful step that could make its final answer wrong. Consider whether another "
                 "answer could be right.")


class PromptTask:
    """TextGrad's prompt optimization: the student's system prompt is the parameter; each step runs a
    batch of training questions, checks the answers, and joins the checks into one output. test()
    scores the prompt as the optimizer left it: Table 2 reports the last iterate."""

    higher_is_better = True

    def __init__(self, name: str, splits: Any, scorer: Callable[[str, Any], bool], student: Any,
                 instruction: str, limit: int = 12, batch_size: int = 3, steps_per_epoch: int = 4,
                 seed: int = 0, max_test: int | None = None) -> None:
        import random

        if limit < 1 or batch_size < 1 or not splits.train:
            raise ConfigError(f"task: {name} needs limit >= 1, batch_size >= 1 and training examples")
        self.name, self.splits, self.scorer, self.student = name, splits, scorer, student
        self.limit, self.batch_size, self.steps_per_epoch = int(limit), int(batch_size), int(steps_per_epoch)
        self.max_test, self.finished = max_test, False
        self.system_prompt = node(instruction, trainable=True, name="system_prompt", constraint=SYSTEM_CONSTRAINT)
        self.objective = (f"Change the system prompt in #Variables so that the model answers questions of the "
                          f"task '{name}' correctly, as #Feedback asks.")
        self._rng, self._order, self._step = random.Random(seed), [], 0
        self._query = bundle(catch_execution_error=False)(self.query_model)
        self._check = bundle()(self.grade)
        self._join = bundle()(join)

    def query_model(self, system_prompt, question):
        """Asks the model the question, with the system prompt, and returns its reply."""
        messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": question}]
        return self.student.complete(messages).text

    def grade(self, response, answer, question):
        """Returns 1 if the reply's final answer equals the correct answer, else 0."""
        return int(self._scored(answer, response, question))

    def _scored(self, answer: str, response: Any, question: str) -> bool:
        judge = getattr(self.scorer, "judge", None)  # an LLM judge reads the question too
        return bool(judge(question, answer, response) if judge else self.scorer(answer, response))

    def parameters(self) -> list:
        return [self.system_prompt]

    def init_params(self) -> dict[str, Any]:
        return {self.system_prompt.py_name: self.system_prompt.data}

    def _batch(self) -> list[Example]:
        if self._step % self.steps_per_epoch == 0:  # a new epoch: reshuffle
            self._order = self._rng.sample(range(len(self.splits.train)), len(self.splits.train))
        start = (self._step % self.steps_per_epoch) * self.batch_size % len(self._order)
        self._step += 1
        return [self.splits.train[i] for i in (self._order * 2)[start:start + self.batch_size]]

    def evaluate(self, params: dict[str, Any]) -> Feedback:
        self.system_prompt._data = params.get(self.system_prompt.py_name, self.system_prompt.data)
        checks = []
        for example in self._batch():
            reply = self._query(self.system_prompt, node(example.question, name="question"))
            checks.append(self._check(reply, node(example.answer, name="answer"),
                                      node(example.question, name="question")))
        output = self._join(*checks)
        score = sum(c.data for c in checks) / len(checks)
        return Feedback(score=score, text=PROMPT_FEEDBACK, output=output, info={"batch_acc": score})

    def test(self, params: dict[str, Any]) -> dict[str, float]:
        examples = self.splits.test[: self.max_test] if self.max_test else self.splits.test
        prompt = self.system_prompt.data  # the last iterate, whatever scored best on a batch
        replies = evaluate_all(lambda ex: self.query_model(prompt, ex.question), examples, concurrency(self.student),
                               desc=f"{self.name} test")
        acc = 100 * sum(self._scored(ex.answer, r, ex.question) for ex, r in zip(examples, replies)) \
            / max(len(examples), 1)
        return {"acc": acc, f"acc_{self.name}": acc, "n_test": len(examples),
                "student_calls": self.student.usage.calls}


def llm_judge(judge: Any) -> Callable[[str, Any], bool]:
    """A scorer whose verdict comes from an LLM (textgrad's BBH grader): 1 between the
    <ACCURACY> tags means right. Plain scorer calls (no question) are refused."""
    import re

    def verdict(question: str, answer: str, response: Any) -> bool:
        request = JUDGE_REQUEST.format(question=question, answer=answer, response=response)
        reply = judge.complete([{"role": "system", "content": JUDGE_SYSTEM},
                                {"role": "user", "content": request}]).text
        found = re.search(r"<ACCURACY>(.*?)</ACCURACY>", reply, re.S)
        return bool(found) and found.group(1).strip() == "1"

    def needs_question(answer: str, response: Any) -> bool:
        raise TypeError("an LLM judge needs the question: call scorer.judge(question, answer, response)")

    needs_question.judge = verdict  # type: ignore[attr-defined]
    return needs_question


def majority_answer(replies: list[str]) -> str:
    """textgrad's final entry: `Answer: X` for the most common first-`Answer:` letter over all
    iterates (ties go to the letter seen first; replies without a letter count as None)."""
    from statistics import multimode

    from tasks.trace_paper.bbh import first_answer_letter

    return f"Answer: {multimode([first_answer_letter(r) for r in replies])[0]}"


def join(*items):
    """Joins the items into one text, one numbered entry per item."""
    return "\n\n".join(f"[{i}]: {item}" for i, item in enumerate(items))


class SolutionTask:
    """TextGrad's test-time solution optimization: each question's answer is the parameter. The
    student answers every question once (concurrently); a wrong answer is then improved, one
    optimizer step per harness step, from a critic's review, up to `max_iterations` times or until
    it is right. test() scores the last iterate of every question."""

    higher_is_better = True

    def __init__(self, name: str, examples: list[Example], scorer: Callable[[str, Any], bool], student: Any,
                 constraint: str, limit: int | None = None, max_iterations: int = 3) -> None:
        if not examples or max_iterations < 1:
            raise ConfigError(f"task: {name} needs questions and max_iterations >= 1")
        self.name, self.examples, self.scorer, self.student = name, examples, scorer, student
        self.max_iterations = int(max_iterations)
        self.limit = int(limit) if limit else self.max_iterations * len(examples)
        self.response = node("", trainable=True, name="response", constraint=constraint)
        self.objective = ("Change the solution in #Variables so that it answers the question correctly, "
                          "taking the review in #Outputs and the #Feedback into account.")
        self.finished = False  # True once every question is done (the loop may then stop)
        self._answers: list[str] = []  # the latest answer to each question
        self._history: list[list[str]] = []  # every iterate of each question, zero-shot first
        self._zero_shot: list[str] = []
        self._current: int | None = None
        self._cursor, self._iteration, self._optimized = 0, 0, 0
        self._review = bundle(catch_execution_error=False)(self.review)

    def review(self, question, response):
        """Reviews the proposed solution to the question and returns the critic's comments."""
        user = f"Question:\n{question}\n\nProposed solution:\n{response}"
        messages = [{"role": "system", "content": CRITIC_SYSTEM}, {"role": "user", "content": user}]
        return self.student.complete(messages).text

    def _solve(self, example: Example) -> str:
        messages = [{"role": "system", "content": STUDENT_SYSTEM}, {"role": "user", "content": example.question}]
        return self.student.complete(messages).text

    def parameters(self) -> list:
        return [self.response]

    def init_params(self) -> dict[str, Any]:
        return {self.response.py_name: self.response.data}

    def _correct(self, i: int) -> bool:
        return bool(self.scorer(self.examples[i].answer, self._answers[i]))

    def _advance(self) -> int | None:
        """The next question whose answer is still wrong (right ones are finished as they are)."""
        while self._cursor < len(self.examples):
            i, self._cursor = self._cursor, self._cursor + 1
            if not self._correct(i):
                return i
        return None

    def _first_answers(self) -> None:
        """The student's zero-shot answer to every question, asked concurrently (once)."""
        if not self._zero_shot:
            self._zero_shot = evaluate_all(self._solve, self.examples, concurrency(self.student),
                                           desc=f"{self.name} zero-shot")
            self._answers = list(self._zero_shot)
            self._history = [[a] for a in self._zero_shot]

    def evaluate(self, params: dict[str, Any]) -> Feedback:
        self._first_answers()
        if self._current is not None:  # the optimizer has just rewritten the current answer
            self._answers[self._current] = str(params.get(self.response.py_name, self.response.data))
            self._history[self._current].append(self._answers[self._current])
            self._iteration += 1
            if self._correct(self._current) or self._iteration >= self.max_iterations:
                self._current = None
        if self._current is None:
            self._current, self._iteration = self._advance(), 0
            self._optimized += self._current is not None
        acc = sum(map(self._correct, range(len(self.examples)))) / len(self.examples)
        if self._current is None:
            self.finished = True
            return Feedback(score=acc, text=DONE, output=self.response, info={"finished": 1.0})
        self.response._data = self._answers[self._current]
        question = node(self.examples[self._current].question, name="question")
        return Feedback(score=acc, text=SOLUTION_FEEDBACK, output=self._review(question, self.response),
                        info={"question": self._current, "iteration": self._iteration})

    def test(self, params: dict[str, Any]) -> dict[str, float]:
        self._first_answers()  # questions the budget never reached keep their zero-shot answer
        acc = 100 * sum(map(self._correct, range(len(self.examples)))) / len(self.examples)
        zero = 100 * sum(self.scorer(e.answer, a) for e, a in zip(self.examples, self._zero_shot)) / len(self.examples)
        # textgrad's script ends each question's history with a majority vote over its iterates
        votes = [majority_answer(h) for h in self._history]
        majority = 100 * sum(self.scorer(e.answer, v) for e, v in zip(self.examples, votes)) / len(self.examples)
        return {"acc": acc, f"acc_{self.name}": acc, "zero_shot_acc": zero, "majority_acc": majority,
                f"majority_acc_{self.name}": majority, "n_test": len(self.examples),
                "questions_optimized": self._optimized, "student_calls": self.student.usage.calls}


# -- Trace's Table 2 (the TextGrad comparison): which protocol each dataset uses ---------------------

TABLE2 = {  # dataset -> (protocol, default source)
    "mmlu_machine_learning": ("solution", "cais/mmlu"),
    "mmlu_college_physics": ("solution", "cais/mmlu"),
    "gpqa_diamond": ("solution", "Idavidrein/gpqa"),
    "object_counting": ("prompt", None),
    "word_sorting": ("prompt", None),
    "gsm8k": ("prompt", "openai/gsm8k"),
}


def textgrad_task(dataset: str, student: Any, source: str | None = None, limit: int | None = None,
                  seed: int = 0, max_iterations: int = 3, batch_size: int = 3, max_test: int | None = None,
                  mode: str = "paper", smoke_source: str = "tests/data/bbh",
                  judge: Any = None, bbh_source: str = BBH_DATA) -> Any:
    """A row of Table 2, on textgrad's own task definitions: MMLU and GPQA are solution
    optimization scored on the first `Answer: X`; BBH and GSM8K prompt optimization, all starting
    from textgrad's numeric task description; word sorting is graded by an LLM judge (`judge`,
    textgrad's evaluation engine), object counting and GSM8K by the integer they end with."""
    if dataset not in TABLE2:
        raise ConfigError(f"task.dataset: {dataset!r} is not one of {', '.join(TABLE2)}")
    protocol, default = TABLE2[dataset]
    default = default or bbh_source  # BBH: where the rest of the harness reads it (task=bbh's source)
    if mode == "smoke":  # the invented fixtures: BBH files at the top, the others in subfolders
        source = smoke_source if TABLE2[dataset][1] is None else f"{smoke_source}/{dataset.split('_')[0]}"
    source = source or default
    if protocol == "solution":
        examples = load_gpqa("gpqa_diamond", source) if dataset.startswith("gpqa") else \
            load_mmlu(dataset.removeprefix("mmlu_"), source)
        letter = "The last line must be `Answer: X`, where X is one of A, B, C, D."
        return SolutionTask(dataset, examples, score_letter_first, student, letter, limit, max_iterations)
    if dataset == "gsm8k":
        splits, scorer = load_gsm8k(source), score_integer
    else:
        splits = textgrad_splits(load_bbh(dataset, source))
        if dataset == "object_counting":
            scorer = score_integer
        else:
            if judge is None:
                raise ConfigError(f"task.dataset={dataset} is graded by an LLM judge: give task.judge")
            scorer = llm_judge(judge)
    return PromptTask(dataset, splits, scorer, student, NUMBER_INSTRUCTION, limit or 12, batch_size, 4, seed,
                      max_test)

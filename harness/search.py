"""Several candidates per step, each evaluated by the task and counted in its budget.

    python -m harness.optimize task=numeric optimizer=optoprime_multi llm=openai
    python -m harness.optimize task=bbh optimizer=optoprime_multi optimizer.candidates=5 llm=openai
    python -m harness.optimize task=numeric optimizer=best_of_n optimizer@optimizer.inner=optoprime llm=openai
    python -m harness.optimize task=traffic optimizer=beam optimizer@optimizer.inner=pso

- `MultiCandidateAdapter` (optimizer=optoprime_multi): OptoPrimeMulti proposes k updates from
  one report (k requests at k temperatures); each is evaluated by the task; the best by the
  task's score is kept, and its feedback drives the next step.
- `Search` (optimizer=best_of_n, optimizer=beam): any ask/tell optimizer of this harness,
  branched. Each round, every branch kept so far is copied `branches` times; each copy asks once,
  the task evaluates its proposal, the copy is told the feedback; the best `width` copies (by the
  task's score) are kept. width 1 = best-of-n, width > 1 = beam search.

The default inner method is Trace NoMem asking at temperature 0.7 (optimizer=trace_sampled):
copies of a method at temperature 0 would all propose the same thing.

Every evaluation is one step of the run: the budget (`task.limit`) and the record's curve count
each candidate, so these methods spend the same evaluations as a one-candidate method. A proposal
already evaluated in the same round is not evaluated again. Branches share the run's LLM clients
(and task): a request of one branch is never a copy of another's cached sample, and every call
counts in the run's cost once. Upstream Trace's unreleased search algorithms (BestOfN, Beam, UCB)
select on a separate validation pass; here the selection is the evaluation the step already made.
"""
from __future__ import annotations

import copy
import io
import json
import math
from dataclasses import dataclass
from typing import Any, Callable

from harness.api import ConfigError, Feedback, Params
from harness.trace_adapter import TraceAdapter


@dataclass
class Tried:
    params: Params
    feedback: Feedback
    source: Any = None  # the branch (or candidate index) that proposed it


def _key(params: Params) -> str:
    return json.dumps(params, sort_keys=True, default=repr)


class Round:
    """Candidates to evaluate one at a time, then ranked by the task's score (best first; a NaN
    score counts as the worst). Ties go to the later candidate: under Table 1's paper protocol an
    unvalidated step scores -inf, and among OptoPrimeMulti's candidates the last one is asked at
    the lowest temperature, the one trace-opt 0.1.3.8 keeps by default."""

    def __init__(self, candidates: list[tuple[Params, Any]], higher_is_better: bool) -> None:
        seen: set[str] = set()
        self.pending: list[tuple[Params, Any]] = []
        for params, source in candidates:
            if _key(params) not in seen:  # an identical proposal is evaluated once
                seen.add(_key(params))
                self.pending.append((dict(params), source))
        self.tried: list[Tried] = []
        self.higher_is_better = higher_is_better
        self.asked: tuple[Params, Any] | None = None

    def next(self) -> Params:
        self.asked = self.pending.pop(0)
        return dict(self.asked[0])

    def told(self, params: Params, feedback: Feedback) -> None:
        source = self.asked[1] if self.asked is not None else None
        self.tried.append(Tried(dict(params), feedback, source))
        self.asked = None

    @property
    def done(self) -> bool:
        return not self.pending and self.asked is None

    def ranked(self) -> list[Tried]:
        def value(i: int) -> tuple[bool, float, int]:
            score = self.tried[i].feedback.score
            if math.isnan(score):  # below everything, -inf included
                return False, 0.0, i
            return True, score if self.higher_is_better else -score, i

        order = sorted(range(len(self.tried)), key=value, reverse=True)
        return [self.tried[i] for i in order]


class MultiCandidateAdapter(TraceAdapter):
    """TraceAdapter over OptoPrimeMulti: a step's candidates are evaluated, the best one is kept."""

    def __init__(self, task: Any, llm: Any, optimizer: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(task, llm, optimizer, **kwargs)
        if not callable(getattr(self.optimizer, "propose_all", None)):
            raise ConfigError(f"optimizer=optoprime_multi needs an optimizer that proposes several updates "
                              f"(propose_all), got {type(self.optimizer).__name__}")
        self.higher_is_better = bool(getattr(task, "higher_is_better", True))
        self.round: Round | None = None
        self.rounds = 0

    def _current(self) -> Params:
        return {p.py_name: p.data for p in self.optimizer.parameters}

    def ask(self) -> Params:
        self._stepped = False
        if self.round is not None and self.round.pending:
            return self.round.next()
        if not self._step_due:  # the first evaluation, or one after a skipped update
            self.round = Round([(self._current(), None)], self.higher_is_better)
            return self.round.next()
        self._step_due, self._stepped = False, True
        current = self._current()
        updates = self.optimizer.propose_all()
        candidates = [({**current, **{p.py_name: v for p, v in update.items()}}, i)
                      for i, update in enumerate(updates)]
        self.round, self.rounds = Round(candidates, self.higher_is_better), self.rounds + 1
        return self.round.next()

    def tell(self, params: Params, feedback: Feedback) -> None:
        assert self.round is not None, "tell() before ask()"
        self.round.told(params, feedback)
        if not self.round.done:
            self._skipped = False
            return
        best = self.round.ranked()[0]
        for parameter in self.optimizer.parameters:  # the kept candidate is what the next step improves
            if parameter.py_name in best.params:
                parameter._data = best.params[parameter.py_name]
        super().tell(best.params, best.feedback)

    def step_metrics(self) -> dict[str, float]:
        """The candidate's round and index; the round's requests are on its first evaluation."""
        source = self.round.tried[-1].source if self.round and self.round.tried else None
        return {"search/round": self.rounds, "search/candidate": -1 if source is None else source,
                "trace/skipped": int(self._skipped)}


def _shared(obj: Any, depth: int = 4) -> list[Any]:
    """What branches share instead of copying, a few attributes deep: LLM clients (and meters),
    which count a run's calls and must not repeat each other's cached samples, and open streams
    (a library's printer), which cannot be copied."""
    found: list[Any] = []
    values = list(vars(obj).values()) if hasattr(obj, "__dict__") and not isinstance(obj, type) else []
    values += [v for v in obj.values()] if isinstance(obj, dict) else []
    for value in values:
        if isinstance(value, io.IOBase) or (callable(getattr(value, "complete", None)) and not isinstance(value, type)):
            found.append(value)
            value = getattr(value, "inner", None)  # a meter's or a cache's client
        if depth > 0 and value is not None and not isinstance(value, (str, bytes, int, float, type)):
            found += _shared(value, depth - 1)
    return found


class Search:
    """Best-of-n (width 1) or beam search (width > 1) over branches of any ask/tell optimizer."""

    finished = False

    def __init__(self, task: Any, inner: Callable[..., Any], branches: int = 3, width: int = 1) -> None:
        if branches < 1 or width < 1:
            raise ConfigError(f"optimizer.branches and optimizer.width must be >= 1, got {branches} and {width}")
        self.task, self.branches, self.width = task, int(branches), int(width)
        first = inner(task=task)
        # Shared, never copied: the task and what it holds (its traced agent, its student), and
        # every client the optimizer holds (a copied cache client would repeat its samples).
        held = [v for v in vars(task).values() if hasattr(v, "__dict__")] if hasattr(task, "__dict__") else []
        self.shared = {id(o): o for o in [task, *held, *_shared(task), *_shared(first)]}
        self.meters = list(getattr(first, "meters", []))
        self.higher_is_better = bool(getattr(task, "higher_is_better", True))
        self.round = Round([], self.higher_is_better)
        self.kept: list[Tried] = []  # the branches the next round copies, with what they last tried
        self._start = first
        self.rounds = 0

    def ask(self) -> Params:
        if self._start is not None:  # the inner optimizer's own first proposal
            self.round = Round([(self._start.ask(), self._start)], self.higher_is_better)
            self._start = None
        elif not self.round.pending:
            self._new_round()
        return self.round.next()

    def _new_round(self) -> None:
        candidates = []
        for parent in self.kept:
            for _ in range(self.branches):
                self._restore(parent.params)
                child = copy.deepcopy(parent.source, memo=dict(self.shared))
                candidates.append((child.ask(), child))
        self.round, self.rounds = Round(candidates, self.higher_is_better), self.rounds + 1

    def _restore(self, params: Params) -> None:
        """A traced task's parameters hold the last evaluated candidate: put the parent's back, so
        its copy reports (and proposes from) the values it was told about."""
        for parameter in getattr(self.task, "parameters", lambda: [])():
            if parameter.py_name in params:
                parameter._data = params[parameter.py_name]

    def tell(self, params: Params, feedback: Feedback) -> None:
        branch = self.round.asked[1] if self.round.asked else None
        self.round.told(params, feedback)
        if branch is not None:
            branch.tell(params, feedback)
        if self.round.done:
            self.kept = self.round.ranked()[: self.width]
            self.finished = all(getattr(t.source, "finished", False) for t in self.kept)

    @property
    def llm_usage(self) -> Any:
        source = self.kept[0].source if self.kept else self._start
        return getattr(source, "llm_usage", None)

    def step_metrics(self) -> dict[str, float]:
        return {"search/round": self.rounds, "search/candidate": len(self.round.tried) - 1}

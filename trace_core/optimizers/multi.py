"""OptoPrimeMulti: OptoPrime that proposes several candidate updates per step.

    from trace_core.optimizers.multi import OptoPrimeMulti
    optimizer = OptoPrimeMulti([x], llm=llm, num_candidates=3, temperatures=(1.3, 0.0))
    updates = optimizer.propose_all()     # one report, one request per candidate
    optimizer.update(updates[i])          # the caller picks one (the harness: by the task's score)

The report is built once; candidate i is asked at the i-th of `num_candidates` temperatures
spread evenly from the first to the last of `temperatures` (trace-opt 0.1.3.8's OptoPrimeMulti
also spreads its requests from 1.3 down to 0.0). Each request is its own StepLog. trace-opt picks
one reply without trying them (by default the last; or with another LLM call); this library only
proposes, so that a caller can evaluate every candidate and keep the best by a real score.
`step()` alone (no caller choosing) applies the last candidate, as trace-opt's default does.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from trace_core.graph import ParameterNode
from trace_core.optimizers.optoprime import OptoPrime


def spread(first: float, last: float, count: int) -> list[float]:
    """`count` values evenly from `first` to `last` (just `first` when count is 1)."""
    if count == 1:
        return [float(first)]
    return [first + i * (last - first) / (count - 1) for i in range(count)]


class OptoPrimeMulti(OptoPrime):
    def __init__(self, parameters: Iterable[ParameterNode], llm: Any, num_candidates: int = 3,
                 temperatures: Sequence[float] = (1.3, 0.0), **kwargs: Any) -> None:
        super().__init__(parameters, llm, **kwargs)
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {num_candidates}")
        if len(temperatures) != 2 or min(temperatures) < 0:
            raise ValueError(f"temperatures must be [first, last], both >= 0, got {list(temperatures)}")
        self.num_candidates = int(num_candidates)
        self.temperatures = spread(float(temperatures[0]), float(temperatures[1]), self.num_candidates)

    def propose_all(self) -> list[dict[ParameterNode, Any]]:
        """One update per candidate, in temperature order (an empty update keeps every value)."""
        if not self.subgraphs:
            raise RuntimeError("propose_all() before backward(): there is no feedback to act on")
        messages = self._prompt()
        return [self._ask(messages, temperature=t) for t in self.temperatures]

    def propose(self) -> dict[ParameterNode, Any]:
        return self.propose_all()[-1]

"""`Metered`: what one role of a run (optimizer, student, reflection model) asked of a client.

    from trace_core.llm import Metered
    optimizer_llm = Metered(llm, role="optimizer")
    optimizer_llm.complete(messages)
    optimizer_llm.spent          # Usage(calls=requests made, tokens the replies took)

Several roles often share one client (the student of a BBH run is the optimizer's client when no
other model is named), so the client's own total cannot say who spent what. A meter counts the
requests that pass through it and the tokens their replies say they took. A reply served from the
response cache counts as a request with its original tokens: the per-role numbers of a replayed
run equal the recorded run's, while the run's `cost` (the ledger) says no call reached a model.
The wrapped client has already counted each call in the run's ledger; a meter never adds to it.
"""
from __future__ import annotations

import dataclasses
import threading
from typing import Any

from .base import Completion, Usage


class Metered:
    """A client (anything with `complete`) whose requests are also counted under `role`."""

    def __init__(self, inner: Any, role: str) -> None:
        if not callable(getattr(inner, "complete", None)):
            raise TypeError(f"Metered needs a client with complete(), got {type(inner).__name__}")
        self.inner, self.role = inner, role
        self._spent = Usage()
        self._lock = threading.Lock()

    def complete(self, messages: list[dict], **params: Any) -> Completion:
        reply = self.inner.complete(messages, **params)
        with self._lock:
            self._spent += Usage(calls=1, prompt_tokens=reply.usage.prompt_tokens,
                                 completion_tokens=reply.usage.completion_tokens,
                                 cache_hits=int(reply.cached), seconds=reply.usage.seconds)
        return reply

    @property
    def spent(self) -> Usage:
        """Requests through this meter (served by a model or the cache) and their replies' tokens."""
        with self._lock:
            return dataclasses.replace(self._spent)

    def as_metrics(self) -> dict[str, int]:
        """`llm/<role>/requests`, `.../prompt_tokens`, `.../completion_tokens` for a record."""
        spent = self.spent
        return {f"llm/{self.role}/requests": spent.calls, f"llm/{self.role}/prompt_tokens": spent.prompt_tokens,
                f"llm/{self.role}/completion_tokens": spent.completion_tokens}

    # Everything else (model, params, usage, variant, max_concurrency, mark) is the client's.
    def __getattr__(self, name: str) -> Any:
        if name in ("inner", "__getstate__", "__setstate__", "__deepcopy__"):
            raise AttributeError(name)  # copying and unpickling look these up before `inner` exists
        return getattr(self.inner, name)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Metered({self.inner!r}, role={self.role!r})"

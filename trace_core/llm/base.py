"""The one interface every language-model client in trace_core offers.

A client turns OpenAI-style chat messages (``[{"role": "user", "content": "..."}]``) into a
`Completion`, and keeps a running `Usage` total over its life so a run can report what it cost.
"""
from __future__ import annotations

import contextvars
import dataclasses
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator


class LLMError(RuntimeError):
    """A language-model request that cannot be answered. The message is always a single line."""

    def __init__(self, message: str, *, status: int | None = None, rejected: bool | None = None) -> None:
        # Logs and run records quote this message; one line keeps them greppable.
        super().__init__(one_line(message))
        self.status = status
        # The server refused the request itself (bad or unsupported parameter): asking again
        # unchanged cannot help, asking without the parameter may. 400/422 say so; some servers
        # (llama.cpp) answer 500 and say so only in the body.
        self.rejected = status in (400, 422) if rejected is None else rejected


class LLMConfigError(LLMError, ValueError):
    """A client configured in a way that would be unsafe or cannot work (e.g. a key in a config)."""


# Request parameters whose type every OpenAI-compatible server agrees on: a wrong one is refused
# when the client is built, not sent (a server may silently ignore `temperature="hot"`).
_NUMBER_PARAMS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
_COUNT_PARAMS = ("max_tokens", "max_completion_tokens", "n")


def check_request_params(params: dict[str, Any]) -> None:
    """Raise LLMConfigError for a default request parameter of the wrong type or range."""
    for name in _NUMBER_PARAMS:
        value = params.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise LLMConfigError(f"llm.{name}: expected a number, got {value!r}")
    for name in _COUNT_PARAMS:
        value = params.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise LLMConfigError(f"llm.{name}: expected an integer, got {value!r}")
        if value < 1:
            raise LLMConfigError(f"llm.{name} must be >= 1, got {value}")
    seed = params.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise LLMConfigError(f"llm.seed: expected an integer, got {seed!r}")


class ReplayMissError(LLMError):
    """Replay mode was asked for a request that was never recorded."""


def one_line(text: object, limit: int | None = None) -> str:
    """`text` with every run of whitespace collapsed to one space, optionally shortened."""
    flat = re.sub(r"\s+", " ", str(text)).strip()
    if limit is not None and len(flat) > limit:
        flat = flat[: max(limit - 3, 0)] + "..."
    return flat


@dataclass
class Usage:
    """What requests cost: calls that reached a model, tokens, answers served from a cache, time."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    seconds: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)))

    def __radd__(self, other: Any) -> Usage:
        # Lets `sum(usages)` start from the integer 0.
        if other == 0:
            return Usage() + self
        return NotImplemented

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """Plain numbers; `prefix="llm/"` gives the namespaced metric keys a record uses."""
        return {prefix + f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class Completion:
    """One reply. `usage` is what this reply cost; `cached` says it came from a response cache.

    `model` is the model the endpoint says answered. `finish_reason` is the server's
    ("length": cut off at max_tokens). A cached reply's `usage` has `calls=0, cache_hits=1` and
    the tokens the original call used, so a replayed step logs what the step took; the client's
    running total counts only the hit. `key` is the response-cache key (the CLI
    `python -m trace_core.llm.cache_cli` takes it).
    """

    text: str
    usage: Usage
    cached: bool = False
    model: str = ""
    finish_reason: str = ""
    key: str = ""

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class Ledger:
    """The total spent by every client built inside one `spending_ledger()`: all roles of a run
    (optimizer, student, judge), each request counted once, by the client that made it."""

    def __init__(self) -> None:
        self._usage = Usage()
        self._lock = threading.Lock()
        self.models: dict[str, int] = {}  # what the endpoints said answered -> replies

    def add(self, usage: Usage, model: str = "") -> None:
        with self._lock:
            self._usage += usage
            if model and usage.calls:
                self.models[model] = self.models.get(model, 0) + usage.calls

    @property
    def total(self) -> Usage:
        with self._lock:
            return dataclasses.replace(self._usage)

    # A deep copy of a client (an optimizer branching its search) still spends for the same run;
    # a client pickled into another process cannot add to this one.
    def __deepcopy__(self, memo: dict) -> Ledger:
        return self

    def __reduce__(self) -> tuple:
        return (Ledger, ())


_LEDGER: contextvars.ContextVar[Ledger | None] = contextvars.ContextVar("trace_core_llm_ledger", default=None)


@contextmanager
def spending_ledger() -> Iterator[Ledger]:
    """Clients built inside this block report what they spend to the ledger it yields (from any
    thread: a client binds to the ledger when it is built)."""
    token = _LEDGER.set(Ledger())
    try:
        yield _LEDGER.get()
    finally:
        _LEDGER.reset(token)


def check_messages(messages: Any) -> list[dict]:
    """Fail early, with a clear message, on anything that is not a list of chat-message dicts."""
    if not isinstance(messages, list) or not messages:
        raise TypeError(f"messages must be a non-empty list of dicts, got {type(messages).__name__}")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise TypeError(f"messages[{i}] must be a dict with 'role' and 'content', got {message!r:.80}")
    return messages


def last_user_text(messages: list[dict]) -> str:
    """The text of the last user message (text parts joined when the content is a list)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content)
    return ""


class LLM:
    """Base class of the clients: `complete(messages, **params) -> Completion` and a `usage` total.

    Subclasses implement `complete` and call `_add_usage` once per reply. `model` names the model
    and `params` holds the default request parameters (temperature, max_tokens, ...) the client
    adds to every request; a response cache keys on both.
    """

    model: str = ""

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params: dict[str, Any] = dict(params or {})
        self._usage = Usage()
        self._lock = threading.Lock()
        self._ledger: Ledger | None = _LEDGER.get()

    def complete(self, messages: list[dict], **params: Any) -> Completion:
        raise NotImplementedError

    @property
    def usage(self) -> Usage:
        """A snapshot of everything this object has spent so far (safe to read from any thread)."""
        with self._lock:
            return dataclasses.replace(self._usage)

    def _add_usage(self, usage: Usage, model: str = "", ledger: bool = True) -> None:
        """Count `usage` in this client's total and (unless a client it wraps already did) the ledger."""
        with self._lock:
            self._usage += usage
        if ledger and getattr(self, "_ledger", None) is not None:
            self._ledger.add(usage, model)

    # Locks, connections and HTTP clients cannot be copied or pickled. Optimizers get deep-copied
    # (e.g. to branch a search), so a copy drops them and builds fresh ones.
    _transient: tuple[str, ...] = ("_lock",)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in self._transient:
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._restore()

    def _restore(self) -> None:
        """Rebuild whatever `_transient` dropped besides the usage lock (subclasses override)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"

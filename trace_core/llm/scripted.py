"""`ScriptedLLM`: a deterministic TEST DOUBLE that stands in for a language model.

For unit tests and smoke runs only (`llm=scripted`): it answers from a fixed list or a Python
function and never asks a real model, so nothing it produces belongs in a results table. It
still counts calls and (estimated) tokens, so the accounting path of a run is exercised.
"""
from __future__ import annotations

import copy
import importlib
import json
import time
from collections.abc import Callable
from typing import Any

from .base import LLM, Completion, Usage, check_messages

Responder = Callable[[list[dict]], str]


def resolve_callable(path: str) -> Callable[..., Any]:
    """Import `"pkg.module:function"` or `"pkg.module.function"` (how a YAML config names code)."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"not a dotted path to a function: {path!r}")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{path!r} names {type(target).__name__}, not a function")
    return target


def keep_variables(messages: list[dict]) -> str:
    """Test-double responder: a well-formed optimizer reply that suggests no change at all.

    The reply has the JSON shape OptoPrime-style optimizers parse, `{"reasoning", "suggestion"}`,
    with an empty suggestion, so every variable keeps its value. Smoke runs use it to drive the
    prompt -> parse -> update path end to end without a model.
    """
    return json.dumps({
        "reasoning": "Scripted test double (no language model was asked): keep every variable as it is.",
        "suggestion": {},
    })


def _estimate_tokens(text: str) -> int:
    # About four characters per token; only so that token counters move in tests.
    return len(text) // 4


def _message_text(messages: list[dict]) -> str:
    parts = (m["content"] if isinstance(m["content"], str) else json.dumps(m["content"]) for m in messages)
    return "".join(parts)


class ScriptedLLM(LLM):
    """A deterministic test double, not a model: fixed replies (cycled) or a responder function.

    `responder` may be a callable `messages -> str` or its dotted path. Every request is kept in
    `self.requests` (the message lists) and `self.request_params` (the keyword arguments).
    """

    model = "scripted"

    def __init__(self, replies: list[str] | None = None, responder: Responder | str | None = None,
                 model: str | None = None) -> None:
        super().__init__()
        # The model a command named (`llm.model=...` with `mode=smoke`): kept, never reported as
        # having answered (`self.model` stays "scripted").
        self.asked_model = model
        if (replies is None) == (responder is None):
            raise ValueError("ScriptedLLM needs exactly one of replies=[...] or responder=...")
        if replies is not None and not replies:
            raise ValueError("ScriptedLLM(replies=[]) has nothing to say")
        self.replies = None if replies is None else [str(r) for r in replies]
        self.responder: Responder | None = (
            resolve_callable(responder) if isinstance(responder, str) else responder
        )
        self.requests: list[list[dict]] = []
        self.request_params: list[dict[str, Any]] = []

    def complete(self, messages: list[dict], **params: Any) -> Completion:
        check_messages(messages)
        start = time.perf_counter()
        with self._lock:  # keeps the reply order and the request log consistent across threads
            turn = len(self.requests)
            self.requests.append(copy.deepcopy(messages))
            self.request_params.append(dict(params))
        if self.replies is not None:
            text = self.replies[turn % len(self.replies)]
        else:
            text = self.responder(copy.deepcopy(messages))
            if not isinstance(text, str):
                raise TypeError(f"responder returned {type(text).__name__}, expected str")
        usage = Usage(
            calls=1,
            prompt_tokens=_estimate_tokens(_message_text(messages)),
            completion_tokens=_estimate_tokens(text),
            seconds=time.perf_counter() - start,
        )
        self._add_usage(usage, model=self.model)
        return Completion(text=text, usage=usage, model=self.model)

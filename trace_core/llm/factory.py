"""`openai_llm`: what `llm=openai` and `llm=replay` build, with every knob at the top level.

Keeping the options flat lets a command line say `llm.model=...` and `llm.base_url=...` rather than
reaching into a nested backend, and lets `llm=replay` reuse the very settings (model, endpoint,
default parameters) that `llm=openai` keys its cache on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import LLM
from .cache import CachedLLM
from .openai_backend import OpenAIChat


def openai_llm(model: str, cache_path: str | Path | None = None, cache_mode: str = "readwrite",
               **options: Any) -> LLM:
    """An `OpenAIChat(model, **options)`, behind a `CachedLLM` when `cache_path` is set.

    `options` are OpenAIChat's: connection settings (base_url, api_key_env, timeout_s, ...) and
    default request parameters (temperature, ...). `cache_mode="replay"` uses no client: a
    `CachedLLM` that answers only from `cache_path`, keyed with the same `model`, endpoint and
    request parameters a recording run used.
    """
    return with_cache(OpenAIChat(model, **options), cache_path, cache_mode)  # connects lazily


def with_cache(chat: OpenAIChat, cache_path: str | Path | None, cache_mode: str) -> LLM:
    """`chat` behind the response cache at `cache_path` (none: `chat` itself); replay: the cache alone."""
    if cache_mode == "replay":
        if cache_path is None:
            raise ValueError("cache_mode='replay' needs a cache_path to replay from")
        return CachedLLM(None, cache_path, mode="replay", model=chat.model, params=chat.params, endpoint=chat.endpoint)
    return chat if cache_path is None else CachedLLM(chat, cache_path, mode=cache_mode)

"""`openai_llm`: what `llm=openai` and `llm=replay` build, with every knob at the top level.

Keeping the options flat lets a command line say `llm.model=...` and `llm.base_url=...` rather than
reaching into a nested backend, and lets `llm=replay` reuse the very settings (model, default
parameters) that `llm=openai` keys its cache on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import LLM
from .cache import CachedLLM
from .openai_backend import OpenAIChat


def openai_llm(
    model: str,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    timeout_s: float = 60,
    max_retries: int = 5,
    backoff_s: float = 1.0,
    max_concurrency: int = 4,
    cache_path: str | Path | None = None,
    cache_mode: str = "readwrite",
    **default_params: Any,
) -> LLM:
    """An `OpenAIChat`, behind a `CachedLLM` when `cache_path` is set.

    `cache_mode="replay"` builds no client at all: a `CachedLLM` that answers only from
    `cache_path`, keyed with the same `model` and `default_params` a recording run used.
    """
    if cache_mode == "replay":
        if cache_path is None:
            raise ValueError("cache_mode='replay' needs a cache_path to replay from")
        return CachedLLM(None, cache_path, mode="replay", model=model, params=default_params)
    chat = OpenAIChat(
        model, base_url=base_url, api_key_env=api_key_env, timeout_s=timeout_s, max_retries=max_retries,
        backoff_s=backoff_s, max_concurrency=max_concurrency, **default_params,
    )
    return chat if cache_path is None else CachedLLM(chat, cache_path, mode=cache_mode)

"""Language-model clients for trace_core: one interface, `complete(messages, **params) -> Completion`.

- `OpenAIChat`: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp's server).
- `CachedLLM`: a persistent SQLite response cache in front of a client; `mode="replay"` reruns a
  recorded experiment exactly and fails on anything new.
- `ScriptedLLM`: a deterministic test double for tests and smoke runs, never for results.
- `openai_llm`: the flat factory the Hydra configs `llm=openai` and `llm=replay` call.
- `Metered`: counts one role's requests and tokens over a (possibly shared) client.
- `spending_ledger()`: every client built inside it reports what it spends (all roles of a run).

The `openai` package is imported only when a request is first made.
"""
from .base import LLM, Completion, Ledger, LLMConfigError, LLMError, ReplayMissError, Usage, spending_ledger
from .cache import CachedLLM
from .factory import openai_llm
from .meter import Metered
from .openai_backend import OpenAIChat
from .scripted import ScriptedLLM, keep_variables, resolve_callable

__all__ = [
    "LLM",
    "CachedLLM",
    "Completion",
    "LLMConfigError",
    "Ledger",
    "Metered",
    "LLMError",
    "OpenAIChat",
    "ReplayMissError",
    "ScriptedLLM",
    "Usage",
    "keep_variables",
    "openai_llm",
    "resolve_callable",
    "spending_ledger",
]

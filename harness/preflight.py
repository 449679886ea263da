"""Check before work: a run whose method (or task) talks to an LLM endpoint finds out that it cannot
before its first evaluation, in one `error:` line, with nothing written.

    check_llms(resolved_config)     # harness.optimize.main, before the job records anything

For each OpenAI-compatible endpoint the config builds (`trace_core.llm.openai_llm`, also as the
`base` of a student or judge with another model name): the key's variable is set, the endpoint
answers `GET /models`, and the model is one it lists (when it lists any). A replay
(`cache_mode: replay`) needs no endpoint: its cache file must exist and hold replies of the model.
Which request a run asks first is only known once it runs; a replay that misses it stops there,
in one line (ReplayMissError).

Without this a run that happens to ask nothing (Fig. 5a's problem 42 is solved at its start) wrote
a record naming a model that was never there; such a run now also says so: `no_calls_note`.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterator, Mapping

from harness.api import ConfigError
from harness.identity import LLM_TARGETS

USERS = ("optimizer", "task", "model")  # where a method or task builds its clients (not the root `llm`)
BUILD_ONLY = ("_target_", "_convert_", "_partial_", "cache_path", "cache_mode")
NO_CALLS = "0 LLM calls"


def endpoint_configs(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The distinct endpoint configs a run builds clients from (a student's other model included)."""
    found: dict[str, dict[str, Any]] = {}
    for llm in _walk([config.get(key) for key in USERS]):
        found.setdefault(json.dumps(llm, sort_keys=True, default=str), llm)
    return list(found.values())


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, Mapping):
        if value.get("_target_") in LLM_TARGETS:
            yield dict(value)
            return
        base = value.get("base")
        if isinstance(base, Mapping) and base.get("_target_") in LLM_TARGETS and value.get("model"):
            yield {**base, "model": value["model"]}  # the same endpoint asked for another model
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def check_llms(config: Mapping[str, Any]) -> None:
    """Raise ConfigError (one line) for the first endpoint config a run could not use."""
    for llm in endpoint_configs(config):
        if llm.get("cache_mode") == "replay":
            check_replay_cache(llm.get("cache_path"), str(llm.get("model")))
        else:
            check_cache_file(llm.get("cache_path"))  # needs no network: said before the endpoint's answer
            check_endpoint(llm)


def check_cache_file(cache_path: str | None) -> None:
    """The response cache a recording run will write: a damaged file, or a place it cannot be made."""
    if not cache_path:
        return
    from trace_core.llm import LLMConfigError
    from trace_core.llm.cache import check_cache_path

    try:
        check_cache_path(Path(cache_path), writable=True)
    except LLMConfigError as exc:
        raise ConfigError(str(exc)) from None


def check_replay_cache(cache_path: str | None, model: str) -> None:
    if not cache_path:
        raise ConfigError("llm=replay needs llm.cache_path: the cache file of the run it replays")
    path = Path(cache_path)
    if not path.is_file():
        raise ConfigError(f"llm=replay: the cache {path} does not exist; give llm.cache_path=<the recording "
                          f"run's cache> (TRACE_LLM_CACHE sets the default)")
    try:
        with sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True) as db:  # read only: writes nothing
            rows = db.execute("SELECT model, COUNT(*) FROM completions GROUP BY model").fetchall()
    except sqlite3.Error as exc:
        raise ConfigError(f"llm=replay: cannot read the cache {path} ({exc}); move it aside if it is damaged") from None
    held = dict(rows)
    if not held.get(model):
        shown = ", ".join(f"{name} ({n})" for name, n in sorted(held.items())) or "no replies at all"
        raise ConfigError(f"llm=replay: the cache {path} holds no reply of model {model!r} (it holds: {shown}); "
                          f"give the llm.* settings the recording run had")


def check_endpoint(llm: Mapping[str, Any]) -> None:
    """Key, answer, model: what the first request would have found out, before any work."""
    import httpx

    from trace_core.llm import OpenAIChat

    options = {k: v for k, v in llm.items() if k not in BUILD_ONLY}
    try:
        chat = OpenAIChat(**options)  # refuses bad settings (a key in the config, OpenAI's key elsewhere)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"llm: {exc}") from None
    key = os.environ.get(chat.api_key_env) if chat.api_key_env else None
    if chat.api_key_env and not key:
        raise ConfigError(f"llm: no API key for {chat.endpoint}: set the environment variable {chat.api_key_env}")
    url = f"{chat.endpoint.rstrip('/')}/models"
    try:
        reply = httpx.get(url, headers={"Authorization": f"Bearer {key}"} if key else {},
                          timeout=min(chat.timeout_s, 30.0))
    except httpx.HTTPError as exc:
        raise ConfigError(f"llm: the endpoint {chat.endpoint} does not answer ({type(exc).__name__}: "
                          f"{str(exc) or 'no reply'}); start the server or fix llm.base_url") from None
    if reply.status_code in (401, 403):
        raise ConfigError(f"llm: {chat.endpoint} refused the key in {chat.api_key_env or 'no variable'} "
                          f"(HTTP {reply.status_code})")
    if reply.status_code != 200 or not chat.check_model:
        return  # it answers; a server without the model list cannot be asked which models it serves
    try:
        listed = [entry["id"] for entry in reply.json().get("data", [])]
    except (ValueError, TypeError, KeyError, AttributeError):
        return
    if listed and chat.model not in listed:
        shown = ", ".join(listed[:8]) + (", ..." if len(listed) > 8 else "")
        raise ConfigError(f"llm: model {chat.model!r} is not served at {chat.endpoint}, which lists: {shown} "
                          f"(set llm.model to one of them)")


def no_calls_note(config: Mapping[str, Any], usage: Any) -> dict[str, str]:
    """For the record's provenance: a run that could ask an endpoint but asked nothing says so."""
    asked = usage is not None and (usage.calls or usage.cache_hits)
    return {} if asked or not endpoint_configs(config) else {"llm": f"{NO_CALLS}: no model answered this run"}

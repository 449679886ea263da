"""configs/llm/{openai,replay,scripted}.yaml compose and build offline, without a key, writing nothing."""
from __future__ import annotations

import json

import pytest
from hydra.utils import instantiate

from support import compose_run
from trace_core.llm import CachedLLM, OpenAIChat, ScriptedLLM

MESSAGES = [{"role": "user", "content": "#Variables\n(int) x0=5\n#Feedback\nneeds to be larger"}]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_MODEL", "TRACE_LLM_CACHE"):
        monkeypatch.delenv(name, raising=False)


def build(name: str, tmp_path, *overrides: str):
    cache = [f"llm.cache_path={tmp_path / 'cache.sqlite'}"] if name != "scripted" else []
    cfg = compose_run("optimize", [f"llm={name}", "mode=smoke", *cache, *overrides], tmp_path / "run")
    assert cfg.hydra.runtime.choices.llm == name
    return instantiate(cfg.llm)


def test_openai_config_builds_without_key_or_network(tmp_path):
    llm = build("openai", tmp_path)
    assert isinstance(llm, CachedLLM) and llm.mode == "readwrite"
    assert isinstance(llm.inner, OpenAIChat)
    assert llm.model == llm.inner.model == "gpt-4o-2024-08-06"
    assert llm.params == {"temperature": 0} and llm.inner.base_url is None
    assert not (tmp_path / "cache.sqlite").exists()  # nothing is written until a request


def test_openai_config_takes_short_overrides(tmp_path):
    llm = build("openai", tmp_path, "llm.model=qwen-test", "llm.base_url=http://localhost:8000/v1",
                "llm.max_concurrency=8", "+llm.max_tokens=512")
    assert (llm.model, llm.inner.max_concurrency) == ("qwen-test", 8)
    assert llm.inner.endpoint == "http://localhost:8000/v1"
    assert llm.params == {"temperature": 0, "max_tokens": 512}
    assert isinstance(build("openai", tmp_path, "llm.cache_path=null"), OpenAIChat)


def test_replay_config_keys_like_the_openai_config(tmp_path):
    recorder = build("openai", tmp_path)
    recorder.inner = ScriptedLLM(replies=["recorded reply"])  # stands in for the server
    assert recorder.complete(MESSAGES).text == "recorded reply"

    replay = build("replay", tmp_path)
    assert isinstance(replay, CachedLLM) and replay.mode == "replay" and replay.inner is None
    reply = replay.complete(MESSAGES)
    assert reply.text == "recorded reply" and reply.cached


def test_scripted_config_is_the_keep_variables_test_double(tmp_path):
    llm = build("scripted", tmp_path)
    assert isinstance(llm, ScriptedLLM) and llm.model == "scripted"
    reply = json.loads(llm.complete(MESSAGES).text)
    assert reply["suggestion"] == {}
    assert llm.usage.calls == 1 and llm.requests == [MESSAGES]


def test_local_config_builds_with_cpu_server_defaults_and_starts_nothing(tmp_path):
    from trace_core.llm.local_server import LocalChat

    llm = build("local", tmp_path)
    assert isinstance(llm, CachedLLM) and isinstance(llm.inner, LocalChat)
    assert (llm.inner.timeout_s, llm.inner.max_concurrency, llm.inner.server.threads) == (600, 1, 1)
    assert llm.params == {"temperature": 0, "max_tokens": 1024}
    assert llm.inner.endpoint == "http://127.0.0.1:8765/v1" and llm.inner.server._process is None
    assert not (tmp_path / "cache.sqlite").exists()


def test_a_key_on_the_command_line_is_refused(tmp_path):
    with pytest.raises(Exception, match=r"refusing llm\.api_key.*llm\.api_key_env"):
        build("openai", tmp_path, "+llm.api_key=sk-dummy-0123456789")

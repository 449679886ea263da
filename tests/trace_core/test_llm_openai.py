"""OpenAIChat against a real HTTP server on 127.0.0.1 that each test starts and scripts."""
from __future__ import annotations

import copy
import json
import logging
import pickle
import socket
import threading
import time

import pytest

from fake_openai import FakeOpenAI, serving
from trace_core.llm import CachedLLM, LLMError, OpenAIChat, openai_llm
from trace_core.llm.openai_backend import GARBAGE_RETRIES

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}]


@pytest.fixture
def server():
    with serving() as fake:
        yield fake


@pytest.fixture(autouse=True)
def no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def chat(server: FakeOpenAI, **kwargs) -> OpenAIChat:
    options = dict(model="test-model", base_url=server.url, timeout_s=5, max_retries=5, backoff_s=0.01)
    return OpenAIChat(**{**options, **kwargs})


def test_request_carries_model_messages_and_params_and_usage_is_counted(server):
    llm = chat(server, temperature=0.3, max_tokens=50)
    reply = llm.complete(MESSAGES, max_tokens=20, top_k=5)
    assert reply.text == "reply 1" and reply.model == "test-model" and not reply.cached
    body = server.bodies[0]
    assert body["model"] == "test-model" and body["messages"] == MESSAGES
    assert body["temperature"] == 0.3 and body["max_tokens"] == 20  # the call overrides the default
    assert body["top_k"] == 5  # unknown to the openai client, still sent in the body
    assert server.headers[0]["Authorization"] == "Bearer not-needed"  # local server, no key set
    assert (reply.usage.calls, reply.usage.prompt_tokens, reply.usage.completion_tokens) == (1, 11, 7)
    llm.complete(MESSAGES)
    total = llm.usage
    assert (total.calls, total.prompt_tokens, total.completion_tokens, total.cache_hits) == (2, 22, 14, 0)
    assert total.seconds > 0


def test_key_is_read_from_the_named_variable(server, monkeypatch):
    monkeypatch.setenv("TRACE_TEST_KEY", "sk-test-123")
    chat(server, api_key_env="TRACE_TEST_KEY").complete(MESSAGES)
    assert server.headers[0]["Authorization"] == "Bearer sk-test-123"


@pytest.mark.parametrize("failure", ["429", "500", "garbage", "html", "empty", "null", "cut_body"])
def test_transient_failures_are_retried_until_success(server, failure, caplog):
    server.script = [failure, failure, "ok"]
    with caplog.at_level(logging.WARNING, logger="trace_core.llm.openai_backend"):
        reply = chat(server).complete(MESSAGES)
    assert reply.text == "reply 3" and server.seen == 3
    if failure not in ("cut_body",):  # a cut body is a dropped connection: the SDK retries it quietly
        assert len([r for r in caplog.records if "retr" in r.getMessage()]) == 2


def test_a_reply_slower_than_the_timeout_is_retried(server):
    server.script = ["slow", "ok"]
    llm = chat(server, timeout_s=0.5)
    assert llm.complete(MESSAGES).text == "reply 2"
    assert server.seen == 2 and llm.usage.calls == 1


def test_exhausted_retries_raise_one_line_error_naming_endpoint_model_and_status(server):
    server.script = ["500"] * 10
    with pytest.raises(LLMError) as info:
        chat(server, max_retries=2).complete(MESSAGES)  # the SDK's own retries
    message = str(info.value)
    assert server.seen == 3
    assert "\n" not in message
    assert server.url in message and "model=test-model" in message and "status=500" in message
    assert "after 3 attempt(s)" in message and "scripted 500 second line" in message
    assert info.value.status == 500


def test_every_kind_of_failure_shares_one_retry_budget(server):
    server.script = ["500", "empty", "429", "null", "500", "ok"]
    with pytest.raises(LLMError, match=r"after 4 attempt\(s\)"):
        chat(server, max_retries=3).complete(MESSAGES)
    assert server.seen == 4


def test_garbage_is_retried_only_a_bounded_number_of_times(server):
    server.script = ["garbage"] * 10
    with pytest.raises(LLMError, match="not a chat completion"):
        chat(server, max_retries=5).complete(MESSAGES)
    assert server.seen == GARBAGE_RETRIES + 1


def test_unauthorized_fails_at_once(server):
    server.script = ["401"]
    with pytest.raises(LLMError) as info:
        chat(server, api_key_env="TRACE_TEST_KEY").complete(MESSAGES)
    assert server.seen == 1 and info.value.status == 401
    assert "status=401" in str(info.value) and "TRACE_TEST_KEY" in str(info.value)


def test_wrong_route_fails_at_once(server):
    llm = OpenAIChat("test-model", base_url=server.url.removesuffix("/v1"), max_retries=5, backoff_s=0.01)
    with pytest.raises(LLMError, match="status=404"):
        llm.complete(MESSAGES)
    assert server.seen == 1


@pytest.mark.parametrize("action, words", [("empty", "no choices"), ("null", "no content")])
def test_a_reply_without_text_is_an_error_once_retries_are_spent(server, action, words):
    server.script = [action] * 5
    with pytest.raises(LLMError, match=words):
        chat(server, max_retries=2).complete(MESSAGES)
    assert server.seen == 3


def test_connection_errors_are_retried_then_reported():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    llm = OpenAIChat("test-model", base_url=f"http://127.0.0.1:{port}/v1", max_retries=2, backoff_s=0.01)
    with pytest.raises(LLMError, match=r"status=connection error after 3 attempt\(s\)"):
        llm.complete(MESSAGES)


def test_openai_without_key_fails_on_first_request_naming_the_variable():
    llm = OpenAIChat("gpt-4o-2024-08-06", api_key_env="TRACE_TEST_NO_SUCH_KEY")  # builds offline
    with pytest.raises(LLMError, match="set TRACE_TEST_NO_SUCH_KEY"):
        llm.complete(MESSAGES)


def test_concurrency_is_bounded_across_threads(server):
    server.delay_s = 0.2
    llm = chat(server, max_concurrency=2)
    replies: list[str] = []
    threads = [threading.Thread(target=lambda: replies.append(llm.complete(MESSAGES).text)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(replies) == 6 and server.seen == 6
    assert server.max_in_flight == 2  # parallel, but never more than two at once
    assert llm.usage.calls == 6


def test_a_client_survives_copy_and_pickle(server):
    llm = chat(server, temperature=0)
    llm.complete(MESSAGES)
    for clone in (copy.deepcopy(llm), pickle.loads(pickle.dumps(llm))):
        assert clone.complete(MESSAGES).text.startswith("reply")
        assert clone.usage.calls == 2 and clone.params == {"temperature": 0}


def test_openai_llm_records_then_replays_without_the_server(server, tmp_path):
    path = tmp_path / "cache.sqlite"
    recorder = openai_llm("test-model", base_url=server.url, backoff_s=0.01, cache_path=path, temperature=0)
    texts = [recorder.complete(MESSAGES, temperature=1.0).text for _ in range(3)]
    assert texts == ["reply 1", "reply 2", "reply 3"]
    server.httpd.shutdown()
    replay = openai_llm("test-model", base_url=server.url, cache_path=path, cache_mode="replay", temperature=0)
    assert isinstance(replay, CachedLLM) and replay.inner is None
    assert [replay.complete(MESSAGES, temperature=1.0).text for _ in range(3)] == texts
    assert replay.usage.cache_hits == 3 and replay.usage.calls == 0


def test_a_parameter_given_as_none_is_not_sent():
    # OptoPrime's paper protocol passes temperature=None: the server's default applies, as in trace-opt.
    from trace_core.llm.openai_backend import OpenAIChat

    chat = OpenAIChat.__new__(OpenAIChat)
    chat.model = "m"
    kwargs = chat._request_kwargs(frozenset({"temperature", "max_tokens"}), [],
                                  {"temperature": None, "max_tokens": 5, "top_k": None})
    assert "temperature" not in kwargs and kwargs["max_tokens"] == 5 and "extra_body" not in kwargs

"""What real servers (llama.cpp's above all) do that a well-behaved fake never did, each against a
loopback server that does it: echoed model names, cut-off replies, validation errors as HTTP 500,
one request at a time, oversized replies, and keys that must stay where they belong."""
from __future__ import annotations

import json
import logging
import threading

import pytest

from fake_openai import serving
from trace_core.llm import CachedLLM, LLMError, OpenAIChat, openai_llm
from trace_core.llm.base import LLMConfigError, spending_ledger

MESSAGES = [{"role": "user", "content": "Say hi."}]
DUMMY_KEY = "sk-dummy-secret-0123456789"


@pytest.fixture(autouse=True)
def no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def chat(server, **kwargs) -> OpenAIChat:
    return OpenAIChat(**{"model": "test-model", "base_url": server.url, "timeout_s": 5, "max_retries": 3,
                         "backoff_s": 0.01, **kwargs})


# -- the model that answered ------------------------------------------------------------------

def test_a_model_the_endpoint_does_not_list_is_refused_in_one_line_before_any_request():
    with serving(models=["qwen2.5-coder-1.5b-instruct-q4_k_m"]) as server:
        with pytest.raises(LLMConfigError) as info:
            chat(server, model="gpt-4o-2024-08-06").complete(MESSAGES)
        assert server.seen == 0, "no chat request was made for the wrong model"
    message = str(info.value)
    assert "\n" not in message and "'gpt-4o-2024-08-06' is not served" in message
    assert "qwen2.5-coder-1.5b-instruct-q4_k_m" in message and "llm.model" in message


def test_a_listed_model_is_used_and_the_served_name_is_counted():
    with serving(models=["local-a", "local-b"]) as server, spending_ledger() as ledger:
        reply = chat(server, model="local-b").complete(MESSAGES)
        assert reply.model == "local-b" and server.model_lists == 1
    assert ledger.models == {"local-b": 1}


def test_an_endpoint_without_a_model_list_is_not_checked():
    with serving(models=None) as server:
        assert chat(server, model="anything").complete(MESSAGES).text == "reply 1"
        assert server.model_lists == 1


# -- replies cut off at max_tokens ------------------------------------------------------------

def test_a_cut_off_reply_is_asked_once_more_with_twice_the_budget(caplog):
    with serving() as server:
        server.script = ["length", "ok"]
        with caplog.at_level(logging.WARNING, logger="trace_core.llm.openai_backend"):
            reply = chat(server, max_tokens=50).complete(MESSAGES)
        assert [b["max_tokens"] for b in server.bodies] == [50, 100]
    assert reply.text == "reply 2" and reply.finish_reason == "stop" and not reply.truncated
    assert any("cut off at max_tokens=50" in r.getMessage() for r in caplog.records)


def test_the_tokens_of_a_cut_off_attempt_are_counted():
    # Seen with llama.cpp: a step whose first reply ran 1,023 tokens into the cap and whose second
    # took 169 was recorded as 169 completion tokens; the server spent 1,192.
    with serving() as server:
        server.script = ["length", "ok"]
        llm = chat(server, max_tokens=50)
        reply = llm.complete(MESSAGES)
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (22, 14), "both attempts' usage"
    assert reply.usage.calls == 1, "one request of the caller's"
    assert (llm.usage.prompt_tokens, llm.usage.completion_tokens) == (22, 14)


def test_a_reply_cut_off_twice_comes_back_marked_as_truncated():
    with serving() as server:
        server.script = ["length", "length", "length"]
        reply = chat(server, max_tokens=50).complete(MESSAGES)
        assert server.seen == 2, "the larger budget is tried once, not until the retries run out"
    assert reply.truncated and reply.text == "rep"


def test_no_content_because_of_the_token_cap_is_asked_again_with_a_larger_cap():
    with serving() as server:
        server.script = ["null_length", "ok"]
        assert chat(server, max_tokens=64).complete(MESSAGES).text == "reply 2"
        assert server.bodies[1]["max_tokens"] == 128


# -- requests a server rejects with a 500 -----------------------------------------------------

def test_a_validation_error_sent_as_500_fails_at_once_and_says_the_request_was_rejected():
    with serving() as server:
        server.script = ["reject500"] * 6
        with pytest.raises(LLMError) as info:
            chat(server, max_retries=5).complete(MESSAGES)
        assert server.seen == 1
    assert info.value.status == 500 and info.value.rejected
    assert "unexpected keyword argument" in str(info.value)


def test_a_plain_500_is_not_taken_for_a_rejection():
    with serving() as server:
        server.script = ["500"] * 6
        with pytest.raises(LLMError) as info:
            chat(server, max_retries=1).complete(MESSAGES)
        assert server.seen == 2 and not info.value.rejected


def test_optoprime_falls_back_without_json_mode_when_a_500_says_json_mode_is_unsupported():
    from trace_core import node
    from trace_core.optimizers import OptoPrime

    x = node(1, trainable=True, name="x")
    reply = json.dumps({"reasoning": "", "suggestion": {x.py_name: 4}})
    with serving(responder=lambda messages: reply) as server:
        server.script = ["reject500"]
        optimizer = OptoPrime([x], llm=chat(server))
        optimizer.zero_feedback()
        optimizer.backward(x * 2, "the output should be 8")
        optimizer.step()
        assert server.seen == 2
        assert "response_format" in server.bodies[0] and "response_format" not in server.bodies[1]
    assert x.data == 4


# -- timeouts and a server that answers one request at a time ---------------------------------

def test_defaults_fit_the_endpoint():
    local = OpenAIChat("m", base_url="http://127.0.0.1:1/v1")
    assert (local.timeout_s, local.max_concurrency) == (600, 1)
    remote = OpenAIChat("m")
    assert (remote.timeout_s, remote.max_concurrency) == (60, 4)
    assert OpenAIChat("m", base_url="http://127.0.0.1:1/v1", max_concurrency=3).max_concurrency == 3


def test_a_timeout_halves_the_requests_in_flight(caplog):
    with serving() as server:
        server.script = ["slow", "ok"]
        llm = chat(server, timeout_s=0.4, max_concurrency=4)
        with caplog.at_level(logging.WARNING, logger="trace_core.llm.openai_backend"):
            assert llm.complete(MESSAGES).text == "reply 2"
    assert llm.concurrency_now == 2 and llm.max_concurrency == 4
    assert any("at most 2 request(s) at once" in r.getMessage() for r in caplog.records)


def test_a_one_at_a_time_server_is_never_sent_more_than_it_can_take_by_default():
    with serving(serial=True) as server:
        server.delay_s = 0.05
        llm = OpenAIChat("test-model", base_url=server.url)  # self-hosted defaults
        replies: list[str] = []
        threads = [threading.Thread(target=lambda: replies.append(llm.complete(MESSAGES).text)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(replies) == 4 and server.seen == 4, "no request was sent twice"
        assert server.max_waiting == 1, "none queued behind another, where it could time out"


# -- replies too large to keep ----------------------------------------------------------------

def test_an_oversized_reply_is_refused_and_never_cached(tmp_path):
    with serving() as server:
        server.script = ["huge"] * 3
        server.huge_chars = 5000
        cached = CachedLLM(chat(server, max_retries=2, max_reply_chars=1000), tmp_path / "c.sqlite")
        with pytest.raises(LLMError, match="over max_reply_chars=1000"):
            cached.complete(MESSAGES)
        assert server.seen == 3
        assert cached.complete(MESSAGES).text == "reply 4", "nothing was stored for the refused reply"


# -- keys -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["api_key", "API_KEY", "authorization"])
def test_a_key_given_as_a_parameter_is_refused_with_a_pointer_to_the_variable(name):
    with pytest.raises(LLMConfigError, match=r"environment variable.*llm\.api_key_env"):
        openai_llm("m", base_url="http://127.0.0.1:1/v1", **{name: DUMMY_KEY})


def test_the_openai_key_never_goes_to_another_endpoint(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", DUMMY_KEY)
    with serving() as server:
        chat(server).complete(MESSAGES)
        assert server.headers[0]["Authorization"] == "Bearer not-needed"
    with pytest.raises(LLMConfigError, match="only ever sent to api.openai.com"):
        OpenAIChat("m", base_url="http://127.0.0.1:1/v1", api_key_env="OPENAI_API_KEY")


def test_a_key_named_for_an_endpoint_goes_there_and_a_server_echoing_it_does_not_leak_it(monkeypatch):
    monkeypatch.setenv("LOOPBACK_KEY", DUMMY_KEY)
    with serving() as server:
        server.script = ["ok", "echo_key"]
        llm = chat(server, api_key_env="LOOPBACK_KEY")
        llm.complete(MESSAGES)
        assert server.headers[0]["Authorization"] == f"Bearer {DUMMY_KEY}"
        with pytest.raises(LLMError) as info:
            llm.complete(MESSAGES, temperature=1)
    assert "Incorrect API key" in str(info.value) and DUMMY_KEY not in str(info.value)
    assert DUMMY_KEY not in repr(llm)

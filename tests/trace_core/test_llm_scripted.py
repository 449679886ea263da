"""ScriptedLLM (the test double) and the shared pieces: Usage, Completion, LLMError."""
from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
import threading

import pytest

from trace_core.llm import Completion, LLMError, ScriptedLLM, Usage, keep_variables


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_replies_come_in_order_and_cycle():
    llm = ScriptedLLM(replies=["one", "two"])
    assert [llm.complete(ask(str(i))).text for i in range(5)] == ["one", "two", "one", "two", "one"]
    assert llm.model == "scripted"


def test_every_request_is_recorded_as_it_was_sent():
    llm = ScriptedLLM(replies=["ok"])
    messages = ask("first")
    llm.complete(messages, temperature=0.5)
    messages[0]["content"] = "changed later"  # the log keeps what was sent
    llm.complete(ask("second"))
    assert llm.requests == [ask("first"), ask("second")]
    assert llm.request_params == [{"temperature": 0.5}, {}]


@pytest.mark.parametrize("path", ["trace_core.llm.scripted:keep_variables",
                                  "trace_core.llm.scripted.keep_variables"])
def test_a_responder_can_be_named_by_its_dotted_path(path):
    reply = json.loads(ScriptedLLM(responder=path).complete(ask("#Variables\n(int) x0=5")).text)
    assert reply["suggestion"] == {} and "test double" in reply["reasoning"]


def test_a_responder_sees_the_messages():
    llm = ScriptedLLM(responder=lambda messages: messages[-1]["content"].upper())
    assert llm.complete(ask("shout")).text == "SHOUT"


def test_usage_is_counted_with_estimated_tokens():
    llm = ScriptedLLM(replies=["x" * 40])
    reply = llm.complete([{"role": "system", "content": "s" * 20}, {"role": "user", "content": "u" * 20}])
    assert (reply.usage.calls, reply.usage.prompt_tokens, reply.usage.completion_tokens) == (1, 10, 10)
    llm.complete(ask("u" * 8))
    assert (llm.usage.calls, llm.usage.prompt_tokens, llm.usage.completion_tokens) == (2, 12, 20)


def test_usage_totals_are_exact_under_threads():
    llm = ScriptedLLM(replies=["abcd"])
    threads = [threading.Thread(target=lambda: [llm.complete(ask("q")) for _ in range(50)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert llm.usage.calls == 400 and llm.usage.completion_tokens == 400 and len(llm.requests) == 400


def test_bad_construction_is_rejected():
    with pytest.raises(ValueError):
        ScriptedLLM()
    with pytest.raises(ValueError):
        ScriptedLLM(replies=["a"], responder=keep_variables)
    with pytest.raises(ValueError):
        ScriptedLLM(replies=[])
    with pytest.raises(ModuleNotFoundError):
        ScriptedLLM(responder="no_such_package.module:function")
    with pytest.raises(TypeError, match="not a function"):
        ScriptedLLM(responder="json:__doc__")
    with pytest.raises(TypeError, match="expected str"):
        ScriptedLLM(responder=len).complete(ask("q"))
    with pytest.raises(TypeError, match="'role' and 'content'"):
        ScriptedLLM(replies=["a"]).complete([{"role": "user"}])


def test_a_scripted_client_can_be_deep_copied():
    llm = ScriptedLLM(replies=["a", "b"])
    llm.complete(ask("q"))
    clone = copy.deepcopy(llm)
    assert clone.complete(ask("q")).text == "b" and clone.usage.calls == 2 and llm.usage.calls == 1


def test_usage_adds_up():
    a = Usage(calls=1, prompt_tokens=10, completion_tokens=5, seconds=0.5)
    b = Usage(calls=2, prompt_tokens=1, completion_tokens=1, cache_hits=3, seconds=0.25)
    assert a + b == Usage(3, 11, 6, 3, 0.75)
    total = Usage()
    total += a
    total += b
    assert total == a + b == sum([a, b])
    assert (a + b).as_dict("llm/") == {
        "llm/calls": 3, "llm/prompt_tokens": 11, "llm/completion_tokens": 6, "llm/cache_hits": 3,
        "llm/seconds": 0.75,
    }


def test_completion_is_frozen_and_errors_are_one_line():
    reply = Completion("text", Usage(calls=1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        reply.text = "other"
    assert not reply.cached and reply.model == ""
    assert str(LLMError("first line\n  second\tline")) == "first line second line"


def test_importing_the_package_does_not_import_openai():
    code = "import sys, trace_core.llm; assert 'openai' not in sys.modules; assert 'hydra' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

"""CachedLLM: free reruns, sample indices, exact replay, loud misses, rows that survive a crash."""
from __future__ import annotations

import copy
import json
import sqlite3
import threading

import pytest

from trace_core.llm import CachedLLM, LLMError, ReplayMissError, ScriptedLLM


def ask(text: str) -> list[dict]:
    return [{"role": "system", "content": "You are a test."}, {"role": "user", "content": text}]


def counting() -> ScriptedLLM:
    """A scripted inner client whose replies say which call of the run they were."""
    state = {"n": 0}

    def respond(messages: list[dict]) -> str:
        state["n"] += 1
        return f"{messages[-1]['content']} -> answer {state['n']}"

    return ScriptedLLM(responder=respond)


SEQUENCE = [ask("a"), ask("b"), ask("a"), ask("c"), ask("a")]


def run(llm, sequence=SEQUENCE, **params) -> list[str]:
    return [llm.complete(messages, **params).text for messages in sequence]


def test_a_rerun_costs_nothing_and_returns_the_same_texts(tmp_path):
    path = tmp_path / "cache.sqlite"
    first_inner = counting()
    first = run(CachedLLM(first_inner, path))
    assert len(first_inner.requests) == len(SEQUENCE)

    second_inner = counting()
    cached = CachedLLM(second_inner, path)
    assert run(cached) == first
    assert second_inner.requests == []
    assert cached.usage.as_dict() == {
        "calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cache_hits": len(SEQUENCE), "seconds": 0.0,
    }


def test_the_sample_index_tells_identical_requests_apart(tmp_path):
    path = tmp_path / "cache.sqlite"
    recorder = CachedLLM(ScriptedLLM(replies=["x", "y", "z"]), path)
    assert run(recorder, [ask("same")] * 3, temperature=1.0) == ["x", "y", "z"]

    inner = ScriptedLLM(replies=["fresh"])
    rerun = CachedLLM(inner, path)
    assert run(rerun, [ask("same")] * 4, temperature=1.0) == ["x", "y", "z", "fresh"]
    assert len(inner.requests) == 1  # only the fourth sample is new
    samples = sqlite3.connect(path).execute("SELECT sample FROM completions ORDER BY sample").fetchall()
    assert samples == [(0,), (1,), (2,), (3,)]


def test_model_and_params_are_part_of_the_key(tmp_path):
    path = tmp_path / "cache.sqlite"
    inner = counting()
    llm = CachedLLM(inner, path)
    llm.complete(ask("q"), temperature=0)
    assert CachedLLM(counting(), path).complete(ask("q"), temperature=0.0).cached  # 0 and 0.0 agree
    assert not CachedLLM(counting(), path).complete(ask("q"), temperature=0.5).cached
    assert not CachedLLM(counting(), path, model="other").complete(ask("q"), temperature=0).cached


def test_replay_reproduces_a_recorded_sequence_without_a_client(tmp_path):
    path = tmp_path / "cache.sqlite"
    recorded = run(CachedLLM(counting(), path), max_tokens=64)
    replay = CachedLLM(None, path, mode="replay", model="scripted")
    replies = [replay.complete(messages, max_tokens=64) for messages in SEQUENCE]
    assert [r.text for r in replies] == recorded
    assert all(r.cached and r.model == "scripted" for r in replies)
    assert replay.usage.cache_hits == len(SEQUENCE) and replay.usage.calls == 0


def test_a_replay_miss_names_the_request(tmp_path):
    path = tmp_path / "cache.sqlite"
    run(CachedLLM(counting(), path), [ask("recorded")])
    replay = CachedLLM(None, path, mode="replay", model="scripted")
    replay.complete(ask("recorded"))
    question = "Which\nvalue of x? " + "z" * 400
    with pytest.raises(ReplayMissError) as info:
        replay.complete(ask(question))
    message = str(info.value)
    assert isinstance(info.value, LLMError) and "\n" not in message
    assert "model=scripted" in message and "sample=0" in message and str(path) in message
    assert "Which value of x? zzz" in message and "z" * 400 not in message
    with pytest.raises(ReplayMissError, match="sample=1"):  # a second copy of a recorded request
        replay.complete(ask("recorded"))


def test_replay_of_a_missing_file_misses_and_creates_nothing(tmp_path):
    path = tmp_path / "never_recorded.sqlite"
    with pytest.raises(ReplayMissError, match="does not exist"):
        CachedLLM(None, path, mode="replay", model="m").complete(ask("q"))
    assert not path.exists()


def test_rows_are_readable_while_the_writer_is_still_open(tmp_path):
    path = tmp_path / "cache.sqlite"
    writer = CachedLLM(counting(), path)  # never closed: stands for a run that died
    recorded = run(writer, SEQUENCE[:3], temperature=0)
    reader = CachedLLM(None, path, mode="replay", model="scripted")
    assert run(reader, SEQUENCE[:3], temperature=0) == recorded

    row = sqlite3.connect(path).execute(
        "SELECT model, sample, messages, params, text, usage, created FROM completions WHERE sample = 1"
    ).fetchone()
    assert row[0] == "scripted" and row[1] == 1 and json.loads(row[2]) == ask("a")
    assert json.loads(row[3]) == {"temperature": 0} and row[4] == recorded[2]
    assert json.loads(row[5])["calls"] == 1 and row[6].startswith("20")


def test_building_writes_nothing_until_the_first_request(tmp_path):
    path = tmp_path / "deep" / "dir" / "cache.sqlite"
    llm = CachedLLM(counting(), path)
    assert not path.exists()
    llm.complete(ask("q"))
    assert path.exists()


def test_a_failed_request_gives_its_sample_index_back(tmp_path):
    path = tmp_path / "cache.sqlite"
    calls = {"n": 0}

    def flaky(messages: list[dict]) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise LLMError("scripted outage")
        return "after the outage"

    llm = CachedLLM(ScriptedLLM(responder=flaky), path)
    with pytest.raises(LLMError):
        llm.complete(ask("q"))
    assert llm.complete(ask("q")).text == "after the outage"
    # The caller retried; replay meets the reply at sample 0, as it would after a clean run.
    assert CachedLLM(None, path, mode="replay", model="scripted").complete(ask("q")).text == "after the outage"


def test_threads_get_distinct_samples_and_a_rerun_replays_them(tmp_path):
    path = tmp_path / "cache.sqlite"
    llm = CachedLLM(counting(), path)
    texts: list[str] = []
    threads = [threading.Thread(target=lambda: texts.append(llm.complete(ask("q")).text)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(texts)) == 8
    replay = CachedLLM(None, path, mode="replay", model="scripted")
    assert sorted(run(replay, [ask("q")] * 8)) == sorted(texts)


def test_cached_client_copies_and_closes(tmp_path):
    path = tmp_path / "cache.sqlite"
    with CachedLLM(counting(), path) as llm:
        first = llm.complete(ask("q")).text
        clone = copy.deepcopy(llm)
    assert clone.complete(ask("q")).text != first  # the clone carries on the run's sample count
    assert CachedLLM(None, path, mode="replay", model="scripted").complete(ask("q")).text == first


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="mode"):
        CachedLLM(counting(), "x.sqlite", mode="write")
    with pytest.raises(ValueError, match="inner"):
        CachedLLM(None, "x.sqlite")
    with pytest.raises(ValueError, match="model"):
        CachedLLM(None, "x.sqlite", mode="replay")
    with pytest.raises(TypeError, match="messages"):
        CachedLLM(counting(), "x.sqlite").complete("not a list")

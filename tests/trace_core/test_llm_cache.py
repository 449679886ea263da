"""CachedLLM: free reruns, sample indices, exact replay, loud misses, rows that survive a crash."""
from __future__ import annotations

import copy
import json
import sqlite3
import threading

import pytest

from trace_core.llm import CachedLLM, Completion, LLM, LLMError, ReplayMissError, ScriptedLLM, Usage
from trace_core.llm.base import spending_ledger
from trace_core.llm.cache_cli import main as cache_cli


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
    recorded = run(writer, SEQUENCE[:3], temperature=0.5)
    reader = CachedLLM(None, path, mode="replay", model="scripted")
    assert run(reader, SEQUENCE[:3], temperature=0.5) == recorded

    row = sqlite3.connect(path).execute(
        "SELECT model, sample, messages, params, text, usage, created FROM completions WHERE sample = 1"
    ).fetchone()
    assert row[0] == "scripted" and row[1] == 1 and json.loads(row[2]) == ask("a")
    assert json.loads(row[3]) == {"temperature": 0.5} and row[4] == recorded[2]
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


# -- endpoints, temperature 0, refresh, notes, eviction ----------------------------------------

class Endpoint(LLM):
    """A client that names its endpoint, as OpenAIChat does, and says where each reply came from."""

    def __init__(self, endpoint: str, finish_reason: str = "stop", text: str = "") -> None:
        super().__init__()
        self.model, self.endpoint, self.finish_reason, self.text, self.calls = "same-name", endpoint, finish_reason, text, 0

    def complete(self, messages, **params) -> Completion:
        self.calls += 1
        usage = Usage(calls=1, prompt_tokens=30, completion_tokens=5)
        self._add_usage(usage, model="served-name")
        return Completion(text=self.text or f"from {self.endpoint} #{self.calls}", usage=usage,
                          model="served-name", finish_reason=self.finish_reason)


def test_another_endpoint_with_the_same_model_name_is_never_answered_from_the_cache(tmp_path):
    path = tmp_path / "cache.sqlite"
    assert CachedLLM(Endpoint("http://a/v1"), path).complete(ask("q")).text == "from http://a/v1 #1"
    assert CachedLLM(Endpoint("http://b/v1"), path).complete(ask("q")).text == "from http://b/v1 #1"
    assert CachedLLM(Endpoint("http://a/v1"), path).complete(ask("q")).cached
    with pytest.raises(ReplayMissError, match=r"recorded from endpoint\(s\) http://"):
        CachedLLM(None, path, mode="replay", model="same-name", endpoint="http://c/v1").complete(ask("q"))


def test_identical_temperature_0_requests_of_a_run_are_answered_once(tmp_path):
    inner = counting()
    llm = CachedLLM(inner, tmp_path / "cache.sqlite")
    assert len(set(run(llm, [ask("same")] * 4, temperature=0))) == 1
    assert len(inner.requests) == 1 and llm.usage.cache_hits == 3
    assert len(set(run(llm, [ask("same")] * 2, temperature=0.7))) == 2, "sampling still samples"


def test_identical_temperature_0_requests_in_flight_at_once_are_asked_once(tmp_path):
    gate = threading.Event()

    def slow(messages):
        gate.wait(timeout=10)
        return "the answer"

    inner = ScriptedLLM(responder=slow)
    llm = CachedLLM(inner, tmp_path / "cache.sqlite")
    texts: list[str] = []
    threads = [threading.Thread(target=lambda: texts.append(llm.complete(ask("q"), temperature=0).text))
               for _ in range(6)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(timeout=20)
    assert texts == ["the answer"] * 6 and len(inner.requests) == 1


def test_refresh_asks_every_request_of_the_run_again_once_and_replaces_its_row(tmp_path):
    path = tmp_path / "cache.sqlite"
    run(CachedLLM(counting(), path), [ask("q")], temperature=0)
    inner = ScriptedLLM(replies=["new answer"])
    refresh = CachedLLM(inner, path, mode="refresh")
    assert run(refresh, [ask("q")] * 2, temperature=0) == ["new answer"] * 2
    assert len(inner.requests) == 1
    assert CachedLLM(None, path, mode="replay", model="scripted").complete(ask("q"), temperature=0).text == "new answer"


def test_a_hit_carries_the_tokens_of_the_original_call_and_the_served_model(tmp_path):
    path = tmp_path / "cache.sqlite"
    CachedLLM(Endpoint("http://a/v1"), path).complete(ask("q"))
    replay = CachedLLM(None, path, mode="replay", model="same-name", endpoint="http://a/v1")
    hit = replay.complete(ask("q"))
    assert hit.cached and hit.usage.calls == 0 and hit.usage.cache_hits == 1
    assert (hit.usage.prompt_tokens, hit.usage.completion_tokens) == (30, 5) and hit.model == "served-name"
    assert replay.usage.prompt_tokens == 0, "a replay spends no tokens"


def test_the_run_ledger_counts_each_call_once_through_a_cache(tmp_path):
    with spending_ledger() as ledger:
        inner = Endpoint("http://a/v1")
        cached = CachedLLM(inner, tmp_path / "cache.sqlite")
        cached.complete(ask("q"), temperature=0)
        cached.complete(ask("q"), temperature=0)
        Endpoint("http://b/v1").complete(ask("another role"))
    assert (ledger.total.calls, ledger.total.cache_hits, ledger.total.prompt_tokens) == (2, 1, 60)
    assert ledger.models == {"served-name": 2}


def notes(path) -> dict[str, str]:
    return dict(sqlite3.connect(path).execute("SELECT text, note FROM completions").fetchall())


def test_cut_off_and_unreadable_replies_are_stored_with_a_note(tmp_path):
    path = tmp_path / "cache.sqlite"
    CachedLLM(Endpoint("http://a/v1", finish_reason="length", text="{\"cut"), path).complete(ask("1"))
    json_mode = {"response_format": {"type": "json_object"}}
    CachedLLM(Endpoint("http://a/v1", text="not json"), path).complete(ask("2"), **json_mode)
    CachedLLM(Endpoint("http://a/v1", text='{"ok": 1}'), path).complete(ask("3"), **json_mode)
    llm = CachedLLM(Endpoint("http://a/v1", text="fine words"), path)
    reply = llm.complete(ask("4"))
    llm.mark(reply, "the parser found no suggestion")
    assert notes(path) == {'{"cut': "cut off at max_tokens (finish_reason=length)",
                           "not json": "JSON mode was asked for; the reply is not valid JSON",
                           '{"ok": 1}': "", "fine words": "the parser found no suggestion"}


def test_the_cli_lists_and_evicts_one_row_or_every_marked_one(tmp_path, capsys):
    path = tmp_path / "cache.sqlite"
    llm = CachedLLM(counting(), path)
    keep, drop, bad = (llm.complete(ask(q), temperature=0) for q in ("keep", "drop", "bad"))
    llm.mark(bad, "unreadable")
    assert cache_cli(["list", str(path), "--marked"]) == 0
    assert bad.key in capsys.readouterr().out
    assert cache_cli(["evict", str(path), drop.key[:12]]) == 0
    assert cache_cli(["evict", str(path), "--marked"]) == 0
    assert cache_cli(["evict", str(path), "0000000000"]) == 2
    inner = counting()
    again = CachedLLM(inner, path)
    assert again.complete(ask("keep"), temperature=0).cached
    assert not again.complete(ask("drop"), temperature=0).cached and not again.complete(ask("bad"), temperature=0).cached


def test_a_cache_file_of_the_first_schema_is_upgraded_and_still_read(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE completions (key TEXT PRIMARY KEY, model TEXT NOT NULL, sample INTEGER NOT NULL, "
                   "messages TEXT NOT NULL, params TEXT NOT NULL, text TEXT NOT NULL, usage TEXT NOT NULL, "
                   "created TEXT NOT NULL)")
    llm = CachedLLM(counting(), path)
    first = llm.complete(ask("q"))
    assert CachedLLM(counting(), path).complete(ask("q")).text == first.text


def test_optoprime_marks_a_cached_reply_it_could_not_read(tmp_path):
    from trace_core import node
    from trace_core.optimizers import OptoPrime

    path = tmp_path / "cache.sqlite"
    x = node(1, trainable=True, name="x")
    llm = CachedLLM(ScriptedLLM(replies=["I would rather not say."]), path)
    optimizer = OptoPrime([x], llm=llm)
    optimizer.zero_feedback()
    optimizer.backward(x * 2, "the output should be 8")
    optimizer.step()
    assert notes(path) == {"I would rather not say.": "no JSON object with a 'suggestion' in the reply"}

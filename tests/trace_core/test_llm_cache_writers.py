"""The LLM cache shared by a sweep's jobs (issue 27, defect 5): several processes write one file at
once, in a journal mode whose locking holds on a network filesystem (WAL needs one host)."""
from __future__ import annotations

import multiprocessing
import sqlite3

from trace_core.llm import CachedLLM, ScriptedLLM

WRITERS, REQUESTS = 4, 25


def _writer(path: str, who: int) -> None:
    llm = CachedLLM(ScriptedLLM(responder=lambda messages: f"{who}: {messages[-1]['content']}"), path)
    for i in range(REQUESTS):
        reply = llm.complete([{"role": "user", "content": f"job {who} request {i}"}])
        assert reply.text == f"{who}: job {who} request {i}"
    llm.close()


def test_several_jobs_write_one_cache_at_once_in_a_network_safe_mode(tmp_path):
    path = tmp_path / "llm_cache.sqlite"
    context = multiprocessing.get_context("fork")
    jobs = [context.Process(target=_writer, args=(str(path), who)) for who in range(WRITERS)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(120)
    assert [job.exitcode for job in jobs] == [0] * WRITERS
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM completions").fetchone() == (WRITERS * REQUESTS,)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",), "WAL's shared memory needs one host"
    db.close()
    assert not path.with_name(path.name + "-wal").exists()
    rerun = CachedLLM(ScriptedLLM(responder=lambda messages: "asked again"), path)
    assert rerun.complete([{"role": "user", "content": "job 3 request 7"}]).text == "3: job 3 request 7"

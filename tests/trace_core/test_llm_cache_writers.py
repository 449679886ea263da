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


def test_two_jobs_bringing_an_older_cache_file_up_to_date_at_once_do_not_collide(tmp_path):
    # Seen in a full run under load: two writers opened an older file together, both found the
    # `finish_reason` column missing, and the second ALTER TABLE failed with "duplicate column name".
    import sqlite3
    import threading
    import time

    from trace_core.llm.cache import _ADDED_COLUMNS, _SCHEMA, open_cache

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(str(path), isolation_level=None)
    old.execute(_SCHEMA)
    old.execute("BEGIN IMMEDIATE")  # the other job, half-way through bringing the file up to date
    for column, spec in _ADDED_COLUMNS.items():
        old.execute(f"ALTER TABLE completions ADD COLUMN {column} {spec}")
    errors = []

    def second_job():
        try:
            open_cache(path).close()
        except Exception as exc:  # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)

    job = threading.Thread(target=second_job)
    job.start()
    time.sleep(1.0)  # ordering, not timing: let the second job reach the file while the first holds it
    old.execute("COMMIT")
    old.close()
    job.join(60)
    assert not errors, errors
    columns = {row[1] for row in sqlite3.connect(str(path)).execute("PRAGMA table_info(completions)")}
    assert set(_ADDED_COLUMNS) <= columns

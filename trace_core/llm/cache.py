"""`CachedLLM`: a persistent SQLite response cache in front of any client, and exact replay.

A request's key is the SHA-256 of canonical JSON of (model, endpoint, messages, parameters, sample
index): a different server with the same model name never answers from another's replies. The
sample index tells apart identical requests made several times in one run (sampling at a
temperature above zero): the k-th identical request of a run gets index k, so a rerun meets the
same replies in the same order. A temperature-0 request asks for *the* answer, so identical ones
share index 0 and a run asks the model once (real servers are not deterministic at temperature 0:
only this makes a run, and its rerun, consistent). Counters live in the `CachedLLM` object, i.e.
one run.

- `mode="readwrite"`: a hit costs nothing; a miss asks `inner` and stores the reply.
- `mode="replay"`: `inner` may be None; a miss raises `ReplayMissError` naming the request.
- `mode="refresh"`: every request of this run is asked again once and its row replaced.

A hit's reply carries the tokens the original call used (the running total counts only the hit). Rows whose reply was cut
off, or was not the JSON a JSON-mode request asked for, or that a caller `mark`ed as unreadable,
carry a note; `python -m trace_core.llm.cache_cli` lists rows and evicts one, or all marked ones.

Each row is committed as soon as it is written (SQLite's rollback journal, whose locks hold on a
network filesystem), so a run that dies keeps every reply it paid for, and the processes of a
sweep, on one host or on a cluster's nodes, can share one file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
import os
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .base import LLM, Completion, LLMConfigError, ReplayMissError, Usage, check_messages, last_user_text, one_line

MODES = ("readwrite", "replay", "refresh")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    sample INTEGER NOT NULL,
    messages TEXT NOT NULL,
    params TEXT NOT NULL,
    text TEXT NOT NULL,
    usage TEXT NOT NULL,
    created TEXT NOT NULL
)
"""
# Columns added since the first schema; older files get them (empty) when opened.
_ADDED_COLUMNS = {"endpoint": "TEXT NOT NULL DEFAULT ''", "served": "TEXT NOT NULL DEFAULT ''",
                  "finish_reason": "TEXT NOT NULL DEFAULT ''", "note": "TEXT NOT NULL DEFAULT ''"}
_COLUMNS = ("key", "model", "sample", "messages", "params", "text", "usage", "created", *_ADDED_COLUMNS)


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, so equal requests hash equally."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"request is not plain JSON and cannot be cached: {exc}") from exc


def _same_number_same_key(value: Any) -> Any:
    # A config's `temperature: 0` and a call's `temperature=0.0` ask the same thing.
    if isinstance(value, bool) or not isinstance(value, (int, float, dict, list, tuple)):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {k: _same_number_same_key(v) for k, v in value.items()}
    return [_same_number_same_key(v) for v in value]


def is_deterministic(request: dict[str, Any]) -> bool:
    """Does the request ask for the single most likely answer (temperature 0, one choice)?"""
    temperature = request.get("temperature")
    return (isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and temperature == 0
            and request.get("n") in (None, 1))


def check_cache_path(path: Path, writable: bool) -> None:
    """Refuse, when the client is built and without writing anything, a cache file that is not a
    readable SQLite database, or one that cannot be created where it is asked for."""
    if path.exists():
        if path.is_dir():
            raise LLMConfigError(f"llm.cache_path: {path} is a folder; name a file")
        with path.open("rb") as handle:
            header = handle.read(16)
        if header and header != b"SQLite format 3\x00":  # an empty file is a new database
            raise LLMConfigError(f"llm.cache_path: {path} is not a readable response cache (not an SQLite file): "
                                 f"move it aside (mv {path} {path}.bad) and rerun, or name another file")
        if writable and not os.access(path, os.W_OK):
            raise LLMConfigError(f"llm.cache_path: cannot write {path} (read-only): name another file "
                                 f"(llm.cache_path=... or TRACE_LLM_CACHE), or llm.cache_path=null for none")
        return
    if not writable:
        return  # replay never creates a file
    folder = path.parent
    while not folder.exists():  # the first folder that exists must let us create the rest
        folder = folder.parent
    read_only = folder.is_dir() and bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    if not folder.is_dir() or read_only or not os.access(folder, os.W_OK | os.X_OK):
        raise LLMConfigError(f"llm.cache_path: cannot write {path} ({folder} is not writable): name another file "
                             f"(llm.cache_path=... or TRACE_LLM_CACHE), or llm.cache_path=null for none")


def _column_names(db: sqlite3.Connection) -> set[str]:
    return {row[1] for row in db.execute("PRAGMA table_info(completions)")}


def open_cache(path: str | Path) -> sqlite3.Connection:
    """The cache file, created or brought up to the current schema."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: every INSERT is its own committed transaction.
        db = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
    except (OSError, sqlite3.OperationalError) as exc:  # e.g. a read-only mount that access() did not see
        raise LLMConfigError(f"llm.cache_path: cannot write {path} ({exc}): name another file "
                             f"(llm.cache_path=... or TRACE_LLM_CACHE), or llm.cache_path=null for none") from None
    # The rollback journal, not WAL: WAL's shared-memory index works only for processes on one host,
    # and a sweep's jobs on a cluster share this file over a network filesystem, where the rollback
    # journal's POSIX locks hold. Writes are a few per LLM call: the per-commit fsync costs nothing.
    try:
        db.execute("PRAGMA journal_mode=DELETE")  # also turns an older WAL-mode file back
    except sqlite3.OperationalError:  # another process has that older file open in WAL: keep its mode
        pass
    except sqlite3.DatabaseError as exc:  # damaged past its header: say which file, and what to do
        db.close()
        raise LLMConfigError(f"llm.cache_path: {path} is not a readable response cache ({exc}): move it aside "
                             f"(mv {path} {path}.bad) and rerun") from None
    db.execute("PRAGMA synchronous=FULL")  # a committed reply survives the process and the host
    if _column_names(db) >= {"key", *_ADDED_COLUMNS}:
        return db  # up to date: nothing to write (a read-only file replays as before)
    # One write transaction from reading the columns to adding them: two jobs opening an older
    # file at once both saw a column missing, and the second ALTER failed ("duplicate column name").
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(_SCHEMA)
        present = _column_names(db)
        for column, spec in _ADDED_COLUMNS.items():
            if column not in present:
                db.execute(f"ALTER TABLE completions ADD COLUMN {column} {spec}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return db


def reply_note(request: dict[str, Any], reply: Completion) -> str:
    """Why a reply may not be what was asked for ("" when nothing is known against it)."""
    if reply.truncated:
        return "cut off at max_tokens (finish_reason=length)"
    wants_json = isinstance(request.get("response_format"), dict) and \
        request["response_format"].get("type") in ("json_object", "json_schema")
    if wants_json and reply.text.strip() != "TERMINATE":
        try:
            json.loads(reply.text)
        except ValueError:
            return "JSON mode was asked for; the reply is not valid JSON"
    return ""


class CachedLLM(LLM):
    """Serve repeated requests from an SQLite file; in replay mode, serve nothing else.

    `model`, `endpoint` and `params` (the default request parameters) are part of every key. They
    are taken from `inner`; in replay mode without `inner`, pass the ones the recording run used.
    """

    _transient = ("_lock", "_db", "_db_lock", "_opened", "_deciding")

    def __init__(
        self,
        inner: LLM | None,
        path: str | Path,
        mode: str = "readwrite",
        model: str | None = None,
        params: dict[str, Any] | None = None,
        endpoint: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if inner is None and mode != "replay":
            raise ValueError("CachedLLM needs an inner client unless mode='replay'")
        model = model or (inner.model if inner is not None else "")
        if not model:
            raise ValueError("CachedLLM needs a model name (from inner, or model=...)")
        super().__init__(params if params is not None else (inner.params if inner is not None else {}))
        self.inner = inner
        self.path = Path(path)
        self.mode = mode
        self.model = model
        self.endpoint = endpoint if endpoint is not None else str(getattr(inner, "endpoint", "") or "")
        self._issued: dict[str, int] = {}  # identical-request counters of this run
        self._returned: dict[str, list[int]] = {}  # indices whose request failed, to reuse
        self._refreshed: set[str] = set()  # keys asked again in this run (mode="refresh")
        check_cache_path(self.path, writable=mode != "replay")
        self._restore()

    def __repr__(self) -> str:
        return (f"CachedLLM(model={self.model!r}, path={str(self.path)!r}, mode={self.mode!r}, "
                f"inner={self.inner!r})")

    def variant(self, model: str | None = None, **params: Any) -> CachedLLM:
        """The same cache file, mode and endpoint for another model or request parameters."""
        inner = self.inner
        if inner is not None and (model or params):
            inner = inner.variant(model, **params) if hasattr(inner, "variant") else inner
        return CachedLLM(inner, self.path, mode=self.mode, model=model or self.model,
                         params={**self.params, **params}, endpoint=self.endpoint)

    # -- storage -----------------------------------------------------------------------------

    def _restore(self) -> None:
        self._db_lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._opened = False  # the file is opened on first use: building a config writes nothing
        self._deciding: dict[str, threading.Lock] = {}  # one lock per temperature-0 request

    def _connection(self) -> sqlite3.Connection | None:
        """The open database (call with `_db_lock` held); None in replay mode without a file."""
        if not self._opened:
            self._db, self._opened = self._open(), True
        return self._db

    def _open(self) -> sqlite3.Connection | None:
        if self.mode == "replay" and not self.path.exists():
            return None  # replay never creates a file; every request will miss
        return open_cache(self.path)

    def close(self) -> None:
        with self._db_lock:
            if self._db is not None:
                self._db.close()
            self._db, self._opened = None, False  # a later request reopens the file

    def __enter__(self) -> CachedLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lookup(self, key: str) -> tuple[str, str, str, str, str] | None:
        with self._db_lock:
            db = self._connection()
            if db is None:
                return None
            return db.execute("SELECT text, model, served, usage, finish_reason FROM completions WHERE key = ?",
                              (key,)).fetchone()

    def _store(self, key: str, sample: int, messages: list[dict], request: dict, reply: Completion) -> None:
        row = (
            key, self.model, sample, canonical_json(messages), canonical_json(request), reply.text,
            canonical_json(reply.usage.as_dict()), datetime.now(timezone.utc).isoformat(timespec="seconds"),
            self.endpoint, reply.model, reply.finish_reason, reply_note(request, reply),
        )
        with self._db_lock:
            db = self._connection()
            assert db is not None, "readwrite mode always opens its file"
            db.execute(f"INSERT OR REPLACE INTO completions ({', '.join(_COLUMNS)}) "
                       f"VALUES ({', '.join('?' * len(_COLUMNS))})", row)

    def mark(self, reply: Completion, note: str) -> None:
        """Note against a stored reply that it could not be used (e.g. the parser could not read it)."""
        if not reply.key or self.mode == "replay":
            return
        with self._db_lock:
            db = self._connection()
            if db is not None:
                db.execute("UPDATE completions SET note = ? WHERE key = ?", (one_line(note, 200), reply.key))

    # -- sample indices ----------------------------------------------------------------------

    def _take_sample(self, request_id: str) -> int:
        with self._lock:
            returned = self._returned.get(request_id)
            if returned:
                return heapq.heappop(returned)
            sample = self._issued.get(request_id, 0)
            self._issued[request_id] = sample + 1
            return sample

    def _give_back_sample(self, request_id: str, sample: int) -> None:
        # A request that failed did not consume its index: a caller that catches the error and
        # asks again gets the same index, so the recorded sequence has no holes and replays.
        with self._lock:
            heapq.heappush(self._returned.setdefault(request_id, []), sample)

    # -- the request -------------------------------------------------------------------------

    def complete(self, messages: list[dict], **params: Any) -> Completion:
        check_messages(messages)
        request = {**self.params, **params}
        identity = {"model": self.model, "messages": messages, "params": _same_number_same_key(request)}
        if self.endpoint:
            identity["endpoint"] = self.endpoint
        request_id = hashlib.sha256(canonical_json(identity).encode()).hexdigest()
        if not is_deterministic(request):
            return self._complete(messages, params, request, identity, request_id, self._take_sample(request_id))
        with self._lock:
            deciding = self._deciding.setdefault(request_id, threading.Lock())
        with deciding:  # an identical request in flight is waited for, then served from the cache
            return self._complete(messages, params, request, identity, request_id, None)

    def _complete(self, messages: list[dict], params: dict, request: dict, identity: dict,
                  request_id: str, sample: int | None) -> Completion:
        key = hashlib.sha256(canonical_json({**identity, "sample": sample or 0}).encode()).hexdigest()
        fresh = self.mode == "refresh" and key not in self._refreshed
        row = None if fresh else self._lookup(key)
        if row is not None:
            return self._hit(key, row)
        try:
            if self.mode == "replay" or self.inner is None:
                raise self._miss(messages, sample or 0)
            reply = self.inner.complete(messages, **params)
            self._store(key, sample or 0, messages, request, reply)
            self._refreshed.add(key)
        except BaseException:
            if sample is not None:
                self._give_back_sample(request_id, sample)
            raise
        # The inner client has already counted a call in the run's ledger when it has one.
        self._add_usage(reply.usage, model=reply.model,
                        ledger=getattr(self.inner, "_ledger", None) is not self._ledger)
        return dataclasses.replace(reply, key=key)

    def _hit(self, key: str, row: tuple[str, str, str, str, str]) -> Completion:
        text, model, served, stored_usage, finish_reason = row
        self._add_usage(Usage(cache_hits=1))  # a hit spends no tokens ...
        try:
            original = json.loads(stored_usage)
            tokens = (int(original.get("prompt_tokens", 0)), int(original.get("completion_tokens", 0)))
        except (ValueError, TypeError, AttributeError):
            tokens = (0, 0)
        # ... but the reply says what it took, so a replayed step logs what the original did.
        usage = Usage(cache_hits=1, prompt_tokens=tokens[0], completion_tokens=tokens[1])
        return Completion(text=text, usage=usage, cached=True, model=served or model,
                          finish_reason=finish_reason or "", key=key)

    def _miss(self, messages: list[dict], sample: int) -> ReplayMissError:
        where = str(self.path) if self.path.exists() else f"{self.path} (file does not exist)"
        endpoint = f" endpoint={self.endpoint}" if self.endpoint else ""
        return ReplayMissError(
            f"replay miss: no recorded reply in {where} for model={self.model}{endpoint} sample={sample}"
            f"{self._recorded_elsewhere()}; last user message: {one_line(last_user_text(messages), 200)!r}"
        )

    def _recorded_elsewhere(self) -> str:
        """A hint when the file holds this model's replies from other endpoints (llm.base_url differs)."""
        with self._db_lock:
            db = self._connection()
            if db is None:
                return ""
            rows = db.execute("SELECT DISTINCT endpoint FROM completions WHERE model = ? AND endpoint != ?",
                              (self.model, self.endpoint)).fetchall()
        others = [row[0] or "(none)" for row in rows[:3]]
        return f" (this model was recorded from endpoint(s) {', '.join(others)}: set llm.base_url)" if others else ""

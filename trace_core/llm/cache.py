"""`CachedLLM`: a persistent SQLite response cache in front of any client, and exact replay.

A request's key is the SHA-256 of canonical JSON of (model, messages, parameters, sample index).
The sample index tells apart identical requests made several times in one run (sampling at a
temperature above zero): the k-th identical request of a run gets index k, so a rerun meets the
same replies in the same order. Counters live in the `CachedLLM` object, i.e. one run.

- `mode="readwrite"`: a hit costs nothing; a miss asks `inner` and stores the reply.
- `mode="replay"`: `inner` may be None; a miss raises `ReplayMissError` naming the request.

Each row is committed as soon as it is written (SQLite in WAL mode), so a run that dies keeps
every reply it paid for, and several processes of a sweep can share one file.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .base import LLM, Completion, ReplayMissError, Usage, check_messages, last_user_text, one_line

MODES = ("readwrite", "replay")

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


class CachedLLM(LLM):
    """Serve repeated requests from an SQLite file; in replay mode, serve nothing else.

    `model` and `params` (the default request parameters) are part of every key. They are taken
    from `inner`; in replay mode without `inner`, pass the ones the recording run used.
    """

    _transient = ("_lock", "_db", "_db_lock", "_opened")

    def __init__(
        self,
        inner: LLM | None,
        path: str | Path,
        mode: str = "readwrite",
        model: str | None = None,
        params: dict[str, Any] | None = None,
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
        self._issued: dict[str, int] = {}  # identical-request counters of this run
        self._returned: dict[str, list[int]] = {}  # indices whose request failed, to reuse
        self._restore()

    def __repr__(self) -> str:
        return (f"CachedLLM(model={self.model!r}, path={str(self.path)!r}, mode={self.mode!r}, "
                f"inner={self.inner!r})")

    # -- storage -----------------------------------------------------------------------------

    def _restore(self) -> None:
        self._db_lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._opened = False  # the file is opened on first use: building a config writes nothing

    def _connection(self) -> sqlite3.Connection | None:
        """The open database (call with `_db_lock` held); None in replay mode without a file."""
        if not self._opened:
            self._db, self._opened = self._open(), True
        return self._db

    def _open(self) -> sqlite3.Connection | None:
        if self.mode == "replay" and not self.path.exists():
            return None  # replay never creates a file; every request will miss
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: every INSERT is its own committed transaction.
        db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable when the process dies
        db.execute(_SCHEMA)
        return db

    def close(self) -> None:
        with self._db_lock:
            if self._db is not None:
                self._db.close()
            self._db, self._opened = None, False  # a later request reopens the file

    def __enter__(self) -> CachedLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lookup(self, key: str) -> tuple[str, str] | None:
        with self._db_lock:
            db = self._connection()
            if db is None:
                return None
            return db.execute("SELECT text, model FROM completions WHERE key = ?", (key,)).fetchone()

    def _store(self, key: str, sample: int, messages: list[dict], request: dict, reply: Completion) -> None:
        row = (
            key, self.model, sample, canonical_json(messages), canonical_json(request), reply.text,
            canonical_json(reply.usage.as_dict()), datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        with self._db_lock:
            db = self._connection()
            assert db is not None, "readwrite mode always opens its file"
            db.execute("INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

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
        request_id = hashlib.sha256(canonical_json(identity).encode()).hexdigest()
        sample = self._take_sample(request_id)
        key = hashlib.sha256(canonical_json({**identity, "sample": sample}).encode()).hexdigest()

        row = self._lookup(key)
        if row is not None:
            usage = Usage(cache_hits=1)
            self._add_usage(usage)
            return Completion(text=row[0], usage=usage, cached=True, model=row[1])
        try:
            if self.mode == "replay" or self.inner is None:
                raise self._miss(messages, sample)
            reply = self.inner.complete(messages, **params)
            self._store(key, sample, messages, request, reply)
        except BaseException:
            self._give_back_sample(request_id, sample)
            raise
        self._add_usage(reply.usage)
        return reply

    def _miss(self, messages: list[dict], sample: int) -> ReplayMissError:
        where = str(self.path) if self.path.exists() else f"{self.path} (file does not exist)"
        return ReplayMissError(
            f"replay miss: no recorded reply in {where} for model={self.model} sample={sample}; "
            f"last user message: {one_line(last_user_text(messages), 200)!r}"
        )

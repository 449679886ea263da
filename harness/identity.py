"""A run's identity is its resolved config: a stable short hash of it names the record file.

Two runs with the same hash computed the same thing; a sweep over any field (even one no file
name shows) gives each point its own hash, so no point skips or overwrites another. Keys that only
change how a run is shown or where it is written (logger, progress bar, results folder, table
layout, the sweep lists themselves) are left out, so moving a record or restyling a table keeps it.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from harness.plainjson import jsonable  # one JSON convention for records and hashes

# Top-level keys that do not change what a run computes.
PRESENTATION_KEYS = frozenset({
    "hydra", "logger", "progress", "log_every", "results_dir", "skip_done",
    "table",                                # how make_tables shows the experiment
    "smoke",                                # an old records' un-applied smoke block (now a config group)
    "runner",                               # which entry point the experiment is for
    "bbh_subtasks", "textgrad_datasets",    # the lists a sweep draws from, not this run's choice
})
HASH_LENGTH = 10
# Settings of an LLM endpoint that change how replies are fetched, not which replies a run gets:
# a replay (cache_mode: replay) or a rerun with another timeout or cache file is the same run.
LLM_TRANSPORT_KEYS = frozenset({"cache_mode", "cache_path", "timeout_s", "max_concurrency", "max_retries",
                                "backoff_s", "max_reply_chars", "api_key_env"})
LLM_TARGETS = frozenset({"trace_core.llm.openai_llm"})


def identity_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a resolved config that defines the run."""
    identity = {k: _without_transport(v) for k, v in config.items() if k not in PRESENTATION_KEYS}
    if isinstance(identity.get("optimizer"), Mapping):  # the run folder a method writes side files to
        identity["optimizer"] = {k: v for k, v in identity["optimizer"].items() if k != "output_dir"}
    return identity


def _without_transport(value: Any) -> Any:
    if isinstance(value, Mapping):
        drop = LLM_TRANSPORT_KEYS if value.get("_target_") in LLM_TARGETS else frozenset()
        return {k: _without_transport(v) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [_without_transport(v) for v in value]
    return value


def config_hash(config: Mapping[str, Any]) -> str:
    """Short sha256 of the canonical JSON of `identity_config(config)` (key order does not matter)."""
    text = json.dumps(jsonable(identity_config(config)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def run_stem(task: str, method: str, seed: int, digest: str) -> str:
    """`<task>__<method>__seed<k>__<hash>`: readable first, unique by the hash."""
    return f"{task}__{method}__seed{seed}__{digest}"


def differing_keys(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested configs (for one-line mismatch messages)."""
    keys = []
    for key in sorted(set(a) | set(b), key=str):
        left, right, name = a.get(key), b.get(key), f"{prefix}{key}"
        if isinstance(left, Mapping) and isinstance(right, Mapping):
            keys += differing_keys(left, right, f"{name}.")
        elif left != right:
            keys.append(name)
    return keys

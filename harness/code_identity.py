"""The code a run loaded is part of what it computed: a hash of the source of every module its
config's `_target_`s name (task, method, model, LLM client, and a user's own modules outside the
project, which the git sha cannot see).

A record keeps `provenance.code` ({module: hash}) and `provenance.code_hash` (of them all);
`skip_done` returns a record only when the code hash matches (harness.runs.previous_record), so an
edited optimizer is rerun, never answered with the old record. The git sha stays as provenance.
"""
from __future__ import annotations

import hashlib
import inspect
import sys
from typing import Any, Iterator, Mapping

HASH_LENGTH = 16


def targets(config: Any) -> Iterator[str]:
    """Every `_target_` string in a nested config (dicts and lists)."""
    if isinstance(config, Mapping):
        for key, value in config.items():
            if key == "_target_" and isinstance(value, str):
                yield value
            else:
                yield from targets(value)
    elif isinstance(config, list):
        for value in config:
            yield from targets(value)


def defining_module(target: str) -> Any:
    """The module the target's object is defined in (a package re-exporting it is not the source),
    or None when the run never imported it (a config group it does not use): nothing is imported here."""
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is not None:
            break
    else:
        return None
    obj: Any = module
    for name in parts[cut:]:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return inspect.getmodule(obj) or module


def module_hashes(config: Mapping[str, Any]) -> dict[str, str]:
    """{module name: sha256 of its source file} for the loaded modules the config's targets are
    defined in; modules without a source file (compiled, built in) are left out."""
    hashes = {}
    for target in sorted(set(targets(config))):
        module = defining_module(target)
        path = getattr(module, "__file__", None)
        if module is None or not path or not path.endswith(".py"):
            continue
        with open(path, "rb") as handle:
            hashes[module.__name__] = hashlib.sha256(handle.read()).hexdigest()[:HASH_LENGTH]
    return hashes


def code_provenance(config: Mapping[str, Any]) -> dict[str, Any]:
    """What a record keeps: each module's hash, and one hash of them all (what skip_done compares)."""
    hashes = module_hashes(config)
    joined = "\n".join(f"{name} {digest}" for name, digest in sorted(hashes.items()))
    return {"code": hashes, "code_hash": hashlib.sha256(joined.encode()).hexdigest()[:HASH_LENGTH]}


def changed_modules(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Modules whose source differs between a record's provenance and now (added or gone included)."""
    old, new = recorded.get("code") or {}, current.get("code") or {}
    return sorted(name for name in set(old) | set(new) if old.get(name) != new.get(name))

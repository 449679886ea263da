"""Config values checked against the type hints of what they build, before anything is built.

Every config node with a `_target_` names a class or function whose signature says what each
argument must be (`n_particles: int`). A value of the wrong type (`optimizer.n_particles=abc`,
`task.limit=ten`) is a config error with its dotted key, raised before the run starts instead of
as a TypeError deep inside the method. Arguments without a usable hint are left to the target.
"""
from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from harness.api import ConfigError

SKIPPED = ("hydra", "table")


def check_argument_types(config: Mapping[str, Any]) -> None:
    """Raise ConfigError for the first value whose type its target's signature rules out."""
    for key, value in config.items():
        if key not in SKIPPED:
            _check_node(value, key)


def _check_node(node: Any, path: str) -> None:
    if isinstance(node, Mapping):
        if isinstance(node.get("_target_"), str):
            _check_call(node, path)
        for key, value in node.items():
            _check_node(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_node(value, f"{path}[{i}]")


def _check_call(node: Mapping[str, Any], path: str) -> None:
    hints = _hints(node["_target_"])
    for key, value in node.items():
        if key.startswith("_") or key not in hints or isinstance(value, Mapping) and "_target_" in value:
            continue
        if not _fits(value, hints[key]):
            raise ConfigError(f"{path}.{key}: expected {_name(hints[key])}, got {value!r}")


def _hints(target: str) -> dict[str, Any]:
    from hydra._internal.utils import _locate  # Hydra's own resolver of `_target_` strings

    try:
        obj = _locate(target)
        function = obj.__init__ if inspect.isclass(obj) else obj
        return typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 (no usable hints: the target checks its own arguments)
        return {}


def _fits(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    container = origin or hint
    if container in (list, tuple, Sequence) or (inspect.isclass(container) and issubclass(container, (list, tuple))):
        return isinstance(value, (list, tuple))
    if container in (dict, Mapping):
        return isinstance(value, Mapping)
    return True  # classes, callables, literals: left to the target


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")

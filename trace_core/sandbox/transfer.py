"""The parent's side of what crosses into a sandbox worker, and of what comes back besides the value.

Plain data travels pickled by value. The rest travels under a tag the worker rebuilds
(rebuild.py) and the parent can recognise when it comes back:
- `object`: an instance of an ordinary class (its attributes in `__dict__`, default pickling),
  by value; the attributes the code changed come back and are set on the caller's object.
- `proxy`: an object whose class lists `sandbox_methods` (it stays here: the worker may call only
  those methods), and, when a message cannot be pickled otherwise, every object that is not
  plain data (a lock, a client): setting an attribute on a proxy fails loudly.
- `node`: a node's value (the worker reads `.data`; the graph stays here).
- `trainable`: a trainable bundled function with its current code, which the worker defines and
  calls there; the calls it made come back, so its code parameter becomes an input of the call.
- `function`: a non-trainable bundled function, as the plain function it wraps.
Top-level lists, dicts and sets among the arguments, closure cells and the globals the code names
come back when the code changed them, and are updated in place (an append to a global list).
"""
from __future__ import annotations

import functools
import io
import pickle
import types
from typing import Any, Callable

from trace_core.graph import Node

MUTABLE = (list, dict, set, bytearray)  # top-level containers whose changes come back
_CODE_KINDS = (type, types.FunctionType, types.BuiltinFunctionType, types.ModuleType, types.MethodType,
                functools.partial)


def by_state(obj: Any) -> bool:
    """Does `obj` pickle as its class plus its `__dict__` (so it can travel as an `object`)?"""
    cls = type(obj)
    if isinstance(obj, _CODE_KINDS) or not hasattr(obj, "__dict__"):
        return False
    if cls.__reduce_ex__ is not object.__reduce_ex__ or cls.__reduce__ is not object.__reduce__:
        return False
    if getattr(cls, "__getstate__", object.__getstate__) is not object.__getstate__ or hasattr(cls, "__setstate__"):
        return False
    return not any("__slots__" in vars(c) for c in cls.__mro__[:-1])


class _Tagging:
    """persistent_id for both picklers below (the fast standard one, and cloudpickle's, which
    also carries classes and functions defined inside functions)."""

    def setup(self, refs: dict[int, Any], by_value: bool, plain: Callable[[Any], bool]) -> None:
        self.refs, self.by_value, self.plain, self.pending = refs, by_value, plain, set()

    def persistent_id(self, obj: Any) -> Any:
        if self.plain(obj):
            return None
        sandbox = getattr(type(obj), "__sandbox__", None)
        if sandbox is not None:  # a bundled function
            self.refs[id(obj)] = obj
            if id(obj) in self.pending:
                return ("lazy", id(obj))  # it calls itself through another function: resolved at call time
            self.pending.add(id(obj))
            try:
                kind, payload, bound = sandbox(obj)
                return (kind, id(obj), self._inline(payload), bound)
            finally:
                self.pending.discard(id(obj))
        if isinstance(obj, Node):
            self.refs[id(obj)] = obj
            return ("node", id(obj), obj._data)
        if not self.by_value or hasattr(type(obj), "sandbox_methods"):
            return self._proxy(obj)
        if by_state(obj):
            if id(obj) in self.pending:
                return self._proxy(obj)  # a cycle back to an object on its way: rare, and loud on use
            self.refs[id(obj)] = obj
            self.pending.add(id(obj))
            try:
                return ("object", id(obj), type(obj), self._inline(dict(vars(obj))))
            finally:
                self.pending.discard(id(obj))
        return None  # pickled as its own reduction says (code, modules, dates, ...)

    def _inline(self, payload: Any) -> bytes:
        """Pickle a tag's payload now, with this pickler's rules (so an object met twice is one
        object in the worker, and a cycle back to it stops)."""
        buffer = io.BytesIO()
        nested = type(self)(buffer, self.refs, self.by_value, self.plain)
        nested.pending = self.pending
        nested.dump(payload)
        return buffer.getvalue()

    def _proxy(self, obj: Any) -> tuple:
        self.refs[id(obj)] = obj
        methods = tuple(getattr(type(obj), "sandbox_methods", ()))
        try:
            text = repr(obj)[:2000]
        except Exception:
            text = f"<{type(obj).__name__}>"
        return ("proxy", id(obj), text, methods)


class _Pickler(_Tagging, pickle.Pickler):
    def __init__(self, file: io.BytesIO, refs: dict[int, Any], by_value: bool, plain: Callable[[Any], bool]) -> None:
        pickle.Pickler.__init__(self, file, protocol=pickle.HIGHEST_PROTOCOL)
        self.setup(refs, by_value, plain)


def _cloud_pickler() -> type | None:
    try:
        import cloudpickle
    except ImportError:  # classes defined inside functions then travel as proxies
        return None

    class CloudPickler(_Tagging, cloudpickle.Pickler):
        def __init__(self, file: io.BytesIO, refs: dict[int, Any], by_value: bool,
                     plain: Callable[[Any], bool]) -> None:
            cloudpickle.Pickler.__init__(self, file, protocol=pickle.HIGHEST_PROTOCOL)
            self.setup(refs, by_value, plain)
    return CloudPickler


@functools.lru_cache(maxsize=1)
def _picklers() -> tuple[type, ...]:
    cloud = _cloud_pickler()
    return (_Pickler,) + ((cloud,) if cloud else ())


def dumps(message: Any, refs: dict[int, Any], plain: Callable[[Any], bool]) -> bytes:
    """`message` pickled for a worker. Tried in turn: the standard pickler, cloudpickle (local
    classes and functions), then with every ordinary object as a proxy (one that cannot be
    pickled at all: a lock, a client)."""
    tries = [(p, True) for p in _picklers()] + [(_picklers()[-1], False)]
    for i, (pickler, by_value) in enumerate(tries):
        buffer = io.BytesIO()
        try:
            pickler(buffer, refs, by_value, plain).dump(message)
            return buffer.getvalue()
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError, ValueError):
            if i == len(tries) - 1:
                raise
    raise AssertionError("unreachable")


def apply_effects(effects: Any, places: dict[str, Any], refs: dict[int, Any]) -> list[Any]:
    """Set what the worker reports changed on the caller's objects; returns the bundled
    functions the code called. `places`: "a" args (a list), "k" kwargs, "c" cells, "o" globals."""
    if type(effects) is not dict:
        return []
    for (where, key), value in _pairs(effects.get("containers")):
        holder = places.get(where)
        try:
            target = holder[key]
        except (KeyError, IndexError, TypeError):
            continue
        _update_in_place(target, value)
    for ref, changes in _pairs(effects.get("objects")):
        target = refs.get(ref)
        if target is None or type(changes) is not dict:
            continue
        for name, value in dict(changes.get("set", {})).items():
            current = vars(target).get(name)
            if not (type(current) is type(value) and _update_in_place(current, value)):
                setattr(target, name, value)
        for name in changes.get("del", []):
            if name in vars(target):
                delattr(target, name)
    return [refs[r] for r in effects.get("called", []) if r in refs]


def _pairs(items: Any) -> list:
    return [item for item in (items or []) if type(item) in (list, tuple) and len(item) == 2]


def _update_in_place(target: Any, value: Any) -> bool:
    """Make the container `target` hold `value` (same type), keeping its identity."""
    if type(target) is not type(value) or type(target) not in MUTABLE:
        return False
    if type(target) in (list, bytearray):
        target[:] = value
    else:
        target.clear()
        target.update(value)
    return True

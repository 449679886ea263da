"""The worker's side of transfer.py: rebuild what the parent sent, and after the call collect
what the code changed (attributes of objects that came by value, top-level containers) and which
trainable functions it called, as data the parent applies (`effects` of the reply)."""
from __future__ import annotations

import io
import pickle
import types
from typing import Any, Callable

from trace_core.sandbox import codec

MUTABLE = (list, dict, set, bytearray)


class Loaded:
    """One request's rebuilt objects: parent reference <-> the object here."""

    def __init__(self, make_proxy: Callable[[int, str, tuple], Any],
                 define: Callable[[dict, dict], Callable[..., Any]]) -> None:
        self.make_proxy, self.define = make_proxy, define
        self.by_ref: dict[int, Any] = {}
        self.ref_by_id: dict[int, int] = {}
        self.objects: list[tuple[int, Any, dict[str, Any], dict[str, Any]]] = []  # ref, obj, before, prints
        self.called: list[int] = []

    def load(self, data: bytes) -> Any:
        return _Unpickler(io.BytesIO(data), self).load()

    def ref_of(self, obj: Any) -> int | None:
        return self.ref_by_id.get(id(obj))

    def keep(self, ref: int, obj: Any) -> Any:
        self.by_ref[ref] = obj
        self.ref_by_id[id(obj)] = ref
        return obj

    def rebuild(self, pid: tuple) -> Any:
        kind, ref = pid[0], pid[1]
        if kind == "proxy":
            return self.keep(ref, self.make_proxy(ref, pid[2], tuple(pid[3])))
        if ref in self.by_ref:
            return self.by_ref[ref]
        if kind == "lazy":
            return lambda *args, **kwargs: self.by_ref[ref](*args, **kwargs)
        if kind == "node":
            from trace_core.graph import Node
            return self.keep(ref, Node(pid[2]))
        if kind == "object":
            cls = pid[2]
            obj = self.keep(ref, cls.__new__(cls))
            state = self.load(pid[3])
            obj.__dict__.update(state)
            self.objects.append((ref, obj, dict(state), {k: fingerprint(v) for k, v in state.items()}))
            return obj
        payload = self.load(pid[2])
        bound = () if pid[3] is None else (pid[3],)
        if kind == "function":
            return self.keep(ref, _bind(payload, bound))
        if kind == "trainable":
            return self.keep(ref, self._trainable(ref, payload, bound))
        raise ValueError(f"unknown tag {kind!r}")

    def _trainable(self, ref: int, fields: dict[str, Any], bound: tuple) -> Callable[..., Any]:
        """The function its current code defines (on first call); each call is noted."""
        defined: list[Callable[..., Any]] = []

        def call(*args: Any, **kwargs: Any) -> Any:
            if ref not in self.called:
                self.called.append(ref)
            if not defined:
                cells = {name: types.CellType(value) for name, value in fields["cells"].items()}
                defined.append(self.define(fields, cells))
            return defined[0](*bound, *args, **kwargs)
        call.__name__ = fields.get("name", "trainable")
        return call


def _bind(fn: Callable[..., Any], bound: tuple) -> Callable[..., Any]:
    return types.MethodType(fn, bound[0]) if bound else fn


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, loaded: Loaded) -> None:
        super().__init__(file)
        self.loaded = loaded

    def persistent_load(self, pid: Any) -> Any:
        return self.loaded.rebuild(tuple(pid))


def fingerprint(value: Any) -> bytes | None:
    """To tell whether a mutable value changed (None: cannot tell, so it is sent back)."""
    if type(value) not in MUTABLE:
        return b""
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None


def effects(loaded: Loaded, tops: dict[str, dict[Any, Any]], before: dict[tuple, bytes | None]) -> dict[str, Any]:
    """What changed, as the reply's `effects` (values tagged by codec.encode_message): CodecError
    names the place when a changed value cannot leave the sandbox."""
    containers = []
    for (where, key), print_before in before.items():
        value = tops[where][key]
        if print_before is None or fingerprint(value) != print_before:
            containers.append([[where, key], _checked(value, loaded, f"the argument or global `{key}`")])
    objects = []
    for ref, obj, state, prints in loaded.objects:
        now = vars(obj)
        changed = {k: _checked(v, loaded, f"`{type(obj).__name__}.{k}`") for k, v in now.items()
                   if (k not in state or state[k] is not v or prints.get(k) is None or fingerprint(v) != prints[k])
                   and not (k not in state and k.startswith("_bundle_"))}  # a method's copy made here
        removed = [k for k in state if k not in now]
        if changed or removed:
            objects.append([ref, {"set": changed, "del": removed}])
    return {"containers": containers, "objects": objects, "called": list(loaded.called)}


def _checked(value: Any, loaded: Loaded, where: str) -> Any:
    try:
        codec.encode_tree(value, loaded.ref_of)
    except (codec.CodecError, RecursionError, ValueError) as exc:
        raise codec.CodecError(f"the code set {where} to a value that cannot leave the sandbox, so the "
                               f"change cannot reach the caller's object: {exc}") from None
    return value


def top_prints(tops: dict[str, dict[Any, Any]]) -> dict[tuple, bytes | None]:
    """Fingerprints of the top-level mutable containers, taken before the code runs."""
    return {(where, key): fingerprint(value) for where, values in tops.items()
            for key, value in values.items() if type(value) in MUTABLE}

"""Values from a sandbox worker back to the parent: JSON with tagged types.

Decoding can only build plain data (None, bool, int, float, str, bytes, complex, list, tuple,
dict, set, frozenset, numpy arrays and scalars of non-object dtypes), references to objects
the parent itself handed out (`refs`), and top-level functions of modules the parent has
already loaded (`math.sqrt`: looked up, never imported or called). Nothing the worker sends can name a class or a function
to call, so decoding a reply never runs code of the worker's choosing (unlike `pickle.loads`).
"""
from __future__ import annotations

import base64
import json
import sys
import types
from typing import Any, Callable

MAX_DEPTH = 200  # deeper values are refused, not a RecursionError in the parent
TAG = "__sandbox__"


class CodecError(ValueError):
    """A value that cannot cross the sandbox boundary."""


DATA_KEYS = ("value", "cells", "args", "kwargs", "effects")  # message fields that carry values


def encode_message(message: dict[str, Any], ref_of: Callable[[Any], int | None] | None = None) -> bytes:
    """A message as JSON bytes: its DATA_KEYS fields tagged (see encode_tree), the rest (the
    worker's own strings and numbers) as they are. `ref_of(obj)` names objects sent by reference."""
    tree = {k: encode_tree(v, ref_of) if k in DATA_KEYS else v for k, v in message.items()}
    return json.dumps(tree, separators=(",", ":")).encode()


def decode_message(data: bytes, refs: dict[int, Any] | None = None) -> dict[str, Any]:
    """The message encode_message wrote; references resolve through `refs`."""
    try:
        message = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"unreadable message from the sandbox: {exc}") from None
    if type(message) is not dict:
        raise CodecError("malformed message from the sandbox")
    for key in DATA_KEYS:
        if key in message:
            message[key] = decode_tree(message[key], refs or {})
    return message


def encode_tree(value: Any, ref_of: Callable[[Any], int | None] | None = None) -> Any:
    """`value` as a JSON-able tree of plain JSON values and tagged objects."""
    return _encode(value, ref_of, 0)


def decode_tree(tree: Any, refs: dict[int, Any] | None = None) -> Any:
    """The value encode_tree turned into `tree`; references resolve through `refs`."""
    return _decode(tree, refs or {}, 0)


def _tagged(kind: str, value: Any) -> dict[str, Any]:
    return {TAG: kind, "v": value}


def _encode(value: Any, ref_of: Callable[[Any], int | None] | None, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CodecError(f"the value is nested more than {MAX_DEPTH} levels deep")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [_encode(v, ref_of, depth + 1) for v in value]
    if kind in (tuple, set, frozenset):
        items = value if kind is tuple else sorted(value, key=repr)
        return _tagged(kind.__name__, [_encode(v, ref_of, depth + 1) for v in items])
    if kind is dict:
        return _tagged("dict", [[_encode(k, ref_of, depth + 1), _encode(v, ref_of, depth + 1)]
                                for k, v in value.items()])
    if kind is bytes:
        return _tagged("bytes", base64.b64encode(value).decode())
    if kind is complex:
        return _tagged("complex", [value.real, value.imag])
    ref = ref_of(value) if ref_of is not None else None
    if ref is not None:
        return _tagged("ref", ref)
    encoded_numpy = _encode_numpy(value)
    if encoded_numpy is not None:
        return encoded_numpy
    if kind in (types.FunctionType, types.BuiltinFunctionType) and _module_function(
            getattr(value, "__module__", None), getattr(value, "__qualname__", "")) is value:
        return _tagged("function", [value.__module__, value.__qualname__])
    raise CodecError(f"a value of type {kind.__module__}.{kind.__qualname__} cannot leave the sandbox "
                     "(return plain data: numbers, strings, lists, dicts, tuples, numpy arrays)")


def _encode_numpy(value: Any) -> Any:
    numpy = _numpy_if_loaded()
    if numpy is None:
        return None
    if isinstance(value, (numpy.ndarray, numpy.generic)) and not value.dtype.hasobject:
        array = numpy.ascontiguousarray(value)
        payload = [array.dtype.str, list(array.shape), base64.b64encode(array.tobytes()).decode()]
        return _tagged("ndarray" if isinstance(value, numpy.ndarray) else "npscalar", payload)
    return None


def _numpy_if_loaded() -> Any:
    return sys.modules.get("numpy")


def _decode(tree: Any, refs: dict[int, Any], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CodecError(f"the value is nested more than {MAX_DEPTH} levels deep")
    if tree is None or type(tree) in (bool, int, float, str):
        return tree
    if type(tree) is list:
        return [_decode(v, refs, depth + 1) for v in tree]
    if type(tree) is not dict or set(tree) != {TAG, "v"}:
        raise CodecError("malformed value from the sandbox")
    kind, body = tree[TAG], tree["v"]
    try:
        return _decode_tagged(kind, body, refs, depth)
    except (TypeError, ValueError, KeyError) as exc:
        raise CodecError(f"malformed {kind!r} value from the sandbox: {exc}") from None


def _decode_tagged(kind: str, body: Any, refs: dict[int, Any], depth: int) -> Any:
    if kind in ("tuple", "set", "frozenset"):
        items = [_decode(v, refs, depth + 1) for v in _as_list(body)]
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[kind](items)
    if kind == "dict":
        return {_decode(k, refs, depth + 1): _decode(v, refs, depth + 1) for k, v in _as_list(body)}
    if kind == "bytes":
        return base64.b64decode(body, validate=True)
    if kind == "complex":
        real, imag = body
        return complex(float(real), float(imag))
    if kind == "ref":
        return refs[body]
    if kind in ("ndarray", "npscalar"):
        return _decode_numpy(kind, body)
    if kind == "function":
        found = _module_function(*_as_list(body))
        if found is None:
            raise ValueError("not a function of a module this process has loaded")
        return found
    raise ValueError(f"unknown tag {kind!r}")


def _module_function(module: Any, name: Any) -> Any:
    """A top-level function of a module already loaded here (such as math.sqrt), found without
    importing anything or running a module's __getattr__; None if there is none."""
    if type(module) is not str or type(name) is not str or "." in name:
        return None
    loaded = sys.modules.get(module)
    found = vars(loaded).get(name) if loaded is not None else None
    return found if type(found) in (types.FunctionType, types.BuiltinFunctionType) else None


def _as_list(body: Any) -> list:
    if type(body) is not list:
        raise ValueError("expected a list")
    return body


def _decode_numpy(kind: str, body: Any) -> Any:
    import numpy
    dtype_str, shape, data = body
    dtype = numpy.dtype(str(dtype_str))
    if dtype.hasobject:
        raise ValueError("object arrays are refused")
    shape = tuple(int(n) for n in shape)
    array = numpy.frombuffer(base64.b64decode(data, validate=True), dtype=dtype).reshape(shape).copy()
    return array if kind == "ndarray" else array[()]

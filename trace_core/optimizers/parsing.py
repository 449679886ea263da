"""Reading an LLM's reply: find the JSON object, take its suggestion, convert values to the
parameters' types. Nothing here raises on a malformed reply: it returns what it could use and
says why the rest was dropped.
"""
from __future__ import annotations

import ast
import json
import math
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_TERMINATE = re.compile(r"\bTERMINATE\b")
_PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_PAIR = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)')


def extract_object(text: str) -> dict[str, Any] | None:
    """The reply's JSON object: strict JSON, then a fenced block, then the outermost {...}, then
    a repaired version of that span (trailing commas, Python literals)."""
    candidates = [text, *_FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    if 0 <= start < end:
        return _repair(text[start:end + 1])
    return None


def _repair(span: str) -> dict[str, Any] | None:
    fixed = _TRAILING_COMMA.sub(r"\1", span)
    try:
        value = json.loads(fixed)
    except (ValueError, RecursionError):
        try:  # single quotes, True/False/None: a Python dict literal
            value = ast.literal_eval(fixed)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


def parse_suggestion(text: str) -> tuple[dict[str, Any], str]:
    """(suggestion, note). An empty suggestion comes with the reason nothing could be used."""
    if not isinstance(text, str) or not text.strip():
        return {}, "empty reply"
    reply = extract_object(text)
    if reply is not None:
        suggestion = reply.get("suggestion")
        if isinstance(suggestion, dict):
            return {str(k): v for k, v in suggestion.items()}, ""
        if suggestion is not None:
            return {}, f"'suggestion' is a {type(suggestion).__name__}, not an object"
    # Last resort: a "suggestion" block whose JSON is broken; keep its simple "name": value pairs.
    block = text.partition('"suggestion"')[2]
    pairs = {k: _scalar(v) for k, v in _PAIR.findall(block)}
    if pairs:
        return pairs, "reply was not valid JSON; used the name/value pairs of its suggestion"
    # TERMINATE counts only when no suggestion came back: the word inside a JSON field or in the
    # reasoning next to a suggestion is not the model declining to change anything.
    if _TERMINATE.search(text):
        return {}, "the model answered TERMINATE (no change needed)"
    return {}, "no JSON object with a 'suggestion' in the reply"


def _scalar(token: str) -> Any:
    try:
        return json.loads(token)
    except ValueError:
        return token.strip('"')


def convert(value: Any, like: Any) -> Any:
    """`value` as the type of the current value `like`, or ValueError saying why not."""
    kind = type(like)
    if kind is str:
        return _keeping_placeholders(json.dumps(value) if isinstance(value, (dict, list)) else str(value), like)
    if kind in (int, float):
        number = _number(value)
        if kind is int:
            if isinstance(number, int):
                return number
            if not number.is_integer():
                raise ValueError(f"expected a whole number, got {value!r}")
            return int(number)
        try:
            return float(number)
        except OverflowError:
            raise ValueError(f"{value!r} is too large for a float") from None
    if isinstance(value, kind):
        return value
    if kind is bool:
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(f"expected true or false, got {value!r}")
    if kind in (list, tuple, dict):
        parsed = _literal(value) if isinstance(value, str) else value
        if isinstance(parsed, (list, tuple)) and kind in (list, tuple):
            return kind(parsed)
        if isinstance(parsed, dict) and kind is dict:
            return parsed
        raise ValueError(f"expected a {kind.__name__}, got {value!r}")
    try:
        return kind(value)
    except Exception as exc:
        raise ValueError(f"cannot make a {kind.__name__} of {value!r}: {exc}") from None


def _number(value: Any) -> float | int:
    """A finite int or float from a number or its text (whole-number text stays an exact int)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        return value
    if isinstance(value, str):
        text = value.strip()
        for parse in (int, float):
            try:
                return _number(parse(text))
            except ValueError:  # also int() past Python's digit limit
                continue
    raise ValueError(f"expected a number, got {value!r}")


def _keeping_placeholders(new: str, current: str) -> str:
    """A template's `{name}` fields are where the program puts its inputs: a new text that drops
    one would make every call get the same text there."""
    missing = sorted(set(_PLACEHOLDER.findall(current)) - set(_PLACEHOLDER.findall(new)))
    if missing:
        raise ValueError(f"the text must keep its placeholder{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)} (the program fills them in)")
    return new


def _literal(text: str) -> Any:
    for load in (json.loads, ast.literal_eval):
        try:
            return load(text)
        except Exception:
            continue
    return None

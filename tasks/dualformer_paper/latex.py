"""Brace matching in LaTeX strings, shared by the MATH answer tiers (math_answers, math_sympy beside it)."""
from __future__ import annotations


def matching_brace(text: str, open_at: int) -> int:
    """Index of the `}` that closes the `{` at `open_at`, or -1 when it is never closed."""
    depth, i = 0, open_at
    while i < len(text):
        if text[i] == "\\":
            i += 2  # `\{`, `\}` (and `\\`) are escapes, not grouping braces
            continue
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1

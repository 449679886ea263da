r"""The sympy tier of MATH answer equivalence (tasks/dualformer_paper/math_answers.py, tier 4).

    from tasks.dualformer_paper.math_sympy import sympy_equal
    sympy_equal(r"2\sqrt{2}", r"\sqrt{8}")   # True, under a wall-clock limit

Our small LaTeX -> Python translator, parsed with a whitelisted namespace (no builtins: answers
are model output), then `simplify(a - b) == 0` or a numeric difference below 1e-9. Long inputs,
huge integers and nested or huge powers are refused before parsing (a C-level bigint power cannot
be interrupted); the rest runs under SIGALRM for `SYMPY_SECONDS`, skipped (False) off the main
thread, with an outer SIGALRM timer re-armed. Without sympy installed it answers False.
"""
from __future__ import annotations

import functools
import re
import signal
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from tasks.dualformer_paper.latex import matching_brace

SYMPY_SECONDS = 2.0
MAX_SYMPY_CHARS = 200
_SYMPY_FUNCS = ("sqrt", "pi", "oo", "sin", "cos", "tan", "cot", "sec", "csc", "log", "exp", "asin",
                "acos", "atan")
_LATEX_NAMES = {"\\pi": " pi ", "\\infty": " oo ", "\\cdot": "*", "\\times": "*", "\\div": "/",
                "\\ln": " log", "\\log": " log", "\\exp": " exp", "\\sin": " sin", "\\cos": " cos",
                "\\tan": " tan", "\\cot": " cot", "\\sec": " sec", "\\csc": " csc",
                "\\arcsin": " asin", "\\arccos": " acos", "\\arctan": " atan"}


def latex_to_python(s: str) -> str | None:
    """Our LaTeX subset as a sympy-parsable string, or None when it has anything else."""
    if len(s) > MAX_SYMPY_CHARS:
        return None
    s = s.replace("\\{", "").replace("\\}", "") if s.startswith("\\{") else s
    s = _replace_frac_sqrt(s)
    if s is None:
        return None
    for name in sorted(_LATEX_NAMES, key=len, reverse=True):
        s = re.sub(re.escape(name) + r"(?![A-Za-z])", _LATEX_NAMES[name], s)
    s = s.replace("{", "(").replace("}", ")").replace("^", "**")
    if "\\" in s or not re.fullmatch(r"[A-Za-z0-9+\-*/().,\s]*", s) or re.search(r"\d{40}", s):
        return None
    return None if any(_huge(e) for e in _exponents(s)) else s


def _exponents(s: str) -> Iterator[str]:
    """The operand after each `**` (a balanced (...) group or a token), with a `**` that follows
    it at once (`a**b**c` is a tower too)."""
    for m in re.finditer(r"\*\*\s*", s):
        j = k = m.end()
        if j < len(s) and s[j] == "(":
            depth = 0
            for k in range(j, len(s)):
                depth += (s[k] == "(") - (s[k] == ")")
                if depth == 0:
                    break
            k += 1
        else:
            k += len(re.match(r"[+-]?[\w.]*", s[j:]).group())
        yield s[j:k] + ("**" if s[k:].lstrip().startswith("**") else "")


def _huge(exponent: str) -> bool:
    """A power tower, an exponent over 1000, or one computed from several numbers: bigint work
    (inside C, where no signal interrupts it) that could take forever."""
    numbers = re.findall(r"\d+", exponent)
    return ("**" in exponent or any(int(n) > 1000 for n in numbers)
            or (len(numbers) > 1 and not re.fullmatch(r"\d+/\d+", re.sub(r"[()\s]", "", exponent))))


def _replace_frac_sqrt(s: str) -> str | None:
    r"""`\frac{a}{b}` -> `((a)/(b))`, `\sqrt[n]{x}` -> `((x)**(1/(n)))`, `\sqrt{x}` -> `sqrt(x)`."""
    for _ in range(50):
        at = s.find("\\frac{")
        if at >= 0:
            mid = matching_brace(s, at + 5)
            if mid < 0 or mid + 1 >= len(s) or s[mid + 1] != "{":
                return None
            end = matching_brace(s, mid + 1)
            if end < 0:
                return None
            s = f"{s[:at]}(({s[at + 6:mid]})/({s[mid + 2:end]})){s[end + 1:]}"
            continue
        m = re.search(r"\\sqrt(\[[^\]]*\])?\{", s)
        if not m:
            return s
        end = matching_brace(s, m.end() - 1)
        if end < 0:
            return None
        body = s[m.end():end]
        root = f"(({body})**(1/({m.group(1)[1:-1]})))" if m.group(1) else f"sqrt({body})"
        s = s[:m.start()] + root + s[end + 1:]
    return None


@functools.lru_cache(maxsize=1)
def _namespace() -> dict:
    import sympy

    names = ("Integer", "Float", "Rational", "Symbol", "Function", "I", "E", *_SYMPY_FUNCS)
    return {"__builtins__": {}, **{n: getattr(sympy, n) for n in names}}


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so that sympy's own `except Exception` cannot eat it."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[bool]:
    """Yields True with SIGALRM armed for `seconds`, False where that is impossible (off the main
    thread). An outer timer (pytest-timeout, a caller's own limit) is re-armed with its time left."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    outer_left, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer_left and outer_left <= seconds:
        yield True  # the outer limit comes first and stays in charge
        return

    def on_alarm(signum, frame):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    started = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            left = outer_left - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), outer_interval)


@functools.lru_cache(maxsize=4096)
def sympy_equal(a: str, b: str, seconds: float = SYMPY_SECONDS) -> bool:
    """Tier 4: both sides parsed by sympy and compared symbolically; False on any doubt."""
    pa, pb = latex_to_python(a), latex_to_python(b)
    if pa is None or pb is None or not pa.strip() or not pb.strip():
        return False
    try:
        import sympy
        from sympy.parsing.sympy_parser import (convert_xor, implicit_multiplication_application,
                                                parse_expr, standard_transformations)
    except ImportError:
        return False
    transformations = standard_transformations + (implicit_multiplication_application, convert_xor)
    try:
        with _time_limit(seconds) as armed:
            if not armed:
                return False
            ea, eb = (parse_expr(x, local_dict={"i": sympy.I}, global_dict=dict(_namespace()),
                                 transformations=transformations) for x in (pa, pb))
            if isinstance(ea, tuple) or isinstance(eb, tuple):
                return False
            difference = sympy.simplify(ea - eb)
            if difference == 0:
                return True
            if not difference.free_symbols:
                value = complex(sympy.N(difference))
                scale = max(1.0, abs(complex(sympy.N(eb))))
                return abs(value) < 1e-9 * scale
            return False
    except _Timeout:
        return False
    except Exception:  # a parse or evaluation error of model output: not the same answer
        return False

r"""Final answers of MATH solutions: `\boxed{}` extraction, normalization, equivalence.

    from tasks.dualformer_paper.math_answers import is_equiv, last_boxed, unbox
    last_boxed(r"so $x = \boxed{\frac{1}{2}}$.")   # '\\frac{1}{2}'
    unbox(r"so $x = \boxed{5}$.")                  # 'so $x = 5$.'
    is_equiv(r"\dfrac12", "0.5")                   # True: exact rational comparison
    is_equiv(r"2\sqrt{2}", r"\sqrt{8}")            # True: sympy, under a wall-clock limit

`is_equiv(predicted, truth)` goes through tiers, cheapest first, and answers False when unsure:

1. the same string after `normalize` (LaTeX spacing and sizing, dfrac/tfrac, `\frac12`, units,
   degrees, dollars, percent, thousands separators, a leading `x =`, `\text{(B)}` -> `B`);
2. both plain numbers (integers, decimals, `\frac{a}{b}`, `a/b`): exact rational comparison, so
   `0.5 == \frac12` but `0.333 != \frac13`;
3. tuples and intervals element by element, in order, with matching brackets (`(1,2] != (1,2)`);
   braced sets `\{...\}` and bare comma lists (`x = 1, 2`) as unordered lists; equations with the
   same left side by their right sides;
4. sympy: our small LaTeX -> Python translator, parsed with a whitelisted namespace (no builtins:
   answers are model output), then `simplify(a - b) == 0` or a numeric difference below 1e-9.
   Guards: long inputs, huge integers and nested or huge powers are refused before parsing (a
   C-level bigint power cannot be interrupted), and the rest runs under SIGALRM (tasks/dualformer_paper/math_sympy.py).
   Off the main thread this tier is skipped (False); an outer SIGALRM timer is kept and re-armed.
   sympy is optional (the `train` extra has it through torch); without it tier 4 answers False.
"""
from __future__ import annotations

import re
from fractions import Fraction

from tasks.dualformer_paper.latex import matching_brace

BOXES = ("\\boxed", "\\fbox")
UNITS = frozenset("""
    unit units cm centimeter centimeters m meter meters metre metres km kilometer kilometers mm
    inch inches in ft foot feet yard yards mile miles mi sq square cubic degree degrees deg radian
    radians dollar dollars cent cents hour hours hr hrs minute minutes min mins second seconds sec
    day days week weeks month months year years mph kg g gram grams pound pounds lb lbs ounce
    ounces oz liter liters l ml gallon gallons cups cup people students percent points point
""".split())
_SIZING = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|bigg|Bigg|big|Big|displaystyle)(?![A-Za-z])")
_SPACING = re.compile(r"\\[!,:; ]|~|\\quad|\\qquad")
_TEXT_COMMANDS = ("\\text", "\\textbf", "\\textit", "\\textnormal", "\\mbox", "\\mathrm", "\\mathbf",
                  "\\boldsymbol", "\\operatorname")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


# ----------------------------------------------------------------------------- boxes

def boxed_spans(text: str) -> list[tuple[int, int, str]]:
    r"""(start, end, content) of every `\boxed{..}` / `\fbox{..}` / `\boxed 5`, in order."""
    spans, i = [], 0
    while True:
        found = [(text.find(box, i), box) for box in BOXES]
        found = [(at, box) for at, box in found if at >= 0]
        if not found:
            return spans
        at, box = min(found)
        j = at + len(box)
        if j < len(text) and text[j] == "{":
            close = matching_brace(text, j)
            if close < 0:
                return spans
            spans.append((at, close + 1, text[j + 1:close]))
            i = close + 1
        elif j < len(text) and text[j] == " ":  # `\boxed 5`: the token up to a space or `$`
            m = re.match(r" +([^\s$]+)", text[j:])
            spans.append((at, j + m.end(), m.group(1)) if m else (at, j, ""))
            i = j + (m.end() if m else 1)
        else:
            i = j  # `\boxedanything`: another command, not a box


def last_boxed(text: str) -> str | None:
    """The content of the last box in `text` (MATH's final answer), or None."""
    spans = boxed_spans(text)
    return spans[-1][2].strip() if spans else None


def unbox(text: str) -> str:
    r"""`text` with every `\boxed{X}` replaced by `X` (the step text keeps the value, unboxed)."""
    out, i = [], 0
    for start, end, content in boxed_spans(text):
        out.append(text[i:start] + content)
        i = end
    return "".join(out) + text[i:]


# ----------------------------------------------------------------------------- normalization

def _unwrap_commands(s: str, names: tuple[str, ...], keep) -> str:
    """Replace `\\name{content}` by `keep(content, rest_of_string)` for each name in `names`."""
    for name in names:
        while m := re.search(re.escape(name) + r"(?![A-Za-z])", s):
            at, j = m.start(), m.end()
            while j < len(s) and s[j] == " ":
                j += 1
            if j >= len(s) or s[j] != "{" or (close := matching_brace(s, j)) < 0:
                s = s[:at] + s[at + len(name):]
                continue
            content = s[j + 1:close]
            s = s[:at] + keep(content, s[:at] + s[close + 1:]) + s[close + 1:]
    return s


def _is_units(words: str) -> bool:
    tokens = [w.strip(".").lower() for w in re.split(r"[\s^{}]+", words) if w.strip(".")]
    return bool(tokens) and all(t in UNITS or t.isdigit() for t in tokens) and not words.strip().isdigit()


def _text_or_units(content: str, rest: str) -> str:
    """A `\\text{..}` body: dropped when it is units after a number, else its words."""
    return "" if _is_units(content) and re.search(r"\d", rest) else content


def _fix_fracs(s: str) -> str:
    r"""`\frac12` -> `\frac{1}{2}`, `\frac1{2}`, `\frac{1}2`; `\sqrt2` -> `\sqrt{2}`."""
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac(\d)\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac(\{[^{}]*\})(\w)", r"\\frac\1{\2}", s)
    return s


def normalize(answer: str) -> str:
    """A canonical string for comparing answers; see the module docstring for what it removes."""
    s = answer.strip()
    if (inner := last_boxed(s)) is not None and s.startswith(BOXES):
        s = inner
    s = s.replace("\n", " ")
    s = _SPACING.sub(" ", s)
    s = _SIZING.sub("", s)
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|°|\\circ|\\degree", "", s)
    s = s.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "")
    s = _unwrap_commands(s, _TEXT_COMMANDS, _text_or_units)
    if (m := re.fullmatch(r"([^=]*\d)\s+([A-Za-z .]+)", s)) and _is_units(m.group(2)):
        s = m.group(1)  # bare units after a number: "12 inches"
    s = re.sub(r"^[A-Za-z]\s*=\s*(?=[^=]*$)", "", s.strip())  # "x = 3" -> "3" (one assignment)
    s = _fix_fracs(s)
    s = s.replace(" ", "").rstrip(".")
    s = re.sub(r"(?<![\d])\.(\d)", r"0.\1", s)  # ".5" -> "0.5"
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")  # thousands separators in a single number
    if m := re.fullmatch(r"([+-]?\d+)/(\d+)", s):
        s = f"\\frac{{{m.group(1)}}}{{{m.group(2)}}}"
    if m := re.fullmatch(r"\(([A-E])\)", s):
        s = m.group(1)  # multiple choice "(B)"
    while s.startswith("{") and matching_brace(s, 0) == len(s) - 1:
        s = s[1:-1]
    return s


# ----------------------------------------------------------------------------- equivalence

def is_equiv(predicted: str | None, truth: str | None) -> bool:
    """True when `predicted` states the same answer as `truth` (MATH conventions), else False."""
    if predicted is None or truth is None:
        return False
    return _equiv(normalize(predicted), normalize(truth), depth=0)


def _equiv(a: str, b: str, depth: int) -> bool:
    if a == b:
        return True
    if not a or not b or depth > 3:
        return False
    if re.fullmatch(r"[A-Za-z ]+", a) and re.fullmatch(r"[A-Za-z ]+", b) and len(a) > 1:
        return a.lower() == b.lower()  # words ("Monday"); single letters stay case-sensitive
    x, y = as_number(a), as_number(b)
    if x is not None and y is not None:
        return x == y
    compound = _compound_equiv(a, b, depth)
    if compound is not None:
        return compound
    from tasks.dualformer_paper.math_sympy import sympy_equal  # lazily: sympy is heavy and optional

    return sympy_equal(a, b)


def as_number(s: str) -> Fraction | None:
    r"""An exact value for `12`, `-0.25`, `\frac{3}{4}`, `-\frac{3}{4}`, `3/4`; None otherwise."""
    if _NUMBER.fullmatch(s):
        return Fraction(s)
    m = re.fullmatch(r"([+-]?)\\frac\{([+-]?[\d.]+)\}\{([+-]?[\d.]+)\}", s) or \
        re.fullmatch(r"([+-]?)([\d.]+)/([\d.]+)", s)
    if m and _NUMBER.fullmatch(m.group(2)) and _NUMBER.fullmatch(m.group(3)):
        denominator = Fraction(m.group(3))
        if denominator != 0:
            value = Fraction(m.group(2)) / denominator
            return -value if m.group(1) == "-" else value
    return None


def split_top_level(s: str, seps: str = ",") -> list[str]:
    """`s` split at any of `seps` where no (, [ or { is open; a closing bracket that would take
    the depth below zero counts as a separator."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if depth == 0 and ch in seps:
            parts.append(s[start:i])
            start = i + 1
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
    parts.append(s[start:])
    return parts


def _compound_equiv(a: str, b: str, depth: int) -> bool | None:
    """Tuples, intervals, sets, lists, equations; None when neither side is one of those."""
    if all(x.startswith("\\{") and x.endswith("\\}") for x in (a, b)):  # sets: any order
        return _unordered_equiv(split_top_level(a[2:-2]), split_top_level(b[2:-2]), depth)
    pa, pb = split_top_level(a), split_top_level(b)
    if len(pa) > 1 or len(pb) > 1:
        return _unordered_equiv(pa, pb, depth)  # a bare list: "1, 2" (all solutions, any order)
    ta, tb = _bracketed(a), _bracketed(b)
    if ta and tb:
        (oa, items_a, ca), (ob, items_b, cb) = ta, tb
        if (oa, ca) != (ob, cb) or len(items_a) != len(items_b):
            return False
        return all(_equiv(x, y, depth + 1) for x, y in zip(items_a, items_b))
    if a.count("=") == 1 and b.count("=") == 1:
        (la, ra), (lb, rb) = a.split("="), b.split("=")
        return la == lb and _equiv(ra, rb, depth + 1)
    return None


def _bracketed(s: str) -> tuple[str, list[str], str] | None:
    """`(1,2]` -> ("(", ["1", "2"], "]") when one pair of brackets holds the whole comma list."""
    if len(s) < 3 or s[0] not in "([" or s[-1] not in ")]" or split_top_level(s[1:-1], ")]") != [s[1:-1]]:
        return None  # "(1,2)" but not "(1)+(2)": no closing bracket at top level inside
    inner = split_top_level(s[1:-1])
    return (s[0], inner, s[-1]) if len(inner) > 1 else None


def _unordered_equiv(xs: list[str], ys: list[str], depth: int) -> bool:
    if len(xs) != len(ys):
        return False
    left = list(ys)
    for x in xs:
        hit = next((i for i, y in enumerate(left) if _equiv(x, y, depth + 1)), None)
        if hit is None:
            return False
        left.pop(hit)
    return True

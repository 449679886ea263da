"""Node's arithmetic and comparison operators, each recorded as a graph operation, and the same
operations as functions under upstream Trace's names (`operators.add(x=.., y=..)`, `cond`,
`getitem`, `identity`), for code ported from it.

    x = node(2.0); y = x * 3 - 1      # multiply, then subtract: two MessageNodes
    from trace_core import operators as ops
    ops.cond(flag, x, y)              # x when flag holds, else y: one recorded operation

The operator table (name, the documentation the optimizer reads, the function) and the dunder
methods installed on Node from it. Imported by `trace_core/__init__`, so any import of the
package installs them before a node is built.
"""
from __future__ import annotations

from typing import Any, Callable

import operator

from trace_core.graph import _OPS, MessageNode, Node, _document, apply_op

_BINARY: dict[str, tuple[str, Callable[[Any, Any], Any]]] = {
    "add": ("Returns x + y (numbers add, strings and lists concatenate).", lambda x, y: x + y),
    "subtract": ("Returns x - y.", lambda x, y: x - y),
    "multiply": ("Returns x * y.", lambda x, y: x * y),
    "divide": ("Returns x / y.", lambda x, y: x / y),
    "floor_divide": ("Returns x // y.", lambda x, y: x // y),
    "mod": ("Returns x % y.", lambda x, y: x % y),
    "power": ("Returns x ** y.", lambda x, y: x ** y),
    "lt": ("Returns whether x < y.", lambda x, y: x < y),
    "le": ("Returns whether x <= y.", lambda x, y: x <= y),
    "gt": ("Returns whether x > y.", lambda x, y: x > y),
    "ge": ("Returns whether x >= y.", lambda x, y: x >= y),
    "eq": ("Returns whether x == y.", lambda x, y: x == y),
    "ne": ("Returns whether x != y.", lambda x, y: x != y),
    "lshift": ("Returns x << y.", lambda x, y: x << y),
    "rshift": ("Returns x >> y.", lambda x, y: x >> y),
    "and": ("Returns x & y.", lambda x, y: x & y),
    "or": ("Returns x | y.", lambda x, y: x | y),
    "xor": ("Returns x ^ y.", lambda x, y: x ^ y),
}
_UNARY: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "negative": ("Returns -x.", lambda x: -x),
    "positive": ("Returns +x.", lambda x: +x),
    "absolute": ("Returns abs(x).", abs),
}
_OPS.update({name: _document(name, doc) for name, (doc, _) in {**_BINARY, **_UNARY}.items()})


def _binary(name: str, reflected: bool = False) -> Callable[[Any, Any], MessageNode]:
    """The recorded operation `name` as a function of (x, y); reflected: of (y, x), for __radd__ etc."""
    op, fn = _OPS[name], _BINARY[name][1]  # bound once: operators are the hottest path

    if reflected:
        def recorded(x: Any, y: Any) -> MessageNode:
            return apply_op(op, fn, x=y, y=x)
    else:
        def recorded(x: Any, y: Any) -> MessageNode:
            return apply_op(op, fn, x=x, y=y)
    recorded.__name__, recorded.__doc__ = name, op.doc
    return recorded


def _unary(name: str) -> Callable[[Any], MessageNode]:
    op, fn = _OPS[name], _UNARY[name][1]

    def recorded(x: Any) -> MessageNode:
        return apply_op(op, fn, x=x)
    recorded.__name__, recorded.__doc__ = name, op.doc
    return recorded


# Upstream's names: `and_`/`or_` (keywords otherwise), `neq`, `neg`/`pos`/`abs_` for the unary ones.
(add, subtract, multiply, divide, floor_divide, mod, power, lt, le, gt, ge, eq, neq, lshift, rshift,
 and_, or_, xor) = map(_binary, ("add", "subtract", "multiply", "divide", "floor_divide", "mod", "power",
                                 "lt", "le", "gt", "ge", "eq", "ne", "lshift", "rshift", "and", "or", "xor"))
neg, pos, abs_ = map(_unary, ("negative", "positive", "absolute"))


def _install_operators() -> None:
    """Give Node its arithmetic and comparison operators, each recorded as a graph operation."""
    dunders = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "divide",
               "floordiv": "floor_divide", "mod": "mod", "pow": "power", "lshift": "lshift",
               "rshift": "rshift", "and": "and", "or": "or", "xor": "xor"}
    for dunder, name in dunders.items():
        setattr(Node, f"__{dunder}__", _binary(name))
        setattr(Node, f"__r{dunder}__", _binary(name, reflected=True))
    for dunder in ("lt", "le", "gt", "ge"):
        setattr(Node, f"__{dunder}__", _binary(dunder))
    for dunder, function in (("neg", neg), ("pos", pos), ("abs", abs_)):
        setattr(Node, f"__{dunder}__", function)


_install_operators()

_OPS.update(cond=_document("cond", "Returns x when condition holds, else y."),
            identity=_document("identity", "Returns x unchanged (a recorded copy of the reference)."))


def cond(condition: Any, x: Any, y: Any) -> MessageNode:
    return apply_op(_OPS["cond"], lambda c, a, b: a if c else b, condition=condition, x=x, y=y)


def identity(x: Any) -> MessageNode:
    return apply_op(_OPS["identity"], lambda value: value, x=x)


def getitem(x: Any, index: Any) -> MessageNode:
    return apply_op(_OPS["getitem"], operator.getitem, obj=x, key=index)
